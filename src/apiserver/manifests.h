// k3s's auto-deploy: every manifest file in <data-dir>/server/manifests is applied at start and
// again whenever it changes, like `kubectl apply --server-side --force-conflicts`.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "orch/api_client.h"
#include "resources.h"

namespace orch::api {

// Files ending in .yaml, .yml or .json are applied in name order; documents of one file in
// order. `foo.yaml` is skipped while `foo.yaml.skip` exists. Deleting a file leaves what it
// created in place (as in k3s). Documents that fail (e.g. a custom resource whose CRD is not
// established yet) are retried with back-off; errors are logged once per file version.
class ManifestDeployer {
 public:
  // `client` and `registry` must outlive the deployer.
  ManifestDeployer(std::string dir, ApiClient& client, const ResourceRegistry& registry);
  ~ManifestDeployer();
  ManifestDeployer(const ManifestDeployer&) = delete;
  ManifestDeployer& operator=(const ManifestDeployer&) = delete;

  // Creates the folder if missing, applies what is there, then follows changes (inotify) on a
  // thread of its own.
  void Start();
  void Stop();

 private:
  struct FileState {
    std::string digest;  // of the content last applied successfully (or being retried)
    bool done = false;   // every document applied
    int attempts = 0;
  };

  void Run();
  // Applies changed files; returns true when some file still needs a retry.
  bool Sync();
  Status ApplyFile(const std::string& path, const std::string& content);
  Status ApplyDocument(const json& doc);

  const std::string dir_;
  ApiClient& client_;
  const ResourceRegistry& registry_;
  std::map<std::string, FileState> files_;  // owned by the deployer's thread
  int inotify_fd_ = -1;
  int wake_fd_ = -1;  // eventfd that ends Run
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace orch::api
