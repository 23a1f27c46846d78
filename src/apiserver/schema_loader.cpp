// Parser of the schema file format (schema/README.md) into a SchemaSet, in passes: declare every
// type, resolve field types, then fill per-field copies of named types and derive List kinds.
#include "schema_loader.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <set>
#include <unordered_map>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "schema_validate.h"

namespace orch::api {

// The embedded schema files, generated at build time by embed_schemas.cmake.
struct EmbeddedSchemaFile {
  const char* name;
  const char* text;
  size_t size;
};
extern const EmbeddedSchemaFile kEmbeddedSchemaFiles[];
extern const size_t kEmbeddedSchemaFileCount;

namespace {

constexpr size_t kMaxErrors = 20;
constexpr std::string_view kMetaPackage = "io.k8s.apimachinery.pkg.apis.meta.v1";
// Where unqualified names are looked up after the current package (README: type references).
constexpr std::string_view kFallbackPackages[] = {
    kMetaPackage, "io.k8s.apimachinery.pkg.api.resource", "io.k8s.apimachinery.pkg.util.intstr",
    "io.k8s.apimachinery.pkg.runtime"};
constexpr std::string_view kQuantityType = "io.k8s.apimachinery.pkg.api.resource.Quantity";
constexpr std::string_view kIntOrStringType = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
constexpr std::string_view kListMetaType = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

struct Location {
  const std::string* file = nullptr;
  int line = 0;
  std::string ToString() const { return *file + ":" + std::to_string(line); }
};

// Attributes of a field line (or of an alias). Everything but `required`, `pb=` and `omitzero`
// (which belong to the field, not to its type) changes the schema node of the field.
struct Attributes {
  bool required = false;
  int32_t proto_field = 0;  // pb=<n> or pb=<inline>.<n>
  int32_t proto_inline = 0;
  bool omit_zero = false;
  bool nullable = false;
  std::optional<json> default_value;
  std::vector<json> enum_values;
  std::string format, merge_key, patch_strategy, list_type, map_type;
  std::vector<std::string> map_keys;
  std::optional<double> minimum, maximum;

  bool AffectsSchema() const {
    return nullable || default_value || !enum_values.empty() || !format.empty() ||
           !merge_key.empty() || !patch_strategy.empty() || !list_type.empty() ||
           !map_type.empty() || !map_keys.empty() || minimum || maximum;
  }
};

struct FieldDecl {
  std::string name;
  std::string type_expr;
  Attributes attrs;
  Location loc;
};

struct TypeDecl {
  Schema* node = nullptr;
  std::string package;
  Location loc;
  bool alias = false;
  std::string alias_expr;
  Attributes alias_attrs;
  std::vector<FieldDecl> fields;
  int alias_state = 0;  // alias-of-named fill: 0 pending, 1 in progress, 2 done
  const Schema* alias_target = nullptr;
};

struct Token {
  std::string_view text;
  bool quoted = false;  // a "description"
};

bool IsIdentifier(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) {
      return false;
    }
  }
  return true;
}

class Loader {
 public:
  explicit Loader(SchemaSet& set) : set_(set) {}

  Status Load(const std::vector<SchemaFile>& files) {
    for (const SchemaFile& f : files) {
      file_names_.push_back(std::make_unique<std::string>(f.name));
      ParseFile(*file_names_.back(), f.text);
    }
    if (!errors_.empty()) return Failure();
    for (TypeDecl& t : types_) ResolveType(t);
    if (!errors_.empty()) return Failure();
    for (TypeDecl& t : types_) {
      if (t.alias_target != nullptr) FillAlias(t);
    }
    for (const DeferredCopy& d : deferred_) FillCopy(d);
    CheckOmitZero();
    if (!errors_.empty()) return Failure();
    for (TypeDecl& t : types_) set_.AddNamed(t.node);
    DeriveLists();
    return Status::Ok();
  }

 private:
  // A field whose named type gets per-field attributes: filled once every named type is.
  struct DeferredCopy {
    Schema* copy;
    const Schema* target;
    Attributes attrs;
    Location loc;
  };

  Status Failure() {
    std::string msg;
    for (size_t i = 0; i < errors_.size(); ++i) {
      if (i > 0) msg += "\n";
      msg += errors_[i];
    }
    if (dropped_errors_ > 0) msg += "\n(" + std::to_string(dropped_errors_) + " more errors)";
    return InvalidArgument(msg);
  }

  void Error(const Location& loc, const std::string& what) {
    if (errors_.size() >= kMaxErrors) {
      ++dropped_errors_;
      return;
    }
    errors_.push_back(loc.ToString() + ": " + what);
  }

  // ---- pass 1: lines to declarations ----

  void ParseFile(const std::string& name, std::string_view text) {
    std::string package;
    TypeDecl* current = nullptr;  // the object type whose fields follow
    Location loc{&name, 0};
    std::vector<Token> tokens;
    size_t pos = 0;
    while (pos <= text.size()) {
      size_t eol = text.find('\n', pos);
      if (eol == std::string_view::npos) eol = text.size();
      std::string_view line = text.substr(pos, eol - pos);
      pos = eol + 1;
      ++loc.line;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      size_t indent = 0;
      while (indent < line.size() && line[indent] == ' ') ++indent;
      if (indent < line.size() && line[indent] == '\t') {
        Error(loc, "tab in indentation (use two spaces)");
        continue;
      }
      if (!Tokenize(line.substr(indent), loc, tokens) || tokens.empty()) continue;
      if (indent == 0) {
        current = nullptr;
        if (tokens[0].text == "package" && !tokens[0].quoted) {
          if (tokens.size() != 2 || tokens[1].quoted || !IsIdentifier(tokens[1].text)) {
            Error(loc, "expected `package <name>`");
            continue;
          }
          package = std::string(tokens[1].text);
        } else if (tokens[0].text == "type" && !tokens[0].quoted) {
          current = ParseTypeLine(tokens, package, loc);
        } else {
          Error(loc, "expected `package` or `type`, got \"" + std::string(tokens[0].text) + "\"");
        }
      } else if (indent == 2) {
        if (current == nullptr) {
          Error(loc, "field line outside of an object type");
          continue;
        }
        ParseFieldLine(tokens, *current, loc);
      } else {
        Error(loc, "bad indentation: " + std::to_string(indent) +
                       " spaces (types start at column 1, fields are indented by two)");
      }
    }
  }

