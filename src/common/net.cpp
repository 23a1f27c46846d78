// Implementation of orch/net.h on top of inet_pton/inet_ntop, with the prefix arithmetic done
// bytewise so IPv4 and IPv6 share one code path.
#include "orch/net.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <charconv>
#include <cstring>
#include <limits>

namespace orch {
namespace {

int ByteCount(IpFamily family) {
  return family == IpFamily::kV4 ? 4 : 16;
}

// True if the first `bits` bits of a and b are equal.
bool SamePrefix(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b, int bits) {
  int full = bits / 8;
  if (std::memcmp(a.data(), b.data(), full) != 0) return false;
  int rest = bits % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[full] & mask) == (b[full] & mask);
}

}  // namespace

Result<IpAddress> IpAddress::Parse(std::string_view text) {
  // inet_pton needs a NUL-terminated string and the longest valid IPv6 text is 45 characters.
  if (text.empty()) return InvalidArgument("empty IP address");
  if (text.size() > 45) return InvalidArgument(fmt::format("'{}' is not an IP address", text));
  char buf[46];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  uint8_t bytes[16] = {};
  if (inet_pton(AF_INET, buf, bytes) == 1) return FromBytes(IpFamily::kV4, bytes);
  if (inet_pton(AF_INET6, buf, bytes) == 1) return FromBytes(IpFamily::kV6, bytes);
  return InvalidArgument(fmt::format("'{}' is not an IP address", text));
}

IpAddress IpAddress::V4(uint32_t host_order) {
  uint8_t bytes[4] = {static_cast<uint8_t>(host_order >> 24),
                      static_cast<uint8_t>(host_order >> 16), static_cast<uint8_t>(host_order >> 8),
                      static_cast<uint8_t>(host_order)};
  return FromBytes(IpFamily::kV4, bytes);
}

IpAddress IpAddress::FromBytes(IpFamily family, const uint8_t* bytes) {
  IpAddress address;
  address.family_ = family;
  std::memcpy(address.bytes_.data(), bytes, ByteCount(family));
  return address;
}

bool IpAddress::IsUnspecified() const {
  for (uint8_t b : bytes_) {
    if (b != 0) return false;
  }
  return true;
}

bool IpAddress::IsLoopback() const {
  if (is_v4()) return bytes_[0] == 127;
  for (int i = 0; i < 15; ++i) {
    if (bytes_[i] != 0) return false;
  }
  return bytes_[15] == 1;
}

Result<IpAddress> IpAddress::Plus(uint64_t offset) const {
  IpAddress result = *this;
  int n = ByteCount(family_);
  // Add from the least significant byte up, carrying; anything left over is an overflow.
  uint64_t carry = offset;
  for (int i = n - 1; i >= 0 && carry != 0; --i) {
    uint64_t sum = static_cast<uint64_t>(result.bytes_[i]) + (carry & 0xff);
    result.bytes_[i] = static_cast<uint8_t>(sum);
    carry = (carry >> 8) + (sum >> 8);
  }
  if (carry != 0) {
    return InvalidArgument(
        fmt::format("{} + {} is past the end of the address space", ToString(), offset));
  }
  return result;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  const char* text = inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof(buf));
  return text ? std::string(text) : std::string("?");
}

Result<Cidr> Cidr::Parse(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    return InvalidArgument(
        fmt::format("'{}' is not a CIDR (expected ADDRESS/PREFIX, e.g. "
                    "10.42.0.0/16)",
                    text));
  }
  auto address = IpAddress::Parse(text.substr(0, slash));
  if (!address.ok()) {
    return InvalidArgument(fmt::format("'{}' is not a CIDR: bad address", text));
  }
  std::string_view prefix_text = text.substr(slash + 1);
  int prefix = -1;
  auto [end, ec] =
      std::from_chars(prefix_text.data(), prefix_text.data() + prefix_text.size(), prefix);
  if (prefix_text.empty() || prefix_text.size() > 3 || ec != std::errc() ||
      end != prefix_text.data() + prefix_text.size() || prefix < 0 ||
      prefix > address->bit_length()) {
    return InvalidArgument(fmt::format("'{}' is not a CIDR: prefix length must be 0..{}", text,
                                       address->bit_length()));
  }
  auto cidr = Containing(*address, prefix);
  if (!cidr.ok()) return cidr.status();
  if (cidr->network() != *address) {
    return InvalidArgument(
        fmt::format("'{}' has host bits set; did you mean {}?", text, cidr->ToString()));
  }
  return cidr;
}

Result<Cidr> Cidr::Containing(const IpAddress& address, int prefix_length) {
  if (prefix_length < 0 || prefix_length > address.bit_length()) {
    return InvalidArgument(
        fmt::format("prefix length {} is outside 0..{}", prefix_length, address.bit_length()));
  }
  std::array<uint8_t, 16> bytes = address.bytes();
  for (int bit = prefix_length; bit < address.bit_length(); ++bit) {
    bytes[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  return Cidr(IpAddress::FromBytes(address.family(), bytes.data()), prefix_length);
}

bool Cidr::Contains(const IpAddress& address) const {
  return address.family() == family() &&
         SamePrefix(network_.bytes(), address.bytes(), prefix_length_);
}

bool Cidr::Contains(const Cidr& other) const {
  return other.prefix_length_ >= prefix_length_ && Contains(other.network_);
}

bool Cidr::Overlaps(const Cidr& other) const {
  // Prefix-aligned networks either nest or are disjoint.
  return Contains(other.network_) || other.Contains(network_);
}

uint64_t Cidr::Size() const {
  int host_bits = network_.bit_length() - prefix_length_;
  if (host_bits >= 64) return std::numeric_limits<uint64_t>::max();
  return uint64_t{1} << host_bits;
}

Result<IpAddress> Cidr::AddressAt(uint64_t offset) const {
  if (offset >= Size()) {
    return InvalidArgument(fmt::format("address #{} is outside {}", offset, ToString()));
  }
  return network_.Plus(offset);
}

std::string Cidr::ToString() const {
  return fmt::format("{}/{}", network_.ToString(), prefix_length_);
}

Status ValidatePort(int port) {
  if (port < 1 || port > 65535) {
    return InvalidArgument(fmt::format("port {} is outside 1..65535", port));
  }
  return Status::Ok();
}

Result<HttpsUrl> ParseHttpsUrl(std::string_view url) {
  constexpr std::string_view kScheme = "https://";
  if (!url.starts_with(kScheme)) {
    return InvalidArgument(fmt::format("'{}' is not an https:// URL", url));
  }
  std::string_view rest = url.substr(kScheme.size());
  HttpsUrl out;
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    out.base_path = rest.substr(slash);
    while (!out.base_path.empty() && out.base_path.back() == '/') out.base_path.pop_back();
    rest = rest.substr(0, slash);
  }
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgument(fmt::format("'{}': unclosed [ in the host", url));
    }
    out.host = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') {
      return InvalidArgument(fmt::format("'{}' is not a valid https:// URL", url));
    }
    port = rest.empty() ? "443" : rest.substr(1);
  } else {
    size_t colon = rest.rfind(':');
    out.host = rest.substr(0, colon);
    port = colon == std::string_view::npos ? "443" : rest.substr(colon + 1);
  }
  int port_number = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (out.host.empty() || port.empty() || ec != std::errc() || end != port.data() + port.size() ||
      !ValidatePort(port_number).ok()) {
    return InvalidArgument(fmt::format("'{}' is not a valid https:// URL", url));
  }
  out.port = port;
  out.host_is_ip = IpAddress::Parse(out.host).ok();
  return out;
}

}  // namespace orch
