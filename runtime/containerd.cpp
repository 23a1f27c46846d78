// The node's own containerd (include/orch/runtime.h, NewContainerd): config files, the
// supervised child process, readiness through CRI Version, and image archive imports with ctr.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>

#include "containerd_config.h"
#include "orch/files.h"
#include "orch/log.h"
#include "orch/runtime.h"
#include "pause_image.h"
#include "process.h"

namespace orch::cri {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kLog = "containerd";
// Importing an archive unpacks every layer: generous for big images on slow disks.
constexpr std::chrono::minutes kImportTimeout(10);
// sun_path holds 108 bytes; containerd also listens on "<socket>.ttrpc".
constexpr size_t kMaxSocketPath = 100;

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool IsGzip(const std::string& path) {
  return EndsWith(path, ".tar.gz") || EndsWith(path, ".tgz");
}

class ManagedContainerd final : public Containerd {
 public:
  explicit ManagedContainerd(ContainerdOptions options)
      : options_(std::move(options)),
        layout_(LayoutFor(options_)),
        supervisor_(SupervisorOptions(options_, layout_)) {}

  ~ManagedContainerd() override { supervisor_.Stop(options_.stop_grace); }

  std::string_view Name() const override { return "containerd"; }

  std::string endpoint() const override { return "unix://" + layout_.socket; }

  int starts() const override { return supervisor_.starts(); }

  int pid() const override { return supervisor_.pid(); }

  Status Start() override {
    if (Status s = WriteFiles(); !s.ok()) return s;
    Status s = supervisor_.Start();
    if (s.ok()) s = WaitReady();
    if (s.ok()) s = Import(layout_.pause_archive);
    if (!s.ok()) {
      supervisor_.Stop(options_.stop_grace);
      return s;
    }
    ImportImageDirectory();
    return Status::Ok();
  }

  void Stop() override {
    bool running = supervisor_.pid() > 0;
    supervisor_.Stop(options_.stop_grace);
    if (running) log::Info(kLog, "stopped");
  }

 private:
  // config.toml, the registry hosts files and the pause archive, rewritten at every start so
  // they always match this orch and the current registries.yaml.
  Status WriteFiles() {
    if (layout_.socket.size() > kMaxSocketPath) {
      return InvalidArgument(fmt::format(
          "containerd socket path {} is too long for a unix socket: use a shorter --data-dir",
          layout_.socket));
    }
    Registries registries;
    auto text = ReadFileToString(layout_.registries_file);
    if (text.ok()) {
      auto parsed = ParseRegistriesYaml(*text);
      if (!parsed.ok()) {
        return InvalidArgument(
            fmt::format("{}: {}", layout_.registries_file, parsed.status().message()));
      }
      registries = std::move(*parsed);
      log::Info(kLog, "registries from {}: {} mirror(s), {} config(s)", layout_.registries_file,
                registries.mirrors.size(), registries.configs.size());
    } else if (text.status().code() != StatusCode::kNotFound) {
      return text.status();
    }
    for (const auto& [dir, mode] : {std::pair{layout_.dir, 0711},
                                    {layout_.root, 0711},
                                    {layout_.state, 0711},
                                    {layout_.cni_conf_dir, 0755},
                                    {layout_.images_dir, 0755}}) {
      if (Status s = MakeDirectories(dir, static_cast<mode_t>(mode)); !s.ok()) return s;
    }
    // Credentials may be in it: owner only.
    Status s = WriteFileAtomic(layout_.config_file,
                               ContainerdConfigToml(options_, layout_, registries), 0600);
    if (!s.ok()) return s;
    std::error_code ec;
    fs::remove_all(layout_.hosts_dir, ec);
    if (ec) return Unavailable(fmt::format("cannot clear {}: {}", layout_.hosts_dir, ec.message()));
    if (s = MakeDirectories(layout_.hosts_dir, 0700); !s.ok()) return s;
    for (const auto& [host, content] : RegistryHostsFiles(registries)) {
      std::string dir = layout_.hosts_dir + "/" + host;
      if (s = MakeDirectories(dir, 0700); !s.ok()) return s;
      if (s = WriteFileAtomic(dir + "/hosts.toml", content, 0600); !s.ok()) return s;
    }
    std::string_view pause = PauseImageArchive();
    return WriteFileAtomic(layout_.pause_archive, std::string(pause), 0644);
  }

