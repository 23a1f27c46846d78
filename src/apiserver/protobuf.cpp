// Implementation of protobuf.h: a bounds-checked reader of the protobuf wire format and a
// schema-driven translation of Kubernetes messages into their JSON form.
#include "protobuf.h"

#include <cmath>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <vector>

#include "orch/base64.h"

namespace orch::api {
namespace {

constexpr int kMaxDepth = 100;
constexpr std::string_view kMagic{"k8s\0", 4};
constexpr std::string_view kMetaPackage = "io.k8s.apimachinery.pkg.apis.meta.v1.";
constexpr std::string_view kApiextPackage =
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.";
constexpr int64_t kGoZeroTimeSeconds = -62135596800;  // 0001-01-01T00:00:00Z, Go's zero Time

// Thrown inside this file only; the public functions return it as a Status.
struct DecodeError {
  std::string message;
};

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5 };

struct Field {
  uint32_t number = 0;
  uint32_t wire = 0;
  uint64_t bits = 0;       // kVarint, kFixed64, kFixed32
  std::string_view bytes;  // kBytes
};

// Reads fields off a message; every read is bounds-checked and throws DecodeError on bad input.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  bool Done() const { return pos_ >= data_.size(); }

  Field Next() {
    uint64_t key = Varint();
    uint64_t number = key >> 3;
    if (number == 0 || number > (1u << 29) - 1) throw DecodeError{"invalid field number"};
    Field f;
    f.number = static_cast<uint32_t>(number);
    f.wire = static_cast<uint32_t>(key & 7);
    switch (f.wire) {
      case kVarint:
        f.bits = Varint();
        break;
      case kFixed64:
        f.bits = Fixed(8);
        break;
      case kFixed32:
        f.bits = Fixed(4);
        break;
      case kBytes: {
        uint64_t n = Varint();
        if (n > data_.size() - pos_) throw DecodeError{"truncated length-delimited field"};
        f.bytes = data_.substr(pos_, static_cast<size_t>(n));
        pos_ += static_cast<size_t>(n);
        break;
      }
      default:
        throw DecodeError{"unsupported wire type " + std::to_string(f.wire)};
    }
    return f;
  }

  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) throw DecodeError{"truncated varint"};
      auto b = static_cast<uint8_t>(data_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    throw DecodeError{"varint longer than 10 bytes"};
  }

  uint64_t Fixed(int size) {
    if (data_.size() - pos_ < static_cast<size_t>(size)) throw DecodeError{"truncated fixed field"};
    uint64_t v = 0;
    for (int i = size - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(data_[pos_ + i]);
    pos_ += static_cast<size_t>(size);
    return v;
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

// Go's json.Marshal of a string: invalid UTF-8 bytes become U+FFFD (each byte on its own).
std::string ValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<uint8_t>(s[i]);
    size_t len = 0;
    uint32_t min = 0, cp = 0;
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2, min = 0x80, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, min = 0x800, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, min = 0x10000, cp = c & 0x07;
    }
    bool ok = len != 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xc0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (ok && (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))) ok = false;
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  return out;
}

// Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
void CivilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
}

// RFC 3339 in UTC, as metav1.Time (micro = false) and metav1.MicroTime (micro = true) marshal.
std::string FormatUnixTime(int64_t seconds, int64_t nanos, bool micro) {
  // time.Unix normalizes nanoseconds outside [0, 1e9).
  seconds += nanos / 1000000000;
  nanos %= 1000000000;
  if (nanos < 0) {
    nanos += 1000000000;
    --seconds;
  }
  constexpr int64_t kMin = -62167219200;  // 0000-01-01T00:00:00Z
  constexpr int64_t kMax = 253402300799;  // 9999-12-31T23:59:59Z
  if (seconds < kMin || seconds > kMax) throw DecodeError{"time out of range"};
  int64_t days = seconds / 86400, rem = seconds % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  int64_t y = 0;
  unsigned m = 0, d = 0;
  CivilFromDays(days, y, m, d);
  char buf[48];
  int n = std::snprintf(buf, sizeof(buf), "%04lld-%02u-%02uT%02d:%02d:%02d",
                        static_cast<long long>(y), m, d, static_cast<int>(rem / 3600),
                        static_cast<int>(rem / 60 % 60), static_cast<int>(rem % 60));
  std::string out(buf, static_cast<size_t>(n));
  if (micro) {
    std::snprintf(buf, sizeof(buf), ".%06d", static_cast<int>(nanos / 1000));
    out += buf;
  }
  return out + "Z";
}

