// Schema walks over JSON objects: the decoder's unknown-field and type checks, CRD value
// validation, pruning and defaulting, each with upstream's paths and wording.
#include "schema_validate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "orch/base64.h"
#include "orch/quantity.h"

namespace orch::api {

// ---- patterns: a Thompson NFA for RE2 syntax ----

namespace {

constexpr uint32_t kMaxRune = 0x10FFFF;
constexpr int kMaxRepeat = 1000;  // RE2's limit
constexpr size_t kMaxProgram = 50000;

struct RegexError {
  std::string message;
};

// A parsed regular expression.
struct Node {
  enum Kind { kEmpty, kClass, kConcat, kAlt, kRepeat, kAssert } kind = kEmpty;
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // kClass: sorted, merged
  std::vector<Node> children;                         // kConcat, kAlt, kRepeat (one)
  int min = 0, max = -1;                              // kRepeat; max -1 = unbounded
  int assertion = 0;                                  // kAssert: an Inst::Op
};

}  // namespace

struct Pattern::Program {
  enum Op : uint8_t {
    kClass,
    kSplit,
    kMatch,
    kBeginText,
    kEndText,
    kBeginLine,
    kEndLine,
    kWordBoundary,
    kNotWordBoundary,
  };
  struct Inst {
    Op op = kMatch;
    int x = -1, y = -1;  // successors
    int cls = -1;        // kClass: index into classes
  };
  std::vector<Inst> insts;
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> classes;
  int start = 0;
};

namespace {

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

Ranges Normalize(Ranges r) {
  std::sort(r.begin(), r.end());
  Ranges out;
  for (const auto& [lo, hi] : r) {
    if (!out.empty() && lo <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, hi);
    } else {
      out.emplace_back(lo, hi);
    }
  }
  return out;
}

Ranges Negate(const Ranges& r) {
  Ranges out;
  uint32_t next = 0;
  for (const auto& [lo, hi] : r) {
    if (lo > next) out.emplace_back(next, lo - 1);
    next = hi + 1;
  }
  if (next <= kMaxRune) out.emplace_back(next, kMaxRune);
  return out;
}

// Adds the other ASCII case of every letter range (flag i).
Ranges FoldCase(Ranges r) {
  Ranges extra;
  for (const auto& [lo, hi] : r) {
    uint32_t a = std::max<uint32_t>(lo, 'a'), b = std::min<uint32_t>(hi, 'z');
    if (a <= b) extra.emplace_back(a - 32, b - 32);
    a = std::max<uint32_t>(lo, 'A');
    b = std::min<uint32_t>(hi, 'Z');
    if (a <= b) extra.emplace_back(a + 32, b + 32);
  }
  r.insert(r.end(), extra.begin(), extra.end());
  return Normalize(std::move(r));
}

Ranges Digit() {
  return {{'0', '9'}};
}
Ranges Word() {
  return {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
}
Ranges Space() {
  return {{'\t', '\n'}, {'\f', '\r'}, {' ', ' '}};
}

class RegexParser {
 public:
  explicit RegexParser(std::string_view src) : src_(src) {}

  Node Parse() {
    Node n = Alternation();
    if (pos_ < src_.size()) Fail("unexpected )", src_.substr(pos_));
    return n;
  }

 private:
  struct Flags {
    bool fold = false, dot_nl = false, multiline = false;
  };

  [[noreturn]] void Fail(const std::string& why, std::string_view where) {
    throw RegexError{"error parsing regexp: " + why + ": `" + std::string(where) + "`"};
  }

  bool More() const { return pos_ < src_.size(); }
  char Peek() const { return src_[pos_]; }

  // One UTF-8 code point of the pattern.
  uint32_t Rune() {
    auto c = static_cast<unsigned char>(src_[pos_++]);
    if (c < 0x80) return c;
    int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;
    uint32_t r = c & (0x3F >> extra);
    for (int i = 0; i < extra && pos_ < src_.size(); ++i) {
      r = (r << 6) | (static_cast<unsigned char>(src_[pos_++]) & 0x3F);
    }
    return r;
  }

  Node Alternation() {
    std::vector<Node> alts;
    alts.push_back(Concatenation());
    while (More() && Peek() == '|') {
      ++pos_;
      alts.push_back(Concatenation());
    }
    if (alts.size() == 1) return std::move(alts[0]);
    Node n;
    n.kind = Node::kAlt;
    n.children = std::move(alts);
    return n;
  }

  Node Concatenation() {
    Node n;
    n.kind = Node::kConcat;
    Flags saved = flags_;
    while (More() && Peek() != '|' && Peek() != ')') {
      size_t start = pos_;
      std::optional<Node> atom = Atom();
      if (!atom) continue;  // a flag group: no atom
      Node a = std::move(*atom);
      while (More() && (Peek() == '*' || Peek() == '+' || Peek() == '?' || Peek() == '{')) {
        int min = 0, max = -1;
        char q = Peek();
        if (q == '{') {
          size_t save = pos_;
          if (!Counts(min, max)) {  // not a repeat: a literal '{', as RE2 reads it
            pos_ = save;
            break;
          }
        } else {
          ++pos_;
          min = q == '+' ? 1 : 0;
          max = q == '?' ? 1 : -1;
        }
        if (a.kind == Node::kRepeat && !(More() && Peek() == '?')) {
          // `a**` is an error in RE2 ("invalid nested repetition operator").
          Fail("invalid nested repetition operator", src_.substr(start, pos_ - start));
        }
        if (More() && Peek() == '?') ++pos_;  // lazy: same language
        Node r;
        r.kind = Node::kRepeat;
        r.min = min;
        r.max = max;
        r.children.push_back(std::move(a));
        a = std::move(r);
      }
      n.children.push_back(std::move(a));
    }
    flags_ = saved;  // (?i) lasts to the end of the enclosing group
    return n;
  }

  bool Counts(int& min, int& max) {
    ++pos_;  // {
    auto number = [&](int& out) {
      size_t start = pos_;
      long v = 0;
      while (More() && std::isdigit(static_cast<unsigned char>(Peek()))) {
        v = v * 10 + (Peek() - '0');
        if (v > 100000) v = 100000;
        ++pos_;
      }
      out = static_cast<int>(v);
      return pos_ > start;
    };
    size_t begin = pos_ - 1;
    if (!number(min)) return false;
    max = min;
    if (More() && Peek() == ',') {
      ++pos_;
      if (!number(max)) max = -1;
    }
    if (!More() || Peek() != '}') return false;
    ++pos_;
    if (min > kMaxRepeat || max > kMaxRepeat || (max >= 0 && max < min)) {
      Fail("invalid repeat count", src_.substr(begin, pos_ - begin));
    }
    return true;
  }

  Node Class(Ranges r) {
    Node n;
    n.kind = Node::kClass;
    n.ranges = flags_.fold ? FoldCase(std::move(r)) : Normalize(std::move(r));
    return n;
  }

  Node Assert(int op) {
    Node n;
    n.kind = Node::kAssert;
    n.assertion = op;
    return n;
  }

  std::optional<Node> Atom() {
    size_t start = pos_;
    char c = Peek();
    switch (c) {
      case '(': {
        ++pos_;
        Flags saved = flags_;
        if (More() && Peek() == '?') {
          ++pos_;
          if (More() && (Peek() == 'P' || Peek() == '<')) {  // named group
            if (Peek() == 'P') ++pos_;
            if (!More() || Peek() != '<') Fail("invalid named capture", src_.substr(start));
            size_t close = src_.find('>', pos_);
            if (close == std::string_view::npos) Fail("invalid named capture", src_.substr(start));
            pos_ = close + 1;
          } else {
            bool on = true, any = false;
            while (More() && Peek() != ')' && Peek() != ':') {
              char f = src_[pos_++];
              any = true;
              if (f == '-') {
                on = false;
              } else if (f == 'i') {
                flags_.fold = on;
              } else if (f == 's') {
                flags_.dot_nl = on;
              } else if (f == 'm') {
                flags_.multiline = on;
              } else if (f != 'U') {
                Fail("invalid or unsupported Perl syntax", src_.substr(start, pos_ - start));
              }
            }
            if (!More()) Fail("missing closing )", src_.substr(start));
            if (Peek() == ')') {  // (?i): flags for the rest of the group
              if (!any) Fail("missing argument to repetition operator", src_.substr(start));
              ++pos_;
              return std::nullopt;
            }
            ++pos_;  // ':'
          }
        }
        Node inner = Alternation();
        if (!More() || Peek() != ')') Fail("missing closing )", src_.substr(start));
        ++pos_;
        flags_ = saved;
        return inner;
      }
      case ')':
        Fail("unexpected )", src_.substr(pos_));
      case '*':
      case '+':
      case '?':
        Fail("missing argument to repetition operator", src_.substr(pos_, 1));
      case '.':
        ++pos_;
        return Class(flags_.dot_nl ? Ranges{{0, kMaxRune}}
                                   : Ranges{{0, '\n' - 1}, {'\n' + 1, kMaxRune}});
      case '^':
        ++pos_;
        return Assert(flags_.multiline ? Pattern::Program::kBeginLine
                                       : Pattern::Program::kBeginText);
      case '$':
        ++pos_;
        return Assert(flags_.multiline ? Pattern::Program::kEndLine : Pattern::Program::kEndText);
      case '[':
        return Bracket();
      case '\\': {
        ++pos_;
        if (!More()) Fail("trailing backslash at end of expression", "");
        char e = Peek();
        if (e == 'A') {
          ++pos_;
          return Assert(Pattern::Program::kBeginText);
        }
        if (e == 'z') {
          ++pos_;
          return Assert(Pattern::Program::kEndText);
        }
        if (e == 'b') {
          ++pos_;
          return Assert(Pattern::Program::kWordBoundary);
        }
        if (e == 'B') {
          ++pos_;
          return Assert(Pattern::Program::kNotWordBoundary);
        }
        return Class(Escape(start));
      }
      default:
        uint32_t r = Rune();
        return Class({{r, r}});
    }
  }

  // An escape after '\' (pos_ at the letter): a class or a single character.
  Ranges Escape(size_t start) {
    char e = src_[pos_++];
    switch (e) {
      case 'd':
        return Digit();
      case 'D':
        return Negate(Digit());
      case 'w':
        return Word();
      case 'W':
        return Negate(Word());
      case 's':
        return Space();
      case 'S':
        return Negate(Space());
      case 'n':
        return {{'\n', '\n'}};
      case 't':
        return {{'\t', '\t'}};
      case 'r':
        return {{'\r', '\r'}};
      case 'f':
        return {{'\f', '\f'}};
      case 'v':
        return {{'\v', '\v'}};
      case 'a':
        return {{7, 7}};
      case 'x': {
        uint32_t v = 0;
        auto hex = [&](char h) -> int {
          if (h >= '0' && h <= '9') return h - '0';
          if (h >= 'a' && h <= 'f') return h - 'a' + 10;
          if (h >= 'A' && h <= 'F') return h - 'A' + 10;
          return -1;
        };
        if (More() && Peek() == '{') {
          ++pos_;
          while (More() && Peek() != '}') {
            int d = hex(src_[pos_++]);
            if (d < 0) Fail("invalid escape sequence", src_.substr(start, pos_ - start));
            v = v * 16 + static_cast<uint32_t>(d);
            if (v > kMaxRune) Fail("invalid escape sequence", src_.substr(start, pos_ - start));
          }
          if (!More()) Fail("invalid escape sequence", src_.substr(start));
          ++pos_;
        } else {
          for (int i = 0; i < 2; ++i) {
            int d = More() ? hex(src_[pos_++]) : -1;
            if (d < 0) Fail("invalid escape sequence", src_.substr(start, pos_ - start));
            v = v * 16 + static_cast<uint32_t>(d);
          }
        }
        return {{v, v}};
      }
      default:
        if (static_cast<unsigned char>(e) < 0x80 && !std::isalnum(static_cast<unsigned char>(e))) {
          auto r = static_cast<uint32_t>(static_cast<unsigned char>(e));
          return {{r, r}};  // an escaped punctuation character is itself
        }
        // \p{..}, \1 (backreferences), \Q..\E and friends: not supported here.
        Fail("invalid escape sequence", src_.substr(start, pos_ - start));
    }
  }

  Node Bracket() {
    size_t start = pos_++;
    bool negated = false;
    if (More() && Peek() == '^') {
      negated = true;
      ++pos_;
    }
    Ranges r;
    bool first = true;
    while (true) {
      if (!More()) Fail("missing closing ]", src_.substr(start));
      if (Peek() == ']' && !first) {
        ++pos_;
        break;
      }
      first = false;
      if (src_.substr(pos_, 2) == "[:") {
        size_t close = src_.find(":]", pos_ + 2);
        if (close != std::string_view::npos) {
          std::string_view name = src_.substr(pos_ + 2, close - pos_ - 2);
          bool neg = !name.empty() && name[0] == '^';
          if (neg) name.remove_prefix(1);
          Ranges cls = Posix(name, start);
          if (neg) cls = Negate(Normalize(cls));
          r.insert(r.end(), cls.begin(), cls.end());
          pos_ = close + 2;
          continue;
        }
      }
      uint32_t lo;
      if (Peek() == '\\') {
        size_t esc = pos_++;
        if (!More()) Fail("missing closing ]", src_.substr(start));
        Ranges e = Escape(esc);
        if (e.size() != 1 || e[0].first != e[0].second) {  // \d inside a class
          r.insert(r.end(), e.begin(), e.end());
          continue;
        }
        lo = e[0].first;
      } else {
        lo = Rune();
      }
      uint32_t hi = lo;
      if (pos_ + 1 < src_.size() && Peek() == '-' && src_[pos_ + 1] != ']') {
        ++pos_;
        if (Peek() == '\\') {
          size_t esc = pos_++;
          Ranges e = Escape(esc);
          if (e.size() != 1 || e[0].first != e[0].second) {
            Fail("invalid character class range", src_.substr(esc, pos_ - esc));
          }
          hi = e[0].first;
        } else {
          hi = Rune();
        }
        if (hi < lo) Fail("invalid character class range", src_.substr(start, pos_ - start));
      }
      r.emplace_back(lo, hi);
    }
    Ranges cls = flags_.fold ? FoldCase(std::move(r)) : Normalize(std::move(r));
    Node n;
    n.kind = Node::kClass;
    n.ranges = negated ? Negate(cls) : cls;
    return n;
  }

  Ranges Posix(std::string_view name, size_t start) {
    if (name == "alpha") return {{'A', 'Z'}, {'a', 'z'}};
    if (name == "digit") return Digit();
    if (name == "alnum") return {{'0', '9'}, {'A', 'Z'}, {'a', 'z'}};
    if (name == "upper") return {{'A', 'Z'}};
    if (name == "lower") return {{'a', 'z'}};
    if (name == "space") return {{'\t', '\r'}, {' ', ' '}};
    if (name == "xdigit") return {{'0', '9'}, {'A', 'F'}, {'a', 'f'}};
    if (name == "word") return Word();
    if (name == "punct") return {{'!', '/'}, {':', '@'}, {'[', '`'}, {'{', '~'}};
    if (name == "blank") return {{'\t', '\t'}, {' ', ' '}};
    if (name == "cntrl") return {{0, 31}, {127, 127}};
    if (name == "print") return {{' ', '~'}};
    if (name == "graph") return {{'!', '~'}};
    if (name == "ascii") return {{0, 127}};
    Fail("invalid character class range", src_.substr(start));
  }

  std::string_view src_;
  size_t pos_ = 0;
  Flags flags_;
};

// Thompson construction, back to front: Compile(node, next) emits `node` continuing at `next`
// and returns its entry.
class RegexCompiler {
 public:
  explicit RegexCompiler(Pattern::Program& p) : p_(p) {}

  int Compile(const Node& n, int next) {
    if (p_.insts.size() > kMaxProgram)
      throw RegexError{"error parsing regexp: expression too large"};
    switch (n.kind) {
      case Node::kEmpty:
        return next;
      case Node::kClass: {
        p_.classes.push_back(n.ranges);
        return Emit({Pattern::Program::kClass, next, -1, static_cast<int>(p_.classes.size() - 1)});
      }
      case Node::kAssert:
        return Emit({static_cast<Pattern::Program::Op>(n.assertion), next, -1, -1});
      case Node::kConcat: {
        int s = next;
        for (auto it = n.children.rbegin(); it != n.children.rend(); ++it) s = Compile(*it, s);
        return s;
      }
      case Node::kAlt: {
        int s = Compile(n.children.back(), next);
        for (size_t i = n.children.size() - 1; i-- > 0;) {
          int alt = Compile(n.children[i], next);
          s = Emit({Pattern::Program::kSplit, alt, s, -1});
        }
        return s;
      }
      case Node::kRepeat: {
        const Node& body = n.children[0];
        int s = next;
        if (n.max < 0) {
          int loop = Emit({Pattern::Program::kSplit, -1, next, -1});
          p_.insts[loop].x = Compile(body, loop);
          s = loop;
        } else {
          for (int i = n.min; i < n.max; ++i) {
            int b = Compile(body, s);
            s = Emit({Pattern::Program::kSplit, b, next, -1});
          }
        }
        for (int i = 0; i < n.min; ++i) s = Compile(body, s);
        return s;
      }
    }
    return next;
  }

 private:
  int Emit(Pattern::Program::Inst inst) {
    p_.insts.push_back(inst);
    return static_cast<int>(p_.insts.size() - 1);
  }
  Pattern::Program& p_;
};

std::vector<uint32_t> DecodeUtf8(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    int extra = c < 0x80             ? 0
                : (c & 0xE0) == 0xC0 ? 1
                : (c & 0xF0) == 0xE0 ? 2
                : (c & 0xF8) == 0xF0 ? 3
                                     : -1;
    if (extra < 0 || (extra > 0 && i + static_cast<size_t>(extra) >= s.size())) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    uint32_t r = extra == 0 ? c : c & (0x3F >> extra);
    bool ok = true;
    for (int k = 1; k <= extra; ++k) {
      auto d = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      if ((d & 0xC0) != 0x80) {
        ok = false;
        break;
      }
      r = (r << 6) | (d & 0x3F);
    }
    if (!ok) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(r);
    i += static_cast<size_t>(extra) + 1;
  }
  return out;
}

bool IsWordRune(uint32_t c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

bool InRanges(const Ranges& r, uint32_t c) {
  auto it = std::upper_bound(r.begin(), r.end(), std::make_pair(c, kMaxRune + 1));
  return it != r.begin() && std::prev(it)->second >= c;
}

}  // namespace

Result<Pattern> Pattern::Compile(std::string_view pattern) {
  try {
    auto program = std::make_shared<Program>();
    Node root = RegexParser(pattern).Parse();
    program->insts.push_back({Program::kMatch, -1, -1, -1});
    program->start = RegexCompiler(*program).Compile(root, 0);
    return Pattern(std::move(program));
  } catch (const RegexError& e) {
    return InvalidArgument(e.message);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("error parsing regexp: ") + e.what());
  }
}