  // Version waits (up to 2 s per try) for the socket to answer; between tries the child is checked
  // so a containerd that dies at start fails Start at once rather than after start_timeout.
  Status WaitReady() {
    CriClientOptions o;
    o.endpoint = endpoint();
    o.probe_timeout = std::chrono::seconds(2);
    auto client = NewCriClient(o);
    if (!client.ok()) return client.status();
    auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
    Status last;
    while (std::chrono::steady_clock::now() < deadline) {
      if (supervisor_.starts() > 1 || supervisor_.pid() < 0) {
        return Unavailable(
            fmt::format("containerd exited while starting; see {}", layout_.log_file));
      }
      auto version = (*client)->GetVersion();
      if (version.ok()) {
        log::Info(kLog, "ready: {} {} (pid {}, socket {})", version->runtime_name,
                  version->runtime_version, supervisor_.pid(), layout_.socket);
        return Status::Ok();
      }
      last = version.status();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return Unavailable(fmt::format("containerd did not answer within {} ms ({}); see {}",
                                   options_.start_timeout.count(), last.message(),
                                   layout_.log_file));
  }

  // `ctr images import` into the k8s.io namespace; gzip archives are decompressed on the way
  // (ctr reads only plain tar). OCI layouts and docker-archives both work.
  Status Import(const std::string& path) {
    std::vector<std::string> argv = {
        options_.ctr_binary,  "--address", layout_.socket, "--namespace",
        kContainerdNamespace, "images",    "import",       IsGzip(path) ? "-" : path};
    Result<CommandResult> result = CommandResult{};
    pid_t gunzip = -1;
    if (IsGzip(path)) {
      int file = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (file < 0) return Unavailable(fmt::format("open {}: {}", path, strerror(errno)));
      int pipe_fds[2];
      if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        ::close(file);
        return Unavailable(fmt::format("pipe: {}", strerror(errno)));
      }
      SpawnOptions spawn;
      spawn.stdin_fd = file;
      spawn.stdout_fd = pipe_fds[1];
      auto pid = Spawn({"/bin/gzip", "-dc"}, spawn);
      ::close(file);
      ::close(pipe_fds[1]);
      if (!pid.ok()) {
        ::close(pipe_fds[0]);
        return pid.status();
      }
      gunzip = *pid;
      result = RunCommand(argv, kImportTimeout, pipe_fds[0]);
      ::close(pipe_fds[0]);
      int wait_status = 0;
      while (::waitpid(gunzip, &wait_status, 0) < 0 && errno == EINTR) {
      }
      if (result.ok() && !(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0)) {
        return InvalidArgument(fmt::format("import {}: not a gzip file", path));
      }
    } else {
      result = RunCommand(argv, kImportTimeout);
    }
    if (!result.ok()) return result.status();
    std::string output = result->output;
    while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
    if (result->exit_code != 0) {
      return InvalidArgument(fmt::format("import {}: {}", path, output));
    }
    log::Info(kLog, "imported {}: {}", path, output);
    return Status::Ok();
  }

  // Air-gapped nodes: every archive in <data-dir>/agent/images, in name order. A bad archive is
  // logged and skipped so one broken file does not keep the node down.
  void ImportImageDirectory() {
    std::vector<std::string> archives;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(layout_.images_dir, ec)) {
      std::string path = entry.path().string();
      if (!entry.is_regular_file(ec)) continue;
      if (EndsWith(path, ".tar") || IsGzip(path)) archives.push_back(path);
    }
    std::sort(archives.begin(), archives.end());
    for (const auto& path : archives) {
      if (Status s = Import(path); !s.ok())
        log::Warn(kLog, "skipping image archive: {}", s.message());
    }
  }

  static ProcessSupervisor::Options SupervisorOptions(const ContainerdOptions& options,
                                                      const ContainerdLayout& layout) {
    ProcessSupervisor::Options p;
    p.name = "containerd";
    p.argv = {options.containerd_binary, "--config", layout.config_file};
    p.log_file = layout.log_file;
    p.backoff_min = options.restart_backoff_min;
    p.backoff_max = options.restart_backoff_max;
    return p;
  }

  const ContainerdOptions options_;
  const ContainerdLayout layout_;
  ProcessSupervisor supervisor_;  // thread-safe: the accessors read it from any thread
};

}  // namespace

std::unique_ptr<Containerd> NewContainerd(const ContainerdOptions& options) {
  return std::make_unique<ManagedContainerd>(options);
}

}  // namespace orch::cri
