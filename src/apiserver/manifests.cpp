// Auto-deploy of manifest files (manifests.h): inotify for changes, server-side apply through the
// in-process client, back-off for documents that cannot be applied yet.
#include "manifests.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "object.h"
#include "orch/files.h"
#include "orch/log.h"
#include "orch/pki.h"

namespace orch::api {
namespace {

namespace fs = std::filesystem;

bool IsManifest(const std::string& name) {
  auto ends = [&](const char* suffix) {
    std::string s(suffix);
    return name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return name[0] != '.' && (ends(".yaml") || ends(".yml") || ends(".json"));
}

// Splits a multi-document YAML stream on its "---" separator lines.
std::vector<std::string> SplitDocuments(const std::string& content) {
  std::vector<std::string> docs;
  std::string current;
  size_t start = 0;
  while (start <= content.size()) {
    size_t end = content.find('\n', start);
    if (end == std::string::npos) end = content.size();
    std::string_view line(content.data() + start, end - start);
    if (line == "---" || line.rfind("--- ", 0) == 0 || line == "---\r") {
      docs.push_back(std::move(current));
      current.clear();
    } else {
      current.append(line);
      current += '\n';
    }
    start = end + 1;
  }
  docs.push_back(std::move(current));
  return docs;
}

// Blank documents and comment-only documents are allowed, as in kubectl.
bool IsBlank(const std::string& doc) {
  size_t i = 0;
  while (i < doc.size()) {
    size_t end = doc.find('\n', i);
    if (end == std::string::npos) end = doc.size();
    auto first = doc.find_first_not_of(" \t\r", i);
    if (first != std::string::npos && first < end && doc[first] != '#') return false;
    i = end + 1;
  }
  return true;
}

constexpr auto kMaxRetryDelay = std::chrono::seconds(30);

}  // namespace

ManifestDeployer::ManifestDeployer(std::string dir, ApiClient& client,
                                   const ResourceRegistry& registry)
    : dir_(std::move(dir)), client_(client), registry_(registry) {}

ManifestDeployer::~ManifestDeployer() {
  Stop();
}

void ManifestDeployer::Start() {
  if (Status s = MakeDirectories(dir_, 0700); !s.ok()) {
    log::Warn("manifests", "cannot create {}: {}", dir_, s.message());
  }
  inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ >= 0 &&
      inotify_add_watch(inotify_fd_, dir_.c_str(),
                        IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE) < 0) {
    log::Warn("manifests", "cannot watch {}: {}; changes apply at the next start", dir_,
              std::strerror(errno));
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  thread_ = std::thread([this] { Run(); });
}

void ManifestDeployer::Stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof one) < 0) {
    // The thread also checks stopping_ at every wake-up; nothing else to do.
  }
  thread_.join();
  if (inotify_fd_ >= 0) close(inotify_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  inotify_fd_ = wake_fd_ = -1;
}

void ManifestDeployer::Run() {
  auto delay = std::chrono::milliseconds(500);
  while (!stopping_) {
    bool retry = Sync();
    delay = retry ? std::min<std::chrono::milliseconds>(delay * 2, kMaxRetryDelay)
                  : std::chrono::milliseconds(500);
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
    int n = poll(fds, inotify_fd_ >= 0 ? 2 : 1, retry ? static_cast<int>(delay.count()) : -1);
    if (stopping_) return;
    if (n > 0 && (fds[1].revents & POLLIN)) {
      // Drain the events; the next Sync compares contents, so which file changed is moot. A
      // short pause lets an editor finish writing a file in several steps.
      char buf[4096];
      while (read(inotify_fd_, buf, sizeof buf) > 0) {
      }
      poll(fds, 1, 200);
      while (read(inotify_fd_, buf, sizeof buf) > 0) {
      }
    }
  }
}

