// JSON patch, JSON merge patch and strategic merge patch, following the libraries upstream's API
// server links (evanphx/json-patch v4, k8s.io/apimachinery/pkg/util/strategicpatch).
#include "patch.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace orch::api {

namespace {

#define PATCH_RETURN_IF_ERROR(expr)    \
  do {                                 \
    ::orch::Status status_ = (expr);   \
    if (!status_.ok()) return status_; \
  } while (false)

constexpr std::string_view kJsonPatchContentType = "application/json-patch+json";
constexpr std::string_view kMergePatchContentType = "application/merge-patch+json";
constexpr std::string_view kStrategicContentType = "application/strategic-merge-patch+json";
constexpr std::string_view kApplyContentType = "application/apply-patch+yaml";

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// ---------------------------------------------------------------------------------------------
// JSON merge patch.

// evanphx's pruneNulls: drops null members of objects, at any depth, also inside arrays (whose
// own null items stay).
void PruneNulls(json& v) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end();) {
      if (it->is_null()) {
        it = v.erase(it);
      } else {
        PruneNulls(*it);
        ++it;
      }
    }
  } else if (v.is_array()) {
    for (json& item : v) PruneNulls(item);
  }
}

void MergeDocs(json& doc, const json& patch);

json MergeNode(json cur, const json& patch) {
  if (!cur.is_object()) {
    json replaced = patch;
    PruneNulls(replaced);
    return replaced;
  }
  // A non-object replaces an object as it is (evanphx does not prune there).
  if (!patch.is_object()) return patch;
  MergeDocs(cur, patch);
  return cur;
}

