// orch: the command line entry point. Parses, then dispatches to the command; nothing else lives
// here (the CLI is in cli.cpp, the commands in commands.cpp, the roles in src/).
#include <string>
#include <vector>

#include "cli.h"
#include "orch/host.h"
#include "orch/signals.h"

int main(int argc, char** argv) {
  auto invocation = orch::ParseCommandLine(std::vector<std::string>(argv + 1, argv + argc));
  if (!invocation.ok()) {
    orch::PrintError(invocation.status());
    return 1;
  }
  // Before any thread exists, so every thread inherits the mask and the role's sigwait alone
  // receives SIGTERM/SIGINT. Only for the roles: kubectl must get Ctrl-C normally after exec.
  if (orch::IsRole(invocation->command)) {
    if (orch::Status s = orch::BlockStopSignals(); !s.ok()) {
      orch::PrintError(s);
      return 1;
    }
    orch::RaiseOpenFileLimit();
  }
  return orch::RunCommand(*invocation);
}
