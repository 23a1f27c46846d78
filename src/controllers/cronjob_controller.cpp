// The CronJob controller (cronjob_controller.h). Each sync computes the most recent scheduled
// time, starts its job if due (by name, so a retried sync never starts a run twice), and then
// waits on the queue until the next scheduled time instead of polling.
#include "cronjob_controller.h"

#include <fmt/format.h>

#include <algorithm>

#include "job_controller.h"
#include "orch/log.h"

namespace orch {
namespace ctrl::cronjob {

std::string JobName(const std::string& cronjob, TimePoint scheduled) {
  auto minutes = std::chrono::duration_cast<std::chrono::minutes>(scheduled.time_since_epoch());
  return fmt::format("{}-{}", cronjob, minutes.count());
}

Due MostRecentSchedule(const json& cronjob, const cron::Schedule& schedule,
                       const cron::TimeZone& zone, TimePoint now) {
  Due due;
  auto earliest = ParseTime(StringField(cronjob, {"status", "lastScheduleTime"}));
  if (!earliest) earliest = ParseTime(StringField(cronjob, {"metadata", "creationTimestamp"}));
  if (!earliest) earliest = now;
  const json& deadline = Field(cronjob, {"spec", "startingDeadlineSeconds"});
  if (deadline.is_number_integer()) {
    TimePoint floor = now - std::chrono::seconds(deadline.get<int64_t>());
    if (floor > *earliest) earliest = floor;
  }
  TimePoint t = *earliest;
  // Walk the schedule up to now; a pathological backlog is only counted, not walked forever.
  for (int guard = 0; guard < 100000; ++guard) {
    auto next = schedule.Next(t, zone);
    if (!next) break;
    if (*next > now) {
      due.next = next;
      break;
    }
    if (due.scheduled) ++due.missed;
    due.scheduled = next;
    t = *next;
  }
  return due;
}

}  // namespace ctrl::cronjob

namespace {

using namespace ctrl;           // NOLINT(google-build-using-namespace): the helpers of this folder
using namespace ctrl::cronjob;  // NOLINT(google-build-using-namespace)

constexpr char kApiVersion[] = "batch/v1";
constexpr char kKind[] = "CronJob";

json JobRef(const json& job) {
  return {{"apiVersion", kApiVersion},
          {"kind", "Job"},
          {"name", NameOf(job)},
          {"namespace", NamespaceOf(job)},
          {"uid", UidOf(job)},
          {"resourceVersion", StringField(job, {"metadata", "resourceVersion"})}};
}

class CronJobController : public Component {
 public:
  CronJobController(ControllerContext& context, CronJobControllerOptions options)
      : context_(context),
        options_(std::move(options)),
        cronjobs_(context.informers.For(resources::kCronJobs)),
        jobs_(context.informers.For(resources::kJobs)),
        loop_(
            "cronjob", context.informers, context.workers, options_.resync_period,
            [this] { return InformerKeys(cronjobs_); },
            [this](const std::string& key) { return Sync(key); }) {
    AddControllerIndex(jobs_);
  }

  std::string_view Name() const override { return "cronjob"; }

  Status Start() override {
    cronjobs_.AddHandler({
        [this](const ObjectPtr& c) { loop_.Add(ObjectKey(*c)); },
        [this](const ObjectPtr& old_c, const ObjectPtr& c) {
          // Status writes are ours; only spec changes (schedule, suspend) need a look.
          if (Field(*old_c, {"spec"}) != Field(*c, {"spec"}) || UidOf(*old_c) != UidOf(*c)) {
            loop_.Add(ObjectKey(*c));
          }
        },
        nullptr,
    });
    auto enqueue_owner = [this](const json& job) {
      if (ObjectPtr c = ControllerOfKind(cronjobs_, job, kKind)) loop_.Add(ObjectKey(*c));
    };
    jobs_.AddHandler({
        [enqueue_owner](const ObjectPtr& j) { enqueue_owner(*j); },
        [enqueue_owner](const ObjectPtr&, const ObjectPtr& j) { enqueue_owner(*j); },
        [enqueue_owner](const ObjectPtr& j) { enqueue_owner(*j); },
    });
    loop_.Start();
    return Status::Ok();
  }

