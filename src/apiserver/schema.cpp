// SchemaSet bookkeeping (node ownership, name and kind indexes) and the FieldError builders
// that give validation messages upstream's wording.
#include "schema.h"

#include <charconv>
#include <cmath>

namespace orch::api {

const Property* Schema::FindProperty(const std::string& field) const {
  for (const Property& p : properties) {
    if (p.name == field) return &p;
  }
  return nullptr;
}

namespace {

// Go's fmt %v of a float64: strconv 'g' with the shortest precision, which switches to the
// exponent form when the decimal exponent is < -4 or >= 6 (1e+06, 1.5e-05).
std::string GoFloat(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  int exp = std::stoi(sci.substr(e + 1));
  bool neg = !mant.empty() && mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant) {
    if (c != '.') digits += c;
  }
  std::string out = neg ? "-" : "";
  if (exp < -4 || exp >= 6) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += exp < 0 ? "e-" : "e+";
    int a = exp < 0 ? -exp : exp;
    if (a < 10) out += "0";
    out += std::to_string(a);
    return out;
  }
  if (exp < 0) {
    out += "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    return out;
  }
  size_t int_len = static_cast<size_t>(exp) + 1;
  if (digits.size() <= int_len) {
    out += digits + std::string(int_len - digits.size(), '0');
  } else {
    out += digits.substr(0, int_len) + "." + digits.substr(int_len);
  }
  return out;
}

// The "Invalid value: <v>" part: Go prints scalars with %v/%q and everything else as JSON.
std::string BadValue(const json& value) {
  if (value.is_string()) return GoQuote(value.get_ref<const std::string&>());
  return GoFormat(value);
}

FieldError MakeError(const char* reason, const char* label, std::string field,
                     const std::string& value_part, const std::string& detail) {
  FieldError e;
  e.reason = reason;
  e.field = std::move(field);
  e.message = label;
  if (!value_part.empty()) e.message += ": " + value_part;
  if (!detail.empty()) e.message += ": " + detail;
  return e;
}

}  // namespace

std::string GoFormat(const json& value) {
  switch (value.type()) {
    case json::value_t::string:
      return value.get_ref<const std::string&>();
    case json::value_t::number_float:
      return GoFloat(value.get<double>());
    case json::value_t::null:
      return "null";
    default:
      return value.dump();
  }
}

FieldError FieldRequired(std::string field, const std::string& detail) {
  return MakeError("FieldValueRequired", "Required value", std::move(field), "", detail);
}

FieldError FieldForbidden(std::string field, const std::string& detail) {
  return MakeError("FieldValueForbidden", "Forbidden", std::move(field), "", detail);
}

FieldError FieldInvalid(std::string field, const json& value, const std::string& detail) {
  return MakeError("FieldValueInvalid", "Invalid value", std::move(field), BadValue(value), detail);
}

FieldError FieldTypeInvalid(std::string field, const json& value, const std::string& detail) {
  return MakeError("FieldValueTypeInvalid", "Invalid value", std::move(field), BadValue(value),
                   detail);
}

FieldError FieldNotSupported(std::string field, const json& value,
                             const std::vector<std::string>& supported) {
  std::string detail;
  if (!supported.empty()) {
    detail = "supported values: ";
    for (size_t i = 0; i < supported.size(); ++i) {
      if (i > 0) detail += ", ";
      detail += GoQuote(supported[i]);
    }
  }
  return MakeError("FieldValueNotSupported", "Unsupported value", std::move(field), BadValue(value),
                   detail);
}

FieldError FieldTooMany(std::string field, int64_t actual, int64_t max) {
  std::string detail =
      max >= 0 ? "must have at most " + std::to_string(max) + (max == 1 ? " item" : " items")
               : "has too many items";
  return MakeError("FieldValueTooMany", "Too many", std::move(field),
                   actual >= 0 ? std::to_string(actual) : "", detail);
}

FieldError FieldTooLong(std::string field, int64_t max_length) {
  // Since 1.32 upstream counts bytes ("may not be more than 5 bytes"); older releases said
  // "may not be longer than 5". The newer wording is kept.
  std::string detail = max_length >= 0 ? "may not be more than " + std::to_string(max_length) +
                                             (max_length == 1 ? " byte" : " bytes")
                                       : "value is too long";
  return MakeError("FieldValueTooLong", "Too long", std::move(field), "", detail);
}

Schema* SchemaSet::New() {
  nodes_.push_back(std::make_unique<Schema>());
  return nodes_.back().get();
}

const char* SchemaTypeName(Schema::Type type) {
  switch (type) {
    case Schema::Type::kObject:
      return "object";
    case Schema::Type::kArray:
      return "array";
    case Schema::Type::kString:
      return "string";
    case Schema::Type::kInteger:
      return "integer";
    case Schema::Type::kNumber:
      return "number";
    case Schema::Type::kBoolean:
      return "boolean";
    case Schema::Type::kAny:
      break;
  }
  return "";
}

Schema* SchemaSet::AddNamed(Schema* schema) {
  named_[schema->name] = schema;
  for (const auto& gvk : schema->gvks) {
    kinds_.emplace(GvkKey{gvk.group, gvk.version, gvk.kind}, schema);
  }
  return schema;
}

const Schema* SchemaSet::Find(const std::string& full_name) const {
  auto it = named_.find(full_name);
  return it == named_.end() ? nullptr : it->second;
}

const Schema* SchemaSet::FindKind(const std::string& group, const std::string& version,
                                  const std::string& kind) const {
  // The index answers every lookup of nodes registered the documented way; the scan covers
  // callers that attached a gvk after AddNamed, so that a late gvk is slow but never missed.
  auto it = kinds_.find(GvkKey{group, version, kind});
  if (it != kinds_.end()) return it->second;
  for (const auto& [name, schema] : named_) {
    for (const auto& gvk : schema->gvks) {
      if (gvk.group == group && gvk.version == version && gvk.kind == kind) return schema;
    }
  }
  return nullptr;
}

}  // namespace orch::api
