// Small, careful file helpers: whole-file reads, atomic durable writes with a mode, mkdir -p.
#pragma once

#include <sys/types.h>

#include <string>

#include "orch/status.h"

namespace orch {

// The whole file; kNotFound when it does not exist, kUnavailable on other errors.
Result<std::string> ReadFileToString(const std::string& path);

// Writes `content` to `path` through a temporary file, fsync and rename, so readers see the old
// or the new file, never a part; the file gets `mode` (and the folder is fsynced too).
Status WriteFileAtomic(const std::string& path, const std::string& content, mode_t mode);

// mkdir -p; folders it creates get `mode`.
Status MakeDirectories(const std::string& path, mode_t mode);

}  // namespace orch
