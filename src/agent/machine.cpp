// The real machine for the node agent (machine.h).
#include "machine.h"

#include <fmt/format.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <sstream>

#include "orch/files.h"

namespace orch::agent {
namespace {

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t start = s.find_first_not_of(" \t\n");
  return start == std::string::npos ? "" : s.substr(start);
}

std::string ReadTrimmed(const std::string& path) {
  auto text = ReadFileToString(path);
  return text.ok() ? Trimmed(*text) : "";
}

class SystemMachine : public Machine {
 public:
  MachineInfo Info() override {
    MachineInfo info;
    long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    info.cpu_cores = cpus > 0 ? cpus : 1;
    if (auto mem = Memory(); mem.ok()) info.memory_bytes = static_cast<int64_t>(mem->total_bytes);
    struct utsname u {};
    if (::uname(&u) == 0) {
      info.kernel_version = u.release;
      info.architecture = GoArch(u.machine);
    }
    auto os = ReadFileToString("/etc/os-release");
    if (!os.ok()) os = ReadFileToString("/usr/lib/os-release");
    info.os_image = ParseOsRelease(os.ok() ? *os : "");
    info.machine_id = ReadTrimmed("/etc/machine-id");
    if (info.machine_id.empty()) info.machine_id = ReadTrimmed("/var/lib/dbus/machine-id");
    info.system_uuid = ReadTrimmed("/sys/class/dmi/id/product_uuid");
    info.boot_id = ReadTrimmed("/proc/sys/kernel/random/boot_id");
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) == 0) info.hostname = host;
    return info;
  }

  Result<MemoryStats> Memory() override {
    auto text = ReadFileToString("/proc/meminfo");
    if (!text.ok()) return text.status();
    return ParseMeminfo(*text);
  }

  Result<FilesystemStats> Filesystem(const std::string& path) override {
    struct statvfs st {};
    if (::statvfs(path.c_str(), &st) != 0) {
      return Unavailable(fmt::format("statvfs {}: {}", path, strerror(errno)));
    }
    FilesystemStats fs;
    fs.capacity_bytes = static_cast<uint64_t>(st.f_blocks) * st.f_frsize;
    fs.available_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
    fs.inodes = st.f_files;
    fs.inodes_free = st.f_ffree;
    return fs;
  }

  Result<PidStats> Pids() override {
    auto loadavg = ReadFileToString("/proc/loadavg");
    if (!loadavg.ok()) return loadavg.status();
    auto running = ParseLoadavgThreads(*loadavg);
    if (!running.ok()) return running.status();
    PidStats pids;
    pids.running = *running;
    try {
      pids.max = std::stoull(ReadTrimmed("/proc/sys/kernel/pid_max"));
    } catch (const std::exception&) {
      pids.max = 32768;
    }
    return pids;
  }
};

}  // namespace

std::unique_ptr<Machine> NewSystemMachine() {
  return std::make_unique<SystemMachine>();
}

Result<MemoryStats> ParseMeminfo(std::string_view text) {
  MemoryStats m;
  bool total = false, available = false;
  std::istringstream lines{std::string(text)};
  std::string key;
  uint64_t value = 0;
  std::string unit;
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    if (!(words >> key >> value)) continue;
    uint64_t bytes = value * 1024;  // the kB of /proc/meminfo are KiB
    if (key == "MemTotal:") {
      m.total_bytes = bytes;
      total = true;
    } else if (key == "MemAvailable:") {
      m.available_bytes = bytes;
      available = true;
    }
  }
  if (!total || !available) return InvalidArgument("/proc/meminfo has no MemTotal/MemAvailable");
  return m;
}

std::string ParseOsRelease(std::string_view text) {
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("PRETTY_NAME=", 0) != 0) continue;
    std::string value = line.substr(12);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    return value;
  }
  return "Linux";
}

Result<uint64_t> ParseLoadavgThreads(std::string_view text) {
  std::istringstream words{std::string(text)};
  std::string a, b, c, tasks;
  if (!(words >> a >> b >> c >> tasks)) return InvalidArgument("malformed /proc/loadavg");
  auto slash = tasks.find('/');
  if (slash == std::string::npos) return InvalidArgument("malformed /proc/loadavg");
  try {
    return static_cast<uint64_t>(std::stoull(tasks.substr(slash + 1)));
  } catch (const std::exception&) {
    return InvalidArgument("malformed /proc/loadavg");
  }
}

std::string GoArch(std::string_view machine) {
  if (machine == "x86_64") return "amd64";
  if (machine == "aarch64" || machine == "arm64") return "arm64";
  if (machine.rfind("armv", 0) == 0) return "arm";
  if (machine == "i386" || machine == "i686") return "386";
  if (machine == "ppc64le") return "ppc64le";
  if (machine == "s390x") return "s390x";
  if (machine == "riscv64") return "riscv64";
  return std::string(machine);
}

}  // namespace orch::agent
