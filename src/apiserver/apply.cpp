// Server-side apply: field sets, the structured merge, pruning, conflicts and the managedFields
// pipeline of upstream's field manager, over JSON objects and the orch schema model.
#include "apply.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>

#include "patch.h"

namespace orch::api {

namespace {

#define APPLY_RETURN_IF_ERROR(expr)    \
  do {                                 \
    ::orch::Status status_ = (expr);   \
    if (!status_.ok()) return status_; \
  } while (false)

constexpr const char* kLastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration";
constexpr const char* kBeforeFirstApply = "before-first-apply";
constexpr const char* kCurrentOperation = "current-operation";
constexpr const char* kAncientChanges = "ancient-changes";
constexpr size_t kMaxUpdateManagers = 10;

// ---------------------------------------------------------------------------------------------
// Path elements and field sets (fieldpath.PathElement / fieldpath.Set).
//
// A path element is kept in its fieldsV1 spelling: "f:name" (field), "k:{\"name\":\"a\"}" (item
// of an associative list, keys sorted), "v:\"x\"" (item of a set), "i:3" (index; never produced
// here, but kept when read).

int PeRank(const std::string& pe) {
  switch (pe.empty() ? '\0' : pe[0]) {
    case 'f':
      return 0;
    case 'k':
      return 1;
    case 'v':
      return 2;
    case 'i':
      return 3;
    default:
      return 4;
  }
}

// Fields first, then keys, values and indices; indices numerically.
struct PeLess {
  bool operator()(const std::string& a, const std::string& b) const {
    int ra = PeRank(a), rb = PeRank(b);
    if (ra != rb) return ra < rb;
    if (ra == 3) {
      long long ia = std::atoll(a.c_str() + 2), ib = std::atoll(b.c_str() + 2);
      if (ia != ib) return ia < ib;
    }
    return a < b;
  }
};

using Path = std::vector<std::string>;

class FieldSet {
 public:
  bool Empty() const { return members_.empty() && children_.empty(); }

  void Insert(const Path& path) {
    if (path.empty()) return;  // nobody owns the whole object
    FieldSet* node = this;
    for (size_t i = 0; i + 1 < path.size(); ++i) node = &node->children_[path[i]];
    node->members_.insert(path.back());
  }

  bool Has(const Path& path) const {
    if (path.empty()) return false;
    const FieldSet* node = this;
    for (size_t i = 0; i + 1 < path.size(); ++i) {
      auto it = node->children_.find(path[i]);
      if (it == node->children_.end()) return false;
      node = &it->second;
    }
    return node->members_.count(path.back()) > 0;
  }

  bool HasMember(const std::string& pe) const { return members_.count(pe) > 0; }

  // The paths below `pe`, without it.
  const FieldSet* Child(const std::string& pe) const {
    auto it = children_.find(pe);
    return it == children_.end() ? nullptr : &it->second;
  }

  FieldSet Union(const FieldSet& o) const {
    FieldSet out = *this;
    out.members_.insert(o.members_.begin(), o.members_.end());
    for (const auto& [pe, sub] : o.children_) {
      auto it = out.children_.find(pe);
      if (it == out.children_.end()) {
        out.children_.emplace(pe, sub);
      } else {
        it->second = it->second.Union(sub);
      }
    }
    return out;
  }

  FieldSet Difference(const FieldSet& o) const {
    FieldSet out;
    for (const std::string& m : members_) {
      if (!o.members_.count(m)) out.members_.insert(m);
    }
    for (const auto& [pe, sub] : children_) {
      auto it = o.children_.find(pe);
      if (it == o.children_.end()) {
        out.children_.emplace(pe, sub);
      } else if (FieldSet d = sub.Difference(it->second); !d.Empty()) {
        out.children_.emplace(pe, std::move(d));
      }
    }
    return out;
  }

  FieldSet Intersection(const FieldSet& o) const {
    FieldSet out;
    for (const std::string& m : members_) {
      if (o.members_.count(m)) out.members_.insert(m);
    }
    for (const auto& [pe, sub] : children_) {
      auto it = o.children_.find(pe);
      if (it == o.children_.end()) continue;
      if (FieldSet i = sub.Intersection(it->second); !i.Empty()) out.children_.emplace(pe, i);
    }
    return out;
  }

  // Removes every path of `o` together with everything below it.
  FieldSet RecursiveDifference(const FieldSet& o) const {
    FieldSet out;
    for (const std::string& m : members_) {
      if (!o.members_.count(m)) out.members_.insert(m);
    }
    for (const auto& [pe, sub] : children_) {
      if (o.members_.count(pe)) continue;
      auto it = o.children_.find(pe);
      if (it == o.children_.end()) {
        out.children_.emplace(pe, sub);
      } else if (FieldSet d = sub.RecursiveDifference(it->second); !d.Empty()) {
        out.children_.emplace(pe, std::move(d));
      }
    }
    return out;
  }

  bool operator==(const FieldSet& o) const {
    return members_ == o.members_ && children_ == o.children_;
  }

  // Every member path, members of a node before its children (Set.Iterate).
  void Iterate(Path& prefix, std::vector<Path>* out) const {
    for (const std::string& m : members_) {
      prefix.push_back(m);
      out->push_back(prefix);
      prefix.pop_back();
    }
    for (const auto& [pe, sub] : children_) {
      prefix.push_back(pe);
      sub.Iterate(prefix, out);
      prefix.pop_back();
    }
  }

  // The fieldsV1 encoding: {"f:a":{".":{},"f:b":{}}}.
  json ToFieldsV1(bool include_self = false) const {
    json out = json::object();
    if (include_self) out["."] = json::object();
    for (const std::string& m : members_) {
      if (!children_.count(m)) out[m] = json::object();
    }
    for (const auto& [pe, sub] : children_) out[pe] = sub.ToFieldsV1(members_.count(pe) > 0);
    return out;
  }

  const std::set<std::string, PeLess>& members() const { return members_; }
  const std::map<std::string, FieldSet, PeLess>& children() const { return children_; }
  std::set<std::string, PeLess>& mutable_members() { return members_; }
  std::map<std::string, FieldSet, PeLess>& mutable_children() { return children_; }

