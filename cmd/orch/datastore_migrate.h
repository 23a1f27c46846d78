// `orch datastore migrate --from URL --to URL`: copies the whole cluster state from one datastore
// to another (SQLite to etcd, or back), byte for byte, so objects keep everything they had.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "orch/status.h"
#include "orch/store.h"

namespace CLI {
class App;
}

namespace orch {

// What the command line gives the migration.
struct DatastoreMigration {
  StoreOptions from;   // endpoint from --from; TLS files from --datastore-* when it is etcd
  StoreOptions to;     // endpoint from --to; TLS files from --datastore-* when it is etcd
  bool force = false;  // --force: write over a target that already holds keys
};

struct MigrateOptions {
  // Replace the target's state instead of refusing a target that holds keys: keys the source has
  // are overwritten, keys under /registry/ the source lacks are deleted.
  bool force = false;
  // Keys read from the source per page (all pages at one revision: a consistent copy).
  int64_t page_size = 500;
  // Writes in flight to the target at once (etcd answers each in about a millisecond; a few in
  // parallel hide that latency).
  int writers = 4;
  // Called after each page with the number of keys copied so far.
  std::function<void(int64_t copied)> progress;
};

struct MigrateReport {
  int64_t keys = 0;             // keys written to the target
  int64_t overwritten = 0;      // of which already existed there (--force)
  int64_t deleted = 0;          // target keys the source lacks, removed (--force)
  int64_t bytes = 0;            // value bytes copied
  int64_t source_revision = 0;  // the source revision the copy is consistent at
  // Keys per resource ("apps/deployments", "core/secrets"; "other" outside /registry/).
  std::map<std::string, int64_t> by_resource;
};

// Copies every key of `from` (its state at one revision) to `to` with its value unchanged:
// uids, ownerReferences, finalizers and encrypted Secrets stay exactly as stored. Events get
// a fresh one-hour TTL, as the API server gives them; revisions are the target's own. Refuses
// (kAlreadyExists, naming the count) a target that holds keys unless options.force. Errors of
// either store are returned as they are; a failed copy may leave the target partly written
// (run again with force). Blocks until done.
Result<MigrateReport> MigrateStore(Store& from, Store& to, const MigrateOptions& options = {});

// Adds `migrate` under the `datastore` command, filling `migration`; returns the new command so
// the caller can tell whether it was chosen.
CLI::App* AddDatastoreMigrateCommand(CLI::App* datastore_cmd, DatastoreMigration& migration);

// Opens both stores (the source must exist), migrates, prints the report; the exit code.
int RunDatastoreMigrate(const DatastoreMigration& migration);

}  // namespace orch
