// The OpenAPI endpoints over openapi.h: documents for the current resource set, rebuilt when
// custom resources change it, served with ETags.
#pragma once

#include <memory>

#include "api_handler.h"
#include "openapi.h"
#include "resources.h"

namespace orch::api {

std::unique_ptr<OpenApiService> NewOpenApiService(const ResourceRegistry& registry,
                                                  const SchemaSet* schemas);

// The OpenAPI view of one served resource.
OpenApiResource ToOpenApiResource(const ResourceType& type);

}  // namespace orch::api