 private:
  std::set<std::string, PeLess> members_;
  std::map<std::string, FieldSet, PeLess> children_;
};

// Canonical spelling of a path element read from fieldsV1; nullopt for element types this
// version does not know (upstream drops those).
Result<std::optional<std::string>> CanonicalPe(const std::string& key) {
  if (key.size() < 2) return InvalidArgument("key must be 2 characters long:");
  if (key[1] != ':') return InvalidArgument("missing colon: " + key);
  const std::string body = key.substr(2);
  switch (key[0]) {
    case 'f':
      return std::optional<std::string>(key);
    case 'v':
    case 'k': {
      json v = json::parse(body, nullptr, /*allow_exceptions=*/false);
      if (v.is_discarded() || (key[0] == 'k' && !v.is_object())) {
        return InvalidArgument("parsing key as path element: invalid " + key.substr(0, 1) +
                               " element " + patch_util::GoQuote(body));
      }
      return std::optional<std::string>(key.substr(0, 2) + patch_util::GoJson(v));
    }
    case 'i': {
      if (body.empty() || body.find_first_not_of("-0123456789") != std::string::npos) {
        return InvalidArgument("strconv.Atoi: parsing " + patch_util::GoQuote(body) +
                               ": invalid syntax");
      }
      return std::optional<std::string>("i:" + std::to_string(std::atoll(body.c_str())));
    }
    default:
      return std::optional<std::string>();
  }
}

// readIterV1: the set below one node, and whether the node itself is a member.
Status ReadFieldsV1(const json& node, FieldSet* children, bool* is_member, int depth) {
  if (!node.is_object()) {
    return InvalidArgument(std::string("expected an object, got ") +
                           patch_util::JsonTypeName(node));
  }
  if (depth > kMaxPatchDepth) return InvalidArgument("fieldsV1 nests too deeply");
  bool any_child = false;
  *is_member = false;
  for (const auto& [key, value] : node.items()) {
    if (key == ".") {
      *is_member = true;
      continue;
    }
    auto pe = CanonicalPe(key);
    if (!pe.ok()) return pe.status();
    if (!pe->has_value()) continue;
    FieldSet grandchildren;
    bool child_is_member = false;
    APPLY_RETURN_IF_ERROR(ReadFieldsV1(value, &grandchildren, &child_is_member, depth + 1));
    if (child_is_member) {
      children->mutable_members().insert(**pe);
      any_child = true;
    }
    if (!grandchildren.Empty()) {
      FieldSet& slot = children->mutable_children()[**pe];
      slot = slot.Union(grandchildren);
      any_child = true;
    }
  }
  if (!any_child) *is_member = true;
  return Status::Ok();
}

Result<FieldSet> FieldSetFromFieldsV1(const json& fields) {
  FieldSet set;
  bool ignored = false;
  APPLY_RETURN_IF_ERROR(ReadFieldsV1(fields, &set, &ignored, 1));
  return set;
}

// value.ToString: how a key value prints in a path.
std::string ValueString(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::string:
      return patch_util::GoQuote(v.get_ref<const std::string&>());
    case json::value_t::array: {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + ValueString(v[i]);
      return out + "]";
    }
    case json::value_t::object: {
      std::string out;
      for (const auto& [k, item] : v.items()) out += k + "=" + ValueString(item);
      return out;
    }
    default:
      return patch_util::GoFormat(v);
  }
}

// Path.String(): .spec.containers[name="web"].image
std::string PathString(const Path& path) {
  std::string out;
  for (const std::string& pe : path) {
    const std::string body = pe.size() >= 2 ? pe.substr(2) : std::string();
    switch (pe.empty() ? '\0' : pe[0]) {
      case 'f':
        out += "." + body;
        break;
      case 'k': {
        json keys = json::parse(body, nullptr, false);
        out += "[";
        bool first = true;
        if (keys.is_object()) {
          for (const auto& [k, v] : keys.items()) {
            out += (first ? "" : ",") + k + "=" + ValueString(v);
            first = false;
          }
        }
        out += "]";
        break;
      }
      case 'v':
        out += "[=" + ValueString(json::parse(body, nullptr, false)) + "]";
        break;
      case 'i':
        out += "[" + body + "]";
        break;
      default:
        out += "{{invalid path element}}";
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Types: how structured-merge-diff sees a schema node.

enum class Mode {
  kTyped,    // a schema node
  kDeduced,  // no schema: maps granular, lists atomic (__untyped_deduced_)
  kAtomic,   // inside an untyped list: everything atomic (__untyped_atomic_)
  kNone,     // an unresolvable type (EnsureNamedFieldsAreMembers below values and indices)
};

struct Type {
  const Schema* schema = nullptr;
  Mode mode = Mode::kDeduced;
};

Type TypeOf(const Schema* schema) {
  return schema != nullptr ? Type{schema, Mode::kTyped} : Type{nullptr, Mode::kDeduced};
}

enum class Atom { kScalar, kMap, kList };

// A typed node that behaves like an untyped one: `any`, preserve-unknown-fields without fields.
bool IsUntypedSchema(const Schema* s) {
  if (s->type != Schema::Type::kAny) return false;
  return s->properties.empty() && s->additional_properties == nullptr && s->items == nullptr;
}

Atom AtomFromValue(const json* v) {
  if (v != nullptr && v->is_object()) return Atom::kMap;
  if (v != nullptr && v->is_array()) return Atom::kList;
  return Atom::kScalar;
}

// The atom handling `v` (deduceAtom): fixed by the schema for typed nodes, by the value
// otherwise. A null or absent value of an untyped node is treated as a scalar.
Atom ResolveAtom(Type t, const json* v) {
  if (t.mode == Mode::kTyped && !IsUntypedSchema(t.schema)) {
    switch (t.schema->type) {
      case Schema::Type::kObject:
        return Atom::kMap;
      case Schema::Type::kArray:
        return Atom::kList;
      case Schema::Type::kAny:
        if (!t.schema->properties.empty() || t.schema->additional_properties != nullptr) {
          return Atom::kMap;
        }
        return t.schema->items != nullptr ? Atom::kList : AtomFromValue(v);
      default:
        // A scalar schema: a map or list value is invalid; treat it as one value.
        return Atom::kScalar;
    }
  }
  return AtomFromValue(v);
}

bool MapIsAtomic(Type t) {
  if (t.mode == Mode::kAtomic) return true;
  return t.mode == Mode::kTyped && t.schema->map_type == "atomic";
}

Type FieldType(Type t, const std::string& key) {
  if (t.mode == Mode::kTyped) {
    if (const Property* p = t.schema->FindProperty(key)) return TypeOf(p->schema);
    if (t.schema->additional_properties != nullptr) {
      return TypeOf(t.schema->additional_properties);
    }
    return Type{nullptr, Mode::kDeduced};
  }
  if (t.mode == Mode::kAtomic) return Type{nullptr, Mode::kAtomic};
  return Type{nullptr, t.mode == Mode::kNone ? Mode::kNone : Mode::kDeduced};
}

bool IsDeclaredField(Type t, const std::string& key) {
  return t.mode == Mode::kTyped && t.schema->FindProperty(key) != nullptr;
}

struct ListInfo {
  bool atomic = true;
  std::vector<std::string> keys;  // empty and !atomic: a set of scalars
  Type element;
};

ListInfo ListInfoOf(Type t) {
  ListInfo info;
  if (t.mode != Mode::kTyped) {
    info.element = Type{nullptr, Mode::kAtomic};
    return info;
  }
  const Schema* s = t.schema;
  info.element = TypeOf(s->items);
  switch (s->list_type) {
    case Schema::ListType::kAtomic:
      return info;
    case Schema::ListType::kSet:
      info.atomic = false;
      return info;
    case Schema::ListType::kMap:
      info.atomic = s->list_map_keys.empty();
      info.keys = s->list_map_keys;
      return info;
    case Schema::ListType::kNone:
      break;
  }
  // Without x-kubernetes-list-type, lists with a merge patch strategy are associative
  // (kube-openapi's schemaconv), keyed by the patch merge key if there is one.
  if (s->patch_strategy.find("merge") != std::string::npos) {
    info.atomic = false;
    if (!s->patch_merge_key.empty()) info.keys = {s->patch_merge_key};
  }
  return info;
}

std::string GoQuotedList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    out += (i ? " " : "") + patch_util::GoQuote(items[i]);
  }
  return out + "]";
}

// listItemToPathElement.
Result<std::string> ItemPathElement(const ListInfo& info, const json& item) {
  if (!info.keys.empty()) {
    if (item.is_null())
      return InvalidArgument("associative list with keys may not have a null element");
    if (!item.is_object()) {
      return InvalidArgument("associative list with keys may not have non-map elements");
    }
    json key = json::object();
    for (const std::string& name : info.keys) {
      if (auto it = item.find(name); it != item.end()) {
        key[name] = *it;
        continue;
      }
      // A key field left out takes its default, as the defaulted object will have it.
      if (info.element.mode == Mode::kTyped) {
        const Property* p = info.element.schema->FindProperty(name);
        if (p != nullptr && p->schema != nullptr && p->schema->default_value) {
          key[name] = *p->schema->default_value;
        }
      }
    }
    if (key.empty()) {
      return InvalidArgument(
          "associative list with keys has an element that omits all key fields " +
          GoQuotedList(info.keys) + " (and doesn't have default values for any key fields)");
    }
    return "k:" + patch_util::GoJson(key);
  }
  if (item.is_object()) {
    return InvalidArgument("associative list without keys has an element that's a map type");
  }
  if (item.is_array()) {
    return InvalidArgument("not supported: associative list with lists as elements");
  }
  if (item.is_null()) {
    return InvalidArgument("associative list without keys has an element that's an explicit null");
  }
  return "v:" + patch_util::GoJson(item);
}

Status ElementError(const Path& path, size_t index, const Status& cause) {
  return InvalidArgument(PathString(path) + ": element " + std::to_string(index) + ": " +
                         cause.message());
}

// The path elements of a granular list's items, in order.
Result<std::vector<std::string>> ItemPathElements(const ListInfo& info, const json& list,
                                                  const Path& path) {
  std::vector<std::string> pes;
  pes.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    auto pe = ItemPathElement(info, list[i]);
    if (!pe.ok()) return ElementError(path, i, pe.status());
    pes.push_back(std::move(*pe));
  }
  return pes;
}

bool IsEmptyCollection(const json* v) {
  return v == nullptr || v->is_null() || ((v->is_array() || v->is_object()) && v->empty());
}

// ---------------------------------------------------------------------------------------------
// ToFieldSet: the fields a value sets.

Status ToFieldSet(const json& v, Type t, Path& path, FieldSet& set, bool strict) {
  switch (ResolveAtom(t, &v)) {
    case Atom::kScalar:
      set.Insert(path);
      return Status::Ok();
    case Atom::kList: {
      ListInfo info = ListInfoOf(t);
      if (info.atomic) {
        set.Insert(path);
        return Status::Ok();
      }
      if (!v.is_array()) return Status::Ok();
      auto pes = ItemPathElements(info, v, path);
      if (!pes.ok()) return pes.status();
      std::unordered_map<std::string, int> count;
      for (const std::string& pe : *pes) ++count[pe];
      for (size_t i = 0; i < v.size(); ++i) {
        const std::string& pe = (*pes)[i];
        path.push_back(pe);
        if (count[pe] > 1) {
          // Duplicates (allowed in live objects) are owned as a whole.
          if (strict) {
            path.pop_back();
            return InvalidArgument(PathString(path) + ": duplicate entries for key " +
                                   PathString({pe}));
          }
          set.Insert(path);
        } else {
          APPLY_RETURN_IF_ERROR(ToFieldSet(v[i], info.element, path, set, strict));
          set.Insert(path);
        }
        path.pop_back();
      }
      return Status::Ok();
    }
    case Atom::kMap: {
      if (MapIsAtomic(t)) {
        set.Insert(path);
        return Status::Ok();
      }
      if (!v.is_object()) return Status::Ok();
      for (const auto& [key, value] : v.items()) {
        path.push_back("f:" + key);
        APPLY_RETURN_IF_ERROR(ToFieldSet(value, FieldType(t, key), path, set, strict));
        if (value.is_null() || (value.is_object() && value.empty()) || !IsDeclaredField(t, key)) {
          set.Insert(path);
        }
        path.pop_back();
      }
      return Status::Ok();
    }
  }
  return Status::Ok();
}

Result<FieldSet> FieldSetOf(const json& v, Type t, bool strict) {
  FieldSet set;
  Path path;
  APPLY_RETURN_IF_ERROR(ToFieldSet(v, t, path, set, strict));
  return set;
}

// ---------------------------------------------------------------------------------------------
// Merge: the applied configuration (rhs) over the live object (lhs); rhs wins at the leaves.

Result<std::optional<json>> Merge(const json* lhs, const json* rhs, Type t, Path& path);

Result<std::optional<json>> MergeListItems(const json* lhs, const json* rhs, const ListInfo& info,
                                           Path& path) {
  static const json kNull;
  static const json kEmpty = json::array();
  const json& l = (lhs != nullptr && lhs->is_array()) ? *lhs : kEmpty;
  const json& r = (rhs != nullptr && rhs->is_array()) ? *rhs : kEmpty;

  auto rhs_pes = ItemPathElements(info, r, path);
  if (!rhs_pes.ok()) return rhs_pes.status();
  auto lhs_pes = ItemPathElements(info, l, path);
  if (!lhs_pes.ok()) return lhs_pes.status();

  // The configuration may not repeat a key; the live object may (its duplicates merge as
  // null, that is: the configuration's item replaces them).
  std::unordered_map<std::string, const json*> observed_rhs, observed_lhs;
  for (size_t i = 0; i < r.size(); ++i) {
    if (!observed_rhs.emplace((*rhs_pes)[i], &r[i]).second) {
      return InvalidArgument(PathString(path) + ": duplicate entries for key " +
                             PathString({(*rhs_pes)[i]}));
    }
  }
  for (size_t i = 0; i < l.size(); ++i) {
    auto [it, inserted] = observed_lhs.emplace((*lhs_pes)[i], &l[i]);
    if (!inserted) it->second = &kNull;
  }

  std::vector<const std::string*> shared_order;
  for (const std::string& pe : *rhs_pes) {
    if (observed_lhs.count(pe)) shared_order.push_back(&pe);
  }
  size_t shared_next = 0;
  auto next_shared = [&]() -> const std::string* {
    return shared_next < shared_order.size() ? shared_order[shared_next] : nullptr;
  };
  const std::string* nextShared = next_shared();
  auto advance_shared = [&] {
    ++shared_next;
    nextShared = next_shared();
  };

  json out = json::array();
  std::unordered_map<std::string, bool> merged_rhs;
  auto merge_item = [&](const std::string& pe, const json* lc, const json* rc) -> Status {
    path.push_back(pe);
    auto m = Merge(lc, rc, info.element, path);
    path.pop_back();
    if (!m.ok()) return m.status();
    if (m->has_value()) out.push_back(std::move(**m));
    return Status::Ok();
  };
  auto lookup = [](const std::unordered_map<std::string, const json*>& m,
                   const std::string& pe) -> const json* {
    auto it = m.find(pe);
    return it == m.end() ? nullptr : it->second;
  };

  const size_t l_len = lhs_pes->size(), r_len = rhs_pes->size();
  size_t li = 0, ri = 0;
  while (li < l_len || ri < r_len) {
    if (li < l_len && ri < r_len) {
      const std::string& pe = (*lhs_pes)[li];
      if (pe == (*rhs_pes)[ri]) {
        merged_rhs[pe] = true;
        APPLY_RETURN_IF_ERROR(merge_item(pe, lookup(observed_lhs, pe), lookup(observed_rhs, pe)));
        ++li;
        ++ri;
        advance_shared();
        continue;
      }
      if (observed_rhs.count(pe) && nextShared != nullptr && *nextShared != pe) {
        // A shared item, but not the one due now: it comes when the configuration has it.
        ++li;
        continue;
      }
    }
    if (li < l_len) {
      const std::string& pe = (*lhs_pes)[li];
      if (!observed_rhs.count(pe)) {
        APPLY_RETURN_IF_ERROR(merge_item(pe, &l[li], nullptr));
        ++li;
        continue;
      }
      if (merged_rhs.count(pe)) ++li;
    }
    if (ri < r_len) {
      const std::string& pe = (*rhs_pes)[ri];
      merged_rhs[pe] = true;
      APPLY_RETURN_IF_ERROR(merge_item(pe, lookup(observed_lhs, pe), lookup(observed_rhs, pe)));
      ++ri;
      if (nextShared != nullptr && *nextShared == pe) advance_shared();
    }
  }
  if (out.empty()) return std::optional<json>();
  return std::optional<json>(std::move(out));
}

Result<std::optional<json>> Merge(const json* lhs, const json* rhs, Type t, Path& path) {
  const Atom atom = rhs != nullptr ? ResolveAtom(t, rhs) : ResolveAtom(t, lhs);
  auto leaf = [&]() -> Result<std::optional<json>> {
    return std::optional<json>(rhs != nullptr ? *rhs : *lhs);
  };
  switch (atom) {
    case Atom::kScalar:
      return leaf();
    case Atom::kList: {
      ListInfo info = ListInfoOf(t);
      if (info.atomic || (IsEmptyCollection(lhs) && IsEmptyCollection(rhs))) return leaf();
      return MergeListItems(lhs, rhs, info, path);
    }
    case Atom::kMap: {
      if (MapIsAtomic(t) || (IsEmptyCollection(lhs) && IsEmptyCollection(rhs))) return leaf();
      const json* l = (lhs != nullptr && lhs->is_object()) ? lhs : nullptr;
      const json* r = (rhs != nullptr && rhs->is_object()) ? rhs : nullptr;
      json out = json::object();
      auto merge_key = [&](const std::string& key, const json* lv, const json* rv) -> Status {
        path.push_back("f:" + key);
        auto m = Merge(lv, rv, FieldType(t, key), path);
        path.pop_back();
        if (!m.ok()) return m.status();
        if (m->has_value()) out[key] = std::move(**m);
        return Status::Ok();
      };
      if (l != nullptr) {
        for (const auto& [key, value] : l->items()) {
          const json* rv = nullptr;
          if (r != nullptr) {
            auto it = r->find(key);
            if (it != r->end()) rv = &*it;
          }
          APPLY_RETURN_IF_ERROR(merge_key(key, &value, rv));
        }
      }
      if (r != nullptr) {
        for (const auto& [key, value] : r->items()) {
          if (l != nullptr && l->contains(key)) continue;
          APPLY_RETURN_IF_ERROR(merge_key(key, nullptr, &value));
        }
      }
      if (out.empty()) return std::optional<json>();
      return std::optional<json>(std::move(out));
    }
  }
  return leaf();
}

// ---------------------------------------------------------------------------------------------
// Compare: the fields added, modified and removed between two versions of an object.

struct Comparison {
  FieldSet added, modified, removed;

