// Cluster DNS: the wire format (queries, answers, truncation, reading forwarded answers), the
// zone built from Services and EndpointSlices (A, headless, hostnames, SRV, PTR, NXDOMAIN,
// NODATA, forwarding), the node's resolvers, and the server over UDP and TCP with a fake upstream.
#include "orch/cluster_dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <functional>
#include <thread>

#include "dns_message.h"
#include "dns_zone.h"
#include "fake_api_client.h"

namespace {

using json = nlohmann::json;
using orch::ObjectPtr;
namespace dns = orch::dns;
using Bytes = std::vector<uint8_t>;

ObjectPtr Ptr(json j) {
  return std::make_shared<const json>(std::move(j));
}

void Put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}

void PutName(Bytes& b, const std::string& name) {
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    b.push_back(static_cast<uint8_t>(dot - start));
    b.insert(b.end(), name.begin() + static_cast<long>(start),
             name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  b.push_back(0);
}

Bytes MakeQuery(const std::string& name, uint16_t type, uint16_t id = 0x1234,
                uint16_t edns_size = 0) {
  Bytes b;
  Put16(b, id);
  Put16(b, 0x0100);  // RD
  Put16(b, 1);
  Put16(b, 0);
  Put16(b, 0);
  Put16(b, edns_size ? 1 : 0);
  PutName(b, name);
  Put16(b, type);
  Put16(b, dns::kClassIn);
  if (edns_size) {
    b.push_back(0);  // root
    Put16(b, dns::kTypeOpt);
    Put16(b, edns_size);
    Put16(b, 0);
    Put16(b, 0);
    Put16(b, 0);
  }
  return b;
}

// What a test needs of a response: rcode, flags, and the answer section's records.
struct Decoded {
  uint8_t rcode = 0;
  bool truncated = false;
  bool authoritative = false;
  uint16_t id = 0;
  std::vector<std::pair<uint16_t, Bytes>> answers;  // type, rdata
  uint16_t authority = 0;
  uint16_t additional = 0;
};

size_t SkipName(const Bytes& m, size_t pos) {
  while (m.at(pos) != 0) {
    if ((m[pos] & 0xC0) == 0xC0) return pos + 2;
    pos += 1 + m[pos];
  }
  return pos + 1;
}

Decoded Decode(const Bytes& m) {
  Decoded d;
  REQUIRE(m.size() >= 12);
  d.id = static_cast<uint16_t>((m[0] << 8) | m[1]);
  d.rcode = m[3] & 0xF;
  d.truncated = (m[2] & 0x02) != 0;
  d.authoritative = (m[2] & 0x04) != 0;
  uint16_t qd = static_cast<uint16_t>((m[4] << 8) | m[5]);
  uint16_t an = static_cast<uint16_t>((m[6] << 8) | m[7]);
  d.authority = static_cast<uint16_t>((m[8] << 8) | m[9]);
  d.additional = static_cast<uint16_t>((m[10] << 8) | m[11]);
  size_t pos = 12;
  for (int i = 0; i < qd; ++i) pos = SkipName(m, pos) + 4;
  for (int i = 0; i < an; ++i) {
    pos = SkipName(m, pos);
    uint16_t type = static_cast<uint16_t>((m.at(pos) << 8) | m.at(pos + 1));
    uint16_t len = static_cast<uint16_t>((m.at(pos + 8) << 8) | m.at(pos + 9));
    pos += 10;
    d.answers.push_back({type, Bytes(m.begin() + static_cast<long>(pos),
                                     m.begin() + static_cast<long>(pos + len))});
    pos += len;
  }
  return d;
}

std::vector<std::string> AddressesOf(const Decoded& d) {
  std::vector<std::string> out;
  for (const auto& [type, rdata] : d.answers) {
    if (type != dns::kTypeA || rdata.size() != 4) continue;
    out.push_back(dns::FormatIPv4((uint32_t{rdata[0]} << 24) | (uint32_t{rdata[1]} << 16) |
                                  (uint32_t{rdata[2]} << 8) | rdata[3]));
  }
  std::sort(out.begin(), out.end());
  return out;
}

json Service(const std::string& name, const std::string& cluster_ip) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec",
           {{"type", "ClusterIP"},
            {"clusterIP", cluster_ip},
            {"ports", json::array({{{"name", "http"}, {"port", 80}, {"protocol", "TCP"}}})}}}};
}

