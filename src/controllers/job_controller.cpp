// The Job and TTL-after-finished controllers (job_controller.h). Pods carry a tracking
// finalizer until the controller has recorded them in status.uncountedTerminatedPods, then in
// the succeeded and failed counts, so a finished pod deleted early is never lost from them.
#include "job_controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <tuple>

#include "orch/log.h"
#include "replicaset_controller.h"

namespace orch {
namespace ctrl::job {

bool IsFinished(const json& job, std::string* type) {
  for (const char* t : {"Complete", "Failed"}) {
    const json* c = FindCondition(Field(job, {"status"}), t);
    if (c != nullptr && StringField(*c, {"status"}) == "True") {
      if (type != nullptr) *type = t;
      return true;
    }
  }
  return false;
}

std::optional<TimePoint> FinishTime(const json& job) {
  std::string type;
  if (!IsFinished(job, &type)) return std::nullopt;
  if (type == "Complete") {
    if (auto t = ParseTime(StringField(job, {"status", "completionTime"}))) return t;
  }
  const json* c = FindCondition(Field(job, {"status"}), type);
  return ParseTime(StringField(*c, {"lastTransitionTime"}));
}

void SetCondition(json& status, const std::string& type, const std::string& condition_status,
                  const std::string& reason, const std::string& message, TimePoint now) {
  json& conditions = status["conditions"];
  if (!conditions.is_array()) conditions = json::array();
  std::string at = FormatTime(now);
  for (json& c : conditions) {
    if (StringField(c, {"type"}) != type) continue;
    if (StringField(c, {"status"}) != condition_status) c["lastTransitionTime"] = at;
    c["status"] = condition_status;
    c["reason"] = reason;
    c["message"] = message;
    c["lastProbeTime"] = at;
    return;
  }
  conditions.push_back({{"type", type},
                        {"status", condition_status},
                        {"reason", reason},
                        {"message", message},
                        {"lastProbeTime", at},
                        {"lastTransitionTime", at}});
}

std::optional<int64_t> Completions(const json& job) {
  const json& completions = Field(job, {"spec", "completions"});
  if (completions.is_number_integer()) return completions.get<int64_t>();
  if (Field(job, {"spec", "parallelism"}).is_null()) return 1;
  return std::nullopt;
}

int64_t Parallelism(const json& job) {
  return std::max<int64_t>(0, IntField(job, {"spec", "parallelism"}, 1));
}

bool IsIndexed(const json& job) {
  return StringField(job, {"spec", "completionMode"}) == "Indexed";
}

std::optional<int64_t> PodIndex(const json& pod) {
  const json& value = Field(pod, {"metadata", "annotations", kCompletionIndexAnnotation});
  if (!value.is_string()) return std::nullopt;
  const std::string& text = value.get_ref<const std::string&>();
  if (text.empty() || text.size() > 9 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::stoll(text);
}

std::string FormatIndexes(const std::set<int64_t>& indexes) {
  std::string out;
  for (auto it = indexes.begin(); it != indexes.end();) {
    int64_t first = *it, last = *it;
    for (++it; it != indexes.end() && *it == last + 1; ++it) last = *it;
    if (!out.empty()) out += ",";
    out += first == last ? std::to_string(first) : fmt::format("{}-{}", first, last);
  }
  return out;
}

std::set<int64_t> ParseIndexes(const std::string& text) {
  std::set<int64_t> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t comma = text.find(',', pos);
    std::string part =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? text.size() : comma + 1;
    size_t dash = part.find('-');
    try {
      int64_t first = std::stoll(part.substr(0, dash));
      int64_t last = dash == std::string::npos ? first : std::stoll(part.substr(dash + 1));
      for (int64_t i = first; i <= last && i - first < 1000000; ++i) out.insert(i);
    } catch (...) {
      continue;  // a malformed part reads as nothing
    }
  }
  return out;
}

bool HasTrackingFinalizer(const json& pod) {
  for (const json& f : Field(pod, {"metadata", "finalizers"})) {
    if (f.is_string() && f.get_ref<const std::string&>() == kTrackingFinalizer) return true;
  }
  return false;
}

json RemoveTrackingFinalizerPatch(const json& pod) {
  if (!HasTrackingFinalizer(pod)) return json();
  json rest = json::array();
  for (const json& f : Field(pod, {"metadata", "finalizers"})) {
    if (!(f.is_string() && f.get_ref<const std::string&>() == kTrackingFinalizer))
      rest.push_back(f);
  }
  return {{"metadata",
           {{"finalizers", rest.empty() ? json() : std::move(rest)},
            {"resourceVersion", StringField(pod, {"metadata", "resourceVersion"})}}}};
}

bool TracksWithFinalizers(const json& job) {
  return Field(job, {"status", "startTime"}).is_null() ||
         Field(job, {"status", "uncountedTerminatedPods"}).is_object();
}

bool IsPodFailedForJob(const json& pod, const json& job) {
  const std::string phase = PodPhase(pod);
  if (phase == "Failed") return true;
  const bool only_replace_failed = StringField(job, {"spec", "podReplacementPolicy"}) == "Failed" ||
                                   !Field(job, {"spec", "podFailurePolicy"}).is_null();
  // A pod deleted before it finished counts as a failure: an orphan or an evicted pod may never
  // reach the Failed phase.
  return !only_replace_failed && IsBeingDeleted(pod) && phase != "Succeeded";
}

json PodForJob(const json& job, const json& controller_ref, std::optional<int64_t> index) {
  json pod = PodFromTemplate(Field(job, {"spec", "template"}), job, controller_ref);
  if (TracksWithFinalizers(job)) {
    json& finalizers = pod["metadata"]["finalizers"];
    if (!finalizers.is_array()) finalizers = json::array();
    if (!HasTrackingFinalizer(pod)) finalizers.push_back(kTrackingFinalizer);
  }
  json& labels = pod["metadata"]["labels"];
  if (!labels.is_object()) labels = json::object();
  // The API server labels the template; a job stored without them still finds its pods.
  for (const char* key : {"batch.kubernetes.io/controller-uid", "controller-uid"}) {
    if (!labels.contains(key)) labels[key] = UidOf(job);
  }
  for (const char* key : {"batch.kubernetes.io/job-name", "job-name"}) {
    if (!labels.contains(key)) labels[key] = NameOf(job);
  }
  if (!index) return pod;
  const std::string value = std::to_string(*index);
  pod["metadata"]["annotations"][kCompletionIndexAnnotation] = value;
  labels[kCompletionIndexAnnotation] = value;
  pod["metadata"]["generateName"] = fmt::format("{}-{}-", NameOf(job), value);
  json& spec = pod["spec"];
  if (!spec.contains("hostname")) spec["hostname"] = fmt::format("{}-{}", NameOf(job), value);
  const json env_var = {
      {"name", kCompletionIndexEnv},
      {"valueFrom",
       {{"fieldRef",
         {{"fieldPath", fmt::format("metadata.annotations['{}']", kCompletionIndexAnnotation)}}}}}};
  for (const char* list : {"initContainers", "containers"}) {
    if (!spec.contains(list) || !spec[list].is_array()) continue;
    for (json& container : spec[list]) {
      json& env = container["env"];
      if (!env.is_array()) env = json::array();
      bool present = std::any_of(env.begin(), env.end(), [](const json& e) {
        return StringField(e, {"name"}) == kCompletionIndexEnv;
      });
      if (!present) env.push_back(env_var);
    }
  }
  return pod;
}

std::optional<PodFailureMatch> MatchPodFailurePolicy(const json& job, const json& pod) {
  const json& rules = Field(job, {"spec", "podFailurePolicy", "rules"});
  if (!rules.is_array()) return std::nullopt;
  const std::string pod_name = fmt::format("{}/{}", NamespaceOf(pod), NameOf(pod));
  for (size_t i = 0; i < rules.size(); ++i) {
    const json& rule = rules[i];
    const std::string action = StringField(rule, {"action"});
    const json& codes = Field(rule, {"onExitCodes"});
    if (codes.is_object()) {
      const std::string container = StringField(codes, {"containerName"});
      const bool in = StringField(codes, {"operator"}) == "In";
      const json& values = Field(codes, {"values"});
      for (const char* list : {"initContainerStatuses", "containerStatuses"}) {
        for (const json& cs : Field(pod, {"status", list})) {
          if (!container.empty() && StringField(cs, {"name"}) != container) continue;
          const json& terminated = Field(cs, {"state", "terminated"});
          if (!terminated.is_object()) continue;
          const int64_t code = IntField(terminated, {"exitCode"});
          if (code == 0) continue;  // a container that succeeded matches no exit code rule
          const bool listed = values.is_array() &&
                              std::find(values.begin(), values.end(), json(code)) != values.end();
          if (listed == in) {
            return PodFailureMatch{
                action, fmt::format("Container {} for pod {} failed with exit code {} matching {} "
                                    "rule at index {}",
                                    StringField(cs, {"name"}), pod_name, code, action, i)};
          }
        }
      }
    }
    for (const json& wanted : Field(rule, {"onPodConditions"})) {
      const std::string type = StringField(wanted, {"type"});
      const std::string status = StringField(wanted, {"status"}, "True");
      const json* condition = FindCondition(Field(pod, {"status"}), type);
      if (condition != nullptr && StringField(*condition, {"status"}) == status) {
        return PodFailureMatch{action, fmt::format("Pod {} has condition {} matching {} rule at "
                                                   "index {}",
                                                   pod_name, type, action, i)};
      }
    }
  }
  return std::nullopt;
}

}  // namespace ctrl::job

namespace {

using namespace ctrl;       // NOLINT(google-build-using-namespace): the helpers of this folder
using namespace ctrl::job;  // NOLINT(google-build-using-namespace)

constexpr char kApiVersion[] = "batch/v1";
constexpr char kKind[] = "Job";

bool IsSucceeded(const json& pod) {
  return PodPhase(pod) == "Succeeded";
}
bool IsFailed(const json& pod) {
  return PodPhase(pod) == "Failed";
}

// The sum of the container restarts of the active pods: the failures of a restartPolicy
// OnFailure job, whose pods never fail as a whole.
int64_t ActiveRestarts(const std::vector<ObjectPtr>& active) {
  int64_t total = 0;
  for (const ObjectPtr& p : active) {
    for (const char* list : {"initContainerStatuses", "containerStatuses"}) {
      for (const json& cs : Field(*p, {"status", list})) total += IntField(cs, {"restartCount"});
    }
  }
  return total;
}

class JobController : public Component {
 public:
  JobController(ControllerContext& context, JobControllerOptions options)
      : context_(context),
        options_(std::move(options)),
        jobs_(context.informers.For(resources::kJobs)),
        pods_(context.informers.For(resources::kPods)),
        expectations_(options_.now),
        loop_(
            "job", context.informers, context.workers, options_.resync_period,
            [this] { return InformerKeys(jobs_); },
            [this](const std::string& key) { return Sync(key); }),
        orphans_(
            "job-orphan-pods", context.informers, 1, options_.resync_period,
            [this] { return OrphanKeys(); },
            [this](const std::string& key) { return SyncOrphan(key); }) {
    AddControllerIndex(pods_);
  }