  Comparison Filtered(const FieldSet& reset) const {
    if (reset.Empty()) return *this;
    return {added.RecursiveDifference(reset), modified.RecursiveDifference(reset),
            removed.RecursiveDifference(reset)};
  }
};

Status Compare(const json* lhs, const json* rhs, Type t, Path& path, Comparison& cmp);

// One atom's view of the pair; true when it was a leaf.
Result<bool> CompareAtom(Atom atom, const json* lhs, const json* rhs, Type t, Path& path,
                         Comparison& cmp) {
  auto leaf = [&] {
    if (lhs == nullptr) {
      cmp.added.Insert(path);
    } else if (rhs == nullptr) {
      cmp.removed.Insert(path);
    } else if (*lhs != *rhs) {
      cmp.modified.Insert(path);
    }
    return true;
  };
  switch (atom) {
    case Atom::kScalar:
      return leaf();
    case Atom::kList: {
      ListInfo info = ListInfoOf(t);
      if (info.atomic || (IsEmptyCollection(lhs) && IsEmptyCollection(rhs))) return leaf();
      static const json kEmpty = json::array();
      const json& l = (lhs != nullptr && lhs->is_array()) ? *lhs : kEmpty;
      const json& r = (rhs != nullptr && rhs->is_array()) ? *rhs : kEmpty;
      auto lpes = ItemPathElements(info, l, path);
      if (!lpes.ok()) return lpes.status();
      auto rpes = ItemPathElements(info, r, path);
      if (!rpes.ok()) return rpes.status();
      std::vector<std::string> all;
      std::unordered_map<std::string, std::vector<const json*>> lvals, rvals;
      for (size_t i = 0; i < l.size(); ++i) {
        auto& slot = lvals[(*lpes)[i]];
        if (slot.empty()) all.push_back((*lpes)[i]);
        slot.push_back(&l[i]);
      }
      for (size_t i = 0; i < r.size(); ++i) {
        auto& slot = rvals[(*rpes)[i]];
        if (slot.empty() && !lvals.count((*rpes)[i])) all.push_back((*rpes)[i]);
        slot.push_back(&r[i]);
      }
      for (const std::string& pe : all) {
        const auto& ll = lvals[pe];
        const auto& rl = rvals[pe];
        path.push_back(pe);
        Status s;
        if (ll.size() <= 1 && rl.size() <= 1) {
          s = Compare(ll.empty() ? nullptr : ll[0], rl.empty() ? nullptr : rl[0], info.element,
                      path, cmp);
        } else if (ll.size() >= 2 && rl.size() >= 2) {
          bool same = ll.size() == rl.size();
          for (size_t i = 0; same && i < ll.size(); ++i) same = *ll[i] == *rl[i];
          if (!same) cmp.modified.Insert(path);
        } else if (ll.size() >= 2) {
          if (!rl.empty()) s = Compare(nullptr, rl[0], info.element, path, cmp);
          cmp.removed.Insert(path);
        } else {
          if (!ll.empty()) s = Compare(ll[0], nullptr, info.element, path, cmp);
          cmp.added.Insert(path);
        }
        path.pop_back();
        if (!s.ok()) return s;
      }
      return false;
    }
    case Atom::kMap: {
      if (MapIsAtomic(t) || (IsEmptyCollection(lhs) && IsEmptyCollection(rhs))) return leaf();
      const json* l = (lhs != nullptr && lhs->is_object()) ? lhs : nullptr;
      const json* r = (rhs != nullptr && rhs->is_object()) ? rhs : nullptr;
      auto visit = [&](const std::string& key, const json* lv, const json* rv) -> Status {
        path.push_back("f:" + key);
        Status s = Compare(lv, rv, FieldType(t, key), path, cmp);
        path.pop_back();
        return s;
      };
      if (l != nullptr) {
        for (const auto& [key, value] : l->items()) {
          const json* rv = nullptr;
          if (r != nullptr) {
            auto it = r->find(key);
            if (it != r->end()) rv = &*it;
          }
          APPLY_RETURN_IF_ERROR(visit(key, &value, rv));
        }
      }
      if (r != nullptr) {
        for (const auto& [key, value] : r->items()) {
          if (l != nullptr && l->contains(key)) continue;
          APPLY_RETURN_IF_ERROR(visit(key, nullptr, &value));
        }
      }
      return false;
    }
  }
  return leaf();
}

Status Compare(const json* lhs, const json* rhs, Type t, Path& path, Comparison& cmp) {
  const Atom al = ResolveAtom(t, lhs);
  const Atom ar = ResolveAtom(t, rhs);
  bool in_leaf = false;
  if (rhs == nullptr) {
    auto r = CompareAtom(al, lhs, rhs, t, path, cmp);
    if (!r.ok()) return r.status();
    in_leaf = *r;
  } else if (lhs == nullptr || al == ar) {
    auto r = CompareAtom(ar, lhs, rhs, t, path, cmp);
    if (!r.ok()) return r.status();
    in_leaf = *r;
  } else {
    // An untyped value changed shape: both views report.
    auto first = CompareAtom(al, lhs, rhs, t, path, cmp);
    if (!first.ok()) return first.status();
    auto second = CompareAtom(ar, lhs, rhs, t, path, cmp);
    if (!second.ok()) return second.status();
    in_leaf = *second;
  }
  if (!in_leaf) {
    if (lhs == nullptr) {
      cmp.added.Insert(path);
    } else if (rhs == nullptr) {
      cmp.removed.Insert(path);
    }
  }
  return Status::Ok();
}

Result<Comparison> CompareObjects(const json& lhs, const json& rhs, Type t) {
  Comparison cmp;
  Path path;
  APPLY_RETURN_IF_ERROR(Compare(&lhs, &rhs, t, path, cmp));
  return cmp;
}

// ---------------------------------------------------------------------------------------------
// RemoveItems and EnsureNamedFieldsAreMembers (pruning).

json RemoveItems(const json& v, const FieldSet& to_remove, Type t) {
  switch (ResolveAtom(t, &v)) {
    case Atom::kScalar:
      return v;
    case Atom::kList: {
      ListInfo info = ListInfoOf(t);
      if (!v.is_array() || v.empty() || info.atomic) return nullptr;
      json items = json::array();
      for (const json& item : v) {
        auto pe = ItemPathElement(info, item);
        if (!pe.ok()) {
          items.push_back(item);
          continue;
        }
        if (to_remove.HasMember(*pe)) continue;
        const FieldSet* sub = to_remove.Child(*pe);
        items.push_back(sub != nullptr ? RemoveItems(item, *sub, info.element) : item);
      }
      return items.empty() ? json(nullptr) : items;
    }
    case Atom::kMap: {
      if (!v.is_object() || v.empty() || MapIsAtomic(t)) return nullptr;
      json out = json::object();
      for (const auto& [key, value] : v.items()) {
        const std::string pe = "f:" + key;
        if (to_remove.HasMember(pe)) continue;
        const FieldSet* sub = to_remove.Child(pe);
        out[key] = sub != nullptr ? RemoveItems(value, *sub, FieldType(t, key)) : value;
      }
      return out.empty() ? json(nullptr) : out;
    }
  }
  return v;
}

// Adds the declared fields that have children in the set as members, so that removing them
// removes their whole subtree. Only typed nodes declare fields; below anything untyped nothing
// is added.
FieldSet EnsureNamedFieldsAreMembers(const FieldSet& s, Type t) {
  FieldSet out;
  out.mutable_members() = s.members();
  const bool typed = t.mode == Mode::kTyped;
  const Atom atom = typed ? ResolveAtom(t, nullptr) : Atom::kScalar;
  for (const auto& [pe, sub] : s.children()) {
    Type child{nullptr, Mode::kNone};
    if (typed && atom == Atom::kMap && pe.rfind("f:", 0) == 0) {
      const std::string name = pe.substr(2);
      if (IsDeclaredField(t, name)) out.mutable_members().insert(pe);
      child = FieldType(t, name);
    } else if (typed && atom == Atom::kList && pe.rfind("k:", 0) == 0) {
      child = ListInfoOf(t).element;
    }
    out.mutable_children()[pe] = EnsureNamedFieldsAreMembers(sub, child);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Managers: the decoded managedFields.

struct ManagedEntry {
  std::string manager;
  std::string operation;  // "Apply" or "Update"
  std::string api_version;
  std::string subresource;
  std::optional<std::string> time;
  FieldSet set;

  bool applied() const { return operation == "Apply"; }
};

// BuildManagerIdentifier: the JSON of the entry without time and fields (and without
// apiVersion for appliers, who keep one identity across versions).
std::string ManagerId(const std::string& manager, const std::string& operation,
                      const std::string& api_version, const std::string& subresource) {
  std::string id = "{\"manager\":" + patch_util::GoJson(manager) +
                   ",\"operation\":" + patch_util::GoJson(operation);
  if (operation != "Apply" && !api_version.empty()) {
    id += ",\"apiVersion\":" + patch_util::GoJson(api_version);
  }
  if (!subresource.empty()) id += ",\"subresource\":" + patch_util::GoJson(subresource);
  return id + "}";
}

std::string IdOf(const ManagedEntry& e) {
  return ManagerId(e.manager, e.operation, e.api_version, e.subresource);
}

using Managed = std::map<std::string, ManagedEntry>;  // by manager identifier

std::string StringMember(const json& entry, const char* key) {
  auto it = entry.find(key);
  return it != entry.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<Managed> DecodeManagedFields(const json& managed_fields) {
  Managed managed;
  if (managed_fields.is_null()) return managed;
  if (!managed_fields.is_array()) return InvalidArgument("managedFields must be a list");
  for (size_t i = 0; i < managed_fields.size(); ++i) {
    const json& e = managed_fields[i];
    if (!e.is_object())
      return InvalidArgument("managed fields entry " + std::to_string(i) + " is not an object");
    ManagedEntry entry;
    entry.manager = StringMember(e, "manager");
    entry.operation = StringMember(e, "operation");
    entry.api_version = StringMember(e, "apiVersion");
    entry.subresource = StringMember(e, "subresource");
    if (entry.operation != "Apply" && entry.operation != "Update") {
      return InvalidArgument("operation must be `Apply` or `Update`");
    }
    if (entry.api_version.empty()) return InvalidArgument("apiVersion must not be empty");
    const std::string fields_type = StringMember(e, "fieldsType");
    if (fields_type.empty()) {
      return InvalidArgument("missing fieldsType in managed fields entry " + std::to_string(i));
    }
    if (fields_type != "FieldsV1") {
      return InvalidArgument("invalid fieldsType " + patch_util::GoQuote(fields_type) +
                             " in managed fields entry " + std::to_string(i));
    }
    if (auto t = e.find("time"); t != e.end() && t->is_string()) entry.time = t->get<std::string>();
    if (auto f = e.find("fieldsV1"); f != e.end() && !f->is_null()) {
      auto set = FieldSetFromFieldsV1(*f);
      if (!set.ok()) {
        return InvalidArgument("error decoding versioned set: error decoding set: " +
                               set.status().message());
      }
      entry.set = std::move(*set);
    }
    managed[IdOf(entry)] = std::move(entry);
  }
  return managed;
}

json EncodeManagedFields(const Managed& managed) {
  std::vector<const ManagedEntry*> entries;
  for (const auto& [id, e] : managed) entries.push_back(&e);
  // sortEncodedManagedFields: operation, time, manager, apiVersion, subresource. RFC 3339 UTC
  // times order as strings; a missing time is the epoch.
  std::sort(entries.begin(), entries.end(), [](const ManagedEntry* p, const ManagedEntry* q) {
    if (p->operation != q->operation) return p->operation < q->operation;
    const std::string pt = p->time.value_or(""), qt = q->time.value_or("");
    if (pt != qt) return pt < qt;
    if (p->manager != q->manager) return p->manager < q->manager;
    if (p->api_version != q->api_version) return p->api_version < q->api_version;
    return p->subresource < q->subresource;
  });
  json out = json::array();
  for (const ManagedEntry* e : entries) {
    json j = {{"manager", e->manager},
              {"operation", e->operation},
              {"apiVersion", e->api_version},
              {"fieldsType", "FieldsV1"},
              {"fieldsV1", e->set.ToFieldsV1()}};
    if (e->time) j["time"] = *e->time;
    if (!e->subresource.empty()) j["subresource"] = e->subresource;
    out.push_back(std::move(j));
  }
  return out;
}

void SetManagedFields(json& obj, const Managed& managed) {
  if (!obj.is_object()) return;
  if (managed.empty()) {
    auto m = obj.find("metadata");
    if (m != obj.end() && m->is_object()) m->erase("managedFields");
    return;
  }
  if (!obj.contains("metadata") || !obj["metadata"].is_object()) obj["metadata"] = json::object();
  obj["metadata"]["managedFields"] = EncodeManagedFields(managed);
}

const json* MetadataField(const json& obj, const char* field) {
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return nullptr;
  auto f = m->find(field);
  return f == m->end() ? nullptr : &*f;
}

json WithoutManagedFields(const json& obj) {
  json copy = obj;
  if (copy.is_object()) {
    auto m = copy.find("metadata");
    if (m != copy.end() && m->is_object()) m->erase("managedFields");
  }
  return copy;
}

// Drops null members of maps: the typed decoding upstream does after the merge omits them.
void DropNullMembers(json& v) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end();) {
      if (it->is_null()) {
        it = v.erase(it);
      } else {
        DropNullMembers(*it);
        ++it;
      }
    }
  } else if (v.is_array()) {
    for (json& item : v) DropNullMembers(item);
  }
}

// The fields nobody owns through managedFields (stripMetaManager).
const FieldSet& StripSet() {
  static const FieldSet set = [] {
    FieldSet s;
    s.Insert({"f:apiVersion"});
    s.Insert({"f:kind"});
    s.Insert({"f:metadata"});
    for (const char* f : {"name", "namespace", "creationTimestamp", "selfLink", "uid",
                          "clusterName", "generation", "managedFields", "resourceVersion"}) {
      s.Insert({"f:metadata", std::string("f:") + f});
    }
    return s;
  }();
  return set;
}

void StripMeta(Managed& managed, const std::string& id) {
  auto it = managed.find(id);
  if (it == managed.end()) return;
  it->second.set = it->second.set.Difference(StripSet());
  if (it->second.set.Empty()) managed.erase(it);
}

FieldSet ResetSet(const FieldManagerOptions& options) {
  FieldSet reset;
  for (const auto& fields : options.reset_fields) {
    Path path;
    for (const std::string& f : fields) path.push_back("f:" + f);
    reset.Insert(path);
  }
  return reset;
}

std::string GroupVersionKindString(const std::string& api_version, const std::string& kind) {
  size_t slash = api_version.find('/');
  std::string group = slash == std::string::npos ? "" : api_version.substr(0, slash);
  std::string version = slash == std::string::npos ? api_version : api_version.substr(slash + 1);
  return group + "/" + version + ", Kind=" + kind;
}

// objectGVKNN of upstream's messages: "default/web; apps/v1, Kind=Deployment".
std::string ObjectName(const json& obj) {
  auto meta = [&](const char* f) {
    const json* v = MetadataField(obj, f);
    return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
  };
  return meta("namespace") + "/" + meta("name") + "; " +
         GroupVersionKindString(StringMember(obj, "apiVersion"), StringMember(obj, "kind"));
}

// ---------------------------------------------------------------------------------------------
// The field manager: Updater.update/Update/Apply/prune of structured-merge-diff, wrapped as
// k8s.io/apimachinery's managers wrap them.

class FieldManager {
 public:
  FieldManager(const Schema* schema, const FieldManagerOptions& options)
      : root_(TypeOf(schema)), options_(options), reset_(ResetSet(options)) {}