json Slice(const std::string& service, json endpoints) {
  return {{"apiVersion", "discovery.k8s.io/v1"},
          {"kind", "EndpointSlice"},
          {"metadata",
           {{"name", service + "-x"},
            {"namespace", "default"},
            {"labels", {{"kubernetes.io/service-name", service}}}}},
          {"addressType", "IPv4"},
          {"ports", json::array({{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}}})},
          {"endpoints", endpoints}};
}

json Endpoint(const std::string& ip, bool ready, const std::string& hostname = "") {
  json e = {{"addresses", {ip}}, {"conditions", {{"ready", ready}}}};
  if (!hostname.empty()) e["hostname"] = hostname;
  return e;
}

std::shared_ptr<const dns::Zone> TestZone() {
  json external = {{"apiVersion", "v1"},
                   {"kind", "Service"},
                   {"metadata", {{"name", "ext"}, {"namespace", "default"}}},
                   {"spec", {{"type", "ExternalName"}, {"externalName", "example.com"}}}};
  return dns::Zone::Build(
      {Ptr(Service("web", "10.43.0.20")), Ptr(Service("db", "None")), Ptr(external)},
      {Ptr(Slice("db", json::array({Endpoint("10.42.0.5", true, "db-0"),
                                    Endpoint("10.42.0.6", true), Endpoint("10.42.0.7", false)})))},
      "cluster.local");
}

Decoded Ask(const dns::Zone& zone, const std::string& name, uint16_t type) {
  auto query = dns::ParseQuery(MakeQuery(name, type));
  REQUIRE(query);
  auto answer = zone.Lookup(query->name, query->type);
  REQUIRE(answer);
  return Decode(dns::BuildResponse(*query, *answer, 512));
}

}  // namespace

TEST_CASE("queries are parsed, malformed ones get FORMERR, responses are never answered") {
  auto q = dns::ParseQuery(MakeQuery("Web.Default.SVC.cluster.local", dns::kTypeA, 77, 1232));
  REQUIRE(q);
  CHECK(q->id == 77);
  CHECK(q->name == "web.default.svc.cluster.local");
  CHECK(q->type == dns::kTypeA);
  CHECK(q->recursion_desired);
  CHECK(q->udp_size == 1232);
  CHECK(dns::ParseQuery(MakeQuery("a.b", dns::kTypeA))->udp_size == 512);

  Bytes broken = MakeQuery("web", dns::kTypeA, 9);
  broken.resize(broken.size() - 3);
  CHECK_FALSE(dns::ParseQuery(broken));
  Decoded err = Decode(dns::FormErrFor(broken));
  CHECK(err.id == 9);
  CHECK(err.rcode == dns::kFormErr);

  Bytes response = MakeQuery("web", dns::kTypeA);
  response[2] |= 0x80;
  CHECK_FALSE(dns::ParseQuery(response));
  CHECK(dns::FormErrFor(response).empty());
  // A compression pointer loop is refused, not followed forever.
  Bytes loop = MakeQuery("", dns::kTypeA);
  loop[12] = 0xC0;
  loop.insert(loop.begin() + 13, 12);
  CHECK_FALSE(dns::ParseQuery(loop));
}

