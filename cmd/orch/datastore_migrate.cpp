// `orch datastore migrate`: reads the source datastore page by page at one revision and writes
// every key, value unchanged, to the target; the command line, the report and the copy itself.
#include "datastore_migrate.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "cli.h"

namespace orch {
namespace {

constexpr std::string_view kRegistry = "/registry/";
// The API server stores Events with this TTL (src/apiserver/rest.cpp); copied ones get it anew.
constexpr std::string_view kEventsPrefix = "/registry/core/events/";
constexpr std::chrono::seconds kEventTtl(3600);

// "/registry/apps/deployments/ns/name" -> "apps/deployments"; "other" outside the registry.
std::string ResourceOf(const std::string& key) {
  if (!key.starts_with(kRegistry)) return "other";
  size_t group_end = key.find('/', kRegistry.size());
  if (group_end == std::string::npos) return "other";
  size_t plural_end = key.find('/', group_end + 1);
  if (plural_end == std::string::npos) return "other";
  return key.substr(kRegistry.size(), plural_end - kRegistry.size());
}

bool IsEtcd(const std::string& endpoint) {
  return endpoint.starts_with("http://") || endpoint.starts_with("https://");
}

// "sqlite:///var/lib/orch/server/db/state.db?_journal=WAL" -> "/var/lib/orch/server/db/state.db"
std::string SqlitePath(const std::string& endpoint) {
  std::string path = endpoint.substr(std::string_view("sqlite://").size());
  return path.substr(0, path.find('?'));
}

// Writes one key to the target: created, or (force) written over what is there.
Status CopyKey(Store& to, const KeyValue& kv, bool force, bool* overwritten) {
  std::chrono::seconds ttl =
      kv.key.starts_with(kEventsPrefix) ? kEventTtl : std::chrono::seconds(0);
  auto created = to.Create(kv.key, kv.value, ttl);
  if (created.ok()) return Status::Ok();
  if (created.status().code() != StatusCode::kAlreadyExists || !force) {
    if (created.status().code() == StatusCode::kAlreadyExists) {
      return AlreadyExists(fmt::format("key {} appeared in the target during the copy", kv.key));
    }
    return created.status();
  }
  auto updated = to.Update(kv.key, kv.value, 0, ttl);
  if (!updated.ok()) return updated.status();
  *overwritten = true;
  return Status::Ok();
}

}  // namespace

Result<MigrateReport> MigrateStore(Store& from, Store& to, const MigrateOptions& options) {
  MigrateReport report;
  auto existing = to.Count("");
  if (!existing.ok()) return existing.status();
  if (*existing > 0 && !options.force) {
    return AlreadyExists(fmt::format(
        "the target datastore already holds {} keys; migrate into an empty one, or pass --force "
        "to replace its state",
        *existing));
  }
  auto revision = from.CurrentRevision();
  if (!revision.ok()) return revision.status();
  report.source_revision = *revision;

  const int writers = std::max(1, options.writers);
  std::unordered_set<std::string> source_keys;  // only kept with force, to find stale keys
  RangeOptions range;
  range.limit = std::max<int64_t>(1, options.page_size);
  range.revision = *revision;
  for (;;) {
    auto page = from.List(range);
    if (!page.ok()) return page.status();
    const std::vector<KeyValue>& kvs = page->kvs;
    // The page's keys are written by a few threads at once; each takes every writers-th key.
    std::mutex mu;
    Status failure;
    std::atomic<int64_t> overwritten{0};
    auto write = [&](size_t first) {
      for (size_t i = first; i < kvs.size(); i += static_cast<size_t>(writers)) {
        {
          std::lock_guard lock(mu);
          if (!failure.ok()) return;
        }
        bool over = false;
        Status s = CopyKey(to, kvs[i], options.force, &over);
        if (over) ++overwritten;
        if (!s.ok()) {
          std::lock_guard lock(mu);
          if (failure.ok()) failure = std::move(s);
          return;
        }
      }
    };
    std::vector<std::thread> threads;
    for (int t = 1; t < writers && static_cast<size_t>(t) < kvs.size(); ++t) {
      threads.emplace_back(write, static_cast<size_t>(t));
    }
    write(0);
    for (auto& t : threads) t.join();
    if (!failure.ok()) return failure;

    for (const KeyValue& kv : kvs) {
      ++report.by_resource[ResourceOf(kv.key)];
      report.bytes += static_cast<int64_t>(kv.value.size());
      if (options.force) source_keys.insert(kv.key);
    }
    report.keys += static_cast<int64_t>(kvs.size());
    report.overwritten += overwritten.load();
    if (options.progress) options.progress(report.keys);
    if (!page->more || kvs.empty()) break;
    range.start_after = kvs.back().key;
  }

  if (options.force && *existing > 0) {
    // What the target had and the source lacks would otherwise outlive the migration. Only
    // orch's own keys: an etcd may hold other programs' data beside them.
    RangeOptions stale;
    stale.prefix = std::string(kRegistry);
    stale.limit = range.limit;
    for (;;) {
      auto page = to.List(stale);
      if (!page.ok()) return page.status();
      for (const KeyValue& kv : page->kvs) {
        if (source_keys.contains(kv.key)) continue;
        auto deleted = to.Delete(kv.key, 0);
        if (!deleted.ok() && deleted.status().code() != StatusCode::kNotFound) {
          return deleted.status();
        }
        ++report.deleted;
      }
      if (!page->more || page->kvs.empty()) break;
      stale.start_after = page->kvs.back().key;
      stale.revision = page->revision;  // later pages from the same snapshot
    }
  }
  return report;
}

CLI::App* AddDatastoreMigrateCommand(CLI::App* datastore_cmd, DatastoreMigration& migration) {
  CLI::App* cmd = datastore_cmd->add_subcommand(
      "migrate",
      "Copy the whole cluster state from one datastore to another (servers must be stopped)");
  cmd->add_option("--from", migration.from.endpoint,
                  "Source datastore: sqlite:///PATH/state.db or etcd http(s)://HOST:2379[,...]")
      ->type_name("URL")
      ->required();
  cmd->add_option("--to", migration.to.endpoint,
                  "Target datastore, empty unless --force: etcd http(s)://HOST:2379[,...] or "
                  "sqlite:///PATH/state.db")
      ->type_name("URL")
      ->required();
  // One set of TLS files, for whichever side is etcd (k3s's flag names).
  cmd->add_option("--datastore-cafile", migration.to.ca_file, "CA of the etcd members (PEM)")
      ->type_name("FILE")
      ->envname("ORCH_DATASTORE_CAFILE");
  cmd->add_option("--datastore-certfile", migration.to.cert_file,
                  "Client certificate for etcd (PEM)")
      ->type_name("FILE")
      ->envname("ORCH_DATASTORE_CERTFILE");
  cmd->add_option("--datastore-keyfile", migration.to.key_file, "Client key for etcd (PEM)")
      ->type_name("FILE")
      ->envname("ORCH_DATASTORE_KEYFILE");
  cmd->add_flag("--force", migration.force,
                "Replace the state of a target that already holds keys");
  return cmd;
}

int RunDatastoreMigrate(const DatastoreMigration& given) {
  DatastoreMigration m = given;
  m.from.ca_file = m.to.ca_file;
  m.from.cert_file = m.to.cert_file;
  m.from.key_file = m.to.key_file;
  for (StoreOptions* side : {&m.from, &m.to}) {
    // The copy must not lose the history window under it, and nothing needs compacting here.
    side->compact_interval = std::chrono::seconds(0);
    side->data_dir.clear();  // every endpoint names its store itself
  }
  auto fail = [](const Status& s) {
    PrintError(s);
    return 1;
  };
  for (auto [flag, endpoint] : {std::pair{"--from", &m.from.endpoint}, {"--to", &m.to.endpoint}}) {
    bool sqlite = endpoint->starts_with("sqlite://");
    if (!sqlite && !IsEtcd(*endpoint)) {
      return fail(InvalidArgument(fmt::format(
          "{}: '{}' is neither sqlite:///PATH nor an etcd http(s):// URL", flag, *endpoint)));
    }
    if (sqlite && SqlitePath(*endpoint).empty()) {
      return fail(InvalidArgument(fmt::format("{}: sqlite:// needs the database path", flag)));
    }
  }
  if (m.from.endpoint == m.to.endpoint) {
    return fail(InvalidArgument("--from and --to name the same datastore"));
  }
  if (m.from.endpoint.starts_with("sqlite://")) {
    // Opening a missing database would create an empty one and "migrate" nothing.
    std::string path = SqlitePath(m.from.endpoint);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      return fail(NotFound(fmt::format("--from: there is no datastore at {}", path)));
    }
  }

  auto from = OpenStore(m.from);
  if (!from.ok()) {
    return fail(Status(from.status().code(), "--from: " + from.status().message()));
  }
  auto to = OpenStore(m.to);
  if (!to.ok()) return fail(Status(to.status().code(), "--to: " + to.status().message()));

  MigrateOptions options;
  options.force = m.force;
  int64_t next_progress = 10000;
  options.progress = [&next_progress](int64_t copied) {
    if (copied < next_progress) return;
    fmt::print(stderr, "copied {} keys\n", copied);
    next_progress = copied + 10000;
  };
  auto report = MigrateStore(**from, **to, options);
  if (!report.ok()) return fail(report.status());
  fmt::print("migrated {} keys ({} bytes) from {} (revision {}) to {}\n", report->keys,
             report->bytes, m.from.endpoint, report->source_revision, m.to.endpoint);
  if (report->overwritten > 0 || report->deleted > 0) {
    fmt::print("overwrote {} keys and deleted {} that the source does not have\n",
               report->overwritten, report->deleted);
  }
  for (const auto& [resource, count] : report->by_resource) {
    fmt::print("  {:<48} {}\n", resource, count);
  }
  return 0;
}

}  // namespace orch