  // updater.update: other managers lose the fields this change modified or added (conflicts
  // when !force) and every field it removed.
  Result<Comparison> UpdateOthers(const json& live, const json& next, Managed& managed,
                                  const std::string& self, bool force,
                                  std::vector<std::pair<std::string, FieldSet>>* conflicts) {
    auto cmp = CompareObjects(live, next, root_);
    if (!cmp.ok()) return Internal("failed to compare objects: " + cmp.status().message());
    Comparison filtered = cmp->Filtered(reset_);
    const FieldSet changed = filtered.modified.Union(filtered.added);
    std::vector<std::pair<std::string, FieldSet>> found;
    for (const auto& [id, entry] : managed) {
      if (id == self) continue;
      FieldSet c = entry.set.Intersection(changed);
      if (!c.Empty()) found.emplace_back(id, std::move(c));
    }
    if (!force && !found.empty()) {
      *conflicts = std::move(found);
      return *cmp;
    }
    for (const auto& [id, c] : found) managed[id].set = managed[id].set.Difference(c);
    if (!filtered.removed.Empty()) {
      for (auto& [id, entry] : managed) {
        if (id != self) entry.set = entry.set.Difference(filtered.removed);
      }
    }
    for (auto it = managed.begin(); it != managed.end();) {
      it = it->second.set.Empty() ? managed.erase(it) : std::next(it);
    }
    return filtered;
  }

