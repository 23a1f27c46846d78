// Entry points of the roles: each runs in the foreground until SIGTERM/SIGINT, then stops its
// components in reverse start order and returns the process exit code.
#pragma once

#include "orch/config.h"

namespace orch {

int RunServer(const ServerConfig& config);
int RunAgent(const AgentConfig& config);

}  // namespace orch