TEST_CASE("Services answer A and SRV; other types get NODATA with the zone's SOA") {
  auto zone = TestZone();
  Decoded a = Ask(*zone, "web.default.svc.cluster.local", dns::kTypeA);
  CHECK(a.rcode == dns::kNoError);
  CHECK(a.authoritative);
  CHECK(AddressesOf(a) == std::vector<std::string>{"10.43.0.20"});

  Decoded aaaa = Ask(*zone, "web.default.svc.cluster.local", dns::kTypeAaaa);
  CHECK(aaaa.rcode == dns::kNoError);
  CHECK(aaaa.answers.empty());
  CHECK(aaaa.authority == 1);

  Decoded srv = Ask(*zone, "_http._tcp.web.default.svc.cluster.local", dns::kTypeSrv);
  REQUIRE(srv.answers.size() == 1);
  const Bytes& rdata = srv.answers[0].second;
  CHECK(((rdata[4] << 8) | rdata[5]) == 80);
  CHECK(rdata == dns::SrvRdata(0, 100, 80, "web.default.svc.cluster.local"));

  Decoded ptr = Ask(*zone, "20.0.43.10.in-addr.arpa", dns::kTypePtr);
  REQUIRE(ptr.answers.size() == 1);
  CHECK(ptr.answers[0].second == dns::NameRdata("web.default.svc.cluster.local"));

  Decoded cname = Ask(*zone, "ext.default.svc.cluster.local", dns::kTypeA);
  REQUIRE(cname.answers.size() == 1);
  CHECK(cname.answers[0].first == dns::kTypeCname);
  CHECK(cname.answers[0].second == dns::NameRdata("example.com"));
}

TEST_CASE("headless Services answer their ready endpoints, also by hostname and SRV") {
  auto zone = TestZone();
  Decoded all = Ask(*zone, "db.default.svc.cluster.local", dns::kTypeA);
  CHECK(AddressesOf(all) == std::vector<std::string>{"10.42.0.5", "10.42.0.6"});
  CHECK(AddressesOf(Ask(*zone, "db-0.db.default.svc.cluster.local", dns::kTypeA)) ==
        std::vector<std::string>{"10.42.0.5"});
  CHECK(AddressesOf(Ask(*zone, "10-42-0-6.db.default.svc.cluster.local", dns::kTypeA)) ==
        std::vector<std::string>{"10.42.0.6"});
  Decoded srv = Ask(*zone, "_http._tcp.db.default.svc.cluster.local", dns::kTypeSrv);
  CHECK(srv.answers.size() == 2);
  CHECK(srv.additional == 2);  // the targets' addresses
  Decoded ptr = Ask(*zone, "5.0.42.10.in-addr.arpa", dns::kTypePtr);
  REQUIRE(ptr.answers.size() == 1);
  CHECK(ptr.answers[0].second == dns::NameRdata("db-0.db.default.svc.cluster.local"));
  // Not ready: not published.
  CHECK(Ask(*zone, "10-42-0-7.db.default.svc.cluster.local", dns::kTypeA).rcode == dns::kNxDomain);
}

TEST_CASE("unknown cluster names are NXDOMAIN, their parents NODATA, the rest forwarded") {
  auto zone = TestZone();
  Decoded nx = Ask(*zone, "nope.default.svc.cluster.local", dns::kTypeA);
  CHECK(nx.rcode == dns::kNxDomain);
  CHECK(nx.authoritative);
  CHECK(nx.authority == 1);
  CHECK(Ask(*zone, "web.other.svc.cluster.local", dns::kTypeA).rcode == dns::kNxDomain);
  CHECK(Ask(*zone, "default.svc.cluster.local", dns::kTypeA).rcode == dns::kNoError);
  CHECK(Ask(*zone, "svc.cluster.local", dns::kTypeA).rcode == dns::kNoError);
  CHECK(Ask(*zone, "cluster.local", dns::kTypeSoa).answers.size() == 1);
  CHECK(AddressesOf(Ask(*zone, "10-42-0-9.default.pod.cluster.local", dns::kTypeA)) ==
        std::vector<std::string>{"10.42.0.9"});
  CHECK_FALSE(zone->Lookup("example.com", dns::kTypeA));
  CHECK_FALSE(zone->Lookup("web.default.svc.cluster.local.example.com", dns::kTypeA));
  CHECK_FALSE(zone->Lookup("1.1.168.192.in-addr.arpa", dns::kTypePtr));
}