  std::string_view Name() const override { return "job"; }

  Status Start() override {
    jobs_.AddHandler({
        [this](const ObjectPtr& j) { loop_.Add(ObjectKey(*j)); },
        [this](const ObjectPtr& old_j, const ObjectPtr& j) {
          if (UidOf(*old_j) != UidOf(*j)) expectations_.Delete(ObjectKey(*old_j));
          loop_.Add(ObjectKey(*j));
        },
        [this](const ObjectPtr& j) {
          expectations_.Delete(ObjectKey(*j));
          loop_.Add(ObjectKey(*j));
          // Its pods are orphans now: their finalizers must go, or they could never be deleted.
          for (const ObjectPtr& p : pods_.ByIndex(kControllerIndex, UidOf(*j))) {
            if (HasTrackingFinalizer(*p)) orphans_.Add(ObjectKey(*p));
          }
        },
    });
    InformerHandler owned =
        OwnedPodHandlers({jobs_, kKind, loop_, expectations_, expectations_, nullptr, nullptr});
    pods_.AddHandler({
        [this, on_add = owned.on_add](const ObjectPtr& p) {
          on_add(p);
          if (HasTrackingFinalizer(*p) && IsOrphan(*p)) orphans_.Add(ObjectKey(*p));
        },
        [this, on_update = owned.on_update](const ObjectPtr& old_p, const ObjectPtr& p) {
          on_update(old_p, p);
          if (HasTrackingFinalizer(*p) && IsOrphan(*p)) orphans_.Add(ObjectKey(*p));
        },
        owned.on_delete,
    });
    loop_.Start();
    orphans_.Start();
    return Status::Ok();
  }

