// The embedded SQLite datastore: the current state in `kv`, one `log` row per revision, writes
// group-committed by one writer thread, watches served from an in-memory ring backed by `log`.
#include "sqlite_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "orch/log.h"

namespace orch {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kLog[] = "store";

// PRAGMA application_id of an orch database ("orch"), and the schema version this build writes.
constexpr int64_t kAppId = 0x6f726368;
constexpr int64_t kSchemaVersion = 1;

// Group commit: one transaction takes at most this much, so one huge burst does not delay the
// acknowledgement of its first writers for long.
constexpr size_t kMaxBatchOps = 1024;
constexpr size_t kMaxBatchBytes = 32 * 1024 * 1024;

// A watcher gets at most this many events per Next, and reads history in slices this wide, so
// neither a reply nor a read transaction grows without bound.
constexpr size_t kMaxWatchBatch = 1000;
constexpr int64_t kHistorySliceRevisions = 10000;

// Free pages returned to the file system per incremental_vacuum step.
constexpr int kVacuumStepPages = 512;

// WAL upkeep. SQLite restarts the WAL from its beginning (so the file stops growing) only when a
// write transaction begins with every WAL page already copied into the database. A checkpoint on
// another thread never wins that race under a steady write load, and one on the writer thread
// delays writers for the whole copy. So: once the WAL holds kCheckpointFrames pages, a background
// thread copies them (PASSIVE: writers go on); when it is done, the writer thread copies the few
// pages written meanwhile, between two batches, and its next transaction restarts the WAL. Past
// kWalHardLimitFrames (readers that never pause), a TRUNCATE checkpoint waits for the readers while
// writers wait: the WAL never grows without bound (kine's 240 GB WAL).
constexpr int kCheckpointFrames = 1000;
constexpr int kWalHardLimitFrames = 16384;
constexpr int64_t kJournalSizeLimit = 32 * 1024 * 1024;

// A writer waits this long for the write lock (held only by a forced checkpoint), a reader never
// waits in WAL mode except while a database is recovered.
constexpr int kBusyTimeoutMs = 10000;
constexpr int kCheckpointBusyTimeoutMs = 500;
// quick_check reads every page; above this size it would delay a start by seconds.
constexpr int64_t kQuickCheckMaxBytes = int64_t{1} << 30;

constexpr size_t kMaxIdleReaders = 4;
constexpr int kWriterCacheKiB = 8 * 1024;
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The smallest string above every string that starts with `prefix`; "" = no such bound.
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    auto c = static_cast<unsigned char>(prefix.back());
    if (c < 0xff) {
      prefix.back() = static_cast<char>(c + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}

Status SqlError(sqlite3* db, int rc, std::string_view what) {
  std::string msg =
      fmt::format("sqlite {}: {}", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_NOMEM:
    case SQLITE_PROTOCOL:
      return Unavailable(msg);
    default:
      return Internal(msg);
  }
}

// Resets a cached statement when the scope ends, so it never keeps a read snapshot open.
class StmtScope {
 public:
  explicit StmtScope(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~StmtScope() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  StmtScope(const StmtScope&) = delete;
  StmtScope& operator=(const StmtScope&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

void BindText(sqlite3_stmt* s, int i, std::string_view v) {
  // A null pointer would bind SQL NULL, not the empty string.
  sqlite3_bind_text(s, i, v.data() ? v.data() : "", static_cast<int>(v.size()), SQLITE_STATIC);
}
void BindBlob(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_blob(s, i, v.data() ? v.data() : "", static_cast<int>(v.size()), SQLITE_STATIC);
}
void BindInt(sqlite3_stmt* s, int i, int64_t v) {
  sqlite3_bind_int64(s, i, v);
}

std::string ColumnString(sqlite3_stmt* s, int i) {
  const void* p = sqlite3_column_blob(s, i);
  int n = sqlite3_column_bytes(s, i);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

// One SQLite connection with its prepared statements, used by one thread at a time.
class Conn {
 public:
  explicit Conn(sqlite3* db) : db_(db) {}
  ~Conn() {
    for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  static Result<std::unique_ptr<Conn>> Open(const std::string& path, int flags) {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      Status s = Unavailable(fmt::format("cannot open datastore {}: {}", path,
                                         db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
      sqlite3_close_v2(db);
      return s;
    }
    sqlite3_extended_result_codes(db, 1);
    return std::make_unique<Conn>(db);
  }

  sqlite3* db() const { return db_; }

  // The cached statement for `sql`; wrap its use in a StmtScope.
  Result<sqlite3_stmt*> Prepare(const std::string& sql) {
    auto it = stmts_.find(sql);
    if (it != stmts_.end()) return it->second;
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return SqlError(db_, rc, "prepare");
    stmts_.emplace(sql, stmt);
    return stmt;
  }

  Status Exec(const char* sql) {
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? Status() : SqlError(db_, rc, sql);
  }

  // Runs a statement returning one integer (a PRAGMA, a count).
  Result<int64_t> QueryInt(const std::string& sql) {
    auto stmt = Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    StmtScope scope(*stmt);
    int rc = sqlite3_step(*stmt);
    if (rc == SQLITE_ROW) return static_cast<int64_t>(sqlite3_column_int64(*stmt, 0));
    if (rc == SQLITE_DONE) return int64_t{0};
    return SqlError(db_, rc, sql);
  }

 private:
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> stmts_;
};

// A read transaction: every statement in it sees one WAL snapshot. Kept short on purpose: an open
// snapshot holds back checkpoints.
class ReadTxn {
 public:
  explicit ReadTxn(Conn* conn) : conn_(conn) { status_ = conn_->Exec("BEGIN"); }
  ~ReadTxn() {
    if (status_.ok()) (void)conn_->Exec("ROLLBACK");
  }
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;
  const Status& status() const { return status_; }

 private:
  Conn* conn_;
  Status status_;
};

// Read connections, reused across calls (opening one parses the schema) and capped in how many
// stay open while idle.
class ConnPool {
 public:
  explicit ConnPool(std::string path) : path_(std::move(path)) {}

  class Lease {
   public:
    Lease(ConnPool* pool, std::unique_ptr<Conn> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (conn_) pool_->Release(std::move(conn_));
    }
    Conn* operator->() const { return conn_.get(); }
    Conn* get() const { return conn_.get(); }

   private:
    ConnPool* pool_;
    std::unique_ptr<Conn> conn_;
  };

  Result<Lease> Acquire() {
    {
      std::lock_guard lock(mu_);
      if (closed_) return Cancelled("store is closed");
      if (!idle_.empty()) {
        auto conn = std::move(idle_.back());
        idle_.pop_back();
        return Lease(this, std::move(conn));
      }
    }
    auto conn = Conn::Open(path_, SQLITE_OPEN_READWRITE);
    if (!conn.ok()) return conn.status();
    sqlite3_busy_timeout((*conn)->db(), kBusyTimeoutMs);
    if (Status s = (*conn)->Exec("PRAGMA query_only=1"); !s.ok()) return s;
    return Lease(this, std::move(*conn));
  }

  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    idle_.clear();
  }

 private:
  void Release(std::unique_ptr<Conn> conn) {
    std::lock_guard lock(mu_);
    if (!closed_ && idle_.size() < kMaxIdleReaders) idle_.push_back(std::move(conn));
  }

  const std::string path_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Conn>> idle_;  // guarded by mu_
  bool closed_ = false;                      // guarded by mu_
};

size_t EventBytes(const Event& e) {
  return 96 + 2 * e.kv.key.size() + e.kv.value.size() + (e.prev ? e.prev->value.size() : 0);
}

// What watchers share with the store: the window of recent events and the revisions it is
// measured against. Held by shared_ptr, so a watcher that outlives the store stays safe (its Next
// returns kCancelled).
struct Hub {
  Hub(std::string path, const SqliteTuning& knobs) : readers(std::move(path)), tuning(knobs) {}

  ConnPool readers;
  const SqliteTuning tuning;

  std::mutex mu;
  // Signalled after each commit, when the store closes, and by Watcher::Cancel.
  std::condition_variable cv;
  // guarded by mu: the events of revisions ring_first .. committed. Shared, so that watchers copy
  // them after letting go of mu.
  std::deque<std::shared_ptr<const Event>> ring;
  int64_t ring_first = 1;  // guarded by mu
  size_t ring_bytes = 0;   // guarded by mu
  int64_t committed = 0;   // guarded by mu: the latest revision, durable and in the ring
  int64_t compacted = 0;   // guarded by mu
  bool closed = false;     // guarded by mu

  void Publish(std::vector<Event>* events, int64_t revision, int64_t compacted_revision) {
    {
      std::lock_guard lock(mu);
      for (Event& e : *events) {
        ring_bytes += EventBytes(e);
        ring.push_back(std::make_shared<const Event>(std::move(e)));
      }
      committed = revision;
      compacted = std::max(compacted, compacted_revision);
      while (!ring.empty() &&
             (ring.size() > tuning.ring_max_events || ring_bytes > tuning.ring_max_bytes)) {
        ring_bytes -= EventBytes(*ring.front());
        ring.pop_front();
        ++ring_first;
      }
    }
    cv.notify_all();
  }
};

// The current revision and the compacted revision, as of the calling read transaction.
struct Head {
  int64_t current = 0;
  int64_t compacted = 0;
};

Result<Head> ReadHead(Conn* conn) {
  auto stmt = conn->Prepare(
      "SELECT (SELECT COALESCE(MAX(rev), 0) FROM log),"
      " (SELECT value FROM meta WHERE name = 'compacted')");
  if (!stmt.ok()) return stmt.status();
  StmtScope scope(*stmt);
  int rc = sqlite3_step(*stmt);
  if (rc != SQLITE_ROW) return SqlError(conn->db(), rc, "read head");
  return Head{sqlite3_column_int64(*stmt, 0), sqlite3_column_int64(*stmt, 1)};
}

// The version of `key` current at `revision` (the latest log row at or below it), if it existed.
Result<std::optional<KeyValue>> ReadAtRevision(Conn* conn, const std::string& key,
                                               int64_t revision) {
  auto stmt = conn->Prepare(
      "SELECT type, value, create_rev, rev FROM log WHERE key = ?1 AND rev <= ?2"
      " ORDER BY rev DESC LIMIT 1");
  if (!stmt.ok()) return stmt.status();
  StmtScope scope(*stmt);
  BindText(*stmt, 1, key);
  BindInt(*stmt, 2, revision);
  int rc = sqlite3_step(*stmt);
  if (rc == SQLITE_DONE) return std::optional<KeyValue>();
  if (rc != SQLITE_ROW) return SqlError(conn->db(), rc, "read at revision");
  if (sqlite3_column_int(*stmt, 0) != 0) return std::optional<KeyValue>();  // a delete
  return std::optional<KeyValue>(KeyValue{
      key, ColumnString(*stmt, 1), sqlite3_column_int64(*stmt, 2), sqlite3_column_int64(*stmt, 3)});
}

// Log row types.
constexpr int kTypePut = 0;
constexpr int kTypeDelete = 1;

class SqliteWatcher final : public Watcher {
 public:
  SqliteWatcher(std::shared_ptr<Hub> hub, std::string prefix, int64_t next)
      : hub_(std::move(hub)), prefix_(std::move(prefix)), end_(PrefixEnd(prefix_)), next_(next) {}

  Result<std::vector<Event>> Next(std::chrono::milliseconds timeout) override {
    const auto deadline = Clock::now() + timeout;
    std::vector<Event> out;
    std::vector<std::shared_ptr<const Event>> recent;
    while (true) {
      int64_t history_upto = 0;
      {
        std::unique_lock lock(hub_->mu);
        while (true) {
          if (cancelled_) return Cancelled("watch cancelled");
          if (hub_->closed) return Cancelled("store closed");
          if (next_ < hub_->compacted) {
            return Compacted(
                fmt::format("watch needs revision {}, compacted up to {}", next_, hub_->compacted));
          }
          if (next_ < hub_->ring_first) {
            history_upto = hub_->ring_first - 1;
            break;
          }
          while (next_ <= hub_->committed && recent.size() < kMaxWatchBatch) {
            const auto& e = hub_->ring[static_cast<size_t>(next_ - hub_->ring_first)];
            ++next_;
            if (Matches(e->kv.key)) recent.push_back(e);
          }
          if (!recent.empty()) break;
          if (Clock::now() >= deadline) return out;
          hub_->cv.wait_until(lock, deadline);
        }
      }
      if (!recent.empty()) {
        out.reserve(recent.size());
        for (const auto& e : recent) out.push_back(*e);
        return out;
      }
      // The events wanted left the ring: replay them from the log table.
      if (Status s = ReadHistory(history_upto, &out); !s.ok()) return s;
      if (!out.empty() || Clock::now() >= deadline) return out;
    }
  }

  void Cancel() override {
    {
      std::lock_guard lock(hub_->mu);
      cancelled_ = true;
    }
    hub_->cv.notify_all();
  }

 private:
  bool Matches(const std::string& key) const {
    return key.compare(0, prefix_.size(), prefix_) == 0;
  }

  // Reads the events of revisions next_ .. upto (at most one slice) from the log table and moves
  // next_ past what it looked at.
  Status ReadHistory(int64_t upto, std::vector<Event>* out) {
    auto conn = hub_->readers.Acquire();
    if (!conn.ok()) return conn.status();
    ReadTxn txn(conn->get());
    if (!txn.status().ok()) return txn.status();
    auto head = ReadHead(conn->get());
    if (!head.ok()) return head.status();
    if (next_ < head->compacted) {
      return Compacted(
          fmt::format("watch needs revision {}, compacted up to {}", next_, head->compacted));
    }
    const int64_t end = std::min(upto, next_ + kHistorySliceRevisions - 1);
    // NOT INDEXED: walk the revisions in order (the primary key); the key index would visit the
    // whole history of the prefix.
    std::string sql =
        "SELECT rev, key, type, value, create_rev, prev_rev FROM log NOT INDEXED"
        " WHERE rev >= ?1 AND rev <= ?2 AND key >= ?3";
    if (!end_.empty()) sql += " AND key < ?4";
    sql += " ORDER BY rev LIMIT ?5";
    auto stmt = (*conn)->Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    auto prev_stmt = (*conn)->Prepare("SELECT value FROM log WHERE rev = ?1");
    if (!prev_stmt.ok()) return prev_stmt.status();
    StmtScope scope(*stmt);
    BindInt(*stmt, 1, next_);
    BindInt(*stmt, 2, end);
    BindText(*stmt, 3, prefix_);
    if (!end_.empty()) BindText(*stmt, 4, end_);
    BindInt(*stmt, 5, static_cast<int64_t>(kMaxWatchBatch));
    int64_t last = 0;
    size_t rows = 0;
    int rc;
    while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
      ++rows;
      last = sqlite3_column_int64(*stmt, 0);
      Event e;
      e.kv.key = ColumnString(*stmt, 1);
      e.kv.mod_revision = last;
      const int64_t create_rev = sqlite3_column_int64(*stmt, 4);
      const int64_t prev_rev = sqlite3_column_int64(*stmt, 5);
      if (sqlite3_column_int(*stmt, 2) == kTypeDelete) {
        e.type = Event::Type::kDelete;
        e.prev = KeyValue{e.kv.key, ColumnString(*stmt, 3), create_rev, prev_rev};
      } else {
        e.kv.value = ColumnString(*stmt, 3);
        e.kv.create_revision = create_rev;
        if (prev_rev > 0) {
          StmtScope prev_scope(*prev_stmt);
          BindInt(*prev_stmt, 1, prev_rev);
          int prc = sqlite3_step(*prev_stmt);
          if (prc == SQLITE_ROW) {
            e.prev = KeyValue{e.kv.key, ColumnString(*prev_stmt, 0), create_rev, prev_rev};
          } else if (prc != SQLITE_DONE) {
            return SqlError((*conn)->db(), prc, "watch history");
          }
        }
      }
      out->push_back(std::move(e));
    }
    if (rc != SQLITE_DONE) return SqlError((*conn)->db(), rc, "watch history");
    next_ = rows == kMaxWatchBatch ? last + 1 : end + 1;
    return Status();
  }

  std::shared_ptr<Hub> hub_;
  const std::string prefix_;
  const std::string end_;
  int64_t next_;            // the next revision this watcher needs; only the Next thread uses it
  bool cancelled_ = false;  // guarded by hub_->mu
};

enum class OpKind { kCreate, kUpdate, kDelete, kExpire, kCompact };

struct WriteOutcome {
  Status status;
  Event event;  // the change made (for kCreate/kUpdate, event.kv is the new version)
};

struct WriteOp {
  OpKind kind = OpKind::kCreate;
  std::string key;
  std::string value;
  int64_t expected = 0;    // CAS mod revision (0 = any); for kCompact the target revision
  int64_t expires_at = 0;  // unix ms; 0 = never
  std::promise<WriteOutcome> done;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(std::string path, const StoreOptions& options, SqliteDbLock lock,
              std::unique_ptr<Conn> writer, std::unique_ptr<Conn> checkpointer, int64_t revision,
              int64_t compacted, int64_t compact_cursor, const SqliteTuning& tuning)
      : path_(std::move(path)),
        options_(options),
        lock_(std::move(lock)),
        writer_(std::move(writer)),
        checkpointer_(std::move(checkpointer)),
        hub_(std::make_shared<Hub>(path_, tuning)),
        rev_(revision),
        compact_target_(compacted),
        compact_cursor_(compact_cursor) {
    hub_->committed = revision;
    hub_->ring_first = revision + 1;
    hub_->compacted = compacted;
  }

  void Start() {
    // Our own hook replaces SQLite's automatic checkpoint, which would run inside a commit and
    // delay the writers of that batch.
    sqlite3_wal_hook(writer_->db(), &SqliteStore::WalHook, this);
    next_auto_compact_ = Clock::now() + options_.compact_interval;
    writer_thread_ = std::thread([this] { WriterLoop(); });
    sweeper_thread_ = std::thread([this] { SweeperLoop(); });
    checkpoint_thread_ = std::thread([this] { CheckpointLoop(); });
  }

  ~SqliteStore() override {
    {
      std::lock_guard lock(sweep_mu_);
      sweep_stop_ = true;
    }
    sweep_cv_.notify_all();
    sweeper_thread_.join();
    {
      std::lock_guard lock(queue_mu_);
      stopping_ = true;
    }
    queue_cv_.notify_all();
    writer_thread_.join();  // finishes the writes already queued
    {
      std::lock_guard lock(hub_->mu);
      hub_->closed = true;
    }
    hub_->cv.notify_all();
    {
      std::lock_guard lock(ckpt_mu_);
      ckpt_stop_ = true;
    }
    ckpt_cv_.notify_all();
    checkpoint_thread_.join();
    checkpointer_.reset();
    hub_->readers.Close();
    // Leave a small database and an empty WAL behind: quick to open, quick to copy.
    int rc = sqlite3_wal_checkpoint_v2(writer_->db(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr,
                                       nullptr);
    if (rc != SQLITE_OK) {
      log::Warn(kLog, "final checkpoint of {}: {}", path_, sqlite3_errmsg(writer_->db()));
    }
    writer_.reset();
    log::Info(kLog, "closed {} at revision {}", path_, rev_);
  }

  Result<int64_t> CurrentRevision() override {
    std::lock_guard lock(hub_->mu);
    return hub_->committed;
  }

  Result<int64_t> CompactedRevision() override {
    std::lock_guard lock(hub_->mu);
    return hub_->compacted;
  }

  Result<KeyValue> Get(const std::string& key, int64_t revision) override {
    if (revision < 0) return InvalidArgument(fmt::format("negative revision {}", revision));
    auto conn = hub_->readers.Acquire();
    if (!conn.ok()) return conn.status();
    if (revision == 0) {
      // One statement is one snapshot: no transaction needed.
      auto cur = ReadCurrent(conn->get(), key);
      if (!cur.ok()) return cur.status();
      if (!cur->has_value()) return NotFound("key " + key);
      return std::move(**cur);
    }
    ReadTxn txn(conn->get());
    if (!txn.status().ok()) return txn.status();
    auto head = ReadHead(conn->get());
    if (!head.ok()) return head.status();
    if (Status s = CheckRevision(revision, *head); !s.ok()) return s;
    auto kv = ReadAtRevision(conn->get(), key, revision);
    if (!kv.ok()) return kv.status();
    if (!kv->has_value()) return NotFound(fmt::format("key {} at revision {}", key, revision));
    return std::move(**kv);
  }

  Result<ListResult> List(const RangeOptions& options) override {
    if (options.limit < 0) return InvalidArgument("negative list limit");
    if (options.revision < 0) return InvalidArgument("negative revision");
    auto conn = hub_->readers.Acquire();
    if (!conn.ok()) return conn.status();
    Conn* c = conn->get();
    ReadTxn txn(c);
    if (!txn.status().ok()) return txn.status();
    auto head = ReadHead(c);
    if (!head.ok()) return head.status();
    if (Status s = CheckRevision(options.revision, *head); !s.ok()) return s;
    ListResult result;
    result.revision = options.revision ? options.revision : head->current;
    const int64_t at = result.revision;

    // Range: keys >= prefix (or > start_after when that is further), < end of the prefix.
    const std::string end = PrefixEnd(options.prefix);
    const bool after = !options.start_after.empty() && options.start_after >= options.prefix;
    const std::string& low = after ? options.start_after : options.prefix;
    if (!end.empty() && low >= end) return result;
    auto range = [&](const char* col) {
      std::string sql = fmt::format(" {} {} ?1", col, after ? ">" : ">=");
      if (!end.empty()) sql += fmt::format(" AND {} < ?2", col);
      return sql;
    };
    auto bind_range = [&](sqlite3_stmt* s) {
      BindText(s, 1, low);
      if (!end.empty()) BindText(s, 2, end);
    };

    // Keys changed after `at`: their state at `at` comes from the log. Found by walking the
    // revisions after `at` (few while paginating), never the whole history of the range.
    std::vector<std::string> changed;
    if (at < head->current) {
      auto stmt = c->Prepare("SELECT DISTINCT key FROM log NOT INDEXED WHERE rev > ?3 AND" +
                             range("key") + " ORDER BY key");
      if (!stmt.ok()) return stmt.status();
      StmtScope scope(*stmt);
      bind_range(*stmt);
      BindInt(*stmt, 3, at);
      int rc;
      while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) changed.push_back(ColumnString(*stmt, 0));
      if (rc != SQLITE_DONE) return SqlError(c->db(), rc, "list changed keys");
    }

    // Every other key is unchanged since `at`: its current row is its state at `at`.
    auto stmt = c->Prepare(
        "SELECT k.key, k.create_rev, k.mod_rev, l.value FROM kv AS k JOIN log AS l"
        " ON l.rev = k.mod_rev WHERE" +
        range("k.key") + " AND k.mod_rev <= ?3 ORDER BY k.key");
    if (!stmt.ok()) return stmt.status();
    StmtScope scope(*stmt);
    bind_range(*stmt);
    BindInt(*stmt, 3, at);
    // One more than the limit tells whether there is more.
    const size_t want = options.limit > 0 ? static_cast<size_t>(options.limit) + 1
                                          : std::numeric_limits<size_t>::max();
    int rc = sqlite3_step(*stmt);
    size_t ci = 0;
    while (result.kvs.size() < want) {
      const bool have_row = rc == SQLITE_ROW;
      if (!have_row && rc != SQLITE_DONE) return SqlError(c->db(), rc, "list");
      const bool have_changed = ci < changed.size();
      if (!have_row && !have_changed) break;
      std::string row_key;
      if (have_row) row_key = ColumnString(*stmt, 0);
      if (have_changed && (!have_row || changed[ci] < row_key)) {
        auto kv = ReadAtRevision(c, changed[ci], at);
        if (!kv.ok()) return kv.status();
        if (kv->has_value()) result.kvs.push_back(std::move(**kv));
        ++ci;
        continue;
      }
      result.kvs.push_back(KeyValue{std::move(row_key), ColumnString(*stmt, 3),
                                    sqlite3_column_int64(*stmt, 1),
                                    sqlite3_column_int64(*stmt, 2)});
      rc = sqlite3_step(*stmt);
    }
    if (options.limit > 0 && result.kvs.size() > static_cast<size_t>(options.limit)) {
      result.kvs.pop_back();
      result.more = true;
    }
    return result;
  }

  Result<int64_t> Count(const std::string& prefix) override {
    auto conn = hub_->readers.Acquire();
    if (!conn.ok()) return conn.status();
    const std::string end = PrefixEnd(prefix);
    std::string sql = "SELECT count(*) FROM kv WHERE key >= ?1";
    if (!end.empty()) sql += " AND key < ?2";
    auto stmt = (*conn)->Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    StmtScope scope(*stmt);
    BindText(*stmt, 1, prefix);
    if (!end.empty()) BindText(*stmt, 2, end);
    int rc = sqlite3_step(*stmt);
    if (rc != SQLITE_ROW) return SqlError((*conn)->db(), rc, "count");
    return static_cast<int64_t>(sqlite3_column_int64(*stmt, 0));
  }

  Result<KeyValue> Create(const std::string& key, std::string value,
                          std::chrono::seconds ttl) override {
    auto op = MakePut(OpKind::kCreate, key, std::move(value), 0, ttl);
    if (!op.ok()) return op.status();
    WriteOutcome out = Submit(std::move(*op));
    if (!out.status.ok()) return out.status;
    return std::move(out.event.kv);
  }

  Result<KeyValue> Update(const std::string& key, std::string value, int64_t expected_mod_revision,
                          std::chrono::seconds ttl) override {
    auto op = MakePut(OpKind::kUpdate, key, std::move(value), expected_mod_revision, ttl);
    if (!op.ok()) return op.status();
    WriteOutcome out = Submit(std::move(*op));
    if (!out.status.ok()) return out.status;
    return std::move(out.event.kv);
  }

  Result<Event> Delete(const std::string& key, int64_t expected_mod_revision) override {
    if (key.empty()) return InvalidArgument("empty key");
    auto op = std::make_unique<WriteOp>();
    op->kind = OpKind::kDelete;
    op->key = key;
    op->expected = expected_mod_revision;
    WriteOutcome out = Submit(std::move(op));
    if (!out.status.ok()) return out.status;
    return std::move(out.event);
  }

  Result<std::unique_ptr<Watcher>> Watch(const std::string& prefix,
                                         int64_t from_revision) override {
    if (from_revision < 0) return InvalidArgument("negative watch revision");
    std::lock_guard lock(hub_->mu);
    if (hub_->closed) return Cancelled("store closed");
    if (from_revision == 0) from_revision = hub_->committed + 1;
    if (from_revision < hub_->compacted) {
      return Compacted(fmt::format("watch from revision {}: compacted up to {}", from_revision,
                                   hub_->compacted));
    }
    return std::unique_ptr<Watcher>(std::make_unique<SqliteWatcher>(hub_, prefix, from_revision));
  }

  Status Compact(int64_t revision) override {
    if (revision < 0) return InvalidArgument("negative compaction revision");
    auto op = std::make_unique<WriteOp>();
    op->kind = OpKind::kCompact;
    op->expected = revision;
    return Submit(std::move(op)).status;
  }

 private:
  static Status CheckRevision(int64_t revision, const Head& head) {
    if (revision > head.current) {
      return InvalidArgument(
          fmt::format("revision {} is in the future (current {})", revision, head.current));
    }
    if (revision > 0 && revision < head.compacted) {
      return Compacted(
          fmt::format("revision {} is compacted (oldest kept {})", revision, head.compacted));
    }
    return Status();
  }

  // The current version of `key`; one statement, so one snapshot.
  static Result<std::optional<KeyValue>> ReadCurrent(Conn* conn, const std::string& key) {
    auto stmt = conn->Prepare(
        "SELECT k.create_rev, k.mod_rev, l.value FROM kv AS k JOIN log AS l ON l.rev = k.mod_rev"
        " WHERE k.key = ?1");
    if (!stmt.ok()) return stmt.status();
    StmtScope scope(*stmt);
    BindText(*stmt, 1, key);
    int rc = sqlite3_step(*stmt);
    if (rc == SQLITE_DONE) return std::optional<KeyValue>();
    if (rc != SQLITE_ROW) return SqlError(conn->db(), rc, "get");
    return std::optional<KeyValue>(KeyValue{key, ColumnString(*stmt, 2),
                                            sqlite3_column_int64(*stmt, 0),
                                            sqlite3_column_int64(*stmt, 1)});
  }

  static Result<std::unique_ptr<WriteOp>> MakePut(OpKind kind, const std::string& key,
                                                  std::string value, int64_t expected,
                                                  std::chrono::seconds ttl) {
    if (key.empty()) return InvalidArgument("empty key");
    if (key.size() > kSqliteMaxKeyBytes) {
      return TooLarge(fmt::format("key of {} bytes (limit {})", key.size(), kSqliteMaxKeyBytes));
    }
    if (value.size() > kSqliteMaxValueBytes) {
      return TooLarge(
          fmt::format("value of {} bytes (limit {})", value.size(), kSqliteMaxValueBytes));
    }
    if (ttl.count() < 0) return InvalidArgument("negative ttl");
    auto op = std::make_unique<WriteOp>();
    op->kind = kind;
    op->key = key;
    op->value = std::move(value);
    op->expected = expected;
    if (ttl.count() > 0) {
      op->expires_at = NowMs() + std::chrono::duration_cast<std::chrono::milliseconds>(ttl).count();
    }
    return op;
  }

  // Queues `op` for the writer thread and waits until it is committed (or refused).
  WriteOutcome Submit(std::unique_ptr<WriteOp> op) { return SubmitAsync(std::move(op)).get(); }

  std::future<WriteOutcome> SubmitAsync(std::unique_ptr<WriteOp> op) {
    std::future<WriteOutcome> done = op->done.get_future();
    {
      std::lock_guard lock(queue_mu_);
      if (stopping_) {
        op->done.set_value(WriteOutcome{Cancelled("store is closing"), {}});
        return done;
      }
      queue_.push_back(std::move(op));
    }
    queue_cv_.notify_one();
    return done;
  }

  // --- The writer thread: owns writer_, rev_, and the compaction state. ---

  bool CompactionPending() const {
    return compact_cursor_ <= compact_target_ && Clock::now() >= compact_retry_at_;
  }
  bool HousekeepingPending() const { return CompactionPending() || vacuum_pending_; }

  void WriterLoop() {
    std::vector<std::unique_ptr<WriteOp>> batch;
    while (true) {
      {
        std::unique_lock lock(queue_mu_);
        auto ready = [&] { return !queue_.empty() || stopping_; };
        if (!ready() && !HousekeepingPending()) {
          if (options_.compact_interval.count() > 0) {
            queue_cv_.wait_until(lock, next_auto_compact_, ready);
          } else {
            queue_cv_.wait(lock, ready);
          }
        }
        if (queue_.empty() && stopping_) break;
        size_t bytes = 0;
        while (!queue_.empty() && batch.size() < kMaxBatchOps && bytes < kMaxBatchBytes) {
          bytes += queue_.front()->key.size() + queue_.front()->value.size();
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      if (!batch.empty()) {
        RunBatch(&batch);
        batch.clear();
      }
      MaybeAutoCompact();
      if (HousekeepingPending()) HousekeepingStep();
      if (writer_wal_frames_ >= kCheckpointFrames) MaybeCheckpoint();
    }
  }

  // Between batches, on the writer thread: asks for the background copy of the WAL, or finishes
  // one that is done (see kCheckpointFrames).
  void MaybeCheckpoint() {
    {
      std::lock_guard lock(ckpt_mu_);
      if (!ckpt_copied_) {
        if (!ckpt_wanted_ && !ckpt_running_) {
          ckpt_wanted_ = true;
          ckpt_frames_ = writer_wal_frames_;
          ckpt_cv_.notify_one();
        }
        return;
      }
      ckpt_copied_ = false;
    }
    const auto start = Clock::now();
    int log_frames = 0;
    int done_frames = 0;
    int rc = sqlite3_wal_checkpoint_v2(writer_->db(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                       &log_frames, &done_frames);
    // Not complete (a reader still reads old pages): the next round tries again.
    log::Debug(kLog, "checkpoint finished by the writer: rc {}, {} of {} WAL pages, {} us", rc,
               done_frames, log_frames,
               std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
  }

  // Runs every queued operation in one transaction, then acknowledges them all: one fsync for
  // the whole batch (group commit).
  void RunBatch(std::vector<std::unique_ptr<WriteOp>>* batch) {
    std::vector<WriteOutcome> outcomes(batch->size());
    std::vector<Event> events;
    events.reserve(batch->size());
    int64_t rev = rev_;
    int64_t compact_to = compact_target_;
    int64_t cursor = compact_cursor_;
    int64_t min_expiry = kNever;
    Status failed = writer_->Exec("BEGIN IMMEDIATE");
    for (size_t i = 0; failed.ok() && i < batch->size(); ++i) {
      WriteOp& op = *(*batch)[i];
      failed = Apply(&op, &rev, &compact_to, &cursor, &outcomes[i]);
      if (failed.ok() && outcomes[i].status.ok() && op.kind != OpKind::kCompact) {
        events.push_back(outcomes[i].event);
        if (op.expires_at > 0) min_expiry = std::min(min_expiry, op.expires_at);
      }
    }
    if (failed.ok()) failed = writer_->Exec("COMMIT");
    if (!failed.ok()) {
      (void)writer_->Exec("ROLLBACK");
      log::Error(kLog, "write of {} operations failed: {}", batch->size(), failed.ToString());
      for (auto& op : *batch) op->done.set_value(WriteOutcome{failed, {}});
      return;
    }
    rev_ = rev;
    compact_target_ = compact_to;
    compact_cursor_ = cursor;
    // Publish before acknowledging: a caller that wrote and then watches from "now" must not
    // see its own write as a future event.
    hub_->Publish(&events, rev_, compact_target_);
    if (min_expiry != kNever) NoteExpiry(min_expiry);
    for (size_t i = 0; i < batch->size(); ++i) (*batch)[i]->done.set_value(std::move(outcomes[i]));
  }

  // Applies one operation inside the batch transaction. A refused operation (CAS lost, key
  // exists or is absent) sets out->status and takes no revision; a returned error comes from
  // SQLite and aborts the whole batch.
  Status Apply(WriteOp* op, int64_t* rev, int64_t* compact_to, int64_t* cursor, WriteOutcome* out) {
    if (op->kind == OpKind::kCompact) {
      if (op->expected > *rev) {
        out->status = InvalidArgument(
            fmt::format("cannot compact to future revision {} (current {})", op->expected, *rev));
      } else if (op->expected > *compact_to) {
        return RaiseCompactTarget(op->expected, compact_to, cursor);
      }
      return Status();
    }
    auto cur = ReadCurrent(writer_.get(), op->key);
    if (!cur.ok()) return cur.status();
    const std::optional<KeyValue>& old = *cur;
    if (op->kind == OpKind::kCreate) {
      if (old) {
        out->status = AlreadyExists("key " + op->key);
        return Status();
      }
    } else {
      if (!old) {
        out->status = NotFound("key " + op->key);
        return Status();
      }
      if (op->expected != 0 && op->expected != old->mod_revision) {
        out->status = Conflict(fmt::format("key {} is at revision {}, not {}", op->key,
                                           old->mod_revision, op->expected));
        return Status();
      }
    }
    const int64_t next = *rev + 1;
    const bool is_delete = op->kind == OpKind::kDelete || op->kind == OpKind::kExpire;
    const int64_t create_rev = old ? old->create_revision : next;
    {
      auto stmt = writer_->Prepare(
          "INSERT INTO log(rev, key, type, value, create_rev, prev_rev)"
          " VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
      if (!stmt.ok()) return stmt.status();
      StmtScope scope(*stmt);
      BindInt(*stmt, 1, next);
      BindText(*stmt, 2, op->key);
      BindInt(*stmt, 3, is_delete ? kTypeDelete : kTypePut);
      // A delete row keeps the deleted value: its watchers need it even once the version it
      // deleted is compacted away.
      BindBlob(*stmt, 4, is_delete ? old->value : op->value);
      BindInt(*stmt, 5, create_rev);
      BindInt(*stmt, 6, old ? old->mod_revision : 0);
      if (int rc = sqlite3_step(*stmt); rc != SQLITE_DONE) {
        return SqlError(writer_->db(), rc, "insert log");
      }
    }
    {
      const char* sql = is_delete ? "DELETE FROM kv WHERE key = ?1"
                        : old     ? "UPDATE kv SET mod_rev = ?3, expires_at = ?4 WHERE key = ?1"
                                  : "INSERT INTO kv(key, create_rev, mod_rev, expires_at)"
                                    " VALUES(?1, ?2, ?3, ?4)";
      auto stmt = writer_->Prepare(sql);
      if (!stmt.ok()) return stmt.status();
      StmtScope scope(*stmt);
      BindText(*stmt, 1, op->key);
      if (!is_delete) {
        if (!old) BindInt(*stmt, 2, create_rev);
        BindInt(*stmt, 3, next);
        if (op->expires_at > 0) BindInt(*stmt, 4, op->expires_at);
      }
      if (int rc = sqlite3_step(*stmt); rc != SQLITE_DONE) {
        return SqlError(writer_->db(), rc, "write kv");
      }
    }
    *rev = next;
    Event& e = out->event;
    e.prev = old;
    e.kv.key = op->key;
    e.kv.mod_revision = next;
    if (is_delete) {
      e.type = Event::Type::kDelete;
    } else {
      e.type = Event::Type::kPut;
      e.kv.value = std::move(op->value);
      e.kv.create_revision = create_rev;
    }
    return Status();
  }

  // Moves the compaction target up, inside the current transaction. A finished compaction left
  // the row at its target alone (it was the target itself), so the cursor goes back to it.
  Status RaiseCompactTarget(int64_t target, int64_t* compact_to, int64_t* cursor) {
    const int64_t new_cursor = std::min(*cursor, *compact_to);
    if (Status s = SetMeta("compacted", target); !s.ok()) return s;
    if (Status s = SetMeta("compact_cursor", new_cursor); !s.ok()) return s;
    *compact_to = target;
    *cursor = new_cursor;
    return Status();
  }

  Status SetMeta(const char* name, int64_t value) {
    auto stmt = writer_->Prepare("UPDATE meta SET value = ?2 WHERE name = ?1");
    if (!stmt.ok()) return stmt.status();
    StmtScope scope(*stmt);
    BindText(*stmt, 1, name);
    BindInt(*stmt, 2, value);
    int rc = sqlite3_step(*stmt);
    return rc == SQLITE_DONE ? Status() : SqlError(writer_->db(), rc, "update meta");
  }

  // Housekeeping transactions need no fsync of their own: losing one in a crash only means redoing
  // it, and the WAL is synced in order by the next acknowledged write.
  template <typename F>
  Status HousekeepingTxn(F&& body) {
    if (Status s = writer_->Exec("PRAGMA synchronous=NORMAL"); !s.ok()) return s;
    Status s = writer_->Exec("BEGIN IMMEDIATE");
    if (s.ok()) s = body();
    if (s.ok()) s = writer_->Exec("COMMIT");
    if (!s.ok()) (void)writer_->Exec("ROLLBACK");
    Status restore = writer_->Exec("PRAGMA synchronous=FULL");
    return s.ok() ? restore : s;
  }

  void MaybeAutoCompact() {
    if (options_.compact_interval.count() <= 0) return;
    const auto now = Clock::now();
    if (now < next_auto_compact_) return;
    next_auto_compact_ = now + options_.compact_interval;
    const int64_t target = rev_ - std::max<int64_t>(options_.retain_revisions, 0);
    if (target <= compact_target_) return;
    int64_t compact_to = compact_target_;
    int64_t cursor = compact_cursor_;
    Status s = HousekeepingTxn([&] { return RaiseCompactTarget(target, &compact_to, &cursor); });
    if (!s.ok()) {
      log::Warn(kLog, "automatic compaction to revision {}: {}", target, s.ToString());
      return;
    }
    compact_target_ = compact_to;
    compact_cursor_ = cursor;
    std::vector<Event> none;
    hub_->Publish(&none, rev_, compact_target_);
  }

  // One bounded slice of work: a compaction slice, else an incremental vacuum step.
  void HousekeepingStep() {
    if (CompactionPending()) {
      Status s = CompactSlice();
      if (!s.ok()) {
        log::Warn(kLog, "compaction to revision {}: {}", compact_target_, s.ToString());
        // Retry later rather than spin on a failing disk.
        compact_retry_at_ = Clock::now() + std::chrono::seconds(10);
      }
      return;
    }
    Status s = HousekeepingTxn([&] {
      return writer_->Exec(fmt::format("PRAGMA incremental_vacuum({})", kVacuumStepPages).c_str());
    });
    vacuum_pending_ = false;
    if (s.ok()) s = CheckVacuum();
    if (!s.ok()) log::Warn(kLog, "incremental vacuum: {}", s.ToString());
  }

  // Looks at the log rows of revisions [cursor, end] and deletes what they make obsolete below the
  // target: the version each row superseded (its prev_rev), and deletion rows themselves. Every row
  // still needed at the target is the latest of its key there, so nothing readable is lost.
  // Rows below the cursor are done; the compaction is complete once the cursor passes the target.
  Status CompactSlice() {
    const int64_t target = compact_target_;
    const int64_t end =
        std::min(compact_cursor_ + hub_->tuning.compact_slice_revisions - 1, target);
    const int64_t next_cursor = end + 1;
    size_t deleted = 0;
    Status s = HousekeepingTxn([&]() -> Status {
      std::vector<int64_t> doomed;
      {
        auto stmt = writer_->Prepare(
            "SELECT rev, type, prev_rev FROM log WHERE rev >= ?1 AND rev <= ?2 ORDER BY rev");
        if (!stmt.ok()) return stmt.status();
        StmtScope scope(*stmt);
        BindInt(*stmt, 1, compact_cursor_);
        BindInt(*stmt, 2, end);
        int rc;
        while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
          const int64_t row = sqlite3_column_int64(*stmt, 0);
          const int64_t prev = sqlite3_column_int64(*stmt, 2);
          if (prev > 0) doomed.push_back(prev);
          if (sqlite3_column_int(*stmt, 1) == kTypeDelete && row < target) doomed.push_back(row);
        }
        if (rc != SQLITE_DONE) return SqlError(writer_->db(), rc, "compact scan");
      }
      auto del = writer_->Prepare("DELETE FROM log WHERE rev = ?1");
      if (!del.ok()) return del.status();
      for (int64_t row : doomed) {
        StmtScope scope(*del);
        BindInt(*del, 1, row);
        if (int rc = sqlite3_step(*del); rc != SQLITE_DONE) {
          return SqlError(writer_->db(), rc, "compact delete");
        }
        deleted += static_cast<size_t>(sqlite3_changes(writer_->db()));
      }
      return SetMeta("compact_cursor", next_cursor);
    });
    if (!s.ok()) return s;
    compact_cursor_ = next_cursor;
    compacted_rows_ += deleted;
    if (compact_cursor_ > compact_target_) {
      log::Debug(kLog, "compacted to revision {}: {} history rows removed", compact_target_,
                 compacted_rows_);
      compacted_rows_ = 0;
      return CheckVacuum();
    }
    return Status();
  }

  // Gives free pages back to the file system once they are a large share of the file; a few
  // free pages are kept, since the next writes reuse them anyway.
  Status CheckVacuum() {
    auto free_pages = writer_->QueryInt("PRAGMA freelist_count");
    if (!free_pages.ok()) return free_pages.status();
    auto pages = writer_->QueryInt("PRAGMA page_count");
    if (!pages.ok()) return pages.status();
    vacuum_pending_ = *free_pages > 1024 && *free_pages * 4 > *pages;
    return Status();
  }

  // --- Checkpoints (own thread and connection: a PASSIVE checkpoint never blocks writers). ---

  // Runs on the writer thread after each commit, with the WAL's size in pages.
  static int WalHook(void* self, sqlite3*, const char*, int frames) {
    static_cast<SqliteStore*>(self)->writer_wal_frames_ = frames;
    return SQLITE_OK;
  }

  void CheckpointLoop() {
    Clock::time_point next_force;
    std::unique_lock lock(ckpt_mu_);
    while (true) {
      ckpt_cv_.wait(lock, [&] { return ckpt_wanted_ || ckpt_stop_; });
      if (ckpt_stop_) return;
      const int frames = ckpt_frames_;
      ckpt_wanted_ = false;
      ckpt_running_ = true;
      lock.unlock();
      // A forced checkpoint holds writers while it waits for readers: at most one attempt in a
      // while, so a long reader (a snapshot of a big database) costs writers one wait, not many.
      const bool force = frames >= kWalHardLimitFrames && Clock::now() >= next_force;
      if (force) next_force = Clock::now() + std::chrono::seconds(10);
      int log_frames = 0;
      int done_frames = 0;
      int rc =
          sqlite3_wal_checkpoint_v2(checkpointer_->db(), nullptr,
                                    force ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE,
                                    &log_frames, &done_frames);
      if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        log::Warn(kLog, "checkpoint of {}: {}", path_, sqlite3_errmsg(checkpointer_->db()));
      } else {
        log::Debug(kLog, "checkpoint{}: {} of {} WAL pages copied", force ? " (truncate)" : "",
                   done_frames, log_frames);
      }
      lock.lock();
      ckpt_running_ = false;
      ckpt_copied_ = rc == SQLITE_OK && done_frames == log_frames;
    }
  }

  // --- TTL expiry (own thread): deletes expired keys through the normal write path. ---

  void NoteExpiry(int64_t expires_at) {
    std::lock_guard lock(sweep_mu_);
    if (expires_at >= sweep_hint_) return;
    sweep_hint_ = expires_at;
    if (expires_at < sweep_next_) sweep_cv_.notify_all();
  }

  void SweeperLoop() {
    std::unique_lock lock(sweep_mu_);
    while (!sweep_stop_) {
      // Expiries committed from now on are noted in sweep_hint_; earlier ones are in the table.
      sweep_hint_ = kNever;
      lock.unlock();
      int64_t next = kNever;
      Status s = SweepOnce(&next);
      if (!s.ok()) {
        log::Warn(kLog, "expiring keys: {}", s.ToString());
        next = NowMs() + 1000;
      }
      lock.lock();
      sweep_next_ = std::min(next, sweep_hint_);
      auto wake = [&] { return sweep_stop_ || sweep_hint_ < sweep_next_; };
      if (sweep_next_ == kNever) {
        sweep_cv_.wait(lock, wake);
      } else {
        // Re-read at least once a minute, in case the wall clock jumped.
        const int64_t wait_ms = std::clamp<int64_t>(sweep_next_ - NowMs(), 0, 60000);
        if (wait_ms > 0) sweep_cv_.wait_for(lock, std::chrono::milliseconds(wait_ms), wake);
      }
      sweep_next_ = kNever;
    }
  }

  // Deletes the keys whose TTL has passed (a bounded batch) and tells when the next one expires.
  Status SweepOnce(int64_t* next) {
    constexpr int64_t kBatch = 256;
    struct Expired {
      std::string key;
      int64_t mod_rev;
    };
    std::vector<Expired> expired;
    const int64_t now = NowMs();
    {
      auto conn = hub_->readers.Acquire();
      if (!conn.ok()) return conn.status();
      auto stmt = (*conn)->Prepare(
          "SELECT key, mod_rev, expires_at FROM kv WHERE expires_at IS NOT NULL"
          " ORDER BY expires_at LIMIT ?1");
      if (!stmt.ok()) return stmt.status();
      StmtScope scope(*stmt);
      BindInt(*stmt, 1, kBatch);
      int rc;
      while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
        const int64_t at = sqlite3_column_int64(*stmt, 2);
        if (at > now) {
          *next = at;
          break;
        }
        expired.push_back({ColumnString(*stmt, 0), sqlite3_column_int64(*stmt, 1)});
      }
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        return SqlError((*conn)->db(), rc, "read expiring keys");
      }
      if (expired.size() == static_cast<size_t>(kBatch)) *next = now;  // more to do
    }
    std::vector<std::future<WriteOutcome>> pending;
    for (auto& e : expired) {
      auto op = std::make_unique<WriteOp>();
      op->kind = OpKind::kExpire;
      op->key = std::move(e.key);
      // Only the version that expired: an update in between set a new TTL or none.
      op->expected = e.mod_rev;
      pending.push_back(SubmitAsync(std::move(op)));
    }
    for (auto& f : pending) {
      WriteOutcome out = f.get();
      if (out.status.code() == StatusCode::kCancelled) return Status();
    }
    if (!expired.empty()) log::Debug(kLog, "expired {} keys", expired.size());
    return Status();
  }

  const std::string path_;
  const StoreOptions options_;
  SqliteDbLock lock_;
  std::unique_ptr<Conn> writer_;        // used only by the writer thread (then the destructor)
  std::unique_ptr<Conn> checkpointer_;  // used only by the checkpoint thread
  std::shared_ptr<Hub> hub_;

  // Writer thread state.
  int64_t rev_;
  int64_t compact_target_;              // the compacted revision
  int64_t compact_cursor_;              // compaction has handled the log rows below this revision
  Clock::time_point compact_retry_at_;  // after a failed slice, the next try waits until then
  size_t compacted_rows_ = 0;
  int writer_wal_frames_ = 0;  // the WAL's size after the last commit
  bool vacuum_pending_ = false;
  Clock::time_point next_auto_compact_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<std::unique_ptr<WriteOp>> queue_;  // guarded by queue_mu_
  bool stopping_ = false;                       // guarded by queue_mu_

  std::mutex sweep_mu_;
  std::condition_variable sweep_cv_;
  int64_t sweep_hint_ = kNever;  // guarded by sweep_mu_: earliest expiry written since the pass
  int64_t sweep_next_ = kNever;  // guarded by sweep_mu_: when the sweeper wakes next
  bool sweep_stop_ = false;      // guarded by sweep_mu_

  std::mutex ckpt_mu_;
  std::condition_variable ckpt_cv_;
  int ckpt_frames_ = 0;        // guarded by ckpt_mu_: the WAL's size when the copy was asked for
  bool ckpt_wanted_ = false;   // guarded by ckpt_mu_
  bool ckpt_running_ = false;  // guarded by ckpt_mu_
  bool ckpt_copied_ = false;   // guarded by ckpt_mu_: the background copy reached the WAL's end
  bool ckpt_stop_ = false;     // guarded by ckpt_mu_

  std::thread writer_thread_;
  std::thread sweeper_thread_;
  std::thread checkpoint_thread_;
};

Status ConfigureConnection(Conn* conn, bool writer) {
  sqlite3_busy_timeout(conn->db(), writer ? kBusyTimeoutMs : kCheckpointBusyTimeoutMs);
  // synchronous=FULL: in WAL mode the WAL is fsynced at every commit, so an acknowledged write
  // survives a power cut.
  for (const char* sql : {"PRAGMA synchronous=FULL", "PRAGMA foreign_keys=OFF"}) {
    if (Status s = conn->Exec(sql); !s.ok()) return s;
  }
  if (!writer) return Status();
  // The writer's page cache (KiB): enough for every interior page of the b-trees of a large
  // store, so an insert reads at most its leaf from the OS page cache. It was 32 MiB, and it
  // filled with leaf pages as the store grew (22 MiB of the server's heap with 10 000 objects).
  return conn->Exec(fmt::format("PRAGMA journal_size_limit={}; PRAGMA cache_size=-{}",
                                kJournalSizeLimit, kWriterCacheKiB)
                        .c_str());
}

Status InitSchema(Conn* conn) {
  // auto_vacuum must be chosen before the first table exists.
  if (Status s = conn->Exec("PRAGMA auto_vacuum=INCREMENTAL"); !s.ok()) return s;
  auto mode = conn->Exec("PRAGMA journal_mode=WAL");
  if (!mode.ok()) return mode;
  const std::string sql = fmt::format(
      "BEGIN IMMEDIATE;"
      // name -> value: schema_version, compacted (oldest readable revision), compact_cursor.
      "CREATE TABLE meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
      // The current state: one row per live key. Values live in `log` (the row at mod_rev), so
      // each write stores its value once.
      "CREATE TABLE kv(key TEXT PRIMARY KEY, create_rev INTEGER NOT NULL,"
      " mod_rev INTEGER NOT NULL, expires_at INTEGER) WITHOUT ROWID;"
      "CREATE INDEX kv_by_expiry ON kv(expires_at) WHERE expires_at IS NOT NULL;"
      // History: one row per revision. type 0 = put, 1 = delete (value = the deleted value);
      // prev_rev = mod revision of the version this one replaced (0 for a creation).
      "CREATE TABLE log(rev INTEGER PRIMARY KEY, key TEXT NOT NULL, type INTEGER NOT NULL,"
      " value BLOB NOT NULL, create_rev INTEGER NOT NULL, prev_rev INTEGER NOT NULL);"
      "CREATE INDEX log_by_key ON log(key, rev);"
      "INSERT INTO meta(name, value) VALUES('schema_version', {1}), ('compacted', 0),"
      " ('compact_cursor', 1);"
      "PRAGMA application_id={0};"
      "PRAGMA user_version={1};"
      "COMMIT;",
      kAppId, kSchemaVersion);
  Status s = conn->Exec(sql.c_str());
  if (!s.ok()) (void)conn->Exec("ROLLBACK");
  return s;
}

}  // namespace

SqliteDbLock& SqliteDbLock::operator=(SqliteDbLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

SqliteDbLock::~SqliteDbLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

Result<SqliteDbLock> LockSqliteDb(const std::string& db_path) {
  const std::string lock_path = db_path + ".lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Unavailable(
        fmt::format("cannot open lock file {}: {}", lock_path, std::strerror(errno)));
  }
  SqliteDbLock lock(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Unavailable(
          fmt::format("datastore {} is in use by another process (lock {} is held): stop it first",
                      db_path, lock_path));
    }
    return Unavailable(fmt::format("cannot lock {}: {}", lock_path, std::strerror(errno)));
  }
  return lock;
}

Status MakeDirs700(const std::string& dir) {
  if (dir.empty()) return Status();
  std::string path;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    path = dir.substr(0, pos);
    if (path.empty() || path == "/") continue;
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
      return Unavailable(fmt::format("cannot create {}: {}", path, std::strerror(errno)));
    }
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Unavailable(fmt::format("{} is not a directory", dir));
  }
  return Status();
}

Status SyncParentDir(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Unavailable(fmt::format("cannot open {}: {}", dir, std::strerror(errno)));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Unavailable(fmt::format("cannot sync {}: {}", dir, std::strerror(err)));
  return Status();
}

Status CheckOrchDb(sqlite3* db, const std::string& path) {
  auto query_int = [&](const char* sql) -> Result<int64_t> {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      return Unavailable(fmt::format("{} is not a readable orch datastore ({}); refusing to use it",
                                     path, sqlite3_errmsg(db)));
    }
    return v;
  };
  auto app_id = query_int("PRAGMA application_id");
  if (!app_id.ok()) return app_id.status();
  if (*app_id != kAppId) {
    return InvalidArgument(fmt::format(
        "{} is a SQLite database but not an orch datastore (application_id {:#x}); refusing to use "
        "it",
        path, *app_id));
  }
  auto version = query_int("PRAGMA user_version");
  if (!version.ok()) return version.status();
  if (*version > kSchemaVersion) {
    return InvalidArgument(
        fmt::format("{} has schema version {}, newer than this orch reads ({}): upgrade orch", path,
                    *version, kSchemaVersion));
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && st.st_size <= kQuickCheckMaxBytes) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &stmt, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
    std::string verdict = rc == SQLITE_ROW ? ColumnString(stmt, 0) : sqlite3_errmsg(db);
    sqlite3_finalize(stmt);
    if (verdict != "ok") {
      return Unavailable(fmt::format("{} is corrupt ({}): restore a snapshot", path, verdict));
    }
  }
  auto tables = query_int(
      "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('meta', 'kv', 'log')");
  if (!tables.ok()) return tables.status();
  if (*tables != 3) {
    return Unavailable(
        fmt::format("{} is an orch datastore with missing tables: restore a snapshot", path));
  }
  // A first read of each table.
  for (const char* sql : {"SELECT value FROM meta WHERE name = 'compacted'",
                          "SELECT max(rev) FROM log", "SELECT count(*) FROM kv"}) {
    if (auto r = query_int(sql); !r.ok()) return r.status();
  }
  return Status();
}

