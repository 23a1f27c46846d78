// The in-process API client of `orch server` (include/orch/api_client.h): the scheduler,
// controllers and embedded agent call the API handler directly, with no HTTP loop-back.
#pragma once

#include <memory>
#include <string>

#include "api_handler.h"
#include "orch/api_client.h"

namespace orch::api {

// `handler` must outlive the client and its watches. Requests are served as `user`.
std::unique_ptr<ApiClient> NewInProcessClient(ApiHandler& handler, UserInfo user,
                                              std::string field_manager);

}  // namespace orch::api