TEST_CASE("answers too long for the client are truncated; forwarded answers are inspected") {
  json endpoints = json::array();
  for (int i = 0; i < 100; ++i) endpoints.push_back(Endpoint(fmt::format("10.42.1.{}", i), true));
  auto zone = dns::Zone::Build({Ptr(Service("big", "None"))}, {Ptr(Slice("big", endpoints))},
                               "cluster.local");
  auto query = dns::ParseQuery(MakeQuery("big.default.svc.cluster.local", dns::kTypeA));
  auto answer = zone->Lookup(query->name, query->type);
  REQUIRE(answer);
  Bytes small = dns::BuildResponse(*query, *answer, 512);
  CHECK(small.size() <= 512);
  CHECK(Decode(small).truncated);
  Bytes large = dns::BuildResponse(*query, *answer, 65535);
  CHECK_FALSE(Decode(large).truncated);
  CHECK(Decode(large).answers.size() == 100);

  auto info = dns::InspectResponse(large);
  REQUIRE(info);
  CHECK(info->rcode == dns::kNoError);
  CHECK(info->ttl == dns::kClusterTtl);
  auto nx_query = dns::ParseQuery(MakeQuery("x.default.svc.cluster.local", dns::kTypeA));
  auto nx = dns::InspectResponse(
      dns::BuildResponse(*nx_query, *zone->Lookup(nx_query->name, nx_query->type), 512));
  REQUIRE(nx);
  CHECK(nx->rcode == dns::kNxDomain);
  CHECK(nx->ttl == dns::kClusterTtl);  // from the SOA
}

TEST_CASE("the node's resolvers skip loopback stubs, falling back to systemd-resolved's list") {
  CHECK(orch::NodeResolvers("nameserver 10.0.0.2\nnameserver 127.0.0.1\nsearch x\n", "") ==
        std::vector<std::string>{"10.0.0.2"});
  CHECK(orch::NodeResolvers("nameserver 127.0.0.53\noptions edns0\n",
                            "# real\nnameserver 192.168.1.1\nnameserver 1.1.1.1\n") ==
        std::vector<std::string>{"192.168.1.1", "1.1.1.1"});
  CHECK(orch::NodeResolvers("nameserver 127.0.0.53\n", "").empty());
}

