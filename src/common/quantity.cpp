// Implementation of orch/quantity.h, following k8s.io/apimachinery/pkg/api/resource (quantity.go,
// suffix.go, amount.go): the same grammar, rounding, caps and canonical forms.
#include "orch/quantity.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "orch/go_strconv.h"

namespace orch {
namespace {

using int128 = __int128;

constexpr int64_t kNanosPerUnit = 1'000'000'000;
constexpr std::string_view kSplitRegex = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$";

// Largest magnitude a Quantity holds, in nanos: comfortably inside __int128, so sums of two
// values can be checked before they overflow.
constexpr int128 Pow10(int n) {
  int128 v = 1;
  for (int i = 0; i < n; ++i) v *= 10;
  return v;
}
constexpr int128 kMaxNanos = Pow10(38) - 1;
// Upstream caps BinarySI values at maxAllowed = 2^63-1 units.
constexpr int128 kBinaryCapNanos =
    static_cast<int128>(std::numeric_limits<int64_t>::max()) * kNanosPerUnit;

Status FormatWrong() {
  return InvalidArgument("quantities must match the regular expression '" +
                         std::string(kSplitRegex) + "'");
}
Status SuffixWrong() {
  return InvalidArgument("unable to parse quantity's suffix");
}
Status TooLargeValue() {
  return InvalidArgument("quantity is too large");
}

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

// The pieces of a quantity string, as upstream's parseQuantityString splits them: the sign, the
// integer digits without leading zeros ("0" when none), the fraction digits and the suffix.
struct Pieces {
  bool positive = true;
  std::string num;
  std::string denom;
  std::string suffix;
};

Result<Pieces> Split(std::string_view s) {
  Pieces p;
  size_t pos = 0;
  const size_t end = s.size();
  if (pos < end && (s[0] == '-' || s[0] == '+')) {
    p.positive = s[0] != '-';
    ++pos;
  }
  while (pos < end && s[pos] == '0') ++pos;
  if (pos >= end) {
    p.num = "0";
    return p;
  }
  size_t i = pos;
  while (i < end && IsDigit(s[i])) ++i;
  std::string_view digits = s.substr(pos, i - pos);
  // Upstream returns before defaulting an empty integer part when the string ends here.
  if (i >= end) {
    p.num = std::string(digits);
    return p;
  }
  p.num = std::string(digits.empty() ? std::string_view("0") : digits);
  pos = i;
  if (s[pos] == '.') {
    ++pos;
    i = pos;
    while (i < end && IsDigit(s[i])) ++i;
    p.denom = std::string(s.substr(pos, i - pos));
    if (i >= end) return p;
    pos = i;
  }
  const size_t suffix_start = pos;
  constexpr std::string_view kSuffixChars = "eEinumkKMGTP";
  i = pos;
  while (i < end && kSuffixChars.find(s[i]) != std::string_view::npos) ++i;
  if (i >= end) {
    p.suffix = std::string(s.substr(suffix_start));
    return p;
  }
  pos = i;
  if (s[pos] == '-' || s[pos] == '+') ++pos;
  i = pos;
  while (i < end && IsDigit(s[i])) ++i;
  if (i >= end) {
    p.suffix = std::string(s.substr(suffix_start));
    return p;
  }
  return FormatWrong();
}

struct SuffixMeaning {
  int base = 10;
  int exponent = 0;
  Quantity::Format format = Quantity::Format::kDecimalSI;
};

std::optional<SuffixMeaning> InterpretSuffix(std::string_view s) {
  using F = Quantity::Format;
  struct Entry {
    std::string_view suffix;
    int base, exponent;
    F format;
  };
  static constexpr Entry kTable[] = {
      {"", 10, 0, F::kDecimalSI},   {"n", 10, -9, F::kDecimalSI}, {"u", 10, -6, F::kDecimalSI},
      {"m", 10, -3, F::kDecimalSI}, {"k", 10, 3, F::kDecimalSI},  {"M", 10, 6, F::kDecimalSI},
      {"G", 10, 9, F::kDecimalSI},  {"T", 10, 12, F::kDecimalSI}, {"P", 10, 15, F::kDecimalSI},
      {"E", 10, 18, F::kDecimalSI}, {"Ki", 2, 10, F::kBinarySI},  {"Mi", 2, 20, F::kBinarySI},
      {"Gi", 2, 30, F::kBinarySI},  {"Ti", 2, 40, F::kBinarySI},  {"Pi", 2, 50, F::kBinarySI},
      {"Ei", 2, 60, F::kBinarySI},
  };
  for (const Entry& e : kTable) {
    if (e.suffix == s) return SuffixMeaning{e.base, e.exponent, e.format};
  }
  if (s.size() > 1 && (s[0] == 'e' || s[0] == 'E')) {
    std::optional<int64_t> exp = GoParseInt(s.substr(1));
    if (!exp) return std::nullopt;
    // Upstream keeps int32(parsed); anything this large is out of range either way.
    int64_t clamped = std::clamp<int64_t>(*exp, -1000, 1000);
    return SuffixMeaning{10, static_cast<int>(clamped), F::kDecimalExponent};
  }
  return std::nullopt;
}

// A small unsigned big integer, enough to evaluate digits * 2^a * 10^b exactly before rounding.
class BigUint {
 public:
  explicit BigUint(std::string_view digits) {
    for (char c : digits) {
      MulSmall(10);
      AddSmall(static_cast<uint32_t>(c - '0'));
    }
  }
  bool IsZero() const { return limbs_.empty(); }
  void MulSmall(uint32_t m) {
    uint64_t carry = 0;
    for (uint32_t& limb : limbs_) {
      uint64_t v = static_cast<uint64_t>(limb) * m + carry;
      limb = static_cast<uint32_t>(v);
      carry = v >> 32;
    }
    if (carry != 0) limbs_.push_back(static_cast<uint32_t>(carry));
    Trim();
  }
  void AddSmall(uint32_t a) {
    uint64_t carry = a;
    for (size_t i = 0; i < limbs_.size() && carry != 0; ++i) {
      uint64_t v = static_cast<uint64_t>(limbs_[i]) + carry;
      limbs_[i] = static_cast<uint32_t>(v);
      carry = v >> 32;
    }
    if (carry != 0) limbs_.push_back(static_cast<uint32_t>(carry));
  }
  // Divides in place; returns whether the remainder was non-zero.
  bool DivSmall(uint32_t d) {
    uint64_t rem = 0;
    for (size_t i = limbs_.size(); i-- > 0;) {
      uint64_t cur = (rem << 32) | limbs_[i];
      limbs_[i] = static_cast<uint32_t>(cur / d);
      rem = cur % d;
    }
    Trim();
    return rem != 0;
  }
  size_t Bits() const { return limbs_.empty() ? 0 : limbs_.size() * 32; }
  // The value, if below 2^126 (so that it fits a signed __int128 with room to spare).
  std::optional<int128> ToInt128() const {
    if (limbs_.size() > 4) return std::nullopt;
    unsigned __int128 v = 0;
    for (size_t i = limbs_.size(); i-- > 0;) v = (v << 32) | limbs_[i];
    if ((v >> 126) != 0) return std::nullopt;
    return static_cast<int128>(v);
  }

