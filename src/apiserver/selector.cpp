// Implementation of selector.h, following k8s.io/apimachinery (pkg/fields/selector.go) for grammar,
// matching and error text, and k8s.io/kubernetes (pkg/apis/*/v1/conversion.go,
// pkg/registry/*/strategy.go) for the field selectors each built-in kind supports.
#include "selector.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "orch/go_strconv.h"

namespace orch::api {
namespace {

// ---------------------------------------------------------------------------------------------
// Field selectors (fields.ParseSelector).

// Splits on unescaped commas, keeping escapes in the terms.
std::vector<std::string> SplitTerms(std::string_view selector) {
  std::vector<std::string> terms;
  if (selector.empty()) return terms;
  size_t start = 0;
  bool in_slash = false;
  for (size_t i = 0; i < selector.size(); ++i) {
    char c = selector[i];
    if (in_slash) {
      in_slash = false;
    } else if (c == '\\') {
      in_slash = true;
    } else if (c == ',') {
      terms.emplace_back(selector.substr(start, i - start));
      start = i + 1;
    }
  }
  terms.emplace_back(selector.substr(start));
  return terms;
}

// The length of the UTF-8 sequence starting with byte `c` (1 for invalid bytes, as Go's range
// yields one replacement rune per invalid byte).
size_t Utf8Length(unsigned char c) {
  if (c >= 0xF0 && c < 0xF8) return 4;
  if (c >= 0xE0) return c < 0xF0 ? 3 : 1;
  if (c >= 0xC0) return 2;
  return 1;
}

// fields.UnescapeValue.
Result<std::string> UnescapeValue(std::string_view s) {
  if (s.find_first_of("\\,=") == std::string_view::npos) return std::string(s);
  std::string out;
  bool in_slash = false;
  for (size_t i = 0; i < s.size();) {
    size_t len = std::min(Utf8Length(static_cast<unsigned char>(s[i])), s.size() - i);
    std::string_view rune = s.substr(i, len);
    i += len;
    if (in_slash) {
      if (rune == "\\" || rune == "," || rune == "=") {
        out += rune;
      } else {
        return InvalidArgument("invalid field selector: invalid escape sequence: \\" +
                               std::string(rune));
      }
      in_slash = false;
      continue;
    }
    if (rune == "\\") {
      in_slash = true;
    } else if (rune == "," || rune == "=") {
      // Upstream prints the rune with %v, i.e. as its code point number.
      return InvalidArgument(fmt::format("invalid field selector: unescaped character in value: {}",
                                         static_cast<int>(rune[0])));
    } else {
      out += rune;
    }
  }
  if (in_slash) return InvalidArgument("invalid field selector: invalid escape sequence: \\");
  return out;
}

// A JSON value as a field selector sees it: strings as is, numbers and booleans as Go's
// strconv prints them, anything absent or structured as "".
std::string ScalarString(const json* v) {
  if (v == nullptr || v->is_null()) return "";
  if (v->is_string()) return v->get<std::string>();
  if (v->is_boolean()) return v->get<bool>() ? "true" : "false";
  if (v->is_number_integer()) return v->dump();
  if (v->is_number_float()) {
    double d = v->get<double>();
    if (d == static_cast<double>(static_cast<int64_t>(d)))
      return std::to_string(static_cast<int64_t>(d));
    return v->dump();
  }
  return "";
}

const json* Find(const json& obj, std::string_view dotted_path) {
  const json* cur = &obj;
  size_t start = 0;
  while (true) {
    if (!cur->is_object()) return nullptr;
    size_t dot = dotted_path.find('.', start);
    std::string key(dotted_path.substr(start, dot == std::string_view::npos ? dot : dot - start));
    auto it = cur->find(key);
    if (it == cur->end()) return nullptr;
    cur = &*it;
    if (dot == std::string_view::npos) return cur;
    start = dot + 1;
  }
}

FieldRules::Extractor Path(std::string path) {
  return [path = std::move(path)](const json& obj) { return ScalarString(Find(obj, path)); };
}

// A field that upstream always sets, so an absent JSON value reads as the type's zero value.
FieldRules::Extractor PathOr(std::string path, std::string absent) {
  return [path = std::move(path), absent = std::move(absent)](const json& obj) {
    const json* v = Find(obj, path);
    if (v == nullptr || v->is_null()) return absent;
    return ScalarString(v);
  };
}

std::string NotSupported(const std::string& label) {
  return "field label not supported: " + label;
}

// Rules with metadata.name, and metadata.namespace for namespaced kinds.
FieldRules MetadataRules(bool namespaced) {
  FieldRules rules;
  rules.Accept("metadata.name", Path("metadata.name"));
  if (namespaced) rules.Accept("metadata.namespace", Path("metadata.namespace"));
  rules.Reject(NotSupported);
  return rules;
}

std::shared_ptr<const FieldRules> Share(FieldRules rules) {
  return std::make_shared<const FieldRules>(std::move(rules));
}

// runtime.DefaultMetaV1FieldSelectorConversion, for kinds without a conversion of their own.
std::shared_ptr<const FieldRules> DefaultRules() {
  FieldRules rules;
  rules.Accept("metadata.name", Path("metadata.name"));
  rules.Accept("metadata.namespace", Path("metadata.namespace"));
  rules.Reject([](const std::string& label) {
    return GoQuote(label) + " is not a known field selector: only \"metadata.name\", " +
           "\"metadata.namespace\"";
  });
  return Share(std::move(rules));
}

std::map<std::pair<std::string, std::string>, std::shared_ptr<const FieldRules>>
MakeBuiltinRules() {
  std::map<std::pair<std::string, std::string>, std::shared_ptr<const FieldRules>> all;

  // pkg/apis/core/v1/conversion.go + pkg/registry/core/pod/strategy.go (ToSelectableFields).
  FieldRules pods = MetadataRules(true);
  pods.Accept("spec.nodeName", Path("spec.nodeName"))
      .Accept("spec.host", "spec.nodeName", Path("spec.nodeName"))
      .Accept("spec.restartPolicy", Path("spec.restartPolicy"))
      .Accept("spec.schedulerName", Path("spec.schedulerName"))
      .Accept("spec.serviceAccountName", Path("spec.serviceAccountName"))
      .Accept("spec.hostNetwork", PathOr("spec.hostNetwork", "false"))
      .Accept("status.phase", Path("status.phase"))
      .Accept("status.podIP",
              [](const json& pod) {
                // Upstream reads status.podIPs[0], which the API keeps in step with podIP.
                const json* ips = Find(pod, "status.podIPs");
                if (ips != nullptr && ips->is_array() && !ips->empty()) {
                  return ScalarString(Find((*ips)[0], "ip"));
                }
                return ScalarString(Find(pod, "status.podIP"));
              })
      .AcceptUnset("status.podIPs")  // accepted by the conversion, never set by the strategy
      .Accept("status.nominatedNodeName", Path("status.nominatedNodeName"));
  all[{"", "pods"}] = Share(std::move(pods));

  FieldRules nodes = MetadataRules(false);
  nodes.Accept("spec.unschedulable", PathOr("spec.unschedulable", "false"));
  all[{"", "nodes"}] = Share(std::move(nodes));

  FieldRules rcs = MetadataRules(true);
  rcs.Accept("status.replicas", PathOr("status.replicas", "0"));
  all[{"", "replicationcontrollers"}] = Share(std::move(rcs));

  FieldRules events = MetadataRules(true);
  for (const char* f :
       {"kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"}) {
    std::string label = std::string("involvedObject.") + f;
    events.Accept(label, Path(label));
  }
  events.Accept("reason", Path("reason"))
      .Accept("reportingComponent", Path("reportingComponent"))
      .Accept("source",
              [](const json& e) {
                std::string source = ScalarString(Find(e, "source.component"));
                return source.empty() ? ScalarString(Find(e, "reportingComponent")) : source;
              })
      .Accept("type", Path("type"));
  all[{"", "events"}] = Share(std::move(events));

  // pkg/apis/events/v1/conversion.go: the same storage, spelled as events.k8s.io spells it.
  // Selectors see the stored core/v1 form (conversion.h).
  FieldRules new_events = MetadataRules(true);
  for (const char* f :
       {"kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"}) {
    std::string stored = std::string("involvedObject.") + f;
    new_events.Accept(std::string("regarding.") + f, stored, Path(stored));
  }
  new_events.Accept("reason", Path("reason"))
      .Accept("reportingController", "reportingComponent", Path("reportingComponent"))
      .Accept("type", Path("type"));
  all[{"events.k8s.io", "events"}] = Share(std::move(new_events));

  FieldRules namespaces = MetadataRules(false);
  namespaces.Accept("status.phase", Path("status.phase"));
  all[{"", "namespaces"}] = Share(std::move(namespaces));

  FieldRules secrets = MetadataRules(true);
  secrets.Accept("type", Path("type"));
  all[{"", "secrets"}] = Share(std::move(secrets));

  FieldRules services = MetadataRules(true);
  services.Accept("spec.clusterIP", Path("spec.clusterIP")).Accept("spec.type", Path("spec.type"));
  all[{"", "services"}] = Share(std::move(services));

  // pkg/apis/batch/v1/conversion.go words its rejection differently.
  FieldRules jobs = MetadataRules(true);
  jobs.Accept("status.successful", PathOr("status.succeeded", "0"))
      .Reject([](const std::string& label) {
        return "field label " + GoQuote(label) + " not supported for batchv1.Job";
      });
  all[{"batch", "jobs"}] = Share(std::move(jobs));

  FieldRules csrs = MetadataRules(false);
  csrs.Accept("spec.signerName", Path("spec.signerName"));
  all[{"certificates.k8s.io", "certificatesigningrequests"}] = Share(std::move(csrs));
  return all;
}

}  // namespace

// -------------------------------------------------------------------------------------------------
// FieldRules and FieldSelector.

FieldRules& FieldRules::Accept(const std::string& label, const std::string& canonical,
                               Extractor value) {
  aliases_[label] = canonical;
  extractors_[canonical] = std::move(value);
  return *this;
}

FieldRules& FieldRules::AcceptUnset(const std::string& label) {
  aliases_[label] = label;
  return *this;
}

FieldRules& FieldRules::Reject(std::function<std::string(const std::string&)> message) {
  reject_ = std::move(message);
  return *this;
}

Result<std::string> FieldRules::Convert(const std::string& label) const {
  auto it = aliases_.find(label);
  if (it != aliases_.end()) return it->second;
  return InvalidArgument(reject_ ? reject_(label) : NotSupported(label));
}

std::string FieldRules::Value(const json& object, const std::string& canonical) const {
  auto it = extractors_.find(canonical);
  if (it == extractors_.end()) return "";
  return it->second(object);
}

std::shared_ptr<const FieldRules> BuiltinFieldRules(std::string_view group,
                                                    std::string_view resource) {
  // Built once, then only read: safe to share between request threads.
  static const auto* const kRules = new auto(MakeBuiltinRules());
  static const std::shared_ptr<const FieldRules> kDefault = DefaultRules();
  auto it = kRules->find({std::string(group), std::string(resource)});
  return it == kRules->end() ? kDefault : it->second;
}

std::shared_ptr<const FieldRules> CustomResourceFieldRules(
    bool namespaced, const std::vector<std::string>& selectable_fields) {
  FieldRules rules = MetadataRules(namespaced);
  for (const std::string& path : selectable_fields) {
    std::string label = path.starts_with(".") ? path.substr(1) : path;
    rules.Accept(label, Path(label));
  }
  return Share(std::move(rules));
}

Result<FieldSelector> FieldSelector::Parse(std::string_view text,
                                           std::shared_ptr<const FieldRules> rules) {
  std::vector<std::string> parts = SplitTerms(text);
  std::sort(parts.begin(), parts.end());
  FieldSelector s;
  s.rules_ = std::move(rules);
  for (const std::string& part : parts) {
    if (part.empty()) continue;
    // No escaping on the left: the first operator splits, "!=" and "==" before "=".
    std::optional<std::pair<size_t, std::string_view>> split;
    for (size_t i = 0; i < part.size() && !split; ++i) {
      for (std::string_view op : {"!=", "==", "="}) {
        if (std::string_view(part).substr(i).starts_with(op)) {
          split = std::pair(i, op);
          break;
        }
      }
    }
    if (!split) {
      return InvalidArgument(
          fmt::format("invalid selector: '{}'; can't understand '{}'", text, part));
    }
    const auto [at, op] = *split;
    Result<std::string> value = UnescapeValue(std::string_view(part).substr(at + op.size()));
    if (!value.ok()) return value.status();
    s.requirements_.push_back(
        {part.substr(0, at), op == "!=" ? Op::kNotEquals : Op::kEquals, std::move(*value)});
  }
  // The kind's conversion, term by term in sorted order: the first unsupported label fails.
  if (s.rules_ != nullptr) {
    for (Requirement& r : s.requirements_) {
      Result<std::string> canonical = s.rules_->Convert(r.field);
      if (!canonical.ok()) return canonical.status();
      r.field = std::move(*canonical);
    }
  }
  return s;
}

bool FieldSelector::Matches(const json& object) const {
  for (const Requirement& r : requirements_) {
    std::string have =
        rules_ != nullptr ? rules_->Value(object, r.field) : ScalarString(Find(object, r.field));
    if ((have == r.value) != (r.op == Op::kEquals)) return false;
  }
  return true;
}

std::optional<std::string> FieldSelector::RequiresExactMatch(const std::string& field) const {
  for (const Requirement& r : requirements_) {
    if (r.field == field && r.op == Op::kEquals) return r.value;
  }
  return std::nullopt;
}

std::string EscapeFieldValue(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == ',' || c == '=') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace orch::api