namespace {

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// A socket of `type` bound to 127.0.0.1:port (0: a free port); sets *bound to the port it got.
int BoundLoopbackSocket(int type, uint16_t port, uint16_t* bound) {
  int fd = ::socket(AF_INET, type, 0);
  REQUIRE(fd >= 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr = Loopback(port);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *bound = ntohs(addr.sin_port);
  return fd;
}

// A UDP resolver on a free port of 127.0.0.1 that answers each query with reply(query) and
// counts the queries. By default every A query gets 192.0.2.1 (TTL 60).
class FakeUpstream {
 public:
  using Reply = std::function<Bytes(const dns::Query&)>;
  explicit FakeUpstream(Reply reply = AnswerExampleAddress) : reply_(std::move(reply)) {
    fd_ = BoundLoopbackSocket(SOCK_DGRAM, 0, &port_);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeUpstream() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  int queries() const { return queries_; }

  static Bytes AnswerExampleAddress(const dns::Query& q) {
    dns::Answer answer;
    answer.authoritative = false;
    answer.answers.push_back({q.name, dns::kTypeA, 60, dns::ARdata(0xC0000201)});
    return dns::BuildResponse(q, answer, 512);
  }

 private:
  void Serve() {
    uint8_t buf[2048];
    for (;;) {
      sockaddr_in from{};
      socklen_t len = sizeof(from);
      ssize_t n = ::recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n <= 0) return;
      auto q = dns::ParseQuery(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
      if (!q) continue;
      ++queries_;
      Bytes reply = reply_(*q);
      ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }
  Reply reply_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> queries_{0};
  std::thread thread_;
};

Bytes UdpExchange(uint16_t port, const Bytes& query) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr = Loopback(port);
  ::sendto(fd, query.data(), query.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  Bytes buf(4096);
  ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
  ::close(fd);
  buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return buf;
}

Bytes TcpExchange(uint16_t port, const Bytes& query) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = Loopback(port);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  Bytes framed{static_cast<uint8_t>(query.size() >> 8), static_cast<uint8_t>(query.size())};
  framed.insert(framed.end(), query.begin(), query.end());
  REQUIRE(::write(fd, framed.data(), framed.size()) == static_cast<ssize_t>(framed.size()));
  Bytes out;
  uint8_t buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.insert(out.end(), buf, buf + n);
    if (out.size() >= 2 && out.size() >= 2u + ((out[0] << 8) | out[1])) break;
  }
  ::close(fd);
  REQUIRE(out.size() >= 2);
  return Bytes(out.begin() + 2, out.end());
}

bool WaitUntil(const std::function<bool()>& done) {
  for (int i = 0; i < 200; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return done();
}

}  // namespace

TEST_CASE("the server answers cluster names over UDP and TCP and forwards others with a cache") {
  orch::testing::FakeApiClient api;
  json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "default"}}}};
  REQUIRE(api.Create({"", "v1", "namespaces", false}, "", ns).ok());
  auto informers = orch::InformerFactory::Create(api);
  FakeUpstream upstream;
  orch::ClusterDnsOptions options;
  options.listen_address = "127.0.0.1";
  options.port = 0;
  options.upstreams = {fmt::format("127.0.0.1:{}", upstream.port())};
  auto server = orch::NewClusterDns(options, *informers);
  REQUIRE(server->Start().ok());
  informers->Start();
  REQUIRE(server->port() != 0);

  REQUIRE(api.Create({"", "v1", "services"}, "default", Service("web", "10.43.0.20")).ok());
  REQUIRE(WaitUntil([&] {
    return AddressesOf(Decode(UdpExchange(
               server->port(), MakeQuery("web.default.svc.cluster.local", dns::kTypeA, 5)))) ==
           std::vector<std::string>{"10.43.0.20"};
  }));
  Decoded tcp = Decode(
      TcpExchange(server->port(), MakeQuery("web.default.svc.cluster.local", dns::kTypeA, 6)));
  CHECK(tcp.id == 6);
  CHECK(AddressesOf(tcp) == std::vector<std::string>{"10.43.0.20"});
  CHECK(Decode(UdpExchange(server->port(), MakeQuery("no.default.svc.cluster.local", dns::kTypeA)))
            .rcode == dns::kNxDomain);

  // Forwarded, then answered from the cache with the new query's id.
  Decoded first = Decode(UdpExchange(server->port(), MakeQuery("example.org", dns::kTypeA, 11)));
  CHECK(first.id == 11);
  CHECK(AddressesOf(first) == std::vector<std::string>{"192.0.2.1"});
  Decoded second = Decode(UdpExchange(server->port(), MakeQuery("example.org", dns::kTypeA, 12)));
  CHECK(second.id == 12);
  CHECK(AddressesOf(second) == std::vector<std::string>{"192.0.2.1"});
  CHECK(upstream.queries() == 1);
  Decoded over_tcp = Decode(TcpExchange(server->port(), MakeQuery("example.net", dns::kTypeA)));
  CHECK(AddressesOf(over_tcp) == std::vector<std::string>{"192.0.2.1"});
  server->Stop();
  informers->Stop();
}

