// The CronJob controller: creates a Job from spec.jobTemplate at each scheduled time (in
// spec.timeZone), honouring concurrencyPolicy, suspend and startingDeadlineSeconds, keeps
// status.active/lastScheduleTime/lastSuccessfulTime and prunes finished jobs past the limits.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "controller_util.h"
#include "orch/cron.h"
#include "orch/component.h"
#include "orch/controllers.h"

namespace orch {

struct CronJobControllerOptions {
  ctrl::NowFunc now = ctrl::SystemNow;
  std::string zoneinfo_dir = "/usr/share/zoneinfo";
  std::chrono::milliseconds resync_period = std::chrono::minutes(5);
};

// The factory of the AllControllers() table ("cronjob").
std::unique_ptr<Component> NewCronJobController(ControllerContext& context);
std::unique_ptr<Component> NewCronJobController(ControllerContext& context,
                                                CronJobControllerOptions options);

namespace ctrl::cronjob {

inline constexpr char kScheduledTimestampAnnotation[] =
    "batch.kubernetes.io/cronjob-scheduled-timestamp";

// "<cronjob>-<scheduled time in minutes since the epoch>", the name upstream gives each run.
std::string JobName(const std::string& cronjob, TimePoint scheduled);

// The schedule to run now: the latest scheduled time in (earliest, now], where earliest is the
// last schedule time or the creation time, moved up to now - startingDeadlineSeconds. `missed`
// gets how many times were passed over (more than 100 is upstream's TooManyMissedTimes).
struct Due {
  std::optional<TimePoint> scheduled;  // nullopt: nothing due
  int64_t missed = 0;
  std::optional<TimePoint> next;  // the next time after now
};
Due MostRecentSchedule(const json& cronjob, const cron::Schedule& schedule,
                       const cron::TimeZone& zone, TimePoint now);

}  // namespace ctrl::cronjob
}  // namespace orch