  // Splits a line into tokens: whitespace separates, except inside quotes or {} [] (JSON of
  // default=, []T, map[T]); '#' outside quotes starts a comment. False on a syntax error.
  bool Tokenize(std::string_view line, const Location& loc, std::vector<Token>& out) {
    out.clear();
    size_t i = 0;
    while (i < line.size()) {
      char c = line[i];
      if (c == ' ' || c == '\t') {
        ++i;
        continue;
      }
      if (c == '#') break;
      size_t start = i;
      bool quoted = c == '"';
      bool in_quotes = false;
      int depth = 0;
      for (; i < line.size(); ++i) {
        char d = line[i];
        if (in_quotes) {
          if (d == '\\') {
            ++i;
          } else if (d == '"') {
            in_quotes = false;
            if (quoted) {
              ++i;
              break;
            }
          }
          continue;
        }
        if (d == '"') {
          in_quotes = true;
        } else if (d == '{' || d == '[') {
          ++depth;
        } else if (d == '}' || d == ']') {
          --depth;
        } else if ((d == ' ' || d == '\t' || d == '#') && depth <= 0) {
          break;
        }
      }
      if (in_quotes) {
        Error(loc, "unterminated quoted string");
        return false;
      }
      out.push_back(Token{line.substr(start, i - start), quoted});
    }
    return true;
  }

  static std::string Unquote(std::string_view q) {
    std::string out;
    out.reserve(q.size());
    for (size_t i = 1; i + 1 < q.size(); ++i) {
      char c = q[i];
      if (c == '\\' && i + 2 < q.size()) {
        char n = q[++i];
        out += n == 'n' ? '\n' : n == 't' ? '\t' : n;
      } else {
        out += c;
      }
    }
    return out;
  }

  // Takes a trailing "description" off `tokens`; a quoted token anywhere else is an error.
  bool TakeDescription(std::vector<Token>& tokens, const Location& loc, std::string& desc) {
    if (!tokens.empty() && tokens.back().quoted) {
      desc = Unquote(tokens.back().text);
      tokens.pop_back();
    }
    for (const Token& t : tokens) {
      if (t.quoted) {
        Error(loc, "the description must be the last item of the line");
        return false;
      }
    }
    return true;
  }

  TypeDecl* ParseTypeLine(std::vector<Token>& tokens, const std::string& package,
                          const Location& loc) {
    std::string desc;
    if (!TakeDescription(tokens, loc, desc)) return nullptr;
    if (package.empty()) {
      Error(loc, "type declared before any `package` line");
      return nullptr;
    }
    if (tokens.size() < 2 || tokens[1].text.find('.') != std::string_view::npos ||
        !IsIdentifier(tokens[1].text)) {
      Error(loc, "expected `type <Name> ...` with a simple name");
      return nullptr;
    }
    std::string full = package + "." + std::string(tokens[1].text);
    auto [it, inserted] = type_index_.emplace(full, types_.size());
    if (!inserted) {
      Error(loc, "duplicate type " + full + " (first declared at " +
                     types_[it->second].loc.ToString() + ")");
      // Its fields still parse (and report their own errors) into a declaration nobody uses.
      sink_.fields.clear();
      sink_.node = set_.New();
      return &sink_;
    }
    TypeDecl decl;
    decl.node = set_.New();
    decl.node->name = full;
    decl.node->description = std::move(desc);
    decl.package = package;
    decl.loc = loc;
    if (tokens.size() >= 3 && tokens[2].text == "=") {
      if (tokens.size() < 4) {
        Error(loc, "expected a type after `=`");
        type_index_.erase(it);
        return nullptr;
      }
      decl.alias = true;
      decl.alias_expr = std::string(tokens[3].text);
      for (size_t i = 4; i < tokens.size(); ++i) {
        ParseAttribute(tokens[i].text, decl.alias_attrs, loc);
      }
      if (decl.alias_attrs.required) Error(loc, "`required` is for fields, not types");
      if (decl.alias_attrs.proto_field != 0 || decl.alias_attrs.omit_zero) {
        Error(loc, "`pb=` and `omitzero` are for fields, not types");
      }
    } else {
      decl.node->type = Schema::Type::kObject;
      for (size_t i = 2; i < tokens.size(); ++i) ParseTypeAttribute(tokens[i].text, decl, loc);
    }
    types_.push_back(std::move(decl));
    return types_.back().alias ? nullptr : &types_.back();
  }

  void ParseTypeAttribute(std::string_view tok, TypeDecl& decl, const Location& loc) {
    if (tok.substr(0, 4) == "gvk=") {
      std::string_view v = tok.substr(4);
      size_t a = v.find('/');
      size_t b = v.rfind('/');
      Schema::GroupVersionKind gvk;
      if (a == std::string_view::npos) {
        Error(loc, "bad gvk \"" + std::string(v) + "\" (want group/version/Kind or v1/Kind)");
        return;
      }
      if (a == b) {
        gvk.version = std::string(v.substr(0, a));
      } else {
        gvk.group = std::string(v.substr(0, a));
        gvk.version = std::string(v.substr(a + 1, b - a - 1));
      }
      gvk.kind = std::string(v.substr(b + 1));
      if (gvk.version.empty() || gvk.kind.empty() || gvk.version.find('/') != std::string::npos) {
        Error(loc, "bad gvk \"" + std::string(v) + "\" (want group/version/Kind or v1/Kind)");
        return;
      }
      auto [it, inserted] = gvk_owner_.emplace(std::string(v), decl.node->name);
      if (!inserted) {
        Error(loc, "duplicate gvk " + std::string(v) + " (also on " + it->second + ")");
        return;
      }
      decl.node->gvks.push_back(std::move(gvk));
    } else if (tok.substr(0, 8) == "maptype=") {
      std::string v(tok.substr(8));
      if (v != "atomic" && v != "granular") {
        Error(loc, "bad maptype \"" + v + "\" (atomic or granular)");
        return;
      }
      decl.node->map_type = v;
    } else {
      Error(loc, "bad type attribute \"" + std::string(tok) + "\" (gvk= or maptype=)");
    }
  }

  void ParseFieldLine(std::vector<Token>& tokens, TypeDecl& owner, const Location& loc) {
    std::string desc;
    if (!TakeDescription(tokens, loc, desc)) return;
    if (tokens.size() < 2) {
      Error(loc, "expected `<field> <type> [attribute]... [\"description\"]`");
      return;
    }
    std::string name(tokens[0].text);
    if (!IsIdentifier(name) && name != "$ref" && name != "$schema") {
      Error(loc, "bad field name \"" + name + "\"");
      return;
    }
    for (const FieldDecl& f : owner.fields) {
      if (f.name == name) {
        Error(loc, "duplicate field \"" + name + "\" in " + owner.node->name + " (first at " +
                       f.loc.ToString() + ")");
        return;
      }
    }
    FieldDecl field;
    field.name = name;
    field.type_expr = std::string(tokens[1].text);
    field.loc = loc;
    for (size_t i = 2; i < tokens.size(); ++i) ParseAttribute(tokens[i].text, field.attrs, loc);
    if (field.attrs.omit_zero && field.attrs.proto_field == 0) {
      Error(loc, "omitzero needs pb=");
    }
    if (field.attrs.proto_field != 0) {
      for (const FieldDecl& f : owner.fields) {
        const Attributes& o = f.attrs;
        if (o.proto_field == 0) continue;
        bool same =
            o.proto_inline == field.attrs.proto_inline && o.proto_field == field.attrs.proto_field;
        // An inline struct's number is a message field of the owner: no direct field may use it.
        bool clash = (field.attrs.proto_inline != 0 && o.proto_inline == 0 &&
                      o.proto_field == field.attrs.proto_inline) ||
                     (field.attrs.proto_inline == 0 && o.proto_inline == field.attrs.proto_field);
        if (same || clash) {
          Error(loc, "pb= of \"" + name + "\" clashes with \"" + f.name + "\" (at " +
                         f.loc.ToString() + ")");
          break;
        }
      }
    }
    Property prop{name, std::move(desc), nullptr};
    prop.proto_field = field.attrs.proto_field;
    prop.proto_inline = field.attrs.proto_inline;
    prop.proto_omit_zero = field.attrs.omit_zero;
    owner.node->properties.push_back(std::move(prop));
    owner.fields.push_back(std::move(field));
  }