  // The Update chain for one write by `manager` (buildManagerInfo, managedFieldsUpdater,
  // stripMeta, structured Update), then capManagers.
  Status UpdateWrite(const json& live, const json& next, Managed& managed,
                     const std::string& manager) {
    const std::string id = ManagerId(manager.empty() ? "unknown" : manager, "Update",
                                     options_.api_version, options_.subresource);
    std::vector<std::pair<std::string, FieldSet>> ignored;
    auto cmp = UpdateOthers(live, next, managed, kCurrentOperation, /*force=*/true, &ignored);
    if (!cmp.ok()) return cmp.status();
    FieldSet set = cmp->modified.Union(cmp->added);
    set = set.Difference(StripSet());
    if (!set.Empty()) {
      ManagedEntry& entry = managed[id];
      const bool existed = !entry.manager.empty();
      entry.set = existed ? set.Union(entry.set) : set;
      entry.manager = manager.empty() ? "unknown" : manager;
      entry.operation = "Update";
      entry.api_version = options_.api_version;
      entry.subresource = options_.subresource;
      entry.time = options_.now;
    }
    CapUpdateManagers(managed);
    return Status::Ok();
  }

  struct ApplyOutcome {
    json object;  // merged and pruned, nulls still in
    std::vector<std::pair<std::string, FieldSet>> conflicts;
  };

