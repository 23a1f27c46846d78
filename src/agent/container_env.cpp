// Container environments the kubelet way (container_env.h).
#include "container_env.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "orch/base64.h"
#include "orch/quantity.h"

namespace orch::agent {
namespace {

// SVC-NAME -> SVC_NAME, as upstream names service variables.
std::string EnvName(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// [-._a-zA-Z][-._a-zA-Z0-9]*: the names envFrom keys must have to become variables.
bool IsEnvVarName(const std::string& s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    bool ok = std::isalpha(c) || c == '-' || c == '.' || c == '_' || (i > 0 && std::isdigit(c));
    if (!ok) return false;
  }
  return true;
}

// The declared variables in order of first declaration; a later declaration replaces the value.
class OrderedEnv {
 public:
  void Set(const std::string& name, std::string value) {
    auto [it, inserted] = index_.try_emplace(name, values_.size());
    if (inserted) {
      values_.emplace_back(name, std::move(value));
    } else {
      values_[it->second].second = std::move(value);
    }
  }
  bool Get(const std::string& name, std::string* value) const {
    auto it = index_.find(name);
    if (it == index_.end()) return false;
    *value = values_[it->second].second;
    return true;
  }
  bool Has(const std::string& name) const { return index_.contains(name); }
  EnvList Take() { return std::move(values_); }

 private:
  EnvList values_;
  std::map<std::string, size_t> index_;
};

// The string values of a ConfigMap's data or a Secret's (base64-decoded) data.
std::map<std::string, std::string> DataOf(const json& object, bool secret) {
  std::map<std::string, std::string> out;
  const json& data = At(object, {"data"});
  if (!data.is_object()) return out;
  for (const auto& [key, value] : data.items()) {
    if (!value.is_string()) continue;
    if (secret) {
      auto decoded = Base64Decode(value.get<std::string>());
      if (decoded) out[key] = std::move(*decoded);
    } else {
      out[key] = value.get<std::string>();
    }
  }
  return out;
}

// Fetches a ConfigMap or Secret once per environment; nullptr (not an error) when it is absent
// and optional.
class Sources {
 public:
  Sources(ObjectSource& objects, std::string ns) : objects_(objects), ns_(std::move(ns)) {}

  Result<const std::map<std::string, std::string>*> Get(bool secret, const std::string& name,
                                                        bool optional) {
    auto& cache = secret ? secrets_ : config_maps_;
    if (auto it = cache.find(name); it != cache.end()) return &it->second;
    auto object = secret ? objects_.Secret(ns_, name) : objects_.ConfigMap(ns_, name);
    if (!object.ok()) {
      if (object.status().code() == StatusCode::kNotFound) {
        if (optional) return static_cast<const std::map<std::string, std::string>*>(nullptr);
        return NotFound(fmt::format("{} \"{}\" not found", secret ? "secret" : "configmap", name));
      }
      return object.status();
    }
    auto [it, inserted] = cache.emplace(name, DataOf(**object, secret));
    return &it->second;
  }