  void Stop() override { loop_.Stop(); }

 private:
  void Event(const json& cj, const char* type, const char* reason, const std::string& message) {
    context_.events.Record(EventRef(cj, kApiVersion, kKind), type, reason, message);
  }

  Status Sync(const std::string& key) {
    auto [ns, name] = SplitObjectKey(key);
    ObjectPtr cj_ptr = cronjobs_.Get(ns, name);
    if (!cj_ptr) return Status::Ok();
    const json& cj = *cj_ptr;
    const TimePoint now = options_.now();

    // The jobs it controls, and what they say about the status.
    std::vector<ObjectPtr> jobs;
    for (ObjectPtr& j : jobs_.ByIndex(kControllerIndex, UidOf(cj))) jobs.push_back(std::move(j));
    json status = Field(cj, {"status"}).is_object() ? cj["status"] : json::object();
    const json old_status = status;
    json active = json::array();
    std::set<std::string> listed;
    for (const json& ref : Field(status, {"active"})) listed.insert(StringField(ref, {"uid"}));
    std::optional<TimePoint> last_success = ParseTime(StringField(status, {"lastSuccessfulTime"}));
    for (const ObjectPtr& j : jobs) {
      std::string finished;
      if (!job::IsFinished(*j, &finished)) {
        if (IsBeingDeleted(*j)) continue;
        // An unlisted job counts if it is one of the scheduled runs (a status write was lost);
        // one made by hand (`kubectl create job --from=cronjob/...`) is not active, as upstream,
        // so that it neither shows in ACTIVE nor holds back a Forbid schedule.
        if (listed.count(UidOf(*j)) != 0 ||
            Field(*j, {"metadata", "annotations"}).contains(kScheduledTimestampAnnotation)) {
          active.push_back(JobRef(*j));
        } else {
          Event(cj, "Warning", "UnexpectedJob",
                fmt::format("Saw a job that the controller did not create or forgot: {}",
                            NameOf(*j)));
        }
        continue;
      }
      if (listed.count(UidOf(*j)) != 0) {
        Event(cj, "Normal", "SawCompletedJob",
              fmt::format("Saw completed job: {}, status: {}", NameOf(*j), finished));
      }
      if (finished == "Complete") {
        auto t = ParseTime(StringField(*j, {"status", "completionTime"}));
        if (t && (!last_success || *t > *last_success)) last_success = t;
      }
    }
    // Jobs we started that the cache has not shown yet stay listed.
    for (const json& ref : Field(status, {"active"})) {
      bool known = std::any_of(jobs.begin(), jobs.end(), [&](const ObjectPtr& j) {
        return UidOf(*j) == StringField(ref, {"uid"});
      });
      if (!known) {
        auto live = context_.client.Get(resources::kJobs, ns, StringField(ref, {"name"}));
        if (live.ok() && UidOf(*live) == StringField(ref, {"uid"}) && !job::IsFinished(*live)) {
          active.push_back(ref);
        }
      }
    }
    status["active"] = active;
    if (last_success) status["lastSuccessfulTime"] = FormatTime(*last_success);

    Status result = Status::Ok();
    if (!IsBeingDeleted(cj)) result = Schedule(cj, key, now, status, jobs);
    if (status["active"].empty()) status.erase("active");
    if (Status s = UpdateStatus(cj, old_status, status); !s.ok()) return s;
    if (!result.ok()) return result;
    return CleanUpHistory(cj, jobs);
  }

