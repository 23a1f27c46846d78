// Schema walks over JSON objects: the decoder's unknown-field and type checks, CRD value
// validation, pruning and defaulting, each with upstream's paths and wording.
#include "schema_validate.h"

#include <cmath>
#include <limits>
#include <regex>
#include <set>

#include "orch/base64.h"
#include "orch/quantity.h"

namespace orch::api {
namespace {

// Path building shared by the walks: "spec" + "replicas" = "spec.replicas"; "[0]" appends bare.
class PathScope {
 public:
  PathScope(std::string& path, std::string_view key) : path_(path), size_(path.size()) {
    if (!path_.empty()) path_ += '.';
    path_ += key;
  }
  PathScope(std::string& path, size_t index) : path_(path), size_(path.size()) {
    path_ += '[';
    path_ += std::to_string(index);
    path_ += ']';
  }
  ~PathScope() { path_.resize(size_); }
  PathScope(const PathScope&) = delete;
  PathScope& operator=(const PathScope&) = delete;

 private:
  std::string& path_;
  size_t size_;
};

bool IsEmbeddedKey(const std::string& key) {
  return key == "apiVersion" || key == "kind" || key == "metadata";
}

// The JSON type name as the OpenAPI validator names it.
const char* JsonTypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "object";
    case json::value_t::array:
      return "array";
    case json::value_t::string:
      return "string";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::number_float:
      return "number";
    default:
      return "integer";
  }
}

bool IsIntegral(const json& v) {
  if (v.is_number_integer()) return true;
  if (!v.is_number_float()) return false;
  double d = v.get<double>();
  return std::isfinite(d) && std::floor(d) == d;
}

// The Go type a schema node decodes into, as the decoder names it in errors ("int32",
// "v1.PodSpec", "[]v1.Container", "map[string]string").
std::string GoTypeName(const Schema& s) {
  const std::string& named = s.TypeName();
  if (!named.empty()) {
    size_t last = named.rfind('.');
    if (last == std::string::npos) return named;
    size_t prev = named.rfind('.', last - 1);
    return named.substr(prev == std::string::npos ? 0 : prev + 1);
  }
  if (s.int_or_string) return "intstr.IntOrString";
  switch (s.type) {
    case Schema::Type::kString:
      if (s.format == "byte") return "[]uint8";
      if (s.format == "quantity") return "resource.Quantity";
      return "string";
    case Schema::Type::kInteger:
      return s.format == "int32" ? "int32" : "int64";
    case Schema::Type::kNumber:
      return "float64";
    case Schema::Type::kBoolean:
      return "bool";
    case Schema::Type::kArray:
      return "[]" + (s.items ? GoTypeName(*s.items) : std::string("interface {}"));
    case Schema::Type::kObject:
      if (s.additional_properties != nullptr) {
        return "map[string]" + GoTypeName(*s.additional_properties);
      }
      return "map[string]interface {}";
    case Schema::Type::kAny:
      break;
  }
  return "interface {}";
}

// The short struct name the decoder reports as the field's owner ("DeploymentSpec").
std::string GoStructName(const Schema& s) {
  const std::string& named = s.TypeName();
  size_t last = named.rfind('.');
  return last == std::string::npos ? named : named.substr(last + 1);
}

// The decoder's description of a JSON value: "string", "number", "bool", "array", "object";
// numbers that fit the kind but not the Go type print themselves ("number 1.5").
const char* GoValueKind(const json& v) {
  switch (v.type()) {
    case json::value_t::string:
      return "string";
    case json::value_t::boolean:
      return "bool";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "object";
    default:
      return "number";
  }
}

// Go's CorruptInputError offset for invalid standard base64 (close to upstream: the first
// byte outside the alphabet, else where the padding goes wrong).
size_t Base64ErrorOffset(const std::string& s) {
  auto in_alphabet = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
  };
  size_t i = 0;
  while (i < s.size() && in_alphabet(s[i])) ++i;
  if (i < s.size() && s[i] != '=') return i;
  if (i == s.size()) return (s.size() / 4) * 4;
  return i;
}

// ---- decoding: unknown fields and type errors ----