  std::optional<double> ParseNumber(std::string_view v, const Location& loc,
                                    std::string_view attr) {
    double d = 0;
    auto res = std::from_chars(v.data(), v.data() + v.size(), d);
    if (res.ec != std::errc() || res.ptr != v.data() + v.size()) {
      Error(loc, "bad number in " + std::string(attr) + "=\"" + std::string(v) + "\"");
      return std::nullopt;
    }
    return d;
  }

  void ParseAttribute(std::string_view tok, Attributes& a, const Location& loc) {
    if (tok == "required") {
      a.required = true;
      return;
    }
    if (tok == "nullable") {
      a.nullable = true;
      return;
    }
    if (tok == "omitzero") {
      a.omit_zero = true;
      return;
    }
    size_t eq = tok.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == tok.size()) {
      Error(loc, "bad attribute \"" + std::string(tok) + "\"");
      return;
    }
    std::string_view key = tok.substr(0, eq);
    std::string_view v = tok.substr(eq + 1);
    if (key == "default") {
      json parsed = json::parse(v.begin(), v.end(), nullptr, false);
      if (parsed.is_discarded()) {
        Error(loc, "default is not valid JSON: " + std::string(v));
        return;
      }
      a.default_value = std::move(parsed);
    } else if (key == "enum") {
      size_t start = 0;
      while (start <= v.size()) {
        size_t bar = v.find('|', start);
        if (bar == std::string_view::npos) bar = v.size();
        a.enum_values.emplace_back(std::string(v.substr(start, bar - start)));
        start = bar + 1;
      }
    } else if (key == "format") {
      a.format = std::string(v);
    } else if (key == "merge") {
      a.merge_key = std::string(v);
    } else if (key == "patch") {
      a.patch_strategy = std::string(v);
    } else if (key == "keys") {
      size_t start = 0;
      while (start <= v.size()) {
        size_t comma = v.find(',', start);
        if (comma == std::string_view::npos) comma = v.size();
        if (comma > start) a.map_keys.emplace_back(v.substr(start, comma - start));
        start = comma + 1;
      }
    } else if (key == "list") {
      if (v != "atomic" && v != "set" && v != "map") {
        Error(loc, "bad list \"" + std::string(v) + "\" (atomic, set or map)");
        return;
      }
      a.list_type = std::string(v);
    } else if (key == "maptype") {
      if (v != "atomic" && v != "granular") {
        Error(loc, "bad maptype \"" + std::string(v) + "\" (atomic or granular)");
        return;
      }
      a.map_type = std::string(v);
    } else if (key == "pb") {
      ParseProtoField(v, a, loc);
    } else if (key == "min") {
      a.minimum = ParseNumber(v, loc, key);
    } else if (key == "max") {
      a.maximum = ParseNumber(v, loc, key);
    } else {
      Error(loc, "bad attribute \"" + std::string(tok) +
                     "\" (known: required default= enum= format= merge= patch= keys= list= "
                     "maptype= nullable min= max= pb= omitzero)");
    }
  }

  // pb=<n> or pb=<inline>.<n>: protobuf field numbers, 1 to 2^29-1 (19000-19999 reserved).
  void ParseProtoField(std::string_view v, Attributes& a, const Location& loc) {
    auto number = [](std::string_view t, int32_t& out) {
      auto res = std::from_chars(t.data(), t.data() + t.size(), out);
      return res.ec == std::errc() && res.ptr == t.data() + t.size() && out >= 1 &&
             out <= (1 << 29) - 1 && (out < 19000 || out > 19999);
    };
    size_t dot = v.find('.');
    bool ok = dot == std::string_view::npos ? number(v, a.proto_field)
                                            : number(v.substr(0, dot), a.proto_inline) &&
                                                  number(v.substr(dot + 1), a.proto_field);
    if (!ok) {
      Error(loc, "bad pb=\"" + std::string(v) +
                     "\" (a protobuf field number, or <inline field>.<number>)");
      a.proto_field = 0;
      a.proto_inline = 0;
    }
  }

  // ---- pass 2: type expressions to nodes ----

  // A primitive of the format, or nullptr. Shared nodes: they carry no per-field attributes.
  const Schema* Primitive(std::string_view expr) {
    auto it = interned_.find(std::string(expr));
    if (it != interned_.end()) return it->second;
    Schema* s = nullptr;
    auto make = [&](Schema::Type type, const char* format) {
      s = set_.New();
      s->type = type;
      s->format = format;
    };
    if (expr == "string") {
      make(Schema::Type::kString, "");
    } else if (expr == "boolean") {
      make(Schema::Type::kBoolean, "");
    } else if (expr == "int32") {
      make(Schema::Type::kInteger, "int32");
    } else if (expr == "int64") {
      make(Schema::Type::kInteger, "int64");
    } else if (expr == "number") {
      make(Schema::Type::kNumber, "double");
    } else if (expr == "bytes") {
      make(Schema::Type::kString, "byte");
    } else if (expr == "time") {
      make(Schema::Type::kString, "date-time");
    } else if (expr == "quantity") {
      make(Schema::Type::kString, "quantity");
    } else if (expr == "int-or-string") {
      make(Schema::Type::kAny, "int-or-string");
      s->int_or_string = true;
    } else if (expr == "any") {
      make(Schema::Type::kAny, "");
      s->preserve_unknown_fields = true;
    } else {
      return nullptr;
    }
    interned_.emplace(std::string(expr), s);
    return s;
  }

  const Schema* FindNamed(std::string_view name, const std::string& package) {
    auto lookup = [&](const std::string& full) -> const Schema* {
      auto it = type_index_.find(full);
      return it == type_index_.end() ? nullptr : types_[it->second].node;
    };
    if (name.find('.') != std::string_view::npos) return lookup(std::string(name));
    if (const Schema* s = lookup(package + "." + std::string(name))) return s;
    for (std::string_view pkg : kFallbackPackages) {
      if (const Schema* s = lookup(std::string(pkg) + "." + std::string(name))) return s;
    }
    return nullptr;
  }

  // The node of a type expression without attributes; nullptr (error recorded) if unknown.
  // `for_alias` keeps quantity and int-or-string primitive (their named types are aliases).
  const Schema* Resolve(std::string_view expr, const std::string& package, const Location& loc,
                        bool for_alias) {
    if (expr.substr(0, 2) == "[]") {
      const Schema* elem = Resolve(expr.substr(2), package, loc, false);
      if (elem == nullptr) return nullptr;
      return Container("[]", elem, [&](Schema* s) {
        s->type = Schema::Type::kArray;
        s->items = elem;
      });
    }
    if (expr.substr(0, 4) == "map[" && expr.back() == ']') {
      const Schema* value = Resolve(expr.substr(4, expr.size() - 5), package, loc, false);
      if (value == nullptr) return nullptr;
      return Container("map", value, [&](Schema* s) {
        s->type = Schema::Type::kObject;
        s->additional_properties = value;
      });
    }
    if (!for_alias && (expr == "quantity" || expr == "int-or-string")) {
      auto it =
          type_index_.find(std::string(expr == "quantity" ? kQuantityType : kIntOrStringType));
      if (it != type_index_.end()) return types_[it->second].node;
    }
    if (const Schema* p = Primitive(expr)) return p;
    if (!IsIdentifier(expr)) {
      Error(loc, "bad type \"" + std::string(expr) + "\"");
      return nullptr;
    }
    if (const Schema* named = FindNamed(expr, package)) return named;
    Error(loc, "unknown type \"" + std::string(expr) + "\"");
    return nullptr;
  }

  template <typename Init>
  const Schema* Container(const char* kind, const Schema* inner, Init init) {
    std::string key = std::string(kind) + "@" + std::to_string(reinterpret_cast<uintptr_t>(inner));
    auto it = interned_.find(key);
    if (it != interned_.end()) return it->second;
    Schema* s = set_.New();
    init(s);
    interned_.emplace(std::move(key), s);
    return s;
  }

  // Checks that attributes fit the node they land on; authors get told at load time.
  void CheckAttributes(const Schema& s, const Attributes& a, const Location& loc) {
    bool is_array = s.type == Schema::Type::kArray;
    if ((!a.merge_key.empty() || !a.list_type.empty() || !a.map_keys.empty()) && !is_array) {
      Error(loc, "merge=, keys= and list= need a list type ([]T)");
    }
    if (!a.map_type.empty() && s.type != Schema::Type::kObject) {
      Error(loc, "maptype= needs an object or map type");
    }
    if ((a.minimum || a.maximum) && s.type != Schema::Type::kInteger &&
        s.type != Schema::Type::kNumber) {
      Error(loc, "min= and max= need a numeric type");
    }
    if (!a.enum_values.empty() && s.type != Schema::Type::kString) {
      Error(loc, "enum= needs a string type");
    }
    if (a.default_value) {
      const json& d = *a.default_value;
      bool ok = true;
      switch (s.type) {
        case Schema::Type::kObject:
          ok = d.is_object();
          break;
        case Schema::Type::kArray:
          ok = d.is_array();
          break;
        case Schema::Type::kString:
          ok = d.is_string() || (s.format == "quantity" && d.is_number());
          break;
        case Schema::Type::kInteger:
          ok = d.is_number_integer();
          break;
        case Schema::Type::kNumber:
          ok = d.is_number();
          break;
        case Schema::Type::kBoolean:
          ok = d.is_boolean();
          break;
        case Schema::Type::kAny:
          ok = !s.int_or_string || d.is_string() || d.is_number_integer();
          break;
      }
      if (!ok) Error(loc, "default " + d.dump() + " does not fit the field's type");
    }
  }

  static void ApplyAttributes(Schema& s, const Attributes& a) {
    if (a.nullable) s.nullable = true;
    if (a.default_value) s.default_value = a.default_value;
    if (!a.enum_values.empty()) s.enum_values = a.enum_values;
    if (!a.format.empty()) {
      s.format = a.format;
      if (a.format == "int-or-string") s.int_or_string = true;
    }
    if (!a.merge_key.empty()) {
      s.patch_merge_key = a.merge_key;
      s.patch_strategy = "merge";
    }
    if (!a.patch_strategy.empty()) s.patch_strategy = a.patch_strategy;
    if (!a.map_keys.empty()) {
      s.list_type = Schema::ListType::kMap;
      s.list_map_keys = a.map_keys;
    }
    if (a.list_type == "atomic") s.list_type = Schema::ListType::kAtomic;
    if (a.list_type == "set") s.list_type = Schema::ListType::kSet;
    if (a.list_type == "map") s.list_type = Schema::ListType::kMap;
    if (!a.map_type.empty()) s.map_type = a.map_type;
    if (a.minimum) s.minimum = a.minimum;
    if (a.maximum) s.maximum = a.maximum;
  }

  // The node a field with these attributes refers to: `base` itself when nothing changes it.
  const Schema* WithAttributes(const Schema* base, const Attributes& a, const Location& loc) {
    if (!a.AffectsSchema()) return base;
    Schema* copy = set_.New();
    if (!base->name.empty()) {
      // Named types may still be incomplete here: fill the copy in pass 3.
      deferred_.push_back(DeferredCopy{copy, base, a, loc});
      return copy;
    }
    *copy = *base;
    CheckAttributes(*copy, a, loc);
    ApplyAttributes(*copy, a);
    return copy;
  }

  void ResolveType(TypeDecl& t) {
    if (t.alias) {
      const Schema* body = Resolve(t.alias_expr, t.package, t.loc, true);
      if (body == nullptr) return;
      if (body == t.node) {
        Error(t.loc, "type " + t.node->name + " is an alias of itself");
        return;
      }
      if (!body->name.empty()) {
        t.alias_target = body;  // filled in pass 3, once the target is complete
        return;
      }
      CopyContent(*t.node, *body);
      CheckAttributes(*t.node, t.alias_attrs, t.loc);
      ApplyAttributes(*t.node, t.alias_attrs);
      return;
    }
    for (size_t i = 0; i < t.fields.size(); ++i) {
      const FieldDecl& f = t.fields[i];
      const Schema* base = Resolve(f.type_expr, t.package, f.loc, false);
      if (base == nullptr) continue;
      t.node->properties[i].schema = WithAttributes(base, f.attrs, f.loc);
      if (f.attrs.required) t.node->required.push_back(f.name);
    }
  }

  // omitzero is checked once every node is complete (aliases are filled late).
  void CheckOmitZero() {
    for (const TypeDecl& t : types_) {
      for (size_t i = 0; i < t.fields.size(); ++i) {
        const Schema* s = t.node->properties[i].schema;
        if (t.fields[i].attrs.omit_zero && s != nullptr && !IsScalar(*s)) {
          Error(t.fields[i].loc,
                "omitzero needs a scalar type (string, integer, number, boolean, bytes, "
                "int-or-string)");
        }
      }
    }
  }

  static bool IsScalar(const Schema& s) {
    switch (s.type) {
      case Schema::Type::kString:
        return s.format != "quantity" && s.format != "date-time";
      case Schema::Type::kInteger:
      case Schema::Type::kNumber:
      case Schema::Type::kBoolean:
        return true;
      case Schema::Type::kAny:
        return s.int_or_string;
      default:
        return false;
    }
  }

  // Copies what a node is (type, fields, constraints) but not who it is (name, description,
  // gvks).
  static void CopyContent(Schema& to, const Schema& from) {
    std::string name = std::move(to.name);
    std::string description = std::move(to.description);
    auto gvks = std::move(to.gvks);
    to = from;
    to.name = std::move(name);
    to.description = std::move(description);
    to.gvks = std::move(gvks);
    to.ref = nullptr;
  }

  // ---- pass 3: fill copies of named types ----

  void FillAlias(TypeDecl& t) {
    if (t.alias_state == 2) return;
    if (t.alias_state == 1) {
      Error(t.loc, "alias cycle through " + t.node->name);
      t.alias_state = 2;
      return;
    }
    t.alias_state = 1;
    auto it = type_index_.find(t.alias_target->name);
    TypeDecl& target = types_[it->second];
    if (target.alias_target != nullptr) FillAlias(target);
    CopyContent(*t.node, *t.alias_target);
    CheckAttributes(*t.node, t.alias_attrs, t.loc);
    ApplyAttributes(*t.node, t.alias_attrs);
    t.alias_state = 2;
  }

  void FillCopy(const DeferredCopy& d) {
    *d.copy = *d.target;
    d.copy->name.clear();
    d.copy->gvks.clear();
    d.copy->ref = d.target;
    CheckAttributes(*d.copy, d.attrs, d.loc);
    ApplyAttributes(*d.copy, d.attrs);
  }

  // ---- List kinds ----

  void DeriveLists() {
    const Schema* list_meta = set_.Find(std::string(kListMetaType));
    const Schema* str = Primitive("string");
    for (const TypeDecl& t : types_) {
      const Schema* kind_schema = t.node;
      // Kinds are the types with ObjectMeta; Status, Scale's ListMeta users and option types
      // carry gvks too but have no lists.
      const Property* meta_prop = kind_schema->FindProperty("metadata");
      if (kind_schema->gvks.empty() || meta_prop == nullptr || meta_prop->schema == nullptr ||
          meta_prop->schema->TypeName() != std::string(kMetaPackage) + ".ObjectMeta") {
        continue;
      }
      std::map<std::string, Schema*> made;  // list type name -> node
      for (const auto& gvk : kind_schema->gvks) {
        if (gvk.kind.size() > 4 && gvk.kind.compare(gvk.kind.size() - 4, 4, "List") == 0) {
          continue;
        }
        std::string list_name = t.package + "." + gvk.kind + "List";
        Schema::GroupVersionKind list_gvk{gvk.group, gvk.version, gvk.kind + "List"};
        if (set_.FindKind(list_gvk.group, list_gvk.version, list_gvk.kind) != nullptr) continue;
        auto it = made.find(list_name);
        if (it != made.end()) {
          it->second->gvks.push_back(list_gvk);
          continue;
        }
        if (set_.Find(list_name) != nullptr) continue;  // written by hand
        Schema* list = set_.New();
        list->type = Schema::Type::kObject;
        list->name = list_name;
        list->description = gvk.kind + "List is a list of " + gvk.kind + " objects.";
        Schema* items = set_.New();
        items->type = Schema::Type::kArray;
        items->items = kind_schema;
        const Schema* meta = list_meta;
        if (meta == nullptr) meta = Primitive("any");
        list->properties = {
            {"apiVersion",
             "APIVersion defines the versioned schema of this representation of an object.", str},
            {"items", "List of " + gvk.kind + " objects.", items},
            {"kind",
             "Kind is a string value representing the REST resource this object represents.", str},
            {"metadata", "Standard list metadata.", meta},
        };
        list->properties[1].proto_field = 2;  // items; ListMeta is 1 in every List message
        list->properties[3].proto_field = 1;
        list->required = {"items"};
        list->gvks.push_back(list_gvk);
        made.emplace(list_name, list);
      }
      for (auto& [name, list] : made) set_.AddNamed(list);
    }
  }

  SchemaSet& set_;
  std::vector<std::unique_ptr<std::string>> file_names_;  // stable addresses for Location
  std::vector<TypeDecl> types_;
  TypeDecl sink_;                                           // fields of duplicate types land here
  std::unordered_map<std::string, std::string> gvk_owner_;  // "g/v/K" -> type name
  std::unordered_map<std::string, size_t> type_index_;      // full name -> types_ index
  std::unordered_map<std::string, const Schema*> interned_;
  std::vector<DeferredCopy> deferred_;
  std::vector<std::string> errors_;
  size_t dropped_errors_ = 0;
};