 private:
  void Trim() {
    while (!limbs_.empty() && limbs_.back() == 0) limbs_.pop_back();
  }
  std::vector<uint32_t> limbs_;  // little-endian
};

std::string Int128ToString(int128 v) {
  if (v == 0) return "0";
  bool neg = v < 0;
  unsigned __int128 u =
      neg ? static_cast<unsigned __int128>(-(v + 1)) + 1 : static_cast<unsigned __int128>(v);
  std::string out;
  while (u != 0) {
    out.push_back(static_cast<char>('0' + static_cast<int>(u % 10)));
    u /= 10;
  }
  if (neg) out.push_back('-');
  std::reverse(out.begin(), out.end());
  return out;
}

int128 Saturate(int128 v) {
  return std::clamp(v, -kMaxNanos, kMaxNanos);
}

int64_t SaturateInt64(int128 v) {
  constexpr int128 kMax = std::numeric_limits<int64_t>::max();
  constexpr int128 kMin = std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(std::clamp(v, kMin, kMax));
}

// nanos / divisor rounded away from zero, as upstream's ScaledValue rounds.
int128 DivAwayFromZero(int128 nanos, int64_t divisor) {
  int128 q = nanos / divisor;
  if (nanos % divisor != 0) q += nanos > 0 ? 1 : -1;
  return q;
}

// Whether upstream's ParseQuantity keeps the input text as the quantity's string form: its fast
// path does so when the digits are already what the canonical form would print.
bool KeepsText(const Pieces& p, const SuffixMeaning& m) {
  const int digits = static_cast<int>(p.num.size() + p.denom.size());
  std::string shifted = p.num + p.denom;
  if (m.format == Quantity::Format::kBinarySI) {
    if (m.exponent < 0 || !p.denom.empty()) return false;
    int precision = 15 - static_cast<int>(p.num.size()) -
                    static_cast<int>(static_cast<float>(m.exponent) * 3 / 10) - 1;
    if (precision < 0) return false;
    int64_t value = 0;
    for (char c : shifted) value = value * 10 + (c - '0');
    if (m.exponent >= 63 || value > (std::numeric_limits<int64_t>::max() >> m.exponent)) {
      return false;
    }
    return m.exponent % 10 == 0 && (value & 0x07) != 0;
  }
  if (18 - digits < 0) return false;
  int scale = m.exponent - static_cast<int>(p.denom.size());
  if (scale < -9) return false;
  bool ends_000 = shifted.size() >= 3 && shifted.compare(shifted.size() - 3, 3, "000") == 0;
  return scale % 3 == 0 && !ends_000 && shifted[0] != '0';
}

}  // namespace

Result<Quantity> Quantity::Parse(std::string_view text) {
  if (text.empty()) return FormatWrong();
  Quantity q;
  if (text == "0") {
    q.text_ = "0";
    return q;
  }
  Result<Pieces> pieces = Split(text);
  if (!pieces.ok()) return pieces.status();
  const Pieces& p = *pieces;
  std::optional<SuffixMeaning> meaning = InterpretSuffix(p.suffix);
  if (!meaning) return SuffixWrong();

  // nanos = (num.denom) * base^exponent * 10^9, rounded away from zero.
  BigUint n(p.num + p.denom);
  int ten_exp = 9 - static_cast<int>(p.denom.size());
  if (meaning->base == 10) {
    ten_exp += meaning->exponent;
  } else {
    for (int i = 0; i < meaning->exponent; ++i) n.MulSmall(2);
  }
  bool round_up = false;
  if (ten_exp > 0) {
    for (int i = 0; i < ten_exp && !n.IsZero(); ++i) {
      n.MulSmall(10);
      if (n.Bits() > 160) break;  // far beyond any representable value
    }
  } else {
    // Once the value is zero the remaining divisions cannot change it; the flag remembers
    // whether anything below a nano was dropped.
    for (int i = 0; i < -ten_exp && !n.IsZero(); ++i) round_up = n.DivSmall(10) || round_up;
  }
  std::optional<int128> magnitude = n.ToInt128();
  if (magnitude && round_up) *magnitude += 1;

  q.format_ = meaning->format;
  if (meaning->format == Format::kBinarySI) {
    if (!magnitude || *magnitude > kBinaryCapNanos) magnitude = kBinaryCapNanos;
    if (*magnitude > 0 && *magnitude < kNanosPerUnit) q.format_ = Format::kDecimalSI;
  } else if (!magnitude || *magnitude > kMaxNanos) {
    return TooLargeValue();
  }
  q.nanos_ = p.positive ? *magnitude : -*magnitude;
  if (KeepsText(p, *meaning)) q.text_ = std::string(text);
  return q;
}

Result<Quantity> Quantity::FromJson(const nlohmann::json& value) {
  if (value.is_null()) return Quantity();
  if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    size_t b = s.find_first_not_of(" \t\r\n\v\f");
    size_t e = s.find_last_not_of(" \t\r\n\v\f");
    if (b == std::string::npos) return Parse("");
    return Parse(std::string_view(s).substr(b, e - b + 1));
  }
  if (value.is_number()) return Parse(value.dump());
  return InvalidArgument("quantities must be a string or a number");
}