 private:
  ObjectSource& objects_;
  std::string ns_;
  std::map<std::string, std::map<std::string, std::string>> config_maps_;
  std::map<std::string, std::map<std::string, std::string>> secrets_;
};

// metadata.labels['key'] -> key; nullopt when `path` is not of the form prefix['key'].
std::optional<std::string> Subscript(const std::string& path, const std::string& prefix) {
  if (path.rfind(prefix + "['", 0) != 0 || path.size() < prefix.size() + 4 ||
      path.compare(path.size() - 2, 2, "']") != 0) {
    return std::nullopt;
  }
  return path.substr(prefix.size() + 2, path.size() - prefix.size() - 4);
}

const json* FindContainer(const json& pod, const std::string& name) {
  for (const char* list : {"containers", "initContainers"}) {
    for (const json& c : Array(pod, {"spec", list})) {
      if (Str(c, {"name"}) == name) return &c;
    }
  }
  return nullptr;
}

}  // namespace

Result<std::string> FieldRefValue(const json& pod, const std::string& path, const EnvContext& ctx) {
  if (path == "metadata.name") return Str(pod, {"metadata", "name"});
  if (path == "metadata.namespace") return Str(pod, {"metadata", "namespace"});
  if (path == "metadata.uid") return Str(pod, {"metadata", "uid"});
  if (auto key = Subscript(path, "metadata.labels")) {
    return Str(At(pod, {"metadata", "labels"}), {key->c_str()});
  }
  if (auto key = Subscript(path, "metadata.annotations")) {
    return Str(At(pod, {"metadata", "annotations"}), {key->c_str()});
  }
  if (path == "spec.nodeName") {
    std::string node = Str(pod, {"spec", "nodeName"});
    return node.empty() ? ctx.node_name : node;
  }
  if (path == "spec.serviceAccountName") return Str(pod, {"spec", "serviceAccountName"});
  if (path == "status.podIP") return ctx.pod_ip;
  if (path == "status.podIPs") {
    std::string joined;
    for (const auto& ip : ctx.pod_ips) joined += (joined.empty() ? "" : ",") + ip;
    return joined.empty() ? ctx.pod_ip : joined;
  }
  if (path == "status.hostIP" || path == "status.hostIPs") return ctx.host_ip;
  return InvalidArgument(fmt::format("unsupported fieldPath: {}", path));
}

std::string ExpandVars(std::string_view input,
                       const std::function<bool(const std::string&, std::string*)>& lookup) {
  std::string out;
  out.reserve(input.size());
  size_t i = 0;
  while (i < input.size()) {
    char c = input[i];
    if (c != '$' || i + 1 >= input.size()) {
      out += c;
      ++i;
      continue;
    }
    char next = input[i + 1];
    if (next == '$') {  // escaped: one literal $
      out += '$';
      i += 2;
    } else if (next == '(') {
      size_t close = input.find(')', i + 2);
      if (close == std::string_view::npos) {  // unterminated: kept as written
        out += "$(";
        i += 2;
        continue;
      }
      std::string name(input.substr(i + 2, close - i - 2));
      std::string value;
      if (lookup(name, &value)) {
        out += value;
      } else {
        out += "$(" + name + ")";
      }
      i = close + 1;
    } else {
      out += '$';
      out += next;
      i += 2;
    }
  }
  return out;
}

void AppendServiceEnv(const json& service, std::map<std::string, std::string>& out) {
  std::string ip = Str(service, {"spec", "clusterIP"});
  if (ip.empty() || ip == "None") return;
  const json& ports = Array(service, {"spec", "ports"});
  std::string name = EnvName(Str(service, {"metadata", "name"}));
  out[name + "_SERVICE_HOST"] = ip;
  if (!ports.empty()) out[name + "_SERVICE_PORT"] = std::to_string(Int(ports[0], {"port"}));
  for (const json& port : ports) {
    std::string port_name = Str(port, {"name"});
    if (!port_name.empty()) {
      out[name + "_SERVICE_PORT_" + EnvName(port_name)] = std::to_string(Int(port, {"port"}));
    }
  }
  std::string host = ip.find(':') != std::string::npos ? "[" + ip + "]" : ip;
  for (size_t i = 0; i < ports.size(); ++i) {
    std::string protocol = Str(ports[i], {"protocol"}, "TCP");
    std::string number = std::to_string(Int(ports[i], {"port"}));
    std::string url = fmt::format("{}://{}:{}", Lower(protocol), host, number);
    if (i == 0) out[name + "_PORT"] = url;
    std::string prefix = fmt::format("{}_PORT_{}_{}", name, number, Upper(protocol));
    out[prefix] = url;
    out[prefix + "_PROTO"] = Lower(protocol);
    out[prefix + "_PORT"] = number;
    out[prefix + "_ADDR"] = ip;
  }
}

Result<std::string> ResourceFieldValue(const json& pod, const json& container, const json& ref,
                                       const EnvContext& ctx) {
  const json* target = &container;
  std::string container_name = Str(ref, {"containerName"});
  if (!container_name.empty()) {
    target = FindContainer(pod, container_name);
    if (target == nullptr) {
      return InvalidArgument(fmt::format("container {} not found", container_name));
    }
  }
  std::string resource = Str(ref, {"resource"});
  auto dot = resource.find('.');
  if (dot == std::string::npos) {
    return InvalidArgument(fmt::format("unsupported container resource: {}", resource));
  }
  std::string kind = resource.substr(0, dot);  // limits | requests
  std::string name = resource.substr(dot + 1);
  if ((kind != "limits" && kind != "requests") ||
      (name != "cpu" && name != "memory" && name != "ephemeral-storage")) {
    return InvalidArgument(fmt::format("unsupported container resource: {}", resource));
  }
  Quantity divisor = Quantity::FromInt(1, Quantity::Format::kDecimalSI);
  if (const json& d = At(ref, {"divisor"}); !d.is_null()) {
    auto parsed = Quantity::FromJson(d);
    if (!parsed.ok()) return parsed.status();
    if (!parsed->IsZero()) divisor = *parsed;
  }
  // A request defaults to the limit, a limit to the node's allocatable amount.
  const json& resources = At(*target, {"resources"});
  const json* value = &At(resources, {kind.c_str(), name.c_str()});
  if (value->is_null() && kind == "requests") value = &At(resources, {"limits", name.c_str()});
  std::optional<Quantity> amount;
  if (!value->is_null()) {
    auto parsed = Quantity::FromJson(*value);
    if (!parsed.ok()) return parsed.status();
    amount = *parsed;
  } else if (kind == "limits") {
    amount = name == "cpu" ? Quantity::FromMilli(ctx.node_cpu_milli, Quantity::Format::kDecimalSI)
             : name == "memory"
                 ? Quantity::FromInt(ctx.node_memory_bytes, Quantity::Format::kBinarySI)
                 : Quantity::FromInt(ctx.node_ephemeral_bytes, Quantity::Format::kBinarySI);
  } else {
    amount = Quantity();
  }
  auto ceil_div = [](int64_t a, int64_t b) { return b <= 0 ? a : (a + b - 1) / b; };
  if (name == "cpu") {
    return std::to_string(ceil_div(amount->MilliValue(), divisor.MilliValue()));
  }
  // Memory and storage divisors below 1 (e.g. "1m") are not meaningful: divide by whole units.
  return std::to_string(ceil_div(amount->Value(), std::max<int64_t>(1, divisor.Value())));
}

Result<EnvResult> BuildEnvironment(const json& pod, const json& container, const EnvContext& ctx,
                                   ObjectSource& objects) {
  const std::string ns = Str(pod, {"metadata", "namespace"});
  EnvResult result;

  // Service links: the `kubernetes` Service of the default namespace always, the Services of
  // the pod's namespace unless enableServiceLinks is false.
  std::map<std::string, std::string> service_env;
  {
    std::map<std::string, ObjectPtr> by_name;
    if (Bool(pod, {"spec", "enableServiceLinks"}, true)) {
      for (const ObjectPtr& s : objects.Services(ns)) by_name[Str(*s, {"metadata", "name"})] = s;
    }
    if (!by_name.contains("kubernetes")) {
      for (const ObjectPtr& s : objects.Services("default")) {
        if (Str(*s, {"metadata", "name"}) == "kubernetes") by_name["kubernetes"] = s;
      }
    }
    for (const auto& [name, service] : by_name) AppendServiceEnv(*service, service_env);
  }

  OrderedEnv declared;
  Sources sources(objects, ns);
  for (const json& from : Array(container, {"envFrom"})) {
    std::string prefix = Str(from, {"prefix"});
    bool secret = At(from, {"secretRef"}).is_object();
    const json& ref = secret ? At(from, {"secretRef"}) : At(from, {"configMapRef"});
    if (!ref.is_object()) continue;
    std::string name = Str(ref, {"name"});
    auto data = sources.Get(secret, name, Bool(ref, {"optional"}));
    if (!data.ok()) return data.status();
    if (*data == nullptr) continue;
    std::vector<std::string> invalid;
    for (const auto& [key, value] : **data) {
      std::string var = prefix + key;
      if (!IsEnvVarName(var)) {
        invalid.push_back(var);
        continue;
      }
      declared.Set(var, value);
    }
    if (!invalid.empty()) {
      std::string keys;
      for (const auto& k : invalid) keys += (keys.empty() ? "" : ", ") + k;
      result.warnings.push_back(fmt::format(
          "Keys [{}] from the EnvFrom {} {}/{} were skipped since they are considered invalid "
          "environment variable names.",
          keys, secret ? "secret" : "configMap", ns, name));
    }
  }

  auto lookup = [&](const std::string& name, std::string* value) {
    if (declared.Get(name, value)) return true;
    auto it = service_env.find(name);
    if (it == service_env.end()) return false;
    *value = it->second;
    return true;
  };
  for (const json& var : Array(container, {"env"})) {
    std::string name = Str(var, {"name"});
    if (name.empty()) continue;
    std::string value = Str(var, {"value"});
    const json& from = At(var, {"valueFrom"});
    if (!value.empty()) {
      value = ExpandVars(value, lookup);
    } else if (from.is_object()) {
      if (const json& f = At(from, {"fieldRef"}); f.is_object()) {
        auto v = FieldRefValue(pod, Str(f, {"fieldPath"}), ctx);
        if (!v.ok()) return v.status();
        value = *v;
      } else if (const json& r = At(from, {"resourceFieldRef"}); r.is_object()) {
        auto v = ResourceFieldValue(pod, container, r, ctx);
        if (!v.ok()) return v.status();
        value = *v;
      } else {
        bool secret = At(from, {"secretKeyRef"}).is_object();
        const json& ref = secret ? At(from, {"secretKeyRef"}) : At(from, {"configMapKeyRef"});
        if (!ref.is_object()) continue;
        bool optional = Bool(ref, {"optional"});
        std::string source = Str(ref, {"name"});
        std::string key = Str(ref, {"key"});
        auto data = sources.Get(secret, source, optional);
        if (!data.ok()) return data.status();
        if (*data == nullptr) continue;
        auto it = (*data)->find(key);
        if (it == (*data)->end()) {
          if (optional) continue;
          return InvalidArgument(fmt::format("couldn't find key {} in {} {}/{}", key,
                                             secret ? "Secret" : "ConfigMap", ns, source));
        }
        value = it->second;
      }
    }
    declared.Set(name, std::move(value));
  }

  result.env = declared.Take();
  std::set<std::string> names;
  for (const auto& [name, value] : result.env) names.insert(name);
  for (const auto& [name, value] : service_env) {
    if (!names.contains(name)) result.env.emplace_back(name, value);
  }
  return result;
}

std::pair<std::vector<std::string>, std::vector<std::string>> ExpandCommandAndArgs(
    const json& container, const EnvList& env) {
  std::map<std::string, std::string> vars;
  for (const auto& [name, value] : env) vars[name] = value;
  auto lookup = [&](const std::string& name, std::string* value) {
    auto it = vars.find(name);
    if (it == vars.end()) return false;
    *value = it->second;
    return true;
  };
  auto expand = [&](const char* field) {
    std::vector<std::string> out;
    for (const json& item : Array(container, {field})) {
      if (item.is_string()) out.push_back(ExpandVars(item.get<std::string>(), lookup));
    }
    return out;
  };
  return {expand("command"), expand("args")};
}

}  // namespace orch::agent