  void Stop() override {
    orphans_.Stop();
    loop_.Stop();
  }

 private:
  // A pod no Job in the cache controls: no controller, or a batch/v1 Job that is gone (pods
  // another kind controls are not ours to touch).
  bool IsOrphan(const json& pod) const {
    const json* ref = GetControllerOf(pod);
    if (ref == nullptr) return true;
    if (StringField(*ref, {"kind"}) != kKind || StringField(*ref, {"apiVersion"}) != kApiVersion) {
      return false;
    }
    return ResolveControllerRef(jobs_, NamespaceOf(pod), *ref) == nullptr;
  }

  // What the orphan loop's resync visits: pods holding the finalizer without a job.
  std::vector<std::string> OrphanKeys() const {
    std::vector<std::string> keys;
    for (const ObjectPtr& p : pods_.List()) {
      if (HasTrackingFinalizer(*p) && IsOrphan(*p)) keys.push_back(ObjectKey(*p));
    }
    return keys;
  }

  // Releases an orphan's finalizer (upstream's syncOrphanPod): checked again here, after the
  // informers synced, so a pod whose job was not yet in the cache keeps it.
  Status SyncOrphan(const std::string& key) {
    auto [ns, name] = SplitObjectKey(key);
    ObjectPtr pod = pods_.Get(ns, name);
    if (!pod || !HasTrackingFinalizer(*pod) || !IsOrphan(*pod)) return Status::Ok();
    return RemoveFinalizer(*pod);
  }

  void Event(const json& job, const char* type, const char* reason, const std::string& message) {
    context_.events.Record(EventRef(job, kApiVersion, kKind), type, reason, message);
  }

