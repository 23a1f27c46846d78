// Links the pause image archive made by runtime/CMakeLists.txt (path in ORCH_PAUSE_ARCHIVE) into
// read-only data with the assembler's .incbin: no generated source, no copy at start.
#include "pause_image.h"

#ifndef ORCH_PAUSE_ARCHIVE
#error "ORCH_PAUSE_ARCHIVE must name the pause image tarball"
#endif

__asm__(
    ".pushsection .rodata\n"
    ".balign 16\n"
    "orch_pause_archive_start:\n"
    ".incbin \"" ORCH_PAUSE_ARCHIVE
    "\"\n"
    "orch_pause_archive_end:\n"
    ".popsection\n");

extern "C" const char orch_pause_archive_start[];
extern "C" const char orch_pause_archive_end[];

namespace orch::cri {

std::string_view PauseImageArchive() {
  return {orch_pause_archive_start,
          static_cast<size_t>(orch_pause_archive_end - orch_pause_archive_start)};
}

}  // namespace orch::cri
