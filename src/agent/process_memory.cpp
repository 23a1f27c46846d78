// The agent process's memory settings (process_memory.h): glibc's mallopt/malloc_trim and a
// walk over the loaded objects' program headers.
#include "process_memory.h"

#include <elf.h>
#include <link.h>
#include <malloc.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>

#include "orch/agent.h"

namespace orch {

void TuneAgentProcessMemory() {
  // Two, not one: the pod workers, informers and HTTP threads allocate at once.
  agent::LimitMallocArenas(2);
}

namespace agent {
namespace {

// Whether the object's text is written by the dynamic linker (text relocations): then its
// read-only segments may hold private copies, which MADV_DONTNEED would throw away.
bool HasTextRelocations(const dl_phdr_info* info) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_DYNAMIC) continue;
    const auto* dyn = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + ph.p_vaddr);
    for (; dyn->d_tag != DT_NULL; ++dyn) {
      if (dyn->d_tag == DT_TEXTREL) return true;
      if (dyn->d_tag == DT_FLAGS && (dyn->d_un.d_val & DF_TEXTREL) != 0) return true;
    }
  }
  return false;
}

struct ReleaseState {
  uintptr_t page = 4096;
  uintptr_t vdso = 0;
  size_t advised = 0;
};

int ReleaseObject(dl_phdr_info* info, size_t, void* data) {
  auto& state = *static_cast<ReleaseState*>(data);
  if (info->dlpi_phnum == 0 || HasTextRelocations(info)) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) != 0 || ph.p_memsz == 0) continue;
    uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    uintptr_t end = start + ph.p_memsz;
    // The vDSO is the kernel's page, not a file mapping.
    if (state.vdso != 0 && state.vdso >= start && state.vdso < end) return 0;
    // Whole pages of this segment only: a page shared with a neighbouring writable segment
    // could hold written data.
    start = (start + state.page - 1) & ~(state.page - 1);
    end &= ~(state.page - 1);
    if (end <= start) continue;
    if (::madvise(reinterpret_cast<void*>(start), end - start, MADV_DONTNEED) == 0) {
      state.advised += end - start;
    }
  }
  return 0;
}

}  // namespace

void LimitMallocArenas(int max) {
  ::mallopt(M_ARENA_MAX, max);
}

size_t TrimFreeHeap(size_t min_free_bytes) {
  struct mallinfo2 info = ::mallinfo2();
  if (info.fordblks < min_free_bytes) return info.fordblks;
  ::malloc_trim(0);
  return info.fordblks;
}

size_t ReleaseReadOnlyImagePages() {
  ReleaseState state;
  state.page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  state.vdso = static_cast<uintptr_t>(::getauxval(AT_SYSINFO_EHDR));
  // The loader's lock is held during the walk: no object is unloaded under us.
  ::dl_iterate_phdr(ReleaseObject, &state);
  return state.advised;
}

size_t ResidentFilePages() {
  // "size resident shared text lib data dt", in pages; "shared" is RssFile + RssShmem.
  std::FILE* f = std::fopen("/proc/self/statm", "re");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0, shared = 0;
  int n = std::fscanf(f, "%lu %lu %lu", &size, &resident, &shared);
  std::fclose(f);
  if (n != 3) return 0;
  return static_cast<size_t>(shared) * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

bool PageReleasePolicy::Due(Clock::time_point now, size_t file_bytes) const {
  if (!released_) return now >= first_at_;
  return now - last_ >= min_interval_ && file_bytes >= baseline_ + min_growth_;
}

void PageReleasePolicy::Released(Clock::time_point now, size_t file_bytes) {
  released_ = true;
  last_ = now;
  baseline_ = file_bytes;
}

}  // namespace agent
}  // namespace orch