  Status Sync(const std::string& key) {
    auto [ns, name] = SplitObjectKey(key);
    ObjectPtr job_ptr = jobs_.Get(ns, name);
    if (!job_ptr) {
      expectations_.Delete(key);
      return Status::Ok();
    }
    const json& job = *job_ptr;
    if (IsBeingDeleted(job)) {
      // Nothing more to count: let the garbage collector remove the pods.
      return RemoveFinalizers(OwnedAndOrphans(pods_, job), job);
    }
    const bool tracking = TracksWithFinalizers(job);
    if (IsFinished(job)) {
      // Counted from the pods present (no finalizers): the counts stay as they were written.
      if (!tracking) return Status::Ok();
      // Tracked: only pods still holding a finalizer, or recorded but not yet counted, remain.
      const json& pending = Field(job, {"status", "uncountedTerminatedPods"});
      const bool recorded =
          !Field(pending, {"succeeded"}).empty() || !Field(pending, {"failed"}).empty();
      const std::vector<ObjectPtr> owned = pods_.ByIndex(kControllerIndex, UidOf(job));
      if (!recorded && std::none_of(owned.begin(), owned.end(),
                                    [](const ObjectPtr& p) { return HasTrackingFinalizer(*p); })) {
        return Status::Ok();
      }
    }
    const bool needs_sync = expectations_.Satisfied(key);
    const TimePoint now = options_.now();
    std::vector<std::tuple<std::string, std::string, std::string>> announcements;
    auto announce = [&](std::string type, std::string reason, std::string message) {
      announcements.emplace_back(std::move(type), std::move(reason), std::move(message));
    };

    // The job's pods: those it controls, plus orphans its selector matches (adopted).
    std::vector<ObjectPtr> pods;
    {
      std::vector<ObjectPtr> candidates = OwnedAndOrphans(pods_, job);
      const json& selector_json = Field(job, {"spec", "selector"});
      if (selector_json.is_null() || IsFinished(job)) {
        for (ObjectPtr& p : candidates) {
          const json* ref = GetControllerOf(*p);
          if (ref != nullptr && StringField(*ref, {"uid"}) == UidOf(job)) {
            pods.push_back(std::move(p));
          }
        }
      } else {
        auto selector = LabelSelector::FromJson(selector_json);
        if (!selector.ok()) {
          log::Warn("job", "{}: invalid selector: {}", key, selector.status().message());
          return Status::Ok();
        }
        RefManager refs(context_.client, resources::kPods, job, kApiVersion, kKind, *selector,
                        RecheckOwner(context_.client, resources::kJobs, job));
        Status claim_error;
        pods = refs.Claim(candidates, &claim_error);
        if (!claim_error.ok()) return claim_error;
      }
    }

    json status = Field(job, {"status"}).is_object() ? job["status"] : json::object();
    const json old_status = status;
    std::vector<ObjectPtr> active;
    int64_t succeeded = 0, failed = 0, ready = 0, terminating = 0;
    std::string policy_failure;  // the message of a FailJob rule that matched
    std::set<int64_t> succeeded_indexes;
    const std::optional<int64_t> completions = Completions(job);
    // Tracking: status.succeeded and status.failed count the pods whose finalizer is gone,
    // uncountedTerminatedPods the finished ones that still carry it.
    std::set<std::string> uncounted_succeeded, uncounted_failed;
    std::vector<ObjectPtr> to_release;  // finished pods whose finalizer may go once recorded
    if (tracking) {
      succeeded = IntField(status, {"succeeded"});
      failed = IntField(status, {"failed"});
      succeeded_indexes = ParseIndexes(StringField(status, {"completedIndexes"}));
      std::map<std::string, const json*> by_uid;
      for (const ObjectPtr& p : pods) by_uid[UidOf(*p)] = p.get();
      // Recorded pods whose finalizer is gone (or that are gone) join the counts.
      auto fold = [&](const char* list, std::set<std::string>& still, int64_t& count) {
        for (const json& uid : Field(status, {"uncountedTerminatedPods", list})) {
          if (!uid.is_string()) continue;
          auto it = by_uid.find(uid.get<std::string>());
          if (it == by_uid.end() || !HasTrackingFinalizer(*it->second)) {
            ++count;
          } else {
            still.insert(uid.get<std::string>());
          }
        }
      };
      fold("succeeded", uncounted_succeeded, succeeded);
      fold("failed", uncounted_failed, failed);
    }
    for (const ObjectPtr& p : pods) {
      const std::string uid = UidOf(*p);
      const bool recorded = uncounted_succeeded.count(uid) > 0 || uncounted_failed.count(uid) > 0;
      const bool counts = !tracking || (HasTrackingFinalizer(*p) && !recorded);
      // Recorded, but the release failed (a conflict): released again.
      if (tracking && recorded && HasTrackingFinalizer(*p)) to_release.push_back(p);
      if (IsBeingDeleted(*p) && !IsSucceeded(*p) && !IsFailed(*p)) ++terminating;
      if (IsSucceeded(*p)) {
        auto index = PodIndex(*p);
        if (index && completions && *index < *completions) succeeded_indexes.insert(*index);
        if (!counts) continue;
        if (tracking) {
          uncounted_succeeded.insert(uid);
          to_release.push_back(p);
        } else {
          ++succeeded;
        }
      } else if (tracking ? IsPodFailedForJob(*p, job) : IsFailed(*p)) {
        if (!counts) continue;
        // spec.podFailurePolicy: the first matching rule says whether the failure fails the
        // job at once (FailJob), does not count against backoffLimit (Ignore) or counts.
        auto match = MatchPodFailurePolicy(job, *p);
        if (tracking) to_release.push_back(p);
        if (match && match->action == "Ignore") continue;
        if (match && match->action == "FailJob" && policy_failure.empty()) {
          policy_failure = match->message;
        }
        if (tracking) {
          uncounted_failed.insert(uid);
        } else {
          ++failed;
        }
      } else if (!IsBeingDeleted(*p)) {
        active.push_back(p);
        if (IsPodReady(*p)) ++ready;
      }
    }
    const int64_t uncounted =
        static_cast<int64_t>(uncounted_succeeded.size() + uncounted_failed.size());
    const int64_t all_succeeded = succeeded + static_cast<int64_t>(uncounted_succeeded.size());
    const int64_t all_failed = failed + static_cast<int64_t>(uncounted_failed.size());

    const bool suspended = BoolField(job, {"spec", "suspend"});
    Status manage_error;

    if (IsFinished(job)) {
      // Finished: only the counts of the last pods and their finalizers are left to settle.
      active.clear();
    } else {
      // Finished?
      std::string fail_reason, fail_message;
      const int64_t backoff_limit = IntField(job, {"spec", "backoffLimit"}, 6);
      bool past_backoff = all_failed > backoff_limit;
      if (StringField(job, {"spec", "template", "spec", "restartPolicy"}) == "OnFailure") {
        int64_t restarts = ActiveRestarts(active);
        if (backoff_limit == 0 ? restarts > 0 : restarts >= backoff_limit) past_backoff = true;
      }
      // A failure decided while finished pods were still uncounted is kept in a FailureTarget
      // condition (as upstream's), so the reason survives until the Failed condition is set.
      const json* target = FindCondition(status, "FailureTarget");
      const bool has_target = target != nullptr && StringField(*target, {"status"}) == "True";
      if (has_target) {
        fail_reason = StringField(*target, {"reason"});
        fail_message = StringField(*target, {"message"});
      } else if (!policy_failure.empty()) {
        fail_reason = "PodFailurePolicy";
        fail_message = policy_failure;
      } else if (past_backoff) {
        fail_reason = "BackoffLimitExceeded";
        fail_message = "Job has reached the specified backoff limit";
      } else if (!suspended && Field(job, {"spec", "activeDeadlineSeconds"}).is_number_integer()) {
        auto start = ParseTime(StringField(status, {"startTime"}));
        auto deadline = std::chrono::seconds(IntField(job, {"spec", "activeDeadlineSeconds"}));
        if (start && now - *start >= deadline) {
          fail_reason = "DeadlineExceeded";
          fail_message = "Job was active longer than specified deadline";
        } else if (start) {
          loop_.AddAfter(
              key, std::chrono::duration_cast<std::chrono::milliseconds>(*start + deadline - now) +
                       std::chrono::milliseconds(10));
        }
      }

      bool complete = false;
      if (IsIndexed(job) && completions) {
        complete = static_cast<int64_t>(succeeded_indexes.size()) >= *completions;
      } else if (completions) {
        complete = all_succeeded >= *completions;
      } else {
        complete = all_succeeded > 0 && active.empty();
      }

      // The finished condition waits until every finished pod is counted (upstream does the
      // same), so that a job that is Complete or Failed has its final counts.
      // Condition events wait for the status write: a sync from a stale cache, whose write then
      // conflicts, must not announce the same change twice.
      if (!fail_reason.empty()) {
        if (needs_sync) manage_error = DeletePods(job, key, active);
        active.clear();
        if (uncounted == 0) {
          SetCondition(status, "Failed", "True", fail_reason, fail_message, now);
          announce("Warning", fail_reason, fail_message);
        } else if (!has_target) {
          SetCondition(status, "FailureTarget", "True", fail_reason, fail_message, now);
        }
      } else if (complete) {
        if (needs_sync && !active.empty()) manage_error = DeletePods(job, key, active);
        active.clear();
        if (uncounted == 0) {
          SetCondition(status, "Complete", "True", "CompletionsReached",
                       "Reached expected number of succeeded pods", now);
          status["completionTime"] = FormatTime(now);
          announce("Normal", "Completed", "Job completed");
        }
      } else if (suspended) {
        if (needs_sync && !active.empty()) manage_error = DeletePods(job, key, active);
        active.clear();
        const json* c = FindCondition(status, "Suspended");
        if (c == nullptr || StringField(*c, {"status"}) != "True") {
          SetCondition(status, "Suspended", "True", "JobSuspended", "Job suspended", now);
          announce("Normal", "Suspended", "Job suspended");
        }
      } else {
        const json* c = FindCondition(status, "Suspended");
        if (c != nullptr && StringField(*c, {"status"}) == "True") {
          SetCondition(status, "Suspended", "False", "JobResumed", "Job resumed", now);
          announce("Normal", "Resumed", "Job resumed");
          status["startTime"] = FormatTime(now);  // the active deadline starts over
        }
        if (!status.contains("startTime")) {
          status["startTime"] = FormatTime(now);
          if (Field(job, {"spec", "activeDeadlineSeconds"}).is_number_integer()) {
            loop_.AddAfter(key,
                           std::chrono::seconds(IntField(job, {"spec", "activeDeadlineSeconds"})));
          }
        }
        if (needs_sync) {
          manage_error =
              ManagePods(job, key, active, all_succeeded, all_failed, succeeded_indexes, now);
        }
      }
    }

    status["active"] = static_cast<int64_t>(active.size());
    status["succeeded"] = succeeded;
    status["failed"] = failed;
    status["ready"] = ready;
    status["terminating"] = terminating;
    if (IsIndexed(job)) status["completedIndexes"] = FormatIndexes(succeeded_indexes);
    for (const char* field : {"active", "succeeded", "failed", "terminating"}) {
      if (status[field] == 0 && !old_status.contains(field)) status.erase(field);
    }
    if (tracking) {
      status["uncountedTerminatedPods"] = {
          {"succeeded",
           json(std::vector<std::string>(uncounted_succeeded.begin(), uncounted_succeeded.end()))},
          {"failed",
           json(std::vector<std::string>(uncounted_failed.begin(), uncounted_failed.end()))}};
      for (const char* list : {"succeeded", "failed"}) {
        if (status["uncountedTerminatedPods"][list].empty()) {
          status["uncountedTerminatedPods"].erase(list);
        }
      }
    }
    bool written = false;
    if (Status s = UpdateStatus(job, old_status, status, &written); !s.ok()) return s;
    if (!written) return manage_error;  // a newer job is on its way: nothing recorded to release
    for (const auto& [type, reason, message] : announcements) {
      Event(job, type.c_str(), reason.c_str(), message);
    }
    // The finished pods are recorded in the status now: their finalizers may go. A finished
    // job releases every pod it still holds.
    if (tracking && IsFinished(job)) to_release = pods;
    if (Status s = RemoveFinalizers(to_release, job); !s.ok() && manage_error.ok()) {
      manage_error = s;
    }
    return manage_error;
  }

