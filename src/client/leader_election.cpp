// Leader election through a coordination.k8s.io/v1 Lease (leader_election.h): take the Lease when
// it is free or expired, renew it every retry period, give it up after the renew deadline.
#include "orch/leader_election.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "orch/log.h"
#include "orch/timestamps.h"

namespace orch {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

class ElectorImpl : public LeaderElector {
 public:
  ElectorImpl(ApiClient& client, LeaderElectionOptions options, std::function<void()> on_started,
              std::function<void()> on_stopped)
      : client_(client),
        options_(std::move(options)),
        on_started_(std::move(on_started)),
        on_stopped_(std::move(on_stopped)) {
    thread_ = std::thread([this] { Run(); });
  }

  ~ElectorImpl() override {
    Stop();
    if (thread_.joinable()) thread_.detach();  // only when destroyed from its own callback
  }

  bool IsLeader() const override { return leader_; }

  void Stop() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    // From a callback (our own thread) the loop sees stop_ when the callback returns.
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

 private:
  enum class Attempt { kHeld, kHeldByOther, kFailed };

  void Run() {
    auto last_renewal = Clock::now();
    while (true) {
      Attempt attempt = TryAcquireOrRenew();
      if (attempt == Attempt::kHeld) {
        last_renewal = Clock::now();
        if (!leader_) {
          leader_ = true;
          log::Info("leader", "{} is now the leader of {}/{}", options_.identity,
                    options_.lease_namespace, options_.lease_name);
          if (on_started_) on_started_();
        }
      } else if (leader_ && (attempt == Attempt::kHeldByOther ||
                             Clock::now() - last_renewal >= options_.renew_deadline)) {
        leader_ = false;
        log::Warn("leader", "{} lost the lease {}/{}", options_.identity, options_.lease_namespace,
                  options_.lease_name);
        if (on_stopped_) on_stopped_();
      }
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, options_.retry_period, [this] { return stop_; })) break;
    }
    if (leader_) {
      Release();
      leader_ = false;
      if (on_stopped_) on_stopped_();
    }
  }

  // Remembers when the Lease last changed, by our own clock: expiry is judged from what we saw,
  // never from the holder's timestamps (clocks of different machines disagree).
  void Observe(const json& lease) {
    std::string rv;
    if (lease.contains("metadata") && lease["metadata"].is_object()) {
      rv = lease["metadata"].value("resourceVersion", "");
    }
    if (rv != observed_rv_) {
      observed_rv_ = rv;
      observed_at_ = Clock::now();
    }
  }

  Attempt TryAcquireOrRenew() {
    const std::string now = NowMicroTime();
    auto current = client_.Get(resources::kLeases, options_.lease_namespace, options_.lease_name);
    if (!current.ok()) {
      if (current.status().code() != StatusCode::kNotFound) {
        log::Debug("leader", "reading the lease: {}", current.status().ToString());
        return Attempt::kFailed;
      }
      json lease = {
          {"apiVersion", "coordination.k8s.io/v1"},
          {"kind", "Lease"},
          {"metadata", {{"name", options_.lease_name}, {"namespace", options_.lease_namespace}}},
          {"spec",
           {{"holderIdentity", options_.identity},
            {"leaseDurationSeconds", options_.lease_duration.count()},
            {"acquireTime", now},
            {"renewTime", now},
            {"leaseTransitions", 0}}}};
      auto created = client_.Create(resources::kLeases, options_.lease_namespace, lease);
      if (!created.ok()) return Attempt::kFailed;
      Observe(*created);
      return Attempt::kHeld;
    }
    json lease = std::move(*current);
    Observe(lease);
    json& spec = lease["spec"];
    if (!spec.is_object()) spec = json::object();
    std::string holder = spec.value("holderIdentity", "");
    auto duration = std::chrono::seconds(
        spec.value("leaseDurationSeconds", static_cast<int64_t>(options_.lease_duration.count())));
    bool mine = holder == options_.identity;
    bool expired = holder.empty() || Clock::now() >= observed_at_ + duration;
    if (!mine && !expired) return Attempt::kHeldByOther;

    spec["holderIdentity"] = options_.identity;
    spec["leaseDurationSeconds"] = options_.lease_duration.count();
    spec["renewTime"] = now;
    if (!mine) {
      spec["acquireTime"] = now;
      spec["leaseTransitions"] = spec.value("leaseTransitions", int64_t{0}) + 1;
    }
    // The update carries the resourceVersion we read: if another candidate wrote in between,
    // ours fails with a conflict and we try again next period.
    auto updated = client_.Update(resources::kLeases, options_.lease_namespace, lease);
    if (!updated.ok()) {
      log::Debug("leader", "writing the lease: {}", updated.status().ToString());
      return Attempt::kFailed;
    }
    Observe(*updated);
    return Attempt::kHeld;
  }

  // Hands the Lease back so that a successor need not wait for it to expire.
  void Release() {
    auto current = client_.Get(resources::kLeases, options_.lease_namespace, options_.lease_name);
    if (!current.ok()) return;
    json lease = std::move(*current);
    json& spec = lease["spec"];
    if (!spec.is_object() || spec.value("holderIdentity", "") != options_.identity) return;
    const std::string now = NowMicroTime();
    spec["holderIdentity"] = "";
    spec["leaseDurationSeconds"] = 1;
    spec["acquireTime"] = now;
    spec["renewTime"] = now;
    auto updated = client_.Update(resources::kLeases, options_.lease_namespace, lease);
    if (!updated.ok()) {
      log::Warn("leader", "releasing the lease {}/{}: {}", options_.lease_namespace,
                options_.lease_name, updated.status().ToString());
    }
  }

  ApiClient& client_;
  const LeaderElectionOptions options_;
  const std::function<void()> on_started_;
  const std::function<void()> on_stopped_;
  std::atomic<bool> leader_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  // Elector thread only.
  std::string observed_rv_;
  Clock::time_point observed_at_;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<LeaderElector> LeaderElector::Start(ApiClient& client,
                                                    LeaderElectionOptions options,
                                                    std::function<void()> on_started,
                                                    std::function<void()> on_stopped) {
  return std::make_unique<ElectorImpl>(client, std::move(options), std::move(on_started),
                                       std::move(on_stopped));
}

}  // namespace orch