void MergeDocs(json& doc, const json& patch) {
  for (const auto& [key, value] : patch.items()) {
    if (value.is_null()) {
      doc.erase(key);
      continue;
    }
    auto it = doc.find(key);
    if (it == doc.end() || it->is_null()) {
      json added = value;
      PruneNulls(added);
      doc[key] = std::move(added);
    } else {
      *it = MergeNode(std::move(*it), value);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// JSON patch (evanphx/json-patch v4 semantics and messages).

// "~1" then "~0", as v4's decodePatchKey does.
std::string DecodePatchKey(std::string_view part) {
  std::string out;
  out.reserve(part.size());
  for (size_t i = 0; i < part.size(); ++i) {
    if (part[i] == '~' && i + 1 < part.size() && part[i + 1] == '1') {
      out += '/';
      ++i;
    } else {
      out += part[i];
    }
  }
  std::string final_out;
  final_out.reserve(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '~' && i + 1 < out.size() && out[i + 1] == '0') {
      final_out += '~';
      ++i;
    } else {
      final_out += out[i];
    }
  }
  return final_out;
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      parts.push_back(path.substr(start));
      break;
    }
    parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

// Go's strconv.Atoi, with its error text.
Result<int64_t> GoAtoi(std::string_view s) {
  std::string_view digits = s;
  bool negative = false;
  if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) {
    negative = digits[0] == '-';
    digits.remove_prefix(1);
  }
  auto syntax = [&] {
    return InvalidArgument("strconv.Atoi: parsing " + patch_util::GoQuote(s) + ": invalid syntax");
  };
  if (digits.empty()) return syntax();
  uint64_t magnitude = 0;
  bool overflow = false;
  for (char c : digits) {
    if (c < '0' || c > '9') return syntax();
    if (magnitude > (std::numeric_limits<uint64_t>::max() - 9) / 10) overflow = true;
    if (!overflow) magnitude = magnitude * 10 + static_cast<uint64_t>(c - '0');
  }
  const uint64_t limit = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  if (overflow || magnitude > limit) {
    return InvalidArgument("strconv.Atoi: parsing " + patch_util::GoQuote(s) +
                           ": value out of range");
  }
  if (negative)
    return magnitude == (uint64_t{1} << 63) ? std::numeric_limits<int64_t>::min()
                                            : -static_cast<int64_t>(magnitude);
  return static_cast<int64_t>(magnitude);
}

Status InvalidIndex(int64_t idx) {
  return InvalidArgument("Unable to access invalid index: " + std::to_string(idx) +
                         ": invalid index referenced");
}

// The container an operation acts on (an object or an array inside the document) and the
// decoded last segment of the path.
struct Location {
  json* container = nullptr;
  std::string key;
};

// A member or item of a container, or nullptr for a missing member or a null value (v4 holds
// both as a nil node). Errors only for bad array indices.
Result<json*> ContainerGet(json& c, const std::string& key) {
  if (c.is_object()) {
    auto it = c.find(key);
    if (it == c.end() || it->is_null()) return static_cast<json*>(nullptr);
    return &*it;
  }
  auto idx = GoAtoi(key);
  if (!idx.ok()) return idx.status();
  int64_t i = *idx;
  const auto size = static_cast<int64_t>(c.size());
  if (i < 0) {
    if (i < -size) return InvalidIndex(i);
    i += size;
  }
  if (i >= size) return InvalidIndex(i);
  json& item = c[static_cast<size_t>(i)];
  return item.is_null() ? nullptr : &item;
}

Status ContainerAdd(json& c, const std::string& key, json value) {
  if (c.is_object()) {
    c[key] = std::move(value);
    return Status::Ok();
  }
  if (key == "-") {
    c.push_back(std::move(value));
    return Status::Ok();
  }
  auto idx = GoAtoi(key);
  if (!idx.ok()) {
    return InvalidArgument("value was not a proper array index: '" + key +
                           "': " + idx.status().message());
  }
  int64_t i = *idx;
  const auto size = static_cast<int64_t>(c.size()) + 1;
  if (i >= size) return InvalidIndex(i);
  if (i < 0) {
    if (i < -size) return InvalidIndex(i);
    i += size;
  }
  c.insert(c.begin() + i, std::move(value));
  return Status::Ok();
}

Status ContainerSet(json& c, const std::string& key, json value) {
  if (c.is_object()) {
    c[key] = std::move(value);
    return Status::Ok();
  }
  auto idx = GoAtoi(key);
  if (!idx.ok()) return idx.status();
  int64_t i = *idx;
  const auto size = static_cast<int64_t>(c.size());
  if (i < 0) {
    if (i < -size) return InvalidIndex(i);
    i += size;
  }
  if (i >= size) return InvalidIndex(i);
  c[static_cast<size_t>(i)] = std::move(value);
  return Status::Ok();
}

Status ContainerRemove(json& c, const std::string& key) {
  if (c.is_object()) {
    if (c.erase(key) == 0) {
      return InvalidArgument("Unable to remove nonexistent key: " + key + ": missing value");
    }
    return Status::Ok();
  }
  auto idx = GoAtoi(key);
  if (!idx.ok()) return idx.status();
  int64_t i = *idx;
  const auto size = static_cast<int64_t>(c.size());
  if (i >= size) return InvalidIndex(i);
  if (i < 0) {
    if (i < -size) return InvalidIndex(i);
    i += size;
  }
  c.erase(c.begin() + i);
  return Status::Ok();
}

// v4's findObject, except that a path must start with '/' (RFC 6901; v4 would silently drop
// the first segment of "a/b").
std::optional<Location> FindObject(json& doc, const std::string& path) {
  if (path.empty() || path[0] != '/') return std::nullopt;
  if (!doc.is_object() && !doc.is_array()) return std::nullopt;
  std::vector<std::string_view> parts = SplitPath(path);
  json* cur = &doc;
  for (size_t i = 1; i + 1 < parts.size(); ++i) {
    auto next = ContainerGet(*cur, DecodePatchKey(parts[i]));
    if (!next.ok() || *next == nullptr) return std::nullopt;
    if (!(*next)->is_object() && !(*next)->is_array()) return std::nullopt;
    cur = *next;
  }
  return Location{cur, DecodePatchKey(parts.back())};
}

// Operation.Path()/From(): a missing or null field is ErrMissing; a non-string one a decode
// error.
Result<std::string> OpString(const json& op, const char* field, const char* missing) {
  auto it = op.find(field);
  if (it == op.end() || it->is_null()) return InvalidArgument(missing);
  if (!it->is_string()) {
    return InvalidArgument(std::string("json: cannot unmarshal ") + patch_util::JsonTypeName(*it) +
                           " into Go value of type string");
  }
  return it->get<std::string>();
}

constexpr const char* kMissingPath = "operation missing path field: missing value";
constexpr const char* kMissingFrom = "operation, missing from field: missing value";

// The operation's value, or null when it has none (v4 adds a nil node then).
json OpValue(const json& op) {
  auto it = op.find("value");
  return it == op.end() ? json(nullptr) : *it;
}

Status JsonPatchAdd(json& doc, const json& op) {
  auto path = OpString(op, "path", kMissingPath);
  if (!path.ok()) return InvalidArgument("add operation failed to decode path: missing value");
  auto loc = FindObject(doc, *path);
  if (!loc) {
    return InvalidArgument("add operation does not apply: doc is missing path: \"" + *path +
                           "\": missing value");
  }
  Status s = ContainerAdd(*loc->container, loc->key, OpValue(op));
  if (!s.ok()) return InvalidArgument("error in add for path: '" + *path + "': " + s.message());
  return Status::Ok();
}

Status JsonPatchRemove(json& doc, const json& op) {
  auto path = OpString(op, "path", kMissingPath);
  if (!path.ok()) return InvalidArgument("remove operation failed to decode path: missing value");
  auto loc = FindObject(doc, *path);
  if (!loc) {
    return InvalidArgument("remove operation does not apply: doc is missing path: \"" + *path +
                           "\": missing value");
  }
  Status s = ContainerRemove(*loc->container, loc->key);
  if (!s.ok()) return InvalidArgument("error in remove for path: '" + *path + "': " + s.message());
  return Status::Ok();
}

Status JsonPatchReplace(json& doc, const json& op) {
  auto path = OpString(op, "path", kMissingPath);
  if (!path.ok()) {
    return InvalidArgument("replace operation failed to decode path: " + path.status().message());
  }
  if (path->empty()) {
    json value = OpValue(op);
    if (!value.is_object() && !value.is_array()) {
      return InvalidArgument("replace operation value must be object or array");
    }
    doc = std::move(value);
    return Status::Ok();
  }
  auto loc = FindObject(doc, *path);
  if (!loc) {
    return InvalidArgument("replace operation does not apply: doc is missing path: " + *path +
                           ": missing value");
  }
  // v4 only checks that the key can be read: a missing object member is added.
  if (auto got = ContainerGet(*loc->container, loc->key); !got.ok()) {
    return InvalidArgument("replace operation does not apply: doc is missing key: " + *path +
                           ": missing value");
  }
  Status s = ContainerSet(*loc->container, loc->key, OpValue(op));
  if (!s.ok()) return InvalidArgument("error in remove for path: '" + *path + "': " + s.message());
  return Status::Ok();
}

Status JsonPatchMove(json& doc, const json& op) {
  auto from = OpString(op, "from", kMissingFrom);
  if (!from.ok()) {
    return InvalidArgument("move operation failed to decode from: " + from.status().message());
  }
  auto src = FindObject(doc, *from);
  if (!src) {
    return InvalidArgument("move operation does not apply: doc is missing from path: " + *from +
                           ": missing value");
  }
  auto got = ContainerGet(*src->container, src->key);
  if (!got.ok()) {
    return InvalidArgument("error in move for path: '" + src->key + "': " + got.status().message());
  }
  json value = *got == nullptr ? json(nullptr) : **got;
  if (Status s = ContainerRemove(*src->container, src->key); !s.ok()) {
    return InvalidArgument("error in move for path: '" + src->key + "': " + s.message());
  }
  auto path = OpString(op, "path", kMissingPath);
  if (!path.ok()) {
    return InvalidArgument("move operation failed to decode path: " + path.status().message());
  }
  auto dst = FindObject(doc, *path);
  if (!dst) {
    return InvalidArgument("move operation does not apply: doc is missing destination path: " +
                           *path + ": missing value");
  }
  if (Status s = ContainerAdd(*dst->container, dst->key, std::move(value)); !s.ok()) {
    return InvalidArgument("error in move for path: '" + *path + "': " + s.message());
  }
  return Status::Ok();
}

Status JsonPatchTest(json& doc, const json& op) {
  auto path = OpString(op, "path", kMissingPath);
  if (!path.ok()) {
    return InvalidArgument("test operation failed to decode path: " + path.status().message());
  }
  auto failed = [&] { return InvalidArgument("testing value " + *path + " failed: test failed"); };
  auto value_it = op.find("value");
  const bool has_value = value_it != op.end() && !value_it->is_null();
  if (path->empty()) {
    if (has_value && doc == *value_it) return Status::Ok();
    return failed();
  }
  auto loc = FindObject(doc, *path);
  if (!loc) {
    return InvalidArgument("test operation does not apply: is missing path: " + *path +
                           ": missing value");
  }
  auto got = ContainerGet(*loc->container, loc->key);
  if (!got.ok()) {
    return InvalidArgument("error in test for path: '" + *path + "': " + got.status().message());
  }
  if (*got == nullptr) return has_value ? failed() : Status::Ok();
  if (!has_value) return failed();
  return **got == *value_it ? Status::Ok() : failed();
}

Status JsonPatchCopy(json& doc, const json& op, size_t* copied_bytes) {
  auto from = OpString(op, "from", kMissingFrom);
  if (!from.ok()) {
    return InvalidArgument("copy operation failed to decode from: " + from.status().message());
  }
  auto src = FindObject(doc, *from);
  if (!src) {
    return InvalidArgument("copy operation does not apply: doc is missing from path: " + *from +
                           ": missing value");
  }
  auto got = ContainerGet(*src->container, src->key);
  if (!got.ok()) {
    return InvalidArgument("error in copy for from: '" + *from + "': " + got.status().message());
  }
  json value = *got == nullptr ? json(nullptr) : **got;
  auto path = OpString(op, "path", kMissingPath);
  if (!path.ok()) return InvalidArgument("copy operation failed to decode path: missing value");
  auto dst = FindObject(doc, *path);
  if (!dst) {
    return InvalidArgument("copy operation does not apply: doc is missing destination path: " +
                           *path + ": missing value");
  }
  if (*got != nullptr) *copied_bytes += value.dump().size();
  if (*copied_bytes > kMaxJsonPatchCopyBytes) {
    return InvalidArgument(
        "Unable to complete the copy, the accumulated size increase of copy is " +
        std::to_string(*copied_bytes) + ", exceeding the limit " +
        std::to_string(kMaxJsonPatchCopyBytes));
  }
  if (Status s = ContainerAdd(*dst->container, dst->key, std::move(value)); !s.ok()) {
    return InvalidArgument("error while adding value during copy: " + s.message());
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Strategic merge patch.

constexpr std::string_view kDirectiveMarker = "$patch";
constexpr std::string_view kDeleteDirective = "delete";
constexpr std::string_view kReplaceDirective = "replace";
constexpr std::string_view kMergeDirective = "merge";
constexpr std::string_view kRetainKeysStrategy = "retainKeys";
constexpr std::string_view kRetainKeysDirective = "$retainKeys";
constexpr std::string_view kDeleteFromPrimitiveListPrefix = "$deleteFromPrimitiveList";
constexpr std::string_view kSetElementOrderPrefix = "$setElementOrder";

// mergepatch's sentinel errors; the first group is answered 400, the second 422.
constexpr const char* kErrBadJsonDoc = "invalid JSON document";
constexpr const char* kErrBadPatchFormatForPrimitiveList = "invalid patch format of primitive list";
constexpr const char* kErrBadPatchFormatForRetainKeys = "invalid patch format of retainKeys";
constexpr const char* kErrBadPatchFormatForSetElementOrderList =
    "invalid patch format of setElementOrder list";
constexpr const char* kErrUnsupportedStrategicMergePatchFormat =
    "strategic merge patch format is not supported";
constexpr const char* kErrNoListOfLists = "lists of lists are not supported";
constexpr const char* kErrPatchContentNotMatchRetainKeys =
    "patch content doesn't match retainKeys list";

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

// The Go type a decoded JSON value has, as reflect.TypeOf sees it in the upstream code.
enum class GoKind { kNil, kMap, kSlice, kString, kNumber, kBool };

GoKind KindOf(const json& v) {
  switch (v.type()) {
    case json::value_t::object:
      return GoKind::kMap;
    case json::value_t::array:
      return GoKind::kSlice;
    case json::value_t::string:
      return GoKind::kString;
    case json::value_t::boolean:
      return GoKind::kBool;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return GoKind::kNumber;
    default:
      return GoKind::kNil;
  }
}

const char* GoTypeName(const json& v) {
  switch (KindOf(v)) {
    case GoKind::kMap:
      return "map[string]interface {}";
    case GoKind::kSlice:
      return "[]interface {}";
    case GoKind::kString:
      return "string";
    case GoKind::kNumber:
      return v.is_number_float() ? "float64" : "int64";
    case GoKind::kBool:
      return "bool";
    case GoKind::kNil:
      break;
  }
  return "%!s(<nil>)";
}

Status ErrBadArgType(const char* expected, const json& actual) {
  return Internal(std::string("expected a ") + expected + ", but received a " + GoTypeName(actual));
}

Status ErrNoMergeKey(const json& m, const std::string& key) {
  return Internal("map: " + patch_util::GoFormat(m) +
                  " does not contain declared merge key: " + key);
}

Status ErrBadPatchType(const json& directive, const json& m) {
  return Internal("unknown patch type: " + patch_util::GoFormat(directive) +
                  " in map: " + patch_util::GoFormat(m));
}

// A hashable identity for Go's `==` on decoded JSON scalars (numbers compare as float64).
std::string ScalarKey(const json& v) {
  if (v.is_number()) {
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof(buf), v.get<double>());
    std::string key(1, 'n');
    key.append(buf, res.ptr);
    return key;
  }
  return v.dump();
}

// The identity of a list item for ordering and lookups: its merge key's value for maps, the
// item itself otherwise. Missing keys all share one identity (Go compares nil == nil).
std::string ItemKey(const json& item, const std::string& merge_key, bool maps) {
  if (!maps) return ScalarKey(item);
  if (!item.is_object()) return "\x01";
  auto it = item.find(merge_key);
  return it == item.end() ? std::string("\x01") : ScalarKey(*it);
}

// First index of every identity in `list`.
std::unordered_map<std::string, size_t> IndexOf(const json& list, const std::string& merge_key,
                                                bool maps) {
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < list.size(); ++i) index.emplace(ItemKey(list[i], merge_key, maps), i);
  return index;
}

// removeDirectives + discardNullValuesFromPatch for values taken from the patch as they are:
// drops maps carrying `$patch`, null members of maps, and the other directive keys (which
// upstream's typed decoding would drop after the merge). Returns false when `v` itself is a
// directive map that must not be kept.
bool CleanNewValue(json& v) {
  if (v.is_object()) {
    if (v.contains(kDirectiveMarker)) return false;
    for (auto it = v.begin(); it != v.end();) {
      const std::string& key = it.key();
      bool drop = it->is_null() || key == kRetainKeysDirective ||
                  StartsWith(key, std::string(kSetElementOrderPrefix) + "/") ||
                  StartsWith(key, std::string(kDeleteFromPrimitiveListPrefix) + "/");
      if (!drop) drop = !CleanNewValue(*it);
      it = drop ? v.erase(it) : std::next(it);
    }
  } else if (v.is_array()) {
    json kept = json::array();
    for (json& item : v) {
      if (CleanNewValue(item)) kept.push_back(std::move(item));
    }
    v = std::move(kept);
  }
  return true;
}

// The patch metadata of a field: the field's schema, its patch strategy without retainKeys, and
// its merge key.
struct PatchMeta {
  const Schema* schema = nullptr;  // the field's schema (for lists: the items' schema)
  std::string strategy;
  std::string merge_key;
};

const Schema* FieldSchema(const Schema* parent, const std::string& key) {
  if (parent == nullptr) return nullptr;
  if (const Property* p = parent->FindProperty(key)) return p->schema;
  return parent->additional_properties;
}

// extractRetainKeysPatchStrategy: at most two strategies, one of them retainKeys.
Result<std::string> OtherStrategy(const std::string& strategy) {
  std::vector<std::string> parts;
  if (!strategy.empty()) {
    size_t start = 0;
    while (true) {
      size_t comma = strategy.find(',', start);
      parts.push_back(strategy.substr(start, comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  auto unexpected = [&] {
    std::string list;
    for (const std::string& p : parts) list += (list.empty() ? "" : " ") + p;
    return Internal("unexpected patch strategy: [" + list + "]");
  };
  switch (parts.size()) {
    case 0:
      return std::string();
    case 1:
      return parts[0] == kRetainKeysStrategy ? std::string() : parts[0];
    case 2:
      if (parts[0] == kRetainKeysStrategy) return parts[1];
      if (parts[1] == kRetainKeysStrategy) return parts[0];
      return unexpected();
    default:
      return unexpected();
  }
}

Result<PatchMeta> LookupPatchMeta(const Schema* parent, const std::string& key, bool slice) {
  PatchMeta meta;
  const Schema* field = FieldSchema(parent, key);
  if (field == nullptr) return meta;
  auto strategy = OtherStrategy(field->patch_strategy);
  if (!strategy.ok()) return strategy.status();
  meta.strategy = *strategy;
  meta.merge_key = field->patch_merge_key;
  meta.schema = slice ? field->items : field;
  return meta;
}

// extractKey: "$prefix/key" → key.
Result<std::string> ExtractKey(const std::string& s, std::string_view prefix) {
  size_t slash = s.find('/');
  if (slash == std::string::npos || std::string_view(s).substr(0, slash) != prefix) {
    if (prefix == kDeleteFromPrimitiveListPrefix) {
      return InvalidArgument(kErrBadPatchFormatForPrimitiveList);
    }
    return InvalidArgument(kErrBadPatchFormatForSetElementOrderList);
  }
  return s.substr(slash + 1);
}

// sliceElementType: every item of the lists has the same Go type, which is not a list.
Result<GoKind> SliceElementType(const json& a, const json& b) {
  std::optional<GoKind> prev;
  for (const json* list : {&a, &b}) {
    for (const json& v : *list) {
      GoKind k = KindOf(v);
      if (!prev) {
        if (k == GoKind::kSlice) return InvalidArgument(kErrNoListOfLists);
        prev = k;
      } else if (k != *prev || k == GoKind::kNil) {
        return Internal("list element types are not identical: " +
                        patch_util::GoFormat(json::array({a, b})));
      }
    }
  }
  if (!prev) return Internal("no elements in any of the given slices");
  return *prev;
}

class StrategicMerger {
 public:
  Result<json> MergeMap(json original, json patch, const Schema* schema, int depth);

 private:
  Result<json> HandleDirectiveInMergeMap(const json& directive, json patch);
  Status ApplyRetainKeys(json& original, json& patch);
  Status MergeSetElementOrder(json& original, json& patch, const Schema* schema, int depth);
  Result<json> MergeSliceHandler(json original, json patch, const PatchMeta& meta,
                                 bool is_delete_list, int depth);
  Result<json> MergeSlice(json original, json patch, const PatchMeta& meta, bool is_delete_list,
                          int depth);
  Status MergeSliceWithSpecialElements(json& original, json& patch, const std::string& key);
  Status MergeSliceWithoutSpecialElements(json& original, const json& patch, const PatchMeta& meta,
                                          int depth);
};

Result<json> StrategicMerger::HandleDirectiveInMergeMap(const json& directive, json patch) {
  if (patch_util::IsString(directive, kReplaceDirective)) {
    // The whole map is replaced by the patch's map.
    patch.erase(std::string(kDirectiveMarker));
    CleanNewValue(patch);
    return patch;
  }
  if (patch_util::IsString(directive, kDeleteDirective)) return json::object();
  return ErrBadPatchType(directive, patch);
}

Status StrategicMerger::ApplyRetainKeys(json& original, json& patch) {
  auto it = patch.find(kRetainKeysDirective);
  if (it == patch.end()) return Status::Ok();
  json retain = std::move(*it);
  patch.erase(it);
  if (!retain.is_array()) return InvalidArgument(kErrBadPatchFormatForRetainKeys);
  std::unordered_set<std::string> keep;
  for (const json& k : retain) {
    if (k.is_string()) keep.insert(k.get<std::string>());
  }
  for (const auto& [key, value] : patch.items()) {
    if (value.is_null() || StartsWith(key, kDeleteFromPrimitiveListPrefix) ||
        StartsWith(key, kSetElementOrderPrefix)) {
      continue;
    }
    if (!keep.count(key)) return InvalidArgument(kErrBadPatchFormatForRetainKeys);
  }
  for (auto o = original.begin(); o != original.end();) {
    o = keep.count(o.key()) ? std::next(o) : original.erase(o);
  }
  return Status::Ok();
}

// extractToDeleteItems: items with `$patch: delete` go to the second list.
Status SplitDeleteItems(const json& list, json* keep, json* to_delete) {
  *keep = json::array();
  *to_delete = json::array();
  for (const json& v : list) {
    if (!v.is_object()) return ErrBadArgType("map[string]interface {}", v);
    auto d = v.find(kDirectiveMarker);
    if (d != v.end() && patch_util::IsString(*d, kDeleteDirective)) {
      to_delete->push_back(v);
    } else {
      keep->push_back(v);
    }
  }
  return Status::Ok();
}

// validatePatchWithSetOrderList: the patch's items appear in the $setElementOrder list, in its
// relative order.
Status ValidatePatchWithSetOrderList(const json& patch_list, const json& order,
                                     const std::string& merge_key) {
  if (order.empty() || patch_list.empty()) return Status::Ok();
  json non_delete = patch_list;
  if (!merge_key.empty()) {
    json ignored;
    PATCH_RETURN_IF_ERROR(SplitDeleteItems(patch_list, &non_delete, &ignored));
  }
  size_t pi = 0, si = 0;
  while (pi < non_delete.size() && si < order.size()) {
    const json& item = non_delete[pi];
    if (item.is_object() && item.contains(kDirectiveMarker)) {
      ++pi;
      continue;
    }
    bool equal = false;
    if (merge_key.empty()) {
      equal = ScalarKey(item) == ScalarKey(order[si]);
    } else {
      if (!item.is_object()) return ErrBadArgType("map[string]interface {}", item);
      if (!order[si].is_object()) return ErrBadArgType("map[string]interface {}", order[si]);
      auto l = item.find(merge_key);
      if (l == item.end()) return ErrNoMergeKey(item, merge_key);
      auto r = order[si].find(merge_key);
      if (r == order[si].end()) return ErrNoMergeKey(order[si], merge_key);
      equal = ScalarKey(*l) == ScalarKey(*r);
    }
    if (equal) ++pi;
    ++si;
  }
  if (pi < non_delete.size() && si >= order.size()) {
    return Internal("The order in patch list:\n" + patch_util::GoFormat(patch_list) +
                    "\n doesn't match " + std::string(kSetElementOrderPrefix) + " list:\n" +
                    patch_util::GoFormat(order) + "\n");
  }
  return Status::Ok();
}

// partition*ByPresentInList: items of `merged` present in `by` (by merge key for maps) first.
Status PartitionByPresence(const json& merged, const json& by, const std::string& merge_key,
                           json* present, json* absent) {
  *present = json::array();
  *absent = json::array();
  const bool maps = !merge_key.empty();
  std::unordered_set<std::string> in_by;
  for (const json& v : by) {
    if (maps && !v.is_object()) return Internal("value for key is not a map");
    if (maps && !v.contains(merge_key)) continue;
    in_by.insert(ItemKey(v, merge_key, maps));
  }
  for (const json& v : merged) {
    if (maps) {
      if (!v.is_object()) return ErrBadArgType("map[string]interface {}", v);
      if (!v.contains(merge_key)) return ErrNoMergeKey(v, merge_key);
    }
    (in_by.count(ItemKey(v, merge_key, maps)) ? present : absent)->push_back(v);
  }
  return Status::Ok();
}

// normalizeSliceOrder: sorts `to_sort` stably by the position of its items in `order`; for
// maps, `$patch: delete` items go last. Items missing from `order` (which upstream never
// produces) go after the others.
Result<json> NormalizeSliceOrder(const json& to_sort, const json& order,
                                 const std::string& merge_key, bool maps) {
  json items = to_sort;
  json deletes = json::array();
  if (maps) {
    for (const json* list : {&to_sort, &order}) {
      for (const json& item : *list) {
        if (!item.is_object()) return ErrBadArgType("map[string]interface {}", item);
        if (!item.contains(merge_key)) return ErrNoMergeKey(item, merge_key);
      }
    }
    PATCH_RETURN_IF_ERROR(SplitDeleteItems(to_sort, &items, &deletes));
  }
  auto index = IndexOf(order, merge_key, maps);
  std::vector<std::pair<size_t, size_t>> ranks;  // (position in order or max, own position)
  ranks.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    auto it = index.find(ItemKey(items[i], merge_key, maps));
    ranks.emplace_back(it == index.end() ? std::numeric_limits<size_t>::max() : it->second, i);
  }
  std::stable_sort(ranks.begin(), ranks.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  json out = json::array();
  for (const auto& [rank, i] : ranks) out.push_back(std::move(items[i]));
  for (json& d : deletes) out.push_back(std::move(d));
  return out;
}

// normalizeElementOrder + mergeSortedSlice: patch items in patch order, server-only items in
// server order, interleaved so that a server-only item precedes a patch item when the live list
// had it first. Items new to the list therefore come first.
Result<json> NormalizeElementOrder(const json& patch_items, const json& server_only,
                                   const json& patch_order, const json& server_order,
                                   const std::string& merge_key, bool maps) {
  auto right = NormalizeSliceOrder(patch_items, patch_order, merge_key, maps);
  if (!right.ok()) return right.status();
  auto left = NormalizeSliceOrder(server_only, server_order, merge_key, maps);
  if (!left.ok()) return left.status();
  auto index = IndexOf(server_order, merge_key, maps);
  auto position = [&](const json& item) -> std::optional<size_t> {
    auto it = index.find(ItemKey(item, merge_key, maps));
    if (it == index.end()) return std::nullopt;
    return it->second;
  };
  json out = json::array();
  size_t i = 0, j = 0;
  const json& l = *left;
  const json& r = *right;
  while (i < l.size() || j < r.size()) {
    if (i >= l.size()) {
      out.push_back(r[j++]);
    } else if (j >= r.size()) {
      out.push_back(l[i++]);
    } else {
      auto li = position(l[i]);
      auto ri = position(r[j]);
      if (li && ri && *li < *ri) {
        out.push_back(l[i++]);
      } else {
        out.push_back(r[j++]);
      }
    }
  }
  return out;
}

Status StrategicMerger::MergeSetElementOrder(json& original, json& patch, const Schema* schema,
                                             int depth) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : patch.items()) {
    if (StartsWith(key, kSetElementOrderPrefix)) keys.push_back(key);
  }
  for (const std::string& key : keys) {
    json order = std::move(patch[key]);
    patch.erase(key);
    if (!order.is_array()) return ErrBadArgType("[]interface {}", order);
    auto original_key = ExtractKey(key, kSetElementOrderPrefix);
    if (!original_key.ok()) return original_key.status();

    auto o = original.find(*original_key);
    auto p = patch.find(*original_key);
    const bool found_original = o != original.end();
    const bool found_patch = p != patch.end();
    json original_list = json::array();
    json patch_list = json::array();
    if (found_original) {
      if (!o->is_array()) return ErrBadArgType("[]interface {}", *o);
      original_list = *o;
    }
    if (found_patch) {
      if (!p->is_array()) return ErrBadArgType("[]interface {}", *p);
      patch_list = *p;
    }
    auto meta = LookupPatchMeta(schema, *original_key, /*slice=*/true);
    if (!meta.ok()) return meta.status();
    PATCH_RETURN_IF_ERROR(ValidatePatchWithSetOrderList(patch_list, order, meta->merge_key));

    json merged;
    if (found_original && !found_patch) {
      merged = original_list;
    } else if (!found_original && found_patch) {
      merged = patch_list;
      CleanNewValue(merged);
    } else if (found_original && found_patch) {
      auto m = MergeSliceHandler(original_list, patch_list, *meta, false, depth);
      if (!m.ok()) return m.status();
      merged = std::move(*m);
    } else {
      continue;
    }

    json present, absent;
    PATCH_RETURN_IF_ERROR(PartitionByPresence(merged, order, meta->merge_key, &present, &absent));
    auto kind = SliceElementType(original_list, patch_list);
    if (!kind.ok()) return kind.status();
    auto both = NormalizeElementOrder(present, absent, order, original_list, meta->merge_key,
                                      *kind == GoKind::kMap);
    if (!both.ok()) return both.status();
    original[*original_key] = std::move(*both);
    patch.erase(*original_key);
  }
  return Status::Ok();
}

Result<json> StrategicMerger::MergeSliceHandler(json original, json patch, const PatchMeta& meta,
                                                bool is_delete_list, int depth) {
  // Delete lists are handled the same way whatever the field's strategy.
  if (meta.strategy == kMergeDirective || is_delete_list) {
    return MergeSlice(std::move(original), std::move(patch), meta, is_delete_list, depth);
  }
  CleanNewValue(patch);
  return patch;
}

Status StrategicMerger::MergeSliceWithSpecialElements(json& original, json& patch,
                                                      const std::string& key) {
  json without = json::array();
  bool replace = false;
  for (json& v : patch) {
    auto d = v.find(kDirectiveMarker);
    if (d == v.end()) {
      without.push_back(std::move(v));
      continue;
    }
    if (patch_util::IsString(*d, kDeleteDirective)) {
      auto value = v.find(key);
      if (value == v.end()) return ErrNoMergeKey(v, key);
      const std::string target = ScalarKey(*value);
      json kept = json::array();
      for (json& item : original) {
        auto k = item.find(key);
        if (!(k != item.end() && ScalarKey(*k) == target)) kept.push_back(std::move(item));
      }
      original = std::move(kept);
    } else if (patch_util::IsString(*d, kReplaceDirective)) {
      // Keep looking: the other directives of the list are dropped with it.
      replace = true;
    } else if (patch_util::IsString(*d, kMergeDirective)) {
      return Internal("merging lists cannot yet be specified in the patch");
    } else {
      return ErrBadPatchType(*d, v);
    }
  }
  if (replace) {
    for (json& item : without) CleanNewValue(item);
    original = std::move(without);
    patch = json::array();
  } else {
    patch = std::move(without);
  }
  return Status::Ok();
}

Status StrategicMerger::MergeSliceWithoutSpecialElements(json& original, const json& patch,
                                                         const PatchMeta& meta, int depth) {
  const std::string& key = meta.merge_key;
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < original.size(); ++i) {
    auto k = original[i].find(key);
    if (k != original[i].end()) index.emplace(ScalarKey(*k), i);
  }
  for (const json& v : patch) {
    auto value = v.find(key);
    if (value == v.end()) return ErrNoMergeKey(v, key);
    const std::string id = ScalarKey(*value);
    auto found = index.find(id);
    if (found != index.end()) {
      auto merged = MergeMap(std::move(original[found->second]), v, meta.schema, depth + 1);
      if (!merged.ok()) return merged.status();
      original[found->second] = std::move(*merged);
    } else {
      json added = v;
      CleanNewValue(added);
      index.emplace(id, original.size());
      original.push_back(std::move(added));
    }
  }
  return Status::Ok();
}

Result<json> StrategicMerger::MergeSlice(json original, json patch, const PatchMeta& meta,
                                         bool is_delete_list, int depth) {
  if (original.empty() && patch.empty()) return original;
  auto kind = SliceElementType(original, patch);
  if (!kind.ok()) return kind.status();
  const bool maps = *kind == GoKind::kMap;
  json merged;
  if (!maps) {
    if (is_delete_list) {
      std::unordered_set<std::string> doomed;
      for (const json& v : patch) doomed.insert(ScalarKey(v));
      json kept = json::array();
      for (json& v : original) {
        if (!doomed.count(ScalarKey(v))) kept.push_back(std::move(v));
      }
      return kept;
    }
    merged = json::array();
    std::unordered_set<std::string> seen;
    for (const json* list : {&original, &patch}) {
      for (const json& v : *list) {
        if (seen.insert(ScalarKey(v)).second) merged.push_back(v);
      }
    }
  } else {
    if (meta.merge_key.empty()) return Internal("cannot merge lists without merge key for struct");
    PATCH_RETURN_IF_ERROR(MergeSliceWithSpecialElements(original, patch, meta.merge_key));
    merged = original;
    PATCH_RETURN_IF_ERROR(MergeSliceWithoutSpecialElements(merged, patch, meta, depth));
  }
  json present, absent;
  const std::string order_key = maps ? meta.merge_key : std::string();
  PATCH_RETURN_IF_ERROR(PartitionByPresence(merged, patch, order_key, &present, &absent));
  return NormalizeElementOrder(present, absent, patch, original, order_key, maps);
}

Result<json> StrategicMerger::MergeMap(json original, json patch, const Schema* schema, int depth) {
  if (depth > kMaxPatchDepth) {
    return InvalidArgument("patch nests deeper than " + std::to_string(kMaxPatchDepth) + " levels");
  }
  if (auto d = patch.find(kDirectiveMarker); d != patch.end()) {
    json directive = *d;
    return HandleDirectiveInMergeMap(directive, std::move(patch));
  }
  if (!original.is_object()) original = json::object();
  PATCH_RETURN_IF_ERROR(ApplyRetainKeys(original, patch));
  PATCH_RETURN_IF_ERROR(MergeSetElementOrder(original, patch, schema, depth));

  std::vector<std::string> keys;
  keys.reserve(patch.size());
  for (const auto& [key, value] : patch.items()) keys.push_back(key);
  for (const std::string& patch_key : keys) {
    json& patch_value = patch[patch_key];
    std::string key = patch_key;
    bool is_delete_list = false;
    if (StartsWith(key, kDeleteFromPrimitiveListPrefix)) {
      auto k = ExtractKey(key, kDeleteFromPrimitiveListPrefix);
      if (!k.ok()) return k.status();
      key = *k;
      is_delete_list = true;
    }
    if (patch_value.is_null()) {
      original.erase(key);
      continue;
    }
    auto it = original.find(key);
    if (it == original.end() || KindOf(*it) != KindOf(patch_value)) {
      // New or of another type: the patch's value as it is (a delete list has nothing to do).
      if (!is_delete_list) {
        json value = std::move(patch_value);
        if (CleanNewValue(value)) {
          original[key] = std::move(value);
        } else {
          original.erase(key);
        }
      }
      continue;
    }
    switch (KindOf(*it)) {
      case GoKind::kMap: {
        auto meta = LookupPatchMeta(schema, key, /*slice=*/false);
        if (!meta.ok()) return meta.status();
        if (meta->strategy != kReplaceDirective) {
          auto merged = MergeMap(std::move(*it), std::move(patch_value), meta->schema, depth + 1);
          if (!merged.ok()) return merged.status();
          *it = std::move(*merged);
        } else {
          json value = std::move(patch_value);
          CleanNewValue(value);
          *it = std::move(value);
        }
        break;
      }
      case GoKind::kSlice: {
        auto meta = LookupPatchMeta(schema, key, /*slice=*/true);
        if (!meta.ok()) return meta.status();
        auto merged = MergeSliceHandler(std::move(*it), std::move(patch_value), *meta,
                                        is_delete_list, depth + 1);
        if (!merged.ok()) return merged.status();
        *it = std::move(*merged);
        break;
      }
      default:
        *it = std::move(patch_value);
        break;
    }
  }
  return original;
}

}  // namespace

std::optional<PatchType> PatchTypeFromContentType(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  media = Trim(media);
  if (media == kJsonPatchContentType) return PatchType::kJsonPatch;
  if (media == kMergePatchContentType) return PatchType::kMergePatch;
  if (media == kStrategicContentType) return PatchType::kStrategicMergePatch;
  if (media == kApplyContentType) return PatchType::kApplyPatch;
  return std::nullopt;
}

std::string_view ContentTypeOf(PatchType type) {
  switch (type) {
    case PatchType::kJsonPatch:
      return kJsonPatchContentType;
    case PatchType::kMergePatch:
      return kMergePatchContentType;
    case PatchType::kStrategicMergePatch:
      return kStrategicContentType;
    case PatchType::kApplyPatch:
      break;
  }
  return kApplyContentType;
}

std::string UnsupportedPatchTypeMessage(bool custom_resource) {
  std::string message =
      "the body of the request was in an unknown format - accepted media types include: ";
  message += kJsonPatchContentType;
  message += ", ";
  message += kMergePatchContentType;
  message += ", ";
  if (!custom_resource) {
    message += kStrategicContentType;
    message += ", ";
  }
  message += kApplyContentType;
  return message;
}

Status CheckPatchTypeSupported(PatchType type, bool custom_resource) {
  if (custom_resource && type == PatchType::kStrategicMergePatch) {
    return InvalidArgument(UnsupportedPatchTypeMessage(custom_resource));
  }
  return Status::Ok();
}

namespace {

Result<json> MergePatchUnguarded(const json& doc, const json& patch) {
  // Upstream: a patch that is not a JSON object is ErrBadJSONPatch (a top-level array would
  // become the whole object, which no API object can be).
  if (!patch.is_object()) return InvalidArgument("Invalid JSON Patch");
  PATCH_RETURN_IF_ERROR(patch_util::CheckDepth(patch, kMaxPatchDepth, "patch"));
  PATCH_RETURN_IF_ERROR(patch_util::CheckDepth(doc, kMaxPatchDepth, "object"));
  if (!doc.is_object()) {
    json replaced = patch;
    PruneNulls(replaced);
    return replaced;
  }
  json out = doc;
  MergeDocs(out, patch);
  return out;
}

Result<JsonPatch> DecodeJsonPatchUnguarded(const json& body) {
  JsonPatch patch;
  if (body.is_null()) return patch;  // Go decodes `null` into an empty patch
  if (!body.is_array()) {
    return InvalidArgument(std::string("json: cannot unmarshal ") + patch_util::JsonTypeName(body) +
                           " into Go value of type jsonpatch.Patch");
  }
  if (body.size() > kMaxJsonPatchOperations) {
    return TooLarge("The allowed maximum operations in a JSON patch is " +
                    std::to_string(kMaxJsonPatchOperations) + ", got " +
                    std::to_string(body.size()));
  }
  PATCH_RETURN_IF_ERROR(patch_util::CheckDepth(body, kMaxPatchDepth, "patch"));
  for (const json& op : body) {
    if (!op.is_object() && !op.is_null()) {
      return InvalidArgument(std::string("json: cannot unmarshal ") + patch_util::JsonTypeName(op) +
                             " into Go value of type jsonpatch.Operation");
    }
    patch.operations.push_back(op);
  }
  return patch;
}

Result<json> ApplyJsonPatchUnguarded(const json& doc, const JsonPatch& patch) {
  json out = doc;
  size_t copied_bytes = 0;
  const json empty = json::object();
  for (const json& raw_op : patch.operations) {
    const json& op = raw_op.is_object() ? raw_op : empty;
    std::string kind = "unknown";
    if (auto it = op.find("op"); it != op.end() && it->is_string()) kind = it->get<std::string>();
    Status s;
    if (kind == "add") {
      s = JsonPatchAdd(out, op);
    } else if (kind == "remove") {
      s = JsonPatchRemove(out, op);
    } else if (kind == "replace") {
      s = JsonPatchReplace(out, op);
    } else if (kind == "move") {
      s = JsonPatchMove(out, op);
    } else if (kind == "test") {
      s = JsonPatchTest(out, op);
    } else if (kind == "copy") {
      s = JsonPatchCopy(out, op, &copied_bytes);
    } else {
      s = InvalidArgument("Unexpected kind: " + kind);
    }
    if (!s.ok()) return s;
  }
  // `copy` and `add` can stack values; keep the result as shallow as any input must be.
  PATCH_RETURN_IF_ERROR(patch_util::CheckDepth(out, kMaxPatchDepth, "patched object"));
  return out;
}

Result<json> StrategicMergePatchUnguarded(const json& original, const json& patch,
                                          const Schema* schema) {
  if (schema == nullptr) return InvalidArgument(kErrUnsupportedStrategicMergePatchFormat);
  if (patch.is_null()) return original;  // Go decodes `null` into an empty map
  if (!patch.is_object()) {
    return InvalidArgument(std::string("json: cannot unmarshal ") +
                           patch_util::JsonTypeName(patch) +
                           " into Go value of type map[string]interface {}");
  }
  if (!original.is_object()) return InvalidArgument(kErrBadJsonDoc);
  PATCH_RETURN_IF_ERROR(patch_util::CheckDepth(patch, kMaxPatchDepth, "patch"));
  PATCH_RETURN_IF_ERROR(patch_util::CheckDepth(original, kMaxPatchDepth, "object"));
  StrategicMerger merger;
  return merger.MergeMap(original, patch, schema, 1);
}

}  // namespace

// nlohmann::json throws on misuse; a bug must become an error value, not an escaped exception.
template <typename F>
auto Guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return Internal(std::string("patch: unexpected failure: ") + e.what());
  }
}

