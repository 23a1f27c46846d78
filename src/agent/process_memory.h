// Memory settings of a process whose main job is the node agent (`orch agent`): fewer malloc
// arenas, free heap given back to the kernel, and start-up pages of code dropped from its mappings.
#pragma once

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

}  // namespace orch::agent