  // Removes the tracking finalizer from those of `pods` that carry it. Gone pods are fine; a
  // conflict is an error, so the job syncs again with the newer pod.
  Status RemoveFinalizers(const std::vector<ObjectPtr>& pods, const json& job) {
    std::vector<const json*> holders;
    for (const ObjectPtr& p : pods) {
      if (HasTrackingFinalizer(*p)) holders.push_back(p.get());
    }
    std::mutex mu;
    Status error;
    RunParallel(static_cast<int>(holders.size()), 16, [&](int i) {
      Status s = RemoveFinalizer(*holders[i]);
      if (s.ok()) return;
      log::Debug("job", "{}/{}: finalizer of pod {}: {}", NamespaceOf(job), NameOf(job),
                 NameOf(*holders[i]), s.message());
      std::lock_guard lock(mu);
      if (error.ok()) error = s;
    });
    return error;
  }

  Status RemoveFinalizer(const json& pod) {
    json patch = RemoveTrackingFinalizerPatch(pod);
    if (patch.is_null()) return Status::Ok();
    auto result = context_.client.Patch(resources::kPods, NamespaceOf(pod), NameOf(pod),
                                        PatchType::kMerge, patch.dump());
    if (result.ok() || result.status().code() == StatusCode::kNotFound) return Status::Ok();
    return result.status();
  }