bool IsZeroScalar(const json& v) {
  return (v.is_string() && v.get_ref<const std::string&>().empty()) ||
         (v.is_boolean() && !v.get<bool>()) || (v.is_number_integer() && v.get<int64_t>() == 0) ||
         (v.is_number_float() && v.get<double>() == 0.0);
}

bool IsMap(const Schema& s) {
  return s.type == Schema::Type::kObject && s.additional_properties != nullptr &&
         s.properties.empty();
}

// Scalars a repeated field may carry packed (one length-delimited run of values).
bool IsPackable(const Schema& s) {
  return s.type == Schema::Type::kInteger || s.type == Schema::Type::kBoolean ||
         s.type == Schema::Type::kNumber;
}

// The field numbers of one message type: direct fields, and those of Go structs embedded inline
// (travelling as one message field of the parent).
struct FieldIndex {
  std::unordered_map<int32_t, const Property*> direct;
  std::unordered_map<int32_t, std::unordered_map<int32_t, const Property*>> inlined;
};

class Decoder {
 public:
  explicit Decoder(const SchemaSet& schemas) : schemas_(schemas) {}

  // The envelope: magic, then runtime.Unknown.
  json Object(std::string_view body, const Schema* expected, int depth) {
    if (body.size() < kMagic.size() || body.substr(0, kMagic.size()) != kMagic) {
      throw DecodeError{"not a Kubernetes protobuf object (missing the k8s\\0 prefix)"};
    }
    std::string api_version, kind, content_encoding;
    std::string_view raw;
    Reader r(body.substr(kMagic.size()));
    while (!r.Done()) {
      Field f = r.Next();
      if (f.number == 1) {
        Reader tm(Bytes(f, "typeMeta"));
        while (!tm.Done()) {
          Field g = tm.Next();
          if (g.number == 1) api_version = ValidUtf8(Bytes(g, "apiVersion"));
          if (g.number == 2) kind = ValidUtf8(Bytes(g, "kind"));
        }
      } else if (f.number == 2) {
        raw = Bytes(f, "raw");
      } else if (f.number == 3) {
        content_encoding = std::string(Bytes(f, "contentEncoding"));
      }
    }
    if (!content_encoding.empty()) {
      throw DecodeError{"unsupported content encoding \"" + ValidUtf8(content_encoding) + "\""};
    }
    const Schema* schema = nullptr;
    if (!kind.empty()) {
      size_t slash = api_version.find('/');
      std::string group = slash == std::string::npos ? "" : api_version.substr(0, slash);
      std::string version =
          slash == std::string::npos ? api_version : api_version.substr(slash + 1);
      schema = schemas_.FindKind(group, version, kind);
    }
    if (schema == nullptr) schema = expected;
    if (schema == nullptr) {
      throw DecodeError{"no protobuf schema for kind \"" + kind + "\" of \"" + api_version + "\""};
    }
    bool on_wire = false;
    for (const Property& p : schema->properties) on_wire = on_wire || p.proto_field != 0;
    if (!on_wire) {
      throw DecodeError{"kind \"" + (kind.empty() ? schema->name : kind) +
                        "\" has no protobuf representation"};
    }
    json obj = Message(raw, *schema, depth + 1);
    if (!api_version.empty()) obj["apiVersion"] = api_version;
    if (!kind.empty()) obj["kind"] = kind;
    return obj;
  }

  json Message(std::string_view data, const Schema& schema, int depth) {
    json out = json::object();
    Into(out, data, schema, depth);
    return out;
  }

  std::string Path() const {
    std::string p;
    for (const std::string& name : path_) p += (p.empty() ? "" : ".") + name;
    return p;
  }