// ---- CRD schemas (JSONSchemaProps) ----

// Thrown inside the conversion only; LoadSchemas-style callers get a Status.
struct ConvertError {
  std::string message;
};

class CrdConverter {
 public:
  explicit CrdConverter(SchemaSet& into) : into_(into) {}

  Schema* Convert(const json& j, const std::string& path) {
    if (!j.is_object()) throw ConvertError{path + ": must be an object"};
    Schema* s = into_.New();
    for (const auto& [key, value] : j.items()) Field(*s, key, value, path);
    if (s->int_or_string && s->format.empty()) s->format = "int-or-string";
    return s;
  }

 private:
  static const std::string& Str(const json& v, const std::string& path) {
    if (!v.is_string()) throw ConvertError{path + ": must be a string"};
    return v.get_ref<const std::string&>();
  }
  static bool Bool(const json& v, const std::string& path) {
    if (!v.is_boolean()) throw ConvertError{path + ": must be a boolean"};
    return v.get<bool>();
  }
  static double Num(const json& v, const std::string& path) {
    if (!v.is_number()) throw ConvertError{path + ": must be a number"};
    return v.get<double>();
  }
  static int64_t Int(const json& v, const std::string& path) {
    if (!v.is_number_integer()) throw ConvertError{path + ": must be an integer"};
    return v.get<int64_t>();
  }
  static std::vector<std::string> Strings(const json& v, const std::string& path) {
    if (!v.is_array()) throw ConvertError{path + ": must be a list of strings"};
    std::vector<std::string> out;
    for (const json& e : v) out.push_back(Str(e, path));
    return out;
  }
  std::vector<const Schema*> List(const json& v, const std::string& path) {
    if (!v.is_array()) throw ConvertError{path + ": must be a list of schemas"};
    std::vector<const Schema*> out;
    for (size_t i = 0; i < v.size(); ++i) {
      out.push_back(Convert(v[i], path + "[" + std::to_string(i) + "]"));
    }
    return out;
  }

