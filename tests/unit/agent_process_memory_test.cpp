// The agent process's memory settings (src/agent/process_memory.h): free heap given back, and
// read-only pages of the loaded objects dropped from the mappings without losing anything the
// process wrote (data, relocated pointers, heap).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "process_memory.h"

using namespace orch::agent;

namespace {

// Relocated at load (.data.rel.ro, inside the writable segment) and written at run time (.data).
const char* const kNames[] = {"alpha", "beta", "gamma"};
int written_counter = 1;

int Twice(int x) {
  return 2 * x;
}

// Resident bytes of this process's file-backed memory (RssFile in /proc/self/status).
long RssFileKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("RssFile:", 0) == 0) return std::strtol(line.c_str() + 8, nullptr, 10);
  }
  return -1;
}

}  // namespace

TEST_CASE("read-only pages of the loaded objects are dropped and fault back in") {
  written_counter = 42;
  std::vector<char> heap(1 << 20, 'x');
  long before = RssFileKib();
  size_t advised = ReleaseReadOnlyImagePages();
  CHECK(advised > 0);
  long after = RssFileKib();
  if (before > 0 && after > 0) CHECK(after < before);
  // Code, constants, relocated pointers, written data and heap are all as they were.
  CHECK(Twice(21) == 42);
  CHECK(std::string(kNames[1]) == "beta");
  CHECK(std::strcmp(kNames[2], "gamma") == 0);
  CHECK(written_counter == 42);
  CHECK(heap[12345] == 'x');
  CHECK(std::string("still here").size() == 10);
  // A second pass is as harmless.
  CHECK(ReleaseReadOnlyImagePages() > 0);
  CHECK(Twice(4) == 8);
}

TEST_CASE("free heap is given back only above the threshold") {
  std::vector<void*> blocks;
  for (int i = 0; i < 256; ++i) blocks.push_back(std::malloc(16 * 1024));
  // Every other block freed: free memory the arena cannot give back from its top.
  for (size_t i = 0; i < blocks.size(); i += 2) std::free(blocks[i]);
  size_t free_bytes = TrimFreeHeap(SIZE_MAX);
  CHECK(free_bytes >= 128 * 16 * 1024);
  CHECK(TrimFreeHeap(0) >= free_bytes / 2);
  for (size_t i = 1; i < blocks.size(); i += 2) std::free(blocks[i]);
  LimitMallocArenas(2);  // only caps arenas made from now on
  void* p = std::malloc(100);
  CHECK(p != nullptr);
  std::free(p);
}

TEST_CASE("resident file pages are read from statm") {
  // Both once first: after the test above dropped the read-only pages, the code reading them
  // faults back in (64 KiB around each fault) and would grow RssFile between the two reads.
  (void)ResidentFilePages();
  (void)RssFileKib();
  long kib = RssFileKib();
  size_t file = ResidentFilePages();
  CHECK(file > 0);
  // statm's "shared" is RssFile plus shared memory: at least RssFile, read a moment before.
  if (kib > 0) CHECK(file + 256 * 1024 >= static_cast<size_t>(kib) * 1024);
}

TEST_CASE("image pages are released after start-up, then only after growth and an interval") {
  using namespace std::chrono_literals;
  using Clock = PageReleasePolicy::Clock;
  const size_t mib = 1024 * 1024;
  Clock::time_point t0{};
  PageReleasePolicy policy(t0, 5s, 30s, mib);
  // Start-up: not before 5 s, then whatever the size.
  CHECK_FALSE(policy.Due(t0 + 4s, 100 * mib));
  CHECK(policy.Due(t0 + 5s, 0));
  policy.Released(t0 + 5s, 10 * mib);
  // Growth without the interval, the interval without growth: nothing.
  CHECK_FALSE(policy.Due(t0 + 20s, 20 * mib));
  CHECK_FALSE(policy.Due(t0 + 60s, 10 * mib + mib / 2));
  // Both: release, and the new baseline counts from after it.
  CHECK(policy.Due(t0 + 60s, 11 * mib));
  policy.Released(t0 + 60s, 9 * mib);
  CHECK_FALSE(policy.Due(t0 + 120s, 9 * mib + mib / 2));
  CHECK(policy.Due(t0 + 120s, 10 * mib));
}
