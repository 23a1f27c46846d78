// The Job controller (pods run to completion: completions, parallelism, backoffLimit,
// activeDeadlineSeconds, Indexed mode, suspend) and the TTL-after-finished controller, with the
// pure logic they are built from exposed for the unit tests.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "controller_util.h"
#include "orch/component.h"
#include "orch/controllers.h"

namespace orch {

struct JobControllerOptions {
  ctrl::NowFunc now = ctrl::SystemNow;
  std::chrono::milliseconds resync_period = std::chrono::minutes(5);
  // Replacements for failed pods wait base * 2^(failures-1), at most max (upstream: 10 s, 6 min).
  std::chrono::milliseconds backoff_base = std::chrono::seconds(10);
  std::chrono::milliseconds backoff_max = std::chrono::minutes(6);
};

struct TtlControllerOptions {
  ctrl::NowFunc now = ctrl::SystemNow;
};

// The factories of the AllControllers() table ("job", "ttlafterfinished").
std::unique_ptr<Component> NewJobController(ControllerContext& context);
std::unique_ptr<Component> NewJobController(ControllerContext& context,
                                            JobControllerOptions options);
std::unique_ptr<Component> NewTtlAfterFinishedController(ControllerContext& context);
std::unique_ptr<Component> NewTtlAfterFinishedController(ControllerContext& context,
                                                         TtlControllerOptions options);

namespace ctrl::job {

inline constexpr char kCompletionIndexAnnotation[] = "batch.kubernetes.io/job-completion-index";
inline constexpr char kCompletionIndexEnv[] = "JOB_COMPLETION_INDEX";
// On every pod of a job until the controller has counted it (upstream's pod tracking): a
// finished pod cannot vanish before it is in status.uncountedTerminatedPods, and from there in
// status.succeeded or status.failed.
inline constexpr char kTrackingFinalizer[] = "batch.kubernetes.io/job-tracking";

// Whether the pod carries kTrackingFinalizer.
bool HasTrackingFinalizer(const json& pod);
// The merge patch that removes kTrackingFinalizer from `pod` (resourceVersion as precondition),
// or null when it has none.
json RemoveTrackingFinalizerPatch(const json& pod);
// Whether the job counts its pods through the tracking finalizer: every job but one that was
// started by an orch without it (startTime set, no status.uncountedTerminatedPods), whose pods
// carry no finalizer and are counted as they are found.
bool TracksWithFinalizers(const json& job);
// Upstream's isPodFailed: phase Failed; or, unless the job replaces only failed pods
// (podReplacementPolicy Failed, or a podFailurePolicy), being deleted before it succeeded.
bool IsPodFailedForJob(const json& pod, const json& job);

// A finished job has a Complete or Failed condition with status True; `type` gets which.
bool IsFinished(const json& job, std::string* type = nullptr);
// When it finished (the condition's lastTransitionTime), if it did.
std::optional<TimePoint> FinishTime(const json& job);

// Sets or replaces a JobCondition (type, status, reason, message, lastProbeTime,
// lastTransitionTime); the transition time stays while the status does.
void SetCondition(json& status, const std::string& type, const std::string& condition_status,
                  const std::string& reason, const std::string& message, TimePoint now);

// spec.completions as upstream reads it: unset with parallelism unset is 1; unset otherwise is
// nullopt (a work queue: done when one pod succeeds and none is active).
std::optional<int64_t> Completions(const json& job);
int64_t Parallelism(const json& job);
bool IsIndexed(const json& job);

// The completion index of a pod (its annotation), or nullopt.
std::optional<int64_t> PodIndex(const json& pod);
// Indexes as status.completedIndexes writes them: "0-2,5,7-8".
std::string FormatIndexes(const std::set<int64_t>& indexes);
std::set<int64_t> ParseIndexes(const std::string& text);

// The pod for completion index `index` (or any pod, without an index): the template plus the
// job's labels, the index annotation and label, hostname "<job>-<index>" and JOB_COMPLETION_INDEX
// in every container through the downward API; kTrackingFinalizer when the job tracks with it.
json PodForJob(const json& job, const json& controller_ref, std::optional<int64_t> index);

// spec.podFailurePolicy applied to a failed pod: the action of the first rule it matches
// (FailJob, Ignore, Count; FailIndex needs backoffLimitPerIndex, which orch lacks, so it counts)
// and upstream's message for it, or nullopt when no rule matches.
struct PodFailureMatch {
  std::string action;
  std::string message;
};
std::optional<PodFailureMatch> MatchPodFailurePolicy(const json& job, const json& pod);

}  // namespace ctrl::job
}  // namespace orch