Result<json> MergePatch(const json& doc, const json& patch) {
  return Guarded([&]() -> Result<json> { return MergePatchUnguarded(doc, patch); });
}

Result<JsonPatch> DecodeJsonPatch(const json& body) {
  return Guarded([&]() -> Result<JsonPatch> { return DecodeJsonPatchUnguarded(body); });
}

Result<json> ApplyJsonPatch(const json& doc, const JsonPatch& patch) {
  return Guarded([&]() -> Result<json> { return ApplyJsonPatchUnguarded(doc, patch); });
}

Result<json> StrategicMergePatch(const json& original, const json& patch, const Schema* schema) {
  return Guarded(
      [&]() -> Result<json> { return StrategicMergePatchUnguarded(original, patch, schema); });
}

bool IsUnprocessablePatchError(const Status& status) {
  return status.code() == StatusCode::kInvalidArgument &&
         (status.message() == kErrNoListOfLists ||
          status.message() == kErrPatchContentNotMatchRetainKeys);
}

namespace patch_util {

namespace {

// Shortest decimal digits of `v` (no sign) and the exponent of the first digit.
void ShortestDigits(double v, std::string* digits, int* exponent) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), std::fabs(v), std::chars_format::scientific);
  std::string_view s(buf, static_cast<size_t>(res.ptr - buf));
  size_t e = s.find('e');
  digits->clear();
  for (char c : s.substr(0, e)) {
    if (c != '.') *digits += c;
  }
  while (digits->size() > 1 && digits->back() == '0') digits->pop_back();
  *exponent = std::atoi(std::string(s.substr(e + 1)).c_str());
}

