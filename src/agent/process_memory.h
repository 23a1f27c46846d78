// Memory settings of a process whose main job is the node agent (`orch agent`): fewer malloc
// arenas, free heap given back to the kernel, and start-up pages of code dropped from its mappings.
#pragma once

#include <chrono>
#include <cstddef>

namespace orch::agent {

// At most `max` malloc arenas for the whole process (glibc makes up to 8 per core, one per thread
// that allocates while another holds an arena, and each keeps its own free memory). Call before
// the process starts threads: threads that already have an arena keep it. Not thread-safe.
void LimitMallocArenas(int max);

// Gives free heap memory back to the kernel (malloc_trim) when the arenas hold at least
// `min_free_bytes` free; returns the bytes that were free. Thread-safe.
size_t TrimFreeHeap(size_t min_free_bytes);

// Unmaps, from this process only, the pages of read-only code and data of the executable and its
// shared libraries (their non-writable PT_LOAD segments, never private copies). The pages stay
// in the page cache; what the process still runs faults back in (a minor fault). Start-up touches
// much code that a running agent never uses again (dynamic linking, join, TLS set-up, the parts
// of the binary that belong to the server), and the kernel maps file pages 64 KiB around every
// fault, so RSS would otherwise keep all of it. Returns the bytes advised. Thread-safe.
size_t ReleaseReadOnlyImagePages();

// The process's resident file-backed pages (and shared memory), in bytes, from /proc/self/statm;
// 0 when it cannot be read.
size_t ResidentFilePages();

// When ReleaseReadOnlyImagePages runs: once when start-up is over, and again whenever the
// resident file pages have grown by `min_growth` since the last release and `min_interval` has
// passed. Code that runs once in a while (a burst of pod starts, an agent restart's adoption,
// an error path) touches pages that then stay mapped, 64 KiB around each fault; the code the
// agent runs all the time faults back in within moments and grows far less than `min_growth`,
// so at rest it is not released over and over. Not thread-safe (the housekeeping thread's).
class PageReleasePolicy {
 public:
  using Clock = std::chrono::steady_clock;
  PageReleasePolicy(Clock::time_point start, Clock::duration first_after,
                    Clock::duration min_interval, size_t min_growth)
      : first_at_(start + first_after), min_interval_(min_interval), min_growth_(min_growth) {}

  // Whether to release now, with `file_bytes` resident file pages.
  bool Due(Clock::time_point now, size_t file_bytes) const;
  // A release happened at `now`; `file_bytes` resident right after it.
  void Released(Clock::time_point now, size_t file_bytes);

 private:
  Clock::time_point first_at_;
  Clock::duration min_interval_;
  size_t min_growth_;
  bool released_ = false;
  Clock::time_point last_;
  size_t baseline_ = 0;
};

}  // namespace orch::agent