  void Field(Schema& s, const std::string& key, const json& v, const std::string& path) {
    std::string at = path + "." + key;
    if (key == "type") {
      const std::string& t = Str(v, at);
      if (t == "object") {
        s.type = Schema::Type::kObject;
      } else if (t == "array") {
        s.type = Schema::Type::kArray;
      } else if (t == "string") {
        s.type = Schema::Type::kString;
      } else if (t == "integer") {
        s.type = Schema::Type::kInteger;
      } else if (t == "number") {
        s.type = Schema::Type::kNumber;
      } else if (t == "boolean") {
        s.type = Schema::Type::kBoolean;
      } else if (t.empty()) {
        s.type = Schema::Type::kAny;
      } else {
        throw ConvertError{at + ": unsupported type \"" + t + "\""};
      }
    } else if (key == "description") {
      s.description = Str(v, at);
    } else if (key == "format") {
      s.format = Str(v, at);
    } else if (key == "pattern") {
      s.pattern = Str(v, at);
    } else if (key == "nullable") {
      s.nullable = Bool(v, at);
    } else if (key == "uniqueItems") {
      s.unique_items = Bool(v, at);
    } else if (key == "exclusiveMinimum") {
      s.exclusive_minimum = Bool(v, at);
    } else if (key == "exclusiveMaximum") {
      s.exclusive_maximum = Bool(v, at);
    } else if (key == "minimum") {
      s.minimum = Num(v, at);
    } else if (key == "maximum") {
      s.maximum = Num(v, at);
    } else if (key == "minLength") {
      s.min_length = Int(v, at);
    } else if (key == "maxLength") {
      s.max_length = Int(v, at);
    } else if (key == "minItems") {
      s.min_items = Int(v, at);
    } else if (key == "maxItems") {
      s.max_items = Int(v, at);
    } else if (key == "minProperties") {
      s.min_properties = Int(v, at);
    } else if (key == "maxProperties") {
      s.max_properties = Int(v, at);
    } else if (key == "required") {
      s.required = Strings(v, at);
    } else if (key == "enum") {
      if (!v.is_array()) throw ConvertError{at + ": must be a list"};
      s.enum_values.assign(v.begin(), v.end());
    } else if (key == "default") {
      s.default_value = v;
    } else if (key == "properties") {
      if (!v.is_object()) throw ConvertError{at + ": must be an object"};
      for (const auto& [name, sub] : v.items()) {
        Schema* child = Convert(sub, at + "[" + name + "]");
        s.properties.push_back(Property{name, child->description, child});
      }
    } else if (key == "items") {
      if (v.is_array()) {  // a tuple schema; structural schemas allow one schema only
        if (!v.empty()) s.items = Convert(v[0], at + "[0]");
      } else {
        s.items = Convert(v, at);
      }
    } else if (key == "additionalProperties") {
      if (v.is_boolean()) {
        if (v.get<bool>()) {
          Schema* any = into_.New();
          any->preserve_unknown_fields = true;
          s.additional_properties = any;
        }
      } else {
        s.additional_properties = Convert(v, at);
      }
    } else if (key == "allOf") {
      s.all_of = List(v, at);
    } else if (key == "anyOf") {
      s.any_of = List(v, at);
    } else if (key == "oneOf") {
      s.one_of = List(v, at);
    } else if (key == "not") {
      s.not_schema = Convert(v, at);
    } else if (key == "x-kubernetes-preserve-unknown-fields") {
      s.preserve_unknown_fields = Bool(v, at);
    } else if (key == "x-kubernetes-embedded-resource") {
      s.embedded_resource = Bool(v, at);
    } else if (key == "x-kubernetes-int-or-string") {
      s.int_or_string = Bool(v, at);
    } else if (key == "x-kubernetes-list-type") {
      const std::string& t = Str(v, at);
      if (t == "atomic") {
        s.list_type = Schema::ListType::kAtomic;
      } else if (t == "set") {
        s.list_type = Schema::ListType::kSet;
      } else if (t == "map") {
        s.list_type = Schema::ListType::kMap;
      } else {
        throw ConvertError{at + ": must be atomic, set or map"};
      }
    } else if (key == "x-kubernetes-list-map-keys") {
      s.list_map_keys = Strings(v, at);
    } else if (key == "x-kubernetes-map-type") {
      s.map_type = Str(v, at);
    }
    // Everything else (title, example, externalDocs, $schema, id, multipleOf,
    // x-kubernetes-validations, ...) carries no meaning for the model.
  }