  // Updater.Apply.
  Result<ApplyOutcome> StructuredApply(const json& live, const json& config, Managed& managed,
                                       const std::string& id, const std::string& manager,
                                       bool force) {
    auto config_set = FieldSetOf(config, root_, /*strict=*/true);
    if (!config_set.ok()) {
      return Internal("failed to create typed patch object (" + ObjectName(config) +
                      "): " + config_set.status().message());
    }
    if (auto live_set = FieldSetOf(live, root_, /*strict=*/false); !live_set.ok()) {
      return Internal("failed to create typed live object (" + ObjectName(live) +
                      "): " + live_set.status().message());
    }
    Path path;
    auto merged = Merge(&live, &config, root_, path);
    if (!merged.ok()) return Internal("failed to merge config: " + merged.status().message());
    json object = merged->value_or(json::object());

    std::optional<FieldSet> last;
    if (auto it = managed.find(id); it != managed.end()) last = it->second.set;
    ManagedEntry& entry = managed[id];
    entry.manager = manager;
    entry.operation = "Apply";
    entry.api_version = options_.api_version;
    entry.subresource = options_.subresource;
    entry.set = config_set->RecursiveDifference(reset_);

    if (last && !last->Empty()) {
      auto pruned = Prune(object, managed, *last);
      if (!pruned.ok()) return Internal("failed to prune fields: " + pruned.status().message());
      object = std::move(*pruned);
    }
    ApplyOutcome outcome;
    auto cmp = UpdateOthers(live, object, managed, id, force, &outcome.conflicts);
    if (!cmp.ok()) return cmp.status();
    outcome.object = std::move(object);
    return outcome;
  }

  const Type& root() const { return root_; }

