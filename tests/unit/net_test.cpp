// IpAddress and Cidr: parsing (strict), canonical formatting, containment, overlap, arithmetic.
#include "orch/net.h"

#include <catch2/catch.hpp>

using orch::Cidr;
using orch::IpAddress;
using orch::IpFamily;

TEST_CASE("IpAddress parses and formats IPv4 and IPv6") {
  auto v4 = IpAddress::Parse("10.43.0.10");
  REQUIRE(v4.ok());
  CHECK(v4->family() == IpFamily::kV4);
  CHECK(v4->ToString() == "10.43.0.10");

  auto v6 = IpAddress::Parse("FD00:0:0::0001");
  REQUIRE(v6.ok());
  CHECK(v6->family() == IpFamily::kV6);
  CHECK(v6->ToString() == "fd00::1");

  CHECK(IpAddress::Parse("::1")->IsLoopback());
  CHECK(IpAddress::Parse("127.0.0.53")->IsLoopback());
  CHECK(IpAddress::Parse("0.0.0.0")->IsUnspecified());
  CHECK(IpAddress::V4(0x0a2a0001).ToString() == "10.42.0.1");
}

TEST_CASE("IpAddress refuses what is not an address") {
  for (const char* bad : {"", "10.1", "10.0.0.256", "10.0.0.1 ", " 10.0.0.1", "fe80::1%eth0",
                          "1.2.3.4/32", "host.example", "::g", "1:2:3:4:5:6:7:8:9"}) {
    INFO(bad);
    auto r = IpAddress::Parse(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == orch::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("IpAddress orders and adds") {
  auto a = *IpAddress::Parse("10.0.0.255");
  CHECK(a.Plus(1)->ToString() == "10.0.1.0");
  CHECK(a.Plus(0x100)->ToString() == "10.0.1.255");
  CHECK_FALSE(IpAddress::Parse("255.255.255.255")->Plus(1).ok());
  CHECK(IpAddress::Parse("fd00::ffff")->Plus(1)->ToString() == "fd00::1:0");
  CHECK(*IpAddress::Parse("10.0.0.1") < *IpAddress::Parse("10.0.0.2"));
  CHECK(*IpAddress::Parse("255.0.0.1") < *IpAddress::Parse("::1"));  // v4 before v6
}

TEST_CASE("Cidr parses strictly") {
  auto c = Cidr::Parse("10.42.0.0/16");
  REQUIRE(c.ok());
  CHECK(c->prefix_length() == 16);
  CHECK(c->ToString() == "10.42.0.0/16");
  CHECK(Cidr::Parse("fd00:42::/56")->ToString() == "fd00:42::/56");
  CHECK(Cidr::Parse("0.0.0.0/0").ok());
  CHECK(Cidr::Parse("10.0.0.1/32").ok());

  auto host_bits = Cidr::Parse("10.42.1.0/16");
  REQUIRE_FALSE(host_bits.ok());
  CHECK_THAT(host_bits.status().message(), Catch::Contains("did you mean 10.42.0.0/16"));

  for (const char* bad : {"10.42.0.0", "10.42.0.0/", "10.42.0.0/33", "10.42.0.0/-1", "10.42.0.0/+8",
                          "10.42.0.0/8x", "10.42.0/16", "fd00::/129", "/16", "10.42.0.0/0016"}) {
    INFO(bad);
    CHECK_FALSE(Cidr::Parse(bad).ok());
  }
}

TEST_CASE("Cidr contains and overlaps") {
  auto cluster = *Cidr::Parse("10.42.0.0/16");
  auto service = *Cidr::Parse("10.43.0.0/16");
  auto wide = *Cidr::Parse("10.0.0.0/8");
  auto v6 = *Cidr::Parse("::/0");

  CHECK(cluster.Contains(*IpAddress::Parse("10.42.255.255")));
  CHECK_FALSE(cluster.Contains(*IpAddress::Parse("10.43.0.0")));
  CHECK_FALSE(v6.Contains(*IpAddress::Parse("10.42.0.1")));  // never across families

  CHECK_FALSE(cluster.Overlaps(service));
  CHECK(cluster.Overlaps(wide));
  CHECK(wide.Overlaps(cluster));
  CHECK(cluster.Overlaps(cluster));
  CHECK_FALSE(v6.Overlaps(wide));
  CHECK(wide.Contains(cluster));
  CHECK_FALSE(cluster.Contains(wide));

  auto a = *Cidr::Parse("fd00:42::/56");
  auto b = *Cidr::Parse("fd00:42:0:ff::/64");
  auto c = *Cidr::Parse("fd00:42:0:100::/64");
  CHECK(a.Overlaps(b));
  CHECK_FALSE(a.Overlaps(c));
}

TEST_CASE("Cidr sizes and indexes its addresses") {
  auto service = *Cidr::Parse("10.43.0.0/16");
  CHECK(service.Size() == 65536);
  CHECK(service.AddressAt(10)->ToString() == "10.43.0.10");
  CHECK(service.AddressAt(65535)->ToString() == "10.43.255.255");
  CHECK_FALSE(service.AddressAt(65536).ok());
  CHECK(Cidr::Parse("10.0.0.0/30")->Size() == 4);
  CHECK(Cidr::Parse("fd00::/64")->Size() == UINT64_MAX);
  CHECK(Cidr::Parse("fd00::/120")->AddressAt(10)->ToString() == "fd00::a");

  auto node = Cidr::Containing(*IpAddress::Parse("10.42.3.77"), 24);
  REQUIRE(node.ok());
  CHECK(node->ToString() == "10.42.3.0/24");
  CHECK_FALSE(Cidr::Containing(*IpAddress::Parse("10.42.3.77"), 33).ok());
}

TEST_CASE("ValidatePort accepts 1..65535") {
  CHECK(orch::ValidatePort(1).ok());
  CHECK(orch::ValidatePort(65535).ok());
  CHECK_FALSE(orch::ValidatePort(0).ok());
  CHECK_FALSE(orch::ValidatePort(65536).ok());
  CHECK_FALSE(orch::ValidatePort(-1).ok());
}

TEST_CASE("ParseHttpsUrl splits server URLs") {
  auto plain = orch::ParseHttpsUrl("https://10.0.0.5:6443");
  REQUIRE(plain.ok());
  CHECK(plain->host == "10.0.0.5");
  CHECK(plain->port == "6443");
  CHECK(plain->base_path.empty());
  CHECK(plain->host_is_ip);

  auto named = orch::ParseHttpsUrl("https://master.example/prefix/");
  REQUIRE(named.ok());
  CHECK(named->host == "master.example");
  CHECK(named->port == "443");
  CHECK(named->base_path == "/prefix");
  CHECK_FALSE(named->host_is_ip);

  auto v6 = orch::ParseHttpsUrl("https://[fd00::1]:6443/");
  REQUIRE(v6.ok());
  CHECK(v6->host == "fd00::1");
  CHECK(v6->port == "6443");
  CHECK(v6->base_path.empty());
  CHECK(v6->host_is_ip);

  for (const char* bad : {"http://10.0.0.5:6443", "10.0.0.5:6443", "https://", "https://:6443",
                          "https://host:", "https://host:0", "https://host:65536",
                          "https://host:12a", "https://[fd00::1", "https://[fd00::1]x"}) {
    CAPTURE(bad);
    auto parsed = orch::ParseHttpsUrl(bad);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == orch::StatusCode::kInvalidArgument);
    CHECK(parsed.status().message().find(bad) != std::string::npos);
  }
}
