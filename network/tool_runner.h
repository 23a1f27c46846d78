// Running the node's network tools (iptables-restore, iptables-save, ip, bridge) as child
// processes: input through a memfd, stdout and stderr together through a pipe.
#pragma once

#include <string>
#include <vector>

#include "orch/status.h"

namespace orch::net {

struct ToolOutput {
  int exit_code = -1;
  std::string text;  // stdout and stderr together
};

// The tool's path in /usr/sbin, /sbin, /usr/bin or /bin, else the bare name.
std::string FindTool(const std::string& name);

// Runs argv (argv[0] a path) with `input` on stdin, waits for it and returns what it printed.
// Fails only when the tool cannot be started. Thread-safe.
Result<ToolOutput> RunTool(const std::vector<std::string>& argv, const std::string& input = "");

// Runs argv and turns a non-zero exit into kUnavailable "<tool> <args>: <output>".
Status RunToolChecked(const std::vector<std::string>& argv, const std::string& input = "");

// The text without trailing newlines and spaces.
std::string TrimmedOutput(std::string text);

}  // namespace orch::net