  // Creates the missing pods and deletes the excess.
  Status ManagePods(const json& job, const std::string& key, std::vector<ObjectPtr>& active,
                    int64_t succeeded, int64_t failed, const std::set<int64_t>& succeeded_indexes,
                    TimePoint now) {
    const int64_t parallelism = Parallelism(job);
    const std::optional<int64_t> completions = Completions(job);
    int64_t want = parallelism;
    std::vector<int64_t> indexes_to_create;
    if (IsIndexed(job) && completions) {
      std::set<int64_t> running;
      for (const ObjectPtr& p : active) {
        if (auto i = PodIndex(*p)) running.insert(*i);
      }
      int64_t pending = *completions - static_cast<int64_t>(succeeded_indexes.size());
      want = std::min(parallelism, pending);
      for (int64_t i = 0; i < *completions &&
                          static_cast<int64_t>(active.size() + indexes_to_create.size()) < want;
           ++i) {
        if (succeeded_indexes.count(i) == 0 && running.count(i) == 0) {
          indexes_to_create.push_back(i);
        }
      }
    } else if (completions) {
      want = std::min(parallelism, std::max<int64_t>(0, *completions - succeeded));
    } else if (succeeded > 0) {
      want = std::min<int64_t>(parallelism, static_cast<int64_t>(active.size()));
    }
    const int64_t have = static_cast<int64_t>(active.size());
    if (have > want) {
      std::vector<ObjectPtr> victims =
          PodsToDelete(active, active, static_cast<size_t>(have - want));
      return DeletePods(job, key, victims);
    }
    if (have >= want) return Status::Ok();

    // Replacements for failed pods back off exponentially.
    if (failed > 0) {
      auto delay = options_.backoff_base;
      for (int64_t i = 1; i < failed && delay < options_.backoff_max; ++i) delay *= 2;
      delay = std::min(delay, options_.backoff_max);
      std::optional<TimePoint> last_failure;
      for (const ObjectPtr& p : OwnedAndOrphans(pods_, job)) {
        if (!IsFailed(*p)) continue;
        auto t = LastFailureTime(*p);
        if (t && (!last_failure || *t > *last_failure)) last_failure = t;
      }
      if (last_failure && now < *last_failure + delay) {
        loop_.AddAfter(key, std::chrono::duration_cast<std::chrono::milliseconds>(*last_failure +
                                                                                  delay - now) +
                                std::chrono::milliseconds(10));
        return Status::Ok();
      }
    }

    const int count = static_cast<int>(IsIndexed(job) && completions
                                           ? static_cast<int64_t>(indexes_to_create.size())
                                           : want - have);
    if (count <= 0) return Status::Ok();
    expectations_.ExpectCreations(key, count);
    const json ref = NewControllerRef(job, kApiVersion, kKind);
    const std::string ns = NamespaceOf(job);
    Status error;
    int created = SlowStartBatch(
        count, 1,
        [&](int i) -> Status {
          std::optional<int64_t> index;
          if (IsIndexed(job) && completions) index = indexes_to_create[i];
          auto result = context_.client.Create(resources::kPods, ns, PodForJob(job, ref, index));
          if (!result.ok()) {
            Event(job, "Warning", "FailedCreate",
                  fmt::format("Error creating: {}", result.status().message()));
            return result.status();
          }
          Event(job, "Normal", "SuccessfulCreate", fmt::format("Created pod: {}", NameOf(*result)));
          return Status::Ok();
        },
        &error);
    for (int i = created; i < count; ++i) expectations_.CreationObserved(key);
    return error;
  }

