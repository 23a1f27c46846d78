// Built-in kinds served in more than one version from one stored form (autoscaling/v1 beside the
// stored autoscaling/v2 HorizontalPodAutoscaler; events.k8s.io/v1 Events stored as core/v1
// Events): a served version's objects are converted on their way to and from the datastore.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace orch::api {

using json = nlohmann::json;

class VersionConverter {
 public:
  virtual ~VersionConverter() = default;
  // The datastore group of the stored form ("core" for core/v1).
  virtual const char* StoreGroup() const = 0;
  // The served version's object in the stored version's form, and back. Fields the other
  // form cannot hold survive a round trip in annotations, as upstream keeps them.
  virtual json ToStorage(json served) const = 0;
  virtual json FromStorage(json stored) const = 0;
};

// The converter of a built-in kind's served version, or null when that version is the stored
// one (or the kind has one version).
const VersionConverter* ConverterFor(const std::string& group, const std::string& version,
                                     const std::string& kind);

}  // namespace orch::api