 private:
  // Decodes the fields of a message of `schema` into `out` (an object), merging as protobuf
  // does when a message field occurs more than once.
  void Into(json& out, std::string_view data, const Schema& schema, int depth) {
    if (depth > kMaxDepth) throw DecodeError{"nested too deeply"};
    const FieldIndex& index = IndexOf(schema);
    Reader r(data);
    while (!r.Done()) {
      Field f = r.Next();
      if (auto it = index.direct.find(static_cast<int32_t>(f.number)); it != index.direct.end()) {
        AddField(out, *it->second, f, depth);
      } else if (auto in = index.inlined.find(static_cast<int32_t>(f.number));
                 in != index.inlined.end()) {
        if (depth + 1 > kMaxDepth) throw DecodeError{"nested too deeply"};
        Reader inner(Bytes(f, "inline struct"));
        while (!inner.Done()) {
          Field g = inner.Next();
          auto p = in->second.find(static_cast<int32_t>(g.number));
          if (p != in->second.end()) AddField(out, *p->second, g, depth + 1);
        }
      }
      // Unknown field numbers are skipped, as Go's decoder does.
    }
  }

  const FieldIndex& IndexOf(const Schema& schema) {
    auto [it, inserted] = indexes_.try_emplace(&schema);
    if (inserted) {
      for (const Property& p : schema.properties) {
        if (p.proto_field == 0 || p.schema == nullptr) continue;
        if (p.proto_inline == 0) {
          it->second.direct.emplace(p.proto_field, &p);
        } else {
          it->second.inlined[p.proto_inline].emplace(p.proto_field, &p);
        }
      }
    }
    return it->second;
  }

  // One occurrence of a field on the wire, into out[p.name].
  void AddField(json& out, const Property& p, const Field& f, int depth) {
    const Schema& s = *p.schema;
    path_.push_back(p.name);
    if (s.type == Schema::Type::kArray && s.items != nullptr) {
      json& arr = out[p.name];
      if (!arr.is_array()) arr = json::array();
      if (f.wire == kBytes && IsPackable(*s.items)) {
        Reader packed(f.bytes);
        while (!packed.Done()) {
          Field e;
          e.wire = s.items->type == Schema::Type::kNumber
                       ? (s.items->format == "float" ? kFixed32 : kFixed64)
                       : kVarint;
          e.bits = e.wire == kVarint ? packed.Varint() : packed.Fixed(e.wire == kFixed32 ? 4 : 8);
          arr.push_back(Value(e, *s.items, depth));
        }
      } else {
        arr.push_back(Value(f, *s.items, depth));
      }
    } else if (IsMap(s)) {
      json& obj = out[p.name];
      if (!obj.is_object()) obj = json::object();
      MapEntry(obj, f, *s.additional_properties, depth);
    } else if (IsPlainMessage(s)) {
      json& obj = out[p.name];
      if (!obj.is_object()) obj = json::object();
      Into(obj, Bytes(f), s, depth + 1);
    } else {
      json v = Value(f, s, depth);
      if (p.proto_omit_zero && IsZeroScalar(v)) {
        out.erase(p.name);
      } else {
        out[p.name] = std::move(v);
      }
    }
    path_.pop_back();
  }

  // A message decoded field by field (not one of the types with a JSON form of their own).
  bool IsPlainMessage(const Schema& s) const {
    return s.type == Schema::Type::kObject && !IsMap(s) && Special(s) == kNone;
  }

  enum SpecialType {
    kNone,
    kIntOrString,
    kQuantity,
    kTime,
    kMicroTime,
    kDuration,
    kRawJson,
    kPropsOrArray,
    kPropsOrBool,
    kPropsOrStringArray
  };