  SchemaSet& into_;
};

// ---- structural-schema check (apiextensions-apiserver pkg/apiserver/schema/validation.go) ----

enum class Level { kRoot, kItem, kField };

class StructuralChecker {
 public:
  explicit StructuralChecker(std::vector<FieldError>& errors) : errors_(errors) {}

  void Invariants(const json& s, Level level, const std::string& path) {
    if (!s.is_object()) return;
    std::string type = s.value("type", std::string());
    bool int_or_string = s.value("x-kubernetes-int-or-string", false);
    bool preserve = s.value("x-kubernetes-preserve-unknown-fields", false);
    bool embedded = s.value("x-kubernetes-embedded-resource", false);
    const json* props = Find(s, "properties");
    const json* additional = Find(s, "additionalProperties");

    if (type == "array" && Find(s, "items") == nullptr) {
      errors_.push_back(FieldRequired(path + ".items", "must be specified"));
    }
    if (const json* items = Find(s, "items")) {
      if (items->is_array()) {
        errors_.push_back(
            FieldForbidden(path + ".items", "items must be a schema object and not an array"));
      } else {
        Invariants(*items, Level::kItem, path + ".items");
      }
    }
    if (props != nullptr && props->is_object()) {
      for (const auto& [k, v] : props->items()) {
        Invariants(v, Level::kField, path + ".properties[" + k + "]");
      }
    }
    if (additional != nullptr) {
      if (level == Level::kRoot) {
        errors_.push_back(
            FieldForbidden(path + ".additionalProperties", "must not be used at the root"));
      }
      if (props != nullptr && !props->empty()) {
        errors_.push_back(
            FieldForbidden(path + ".additionalProperties",
                           "additionalProperties and properties are mutual exclusive"));
      }
      if (additional->is_object())
        Invariants(*additional, Level::kField, path + ".additionalProperties");
    }
    if (int_or_string && preserve) {
      errors_.push_back(FieldInvalid(path + ".x-kubernetes-preserve-unknown-fields", true,
                                     "must be false if x-kubernetes-int-or-string is true"));
    }
    if (int_or_string && embedded) {
      errors_.push_back(FieldInvalid(path + ".x-kubernetes-embedded-resource", true,
                                     "must be false if x-kubernetes-int-or-string is true"));
    }
    ValueValidation(s, IntOrStringAnyOf(s), IntOrStringAllOf(s), level, path);

    bool check_metadata = level == Level::kRoot || embedded;
    if (embedded && type != "object") {
      if (type.empty()) {
        errors_.push_back(FieldRequired(
            path + ".type", "must be object if x-kubernetes-embedded-resource is true"));
      } else {
        errors_.push_back(FieldInvalid(path + ".type", type,
                                       "must be object if x-kubernetes-embedded-resource is true"));
      }
    } else if (type.empty() && !int_or_string && !preserve) {
      const char* detail = level == Level::kRoot ? "must not be empty at the root"
                           : level == Level::kItem
                               ? "must not be empty for specified array items"
                               : "must not be empty for specified object fields";
      errors_.push_back(FieldRequired(path + ".type", detail));
    }
    if (embedded && additional != nullptr) {
      errors_.push_back(
          FieldForbidden(path + ".additionalProperties",
                         "must not be used if x-kubernetes-embedded-resource is set"));
    }
    if (level == Level::kRoot && !type.empty() && type != "object") {
      errors_.push_back(FieldInvalid(path + ".type", type, "must be object at the root"));
    }
    if (check_metadata && props != nullptr && props->is_object()) {
      for (const char* f : {"kind", "apiVersion"}) {
        if (const json* p = Find(*props, f); p != nullptr && p->is_object()) {
          std::string t = p->value("type", std::string());
          if (t != "string") {
            errors_.push_back(
                FieldInvalid(path + ".properties[" + f + "].type", t, "must be string"));
          }
        }
      }
      if (const json* m = Find(*props, "metadata"); m != nullptr && m->is_object()) {
        std::string t = m->value("type", std::string());
        if (t != "object") {
          errors_.push_back(FieldInvalid(path + ".properties[metadata].type", t, "must be object"));
        }
        if (level == Level::kRoot && !OnlyNameRestrictions(*m)) {
          errors_.push_back(FieldForbidden(
              path + ".properties[metadata]",
              "must not specify anything other than name and generateName, but metadata is "
              "implicitly specified"));
        }
      }
    }
    if (embedded && !preserve && (props == nullptr || props->empty())) {
      errors_.push_back(FieldRequired(path + ".properties",
                                      "must not be empty if x-kubernetes-embedded-resource is true "
                                      "without x-kubernetes-preserve-unknown-fields"));
    }
  }

