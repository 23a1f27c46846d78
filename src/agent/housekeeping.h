// The agent's periodic node housekeeping on one thread: container log rotation (every
// container_log_check_period), image garbage collection (every image_gc_period) and, when the
// agent owns its process, the process's memory (process_memory.h).
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "image_gc.h"
#include "kubelet_args.h"
#include "log_rotation.h"

namespace orch::agent {

class Housekeeping {
 public:
  // `on_gc_shortfall` gets the kubelet's message when image collection could not free enough
  // (the agent records it as the node's FreeDiskSpaceFailed event); may be empty. With
  // `manage_process_memory`, free heap goes back to the kernel every few seconds and the
  // start-up pages of code are dropped from the mappings soon after Start, and again after the
  // agent touched much more code (PageReleasePolicy in process_memory.h).
  Housekeeping(cri::Runtime& runtime, const KubeletSettings& settings,
               std::function<void(const std::string&)> on_gc_shortfall,
               bool manage_process_memory = false);
  ~Housekeeping() { Stop(); }
  Housekeeping(const Housekeeping&) = delete;
  Housekeeping& operator=(const Housekeeping&) = delete;

  void Start();
  // Returns once the thread has finished its current pass. Idempotent.
  void Stop();

 private:
  void Run();

  const KubeletSettings settings_;
  ContainerLogRotator logs_;
  ImageGarbageCollector images_;
  std::function<void(const std::string&)> on_gc_shortfall_;
  const bool manage_process_memory_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace orch::agent