  static SpecialType Special(const Schema& s) {
    if (s.int_or_string) return kIntOrString;
    if (s.type == Schema::Type::kString && s.format == "quantity") return kQuantity;
    const std::string& name = s.TypeName();
    auto named = [&](std::string_view package, std::string_view type) {
      return name.size() == package.size() + type.size() &&
             name.compare(0, package.size(), package) == 0 &&
             name.compare(package.size(), type.size(), type) == 0;
    };
    if (s.type == Schema::Type::kString && s.format == "date-time") {
      return named(kMetaPackage, "MicroTime") ? kMicroTime : kTime;
    }
    if (named(kMetaPackage, "Duration")) return kDuration;
    if (named(kApiextPackage, "JSONSchemaPropsOrArray")) return kPropsOrArray;
    if (named(kApiextPackage, "JSONSchemaPropsOrBool")) return kPropsOrBool;
    if (named(kApiextPackage, "JSONSchemaPropsOrStringArray")) return kPropsOrStringArray;
    if (s.type == Schema::Type::kAny) return kRawJson;  // any, RawExtension, FieldsV1, JSON
    return kNone;
  }

  json Value(const Field& f, const Schema& s, int depth) {
    switch (Special(s)) {
      case kIntOrString:
        return IntOrStringValue(Bytes(f));
      case kQuantity:
        return QuantityValue(Bytes(f));
      case kTime:
        return TimeValue(Bytes(f), false);
      case kMicroTime:
        return TimeValue(Bytes(f), true);
      case kDuration:
        return DurationValue(Bytes(f));
      case kRawJson:
        return RawJson(Bytes(f), depth);
      case kPropsOrArray:
      case kPropsOrBool:
      case kPropsOrStringArray:
        return SchemaUnion(Special(s), Bytes(f), depth);
      case kNone:
        break;
    }
    switch (s.type) {
      case Schema::Type::kObject:
        if (IsMap(s)) throw DecodeError{"a map inside a list or map is not supported"};
        return Message(Bytes(f), s, depth + 1);
      case Schema::Type::kString:
        if (s.format == "byte") return Base64Encode(Bytes(f));
        return ValidUtf8(Bytes(f));
      case Schema::Type::kInteger: {
        uint64_t v = Varint(f);
        if (s.format == "int32") return static_cast<int32_t>(static_cast<uint32_t>(v));
        return static_cast<int64_t>(v);
      }
      case Schema::Type::kBoolean:
        return Varint(f) != 0;
      case Schema::Type::kNumber: {
        double d = 0;
        if (f.wire == kFixed64) {
          std::memcpy(&d, &f.bits, sizeof(d));
        } else if (f.wire == kFixed32) {
          auto bits = static_cast<uint32_t>(f.bits);
          float x = 0;
          std::memcpy(&x, &bits, sizeof(x));
          d = x;
        } else {
          throw WrongWire();
        }
        if (!std::isfinite(d)) throw DecodeError{Where() + "number is not finite"};
        return d;
      }
      case Schema::Type::kArray:
        throw DecodeError{Where() + "a list inside a list is not supported"};
      case Schema::Type::kAny:
        break;
    }
    throw DecodeError{Where() + "unsupported schema"};
  }

  // A map<string, V> entry: key = 1, value = 2; a missing value is V's zero value.
  void MapEntry(json& obj, const Field& f, const Schema& value_schema, int depth) {
    if (depth + 1 > kMaxDepth) throw DecodeError{"nested too deeply"};
    Reader r(Bytes(f));
    std::string key;
    std::optional<Field> value;
    while (!r.Done()) {
      Field e = r.Next();
      if (e.number == 1) key = ValidUtf8(Bytes(e, "map key"));
      if (e.number == 2) value = e;
    }
    if (value) {
      obj[key] = Value(*value, value_schema, depth + 1);
      return;
    }
    switch (value_schema.type) {
      case Schema::Type::kInteger:
        obj[key] = 0;
        return;
      case Schema::Type::kNumber:
        obj[key] = 0.0;
        return;
      case Schema::Type::kBoolean:
        obj[key] = false;
        return;
      default: {
        Field empty;
        empty.number = 2;
        empty.wire = kBytes;
        obj[key] = Value(empty, value_schema, depth + 1);
      }
    }
  }

