// dns_load: a small UDP DNS load generator for net_bench (dnsperf is not installed here): keeps
// a fixed number of A queries in flight against one server for a while, prints queries/s and
// the latency percentiles of the answers.
//
//   dns_load SERVER_IP PORT NAME SECONDS IN_FLIGHT
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace orch {
namespace {

using Clock = std::chrono::steady_clock;

// A query for NAME (type A, class IN, recursion desired) with the given ID.
std::vector<uint8_t> Query(uint16_t id, const std::string& name) {
  std::vector<uint8_t> q = {static_cast<uint8_t>(id >> 8),
                            static_cast<uint8_t>(id & 0xff),
                            0x01,
                            0x00,
                            0,
                            1,
                            0,
                            0,
                            0,
                            0,
                            0,
                            0};
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    if (dot > start) {
      q.push_back(static_cast<uint8_t>(dot - start));
      q.insert(q.end(), name.begin() + static_cast<std::ptrdiff_t>(start),
               name.begin() + static_cast<std::ptrdiff_t>(dot));
    }
    start = dot + 1;
  }
  q.insert(q.end(), {0, 0, 1, 0, 1});
  return q;
}

struct Slot {
  bool busy = false;
  Clock::time_point sent;
};

int Run(const char* server, int port, const std::string& name, double seconds, int in_flight) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return perror("socket"), 1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, server, &addr.sin_addr) != 1) return fprintf(stderr, "bad IP\n"), 1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return perror("connect"), 1;
  }
  // IDs are slot numbers plus a generation in the high bits, so a late answer to a query given
  // up on is not taken for the answer to its slot's next one.
  const int slots = std::min(in_flight, 4096);
  std::vector<Slot> table(static_cast<size_t>(slots));
  std::vector<uint16_t> generation(static_cast<size_t>(slots), 0);
  std::vector<double> latencies_ms;
  latencies_ms.reserve(1 << 20);
  uint64_t sent = 0, answered = 0, lost = 0, errors = 0;
  const auto timeout = std::chrono::seconds(1);

  auto send_slot = [&](int i) {
    auto& g = generation[static_cast<size_t>(i)];
    g = static_cast<uint16_t>((g + 1) & 0xf);
    uint16_t id = static_cast<uint16_t>((g << 12) | i);
    std::vector<uint8_t> q = Query(id, name);
    // The clock before send: the server may answer before send returns to us.
    auto now = Clock::now();
    if (send(fd, q.data(), q.size(), 0) < 0) return false;  // buffer full: retried later
    table[static_cast<size_t>(i)] = {true, now};
    ++sent;
    return true;
  };

  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  for (int i = 0; i < slots; ++i) send_slot(i);
  uint8_t buf[4096];
  while (Clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    poll(&p, 1, 10);
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n < 12) break;
      uint16_t id = static_cast<uint16_t>((buf[0] << 8) | buf[1]);
      int i = id & 0xfff;
      if (i >= slots || !table[static_cast<size_t>(i)].busy ||
          (id >> 12) != generation[static_cast<size_t>(i)]) {
        continue;
      }
      auto now = Clock::now();
      latencies_ms.push_back(
          std::chrono::duration<double, std::milli>(now - table[static_cast<size_t>(i)].sent)
              .count());
      ++answered;
      if ((buf[3] & 0x0f) != 0) ++errors;  // rcode
      table[static_cast<size_t>(i)].busy = false;
      if (now < end) send_slot(i);
    }
    auto now = Clock::now();
    for (int i = 0; i < slots; ++i) {
      Slot& s = table[static_cast<size_t>(i)];
      if (s.busy && now - s.sent > timeout) {
        ++lost;
        s.busy = false;
      }
      if (!s.busy && now < end) send_slot(i);
    }
  }
  close(fd);
  double took = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double p) {
    if (latencies_ms.empty()) return 0.0;
    size_t k = static_cast<size_t>(p * static_cast<double>(latencies_ms.size() - 1));
    return latencies_ms[k];
  };
  printf(
      "dns_load: %llu queries sent, %llu answered (%llu with an error rcode), %llu lost in "
      "%.1f s: %.0f answers/s, latency p50 %.2f ms p99 %.2f ms max %.2f ms\n",
      static_cast<unsigned long long>(sent), static_cast<unsigned long long>(answered),
      static_cast<unsigned long long>(errors), static_cast<unsigned long long>(lost), took,
      static_cast<double>(answered) / took, pct(0.5), pct(0.99), pct(1.0));
  return answered > 0 ? 0 : 1;
}

}  // namespace
}  // namespace orch

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s SERVER_IP PORT NAME SECONDS IN_FLIGHT\n", argv[0]);
    return 2;
  }
  return orch::Run(argv[1], atoi(argv[2]), argv[3], atof(argv[4]), atoi(argv[5]));
}
