// IPv4/IPv6 addresses and CIDR networks as values: parse, format, contain, overlap, and address
// arithmetic. Used to validate the CLI and, later, to allocate pod CIDRs and service ClusterIPs.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "orch/status.h"

namespace orch {

enum class IpFamily { kV4, kV6 };

// An IPv4 or IPv6 address. A plain value: cheap to copy, comparable, usable as a map key
// (IPv4 sorts before IPv6, then by numeric value).
class IpAddress {
 public:
  IpAddress() = default;  // 0.0.0.0

  // Accepts dotted-quad IPv4 ("10.0.0.1") and any IPv6 text form ("fd00::1"). No zone ids, no
  // surrounding spaces, no shorthand like "10.1". kInvalidArgument otherwise.
  static Result<IpAddress> Parse(std::string_view text);
  static IpAddress V4(uint32_t host_order);
  // `bytes` in network order: 4 of them for kV4, 16 for kV6.
  static IpAddress FromBytes(IpFamily family, const uint8_t* bytes);

  IpFamily family() const { return family_; }
  bool is_v4() const { return family_ == IpFamily::kV4; }
  // 32 or 128.
  int bit_length() const { return is_v4() ? 32 : 128; }
  // Network order; only the first 4 bytes are used for IPv4.
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }

  bool IsUnspecified() const;  // 0.0.0.0 or ::
  bool IsLoopback() const;     // 127.0.0.0/8 or ::1

  // The address `offset` places after this one. kInvalidArgument if that leaves the family's
  // address space.
  Result<IpAddress> Plus(uint64_t offset) const;

  // Canonical text: dotted quad, or RFC 5952 compressed IPv6.
  std::string ToString() const;

  auto operator<=>(const IpAddress&) const = default;

 private:
  IpFamily family_ = IpFamily::kV4;
  std::array<uint8_t, 16> bytes_{};
};

// A network: an address prefix such as 10.42.0.0/16 or fd00:42::/56. The network address never
// has host bits set.
class Cidr {
 public:
  Cidr() = default;  // 0.0.0.0/0

  // Strict: "10.42.1.0/16" is refused (host bits set) rather than silently widened, because a
  // user who wrote it probably meant something else. kInvalidArgument with the reason.
  static Result<Cidr> Parse(std::string_view text);
  // The network of `address` with `prefix_length` bits; host bits are cleared.
  // kInvalidArgument if prefix_length is outside 0..bit_length.
  static Result<Cidr> Containing(const IpAddress& address, int prefix_length);

  const IpAddress& network() const { return network_; }
  int prefix_length() const { return prefix_length_; }
  IpFamily family() const { return network_.family(); }

  bool Contains(const IpAddress& address) const;
  // True if every address of `other` is in this network.
  bool Contains(const Cidr& other) const;
  // True if the two networks share at least one address (never across families).
  bool Overlaps(const Cidr& other) const;

  // The number of addresses, saturated at UINT64_MAX for huge IPv6 networks.
  uint64_t Size() const;
  // network + offset, e.g. the 10th address of 10.43.0.0/16 is 10.43.0.10. kInvalidArgument if
  // that is outside the network.
  Result<IpAddress> AddressAt(uint64_t offset) const;

  std::string ToString() const;

  auto operator<=>(const Cidr&) const = default;

 private:
  Cidr(IpAddress network, int prefix_length) : network_(network), prefix_length_(prefix_length) {}

  IpAddress network_;
  int prefix_length_ = 0;
};

// A TCP/UDP port as users type it: 1..65535.
Status ValidatePort(int port);

// An https:// server URL split for connecting: https://host[:port][/base/path], host a name,
// an IPv4 address or a bracketed IPv6 address; the port defaults to 443.
struct HttpsUrl {
  std::string host;       // without brackets
  std::string port;       // digits
  std::string base_path;  // "" or "/prefix" (trailing slashes removed)
  bool host_is_ip = false;
};
// kInvalidArgument naming `url` when it is not of that form.
Result<HttpsUrl> ParseHttpsUrl(std::string_view url);

}  // namespace orch