 private:
  static const json* Find(const json& j, const char* key) {
    auto it = j.find(key);
    return it == j.end() ? nullptr : &*it;
  }

  static bool IsIntOrStringPair(const json& any_of) {
    return any_of.is_array() && any_of.size() == 2 && any_of[0] == json{{"type", "integer"}} &&
           any_of[1] == json{{"type", "string"}};
  }
  static bool IntOrStringAnyOf(const json& s) {
    const json* a = Find(s, "anyOf");
    return a != nullptr && IsIntOrStringPair(*a);
  }
  static bool IntOrStringAllOf(const json& s) {
    const json* a = Find(s, "allOf");
    if (a == nullptr || !a->is_array() || a->empty() || !(*a)[0].is_object()) return false;
    const json* inner = Find((*a)[0], "anyOf");
    return inner != nullptr && IsIntOrStringPair(*inner);
  }

  // Root metadata may restrict name and generateName only (type and default aside).
  static bool OnlyNameRestrictions(const json& m) {
    for (const auto& [k, v] : m.items()) {
      if (k == "type" || k == "default") continue;
      if (k == "properties" && v.is_object()) {
        for (const auto& [name, sub] : v.items()) {
          if (name != "name" && name != "generateName") return false;
        }
        continue;
      }
      return false;
    }
    return true;
  }

  void ValueValidation(const json& s, bool skip_any_of, bool skip_first_all_of_any_of, Level level,
                       const std::string& path) {
    if (const json* p = Find(s, "pattern"); p != nullptr && p->is_string()) {
      auto compiled = Pattern::Compile(p->get<std::string>());
      if (!compiled.ok()) {
        errors_.push_back(FieldInvalid(
            path + ".pattern", *p,
            "must be a valid regular expression, but isn't: " + compiled.status().message()));
      }
    }
    auto junctor = [&](const char* key, bool skip_first_any_of) {
      const json* list = Find(s, key);
      if (list == nullptr || !list->is_array()) return;
      for (size_t i = 0; i < list->size(); ++i) {
        Nested((*list)[i], skip_first_any_of && i == 0, level,
               path + "." + key + "[" + std::to_string(i) + "]");
      }
    };
    if (!skip_any_of) junctor("anyOf", false);
    junctor("allOf", skip_first_all_of_any_of);
    junctor("oneOf", false);
    if (const json* n = Find(s, "not")) Nested(*n, false, level, path + ".not");
  }

  void Nested(const json& v, bool skip_any_of, Level level, const std::string& path) {
    if (!v.is_object()) return;
    ValueValidation(v, skip_any_of, false, level, path);
    if (const json* items = Find(v, "items"); items != nullptr && items->is_object()) {
      Nested(*items, false, level, path + ".items");
    }
    if (const json* props = Find(v, "properties"); props != nullptr && props->is_object()) {
      for (const auto& [k, sub] : props->items()) {
        Nested(sub, false, Level::kField, path + ".properties[" + k + "]");
      }
      if (props->contains("metadata")) {
        errors_.push_back(FieldForbidden(path + ".properties[metadata]",
                                         "must not be specified in a nested context"));
      }
    }
    auto forbid = [&](const char* key, const char* detail) {
      errors_.push_back(FieldForbidden(path + "." + key, detail));
    };
    if (!v.value("type", std::string()).empty()) forbid("type", "must be empty to be structural");
    if (v.contains("additionalProperties"))
      forbid("additionalProperties", "must be undefined to be structural");
    if (v.contains("default")) forbid("default", "must be undefined to be structural");
    if (!v.value("title", std::string()).empty()) forbid("title", "must be empty to be structural");
    if (!v.value("description", std::string()).empty())
      forbid("description", "must be empty to be structural");
    if (v.value("nullable", false)) forbid("nullable", "must be false to be structural");
    for (const char* x : {"x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
                          "x-kubernetes-int-or-string"}) {
      if (v.value(x, false)) forbid(x, "must be false to be structural");
    }
    if (const json* keys = Find(v, "x-kubernetes-list-map-keys");
        keys != nullptr && !keys->empty()) {
      forbid("x-kubernetes-list-map-keys", "must be empty to be structural");
    }
    if (v.contains("x-kubernetes-list-type"))
      forbid("x-kubernetes-list-type", "must be undefined to be structural");
  }

  std::vector<FieldError>& errors_;
};

