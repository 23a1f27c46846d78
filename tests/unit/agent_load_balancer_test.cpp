// The agent's API load balancer (src/agent/api_load_balancer.cpp) forwarding bytes: a local echo
// server behind it, data in small and large pieces both ways, and the end of the connection.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "orch/api_load_balancer.h"

namespace {

// Echoes every connection on a thread of its own until the peer closes.
class EchoServer {
 public:
  EchoServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    REQUIRE(::listen(fd_, 16) == 0);
    accept_ = std::thread([this] {
      for (;;) {
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        conns_.emplace_back([c] {
          char buf[4096];
          for (;;) {
            ssize_t n = ::read(c, buf, sizeof buf);
            if (n <= 0) break;
            if (::write(c, buf, static_cast<size_t>(n)) != n) break;
          }
          ::close(c);
        });
      }
    });
  }
  ~EchoServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    accept_.join();
    for (auto& t : conns_) t.join();
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread accept_;
  std::vector<std::thread> conns_;  // accept thread only, then the destructor
};

int Connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}

std::string ReadExactly(int fd, size_t n) {
  std::string out;
  char buf[8192];
  while (out.size() < n) {
    ssize_t got = ::read(fd, buf, std::min(sizeof buf, n - out.size()));
    if (got <= 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

}  // namespace

TEST_CASE("the load balancer forwards bytes both ways, in any piece size, until the end") {
  EchoServer echo;
  orch::ApiLoadBalancerOptions options;
  options.join_url = "https://127.0.0.1:" + std::to_string(echo.port());
  options.port = 0;
  options.probe_interval = std::chrono::hours(1);
  auto lb = orch::ApiLoadBalancer::Start(options);
  REQUIRE(lb.ok());
  std::string url = (*lb)->url();
  int port = std::stoi(url.substr(url.rfind(':') + 1));

  int fd = Connect(port);
  // One byte, then a piece much larger than the balancer's copy buffer (16 KiB).
  REQUIRE(::write(fd, "x", 1) == 1);
  CHECK(ReadExactly(fd, 1) == "x");
  std::string big(300 * 1024, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 23);
  std::thread writer([&] {
    size_t off = 0;
    while (off < big.size()) {
      ssize_t n = ::write(fd, big.data() + off, std::min<size_t>(7000, big.size() - off));
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
  });
  std::string back = ReadExactly(fd, big.size());
  writer.join();
  CHECK(back.size() == big.size());
  CHECK(back == big);

  // Our end closes its sending side: the echo server sees the end, closes, and so do we.
  ::shutdown(fd, SHUT_WR);
  char c;
  CHECK(::read(fd, &c, 1) <= 0);
  ::close(fd);
  (*lb)->Stop();
}
