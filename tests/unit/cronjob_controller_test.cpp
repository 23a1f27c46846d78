// Cron schedules (syntax, day-of-month/day-of-week rules, time zones and DST) and the CronJob
// controller against the fake API with a hand-moved clock: runs, names, concurrency policies,
// suspend, starting deadlines and history limits.
#include "cronjob_controller.h"

#include <catch2/catch.hpp>

#include "controller_test_util.h"
#include "job_controller.h"

// Time helpers looked up from inside orch::ctrl: they are moving from there to orch
// (orch/timestamps.h), and unqualified lookup finds them in either place.
namespace orch::ctrl::test_time {
inline std::optional<TimePoint> Parse(std::string_view text) {
  return ParseTime(text);
}
inline std::string Format(TimePoint t) {
  return FormatTime(t);
}
}  // namespace orch::ctrl::test_time

namespace {

using json = nlohmann::json;
using orch::testing::ControllerFixture;
using orch::testing::WaitUntil;
namespace ctrl = orch::ctrl;
namespace cron = orch::cron;
namespace resources = orch::resources;

ctrl::TimePoint T(const char* text) {
  auto t = orch::ctrl::test_time::Parse(text);
  REQUIRE(t);
  return *t;
}

std::string Next(const char* schedule, const char* after, const char* zone = "UTC") {
  auto s = cron::Schedule::Parse(schedule);
  REQUIRE(s.ok());
  auto z = cron::TimeZone::Load(zone);
  REQUIRE(z.ok());
  auto next = s->Next(T(after), **z);
  return next ? orch::ctrl::test_time::Format(*next) : "none";
}

}  // namespace

TEST_CASE("cron syntax") {
  CHECK(Next("*/15 * * * *", "2024-01-01T10:07:00Z") == "2024-01-01T10:15:00Z");
  CHECK(Next("0 9 * * MON-FRI", "2024-01-05T09:00:00Z") == "2024-01-08T09:00:00Z");
  CHECK(Next("30 2 1 jan,jul *", "2024-01-01T03:00:00Z") == "2024-07-01T02:30:00Z");
  CHECK(Next("5-10/5 * * * *", "2024-01-01T10:05:00Z") == "2024-01-01T10:10:00Z");
  CHECK(Next("@hourly", "2024-01-01T10:00:00Z") == "2024-01-01T11:00:00Z");
  CHECK(Next("@daily", "2024-01-01T10:00:00Z") == "2024-01-02T00:00:00Z");
  CHECK(Next("@weekly", "2024-01-01T10:00:00Z") == "2024-01-07T00:00:00Z");
  CHECK(Next("@monthly", "2024-01-31T10:00:00Z") == "2024-02-01T00:00:00Z");
  CHECK(Next("@yearly", "2024-03-01T00:00:00Z") == "2025-01-01T00:00:00Z");
  CHECK(Next("0 0 29 2 *", "2024-03-01T00:00:00Z") == "2028-02-29T00:00:00Z");
  CHECK(Next("0 0 30 2 *", "2024-03-01T00:00:00Z") == "none");
  // Both day fields restricted: either matches (the 13th, or a Friday).
  CHECK(Next("0 0 13 * 5", "2024-01-01T00:00:00Z") == "2024-01-05T00:00:00Z");
  CHECK(Next("0 0 13 * *", "2024-01-01T00:00:00Z") == "2024-01-13T00:00:00Z");
  for (const char* bad : {"* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *",
                          "5-1 * * * *", "@every 5m", "x * * * *", "*/0 * * * *"}) {
    INFO(bad);
    CHECK_FALSE(cron::Schedule::Parse(bad).ok());
  }
}