TEST_CASE("without a reachable upstream, other names get SERVFAIL and cluster names still work") {
  orch::testing::FakeApiClient api;
  auto informers = orch::InformerFactory::Create(api);
  orch::ClusterDnsOptions options;
  options.listen_address = "127.0.0.1";
  options.port = 0;
  // Nothing listens there: the connected socket sees the ICMP error at once.
  uint16_t closed_port = 0;
  ::close(BoundLoopbackSocket(SOCK_DGRAM, 0, &closed_port));
  options.upstreams = {fmt::format("127.0.0.1:{}", closed_port)};
  auto server = orch::NewClusterDns(options, *informers);
  REQUIRE(server->Start().ok());
  informers->Start();
  Decoded failed = Decode(UdpExchange(server->port(), MakeQuery("example.org", dns::kTypeA, 3)));
  CHECK(failed.id == 3);
  CHECK(failed.rcode == dns::kServFail);
  REQUIRE(WaitUntil([&] {
    return Decode(
               UdpExchange(server->port(), MakeQuery("x.default.svc.cluster.local", dns::kTypeA)))
               .rcode == dns::kNxDomain;
  }));
  server->Stop();
  informers->Stop();
}

TEST_CASE("over UDP an answer longer than 512 bytes sets TC, so the client asks again over TCP") {
  orch::testing::FakeApiClient api;
  json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "default"}}}};
  REQUIRE(api.Create({"", "v1", "namespaces", false}, "", ns).ok());
  auto informers = orch::InformerFactory::Create(api);
  orch::ClusterDnsOptions options;
  options.listen_address = "127.0.0.1";
  options.port = 0;
  auto server = orch::NewClusterDns(options, *informers);
  REQUIRE(server->Start().ok());
  informers->Start();
  json endpoints = json::array();
  for (int i = 0; i < 100; ++i) endpoints.push_back(Endpoint(fmt::format("10.42.1.{}", i), true));
  REQUIRE(api.Create({"", "v1", "services"}, "default", Service("big", "None")).ok());
  REQUIRE(
      api.Create({"discovery.k8s.io", "v1", "endpointslices"}, "default", Slice("big", endpoints))
          .ok());
  const std::string name = "big.default.svc.cluster.local";
  // 100 A records (16 bytes each) cannot fit in a plain DNS datagram.
  Bytes udp;
  REQUIRE(WaitUntil([&] {
    udp = UdpExchange(server->port(), MakeQuery(name, dns::kTypeA, 7));
    return udp.size() >= 12 && Decode(udp).rcode == dns::kNoError && !Decode(udp).answers.empty();
  }));
  CHECK(udp.size() <= 512);
  Decoded truncated = Decode(udp);
  CHECK(truncated.truncated);
  CHECK(truncated.id == 7);
  CHECK(truncated.answers.size() < 100);
  // Over TCP the whole answer comes, without TC.
  Decoded whole = Decode(TcpExchange(server->port(), MakeQuery(name, dns::kTypeA, 8)));
  CHECK_FALSE(whole.truncated);
  CHECK(whole.answers.size() == 100);
  // A client announcing a 4096-byte buffer (EDNS) gets it all over UDP.
  Bytes edns = UdpExchange(server->port(), MakeQuery(name, dns::kTypeA, 9, 4096));
  CHECK(edns.size() > 512);
  CHECK_FALSE(Decode(edns).truncated);
  CHECK(Decode(edns).answers.size() == 100);
  // A small answer is never marked truncated.
  REQUIRE(api.Create({"", "v1", "services"}, "default", Service("web", "10.43.0.20")).ok());
  REQUIRE(WaitUntil([&] {
    return AddressesOf(Decode(UdpExchange(
               server->port(), MakeQuery("web.default.svc.cluster.local", dns::kTypeA)))) ==
           std::vector<std::string>{"10.43.0.20"};
  }));
  CHECK_FALSE(
      Decode(UdpExchange(server->port(), MakeQuery("web.default.svc.cluster.local", dns::kTypeA)))
          .truncated);
  server->Stop();
  informers->Stop();
}

namespace {

// A resolver on 127.0.0.1 whose UDP answers are truncated (TC, no records) and whose TCP answers,
// on the same port, hold 40 A records (more than 512 bytes), as a real server does for big
// answers. Counts the queries of each kind.
class TruncatingUpstream {
 public:
  TruncatingUpstream() {
    uint16_t tcp_port = 0;
    tcp_ = BoundLoopbackSocket(SOCK_STREAM, udp_.port(), &tcp_port);
    REQUIRE(::listen(tcp_, 8) == 0);
    tcp_thread_ = std::thread([this] { ServeTcp(); });
  }
  ~TruncatingUpstream() {
    ::shutdown(tcp_, SHUT_RDWR);
    ::close(tcp_);
    tcp_thread_.join();
  }
  uint16_t port() const { return udp_.port(); }
  int udp_queries() const { return udp_.queries(); }
  int tcp_queries() const { return tcp_queries_; }

