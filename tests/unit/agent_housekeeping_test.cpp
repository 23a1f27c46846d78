// The agent's housekeeping: --kubelet-arg parsing, container log rotation (rename, reopen,
// removal of the oldest rotated files) and image garbage collection (thresholds, LRU order,
// images in use, the pause image and young images kept).
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "fake_runtime.h"
#include "image_gc.h"
#include "kubelet_args.h"
#include "log_rotation.h"

using namespace orch;
using namespace orch::agent;
using namespace std::chrono_literals;

namespace {

// The fake runtime with a listed image set and a reopen that makes a new file, as containerd's.
class Runtime : public orch::testing::FakeRuntime {
 public:
  Status ReopenContainerLog(const std::string& id) override {
    reopened.push_back(id);
    if (fail_reopen) return Internal("container is not running");
    auto status = GetContainerStatus(id);
    std::ofstream(status->log_path).flush();
    return Status::Ok();
  }
  Result<std::vector<cri::Image>> ListImages() override { return images; }
  Status RemoveImage(const std::string& id) override {
    removed.push_back(id);
    std::erase_if(images, [&](const cri::Image& i) { return i.id == id; });
    return Status::Ok();
  }
  Result<std::vector<cri::FilesystemUsage>> ImageFsInfo() override {
    return std::vector<cri::FilesystemUsage>{{"/images", 1, 0, 0}};
  }

  // A running container of `image` whose log is `dir`/c/0.log.
  std::string Run(const std::string& dir, const std::string& image, const std::string& name) {
    cri::PodSandboxConfig sandbox;
    sandbox.name = name;
    sandbox.uid = "uid-" + name;
    sandbox.log_directory = dir;
    std::string sb = *RunPodSandbox(sandbox);
    cri::ContainerConfig c;
    c.name = name;
    c.image = image;
    c.log_path = name + "/0.log";
    std::string id = *CreateContainer(sb, c, sandbox);
    REQUIRE(StartContainer(id).ok());
    return id;
  }

  std::vector<cri::Image> images;
  std::vector<std::string> removed;
  std::vector<std::string> reopened;
  bool fail_reopen = false;
};

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/orch-housekeeping-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

void WriteBytes(const std::string& path, size_t n) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::app) << std::string(n, 'x');
}

cri::Image MakeImage(const std::string& id, const std::string& tag, uint64_t size) {
  cri::Image i;
  i.id = id;
  i.repo_tags = {tag};
  i.size = size;
  return i;
}

}  // namespace

TEST_CASE("kubelet args: defaults, known keys and bad values") {
  auto defaults = ParseKubeletArgs({});
  REQUIRE(defaults.ok());
  CHECK(defaults->container_log_max_size == 10 * 1024 * 1024);
  CHECK(defaults->container_log_max_files == 5);
  CHECK(defaults->image_gc_high_threshold == 85);
  CHECK(defaults->image_gc_low_threshold == 80);
  CHECK(defaults->image_minimum_gc_age == 120s);

  std::vector<std::string> ignored;
  auto s = ParseKubeletArgs({"container-log-max-size=1Mi", "--container-log-max-files=3",
                             "image-gc-high-threshold=90", "image-gc-low-threshold=50",
                             "image-minimum-gc-age=1m30s", "max-pods=50", "image-gc-period=20s"},
                            &ignored);
  REQUIRE(s.ok());
  CHECK(s->container_log_max_size == 1024 * 1024);
  CHECK(s->container_log_max_files == 3);
  CHECK(s->image_gc_high_threshold == 90);
  CHECK(s->image_gc_low_threshold == 50);
  CHECK(s->image_minimum_gc_age == 90s);
  CHECK(s->image_gc_period == 20s);
  CHECK(ignored == std::vector<std::string>{"max-pods=50"});

  CHECK(ParseKubeletArgs({"container-log-max-files=1"}).status().message() ==
        "--kubelet-arg container-log-max-files=1: must be an integer from 2 to 1000");
  CHECK_FALSE(ParseKubeletArgs({"container-log-max-size=ten"}).ok());
  CHECK_FALSE(ParseKubeletArgs({"image-gc-high-threshold=101"}).ok());
  CHECK_FALSE(ParseKubeletArgs({"image-minimum-gc-age=2 weeks"}).ok());
  CHECK_FALSE(ParseKubeletArgs({"container-log-max-size"}).ok());
  CHECK(ParseKubeletArgs({"image-gc-high-threshold=70", "image-gc-low-threshold=75"})
            .status()
            .message() ==
        "--kubelet-arg image-gc-low-threshold (75) must not exceed image-gc-high-threshold (70)");
}