class FieldWalker {
 public:
  FieldWalker(ValidationMode mode, bool custom_resource, FieldCheck& out)
      : collect_unknown_(mode != ValidationMode::kIgnore),
        custom_resource_(custom_resource),
        out_(out) {}

  void Walk(const json& v, const Schema& s) {
    if (v.is_null()) return;  // null decodes into anything (the zero value)
    if (!custom_resource_ && !CheckDecode(v, s)) return;
    if (v.is_object()) {
      WalkObject(v, s);
    } else if (v.is_array() && s.items != nullptr) {
      for (size_t i = 0; i < v.size(); ++i) {
        PathScope scope(path_, i);
        Walk(v[i], *s.items);
      }
    }
  }

 private:
  void WalkObject(const json& v, const Schema& s) {
    for (const auto& [key, value] : v.items()) {
      if (const Property* p = s.FindProperty(key); p != nullptr && p->schema != nullptr) {
        PathScope scope(path_, key);
        std::string saved_struct = go_struct_;
        size_t go_size = go_path_.size();
        go_struct_ = GoStructName(s);
        if (!go_path_.empty()) go_path_ += '.';
        go_path_ += key;
        Walk(value, *p->schema);
        go_path_.resize(go_size);
        go_struct_ = std::move(saved_struct);
      } else if (s.additional_properties != nullptr) {
        PathScope scope(path_, key);
        Walk(value, *s.additional_properties);
      } else if (s.KeepsUnknownFields() || (s.embedded_resource && IsEmbeddedKey(key))) {
        continue;
      } else if (collect_unknown_) {
        PathScope scope(path_, key);
        out_.unknown_fields.push_back(path_);
      }
    }
  }

  // False (after recording the error) when `v` cannot decode into `s`; its insides are then
  // not looked at, as the decoder skips them.
  bool CheckDecode(const json& v, const Schema& s) {
    if (s.int_or_string) {
      if (v.is_string() || v.is_number_integer()) return true;
      // IntOrString's own UnmarshalJSON decodes non-strings into an int32, without field context.
      std::string what = GoValueKind(v);
      if (v.is_number()) what += " " + v.dump();
      out_.type_errors.push_back("json: cannot unmarshal " + what + " into Go value of type int32");
      return false;
    }
    if (s.format == "quantity") {
      if (v.is_string() || v.is_number()) {
        auto q = orch::Quantity::FromJson(v);
        if (q.ok()) return true;
        out_.type_errors.push_back(q.status().message());
        return false;
      }
      out_.type_errors.push_back(
          "quantities must match the regular expression "
          "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
      return false;
    }
    bool ok = true;
    bool with_number = false;  // the Go error quotes the number ("number 1.5")
    switch (s.type) {
      case Schema::Type::kAny:
        return true;
      case Schema::Type::kObject:
        ok = v.is_object();
        break;
      case Schema::Type::kArray:
        ok = v.is_array();
        break;
      case Schema::Type::kString:
        ok = v.is_string();
        if (ok && s.format == "byte" && !orch::Base64Decode(v.get_ref<const std::string&>())) {
          out_.type_errors.push_back(
              "illegal base64 data at input byte " +
              std::to_string(Base64ErrorOffset(v.get_ref<const std::string&>())));
          return false;
        }
        break;
      case Schema::Type::kBoolean:
        ok = v.is_boolean();
        break;
      case Schema::Type::kNumber:
        ok = v.is_number();
        break;
      case Schema::Type::kInteger:
        ok = v.is_number();
        if (ok) {
          if (!v.is_number_integer()) {
            ok = false;
          } else if (s.format == "int32") {
            if (v.is_number_unsigned()) {
              ok = v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int32_t>::max());
            } else {
              int64_t i = v.get<int64_t>();
              ok = i >= std::numeric_limits<int32_t>::min() &&
                   i <= std::numeric_limits<int32_t>::max();
            }
          } else if (v.is_number_unsigned()) {
            ok = v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
          }
          with_number = !ok;
        }
        break;
    }
    if (ok) return true;
    std::string what = GoValueKind(v);
    if (with_number) what += " " + v.dump();
    std::string msg = "json: cannot unmarshal " + what;
    if (go_struct_.empty() && go_path_.empty()) {
      msg += " into Go value of type " + GoTypeName(s);
    } else {
      msg += " into Go struct field " + go_struct_ + "." + go_path_ + " of type " + GoTypeName(s);
    }
    out_.type_errors.push_back(std::move(msg));
    return false;
  }

