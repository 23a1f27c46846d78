// The datastore contract: an etcd-like revisioned key-value store holding all cluster state.
// SQLite (embedded default, storage/sqlite_store.cpp) and etcd implement it; the API server's
// resourceVersion is the store revision.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "orch/status.h"

namespace orch {

// One version of one key.
struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;  // revision that created the key (since it last did not exist)
  int64_t mod_revision = 0;     // revision that wrote this version
};

// One change, as delivered by Watch and returned by Delete.
struct Event {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  // kPut: the new version. kDelete: the key, with mod_revision = the revision of the deletion and
  // an empty value.
  KeyValue kv;
  // The version before this change: always set for kDelete (the deleted value); set for kPut of an
  // existing key when the store still has that version (in-memory recent history or not yet
  // compacted); unset for the creation of a key.
  std::optional<KeyValue> prev;
};

struct RangeOptions {
  std::string prefix;       // keys that start with this ("" = all keys)
  std::string start_after;  // only keys strictly greater than this (pagination continue point)
  int64_t limit = 0;        // at most this many keys; 0 = no limit
  int64_t revision = 0;     // the state at this revision; 0 = the latest
};

struct ListResult {
  std::vector<KeyValue> kvs;  // in key order
  int64_t revision = 0;       // the revision the whole list is consistent at
  bool more = false;          // true if keys after the last returned one match the prefix
};

// A stream of the events of a key prefix, in revision order, without gaps. Not thread-safe:
// one consumer thread calls Next; any thread may call Cancel.
class Watcher {
 public:
  virtual ~Watcher() = default;

  // Waits up to `timeout` for events and returns them (a non-empty batch in revision order), or an
  // empty batch when the timeout passed first. Errors end the stream:
  //  - kCompacted: the next revision this watcher needs was compacted away (it asked for an old
  //    revision, or fell behind a compaction); the caller relists and watches anew.
  //  - kCancelled: Cancel was called or the store is closing.
  virtual Result<std::vector<Event>> Next(std::chrono::milliseconds timeout) = 0;

  // Ends the stream: a blocked or later Next returns kCancelled. Thread-safe, idempotent.
  virtual void Cancel() = 0;
};

// All methods are thread-safe. Writes are durable when they return OK: a crash of the process or
// the machine right after loses none of them. Every successful write (Create, Update, Delete, TTL
// expiry) takes the next cluster-wide revision; failed writes take none.
class Store {
 public:
  virtual ~Store() = default;

  // The revision of the latest write (0 for an empty store).
  virtual Result<int64_t> CurrentRevision() = 0;

  // The oldest revision still readable: Get/List at an older revision and Watch from an older
  // revision fail with kCompacted. 0 if never compacted.
  virtual Result<int64_t> CompactedRevision() = 0;

  // The latest version of `key` (revision 0) or the version that was current at `revision`.
  // kNotFound if the key did not exist then; kCompacted if `revision` is compacted; kInvalidArgument
  // if `revision` is in the future.
  virtual Result<KeyValue> Get(const std::string& key, int64_t revision = 0) = 0;

  // Keys under a prefix in key order, all as of one revision (see RangeOptions), so that pages
  // fetched one after another with start_after and the first page's revision form one consistent
  // snapshot even while writes continue. kCompacted if that revision has been compacted.
  virtual Result<ListResult> List(const RangeOptions& options) = 0;

  // The number of keys under `prefix` now.
  virtual Result<int64_t> Count(const std::string& prefix) = 0;

  // Writes `key` only if it does not exist; returns the new version. kAlreadyExists otherwise.
  // A positive `ttl` makes the key expire: after about that long it is deleted by the store,
  // which emits a kDelete event like any delete.
  virtual Result<KeyValue> Create(const std::string& key, std::string value,
                                  std::chrono::seconds ttl = std::chrono::seconds(0)) = 0;

  // Replaces the value of an existing key if its mod_revision is `expected_mod_revision`
  // (compare-and-swap; 0 = whatever the version). Returns the new version. kNotFound if the key
  // does not exist, kConflict if its version differs. `ttl` as in Create (0 = no expiry).
  virtual Result<KeyValue> Update(const std::string& key, std::string value,
                                  int64_t expected_mod_revision,
                                  std::chrono::seconds ttl = std::chrono::seconds(0)) = 0;

  // Deletes `key` if its mod_revision is `expected_mod_revision` (0 = whatever the version).
  // Returns the kDelete event (the deletion revision and the deleted version in `prev`).
  // kNotFound if absent, kConflict if the version differs.
  virtual Result<Event> Delete(const std::string& key, int64_t expected_mod_revision = 0) = 0;

  // Watches keys under `prefix`, delivering every change with revision >= `from_revision`
  // (0 = only changes after now). History is replayed from the store first, then live changes
  // follow without a gap. Fails with kCompacted if `from_revision` is older than the compacted
  // revision. Watchers hold no unbounded buffers: one that falls behind a compaction ends with
  // kCompacted.
  virtual Result<std::unique_ptr<Watcher>> Watch(const std::string& prefix,
                                                 int64_t from_revision) = 0;

  // Discards the history older than `revision` (the state at `revision` and later stays
  // readable). Compacting an already compacted revision is OK; a future revision is
  // kInvalidArgument. Implementations also compact by themselves (see their options).
  virtual Status Compact(int64_t revision) = 0;
};

// Where and how to open a store. The endpoint follows k3s's --datastore-endpoint:
// "" or "sqlite://<path>" = embedded SQLite (default path: <data_dir>/server/db/state.db).
// "http://host:2379" or "https://host:2379", comma-separated for several members = etcd v3.
struct StoreOptions {
  std::string endpoint;
  std::string data_dir = "/var/lib/orch";
  // Automatic compaction keeps at least this many recent revisions of history...
  int64_t retain_revisions = 10000;
  // ...checked this often.
  std::chrono::seconds compact_interval = std::chrono::seconds(60);
  // TLS for https:// etcd endpoints (--datastore-cafile / --datastore-certfile /
  // --datastore-keyfile): PEM files; an empty ca_file trusts the system roots, an empty
  // cert_file/key_file pair means no client certificate. Unused by SQLite.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

// Opens the store named by `options`. Refuses (kUnavailable / kInvalidArgument with a message
// a user can act on) a database that is unreadable, corrupt, or already open in another
// process; it never starts empty over existing data.
Result<std::unique_ptr<Store>> OpenStore(const StoreOptions& options);

// Writes a consistent copy of the embedded SQLite datastore named by `options` to `file` (written
// to `file`.tmp, renamed when complete), while a server may be using it: writers are not blocked.
// kInvalidArgument for an etcd endpoint (etcd has its own snapshots: etcdctl snapshot save),
// kNotFound if there is no datastore yet.
Status SaveSnapshot(const StoreOptions& options, const std::string& file);

// Replaces the embedded SQLite datastore named by `options` with the snapshot in `file`. The
// server must be stopped: kUnavailable while the datastore is open. kInvalidArgument if `file` is
// not an orch snapshot; the datastore is left untouched then.
Status RestoreSnapshot(const StoreOptions& options, const std::string& file);

}  // namespace orch
