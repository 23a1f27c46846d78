// What the node agent reads of the machine: identity (kernel, OS, machine and boot IDs),
// capacity (CPUs, memory, the data dir's filesystem) and the signals of resource pressure
// (available memory, disk and inodes, process IDs). Behind an interface for tests; the parsers
// of the /proc and /etc files are pure and tested on their own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "orch/status.h"

namespace orch::agent {

struct MachineInfo {
  int64_t cpu_cores = 0;
  int64_t memory_bytes = 0;  // MemTotal
  std::string kernel_version;
  std::string os_image;      // PRETTY_NAME of /etc/os-release
  std::string architecture;  // GOARCH naming: amd64, arm64, ...
  std::string machine_id;
  std::string system_uuid;
  std::string boot_id;
  std::string hostname;
};

struct MemoryStats {
  uint64_t total_bytes = 0;
  uint64_t available_bytes = 0;
};

struct FilesystemStats {
  uint64_t capacity_bytes = 0;
  uint64_t available_bytes = 0;
  uint64_t inodes = 0;
  uint64_t inodes_free = 0;
};

struct PidStats {
  uint64_t max = 0;      // kernel.pid_max
  uint64_t running = 0;  // threads (scheduling entities) that hold a PID
};

// Thread-safe.
class Machine {
 public:
  virtual ~Machine() = default;
  virtual MachineInfo Info() = 0;
  virtual Result<MemoryStats> Memory() = 0;
  virtual Result<FilesystemStats> Filesystem(const std::string& path) = 0;
  virtual Result<PidStats> Pids() = 0;
};

std::unique_ptr<Machine> NewSystemMachine();

// /proc/meminfo -> MemTotal and MemAvailable (kB lines).
Result<MemoryStats> ParseMeminfo(std::string_view text);
// The PRETTY_NAME of an os-release file ("Debian GNU/Linux 12 (bookworm)"), "Linux" without one.
std::string ParseOsRelease(std::string_view text);
// The thread count of /proc/loadavg ("0.1 0.2 0.3 2/345 6789" -> 345).
Result<uint64_t> ParseLoadavgThreads(std::string_view text);
// uname's machine (x86_64, aarch64, ...) in Kubernetes' naming (amd64, arm64, ...).
std::string GoArch(std::string_view machine);

}  // namespace orch::agent