  bool collect_unknown_;
  bool custom_resource_;
  FieldCheck& out_;
  std::string path_;       // spec.containers[0].image
  std::string go_path_;    // spec.containers.image: the decoder's field stack (no indexes, keys)
  std::string go_struct_;  // the struct owning the current field
};

// ---- value validation (kube-openapi's validator, as apiextensions reports it) ----

// Counts UTF-8 code points, as Go's utf8.RuneCountInString does for valid input.
int64_t RuneCount(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

class ValueValidator {
 public:
  explicit ValueValidator(std::vector<FieldError>& errors) : errors_(errors) {}

  void Validate(const json& v, const Schema& s) {
    if (v.is_null()) {
      if (s.nullable || (s.type == Schema::Type::kAny && !s.int_or_string)) return;
      TypeError(v, s);
      return;
    }
    if (!TypeMatches(v, s)) {
      TypeError(v, s);
      return;
    }
    Constraints(v, s);
    if (v.is_object()) {
      for (const auto& [key, value] : v.items()) {
        const Property* p = s.FindProperty(key);
        const Schema* child = p != nullptr ? p->schema : s.additional_properties;
        if (child == nullptr) continue;
        PathScope scope(path_, key);
        Validate(value, *child);
      }
    } else if (v.is_array() && s.items != nullptr) {
      for (size_t i = 0; i < v.size(); ++i) {
        PathScope scope(path_, i);
        Validate(v[i], *s.items);
      }
    }
  }

 private:
  static bool TypeMatches(const json& v, const Schema& s) {
    if (s.int_or_string) return v.is_string() || IsIntegral(v);
    switch (s.type) {
      case Schema::Type::kAny:
        return true;
      case Schema::Type::kObject:
        return v.is_object();
      case Schema::Type::kArray:
        return v.is_array();
      case Schema::Type::kString:
        return v.is_string() || (s.format == "quantity" && v.is_number());
      case Schema::Type::kInteger:
        return IsIntegral(v);
      case Schema::Type::kNumber:
        return v.is_number();
      case Schema::Type::kBoolean:
        return v.is_boolean();
    }
    return true;
  }

  // "spec.x in body <what>", or "<what>" alone at the root (kube-openapi's NoIn forms).
  std::string InBody(const std::string& what) const {
    return path_.empty() ? what : path_ + " in body " + what;
  }

  void TypeError(const json& v, const Schema& s) {
    std::string type = s.int_or_string ? "integer,string" : SchemaTypeName(s.type);
    std::string actual = JsonTypeName(v);
    errors_.push_back(FieldTypeInvalid(path_, actual,
                                       InBody("must be of type " + type + ": " + GoQuote(actual))));
  }

  void Constraints(const json& v, const Schema& s) {
    if (!s.enum_values.empty()) {
      bool found = false;
      for (const json& e : s.enum_values) {
        if (e == v) {
          found = true;
          break;
        }
      }
      if (!found) {
        std::vector<std::string> allowed;
        for (const json& e : s.enum_values) {
          allowed.push_back(e.is_string() ? e.get<std::string>() : e.dump());
        }
        errors_.push_back(FieldNotSupported(path_, v, allowed));
      }
    }
    if (v.is_number()) {
      double d = v.get<double>();
      if (s.minimum) {
        bool bad = s.exclusive_minimum ? d <= *s.minimum : d < *s.minimum;
        if (bad) {
          errors_.push_back(FieldInvalid(
              path_, v,
              InBody(std::string("should be greater than ") +
                     (s.exclusive_minimum ? "" : "or equal to ") + GoFormat(json(*s.minimum)))));
        }
      }
      if (s.maximum) {
        bool bad = s.exclusive_maximum ? d >= *s.maximum : d > *s.maximum;
        if (bad) {
          errors_.push_back(FieldInvalid(
              path_, v,
              InBody(std::string("should be less than ") +
                     (s.exclusive_maximum ? "" : "or equal to ") + GoFormat(json(*s.maximum)))));
        }
      }
    }
    if (v.is_string()) {
      const std::string& str = v.get_ref<const std::string&>();
      int64_t len = (s.min_length || s.max_length) ? RuneCount(str) : 0;
      if (s.max_length && len > *s.max_length)
        errors_.push_back(FieldTooLong(path_, *s.max_length));
      if (s.min_length && len < *s.min_length) {
        errors_.push_back(FieldInvalid(
            path_, v,
            InBody("should be at least " + std::to_string(*s.min_length) + " chars long")));
      }
      if (!s.pattern.empty() && !MatchesPattern(str, s.pattern)) {
        errors_.push_back(FieldInvalid(path_, v, InBody("should match '" + s.pattern + "'")));
      }
    }
    if (v.is_array()) {
      auto n = static_cast<int64_t>(v.size());
      if (s.max_items && n > *s.max_items) errors_.push_back(FieldTooMany(path_, n, *s.max_items));
      if (s.min_items && n < *s.min_items) {
        errors_.push_back(FieldInvalid(
            path_, n, InBody("should have at least " + std::to_string(*s.min_items) + " items")));
      }
      if (s.unique_items) {
        std::set<std::string> seen;
        for (const json& item : v) {
          if (!seen.insert(item.dump()).second) {
            errors_.push_back(FieldInvalid(path_, v, InBody("shouldn't contain duplicates")));
            break;
          }
        }
      }
    }
    if (v.is_object()) {
      auto n = static_cast<int64_t>(v.size());
      if (s.max_properties && n > *s.max_properties) {
        errors_.push_back(FieldTooMany(path_, n, *s.max_properties));
      }
      if (s.min_properties && n < *s.min_properties) {
        errors_.push_back(FieldInvalid(
            path_, n,
            InBody("should have at least " + std::to_string(*s.min_properties) + " properties")));
      }
      for (const std::string& r : s.required) {
        if (!v.contains(r)) {
          PathScope scope(path_, r);
          errors_.push_back(FieldRequired(path_));
        }
      }
    }
    for (const Schema* sub : s.all_of) Validate(v, *sub);
    if (!s.any_of.empty()) {
      bool any = false;
      for (const Schema* sub : s.any_of) any = any || Passes(v, *sub);
      if (!any) {
        errors_.push_back(
            FieldInvalid(path_, v, InBody("must validate at least one schema (anyOf)")));
      }
    }
    if (!s.one_of.empty()) {
      int passing = 0;
      for (const Schema* sub : s.one_of) passing += Passes(v, *sub) ? 1 : 0;
      if (passing != 1) {
        errors_.push_back(
            FieldInvalid(path_, v, InBody("must validate one and only one schema (oneOf)")));
      }
    }
    if (s.not_schema != nullptr && Passes(v, *s.not_schema)) {
      errors_.push_back(FieldInvalid(path_, v, InBody("must not validate the schema (not)")));
    }
  }

  bool Passes(const json& v, const Schema& s) {
    std::vector<FieldError> scratch;
    ValueValidator sub(scratch);
    sub.path_ = path_;
    sub.Validate(v, s);
    return scratch.empty();
  }

  // Go's RE2 and ECMAScript agree on the patterns CRDs use in practice; a pattern std::regex
  // cannot compile never fails a value (the structural check reports it when the CRD is made).
  bool MatchesPattern(const std::string& value, const std::string& pattern) {
    try {
      std::regex re(pattern, std::regex::ECMAScript);
      return std::regex_search(value, re);
    } catch (const std::exception&) {
      return true;
    }
  }

  std::vector<FieldError>& errors_;
  std::string path_;
};

// ---- pruning and defaulting ----

void PruneNode(json& v, const Schema& s, std::string& path, std::vector<std::string>& dropped) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end();) {
      const std::string& key = it.key();
      const Property* p = s.FindProperty(key);
      const Schema* child = p != nullptr ? p->schema : s.additional_properties;
      if (child != nullptr) {
        if (it->is_null() && !child->nullable) {
          it = v.erase(it);
          continue;
        }
        PathScope scope(path, key);
        PruneNode(*it, *child, path, dropped);
      } else if (!s.KeepsUnknownFields() && !(s.embedded_resource && IsEmbeddedKey(key))) {
        PathScope scope(path, key);
        dropped.push_back(path);
        it = v.erase(it);
        continue;
      }
      ++it;
    }
  } else if (v.is_array() && s.items != nullptr) {
    for (size_t i = 0; i < v.size(); ++i) {
      PathScope scope(path, i);
      PruneNode(v[i], *s.items, path, dropped);
    }
  }
}