Quantity Quantity::FromInt(int64_t value, Format format) {
  Quantity q;
  q.nanos_ = static_cast<int128>(value) * kNanosPerUnit;
  q.format_ = format;
  return q;
}

Quantity Quantity::FromMilli(int64_t milli_value, Format format) {
  Quantity q;
  q.nanos_ = static_cast<int128>(milli_value) * 1'000'000;
  q.format_ = format;
  return q;
}

std::string Quantity::String() const {
  if (!text_.empty()) return text_;
  if (nanos_ == 0) return "0";
  const bool neg = nanos_ < 0;
  const int128 abs = neg ? -nanos_ : nanos_;

  Format format = format_;
  if (format == Format::kBinarySI &&
      (abs < static_cast<int128>(1024) * kNanosPerUnit || abs % kNanosPerUnit != 0)) {
    format = Format::kDecimalSI;
  }
  std::string sign = neg ? "-" : "";
  if (format == Format::kBinarySI) {
    int128 units = abs / kNanosPerUnit;
    int exp = 0;
    while (exp < 6 && units % 1024 == 0) {
      units /= 1024;
      ++exp;
    }
    static constexpr std::string_view kBinary[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    return sign + Int128ToString(units) + std::string(kBinary[exp]);
  }

  // Move every factor of ten into the exponent, then back out until it is a multiple of 3.
  int128 mantissa = abs;
  int exponent = -9;
  while (mantissa % 10 == 0) {
    mantissa /= 10;
    ++exponent;
  }
  while (exponent % 3 != 0) {
    mantissa *= 10;
    --exponent;
  }
  if (format == Format::kDecimalExponent) {
    std::string out = sign + Int128ToString(mantissa);
    if (exponent != 0) out += "e" + std::to_string(exponent);
    return out;
  }
  // DecimalSI has no suffix above E; keep E and let the digits grow.
  while (exponent > 18) {
    mantissa *= 1000;
    exponent -= 3;
  }
  static constexpr std::string_view kDecimal[] = {"n", "u", "m", "", "k", "M", "G", "T", "P", "E"};
  return sign + Int128ToString(mantissa) + std::string(kDecimal[(exponent + 9) / 3]);
}

int64_t Quantity::Value() const {
  return SaturateInt64(DivAwayFromZero(nanos_, kNanosPerUnit));
}

int64_t Quantity::MilliValue() const {
  return SaturateInt64(DivAwayFromZero(nanos_, 1'000'000));
}

Quantity& Quantity::Add(const Quantity& other) {
  if (nanos_ == 0) format_ = other.format_;
  nanos_ = Saturate(nanos_ + other.nanos_);
  text_.clear();
  return *this;
}

Quantity& Quantity::Sub(const Quantity& other) {
  if (nanos_ == 0) format_ = other.format_;
  nanos_ = Saturate(nanos_ - other.nanos_);
  text_.clear();
  return *this;
}

Quantity Quantity::Neg() const {
  Quantity q = *this;
  q.nanos_ = -nanos_;
  q.text_.clear();
  return q;
}

int Quantity::Cmp(const Quantity& other) const {
  return nanos_ < other.nanos_ ? -1 : (nanos_ > other.nanos_ ? 1 : 0);
}

}  // namespace orch
