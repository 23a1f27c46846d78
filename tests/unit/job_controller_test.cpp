// The Job controller against the fake API: completions with parallelism, backoffLimit,
// podFailurePolicy, activeDeadlineSeconds, suspend and resume, Indexed mode (annotation,
// hostname, env), work queues, and the TTL-after-finished controller; plus the pure helpers.
#include "job_controller.h"

#include <catch2/catch.hpp>

#include "controller_test_util.h"

namespace {

using json = nlohmann::json;
using orch::testing::ControllerFixture;
using orch::testing::WaitUntil;
namespace ctrl = orch::ctrl;
namespace job = orch::ctrl::job;
namespace resources = orch::resources;

json Job(const std::string& name, json spec = json::object()) {
  json j = {{"apiVersion", "batch/v1"},
            {"kind", "Job"},
            {"metadata", {{"name", name}, {"namespace", "default"}}},
            {"spec",
             {{"backoffLimit", 6},
              {"template",
               {{"metadata", {{"labels", {{"job", name}}}}},
                {"spec",
                 {{"restartPolicy", "Never"},
                  {"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})}}}}}}}};
  j["spec"].merge_patch(spec);
  return j;
}

struct JobFixture : ControllerFixture {
  explicit JobFixture(std::chrono::milliseconds resync = std::chrono::hours(1)) {
    orch::JobControllerOptions options;
    options.now = clock.Func();
    options.resync_period = resync;
    options.backoff_base = std::chrono::milliseconds(0);
    Add(orch::NewJobController(context, options));
  }
  json J(const std::string& name) { return Get(resources::kJobs, name); }
  int64_t Count(const std::string& name, const char* field) {
    return ctrl::IntField(J(name), {"status", field});
  }
  std::vector<json> JobPods(const std::string& name, const std::string& phase = "") {
    std::vector<json> out;
    for (const json& p : Pods("job=" + name)) {
      if (phase.empty() ? ctrl::IsPodActive(p) : ctrl::PodPhase(p) == phase) out.push_back(p);
    }
    return out;
  }
  // What a kubelet reports when the pod's containers exit; false when the pod is gone.
  bool Finish(const json& pod, const std::string& phase) {
    json patch = {{"status", {{"phase", phase}}}};
    auto result = api.Patch(resources::kPods, "default", ctrl::NameOf(pod), orch::PatchType::kMerge,
                            patch.dump(), "status");
    if (!result.ok()) REQUIRE(result.status().code() == orch::StatusCode::kNotFound);
    return result.ok();
  }
  std::string Condition(const std::string& name, const std::string& type) {
    const json status = J(name)["status"];
    const json* c = ctrl::FindCondition(status, type);
    return c == nullptr
               ? ""
               : (*c)["status"].get<std::string>() + "/" + (*c)["reason"].get<std::string>();
  }
};

}  // namespace

TEST_CASE("completed indexes format as ranges and parse back") {
  CHECK(job::FormatIndexes({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8");
  CHECK(job::FormatIndexes({}).empty());
  CHECK(job::ParseIndexes("0-2,5,7-8") == std::set<int64_t>{0, 1, 2, 5, 7, 8});
  CHECK(job::ParseIndexes("").empty());
}

TEST_CASE("completions and parallelism defaults") {
  json j = Job("x");
  CHECK(job::Completions(j) == 1);
  CHECK(job::Parallelism(j) == 1);
  j["spec"]["parallelism"] = 3;
  CHECK_FALSE(job::Completions(j).has_value());  // a work queue
  j["spec"]["completions"] = 5;
  CHECK(job::Completions(j) == 5);
}

TEST_CASE("an Indexed pod gets its index as annotation, label, hostname and env") {
  json j = Job("idx", {{"completionMode", "Indexed"}, {"completions", 3}});
  j["metadata"]["uid"] = "u-1";
  json pod = job::PodForJob(j, ctrl::NewControllerRef(j, "batch/v1", "Job"), 2);
  CHECK(pod["metadata"]["annotations"][job::kCompletionIndexAnnotation] == "2");
  CHECK(pod["metadata"]["labels"][job::kCompletionIndexAnnotation] == "2");
  CHECK(pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "idx");
  CHECK(pod["metadata"]["generateName"] == "idx-2-");
  CHECK(pod["spec"]["hostname"] == "idx-2");
  json env = pod["spec"]["containers"][0]["env"][0];
  CHECK(env["name"] == "JOB_COMPLETION_INDEX");
  CHECK(env["valueFrom"]["fieldRef"]["fieldPath"] ==
        "metadata.annotations['batch.kubernetes.io/job-completion-index']");
}

TEST_CASE("a job runs `parallelism` pods until `completions` succeed, then completes") {
  JobFixture f;
  REQUIRE(f.api
              .Create(resources::kJobs, "default",
                      Job("work", {{"completions", 3}, {"parallelism", 2}}))
              .ok());
  REQUIRE(WaitUntil([&] { return f.JobPods("work").size() == 2; }));
  REQUIRE(WaitUntil([&] { return f.Count("work", "active") == 2; }));
  CHECK(f.J("work")["status"].contains("startTime"));
  auto first_pods = f.JobPods("work");
  f.Finish(first_pods[0], "Succeeded");
  f.Finish(first_pods[1], "Succeeded");
  // One completion left: one pod, not two.
  REQUIRE(WaitUntil([&] { return f.Count("work", "succeeded") == 2; }));
  REQUIRE(WaitUntil([&] { return f.JobPods("work").size() == 1; }));
  f.Finish(f.JobPods("work")[0], "Succeeded");
  REQUIRE(WaitUntil([&] { return f.Condition("work", "Complete") == "True/CompletionsReached"; }));
  json status = f.J("work")["status"];
  CHECK(status["succeeded"] == 3);
  CHECK(status.value("active", 0) == 0);
  CHECK(status.contains("completionTime"));
  // The event is recorded after the status write succeeds, so it may come just after the status.
  REQUIRE(WaitUntil([&] { return f.events.WithReason("Completed").size() >= 1; }));
  CHECK(f.events.WithReason("Completed").size() == 1);
  CHECK(f.events.WithReason("SuccessfulCreate").size() == 3);
}

TEST_CASE("failures past backoffLimit fail the job and remove its pods") {
  JobFixture f;
  REQUIRE(f.api
              .Create(resources::kJobs, "default",
                      Job("bad", {{"backoffLimit", 1}, {"parallelism", 1}}))
              .ok());
  REQUIRE(WaitUntil([&] { return f.JobPods("bad").size() == 1; }));
  f.Finish(f.JobPods("bad")[0], "Failed");
  // One failure is within the limit: a replacement.
  REQUIRE(WaitUntil(
      [&] { return f.JobPods("bad").size() == 1 && f.JobPods("bad", "Failed").size() == 1; }));
  CHECK(f.Condition("bad", "Failed").empty());
  f.Finish(f.JobPods("bad")[0], "Failed");
  REQUIRE(WaitUntil([&] { return f.Condition("bad", "Failed") == "True/BackoffLimitExceeded"; }));
  CHECK(f.J("bad")["status"]["failed"] == 2);
  CHECK(f.JobPods("bad").empty());
  const json bad_status = f.J("bad")["status"];
  const json* c = ctrl::FindCondition(bad_status, "Failed");
  CHECK((*c)["message"] == "Job has reached the specified backoff limit");
}

TEST_CASE("activeDeadlineSeconds fails a job that runs too long") {
  JobFixture f(std::chrono::milliseconds(20));
  REQUIRE(
      f.api.Create(resources::kJobs, "default", Job("slow", {{"activeDeadlineSeconds", 30}})).ok());
  REQUIRE(WaitUntil([&] { return f.JobPods("slow").size() == 1; }));
  REQUIRE(WaitUntil([&] { return f.J("slow")["status"].contains("startTime"); }));
  f.clock.Advance(std::chrono::seconds(31));
  REQUIRE(WaitUntil([&] { return f.Condition("slow", "Failed") == "True/DeadlineExceeded"; }));
  REQUIRE(WaitUntil([&] { return f.JobPods("slow").empty(); }));
}

TEST_CASE("a suspended job has no pods until resumed") {
  JobFixture f;
  REQUIRE(f.api.Create(resources::kJobs, "default", Job("later", {{"suspend", true}})).ok());
  REQUIRE(WaitUntil([&] { return f.Condition("later", "Suspended") == "True/JobSuspended"; }));
  CHECK(f.JobPods("later").empty());
  f.Patch(resources::kJobs, "later", {{"spec", {{"suspend", false}}}});
  REQUIRE(WaitUntil([&] { return f.JobPods("later").size() == 1; }));
  REQUIRE(WaitUntil([&] { return f.Condition("later", "Suspended") == "False/JobResumed"; }));
  f.Patch(resources::kJobs, "later", {{"spec", {{"suspend", true}}}});
  REQUIRE(WaitUntil([&] { return f.JobPods("later").empty(); }));
}

TEST_CASE("an Indexed job completes once every index has succeeded") {
  JobFixture f;
  REQUIRE(f.api
              .Create(resources::kJobs, "default",
                      Job("ix",
                          {{"completionMode", "Indexed"}, {"completions", 3}, {"parallelism", 3}}))
              .ok());
  REQUIRE(WaitUntil([&] { return f.JobPods("ix").size() == 3; }));
  std::set<std::string> indexes;
  for (const json& p : f.JobPods("ix")) {
    indexes.insert(
        p["metadata"]["annotations"][job::kCompletionIndexAnnotation].get<std::string>());
  }
  CHECK(indexes == std::set<std::string>{"0", "1", "2"});
  // Index 1 fails: its replacement carries index 1 again.
  for (const json& p : f.JobPods("ix")) {
    std::string i = p["metadata"]["annotations"][job::kCompletionIndexAnnotation];
    f.Finish(p, i == "1" ? "Failed" : "Succeeded");
  }
  REQUIRE(WaitUntil([&] {
    return ctrl::StringField(f.J("ix"), {"status", "completedIndexes"}) == "0,2";
  }));
  REQUIRE(WaitUntil([&] { return f.JobPods("ix").size() == 1; }));
  CHECK(f.JobPods("ix")[0]["metadata"]["annotations"][job::kCompletionIndexAnnotation] == "1");
  f.Finish(f.JobPods("ix")[0], "Succeeded");
  REQUIRE(WaitUntil([&] { return f.Condition("ix", "Complete") == "True/CompletionsReached"; }));
  CHECK(f.J("ix")["status"]["completedIndexes"] == "0-2");
}

TEST_CASE("a work queue completes when one pod succeeded and none is active") {
  JobFixture f;
  REQUIRE(f.api.Create(resources::kJobs, "default", Job("queue", {{"parallelism", 2}})).ok());
  REQUIRE(WaitUntil([&] { return f.JobPods("queue").size() == 2; }));
  auto pods = f.JobPods("queue");
  f.Finish(pods[0], "Succeeded");
  REQUIRE(WaitUntil([&] { return f.Count("queue", "succeeded") == 1; }));
  CHECK(f.JobPods("queue").size() == 1);  // no new pods once one succeeded
  CHECK(f.Condition("queue", "Complete").empty());
  f.Finish(pods[1], "Succeeded");
  REQUIRE(WaitUntil([&] { return f.Condition("queue", "Complete") == "True/CompletionsReached"; }));
}

TEST_CASE("ttlSecondsAfterFinished deletes a finished job when it expires") {
  JobFixture f(std::chrono::milliseconds(20));
  orch::TtlControllerOptions ttl;
  ttl.now = f.clock.Func();
  f.Add(orch::NewTtlAfterFinishedController(f.context, ttl));
  REQUIRE(f.api.Create(resources::kJobs, "default", Job("brief", {{"ttlSecondsAfterFinished", 60}}))
              .ok());
  REQUIRE(WaitUntil([&] { return f.JobPods("brief").size() == 1; }));
  f.Finish(f.JobPods("brief")[0], "Succeeded");
  REQUIRE(WaitUntil([&] { return !f.Condition("brief", "Complete").empty(); }));
  CHECK(f.api.Get(resources::kJobs, "default", "brief").ok());
  f.clock.Advance(std::chrono::seconds(61));
  // The controller's timer runs on the real clock; a change to the job makes it look again.
  f.Patch(resources::kJobs, "brief", {{"metadata", {{"labels", {{"touched", "yes"}}}}}});
  // Foreground deletion: the job waits for the collector, which is not running here, so it is
  // marked for deletion with the foregroundDeletion finalizer.
  REQUIRE(WaitUntil([&] {
    auto j = f.api.Get(resources::kJobs, "default", "brief");
    return !j.ok() || ctrl::IsBeingDeleted(*j);
  }));
}

namespace {
json FailedPod(int64_t exit_code, json conditions = json::array()) {
  return {{"metadata", {{"name", "p"}, {"namespace", "default"}}},
          {"status",
           {{"phase", "Failed"},
            {"conditions", conditions},
            {"containerStatuses",
             {{{"name", "ok"}, {"state", {{"terminated", {{"exitCode", 0}}}}}},
              {{"name", "c"}, {"state", {{"terminated", {{"exitCode", exit_code}}}}}}}}}}};
}
json PolicyJob(const std::string& name) {
  return Job(name,
             {{"backoffLimit", 0},
              {"podFailurePolicy",
               {{"rules",
                 {{{"action", "Ignore"}, {"onPodConditions", {{{"type", "DisruptionTarget"}}}}},
                  {{"action", "FailJob"}, {"onExitCodes", {{"operator", "In"}, {"values", {42}}}}},
                  {{"action", "Count"},
                   {"onExitCodes",
                    {{"containerName", "c"}, {"operator", "NotIn"}, {"values", {7}}}}}}}}}});
}
}  // namespace

TEST_CASE("podFailurePolicy rules match exit codes and pod conditions in order") {
  const json j = PolicyJob("pfp");
  auto fail_job = job::MatchPodFailurePolicy(j, FailedPod(42));
  REQUIRE(fail_job);
  CHECK(fail_job->action == "FailJob");
  CHECK(fail_job->message ==
        "Container c for pod default/p failed with exit code 42 matching FailJob rule at index 1");
  auto disrupted = job::MatchPodFailurePolicy(
      j, FailedPod(42, {{{"type", "DisruptionTarget"}, {"status", "True"}}}));
  REQUIRE(disrupted);
  CHECK(disrupted->action == "Ignore");
  CHECK(disrupted->message ==
        "Pod default/p has condition DisruptionTarget matching Ignore rule at index 0");
  auto counted = job::MatchPodFailurePolicy(j, FailedPod(3));
  REQUIRE(counted);
  CHECK(counted->action == "Count");
  // Exit code 7 is excluded by NotIn, and the succeeded container matches nothing.
  CHECK_FALSE(job::MatchPodFailurePolicy(j, FailedPod(7)));
  CHECK_FALSE(job::MatchPodFailurePolicy(Job("plain"), FailedPod(42)));
}

TEST_CASE("podFailurePolicy: Ignore does not count a failure, FailJob fails the job at once") {
  JobFixture f;
  REQUIRE(f.api.Create(resources::kJobs, "default", PolicyJob("pfp")).ok());
  REQUIRE(WaitUntil([&] { return f.JobPods("pfp").size() == 1; }));
  auto finish = [&](int64_t code, json conditions) {
    json pod = f.JobPods("pfp")[0];
    json status = FailedPod(code, std::move(conditions))["status"];
    REQUIRE(f.api
                .Patch(resources::kPods, "default", ctrl::NameOf(pod), orch::PatchType::kMerge,
                       json{{"status", status}}.dump(), "status")
                .ok());
  };
  // A disrupted pod: replaced although backoffLimit is 0, and not counted as failed.
  finish(1, {{{"type", "DisruptionTarget"}, {"status", "True"}}});
  REQUIRE(WaitUntil(
      [&] { return f.JobPods("pfp").size() == 1 && f.JobPods("pfp", "Failed").size() == 1; }));
  CHECK(f.Condition("pfp", "Failed").empty());
  CHECK(f.Count("pfp", "failed") == 0);
  // Exit code 42: the job fails with the rule's reason and message.
  finish(42, json::array());
  REQUIRE(WaitUntil([&] { return f.Condition("pfp", "Failed") == "True/PodFailurePolicy"; }));
  const json status = f.J("pfp")["status"];
  CHECK((*ctrl::FindCondition(status, "Failed"))["message"].get<std::string>().find(
            "failed with exit code 42 matching FailJob rule at index 1") != std::string::npos);
  CHECK(f.JobPods("pfp").empty());
}

TEST_CASE("tracking finalizer: a finished pod deleted at once is still counted") {
  JobFixture f;
  REQUIRE(f.api
              .Create(resources::kJobs, "default",
                      Job("track", {{"completions", 2}, {"parallelism", 2}}))
              .ok());
  REQUIRE(WaitUntil([&] { return f.JobPods("track").size() == 2; }));
  for (const json& p : f.JobPods("track")) {
    CHECK(job::HasTrackingFinalizer(p));
  }
  REQUIRE(WaitUntil([&] { return f.J("track")["status"].contains("uncountedTerminatedPods"); }));
  // Both pods finish and are deleted right away (as a pod GC or a user might): the finalizer
  // keeps them until the job has recorded them.
  for (const json& p : f.JobPods("track")) {
    f.Finish(p, "Succeeded");
    REQUIRE(f.api.Delete(resources::kPods, "default", ctrl::NameOf(p)).ok());
  }
  REQUIRE(WaitUntil([&] { return f.Condition("track", "Complete") == "True/CompletionsReached"; }));
  const json status = f.J("track")["status"];
  CHECK(status["succeeded"] == 2);
  CHECK(status.value("failed", 0) == 0);
  CHECK(ctrl::DropEmpty(status["uncountedTerminatedPods"]).empty());
  REQUIRE(WaitUntil([&] { return f.Pods("job=track").empty(); }));  // released, then gone
}

TEST_CASE("tracking finalizer: a running pod deleted by someone else counts as failed") {
  JobFixture f;
  REQUIRE(f.api.Create(resources::kJobs, "default", Job("evicted", {{"backoffLimit", 3}})).ok());
  REQUIRE(WaitUntil([&] { return f.JobPods("evicted").size() == 1; }));
  const std::string first = ctrl::NameOf(f.JobPods("evicted")[0]);
  REQUIRE(f.api.Delete(resources::kPods, "default", first).ok());
  REQUIRE(WaitUntil([&] { return f.Count("evicted", "failed") == 1; }));
  // Released and gone, and replaced.
  REQUIRE(WaitUntil([&] { return !f.api.Get(resources::kPods, "default", first).ok(); }));
  REQUIRE(WaitUntil([&] {
    auto pods = f.JobPods("evicted");
    return pods.size() == 1 && ctrl::NameOf(pods[0]) != first;
  }));
  CHECK(f.Condition("evicted", "Failed").empty());
}

TEST_CASE("tracking finalizer: pods the job deletes itself are not failures") {
  JobFixture f;
  REQUIRE(f.api.Create(resources::kJobs, "default", Job("shrink", {{"parallelism", 3}})).ok());
  REQUIRE(WaitUntil([&] { return f.JobPods("shrink").size() == 3; }));
  f.Patch(resources::kJobs, "shrink", {{"spec", {{"parallelism", 1}}}});
  REQUIRE(WaitUntil([&] { return f.Pods("job=shrink").size() == 1; }));
  CHECK(f.Count("shrink", "failed") == 0);
}

TEST_CASE("tracking finalizer: the pods of a deleted job are released") {
  JobFixture f;
  REQUIRE(f.api.Create(resources::kJobs, "default", Job("gone", {{"parallelism", 2}})).ok());
  REQUIRE(WaitUntil([&] { return f.JobPods("gone").size() == 2; }));
  REQUIRE(f.api.Delete(resources::kJobs, "default", "gone").ok());
  REQUIRE(WaitUntil([&] {
    auto pods = f.Pods("job=gone");
    return pods.size() == 2 && std::none_of(pods.begin(), pods.end(), [](const json& p) {
             return job::HasTrackingFinalizer(p);
           });
  }));
}

TEST_CASE("a job started without tracking keeps counting the pods it finds") {
  json j = Job("old");
  CHECK(job::TracksWithFinalizers(j));
  j["status"] = {{"startTime", "2026-01-01T00:00:00Z"}};
  CHECK_FALSE(job::TracksWithFinalizers(j));
  json ref = ctrl::NewControllerRef(j, "batch/v1", "Job");
  CHECK_FALSE(job::HasTrackingFinalizer(job::PodForJob(j, ref, std::nullopt)));
  j["status"]["uncountedTerminatedPods"] = json::object();
  CHECK(job::TracksWithFinalizers(j));
  json pod = job::PodForJob(j, ref, std::nullopt);
  CHECK(job::HasTrackingFinalizer(pod));
  pod["metadata"]["resourceVersion"] = "7";
  json patch = job::RemoveTrackingFinalizerPatch(pod);
  CHECK(patch["metadata"]["finalizers"].is_null());
  CHECK(patch["metadata"]["resourceVersion"] == "7");
}

TEST_CASE(
    "IsPodFailedForJob: deleted before success counts, unless only failed pods are replaced") {
  json j = Job("x");
  json pod = {{"metadata", {{"deletionTimestamp", "2026-01-01T00:00:00Z"}}},
              {"status", {{"phase", "Running"}}}};
  CHECK(job::IsPodFailedForJob(pod, j));
  pod["status"]["phase"] = "Succeeded";
  CHECK_FALSE(job::IsPodFailedForJob(pod, j));
  pod["status"]["phase"] = "Running";
  j["spec"]["podReplacementPolicy"] = "Failed";
  CHECK_FALSE(job::IsPodFailedForJob(pod, j));
  pod["status"]["phase"] = "Failed";
  CHECK(job::IsPodFailedForJob(pod, j));
}