  // When a failed pod failed: its last container's finish time, else its last condition change.
  static std::optional<TimePoint> LastFailureTime(const json& pod) {
    std::optional<TimePoint> latest;
    for (const json& cs : Field(pod, {"status", "containerStatuses"})) {
      auto t = ParseTime(StringField(cs, {"state", "terminated", "finishedAt"}));
      if (t && (!latest || *t > *latest)) latest = t;
    }
    if (latest) return latest;
    for (const json& c : Field(pod, {"status", "conditions"})) {
      auto t = ParseTime(StringField(c, {"lastTransitionTime"}));
      if (t && (!latest || *t > *latest)) latest = t;
    }
    if (latest) return latest;
    return ParseTime(StringField(pod, {"metadata", "creationTimestamp"}));
  }

  Status DeletePods(const json& job, const std::string& key, const std::vector<ObjectPtr>& pods) {
    if (pods.empty()) return Status::Ok();
    std::vector<std::string> keys;
    for (const ObjectPtr& p : pods) keys.push_back(ObjectKey(*p));
    expectations_.ExpectDeletions(key, keys);
    std::mutex mu;
    Status error;
    RunParallel(static_cast<int>(pods.size()), 16, [&](int i) {
      const json& pod = *pods[i];
      // A pod the job deletes itself is not a failure: it leaves uncounted (upstream's order).
      if (Status s = RemoveFinalizer(pod); !s.ok()) {
        expectations_.DeletionObserved(key, keys[i]);
        std::lock_guard lock(mu);
        if (error.ok()) error = s;
        return;
      }
      auto result = context_.client.Delete(resources::kPods, NamespaceOf(pod), NameOf(pod));
      if (result.ok()) {
        Event(job, "Normal", "SuccessfulDelete", fmt::format("Deleted pod: {}", NameOf(pod)));
        return;
      }
      expectations_.DeletionObserved(key, keys[i]);
      if (result.status().code() == StatusCode::kNotFound) return;
      Event(job, "Warning", "FailedDelete",
            fmt::format("Error deleting: {}", result.status().message()));
      std::lock_guard lock(mu);
      if (error.ok()) error = result.status();
    });
    return error;
  }