// Adds apiVersion, kind and metadata where upstream treats them as implicitly declared: at the
// root and on embedded resources.
void AddImplicitObjectFields(Schema& s, const Schema* object_meta, SchemaSet& into,
                             std::set<const Schema*>& seen, bool root) {
  if (!seen.insert(&s).second) return;
  if (root || s.embedded_resource) {
    auto str = [&]() {
      Schema* n = into.New();
      n->type = Schema::Type::kString;
      return n;
    };
    const Schema* meta = object_meta;
    if (meta == nullptr) {
      Schema* any = into.New();
      any->type = Schema::Type::kObject;
      any->preserve_unknown_fields = true;
      meta = any;
    }
    std::vector<Property> implicit = {
        {"apiVersion",
         "APIVersion defines the versioned schema of this representation of an object.", str()},
        {"kind", "Kind is a string value representing the REST resource this object represents.",
         str()},
        {"metadata", "Standard object's metadata.", meta}};
    for (Property& p : implicit) {
      auto it = std::find_if(s.properties.begin(), s.properties.end(),
                             [&](const Property& q) { return q.name == p.name; });
      if (it == s.properties.end()) {
        s.properties.push_back(std::move(p));
      } else if (p.name == "metadata") {
        it->schema = meta;  // only name/generateName may be restricted; ObjectMeta rules
      }
    }
    std::sort(s.properties.begin(), s.properties.end(),
              [](const Property& a, const Property& b) { return a.name < b.name; });
  }
  for (Property& p : s.properties) {
    if (p.schema != nullptr && p.schema != object_meta) {
      AddImplicitObjectFields(const_cast<Schema&>(*p.schema), object_meta, into, seen, false);
    }
  }
  if (s.items != nullptr) {
    AddImplicitObjectFields(const_cast<Schema&>(*s.items), object_meta, into, seen, false);
  }
  if (s.additional_properties != nullptr) {
    AddImplicitObjectFields(const_cast<Schema&>(*s.additional_properties), object_meta, into, seen,
                            false);
  }
}

Result<Schema*> ConvertCrdSchema(const json& schema, SchemaSet& into) {
  try {
    CrdConverter converter(into);
    return converter.Convert(schema, "openAPIV3Schema");
  } catch (const ConvertError& e) {
    return InvalidArgument(e.message);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("openAPIV3Schema: ") + e.what());
  }
}

}  // namespace

Result<std::unique_ptr<SchemaSet>> LoadSchemas(const std::vector<SchemaFile>& files) {
  auto set = std::make_unique<SchemaSet>();
  try {
    Loader loader(*set);
    Status st = loader.Load(files);
    if (!st.ok()) return st;
  } catch (const std::exception& e) {  // allocation failures, json internals: never escape
    return Internal(std::string("loading schemas: ") + e.what());
  }
  return set;
}

std::vector<SchemaFile> BuiltinSchemaFiles() {
  std::vector<SchemaFile> files;
  files.reserve(kEmbeddedSchemaFileCount);
  for (size_t i = 0; i < kEmbeddedSchemaFileCount; ++i) {
    const EmbeddedSchemaFile& f = kEmbeddedSchemaFiles[i];
    files.push_back(SchemaFile{f.name, std::string_view(f.text, f.size)});
  }
  return files;
}

Result<std::unique_ptr<SchemaSet>> LoadBuiltinSchemas() {
  auto set = LoadSchemas(BuiltinSchemaFiles());
#if defined(__GLIBC__)
  malloc_trim(0);  // the parser's scratch is gone; give its pages back (resting RSS)
#endif
  return set;
}

Result<const Schema*> SchemaFromOpenApiV3(const json& open_api_v3_schema, SchemaSet& into) {
  auto r = ConvertCrdSchema(open_api_v3_schema, into);
  if (!r.ok()) return r.status();
  return static_cast<const Schema*>(*r);
}

std::vector<FieldError> ValidateStructuralSchema(const json& open_api_v3_schema,
                                                 const std::string& path) {
  std::vector<FieldError> errors;
  try {
    StructuralChecker checker(errors);
    checker.Invariants(open_api_v3_schema, Level::kRoot, path);
  } catch (const std::exception& e) {
    errors.push_back(FieldInvalid(path, "", std::string("internal error: ") + e.what()));
  }
  std::sort(errors.begin(), errors.end(),
            [](const FieldError& a, const FieldError& b) { return a.ToString() < b.ToString(); });
  return errors;
}

Result<const Schema*> AddCustomResourceSchema(SchemaSet& into, const json& open_api_v3_schema,
                                              const std::string& group, const std::string& version,
                                              const std::string& kind, const SchemaSet* builtins) {
  try {
    auto converted = ConvertCrdSchema(open_api_v3_schema, into);
    if (!converted.ok()) return converted.status();
    Schema* root = *converted;
    // com.example.stable.v1.CronTab: the group reversed, as upstream names CRD definitions.
    std::vector<std::string> parts;
    for (size_t start = 0; start <= group.size();) {
      size_t dot = group.find('.', start);
      if (dot == std::string::npos) dot = group.size();
      parts.push_back(group.substr(start, dot - start));
      start = dot + 1;
    }
    std::string prefix;
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      if (!prefix.empty()) prefix += '.';
      prefix += *it;
    }
    std::string name = prefix + "." + version + "." + kind;
    if (into.Find(name) != nullptr) return AlreadyExists("schema " + name + " exists");
    const Schema* object_meta =
        builtins ? builtins->Find("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta") : nullptr;
    std::set<const Schema*> seen;
    if (root->type == Schema::Type::kAny) root->type = Schema::Type::kObject;
    AddImplicitObjectFields(*root, object_meta, into, seen, true);
    root->name = name;
    root->gvks.push_back({group, version, kind});
    into.AddNamed(root);

    Schema* list = into.New();
    list->type = Schema::Type::kObject;
    list->name = name + "List";
    list->description = kind + "List is a list of " + kind;
    Schema* str = into.New();
    str->type = Schema::Type::kString;
    Schema* items = into.New();
    items->type = Schema::Type::kArray;
    items->items = root;
    const Schema* list_meta =
        builtins ? builtins->Find("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta") : nullptr;
    if (list_meta == nullptr) {
      Schema* any = into.New();
      any->type = Schema::Type::kObject;
      any->preserve_unknown_fields = true;
      list_meta = any;
    }
    list->properties = {
        {"apiVersion",
         "APIVersion defines the versioned schema of this representation of an object.", str},
        {"items", "List of " + kind + ". ", items},
        {"kind", "Kind is a string value representing the REST resource this object represents.",
         str},
        {"metadata", "Standard list metadata.", list_meta}};
    list->required = {"items"};
    list->gvks.push_back({group, version, kind + "List"});
    into.AddNamed(list);
    return static_cast<const Schema*>(root);
  } catch (const std::exception& e) {
    return Internal(std::string("adding custom resource schema: ") + e.what());
  }
}

}  // namespace orch::api