  // Starts the run that is due, if any, and queues the next look for the next scheduled time.
  Status Schedule(const json& cj, const std::string& key, TimePoint now, json& status,
                  const std::vector<ObjectPtr>& jobs) {
    auto schedule = cron::Schedule::Parse(StringField(cj, {"spec", "schedule"}));
    if (!schedule.ok()) {
      Event(cj, "Warning", "UnparseableSchedule",
            fmt::format("unparseable schedule: \"{}\" : {}", StringField(cj, {"spec", "schedule"}),
                        schedule.status().message()));
      return Status::Ok();  // a new spec brings it back
    }
    const std::string tz_name = StringField(cj, {"spec", "timeZone"});
    auto zone = cron::TimeZone::Load(tz_name, options_.zoneinfo_dir);
    if (!zone.ok()) {
      Event(cj, "Warning", "UnknownTimeZone",
            fmt::format("invalid timeZone: \"{}\": {}", tz_name, zone.status().message()));
      return Status::Ok();
    }
    if (BoolField(cj, {"spec", "suspend"})) return Status::Ok();

    Due due = MostRecentSchedule(cj, *schedule, **zone, now);
    if (due.next) {
      loop_.AddAfter(key, std::chrono::duration_cast<std::chrono::milliseconds>(*due.next - now) +
                              std::chrono::milliseconds(100));
    }
    if (!due.scheduled) return Status::Ok();
    if (due.missed > 100) {
      Event(cj, "Warning", "TooManyMissedTimes",
            "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check "
            "clock skew");
    }
    const TimePoint scheduled = *due.scheduled;
    const json& deadline = Field(cj, {"spec", "startingDeadlineSeconds"});
    if (deadline.is_number_integer() &&
        scheduled + std::chrono::seconds(deadline.get<int64_t>()) < now) {
      Event(cj, "Warning", "MissSchedule",
            fmt::format("Missed scheduled time to start a job: {}", FormatTime(scheduled)));
      return Status::Ok();
    }
    const std::string job_name = JobName(NameOf(cj), scheduled);
    for (const ObjectPtr& j : jobs) {
      if (NameOf(*j) == job_name) return Status::Ok();  // this run has started already
    }
    for (const json& ref : Field(status, {"active"})) {
      if (StringField(ref, {"name"}) == job_name) return Status::Ok();
    }
    const std::string policy = StringField(cj, {"spec", "concurrencyPolicy"}, "Allow");
    if (policy == "Forbid" && !status["active"].empty()) {
      log::Info("cronjob", "{}: not starting {}: a job is still active (Forbid)", key, job_name);
      return Status::Ok();
    }
    if (policy == "Replace") {
      for (const json& ref : status["active"]) {
        if (Status s = DeleteJob(cj, StringField(ref, {"name"}), StringField(ref, {"uid"}));
            !s.ok()) {
          return s;
        }
      }
      status["active"] = json::array();
    }

    json job = {{"apiVersion", kApiVersion},
                {"kind", "Job"},
                {"metadata",
                 {{"name", job_name},
                  {"namespace", NamespaceOf(cj)},
                  {"ownerReferences", json::array({NewControllerRef(cj, kApiVersion, kKind)})}}},
                {"spec", Field(cj, {"spec", "jobTemplate", "spec"})}};
    const json& tmpl_meta = Field(cj, {"spec", "jobTemplate", "metadata"});
    for (const char* field : {"labels", "annotations"}) {
      if (tmpl_meta.contains(field)) job["metadata"][field] = tmpl_meta[field];
    }
    // The scheduled time in the CronJob's zone, as upstream annotates it.
    const auto zone_offset = std::chrono::seconds((*zone)->OffsetAt(
        std::chrono::duration_cast<std::chrono::seconds>(scheduled.time_since_epoch()).count()));
    std::string stamp = FormatTime(scheduled + zone_offset);
    if (zone_offset.count() != 0) {
      int64_t minutes = zone_offset.count() / 60;
      stamp = fmt::format("{}{}{:02}:{:02}", stamp.substr(0, stamp.size() - 1),
                          minutes < 0 ? '-' : '+', std::abs(minutes) / 60, std::abs(minutes) % 60);
    }
    job["metadata"]["annotations"][kScheduledTimestampAnnotation] = stamp;
    if (job["spec"].is_null()) job["spec"] = json::object();

    auto created = context_.client.Create(resources::kJobs, NamespaceOf(cj), job);
    if (!created.ok()) {
      if (created.status().code() == StatusCode::kAlreadyExists) {
        // Started by an earlier sync whose status write was lost.
        status["lastScheduleTime"] = FormatTime(scheduled);
        return Status::Ok();
      }
      Event(cj, "Warning", "FailedCreate",
            fmt::format("Error creating job: {}", created.status().message()));
      return created.status();
    }
    Event(cj, "Normal", "SuccessfulCreate", fmt::format("Created job {}", job_name));
    status["active"].push_back(JobRef(*created));
    status["lastScheduleTime"] = FormatTime(scheduled);
    return Status::Ok();
  }