TEST_CASE("time zones from the tz database, DST gaps and repeats") {
  // 09:00 in Berlin is 08:00 UTC in winter, 07:00 UTC in summer.
  CHECK(Next("0 9 * * *", "2024-01-10T12:00:00Z", "Europe/Berlin") == "2024-01-11T08:00:00Z");
  CHECK(Next("0 9 * * *", "2024-07-10T12:00:00Z", "Europe/Berlin") == "2024-07-11T07:00:00Z");
  // 02:30 does not exist in New York on 2024-03-10: the next one is the day after.
  CHECK(Next("30 2 * * *", "2024-03-09T12:00:00Z", "America/New_York") == "2024-03-11T06:30:00Z");
  // 01:30 happens twice on 2024-11-03: the first (EDT, 05:30 UTC) fires.
  CHECK(Next("30 1 * * *", "2024-11-02T12:00:00Z", "America/New_York") == "2024-11-03T05:30:00Z");
  // Beyond the file's transitions the POSIX footer rule applies.
  CHECK(Next("0 12 1 7 *", "2090-01-01T00:00:00Z", "America/New_York") == "2090-07-01T16:00:00Z");
  CHECK(Next("0 12 1 1 *", "2090-01-01T00:00:00Z", "America/New_York") == "2090-01-01T17:00:00Z");
  CHECK(cron::TimeZone::Load("Mars/Olympus").status().code() == orch::StatusCode::kNotFound);
  CHECK_FALSE(cron::TimeZone::Load("../etc/passwd").ok());
}

TEST_CASE("job names and the most recent schedule") {
  CHECK(ctrl::cronjob::JobName("backup", T("2024-01-01T00:00:00Z")) == "backup-28401120");
  json cj = {{"metadata", {{"creationTimestamp", "2024-01-01T00:00:00Z"}}},
             {"spec", {{"schedule", "*/10 * * * *"}}}};
  auto s = cron::Schedule::Parse("*/10 * * * *");
  auto utc = cron::TimeZone::Utc();
  auto due = ctrl::cronjob::MostRecentSchedule(cj, *s, *utc, T("2024-01-01T00:35:00Z"));
  REQUIRE(due.scheduled);
  CHECK(orch::ctrl::test_time::Format(*due.scheduled) == "2024-01-01T00:30:00Z");
  CHECK(due.missed == 2);
  CHECK(orch::ctrl::test_time::Format(*due.next) == "2024-01-01T00:40:00Z");
  cj["spec"]["startingDeadlineSeconds"] = 60;
  due = ctrl::cronjob::MostRecentSchedule(cj, *s, *utc, T("2024-01-01T00:35:00Z"));
  CHECK_FALSE(due.scheduled);
}

namespace {

struct CronFixture : ControllerFixture {
  CronFixture() {
    orch::CronJobControllerOptions options;
    options.now = clock.Func();
    options.resync_period = std::chrono::milliseconds(20);
    Add(orch::NewCronJobController(context, options));
  }
  json CronJob(const std::string& name, json spec = json::object()) {
    json cj = {
        {"apiVersion", "batch/v1"},
        {"kind", "CronJob"},
        {"metadata", {{"name", name}, {"namespace", "default"}}},
        {"spec",
         {{"schedule", "* * * * *"},
          {"concurrencyPolicy", "Allow"},
          {"successfulJobsHistoryLimit", 3},
          {"failedJobsHistoryLimit", 1},
          {"jobTemplate",
           {{"metadata", {{"labels", {{"cron", name}}}}},
            {"spec", {{"template", orch::testing::PodTemplate({{"a", "b"}}, "busybox")}}}}}}}};
    cj["spec"].merge_patch(spec);
    auto created = api.Create(resources::kCronJobs, "default", cj);
    REQUIRE(created.ok());
    return *created;
  }
  std::vector<json> Jobs(const std::string& cron) {
    return List(resources::kJobs, "default", "cron=" + cron);
  }
  void FinishJob(const json& j, const std::string& type) {
    json status = {{"conditions", {{{"type", type}, {"status", "True"}}}},
                   {"startTime", j["metadata"]["creationTimestamp"]}};
    if (type == "Complete") status["completionTime"] = orch::ctrl::test_time::Format(clock.Now());
    Patch(resources::kJobs, ctrl::NameOf(j), {{"status", status}}, "status");
  }
};

}  // namespace