bool Pattern::Search(std::string_view text) const {
  const Program& p = *program_;
  std::vector<uint32_t> runes = DecodeUtf8(text);
  size_t n = p.insts.size();
  // Two state lists with a generation mark per instruction: each step is O(program).
  std::vector<int> current, next, stack;
  std::vector<size_t> mark(n, 0);
  size_t generation = 0;
  auto closure = [&](int start, size_t pos, std::vector<int>& list) -> bool {
    stack.push_back(start);
    while (!stack.empty()) {
      int pc = stack.back();
      stack.pop_back();
      if (pc < 0 || mark[static_cast<size_t>(pc)] == generation) continue;
      mark[static_cast<size_t>(pc)] = generation;
      const Program::Inst& in = p.insts[static_cast<size_t>(pc)];
      uint32_t prev = pos > 0 ? runes[pos - 1] : 0xFFFFFFFF;
      uint32_t cur = pos < runes.size() ? runes[pos] : 0xFFFFFFFF;
      switch (in.op) {
        case Program::kMatch:
          return true;
        case Program::kClass:
          list.push_back(pc);
          break;
        case Program::kSplit:
          stack.push_back(in.y);
          stack.push_back(in.x);
          break;
        case Program::kBeginText:
          if (pos == 0) stack.push_back(in.x);
          break;
        case Program::kEndText:
          if (pos == runes.size()) stack.push_back(in.x);
          break;
        case Program::kBeginLine:
          if (pos == 0 || prev == '\n') stack.push_back(in.x);
          break;
        case Program::kEndLine:
          if (pos == runes.size() || cur == '\n') stack.push_back(in.x);
          break;
        case Program::kWordBoundary:
        case Program::kNotWordBoundary: {
          bool a = prev != 0xFFFFFFFF && IsWordRune(prev);
          bool b = cur != 0xFFFFFFFF && IsWordRune(cur);
          if ((a != b) == (in.op == Program::kWordBoundary)) stack.push_back(in.x);
          break;
        }
      }
    }
    return false;
  };
  for (size_t pos = 0;; ++pos) {
    ++generation;
    // Keep the threads that consumed the previous rune, then start a new one here (the match
    // may begin anywhere).
    next.clear();
    for (int pc : current) {
      if (closure(pc, pos, next)) return true;
    }
    if (closure(p.start, pos, next)) return true;
    if (pos == runes.size()) return false;
    current.clear();
    for (int pc : next) {
      const Program::Inst& in = p.insts[static_cast<size_t>(pc)];
      if (InRanges(p.classes[static_cast<size_t>(in.cls)], runes[pos])) current.push_back(in.x);
    }
  }
}

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

  // A pattern that does not compile never fails a value: the structural check rejects it when
  // the CRD is written. Each pattern compiles once per validation.
  bool MatchesPattern(const std::string& value, const std::string& pattern) {
    auto it = patterns_.find(pattern);
    if (it == patterns_.end()) {
      auto compiled = Pattern::Compile(pattern);
      it = patterns_
               .emplace(pattern, compiled.ok() ? std::optional<Pattern>(*compiled) : std::nullopt)
               .first;
    }
    return !it->second || it->second->Search(value);
  }

  std::vector<FieldError>& errors_;
  std::string path_;
  std::map<std::string, std::optional<Pattern>> patterns_;
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