bool IsSqliteEndpoint(const std::string& endpoint) {
  return endpoint.empty() || endpoint.rfind("sqlite://", 0) == 0;
}

Result<std::string> SqliteDbPath(const StoreOptions& options) {
  if (!IsSqliteEndpoint(options.endpoint)) {
    return InvalidArgument(
        fmt::format("'{}' is not an embedded SQLite datastore endpoint", options.endpoint));
  }
  std::string path = options.endpoint.empty() ? "" : options.endpoint.substr(9);
  // kine-style endpoints carry driver parameters ("?_journal=WAL"): ours are fixed.
  path = path.substr(0, path.find('?'));
  if (path.empty()) {
    if (options.data_dir.empty()) return InvalidArgument("no data dir for the datastore");
    path = options.data_dir + "/server/db/state.db";
  }
  return path;
}

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, const StoreOptions& options,
                                               const SqliteTuning& tuning) {
  if (sqlite3_threadsafe() == 0) return Internal("SQLite was built without thread support");
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    if (Status s = MakeDirs700(path.substr(0, slash)); !s.ok()) return s;
  }
  auto lock = LockSqliteDb(path);
  if (!lock.ok()) return lock.status();

  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists) {
    if (S_ISDIR(st.st_mode)) return InvalidArgument(fmt::format("{} is a directory", path));
    for (const std::string& f : {path, path + "-wal"}) {
      if (::access(f.c_str(), R_OK | W_OK) != 0 && errno != ENOENT) {
        return Unavailable(fmt::format("cannot open datastore {}: {}", f, std::strerror(errno)));
      }
    }
  }
  if (!exists && ::stat((path + "-wal").c_str(), &st) == 0 && st.st_size > 0) {
    // SQLite would replay it into the new, empty database.
    return Unavailable(fmt::format(
        "{}-wal exists without {}: the datastore is incomplete; restore a snapshot or move the "
        "-wal file away",
        path, path));
  }
  // Without SQLITE_OPEN_CREATE for an existing file: whatever is wrong with it, never start an
  // empty database in its place.
  const int flags = SQLITE_OPEN_READWRITE | (exists ? 0 : SQLITE_OPEN_CREATE);
  auto writer = Conn::Open(path, flags);
  if (!writer.ok()) return writer.status();
  Conn* w = writer->get();

  // An existing file may be an empty database left by a crash during the first start.
  bool fresh = !exists;
  if (exists) {
    auto app_id = w->QueryInt("PRAGMA application_id");
    auto objects = w->QueryInt("SELECT count(*) FROM sqlite_schema");
    if (!app_id.ok() || !objects.ok()) {
      return Unavailable(fmt::format(
          "{} is not a readable SQLite database ({}); refusing to start over it: restore a "
          "snapshot or move it away",
          path, sqlite3_errmsg(w->db())));
    }
    fresh = *app_id == 0 && *objects == 0;
  }
  if (fresh) {
    if (Status s = InitSchema(w); !s.ok()) {
      return Unavailable(fmt::format("cannot create datastore {}: {}", path, s.message()));
    }
    if (Status s = SyncParentDir(path); !s.ok()) return s;
  } else if (Status s = CheckOrchDb(w->db(), path); !s.ok()) {
    return s;
  }
  if (Status s = w->Exec("PRAGMA journal_mode=WAL"); !s.ok()) return s;
  if (Status s = ConfigureConnection(w, true); !s.ok()) return s;

  auto head = ReadHead(w);
  if (!head.ok()) return head.status();
  auto cursor = w->QueryInt("SELECT value FROM meta WHERE name = 'compact_cursor'");
  if (!cursor.ok()) return cursor.status();
  auto keys = w->QueryInt("SELECT count(*) FROM kv");
  if (!keys.ok()) return keys.status();

  auto checkpointer = Conn::Open(path, SQLITE_OPEN_READWRITE);
  if (!checkpointer.ok()) return checkpointer.status();
  if (Status s = ConfigureConnection(checkpointer->get(), false); !s.ok()) return s;

  auto store = std::make_unique<SqliteStore>(path, options, std::move(*lock), std::move(*writer),
                                             std::move(*checkpointer), head->current,
                                             head->compacted, *cursor, tuning);
  store->Start();
  log::Info(kLog, "opened {} at revision {} with {} keys (compacted at {})", path, head->current,
            *keys, head->compacted);
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace orch