  // intstr.IntOrString {int64 type = 1; int32 intVal = 2; string strVal = 3}.
  json IntOrStringValue(std::string_view data) {
    Reader r(data);
    uint64_t type = 0;
    int32_t int_val = 0;
    std::string str_val;
    while (!r.Done()) {
      Field f = r.Next();
      if (f.number == 1) type = Varint(f);
      if (f.number == 2) int_val = static_cast<int32_t>(static_cast<uint32_t>(Varint(f)));
      if (f.number == 3) str_val = ValidUtf8(Bytes(f));
    }
    if (type == 0) return int_val;
    if (type == 1) return str_val;
    throw DecodeError{Where() + "invalid IntOrString type " + std::to_string(type)};
  }

  // resource.Quantity {string string = 1}; kept as written (clients send canonical forms).
  json QuantityValue(std::string_view data) {
    Reader r(data);
    std::string s = "0";
    while (!r.Done()) {
      Field f = r.Next();
      if (f.number == 1) s = ValidUtf8(Bytes(f));
    }
    return s.empty() ? "0" : s;
  }

  // metav1.Time / MicroTime {int64 seconds = 1; int32 nanos = 2}. An empty message is the zero
  // time (JSON null); Time keeps whole seconds only, as its Unmarshal does.
  json TimeValue(std::string_view data, bool micro) {
    if (data.empty()) return nullptr;
    Reader r(data);
    int64_t seconds = 0, nanos = 0;
    while (!r.Done()) {
      Field f = r.Next();
      if (f.number == 1) seconds = static_cast<int64_t>(Varint(f));
      if (f.number == 2) nanos = static_cast<int32_t>(static_cast<uint32_t>(Varint(f)));
    }
    if (!micro) nanos = 0;
    if (seconds == kGoZeroTimeSeconds && nanos == 0) return nullptr;
    try {
      return FormatUnixTime(seconds, nanos, micro);
    } catch (const DecodeError& e) {
      throw DecodeError{Where() + e.message};
    }
  }

  // metav1.Duration {int64 duration = 1} in nanoseconds.
  json DurationValue(std::string_view data) {
    Reader r(data);
    int64_t ns = 0;
    while (!r.Done()) {
      Field f = r.Next();
      if (f.number == 1) ns = static_cast<int64_t>(Varint(f));
    }
    return GoDurationString(ns);
  }

  // RawExtension {bytes raw = 1}, FieldsV1 {bytes Raw = 1}, apiextensions JSON {bytes raw = 1}:
  // JSON text (or an embedded protobuf object); null when empty.
  json RawJson(std::string_view data, int depth) {
    Reader r(data);
    std::string_view raw;
    while (!r.Done()) {
      Field f = r.Next();
      if (f.number == 1) raw = Bytes(f);
    }
    if (raw.empty()) return nullptr;
    if (raw.size() >= kMagic.size() && raw.substr(0, kMagic.size()) == kMagic) {
      return Object(raw, nullptr, depth + 1);
    }
    struct TooDeep {};
    int budget = kMaxDepth - depth;
    json::parser_callback_t limit = [budget](int d, json::parse_event_t, json&) {
      if (d > budget) throw TooDeep();
      return true;
    };
    try {
      return json::parse(raw.begin(), raw.end(), limit);
    } catch (const TooDeep&) {
      throw DecodeError{"nested too deeply"};
    } catch (const json::exception&) {
      throw DecodeError{Where() + "embedded value is not valid JSON"};
    }
  }