  // Writes the status if it changed. `written` tells whether the API now holds `status`
  // (written, or unchanged).
  Status UpdateStatus(const json& job, const json& old_status, const json& status,
                      bool* written_out) {
    *written_out = true;
    // uncountedTerminatedPods: {} marks a job that tracks with finalizers, so it must be written.
    if (DropEmpty(old_status) == DropEmpty(status) &&
        old_status.contains("uncountedTerminatedPods") ==
            status.contains("uncountedTerminatedPods")) {
      return Status::Ok();
    }
    *written_out = false;
    json next = job;
    next["status"] = status;
    auto written = context_.client.Update(resources::kJobs, NamespaceOf(job), next, "status");
    *written_out = written.ok();
    if (written.ok()) return Status::Ok();
    StatusCode code = written.status().code();
    // A newer version is on its way through the informer, whose event syncs the job again.
    if (code == StatusCode::kConflict || code == StatusCode::kNotFound) return Status::Ok();
    return written.status();
  }

  ControllerContext& context_;
  const JobControllerOptions options_;
  Informer& jobs_;
  Informer& pods_;
  Expectations expectations_;
  ControllerLoop loop_;
  ControllerLoop orphans_;  // keys of pods whose tracking finalizer outlived their job
};

// Deletes finished jobs whose spec.ttlSecondsAfterFinished has passed (with their pods: the
// deletion is Foreground, as upstream's).
class TtlAfterFinishedController : public Component {
 public:
  TtlAfterFinishedController(ControllerContext& context, TtlControllerOptions options)
      : client_(context.client),
        options_(std::move(options)),
        jobs_(context.informers.For(resources::kJobs)),
        loop_(
            "ttlafterfinished", context.informers, context.workers, std::chrono::minutes(10),
            [this] { return InformerKeys(jobs_); },
            [this](const std::string& key) { return Sync(key); }) {}

  std::string_view Name() const override { return "ttlafterfinished"; }

  Status Start() override {
    jobs_.AddHandler({
        [this](const ObjectPtr& j) { Enqueue(*j); },
        [this](const ObjectPtr&, const ObjectPtr& j) { Enqueue(*j); },
        nullptr,
    });
    loop_.Start();
    return Status::Ok();
  }

  void Stop() override { loop_.Stop(); }

 private:
  static bool Candidate(const json& job) {
    return !IsBeingDeleted(job) && Field(job, {"spec", "ttlSecondsAfterFinished"}).is_number() &&
           IsFinished(job);
  }

  void Enqueue(const json& job) {
    if (Candidate(job)) loop_.Add(ObjectKey(job));
  }

  Status Sync(const std::string& key) {
    auto [ns, name] = SplitObjectKey(key);
    ObjectPtr job = jobs_.Get(ns, name);
    if (!job || !Candidate(*job)) return Status::Ok();
    auto finished = FinishTime(*job);
    if (!finished) return Status::Ok();
    auto expires =
        *finished + std::chrono::seconds(IntField(*job, {"spec", "ttlSecondsAfterFinished"}));
    TimePoint now = options_.now();
    if (now < expires) {
      loop_.AddAfter(key, std::chrono::duration_cast<std::chrono::milliseconds>(expires - now) +
                              std::chrono::milliseconds(10));
      return Status::Ok();
    }
    // The TTL may have changed since the cache's version: check the API's.
    auto fresh = client_.Get(resources::kJobs, ns, name);
    if (!fresh.ok()) {
      return fresh.status().code() == StatusCode::kNotFound ? Status::Ok() : fresh.status();
    }
    if (!Candidate(*fresh) || UidOf(*fresh) != UidOf(*job)) return Status::Ok();
    auto fresh_finished = FinishTime(*fresh);
    if (!fresh_finished ||
        now < *fresh_finished +
                  std::chrono::seconds(IntField(*fresh, {"spec", "ttlSecondsAfterFinished"}))) {
      loop_.Add(key);
      return Status::Ok();
    }
    log::Info("ttlafterfinished", "deleting job {}: finished and its TTL has passed", key);
    DeleteOptions options;
    options.propagation_policy = "Foreground";
    options.precondition_uid = UidOf(*fresh);
    options.precondition_resource_version = StringField(*fresh, {"metadata", "resourceVersion"});
    auto deleted = client_.Delete(resources::kJobs, ns, name, options);
    if (!deleted.ok() && deleted.status().code() != StatusCode::kNotFound) {
      return deleted.status();
    }
    return Status::Ok();
  }

  ApiClient& client_;
  const TtlControllerOptions options_;
  Informer& jobs_;
  ControllerLoop loop_;
};

}  // namespace

std::unique_ptr<Component> NewJobController(ControllerContext& context) {
  return NewJobController(context, JobControllerOptions{});
}

std::unique_ptr<Component> NewJobController(ControllerContext& context,
                                            JobControllerOptions options) {
  return std::make_unique<JobController>(context, std::move(options));
}

std::unique_ptr<Component> NewTtlAfterFinishedController(ControllerContext& context) {
  return NewTtlAfterFinishedController(context, TtlControllerOptions{});
}

std::unique_ptr<Component> NewTtlAfterFinishedController(ControllerContext& context,
                                                         TtlControllerOptions options) {
  return std::make_unique<TtlAfterFinishedController>(context, std::move(options));
}

}  // namespace orch