void DefaultNode(json& v, const Schema& s) {
  if (v.is_object()) {
    for (const Property& p : s.properties) {
      if (p.schema == nullptr || !p.schema->default_value) continue;
      auto it = v.find(p.name);
      if (it == v.end()) {
        v[p.name] = *p.schema->default_value;
      } else if (it->is_null() && !p.schema->nullable) {
        *it = *p.schema->default_value;
      }
    }
    for (auto& [key, value] : v.items()) {
      const Property* p = s.FindProperty(key);
      const Schema* child = p != nullptr ? p->schema : s.additional_properties;
      if (child == nullptr) continue;
      if (p == nullptr && value.is_null() && !child->nullable && child->default_value) {
        value = *child->default_value;
      }
      DefaultNode(value, *child);
    }
  } else if (v.is_array() && s.items != nullptr) {
    const Schema& items = *s.items;
    for (json& item : v) {
      if (item.is_null() && !items.nullable && items.default_value) item = *items.default_value;
      DefaultNode(item, items);
    }
  }
}

}  // namespace

Result<ValidationMode> ParseValidationMode(std::string_view value) {
  if (value.empty() || value == "Warn") return ValidationMode::kWarn;
  if (value == "Strict") return ValidationMode::kStrict;
  if (value == "Ignore") return ValidationMode::kIgnore;
  return InvalidArgument(
      FieldNotSupported("fieldValidation", std::string(value), {"Ignore", "Strict", "Warn"})
          .ToString());
}