  static Bytes Whole(const dns::Query& q) {
    dns::Answer answer;
    answer.authoritative = false;
    for (uint32_t i = 1; i <= 40; ++i) {
      answer.answers.push_back({q.name, dns::kTypeA, 60, dns::ARdata(0xC6336400 + i)});
    }
    return dns::BuildResponse(q, answer, 65535);
  }

 private:
  static Bytes Truncated(const dns::Query& q) {
    Bytes reply = dns::BuildResponse(q, {dns::kNoError, false, {}, {}, {}}, 512);
    reply[2] |= 0x02;  // TC: "ask me over TCP"
    return reply;
  }
  void ServeTcp() {
    for (;;) {
      int fd = ::accept(tcp_, nullptr, nullptr);
      if (fd < 0) return;
      uint8_t length[2];
      Bytes query;
      if (::recv(fd, length, 2, MSG_WAITALL) == 2) {
        query.resize(static_cast<size_t>((length[0] << 8) | length[1]));
        if (::recv(fd, query.data(), query.size(), MSG_WAITALL) !=
            static_cast<ssize_t>(query.size())) {
          query.clear();
        }
      }
      if (auto q = dns::ParseQuery(query)) {
        ++tcp_queries_;
        Bytes reply = Whole(*q);
        Bytes framed{static_cast<uint8_t>(reply.size() >> 8), static_cast<uint8_t>(reply.size())};
        framed.insert(framed.end(), reply.begin(), reply.end());
        (void)!::write(fd, framed.data(), framed.size());
      }
      ::close(fd);
    }
  }
  FakeUpstream udp_{Truncated};
  int tcp_ = -1;
  std::atomic<int> tcp_queries_{0};
  std::thread tcp_thread_;
};

}  // namespace

TEST_CASE("a truncated answer from the upstream is fetched again over TCP, whole, and cached") {
  orch::testing::FakeApiClient api;
  auto informers = orch::InformerFactory::Create(api);
  TruncatingUpstream upstream;
  orch::ClusterDnsOptions options;
  options.listen_address = "127.0.0.1";
  options.port = 0;
  options.upstreams = {fmt::format("127.0.0.1:{}", upstream.port())};
  auto server = orch::NewClusterDns(options, *informers);
  REQUIRE(server->Start().ok());
  informers->Start();

  // A TCP client gets all 40 records, although the upstream truncated its UDP answer.
  Decoded whole =
      Decode(TcpExchange(server->port(), MakeQuery("big.example.org", dns::kTypeA, 21)));
  CHECK(whole.id == 21);
  CHECK(whole.rcode == dns::kNoError);
  CHECK_FALSE(whole.truncated);
  CHECK(whole.answers.size() == 40);
  CHECK(upstream.udp_queries() == 1);
  CHECK(upstream.tcp_queries() == 1);

  // The whole answer was cached: a UDP client with a big buffer gets it without asking upstream;
  // one with 512 bytes gets TC from us (and would come back over TCP).
  Decoded edns =
      Decode(UdpExchange(server->port(), MakeQuery("big.example.org", dns::kTypeA, 22, 4096)));
  CHECK(edns.id == 22);
  CHECK(edns.answers.size() == 40);
  CHECK_FALSE(edns.truncated);
  Decoded small =
      Decode(UdpExchange(server->port(), MakeQuery("big.example.org", dns::kTypeA, 23)));
  CHECK(small.truncated);
  CHECK(upstream.udp_queries() == 1);
  CHECK(upstream.tcp_queries() == 1);
  server->Stop();
  informers->Stop();
}
