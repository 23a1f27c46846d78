// Runs the pods bound to this node: an informer on pods with spec.nodeName=<node>, a work queue
// keyed by pod uid served by a small fixed pool of pod workers (a pod is never synced on two
// threads at once), and a relister that lists the runtime's containers every second and queues
// the pods whose containers changed state (CRI 1.6 has no event stream), including pods that
// no longer exist, whose leftovers are removed.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "object_source.h"
#include "orch/informer.h"
#include "orch/runtime.h"
#include "orch/work_queue.h"
#include "pod_worker.h"

namespace orch::agent {

class PodManager {
 public:
  // `pods` is the node's pod informer (its handlers are registered here, before the factory
  // starts).
  PodManager(PodWorkerContext& ctx, Informer& pods, InformerObjectSource& objects, int workers = 4);
  ~PodManager();
  PodManager(const PodManager&) = delete;
  PodManager& operator=(const PodManager&) = delete;

  // Starts the workers and the relister.
  void Start();
  // Stops them (pods' containers keep running). Idempotent.
  void Stop();

  // Queues every pod of the node (the pod network became ready, ...). Thread-safe.
  void EnqueueAll();
  // Queues the pods of `ns` that use ConfigMap/Secret `name` (`kind` "configmap"/"secret").
  void EnqueueUsers(const std::string& kind, const std::string& ns, const std::string& name);

 private:
  void Remember(const ObjectPtr& pod);
  Status Reconcile(const std::string& uid);
  void Relist();

  PodWorkerContext& ctx_;
  Informer& pods_;
  InformerObjectSource& objects_;
  const int workers_count_;
  // In this order: the pool goes first, then the worker (which waits for its background stops,
  // and those queue pods), then the queue.
  WorkQueue queue_;
  PodWorker worker_;
  std::unique_ptr<WorkerPool> pool_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::string> keys_;  // guarded by mu_: uid -> "ns/name"
  bool stopping_ = false;                    // guarded by mu_
  std::thread relister_;

  // Owned by the relister thread.
  std::map<std::string, std::pair<std::string, int>> seen_;  // runtime object id -> uid, state
  std::set<std::string> orphans_;                            // uids queued for removal
};

// Whether the pod uses ConfigMap or Secret `name` (volumes, env, envFrom, imagePullSecrets), or
// PersistentVolumeClaim `name` (kind "persistentvolumeclaim": its volumes).
bool PodUses(const nlohmann::json& pod, const std::string& kind, const std::string& name);

}  // namespace orch::agent