std::string FieldCheck::StrictError() const {
  if (unknown_fields.empty()) return "";
  std::string msg = "strict decoding error: ";
  for (size_t i = 0; i < unknown_fields.size(); ++i) {
    if (i > 0) msg += ", ";
    msg += "unknown field " + GoQuote(unknown_fields[i]);
  }
  return msg;
}

FieldCheck ValidateFields(const json& obj, const Schema& schema, ValidationMode mode,
                          const FieldCheckOptions& options) {
  FieldCheck out;
  try {
    FieldWalker walker(mode, options.custom_resource, out);
    walker.Walk(obj, schema);
    if (mode == ValidationMode::kWarn) {
      for (const std::string& f : out.unknown_fields) {
        out.warnings.push_back("unknown field " + GoQuote(f));
      }
    }
  } catch (const std::exception& e) {  // allocation failure; json access is checked above
    out.type_errors.push_back(std::string("internal error checking fields: ") + e.what());
  }
  return out;
}

void ValidateValues(const json& obj, const Schema& schema, std::vector<FieldError>& errors) {
  try {
    ValueValidator validator(errors);
    validator.Validate(obj, schema);
  } catch (const std::exception& e) {
    errors.push_back(FieldInvalid("", "", std::string("internal error: ") + e.what()));
  }
}

std::vector<std::string> Prune(json& obj, const Schema& schema) {
  std::vector<std::string> dropped;
  try {
    std::string path;
    PruneNode(obj, schema, path, dropped);
  } catch (const std::exception&) {
    // Only allocation can fail here; what was pruned so far stays pruned.
  }
  return dropped;
}

void ApplyDefaults(json& obj, const Schema& schema) {
  try {
    DefaultNode(obj, schema);
  } catch (const std::exception&) {
    // Only allocation can fail here; the object keeps the defaults applied so far.
  }
}

}  // namespace orch::api
