// Per-kind strategies: the defaults and checks that depend on more than one field, which the
// schema cannot express (imagePullPolicy from the image tag, selector matching labels, ...).
#pragma once

#include <string>

#include "resources.h"

namespace orch::api {

// The strategy of a built-in kind; a generic one (no extra behaviour) for others. The returned
// objects are immutable and live for the whole process.
const Strategy* StrategyFor(const std::string& group, const std::string& kind);

}  // namespace orch::api