bool ManifestDeployer::Sync() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    if (entry.is_regular_file(ec)) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  bool retry = false;
  for (const std::string& name : names) {
    if (stopping_) break;
    if (!IsManifest(name)) continue;
    const std::string path = dir_ + "/" + name;
    if (fs::exists(path + ".skip", ec)) continue;
    auto content = ReadFileToString(path);
    if (!content.ok()) continue;  // removed meanwhile
    FileState& state = files_[name];
    std::string digest = pki::Sha256Hex(*content);
    if (state.digest == digest && state.done) continue;
    if (state.digest != digest) {
      state = FileState{digest, false, 0};
    }
    Status s = ApplyFile(path, *content);
    state.attempts++;
    if (s.ok()) {
      state.done = true;
      log::Info("manifests", "applied {}", path);
    } else if (s.code() == StatusCode::kInvalidArgument) {
      // Retrying a malformed or invalid manifest cannot help: wait for the file to change.
      state.done = true;
      log::Warn("manifests", "{}: {} (applied again when the file changes)", path, s.message());
    } else {
      retry = true;
      // The first failure is worth a warning; retries stay quiet until they succeed.
      if (state.attempts == 1) log::Warn("manifests", "{}: {} (will retry)", path, s.message());
    }
  }
  return retry;
}

Status ManifestDeployer::ApplyFile(const std::string& path, const std::string& content) {
  const bool is_json = path.size() > 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  std::vector<std::string> docs =
      is_json ? std::vector<std::string>{content} : SplitDocuments(content);
  Status first_error;
  for (const std::string& text : docs) {
    if (IsBlank(text)) continue;
    auto doc = ParseBody(text, is_json ? "application/json" : "application/yaml");
    if (!doc.ok()) return InvalidArgument(doc.error().message);
    if (doc->is_null()) continue;
    // A List's items are applied one by one, as kubectl does.
    std::vector<const json*> objects;
    if (doc->value("kind", "") == "List" && doc->contains("items")) {
      for (const json& item : (*doc)["items"]) objects.push_back(&item);
    } else {
      objects.push_back(&*doc);
    }
    for (const json* obj : objects) {
      Status s = ApplyDocument(*obj);
      // Keep going: later documents may not depend on the failing one. An error worth
      // retrying wins over one that is not, so the file is retried.
      bool retriable = s.code() != StatusCode::kInvalidArgument;
      if (!s.ok() &&
          (first_error.ok() || (retriable && first_error.code() == StatusCode::kInvalidArgument))) {
        first_error = s;
      }
    }
  }
  return first_error;
}

Status ManifestDeployer::ApplyDocument(const json& doc) {
  if (!doc.is_object()) return InvalidArgument("a document is not an object");
  const std::string api_version = doc.value("apiVersion", "");
  const std::string kind = doc.value("kind", "");
  std::string name = Name(doc);
  if (api_version.empty() || kind.empty() || name.empty()) {
    return InvalidArgument("every object needs apiVersion, kind and metadata.name");
  }
  auto slash = api_version.find('/');
  std::string group = slash == std::string::npos ? "" : api_version.substr(0, slash);
  std::string version = slash == std::string::npos ? api_version : api_version.substr(slash + 1);
  auto resources = registry_.Current();
  const ResourceType* type = resources->FindKind(group, version, kind);
  if (type == nullptr) {
    return NotFound(
        fmt::format("no kind \"{}\" is registered for version \"{}\"", kind, api_version));
  }
  ResourceRef ref{type->group, type->version, type->plural, type->namespaced};
  std::string ns = type->namespaced ? Namespace(doc) : "";
  if (type->namespaced && ns.empty()) ns = "default";
  WriteOptions options;
  options.field_manager = "orch-manifests";
  options.force = true;
  auto applied = client_.Patch(ref, ns, name, PatchType::kApply, doc.dump(), "", options);
  if (!applied.ok()) {
    return Status(applied.status().code(), fmt::format("{} {}: {}", type->QualifiedPlural(), name,
                                                       applied.status().message()));
  }
  return Status::Ok();
}

}  // namespace orch::api
