// The orch command line: turns argv, the environment (ORCH_*) and the YAML config file into one
// Invocation (which command, with which role config). A library so unit tests can parse argv.
#pragma once

#include <string>
#include <vector>

#include "datastore_migrate.h"
#include "orch/config.h"
#include "orch/host.h"
#include "orch/status.h"
#include "orch/store.h"

namespace orch {

enum class Command {
  kHelp,  // print `Invocation::help_text` and exit 0
  kVersion,
  kServer,
  kAgent,
  kKubectl,
  kCheckConfig,
  kSnapshotSave,
  kSnapshotRestore,
  kDatastoreMigrate,
};

// What the command line asks for. Only the fields that belong to `command` are meaningful.
struct Invocation {
  Command command = Command::kHelp;
  std::string help_text;
  std::string config_file;    // the YAML file whose keys were applied; "" if none was read
  bool print_config = false;  // kServer/kAgent: print the effective config and exit
  bool cleanup = false;       // kServer/kAgent: remove the service proxy's rules and exit
  ServerConfig server;        // kServer; for kKubectl only write_kubeconfig is set
  AgentConfig agent;          // kAgent
  StoreOptions store;         // kSnapshotSave/kSnapshotRestore: which datastore
  std::string snapshot_file;  // kSnapshotSave/kSnapshotRestore
  // kDatastoreMigrate
  DatastoreMigration migrate;
  std::vector<std::string> kubectl_args;  // kKubectl: passed to kubectl untouched
};

struct CliDefaults {
  // The config file read when it exists and neither --config nor ORCH_CONFIG_FILE names one.
  // "" reads none (unit tests).
  std::string config_file = kDefaultConfigFile;
};

// Parses the arguments after the program name. Sources, strongest first: flags, ORCH_*
// environment variables, the config file, built-in defaults. Everything the user can get wrong is
// checked here (including the role config, see ValidateServerConfig), and comes back as
// kInvalidArgument with a one-line message. Host defaults (node name, node IP) are not filled in:
// see ResolveHostDefaults.
Result<Invocation> ParseCommandLine(const std::vector<std::string>& args,
                                    const CliDefaults& defaults = {});

// Fills what defaults to properties of the machine: node name (host name), node IP (source
// address of the default route) and the server's advertise address (node IP).
Status ResolveHostDefaults(Invocation& invocation, Host& host);

// The effective config in config-file syntax (keys are the flag names), token redacted.
std::string FormatConfig(const ServerConfig& config);
std::string FormatConfig(const AgentConfig& config);

// Runs a parsed command and returns the process exit code. For kServer/kAgent the stop signals
// must already be blocked (BlockStopSignals). kKubectl does not return unless exec fails.
int RunCommand(Invocation& invocation);

// True for the commands that run until SIGTERM/SIGINT (the roles).
inline bool IsRole(Command command) {
  return command == Command::kServer || command == Command::kAgent;
}

// The one line a failed command prints on stderr: "orch: error: <message>".
void PrintError(const Status& status);

}  // namespace orch