// Go's shortest float formatting: exponent form when the exponent is below `low` or at least
// `high`; `json_style` trims a leading zero of a negative exponent as encoding/json does.
std::string FormatFloat(double v, int low, int high, bool json_style) {
  if (v == 0) return "0";
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::string digits;
  int exp = 0;
  ShortestDigits(v, &digits, &exp);
  std::string out = v < 0 ? "-" : "";
  if (exp < low || exp >= high) {
    out += digits[0];
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += exp < 0 ? "e-" : "e+";
    std::string e = std::to_string(std::abs(exp));
    if (e.size() < 2 && !(json_style && exp < 0)) e = "0" + e;
    return out + e;
  }
  if (exp < 0) return out + "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  const auto int_len = static_cast<size_t>(exp) + 1;
  if (digits.size() <= int_len) return out + digits + std::string(int_len - digits.size(), '0');
  return out + digits.substr(0, int_len) + "." + digits.substr(int_len);
}

// Numbers as upstream holds them: integral values are int64, the rest float64.
std::string FormatNumber(const json& v, bool json_style) {
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  double d = v.get<double>();
  if (std::trunc(d) == d && std::fabs(d) < 9.2e18) {
    return std::to_string(static_cast<int64_t>(d));
  }
  return json_style ? FormatFloat(d, -6, 21, true) : FormatFloat(d, -4, 21, false);
}

void AppendGoJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  *out += '"';
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        *out += "\\\"";
        continue;
      case '\\':
        *out += "\\\\";
        continue;
      case '\n':
        *out += "\\n";
        continue;
      case '\r':
        *out += "\\r";
        continue;
      case '\t':
        *out += "\\t";
        continue;
      default:
        break;
    }
    if (c < 0x20 || c == '<' || c == '>' || c == '&') {
      *out += "\\u00";
      *out += kHex[c >> 4];
      *out += kHex[c & 0xf];
      continue;
    }
    // U+2028 and U+2029 are escaped too (they end lines in JavaScript).
    if (c == 0xe2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
        (static_cast<unsigned char>(s[i + 2]) == 0xa8 ||
         static_cast<unsigned char>(s[i + 2]) == 0xa9)) {
      *out += static_cast<unsigned char>(s[i + 2]) == 0xa8 ? "\\u2028" : "\\u2029";
      i += 2;
      continue;
    }
    *out += static_cast<char>(c);
  }
  *out += '"';
}

void AppendGoJson(std::string* out, const json& v) {
  switch (v.type()) {
    case json::value_t::object: {
      *out += '{';
      bool first = true;
      for (const auto& [key, value] : v.items()) {
        if (!first) *out += ',';
        first = false;
        AppendGoJsonString(out, key);
        *out += ':';
        AppendGoJson(out, value);
      }
      *out += '}';
      break;
    }
    case json::value_t::array: {
      *out += '[';
      for (size_t i = 0; i < v.size(); ++i) {
        if (i > 0) *out += ',';
        AppendGoJson(out, v[i]);
      }
      *out += ']';
      break;
    }
    case json::value_t::string:
      AppendGoJsonString(out, v.get_ref<const std::string&>());
      break;
    case json::value_t::boolean:
      *out += v.get<bool>() ? "true" : "false";
      break;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      *out += FormatNumber(v, /*json_style=*/true);
      break;
    default:
      *out += "null";
      break;
  }
}