  Status DeleteJob(const json& cj, const std::string& name, const std::string& uid) {
    DeleteOptions options;
    options.propagation_policy = "Background";
    options.precondition_uid = uid;
    auto deleted = context_.client.Delete(resources::kJobs, NamespaceOf(cj), name, options);
    if (!deleted.ok() && deleted.status().code() != StatusCode::kNotFound) {
      Event(cj, "Warning", "FailedDelete",
            fmt::format("Deleted job: {}", deleted.status().message()));
      return deleted.status();
    }
    Event(cj, "Normal", "SuccessfulDelete", fmt::format("Deleted job {}", name));
    return Status::Ok();
  }

  // Finished jobs beyond successfulJobsHistoryLimit / failedJobsHistoryLimit go, oldest first.
  Status CleanUpHistory(const json& cj, const std::vector<ObjectPtr>& jobs) {
    if (IsBeingDeleted(cj)) return Status::Ok();
    std::vector<ObjectPtr> succeeded, failed;
    for (const ObjectPtr& j : jobs) {
      std::string type;
      if (IsBeingDeleted(*j) || !job::IsFinished(*j, &type)) continue;
      (type == "Complete" ? succeeded : failed).push_back(j);
    }
    Status first = Status::Ok();
    auto prune = [&](std::vector<ObjectPtr>& list, const json& limit_json) {
      if (!limit_json.is_number_integer()) return;
      const size_t limit = static_cast<size_t>(std::max<int64_t>(0, limit_json.get<int64_t>()));
      if (list.size() <= limit) return;
      std::sort(list.begin(), list.end(), [](const ObjectPtr& a, const ObjectPtr& b) {
        auto ta = ParseTime(StringField(*a, {"status", "startTime"}));
        auto tb = ParseTime(StringField(*b, {"status", "startTime"}));
        if (!ta) ta = ParseTime(StringField(*a, {"metadata", "creationTimestamp"}));
        if (!tb) tb = ParseTime(StringField(*b, {"metadata", "creationTimestamp"}));
        if (ta != tb) return ta < tb;
        return NameOf(*a) < NameOf(*b);
      });
      for (size_t i = 0; i + limit < list.size(); ++i) {
        Status s = DeleteJob(cj, NameOf(*list[i]), UidOf(*list[i]));
        if (!s.ok() && first.ok()) first = s;
      }
    };
    prune(succeeded, Field(cj, {"spec", "successfulJobsHistoryLimit"}));
    prune(failed, Field(cj, {"spec", "failedJobsHistoryLimit"}));
    return first;
  }

  Status UpdateStatus(const json& cj, const json& old_status, const json& status) {
    if (DropEmpty(old_status) == DropEmpty(status)) return Status::Ok();
    json next = cj;
    next["status"] = status;
    auto written = context_.client.Update(resources::kCronJobs, NamespaceOf(cj), next, "status");
    if (written.ok()) return Status::Ok();
    StatusCode code = written.status().code();
    if (code == StatusCode::kNotFound) return Status::Ok();
    return written.status();  // a conflict retries: the run it records must not be forgotten
  }

  ControllerContext& context_;
  const CronJobControllerOptions options_;
  Informer& cronjobs_;
  Informer& jobs_;
  ControllerLoop loop_;
};

}  // namespace

std::unique_ptr<Component> NewCronJobController(ControllerContext& context) {
  return NewCronJobController(context, CronJobControllerOptions{});
}

std::unique_ptr<Component> NewCronJobController(ControllerContext& context,
                                                CronJobControllerOptions options) {
  return std::make_unique<CronJobController>(context, std::move(options));
}

}  // namespace orch