 private:
  // Updater.prune: removes what the manager applied last time and no longer applies, unless
  // another manager (or its new configuration) owns it.
  Result<json> Prune(const json& merged, const Managed& managed, const FieldSet& last) {
    const FieldSet last_named = EnsureNamedFieldsAreMembers(last, root_);
    json pruned = RemoveItems(merged, last_named, root_);
    if (pruned.is_null()) pruned = json::object();

    // addBackOwnedItems
    FieldSet owned;
    for (const auto& [id, entry] : managed) owned = owned.Union(entry.set);
    auto merged_set = FieldSetOf(merged, root_, false);
    if (!merged_set.ok()) return merged_set.status();
    auto pruned_set = FieldSetOf(pruned, root_, false);
    if (!pruned_set.ok()) return pruned_set.status();
    const FieldSet merged_named = EnsureNamedFieldsAreMembers(*merged_set, root_);
    FieldSet keep = EnsureNamedFieldsAreMembers(*pruned_set, root_)
                        .Union(EnsureNamedFieldsAreMembers(owned, root_));
    pruned = RemoveItems(merged, merged_named.Difference(keep), root_);
    if (pruned.is_null()) pruned = json::object();

    // addBackDanglingItems: only what this manager applied before may go.
    auto pruned_set2 = FieldSetOf(pruned, root_, false);
    if (!pruned_set2.ok()) return pruned_set2.status();
    FieldSet gone = merged_named.Difference(EnsureNamedFieldsAreMembers(*pruned_set2, root_))
                        .Intersection(last_named);
    json out = RemoveItems(merged, gone, root_);
    return out.is_null() ? json::object() : out;
  }

  // capManagersManager: at most kMaxUpdateManagers Update entries; the oldest merge into
  // "ancient-changes" (one per apiVersion).
  void CapUpdateManagers(Managed& managed) {
    std::vector<std::string> updaters;
    for (const auto& [id, e] : managed) {
      if (!e.applied()) updaters.push_back(id);
    }
    if (updaters.size() <= kMaxUpdateManagers) return;
    std::sort(updaters.begin(), updaters.end(), [&](const std::string& a, const std::string& b) {
      const std::string ta = managed[a].time.value_or(""), tb = managed[b].time.value_or("");
      if (ta != tb) return ta < tb;
      return a < b;
    });
    std::map<std::string, std::string> version_to_first;
    size_t length = updaters.size();
    for (size_t i = 0; i < updaters.size() && length > kMaxUpdateManagers; ++i) {
      const std::string& id = updaters[i];
      ManagedEntry entry = managed[id];
      const std::string bucket = ManagerId(kAncientChanges, "Update", entry.api_version, "");
      auto first = version_to_first.find(entry.api_version);
      if (first == version_to_first.end()) {
        version_to_first[entry.api_version] = id;
        continue;
      }
      if (!managed.count(bucket)) {
        ManagedEntry moved = managed[first->second];
        managed.erase(first->second);
        moved.manager = kAncientChanges;
        moved.subresource.clear();
        managed[bucket] = std::move(moved);
      }
      ManagedEntry& b = managed[bucket];
      b.set = entry.set.Union(b.set);
      b.api_version = entry.api_version;
      b.time = entry.time;
      managed.erase(id);
      --length;
    }
  }