void AppendGoFormat(std::string* out, const json& v) {
  switch (v.type()) {
    case json::value_t::object: {
      *out += "map[";
      bool first = true;
      for (const auto& [key, value] : v.items()) {
        if (!first) *out += ' ';
        first = false;
        *out += key;
        *out += ':';
        AppendGoFormat(out, value);
      }
      *out += ']';
      break;
    }
    case json::value_t::array: {
      *out += '[';
      for (size_t i = 0; i < v.size(); ++i) {
        if (i > 0) *out += ' ';
        AppendGoFormat(out, v[i]);
      }
      *out += ']';
      break;
    }
    case json::value_t::string:
      *out += v.get_ref<const std::string&>();
      break;
    case json::value_t::boolean:
      *out += v.get<bool>() ? "true" : "false";
      break;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      *out += FormatNumber(v, /*json_style=*/false);
      break;
    default:
      *out += "<nil>";
      break;
  }
}

}  // namespace

Status CheckDepth(const json& value, int max_depth, std::string_view what) {
  std::vector<std::pair<const json*, int>> stack{{&value, 1}};
  while (!stack.empty()) {
    auto [node, depth] = stack.back();
    stack.pop_back();
    if (!node->is_structured()) continue;
    if (depth > max_depth) {
      return InvalidArgument(std::string(what) + " nests deeper than " + std::to_string(max_depth) +
                             " levels");
    }
    for (const json& child : *node) stack.emplace_back(&child, depth + 1);
  }
  return Status::Ok();
}

const char* JsonTypeName(const json& value) {
  switch (value.type()) {
    case json::value_t::object:
      return "object";
    case json::value_t::array:
      return "array";
    case json::value_t::string:
      return "string";
    case json::value_t::boolean:
      return "bool";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "number";
    default:
      return "null";
  }
}

std::string GoFormat(const json& value) {
  std::string out;
  AppendGoFormat(&out, value);
  return out;
}

std::string GoJson(const json& value) {
  std::string out;
  AppendGoJson(&out, value);
  return out;
}

bool IsString(const json& value, std::string_view s) {
  return value.is_string() && value.get_ref<const std::string&>() == s;
}

}  // namespace patch_util

}  // namespace orch::api
