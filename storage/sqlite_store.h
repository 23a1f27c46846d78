// The embedded SQLite implementation of the store contract (include/orch/store.h) and the pieces
// of it that the snapshot code (storage/snapshot.cpp) and OpenStore share.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>

#include "orch/status.h"
#include "orch/store.h"

namespace orch {

// Limits of the SQLite store: a key or value above them is kTooLarge. Kubernetes objects stay far
// below (etcd refuses requests above 1.5 MiB); the limits keep one write from evicting the whole
// in-memory watch window or from stalling the group commit of everybody else.
inline constexpr size_t kSqliteMaxKeyBytes = 64 * 1024;
inline constexpr size_t kSqliteMaxValueBytes = 16 * 1024 * 1024;

// Knobs that users never need and tests do; the defaults are what `orch server` runs with.
struct SqliteTuning {
  // The in-memory window of recent events that watchers are served from; a watcher behind it
  // reads the log table instead (slower, never wrong). The API server's watch cache is the one
  // watcher in practice and stays near the head, so two group commits' worth is enough; a
  // larger ring only pins memory (each event holds its value and its previous value).
  size_t ring_max_events = 2048;
  size_t ring_max_bytes = 16 * 1024 * 1024;
  // Compaction removes the history of this many revisions per transaction, between write
  // batches: the longest a write waits for it.
  int64_t compact_slice_revisions = 500;
};

// True for the endpoints served by the embedded SQLite store: "" and "sqlite://<path>".
bool IsSqliteEndpoint(const std::string& endpoint);

// The database file of an embedded-SQLite endpoint ("" = <data_dir>/server/db/state.db).
// kInvalidArgument for any other endpoint.
Result<std::string> SqliteDbPath(const StoreOptions& options);

// Opens (creating it and its folders, mode 0700, when absent) the orch database at `path`.
// Refuses with a one-line message a file that is unreadable, corrupt, not an orch database, or
// already open in another process (see LockSqliteDb).
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, const StoreOptions& options,
                                               const SqliteTuning& tuning = {});

// An exclusive flock(2) on "<db>.lock": held by whoever owns the database files (a running store, a
// restore), released when this object dies. The kernel drops it if the process dies, so a crash
// never leaves a stale lock behind.
class SqliteDbLock {
 public:
  SqliteDbLock() = default;
  explicit SqliteDbLock(int fd) : fd_(fd) {}
  SqliteDbLock(SqliteDbLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  SqliteDbLock& operator=(SqliteDbLock&& other) noexcept;
  SqliteDbLock(const SqliteDbLock&) = delete;
  SqliteDbLock& operator=(const SqliteDbLock&) = delete;
  ~SqliteDbLock();

 private:
  int fd_ = -1;
};

// Takes the lock of the database at `db_path` without waiting: kUnavailable, naming the path, if
// another process (or another store in this one) holds it.
Result<SqliteDbLock> LockSqliteDb(const std::string& db_path);

// Creates the missing folders of `dir` with mode 0700 (the datastore holds secrets).
Status MakeDirs700(const std::string& dir);

// Checks that `db` (an open connection) is an orch database of a schema this build reads, and that
// its pages are sound (PRAGMA quick_check, skipped for files above a size where it would delay a
// start by seconds). `path` is for messages only.
Status CheckOrchDb(sqlite3* db, const std::string& path);

// fsyncs the folder holding `path`, so a rename or create in it survives a crash.
Status SyncParentDir(const std::string& path);

}  // namespace orch