  // JSONSchemaPropsOrArray {schema = 1; repeated jSONSchemas = 2},
  // JSONSchemaPropsOrBool {bool allows = 1; schema = 2},
  // JSONSchemaPropsOrStringArray {schema = 1; repeated string property = 2}:
  // as their MarshalJSON writes them.
  json SchemaUnion(SpecialType type, std::string_view data, int depth) {
    const Schema* props = schemas_.Find(std::string(kApiextPackage) + "JSONSchemaProps");
    if (props == nullptr) throw DecodeError{Where() + "no JSONSchemaProps schema"};
    if (depth + 1 > kMaxDepth) throw DecodeError{"nested too deeply"};
    uint32_t schema_field = type == kPropsOrBool ? 2 : 1;
    std::optional<json> schema;
    json list = json::array();
    bool allows = false;
    Reader r(data);
    while (!r.Done()) {
      Field f = r.Next();
      if (f.number == schema_field) {
        if (!schema) schema = json::object();
        Into(*schema, Bytes(f), *props, depth + 1);
      } else if (type == kPropsOrBool && f.number == 1) {
        allows = Varint(f) != 0;
      } else if (type == kPropsOrArray && f.number == 2) {
        list.push_back(Message(Bytes(f), *props, depth + 1));
      } else if (type == kPropsOrStringArray && f.number == 2) {
        list.push_back(ValidUtf8(Bytes(f)));
      }
    }
    if (type == kPropsOrBool) return schema ? *schema : json(allows);
    if (!list.empty()) return list;
    return schema ? *schema : json(nullptr);
  }

  std::string Where() const {
    std::string p = Path();
    return p.empty() ? "" : p + ": ";
  }

  DecodeError WrongWire() const { return DecodeError{Where() + "unexpected wire type"}; }

  std::string_view Bytes(const Field& f, const char* what = nullptr) const {
    if (f.wire != kBytes) {
      throw DecodeError{what == nullptr ? WrongWire().message
                                        : Where() + what + ": unexpected wire type"};
    }
    return f.bytes;
  }

  uint64_t Varint(const Field& f) const {
    if (f.wire != kVarint) throw WrongWire();
    return f.bits;
  }

  const SchemaSet& schemas_;
  std::unordered_map<const Schema*, FieldIndex> indexes_;
  std::vector<std::string> path_;
};

template <typename Fn>
Result<json> Guard(Decoder& decoder, Fn fn) {
  try {
    return fn();
  } catch (const DecodeError& e) {
    return InvalidArgument("invalid protobuf body: " + e.message);
  } catch (const std::exception& e) {
    return InvalidArgument("invalid protobuf body: " + decoder.Path() + ": " + e.what());
  }
}

}  // namespace

Result<json> DecodeProtobufObject(std::string_view body, const SchemaSet& schemas,
                                  const Schema* expected) {
  Decoder decoder(schemas);
  return Guard(decoder, [&] { return decoder.Object(body, expected, 0); });
}

Result<json> DecodeProtobufMessage(std::string_view message, const SchemaSet& schemas,
                                   const Schema& schema) {
  Decoder decoder(schemas);
  return Guard(decoder, [&] { return decoder.Message(message, schema, 1); });
}

std::string GoDurationString(int64_t nanoseconds) {
  if (nanoseconds == 0) return "0s";
  bool neg = nanoseconds < 0;
  uint64_t u = neg ? 0 - static_cast<uint64_t>(nanoseconds) : static_cast<uint64_t>(nanoseconds);
  // Fraction of v / 10^prec without trailing zeros (and without the dot when it is zero).
  auto frac = [](uint64_t& v, int prec) {
    std::string digits;
    bool print = false;
    for (int i = 0; i < prec; ++i) {
      auto digit = static_cast<char>('0' + v % 10);
      print = print || digit != '0';
      if (print) digits.insert(digits.begin(), digit);
      v /= 10;
    }
    return print ? "." + digits : std::string();
  };
  std::string out;
  if (u < 1000000000ULL) {
    std::string unit;
    int prec = 0;
    if (u < 1000ULL) {
      unit = "ns";
    } else if (u < 1000000ULL) {
      unit = "\xc2\xb5s";  // µs
      prec = 3;
    } else {
      unit = "ms";
      prec = 6;
    }
    std::string f = frac(u, prec);
    out = std::to_string(u) + f + unit;
  } else {
    std::string f = frac(u, 9);  // u is now whole seconds
    out = std::to_string(u % 60) + f + "s";
    u /= 60;
    if (u > 0) {
      out = std::to_string(u % 60) + "m" + out;
      u /= 60;
      if (u > 0) out = std::to_string(u) + "h" + out;
    }
  }
  return neg ? "-" + out : out;
}

}  // namespace orch::api
