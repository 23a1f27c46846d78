// Resource quantities ("100m", "1.5", "2Gi", "1e3") with the parsing, canonical formatting and
// arithmetic of k8s.io/apimachinery/pkg/api/resource, for the API server, scheduler and agent.
#pragma once

#include <compare>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "orch/status.h"

namespace orch {

// A fixed-point number with nano precision (values with more decimals are rounded away from
// zero, as upstream rounds them) and the notation it was written in, which decides how it is
// printed. Values up to about 1e29 in magnitude are representable; BinarySI values are capped at
// 2^63-1 like upstream caps them. A plain value type: copyable, thread-compatible.
class Quantity {
 public:
  enum class Format {
    kDecimalSI,        // 12M, 100m, 1.5 (no suffix)
    kBinarySI,         // 12Mi, 2Gi
    kDecimalExponent,  // 12e6
  };

  // Zero, printed "0".
  Quantity() = default;

  // Parses upstream's grammar `^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$` with its messages:
  // "quantities must match the regular expression '...'", "unable to parse quantity's suffix",
  // "unable to parse numeric part of quantity" (all InvalidArgument). Values beyond the
  // representable range give InvalidArgument "quantity is too large".
  static Result<Quantity> Parse(std::string_view text);
  // A quantity as it appears in an object: a string (trimmed like upstream's UnmarshalJSON) or a
  // JSON number. Anything else is InvalidArgument.
  static Result<Quantity> FromJson(const nlohmann::json& value);
  // value units (upstream NewQuantity) and value/1000 units (NewMilliQuantity).
  static Quantity FromInt(int64_t value, Format format);
  static Quantity FromMilli(int64_t milli_value, Format format);

  // The form upstream serializes: the canonical form ("1500m", "1Gi", "1e3", "0"), or the text
  // as parsed when upstream keeps it verbatim (already canonical digits).
  std::string String() const;

  // The value rounded away from zero to an integer (upstream Value()) and in thousandths
  // (MilliValue()). Saturate at the int64 limits.
  int64_t Value() const;
  int64_t MilliValue() const;

  bool IsZero() const { return nanos_ == 0; }
  int Sign() const { return nanos_ < 0 ? -1 : (nanos_ > 0 ? 1 : 0); }
  Format format() const { return format_; }

  // Sum and difference; the format stays this one's unless this one is zero (upstream's rule).
  // Results beyond the representable range saturate.
  Quantity& Add(const Quantity& other);
  Quantity& Sub(const Quantity& other);
  Quantity Neg() const;

  // Numeric comparison; the format plays no part ("1Gi" == "1073741824").
  int Cmp(const Quantity& other) const;
  bool operator==(const Quantity& other) const { return nanos_ == other.nanos_; }
  std::strong_ordering operator<=>(const Quantity& other) const { return nanos_ <=> other.nanos_; }

 private:
  __int128 nanos_ = 0;  // the value times 10^9
  Format format_ = Format::kDecimalSI;
  std::string text_;  // the parsed text when upstream would print it verbatim, else empty
};

}  // namespace orch