TEST_CASE("a CronJob starts a job per scheduled minute and records it") {
  CronFixture f;
  f.CronJob("tick");
  CHECK_FALSE(WaitUntil([&] { return !f.Jobs("tick").empty(); }, std::chrono::milliseconds(200)));
  f.clock.Advance(std::chrono::seconds(61));
  REQUIRE(WaitUntil([&] { return f.Jobs("tick").size() == 1; }));
  json j = f.Jobs("tick")[0];
  json cj = f.Get(resources::kCronJobs, "tick");
  auto last = orch::ctrl::test_time::Parse(cj["status"].value("lastScheduleTime", ""));
  REQUIRE(last);
  CHECK(ctrl::NameOf(j) == ctrl::cronjob::JobName("tick", *last));
  CHECK(j["metadata"]["annotations"].contains(ctrl::cronjob::kScheduledTimestampAnnotation));
  CHECK((*ctrl::GetControllerOf(j))["kind"] == "CronJob");
  REQUIRE(WaitUntil(
      [&] { return f.Get(resources::kCronJobs, "tick")["status"]["active"].size() == 1; }));
  f.FinishJob(j, "Complete");
  REQUIRE(WaitUntil([&] {
    json status = f.Get(resources::kCronJobs, "tick")["status"];
    return !status.contains("active") && status.contains("lastSuccessfulTime");
  }));
}

TEST_CASE("Forbid skips a run while one is active; Replace replaces it") {
  CronFixture f;
  f.CronJob("solo", {{"concurrencyPolicy", "Forbid"}});
  f.clock.Advance(std::chrono::seconds(61));
  REQUIRE(WaitUntil([&] { return f.Jobs("solo").size() == 1; }));
  f.clock.Advance(std::chrono::seconds(60));
  CHECK_FALSE(WaitUntil([&] { return f.Jobs("solo").size() > 1; }, std::chrono::milliseconds(300)));

  f.Patch(resources::kCronJobs, "solo", {{"spec", {{"concurrencyPolicy", "Replace"}}}});
  std::string first = ctrl::NameOf(f.Jobs("solo")[0]);
  f.clock.Advance(std::chrono::seconds(60));
  REQUIRE(WaitUntil([&] {
    auto jobs = f.Jobs("solo");
    return jobs.size() == 1 && ctrl::NameOf(jobs[0]) != first;
  }));
}

TEST_CASE("a suspended CronJob starts nothing; history limits prune finished jobs") {
  CronFixture f;
  f.CronJob("paused", {{"suspend", true}});
  f.CronJob("hist", {{"successfulJobsHistoryLimit", 1}, {"failedJobsHistoryLimit", 0}});
  for (int i = 0; i < 3; ++i) {
    f.clock.Advance(std::chrono::seconds(60));
    REQUIRE(WaitUntil([&] {
      for (const json& j : f.Jobs("hist")) {
        if (!orch::ctrl::job::IsFinished(j)) return true;
      }
      return false;
    }));
    for (const json& j : f.Jobs("hist")) {
      if (!orch::ctrl::job::IsFinished(j)) f.FinishJob(j, i == 1 ? "Failed" : "Complete");
    }
  }
  REQUIRE(WaitUntil([&] { return f.Jobs("hist").size() == 1; }));
  const json last = f.Jobs("hist")[0];
  CHECK(orch::ctrl::FindCondition(last["status"], "Complete") != nullptr);
  CHECK(f.Jobs("paused").empty());
}

TEST_CASE("a job made by hand from a CronJob is not active and does not hold back Forbid") {
  CronFixture f;
  json cj = f.CronJob("byhand", {{"concurrencyPolicy", "Forbid"}});
  // What `kubectl create job --from=cronjob/byhand` makes: the template, owned by the CronJob,
  // without the scheduled-timestamp annotation.
  json manual = {{"apiVersion", "batch/v1"},
                 {"kind", "Job"},
                 {"metadata",
                  {{"name", "manual"},
                   {"namespace", "default"},
                   {"labels", {{"cron", "byhand"}}},
                   {"annotations", {{"cronjob.kubernetes.io/instantiate", "manual"}}},
                   {"ownerReferences", {ctrl::NewControllerRef(cj, "batch/v1", "CronJob")}}}},
                 {"spec", cj["spec"]["jobTemplate"]["spec"]}};
  REQUIRE(f.api.Create(resources::kJobs, "default", manual).ok());
  f.clock.Advance(std::chrono::seconds(61));
  REQUIRE(WaitUntil([&] { return f.Jobs("byhand").size() == 2; }));
  REQUIRE(WaitUntil([&] {
    json active = f.Get(resources::kCronJobs, "byhand")["status"]["active"];
    return active.size() == 1 && active[0]["name"] != "manual";
  }));
}
