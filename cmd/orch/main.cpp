// orch: the command line. Builds each role's config and dispatches; nothing else lives here.
#include <CLI/CLI.hpp>

#include "orch/roles.h"

int main(int argc, char** argv) {
  CLI::App app{"orch - Kubernetes in one executable"};
  app.require_subcommand(1);
  orch::ServerConfig server;
  auto* server_cmd = app.add_subcommand("server", "Run the control plane");
  server_cmd->add_option("--data-dir", server.data_dir, "Folder for all state");
  CLI11_PARSE(app, argc, argv);
  if (*server_cmd) return orch::RunServer(server);
  return 0;
}
