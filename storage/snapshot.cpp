// Snapshots of the embedded SQLite datastore (`orch datastore snapshot save|restore FILE`): an
// online, consistent copy taken with SQLite's backup API, and the offline replacement of the db.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "orch/log.h"
#include "orch/store.h"
#include "sqlite_store.h"

namespace orch {
namespace {

constexpr char kLog[] = "store";

// Owns one raw SQLite connection for the duration of a snapshot operation.
class Db {
 public:
  Db() = default;
  ~Db() { sqlite3_close_v2(db_); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  Status Open(const std::string& path, int flags) {
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
      return Unavailable(
          fmt::format("cannot open {}: {}", path, db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc)));
    }
    sqlite3_busy_timeout(db_, 5000);
    return Status();
  }
  sqlite3* get() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

Status Exec(sqlite3* db, const char* sql, const std::string& path) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Unavailable(fmt::format("{}: {}: {}", path, sql, sqlite3_errmsg(db)));
  }
  return Status();
}

int64_t Revision(sqlite3* db) {
  sqlite3_stmt* stmt = nullptr;
  int64_t rev = 0;
  if (sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(rev), 0) FROM log", -1, &stmt, nullptr) ==
          SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    rev = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  return rev;
}

Status RemoveIfPresent(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Unavailable(fmt::format("cannot remove {}: {}", path, std::strerror(errno)));
  }
  return Status();
}

Status SyncFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Unavailable(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Unavailable(fmt::format("cannot sync {}: {}", path, std::strerror(err)));
  return Status();
}

// Copies the database open in `from` into a new file `to` as one consistent snapshot (a single
// backup step runs in one read transaction, so it never blocks or sees half of a writer's batch)
// and leaves it a self-contained, fsynced file in rollback-journal mode.
Status CopyDb(sqlite3* from, const std::string& to) {
  for (const std::string& f : {to, to + "-journal", to + "-wal", to + "-shm"}) {
    if (Status s = RemoveIfPresent(f); !s.ok()) return s;
  }
  Db dest;
  if (Status s = dest.Open(to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE); !s.ok()) return s;
  sqlite3_backup* backup = sqlite3_backup_init(dest.get(), "main", from, "main");
  if (!backup) return Unavailable(fmt::format("backup to {}: {}", to, sqlite3_errmsg(dest.get())));
  int rc;
  // BUSY only while another process recovers or truncates the WAL: moments.
  for (int attempt = 0; attempt < 250; ++attempt) {
    rc = sqlite3_backup_step(backup, -1);
    if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) {
    return Unavailable(fmt::format("backup to {}: {}", to, sqlite3_errstr(rc)));
  }
  if (Status s = Exec(dest.get(), "PRAGMA journal_mode=DELETE", to); !s.ok()) return s;
  return SyncFile(to);
}

}  // namespace

Status SaveSnapshot(const StoreOptions& options, const std::string& file) {
  if (!IsSqliteEndpoint(options.endpoint)) {
    return InvalidArgument(fmt::format(
        "datastore snapshots cover the embedded SQLite datastore; '{}' is etcd: use etcdctl "
        "snapshot save",
        options.endpoint));
  }
  auto path = SqliteDbPath(options);
  if (!path.ok()) return path.status();
  if (file.empty()) return InvalidArgument("no snapshot file given");
  if (file == *path) return InvalidArgument("the snapshot file cannot be the datastore itself");
  struct stat st {};
  if (::stat(path->c_str(), &st) != 0) {
    return NotFound(fmt::format("no datastore at {}: {}", *path, std::strerror(errno)));
  }
  // No lock: a running server keeps writing while the copy reads one WAL snapshot.
  Db src;
  if (Status s = src.Open(*path, SQLITE_OPEN_READWRITE); !s.ok()) return s;
  if (Status s = Exec(src.get(), "PRAGMA query_only=1", *path); !s.ok()) return s;
  const std::string tmp = file + ".tmp";
  Status s = CopyDb(src.get(), tmp);
  int64_t revision = 0;
  if (s.ok()) {
    Db check;
    s = check.Open(tmp, SQLITE_OPEN_READONLY);
    if (s.ok()) s = CheckOrchDb(check.get(), tmp);
    if (s.ok()) revision = Revision(check.get());
  }
  if (s.ok() && ::rename(tmp.c_str(), file.c_str()) != 0) {
    s = Unavailable(fmt::format("cannot rename {} to {}: {}", tmp, file, std::strerror(errno)));
  }
  if (!s.ok()) {
    (void)RemoveIfPresent(tmp);
    return s;
  }
  if (Status sync = SyncParentDir(file); !sync.ok()) return sync;
  log::Info(kLog, "saved snapshot of {} at revision {} to {}", *path, revision, file);
  return Status();
}

Status RestoreSnapshot(const StoreOptions& options, const std::string& file) {
  if (!IsSqliteEndpoint(options.endpoint)) {
    return InvalidArgument(fmt::format(
        "datastore snapshots cover the embedded SQLite datastore; '{}' is etcd: use etcdctl "
        "snapshot restore",
        options.endpoint));
  }
  auto path = SqliteDbPath(options);
  if (!path.ok()) return path.status();
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    return NotFound(fmt::format("no snapshot file {}: {}", file, std::strerror(errno)));
  }
  Db snap;
  if (Status s = snap.Open(file, SQLITE_OPEN_READONLY); !s.ok()) return s;
  if (Status s = CheckOrchDb(snap.get(), file); !s.ok()) {
    return InvalidArgument(fmt::format("not a usable orch snapshot: {}", s.message()));
  }
  const size_t slash = path->rfind('/');
  if (slash != std::string::npos && slash > 0) {
    if (Status s = MakeDirs700(path->substr(0, slash)); !s.ok()) return s;
  }
  // Held until the new database is in place, so no server starts on a half-restored one.
  auto lock = LockSqliteDb(*path);
  if (!lock.ok()) {
    return Unavailable(
        fmt::format("cannot restore while the server runs: {}", lock.status().message()));
  }
  const std::string tmp = *path + ".restore.tmp";
  if (Status s = CopyDb(snap.get(), tmp); !s.ok()) {
    (void)RemoveIfPresent(tmp);
    return s;
  }
  const int64_t revision = Revision(snap.get());
  // A WAL left next to the new file would be replayed into it: fold it into the old database
  // first (so a crash before the rename leaves that one whole), then remove it.
  if (::stat(path->c_str(), &st) == 0) {
    Db old;
    if (old.Open(*path, SQLITE_OPEN_READWRITE).ok() &&
        sqlite3_wal_checkpoint_v2(old.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr,
                                  nullptr) != SQLITE_OK) {
      log::Warn(kLog, "restore: could not checkpoint the old datastore {}: {}", *path,
                sqlite3_errmsg(old.get()));
    }
  }
  for (const std::string& f : {*path + "-wal", *path + "-shm", *path + "-journal"}) {
    if (Status s = RemoveIfPresent(f); !s.ok()) return s;
  }
  if (::rename(tmp.c_str(), path->c_str()) != 0) {
    return Unavailable(fmt::format("cannot rename {} to {}: {}", tmp, *path, std::strerror(errno)));
  }
  if (Status s = SyncParentDir(*path); !s.ok()) return s;
  log::Info(kLog, "restored {} from snapshot {} (revision {})", *path, file, revision);
  return Status();
}

}  // namespace orch