  Type root_;
  FieldManagerOptions options_;
  FieldSet reset_;
};

std::vector<ApplyConflict> ToConflicts(const Managed& managed,
                                       const std::vector<std::pair<std::string, FieldSet>>& found) {
  std::vector<std::pair<std::string, FieldSet>> sorted = found;
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<ApplyConflict> out;
  for (const auto& [id, set] : sorted) {
    auto it = managed.find(id);
    if (it == managed.end()) continue;
    const ManagedEntry& e = it->second;
    std::string who = patch_util::GoQuote(e.manager);
    if (!e.subresource.empty()) who += " with subresource " + patch_util::GoQuote(e.subresource);
    if (e.operation == "Update") who += " using " + e.api_version;
    std::vector<Path> paths;
    Path prefix;
    set.Iterate(prefix, &paths);
    for (const Path& p : paths) {
      out.push_back({e.manager, e.operation, e.api_version, e.subresource, PathString(p),
                     "conflict with " + who});
    }
  }
  return out;
}

// lastAppliedManager: the fields of the last-applied-configuration annotation whose value the
// live object still has.
std::optional<FieldSet> AllowedFromLastApplied(const json& live, const std::string& api_version,
                                               const Type& root) {
  const json* annotations = MetadataField(live, "annotations");
  if (annotations == nullptr || !annotations->is_object()) return std::nullopt;
  auto it = annotations->find(kLastAppliedAnnotation);
  if (it == annotations->end() || !it->is_string() || it->get<std::string>().empty()) {
    return std::nullopt;
  }
  json last = json::parse(it->get<std::string>(), nullptr, false);
  if (!last.is_object() || StringMember(last, "apiVersion") != api_version) return std::nullopt;
  if (!patch_util::CheckDepth(last, kMaxPatchDepth, "annotation").ok()) return std::nullopt;
  auto last_set = FieldSetOf(last, root, true);
  if (!last_set.ok()) return std::nullopt;
  auto cmp = CompareObjects(last, live, root);
  if (!cmp.ok()) return std::nullopt;
  return last_set->Difference(cmp->modified).Difference(cmp->added).Difference(cmp->removed);
}

Result<ApplyResult> ServerSideApplyUnguarded(const json* live_in, const json& config,
                                             const std::string& manager, bool force,
                                             const Schema* schema,
                                             const FieldManagerOptions& in_options) {
  if (!config.is_object()) {
    return InvalidArgument(std::string("error decoding patch: json: cannot unmarshal ") +
                           patch_util::JsonTypeName(config) +
                           " into Go value of type map[string]interface {}");
  }
  if (live_in != nullptr && !live_in->is_object()) return Internal("live object is not an object");
  APPLY_RETURN_IF_ERROR(patch_util::CheckDepth(config, kMaxPatchDepth, "apply configuration"));
  if (live_in != nullptr) {
    APPLY_RETURN_IF_ERROR(patch_util::CheckDepth(*live_in, kMaxPatchDepth, "object"));
  }
  if (manager.empty()) {
    return InvalidArgument("fieldManager: Required value: is required for apply patch");
  }
  FieldManagerOptions options = in_options;
  const std::string config_version = StringMember(config, "apiVersion");
  const std::string config_kind = StringMember(config, "kind");
  if (options.api_version.empty()) options.api_version = config_version;
  std::string expected_kind = options.kind;
  if (expected_kind.empty() && live_in != nullptr) expected_kind = StringMember(*live_in, "kind");
  if (config_version != options.api_version ||
      (!expected_kind.empty() && config_kind != expected_kind) || config_kind.empty()) {
    return InvalidArgument("invalid object type: " +
                           GroupVersionKindString(config_version, config_kind));
  }
  if (const json* mf = MetadataField(config, "managedFields"); mf != nullptr && !mf->is_null()) {
    return InvalidArgument("metadata.managedFields must be nil");
  }

  const json empty = json::object();
  const json& live_with_fields = live_in != nullptr ? *live_in : empty;
  const json* live_mf = MetadataField(live_with_fields, "managedFields");
  auto decoded = DecodeManagedFields(live_mf != nullptr ? *live_mf : json());
  if (!decoded.ok()) {
    return Internal("failed to decode managed fields: " + decoded.status().message());
  }
  const json live = WithoutManagedFields(live_with_fields);
  FieldManager fm(schema, options);
  const std::string id = ManagerId(manager, "Apply", "", options.subresource);

  // One pass of the Apply chain from skipNonApplied inwards.
  auto attempt = [&](bool with_force, Managed* managed,
                     json* object) -> Result<std::vector<std::pair<std::string, FieldSet>>> {
    *managed = *decoded;
    json base = live;
    if (managed->empty()) {
      // Fields set before anyone applied belong to "before-first-apply".
      APPLY_RETURN_IF_ERROR(fm.UpdateWrite(empty, live, *managed, kBeforeFirstApply));
    }
    auto outcome = fm.StructuredApply(base, config, *managed, id, manager, with_force);
    if (!outcome.ok()) return outcome.status();
    if (!outcome->conflicts.empty()) return outcome->conflicts;
    StripMeta(*managed, id);
    *object = std::move(outcome->object);
    return std::vector<std::pair<std::string, FieldSet>>();
  };

  Managed managed;
  json object;
  auto conflicts = attempt(force, &managed, &object);
  if (!conflicts.ok()) return conflicts.status();
  if (!conflicts->empty() && manager == "kubectl") {
    // kubectl moving from client-side to server-side apply: fields it applied client-side with
    // the value they still have are not conflicts.
    if (auto allowed = AllowedFromLastApplied(live, options.api_version, fm.root())) {
      Managed scratch = *decoded;
      FieldSet conflicting;
      for (const auto& [owner, set] : *conflicts) conflicting = conflicting.Union(set);
      if (conflicting.Difference(*allowed).Empty()) {
        conflicts = attempt(true, &managed, &object);
        if (!conflicts.ok()) return conflicts.status();
      } else {
        for (auto& [owner, set] : *conflicts) set = set.Difference(*allowed);
        conflicts->erase(std::remove_if(conflicts->begin(), conflicts->end(),
                                        [](const auto& c) { return c.second.Empty(); }),
                         conflicts->end());
      }
    }
  }
  ApplyResult result;
  if (!conflicts->empty()) {
    // Conflict messages name the owners as they were before this request.
    Managed owners = *decoded;
    if (owners.empty()) {
      APPLY_RETURN_IF_ERROR(fm.UpdateWrite(empty, live, owners, kBeforeFirstApply));
    }
    result.conflicts = ToConflicts(owners, *conflicts);
    result.object = live_with_fields;
    return result;
  }

  DropNullMembers(object);
  result.changed = object != live;
  if (result.changed) {
    // Only an entry that still owns something gets a time (an applier of nothing but the
    // object's identity has no entry).
    if (auto it = managed.find(id); it != managed.end()) it->second.time = options.now;
  } else {
    object = live;
  }
  if (manager == "kubectl") {
    // lastAppliedUpdater: keep a client-side apply annotation in step with what was applied.
    const json* annotations = MetadataField(object, "annotations");
    if (annotations != nullptr && annotations->is_object()) {
      auto it = annotations->find(kLastAppliedAnnotation);
      if (it != annotations->end() && it->is_string() && !it->get<std::string>().empty()) {
        json applied = config;
        if (auto m = applied.find("metadata"); m != applied.end() && m->is_object()) {
          if (auto a = m->find("annotations"); a != m->end() && a->is_object()) {
            a->erase(kLastAppliedAnnotation);
          }
        }
        std::string value = patch_util::GoJson(applied) + "\n";
        if (*it != value) {
          // Upstream rewrites it after the managedFields times were settled.
          object["metadata"]["annotations"][kLastAppliedAnnotation] = value;
          result.changed = true;
        }
      }
    }
  }
  SetManagedFields(object, managed);
  result.object = std::move(object);
  return result;
}

Status UpdateManagedFieldsUnguarded(const json* old, json& updated, const std::string& manager,
                                    const Schema* schema, const FieldManagerOptions& in_options) {
  if (!updated.is_object() || (old != nullptr && !old->is_object())) {
    return InvalidArgument("managed fields: objects must be JSON objects");
  }
  APPLY_RETURN_IF_ERROR(patch_util::CheckDepth(updated, kMaxPatchDepth, "object"));
  if (old != nullptr) APPLY_RETURN_IF_ERROR(patch_util::CheckDepth(*old, kMaxPatchDepth, "object"));
  FieldManagerOptions options = in_options;
  if (options.api_version.empty()) options.api_version = StringMember(updated, "apiVersion");

  const json empty = json::object();
  const json& live_with_fields = old != nullptr ? *old : empty;
  const json* live_mf = MetadataField(live_with_fields, "managedFields");
  auto stored = [&]() -> Managed {
    auto d = DecodeManagedFields(live_mf != nullptr ? *live_mf : json());
    return d.ok() ? std::move(*d) : Managed();
  };
  // decodeLiveOrNew: managedFields sent with the object win when they decode to something;
  // [] or [{}] reset them. Subresources never take them from the request.
  Managed managed;
  const json* sent = MetadataField(updated, "managedFields");
  if (!options.subresource.empty() || sent == nullptr || sent->is_null()) {
    managed = stored();
  } else if (sent->is_array() &&
             (sent->empty() || (sent->size() == 1 && (*sent)[0] == json::object()))) {
    managed = Managed();
  } else {
    auto d = DecodeManagedFields(*sent);
    managed = (d.ok() && !d->empty()) ? std::move(*d) : stored();
  }
  const json next = WithoutManagedFields(updated);
  if (managed.empty() && old != nullptr) {
    // skipNonApplied: objects that never had managedFields stay untracked.
    SetManagedFields(updated, managed);
    return Status::Ok();
  }
  FieldManager fm(schema, options);
  Status s = fm.UpdateWrite(WithoutManagedFields(live_with_fields), next, managed, manager);
  if (!s.ok()) {
    // UpdateNoErrors: keep what was stored rather than fail the write.
    if (live_mf != nullptr) {
      updated["metadata"]["managedFields"] = *live_mf;
    } else {
      SetManagedFields(updated, Managed());
    }
    return Status::Ok();
  }
  SetManagedFields(updated, managed);
  return Status::Ok();
}

}  // namespace

Result<ApplyResult> ServerSideApply(const json* live, const json& config,
                                    const std::string& manager, bool force, const Schema* schema,
                                    const FieldManagerOptions& options) {
  try {
    return ServerSideApplyUnguarded(live, config, manager, force, schema, options);
  } catch (const std::exception& e) {
    return Internal(std::string("apply: unexpected failure: ") + e.what());
  }
}

Status UpdateManagedFields(const json* old, json& updated, const std::string& manager,
                           const Schema* schema, const FieldManagerOptions& options) {
  try {
    return UpdateManagedFieldsUnguarded(old, updated, manager, schema, options);
  } catch (const std::exception& e) {
    return Internal(std::string("managed fields: unexpected failure: ") + e.what());
  }
}

std::string ApplyConflictMessage(const std::vector<ApplyConflict>& conflicts) {
  if (conflicts.empty()) return "";
  if (conflicts.size() == 1) {
    return "Apply failed with 1 conflict: " + conflicts[0].message + ": " + conflicts[0].field;
  }
  std::string out = "Apply failed with " + std::to_string(conflicts.size()) + " conflicts: ";
  std::string current;
  bool first = true;
  for (const ApplyConflict& c : conflicts) {
    // Conflicts arrive grouped by manager; "conflict with X" becomes "conflicts with X:".
    const std::string group =
        "conflicts with" + c.message.substr(std::string("conflict with").size());
    if (group != current) {
      out += (first ? "" : "\n") + group + ":";
      current = group;
      first = false;
    }
    out += "\n- " + c.field;
  }
  return out;
}

json ApplyConflictCauses(const std::vector<ApplyConflict>& conflicts) {
  json causes = json::array();
  for (const ApplyConflict& c : conflicts) {
    causes.push_back(
        {{"type", "FieldManagerConflict"}, {"message", c.message}, {"field", c.field}});
  }
  return causes;
}

}  // namespace orch::api
