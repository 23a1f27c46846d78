// Implementation of orch/labels.h, following k8s.io/apimachinery (pkg/labels/selector.go,
// pkg/util/validation, pkg/apis/meta/v1) for grammar, matching and error text.
#include "orch/labels.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <utility>

#include "orch/go_strconv.h"

namespace orch {

using json = nlohmann::json;

namespace {

// ---------------------------------------------------------------------------------------------
// Syntax of names and labels.

constexpr std::string_view kQualifiedNameFmt = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
constexpr std::string_view kQualifiedNameErrMsg =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character";
constexpr std::string_view kLabelValueFmt = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
constexpr std::string_view kLabelValueErrMsg =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character";
constexpr std::string_view kDns1123LabelFmt = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
constexpr std::string_view kDns1123LabelErrMsg =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character";
constexpr std::string_view kDns1123SubdomainFmt =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
constexpr std::string_view kDns1123SubdomainErrMsg =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character";
constexpr std::string_view kDns1035LabelFmt = "[a-z]([-a-z0-9]*[a-z0-9])?";
constexpr std::string_view kDns1035LabelErrMsg =
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character";
constexpr size_t kQualifiedNameMaxLength = 63;
constexpr size_t kLabelValueMaxLength = 63;
constexpr size_t kDns1123LabelMaxLength = 63;
constexpr size_t kDns1123SubdomainMaxLength = 253;

// validation.RegexError: "<msg> (e.g. 'a',  or 'b', regex used for validation is '<fmt>')".
std::string RegexError(std::string_view msg, std::string_view regex,
                       std::initializer_list<std::string_view> examples) {
  if (examples.size() == 0) {
    return fmt::format("{} (regex used for validation is '{}')", msg, regex);
  }
  std::string list;
  for (std::string_view e : examples) {
    if (!list.empty()) list.append(" or ");
    list.append("'").append(e).append("', ");
  }
  return fmt::format("{} (e.g. {}regex used for validation is '{}')", msg, list, regex);
}

std::string MaxLenError(size_t length) {
  return fmt::format("must be no more than {} characters", length);
}

bool IsLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool IsAlnum(char c) {
  return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z');
}

// ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9], any length.
bool MatchesQualifiedName(std::string_view s) {
  if (s.empty() || !IsAlnum(s.front()) || !IsAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

// [a-z0-9]([-a-z0-9]*[a-z0-9])?, any length.
bool MatchesDns1123Label(std::string_view s) {
  if (s.empty() || !IsLowerAlnum(s.front()) || !IsLowerAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; });
}

bool MatchesDns1123Subdomain(std::string_view s) {
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    if (!MatchesDns1123Label(s.substr(start, dot == std::string_view::npos ? dot : dot - start))) {
      return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool MatchesDns1035Label(std::string_view s) {
  return MatchesDns1123Label(s) && s.front() >= 'a' && s.front() <= 'z';
}

// Go's %#v of a []string: []string{"a", "b"}, or []string(nil) for a nil slice.
std::string GoStringSlice(const std::vector<std::string>& values, bool is_nil) {
  if (is_nil) return "[]string(nil)";
  std::vector<std::string> quoted;
  for (const std::string& v : values) quoted.push_back(GoQuote(v));
  return fmt::format("[]string{{{}}}", fmt::join(quoted, ", "));
}

// field.Error.Error() of an Invalid error whose bad value has already been formatted.
std::string InvalidError(const std::string& path, const std::string& formatted_value,
                         const std::string& detail) {
  return path + ": Invalid value: " + formatted_value + ": " + detail;
}

// utilerrors.NewAggregate(...).Error(): one message as is, several as "[a, b]" (duplicates once).
std::string Aggregate(const std::vector<std::string>& messages) {
  std::vector<std::string> unique;
  for (const std::string& m : messages) {
    if (std::find(unique.begin(), unique.end(), m) == unique.end()) unique.push_back(m);
  }
  if (unique.size() == 1) return unique[0];
  return fmt::format("[{}]", fmt::join(unique, ", "));
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  return fmt::format("{}", fmt::join(parts, sep));
}

// The string value of a label (or any scalar) in a JSON object; nullopt when absent.
std::optional<std::string> LabelValue(const json& labels, const std::string& key) {
  if (!labels.is_object()) return std::nullopt;
  auto it = labels.find(key);
  if (it == labels.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_null()) return std::string();
  return it->dump();
}

// ---------------------------------------------------------------------------------------------
// Label selector requirements.

using Op = LabelSelector::Op;
using Requirement = LabelSelector::Requirement;

// labels.NewRequirement: validates and returns the requirement, or the aggregated error text.
// `values_nil` tells the formatter that the caller passed a nil slice (Go prints it
// differently from an empty one).
Result<Requirement> NewRequirement(std::string key, Op op, std::vector<std::string> values,
                                   bool values_nil) {
  std::vector<std::string> errors;
  if (std::vector<std::string> errs = IsQualifiedName(key); !errs.empty()) {
    errors.push_back(InvalidError("key", GoQuote(key), Join(errs, "; ")));
  }
  const std::string formatted_values = GoStringSlice(values, values_nil);
  switch (op) {
    case Op::kIn:
    case Op::kNotIn:
      if (values.empty()) {
        errors.push_back(InvalidError("values", formatted_values,
                                      "for 'in', 'notin' operators, values set can't be empty"));
      }
      break;
    case Op::kEquals:
    case Op::kDoubleEquals:
    case Op::kNotEquals:
      if (values.size() != 1) {
        errors.push_back(InvalidError("values", formatted_values,
                                      "exact-match compatibility requires one single value"));
      }
      break;
    case Op::kExists:
    case Op::kDoesNotExist:
      if (!values.empty()) {
        errors.push_back(InvalidError("values", formatted_values,
                                      "values set must be empty for exists and does not exist"));
      }
      break;
    case Op::kGreaterThan:
    case Op::kLessThan:
      if (values.size() != 1) {
        errors.push_back(InvalidError("values", formatted_values,
                                      "for 'Gt', 'Lt' operators, exactly one value is required"));
      }
      for (size_t i = 0; i < values.size(); ++i) {
        if (!GoParseInt(values[i])) {
          errors.push_back(InvalidError(fmt::format("values[{}]", i), GoQuote(values[i]),
                                        "for 'Gt', 'Lt' operators, the value must be an integer"));
        }
      }
      break;
  }
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::vector<std::string> errs = IsValidLabelValue(values[i]); !errs.empty()) {
      errors.push_back(InvalidError(fmt::format("values[{}][{}]", i, key), GoQuote(values[i]),
                                    Join(errs, "; ")));
    }
  }
  if (!errors.empty()) return InvalidArgument(Aggregate(errors));
  return Requirement{std::move(key), op, std::move(values)};
}

std::string RequirementString(const Requirement& r) {
  std::string out;
  if (r.op == Op::kDoesNotExist) out += "!";
  out += r.key;
  switch (r.op) {
    case Op::kEquals:
      out += "=";
      break;
    case Op::kDoubleEquals:
      out += "==";
      break;
    case Op::kNotEquals:
      out += "!=";
      break;
    case Op::kIn:
      out += " in ";
      break;
    case Op::kNotIn:
      out += " notin ";
      break;
    case Op::kGreaterThan:
      out += ">";
      break;
    case Op::kLessThan:
      out += "<";
      break;
    case Op::kExists:
    case Op::kDoesNotExist:
      return out;
  }
  const bool set = r.op == Op::kIn || r.op == Op::kNotIn;
  if (set) out += "(";
  std::vector<std::string> sorted = r.values;
  std::sort(sorted.begin(), sorted.end());
  out += Join(sorted, ",");
  if (set) out += ")";
  return out;
}

// ---------------------------------------------------------------------------------------------
// The label selector lexer and parser (labels.Lexer / labels.Parser).

enum class Token {
  kError,
  kEndOfString,
  kClosedPar,
  kComma,
  kDoesNotExist,
  kDoubleEquals,
  kEquals,
  kGreaterThan,
  kIdentifier,
  kIn,
  kLessThan,
  kNotEquals,
  kNotIn,
  kOpenPar,
};

std::optional<Token> KeywordToken(std::string_view s) {
  static constexpr std::pair<std::string_view, Token> kTokens[] = {
      {")", Token::kClosedPar},     {",", Token::kComma},    {"!", Token::kDoesNotExist},
      {"==", Token::kDoubleEquals}, {"=", Token::kEquals},   {">", Token::kGreaterThan},
      {"in", Token::kIn},           {"<", Token::kLessThan}, {"!=", Token::kNotEquals},
      {"notin", Token::kNotIn},     {"(", Token::kOpenPar},
  };
  for (const auto& [text, token] : kTokens) {
    if (text == s) return token;
  }
  return std::nullopt;
}

bool IsWhitespace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
bool IsSpecialSymbol(char c) {
  return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '>' || c == '<';
}

struct Item {
  Token token;
  std::string literal;
};

std::vector<Item> Scan(std::string_view s) {
  std::vector<Item> items;
  size_t pos = 0;
  while (true) {
    while (pos < s.size() && IsWhitespace(s[pos])) ++pos;
    if (pos >= s.size()) {
      items.push_back({Token::kEndOfString, ""});
      return items;
    }
    if (IsSpecialSymbol(s[pos])) {
      // The longest run of special symbols that is still a token ("!=", "==", ...).
      std::string buffer;
      std::optional<Item> last;
      while (pos < s.size() && IsSpecialSymbol(s[pos])) {
        buffer += s[pos];
        if (std::optional<Token> t = KeywordToken(buffer)) {
          last = Item{*t, buffer};
          ++pos;
        } else if (last) {
          break;
        } else {
          ++pos;
        }
      }
      if (!last) {
        items.push_back({Token::kError, "error expected: keyword found '" + buffer + "'"});
      } else {
        items.push_back(*last);
      }
      continue;
    }
    size_t start = pos;
    while (pos < s.size() && !IsSpecialSymbol(s[pos]) && !IsWhitespace(s[pos])) ++pos;
    std::string word(s.substr(start, pos - start));
    std::optional<Token> t = KeywordToken(word);
    items.push_back({t ? *t : Token::kIdentifier, word});
  }
}

class Parser {
 public:
  explicit Parser(std::string_view text) : items_(Scan(text)) {}

  Result<std::vector<Requirement>> Parse() {
    std::vector<Requirement> requirements;
    while (true) {
      Item next = Lookahead(kValues);
      if (next.token == Token::kEndOfString) return requirements;
      if (next.token != Token::kIdentifier && next.token != Token::kDoesNotExist) {
        return InvalidArgument("found '" + next.literal +
                               "', expected: !, identifier, or 'end of string'");
      }
      Result<Requirement> r = ParseRequirement();
      if (!r.ok()) return InvalidArgument("unable to parse requirement: " + r.status().message());
      requirements.push_back(std::move(*r));
      Item after = Consume(kValues);
      if (after.token == Token::kEndOfString) return requirements;
      if (after.token != Token::kComma) {
        return InvalidArgument("found '" + after.literal + "', expected: ',' or 'end of string'");
      }
      Item following = Lookahead(kValues);
      if (following.token != Token::kIdentifier && following.token != Token::kDoesNotExist) {
        return InvalidArgument("found '" + following.literal + "', expected: identifier after ','");
      }
    }
  }

 private:
  // In the values context "in" and "notin" are plain identifiers ("x in (in)").
  enum Context { kKeyAndOperator, kValues };

  Item Lookahead(Context ctx) const { return Adjust(items_[pos_], ctx); }
  Item Consume(Context ctx) {
    Item item = Adjust(items_[pos_], ctx);
    if (pos_ + 1 < items_.size()) ++pos_;
    return item;
  }
  static Item Adjust(Item item, Context ctx) {
    if (ctx == kValues && (item.token == Token::kIn || item.token == Token::kNotIn)) {
      item.token = Token::kIdentifier;
    }
    return item;
  }

  Result<Requirement> ParseRequirement() {
    Item key = Consume(kValues);
    bool does_not_exist = false;
    if (key.token == Token::kDoesNotExist) {
      does_not_exist = true;
      key = Consume(kValues);
    }
    if (key.token != Token::kIdentifier) {
      return InvalidArgument("found '" + key.literal + "', expected: identifier");
    }
    // Upstream validates the key with a nil field path, hence "<nil>".
    if (std::vector<std::string> errs = IsQualifiedName(key.literal); !errs.empty()) {
      return InvalidArgument(InvalidError("<nil>", GoQuote(key.literal), Join(errs, "; ")));
    }
    Token next = Lookahead(kValues).token;
    if (does_not_exist) return NewRequirement(key.literal, Op::kDoesNotExist, {}, false);
    if (next == Token::kEndOfString || next == Token::kComma) {
      return NewRequirement(key.literal, Op::kExists, {}, false);
    }

    Item op_item = Consume(kKeyAndOperator);
    Op op;
    switch (op_item.token) {
      case Token::kIn:
        op = Op::kIn;
        break;
      case Token::kEquals:
        op = Op::kEquals;
        break;
      case Token::kDoubleEquals:
        op = Op::kDoubleEquals;
        break;
      case Token::kGreaterThan:
        op = Op::kGreaterThan;
        break;
      case Token::kLessThan:
        op = Op::kLessThan;
        break;
      case Token::kNotIn:
        op = Op::kNotIn;
        break;
      case Token::kNotEquals:
        op = Op::kNotEquals;
        break;
      default:
        return InvalidArgument("found '" + op_item.literal +
                               "', expected: in, notin, =, ==, !=, gt, lt");
    }
    Result<std::set<std::string>> values =
        (op == Op::kIn || op == Op::kNotIn) ? ParseValues() : ParseExactValue();
    if (!values.ok()) return values.status();
    return NewRequirement(key.literal, op, {values->begin(), values->end()}, false);
  }

  // "(" values ")": the set of values, "" standing for every empty one.
  Result<std::set<std::string>> ParseValues() {
    Item open = Consume(kValues);
    if (open.token != Token::kOpenPar) {
      return InvalidArgument("found '" + open.literal + "' expected: '('");
    }
    Item first = Lookahead(kValues);
    switch (first.token) {
      case Token::kIdentifier:
      case Token::kComma: {
        Result<std::set<std::string>> list = ParseIdentifiersList();
        if (!list.ok()) return list;
        if (Consume(kValues).token != Token::kClosedPar) {
          // Upstream reports the token that opened the list, not the one found.
          return InvalidArgument("found '" + first.literal + "', expected: ')'");
        }
        return list;
      }
      case Token::kClosedPar:
        Consume(kValues);
        return std::set<std::string>{""};
      default:
        return InvalidArgument("found '" + first.literal + "', expected: ',', ')' or identifier");
    }
  }

  Result<std::set<std::string>> ParseIdentifiersList() {
    std::set<std::string> values;
    while (true) {
      Item item = Consume(kValues);
      switch (item.token) {
        case Token::kIdentifier: {
          values.insert(item.literal);
          Item next = Lookahead(kValues);
          if (next.token == Token::kComma) continue;
          if (next.token == Token::kClosedPar) return values;
          return InvalidArgument("found '" + next.literal + "', expected: ',' or ')'");
        }
        case Token::kComma: {
          if (values.empty()) values.insert("");  // "(,"
          Token next = Lookahead(kValues).token;
          if (next == Token::kClosedPar) {  // ",)"
            values.insert("");
            return values;
          }
          if (next == Token::kComma) {  // ",,"
            Consume(kValues);
            values.insert("");
          }
          continue;
        }
        default:
          return InvalidArgument("found '" + item.literal + "', expected: ',', or identifier");
      }
    }
  }

  Result<std::set<std::string>> ParseExactValue() {
    Token next = Lookahead(kValues).token;
    if (next == Token::kEndOfString || next == Token::kComma) return std::set<std::string>{""};
    Item value = Consume(kValues);
    if (value.token == Token::kIdentifier) return std::set<std::string>{value.literal};
    return InvalidArgument("found '" + value.literal + "', expected: identifier");
  }

  std::vector<Item> items_;
  size_t pos_ = 0;
};

void SortByKey(std::vector<Requirement>& requirements) {
  std::stable_sort(requirements.begin(), requirements.end(),
                   [](const Requirement& a, const Requirement& b) { return a.key < b.key; });
}

std::vector<std::string> StringsOf(const json& array) {
  std::vector<std::string> out;
  if (!array.is_array()) return out;
  for (const json& v : array) out.push_back(v.is_string() ? v.get<std::string>() : v.dump());
  return out;
}

}  // namespace

// -------------------------------------------------------------------------------------------------
// Name and label syntax.

std::vector<std::string> IsQualifiedName(std::string_view value) {
  std::vector<std::string> errs;
  std::string_view name;
  size_t slash = value.find('/');
  if (slash == std::string_view::npos) {
    name = value;
  } else if (value.find('/', slash + 1) == std::string_view::npos) {
    std::string_view prefix = value.substr(0, slash);
    name = value.substr(slash + 1);
    if (prefix.empty()) {
      errs.push_back("prefix part must be non-empty");
    } else {
      for (const std::string& m : IsDns1123Subdomain(prefix)) errs.push_back("prefix part " + m);
    }
  } else {
    errs.push_back(
        "a qualified name " +
        RegexError(kQualifiedNameErrMsg, kQualifiedNameFmt, {"MyName", "my.name", "123-abc"}) +
        " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')");
    return errs;
  }
  if (name.empty()) {
    errs.push_back("name part must be non-empty");
  } else if (name.size() > kQualifiedNameMaxLength) {
    errs.push_back("name part " + MaxLenError(kQualifiedNameMaxLength));
  }
  if (!MatchesQualifiedName(name)) {
    errs.push_back("name part " + RegexError(kQualifiedNameErrMsg, kQualifiedNameFmt,
                                             {"MyName", "my.name", "123-abc"}));
  }
  return errs;
}

std::vector<std::string> IsValidLabelValue(std::string_view value) {
  std::vector<std::string> errs;
  if (value.size() > kLabelValueMaxLength) errs.push_back(MaxLenError(kLabelValueMaxLength));
  if (!value.empty() && !MatchesQualifiedName(value)) {
    errs.push_back(RegexError(kLabelValueErrMsg, kLabelValueFmt, {"MyValue", "my_value", "12345"}));
  }
  return errs;
}

std::vector<std::string> IsDns1123Label(std::string_view value) {
  std::vector<std::string> errs;
  if (value.size() > kDns1123LabelMaxLength) errs.push_back(MaxLenError(kDns1123LabelMaxLength));
  if (!MatchesDns1123Label(value)) {
    if (MatchesDns1123Subdomain(value)) {
      errs.push_back("must not contain dots");
    } else {
      errs.push_back(RegexError(kDns1123LabelErrMsg, kDns1123LabelFmt, {"my-name", "123-abc"}));
    }
  }
  return errs;
}

std::vector<std::string> IsDns1123Subdomain(std::string_view value) {
  std::vector<std::string> errs;
  if (value.size() > kDns1123SubdomainMaxLength) {
    errs.push_back(MaxLenError(kDns1123SubdomainMaxLength));
  }
  if (!MatchesDns1123Subdomain(value)) {
    errs.push_back(RegexError(kDns1123SubdomainErrMsg, kDns1123SubdomainFmt, {"example.com"}));
  }
  return errs;
}

std::vector<std::string> IsDns1035Label(std::string_view value) {
  std::vector<std::string> errs;
  if (value.size() > kDns1123LabelMaxLength) errs.push_back(MaxLenError(kDns1123LabelMaxLength));
  if (!MatchesDns1035Label(value)) {
    errs.push_back(RegexError(kDns1035LabelErrMsg, kDns1035LabelFmt, {"my-name", "abc-123"}));
  }
  return errs;
}

std::string SelectorFieldError::ToString() const {
  std::string out = field + ": ";
  switch (type) {
    case Type::kRequired:
      out += "Required value";
      break;
    case Type::kForbidden:
      out += "Forbidden";
      break;
    case Type::kInvalid:
      out += "Invalid value: " +
             (value.is_string() ? GoQuote(value.get<std::string>()) : value.dump());
      break;
  }
  if (!detail.empty()) out += ": " + detail;
  return out;
}

std::vector<SelectorFieldError> ValidateLabels(const json& labels, const std::string& path) {
  std::vector<SelectorFieldError> errors;
  if (!labels.is_object()) return errors;
  for (const auto& [key, value] : labels.items()) {
    for (std::string& m : IsQualifiedName(key)) {
      errors.push_back({SelectorFieldError::Type::kInvalid, path, key, std::move(m)});
    }
    std::string v = value.is_string() ? value.get<std::string>() : value.dump();
    for (std::string& m : IsValidLabelValue(v)) {
      errors.push_back({SelectorFieldError::Type::kInvalid, path, v, std::move(m)});
    }
  }
  return errors;
}

std::vector<SelectorFieldError> ValidateLabelSelector(const json& selector, const std::string& path,
                                                      bool allow_invalid_label_value) {
  using Type = SelectorFieldError::Type;
  std::vector<SelectorFieldError> errors;
  if (!selector.is_object()) return errors;
  if (auto it = selector.find("matchLabels"); it != selector.end()) {
    errors = ValidateLabels(*it, path + ".matchLabels");
  }
  auto exprs = selector.find("matchExpressions");
  if (exprs == selector.end() || !exprs->is_array()) return errors;
  for (size_t i = 0; i < exprs->size(); ++i) {
    const json& expr = (*exprs)[i];
    const std::string at = fmt::format("{}.matchExpressions[{}]", path, i);
    std::string op = expr.is_object() && expr.contains("operator") && expr["operator"].is_string()
                         ? expr["operator"].get<std::string>()
                         : "";
    std::vector<std::string> values =
        StringsOf(expr.is_object() ? expr.value("values", json()) : json());
    if (op == "In" || op == "NotIn") {
      if (values.empty()) {
        errors.push_back({Type::kRequired, at + ".values", nullptr,
                          "must be specified when `operator` is 'In' or 'NotIn'"});
      }
    } else if (op == "Exists" || op == "DoesNotExist") {
      if (!values.empty()) {
        errors.push_back({Type::kForbidden, at + ".values", nullptr,
                          "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"});
      }
    } else {
      errors.push_back({Type::kInvalid, at + ".operator", op, "not a valid selector operator"});
    }
    std::string key = expr.is_object() && expr.contains("key") && expr["key"].is_string()
                          ? expr["key"].get<std::string>()
                          : "";
    for (std::string& m : IsQualifiedName(key)) {
      errors.push_back({Type::kInvalid, at + ".key", key, std::move(m)});
    }
    if (!allow_invalid_label_value) {
      for (size_t v = 0; v < values.size(); ++v) {
        for (std::string& m : IsValidLabelValue(values[v])) {
          errors.push_back(
              {Type::kInvalid, fmt::format("{}.values[{}]", at, v), values[v], std::move(m)});
        }
      }
    }
  }
  return errors;
}

// -------------------------------------------------------------------------------------------------
// LabelSelector.

LabelSelector LabelSelector::Nothing() {
  LabelSelector s;
  s.nothing_ = true;
  return s;
}

Result<LabelSelector> LabelSelector::Parse(std::string_view text) {
  Result<std::vector<Requirement>> requirements = Parser(text).Parse();
  if (!requirements.ok()) return requirements.status();
  LabelSelector s;
  s.requirements_ = std::move(*requirements);
  SortByKey(s.requirements_);
  return s;
}

Result<LabelSelector> LabelSelector::FromJson(const json& selector) {
  if (selector.is_null()) return Nothing();
  if (!selector.is_object()) return InvalidArgument("a label selector must be an object");
  const json labels = selector.value("matchLabels", json());
  const json exprs = selector.value("matchExpressions", json());
  const size_t count =
      (labels.is_object() ? labels.size() : 0) + (exprs.is_array() ? exprs.size() : 0);
  LabelSelector s;
  if (count == 0) return s;
  if (labels.is_object()) {
    for (const auto& [key, value] : labels.items()) {
      std::string v = value.is_string() ? value.get<std::string>() : value.dump();
      Result<Requirement> r = NewRequirement(key, Op::kEquals, {v}, false);
      if (!r.ok()) return r.status();
      s.requirements_.push_back(std::move(*r));
    }
  }
  if (exprs.is_array()) {
    for (const json& expr : exprs) {
      const json op_json = expr.is_object() ? expr.value("operator", json("")) : json("");
      const std::string op_name = op_json.is_string() ? op_json.get<std::string>() : op_json.dump();
      Op op;
      if (op_name == "In") {
        op = Op::kIn;
      } else if (op_name == "NotIn") {
        op = Op::kNotIn;
      } else if (op_name == "Exists") {
        op = Op::kExists;
      } else if (op_name == "DoesNotExist") {
        op = Op::kDoesNotExist;
      } else {
        return InvalidArgument(GoQuote(op_name) + " is not a valid label selector operator");
      }
      const json values = expr.value("values", json());
      const bool nil = !values.is_array() || values.empty();  // append([]string(nil), ...)
      const json key = expr.value("key", json(""));
      Result<Requirement> r = NewRequirement(key.is_string() ? key.get<std::string>() : key.dump(),
                                             op, StringsOf(values), nil);
      if (!r.ok()) return r.status();
      s.requirements_.push_back(std::move(*r));
    }
  }
  SortByKey(s.requirements_);
  return s;
}

LabelSelector LabelSelector::FromMap(const json& labels) {
  LabelSelector s;
  if (!labels.is_object()) return s;
  for (const auto& [key, value] : labels.items()) {
    s.requirements_.push_back(
        {key, Op::kEquals, {value.is_string() ? value.get<std::string>() : value.dump()}});
  }
  SortByKey(s.requirements_);
  return s;
}

bool LabelSelector::Requirement::Matches(const std::string* value) const {
  auto has = [&](const std::string& v) {
    return std::find(values.begin(), values.end(), v) != values.end();
  };
  switch (op) {
    case Op::kIn:
    case Op::kEquals:
    case Op::kDoubleEquals:
      return value && has(*value);
    case Op::kNotIn:
    case Op::kNotEquals:
      return !value || !has(*value);
    case Op::kExists:
      return value != nullptr;
    case Op::kDoesNotExist:
      return value == nullptr;
    case Op::kGreaterThan:
    case Op::kLessThan: {
      if (!value || values.size() != 1) return false;
      std::optional<int64_t> have = GoParseInt(*value);
      std::optional<int64_t> want = GoParseInt(values[0]);
      if (!have || !want) return false;
      return op == Op::kGreaterThan ? *have > *want : *have < *want;
    }
  }
  return false;
}

bool LabelSelector::Matches(const json& labels) const {
  if (nothing_) return false;
  return std::all_of(requirements_.begin(), requirements_.end(), [&](const Requirement& r) {
    std::optional<std::string> value = LabelValue(labels, r.key);
    return r.Matches(value ? &*value : nullptr);
  });
}

std::string LabelSelector::String() const {
  std::vector<std::string> parts;
  for (const Requirement& r : requirements_) parts.push_back(RequirementString(r));
  return Join(parts, ",");
}

std::string FormatLabelSelector(const json& selector) {
  Result<LabelSelector> s = LabelSelector::FromJson(selector);
  if (!s.ok()) return "<error>";
  std::string out = s->String();
  return out.empty() ? "<none>" : out;
}

std::string FormatLabels(const json& labels) {
  std::string out = LabelSelector::FromMap(labels).String();
  return out.empty() ? "<none>" : out;
}

}  // namespace orch
