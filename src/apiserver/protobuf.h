// Decoding of Kubernetes protobuf request bodies (application/vnd.kubernetes.protobuf) into the
// JSON form of the object, driven by the protobuf field numbers of the schemas (schema/README.md).
#pragma once

#include <string_view>

#include "orch/status.h"
#include "schema.h"

namespace orch::api {

inline constexpr std::string_view kProtobufContentType = "application/vnd.kubernetes.protobuf";

// Decodes Kubernetes' protobuf envelope: the magic "k8s\0", then a runtime.Unknown whose TypeMeta
// names the kind and whose raw bytes are the object's message. The message is decoded against
// the kind's schema in `schemas` (by the TypeMeta's apiVersion and kind), else against
// `expected` (may be null), and the result carries apiVersion and kind.
//
// The JSON is what Kubernetes' own decode and JSON encode of the object gives: fields absent on
// the wire are absent; zero scalars are kept unless the field is `omitzero` (Go's omitempty on a
// non-pointer); Quantity, Time, MicroTime, Duration, IntOrString, RawExtension, FieldsV1 and the
// CRD schema unions get their JSON forms; bytes become base64. Unknown field numbers are skipped.
// Errors (malformed or truncated input, wrong wire types, nesting beyond 100 levels, no schema
// for the kind) are InvalidArgument; no input makes it crash.
Result<json> DecodeProtobufObject(std::string_view body, const SchemaSet& schemas,
                                  const Schema* expected);

// Decodes one message (no envelope) against the object schema `schema`.
Result<json> DecodeProtobufMessage(std::string_view message, const SchemaSet& schemas,
                                   const Schema& schema);

// Go's time.Duration.String() of `nanoseconds`: "1h2m3s", "1.5s", "300ms", "0s".
std::string GoDurationString(int64_t nanoseconds);

}  // namespace orch::api
