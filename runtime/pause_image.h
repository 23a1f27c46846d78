// The pause image as an OCI layout tarball, built from runtime/pause/pause.c by the build and
// linked into the executable, so a node never needs a registry for its sandboxes.
#pragma once

#include <string_view>

namespace orch::cri {

// The archive's bytes (index.json names it kPauseImage); static storage, never freed.
std::string_view PauseImageArchive();

}  // namespace orch::cri