TEST_CASE("log rotation: a log past the size is renamed and reopened, the oldest removed") {
  TempDir dir;
  Runtime runtime;
  std::string big = runtime.Run(dir.path, "img", "big");
  std::string small = runtime.Run(dir.path, "img", "small");
  std::string big_log = dir.path + "/big/0.log";
  WriteBytes(big_log, 2000);
  WriteBytes(dir.path + "/small/0.log", 10);

  auto clock = std::chrono::system_clock::from_time_t(1714557600);  // 2024-05-01 10:00:00 UTC
  ContainerLogRotator rotator(runtime, {1000, 3}, [&] { return clock; });
  CHECK(rotator.RotateOnce() == 1);
  CHECK(runtime.reopened == std::vector<std::string>{big});
  CHECK(RotatedLogFiles(big_log) == std::vector<std::string>{big_log + ".20240501-100000"});
  struct stat st {};
  REQUIRE(stat(big_log.c_str(), &st) == 0);
  CHECK(st.st_size == 0);  // the reopened file
  CHECK(RotatedLogFiles(dir.path + "/small/0.log").empty());

  // Under the limit: nothing happens.
  CHECK(rotator.RotateOnce() == 0);

  // max_files 3 keeps the live file and two rotated ones.
  for (int i = 1; i <= 3; ++i) {
    clock += 1min;
    WriteBytes(big_log, 1500);
    CHECK(rotator.RotateOnce() == 1);
  }
  CHECK(RotatedLogFiles(big_log) ==
        std::vector<std::string>{big_log + ".20240501-100200", big_log + ".20240501-100300"});
  (void)small;
}

TEST_CASE("log rotation: a failed reopen gives the file its name back") {
  TempDir dir;
  Runtime runtime;
  runtime.Run(dir.path, "img", "c");
  std::string log = dir.path + "/c/0.log";
  WriteBytes(log, 5000);
  runtime.fail_reopen = true;
  ContainerLogRotator rotator(runtime, {1000, 5});
  CHECK(rotator.RotateOnce() == 0);
  CHECK(RotatedLogFiles(log).empty());
  struct stat st {};
  REQUIRE(stat(log.c_str(), &st) == 0);
  CHECK(st.st_size == 5000);
}

TEST_CASE("image gc: nothing below the high threshold") {
  Runtime runtime;
  runtime.images = {MakeImage("sha256:a", "a:1", 100)};
  auto now = ImageGarbageCollector::Clock::now();
  ImageGarbageCollector gc(
      runtime, {85, 80, 0s, cri::kPauseImage},
      [](const std::string&) {
        return Result<DiskSpace>(DiskSpace{1000, 200});
      },
      [&] { return now; });
  auto r = gc.CollectOnce();
  REQUIRE(r.ok());
  CHECK(r->usage_percent == 80);
  CHECK(r->removed.empty());
}

TEST_CASE("image gc: least recently used first, never in use, pause, pinned or young") {
  TempDir dir;
  Runtime runtime;
  runtime.images = {
      MakeImage("sha256:old", "old:1", 40),        MakeImage("sha256:recent", "recent:1", 40),
      MakeImage("sha256:used", "used:1", 500),     MakeImage("sha256:pause", cri::kPauseImage, 500),
      MakeImage("sha256:pinned", "pinned:1", 500), MakeImage("sha256:young", "young:1", 500)};
  runtime.images[4].pinned = true;
  runtime.images.pop_back();  // "young" appears later
  uint64_t available = 500;   // of 1000: 50 % used
  auto now = ImageGarbageCollector::Clock::now();
  ImageGarbageCollector gc(
      runtime, {85, 80, 60s, cri::kPauseImage},
      [&](const std::string& path) {
        CHECK(path == "/images");
        return Result<DiskSpace>(DiskSpace{1000, available});
      },
      [&] { return now; });
  REQUIRE(gc.CollectOnce().ok());  // first seen now

  // "recent" gets used by a container that then goes away: it was used later than "old".
  now += 2min;
  std::string c = runtime.Run(dir.path, "recent:1", "r");
  REQUIRE(gc.CollectOnce().ok());
  REQUIRE(runtime.RemoveContainer(c).ok());
  runtime.Run(dir.path, "sha256:used", "u");
  runtime.images.push_back(MakeImage("sha256:young", "young:1", 500));

  now += 2min;
  available = 100;  // 90 % used: free 100 bytes to be at 80 %
  auto r = gc.CollectOnce();
  REQUIRE(r.ok());
  CHECK(r->usage_percent == 90);
  CHECK(r->wanted == 100);
  CHECK(r->removed == std::vector<std::string>{"sha256:old", "sha256:recent"});
  CHECK(r->freed == 80);
  CHECK(r->shortfall ==
        "Failed to garbage collect required amount of images. Attempted to free 100 bytes, but "
        "only found 80 bytes eligible to free.");

  // Once old enough, the young image goes too; used, pause and pinned stay.
  now += 2min;
  r = gc.CollectOnce();
  REQUIRE(r.ok());
  CHECK(r->removed == std::vector<std::string>{"sha256:young"});
  CHECK(r->shortfall.empty());
  std::vector<std::string> left;
  for (const auto& i : runtime.images) left.push_back(i.id);
  CHECK(left == std::vector<std::string>{"sha256:used", "sha256:pause", "sha256:pinned"});
}

TEST_CASE("image gc: a high threshold of 100 turns it off") {
  Runtime runtime;
  runtime.images = {MakeImage("sha256:a", "a:1", 100)};
  ImageGarbageCollector gc(runtime, {100, 80, 0s, cri::kPauseImage}, [](const std::string&) {
    return Result<DiskSpace>(DiskSpace{100, 0});
  });
  auto r = gc.CollectOnce();
  REQUIRE(r.ok());
  CHECK(runtime.removed.empty());
}
