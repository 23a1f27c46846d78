// Validation every object gets whatever its kind: metadata (names per kind, labels,
// annotations, finalizers, owner references), with upstream's field errors.
#pragma once

#include "resources.h"

namespace orch::api {

// Appends to `errors` what is wrong with `obj`'s metadata; `old` is the stored object on
// updates (null on creates).
void ValidateObjectMeta(const ResourceType& type, const json& obj, const json* old,
                        FieldErrors& errors);

// Converts a selector/label finding (selector.h) into the REST layer's field error.
FieldError ToFieldError(const SelectorFieldError& e);

}  // namespace orch::api
