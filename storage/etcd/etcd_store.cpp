// The etcd v3 store: maps the store contract onto etcd's KV, Watch and Lease gRPC services.
// Compare-and-swap writes are single Txn calls; each watcher reads its own gRPC stream on a thread.
#include "etcd/etcd_store.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>

#include "etcd_rpc.grpc.pb.h"
#include "orch/etcd_cluster.h"
#include "orch/log.h"

namespace orch {
namespace {

namespace pb = etcdserverpb;

constexpr std::string_view kLog = "etcd";
// Compaction with physical=true answers only once the old revisions are gone, which takes longer
// than an ordinary call on a big database.
constexpr std::chrono::seconds kCompactTimeout(120);
// A broken watch stream is reopened after this pause, doubling up to the cap.
constexpr std::chrono::milliseconds kWatchRetryMin(100);
constexpr std::chrono::milliseconds kWatchRetryMax(2000);

// The end of the key range "every key that starts with prefix": the prefix with its last byte
// below 0xff incremented. "\0" is etcd's "no upper bound", for "" and all-0xff prefixes.
std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

// etcd refuses an empty key; "\0" with range_end "\0" is its spelling of "all keys".
std::string RangeStart(const std::string& prefix) {
  return prefix.empty() ? std::string(1, '\0') : prefix;
}

KeyValue ToKeyValue(const pb::KeyValue& kv) {
  KeyValue out;
  out.key = kv.key();
  out.value = kv.value();
  out.create_revision = kv.create_revision();
  out.mod_revision = kv.mod_revision();
  return out;
}

Event ToEvent(const pb::Event& e) {
  Event out;
  if (e.type() == pb::Event::DELETE) {
    out.type = Event::Type::kDelete;
    out.kv.key = e.kv().key();
    out.kv.mod_revision = e.kv().mod_revision();
  } else {
    out.type = Event::Type::kPut;
    out.kv = ToKeyValue(e.kv());
  }
  // etcd sends prev_kv only when the previous version exists and is not compacted away.
  if (e.has_prev_kv() && e.prev_kv().mod_revision() != 0) out.prev = ToKeyValue(e.prev_kv());
  return out;
}

// etcd's errors arrive as gRPC codes plus fixed messages ("etcdserver: mvcc: required revision
// has been compacted"); the message is what tells compaction and future revisions apart.
Status FromGrpc(const grpc::Status& s, std::string_view what) {
  const std::string& msg = s.error_message();
  std::string text = fmt::format("etcd {}: {}", what, msg);
  if (msg.find("required revision has been compacted") != std::string::npos) {
    return Compacted(std::move(text));
  }
  if (msg.find("future revision") != std::string::npos) return InvalidArgument(std::move(text));
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::ABORTED:
      // Reaches API clients as a 503: say which dependency is down.
      return Unavailable("the datastore is unavailable: " + text);
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      // Both gRPC's message-size limit and etcd's "database space exceeded" land here.
      if (msg.find("larger than max") != std::string::npos) return TooLarge(std::move(text));
      return Unavailable(std::move(text));
    case grpc::StatusCode::INVALID_ARGUMENT:
      if (msg.find("too large") != std::string::npos) return TooLarge(std::move(text));
      return InvalidArgument(std::move(text));
    case grpc::StatusCode::NOT_FOUND:
      return NotFound(std::move(text));
    case grpc::StatusCode::CANCELLED:
      return Cancelled(std::move(text));
    default:
      return Internal(std::move(text));
  }
}

Result<std::string> ReadFile(const std::string& path, std::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream data;
  data << in.rdbuf();
  if (!in || data.str().empty()) {
    return InvalidArgument(fmt::format("cannot read {} {}", flag, path));
  }
  return data.str();
}

// One gRPC channel and its stubs per member, shared by the store and its watchers (a watcher may
// outlive the store object). Calls go to the preferred member; one that answers UNAVAILABLE hands
// the preference to the next.
class Members {
 public:
  struct Member {
    std::string url;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<pb::KV::Stub> kv;
    std::unique_ptr<pb::Watch::Stub> watch;
    std::unique_ptr<pb::Lease::Stub> lease;
    std::unique_ptr<pb::Cluster::Stub> cluster;
  };

  Members(std::vector<Member> members, std::chrono::milliseconds rpc_timeout)
      : members_(std::move(members)), rpc_timeout_(rpc_timeout) {}

  std::size_t size() const { return members_.size(); }
  std::size_t preferred() const { return preferred_.load(); }
  Member& at(std::size_t i) { return members_[i]; }

  // The member at `i` failed: prefer the next one (unless another caller already moved on).
  void MarkFailed(std::size_t i) {
    std::size_t expected = i;
    preferred_.compare_exchange_strong(expected, (i + 1) % members_.size());
  }

  // Runs fn(member, context) on the preferred member and, while the answer is UNAVAILABLE, on
  // each other member once. A write retried this way may have been applied by the member that
  // failed; the CAS conditions then make the retry report kConflict or kAlreadyExists.
  template <typename Fn>
  grpc::Status Call(Fn&& fn, std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    grpc::Status status;
    std::size_t start = preferred();
    for (std::size_t attempt = 0; attempt < members_.size(); ++attempt) {
      std::size_t i = (start + attempt) % members_.size();
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + timeout.value_or(rpc_timeout_));
      status = fn(members_[i], &ctx);
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return status;
      if (members_.size() > 1) {
        log::Warn(kLog, "{} unavailable ({}), trying the next member", members_[i].url,
                  status.error_message());
      }
      MarkFailed(i);
    }
    return status;
  }

 private:
  std::vector<Member> members_;
  std::chrono::milliseconds rpc_timeout_;
  std::atomic<std::size_t> preferred_{0};
};

Result<std::shared_ptr<Members>> ConnectMembers(const StoreOptions& options,
                                                const EtcdTuning& tuning) {
  auto endpoints = ParseEtcdEndpoints(options.endpoint);
  if (!endpoints.ok()) return endpoints.status();

  grpc::SslCredentialsOptions ssl;
  bool any_tls = std::any_of(endpoints->begin(), endpoints->end(),
                             [](const EtcdEndpoint& e) { return e.tls; });
  if (any_tls) {
    if (!options.ca_file.empty()) {
      auto ca = ReadFile(options.ca_file, "--datastore-cafile");
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = std::move(*ca);
    }
    if (options.cert_file.empty() != options.key_file.empty()) {
      return InvalidArgument("--datastore-certfile and --datastore-keyfile go together");
    }
    if (!options.cert_file.empty()) {
      auto cert = ReadFile(options.cert_file, "--datastore-certfile");
      if (!cert.ok()) return cert.status();
      auto key = ReadFile(options.key_file, "--datastore-keyfile");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = std::move(*cert);
      ssl.pem_private_key = std::move(*key);
    }
  }

  grpc::ChannelArguments args;
  // A full list of a big prefix is one Range answer: no client-side cap (etcd bounds requests).
  args.SetMaxReceiveMessageSize(-1);
  // Pings find a dead member under an idle watch stream; etcd accepts one per 5 s at most.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  // gRPC's default reconnect backoff grows to two minutes; a restarted member should be used
  // again within seconds.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);

  std::vector<Members::Member> members;
  for (const EtcdEndpoint& e : *endpoints) {
    auto creds = e.tls ? grpc::SslCredentials(ssl) : grpc::InsecureChannelCredentials();
    Members::Member m;
    m.url = e.url;
    m.channel = grpc::CreateCustomChannel(e.target, creds, args);
    m.kv = pb::KV::NewStub(m.channel);
    m.watch = pb::Watch::NewStub(m.channel);
    m.lease = pb::Lease::NewStub(m.channel);
    m.cluster = pb::Cluster::NewStub(m.channel);
    members.push_back(std::move(m));
  }
  return std::make_shared<Members>(std::move(members), tuning.rpc_timeout);
}

// What the watch's reading thread and its consumer share. Guarded by mu.
struct WatchState {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Event> buffer;    // delivered by etcd, not yet taken by Next
  std::optional<Status> error;  // ends the stream once the buffer is drained
  bool cancelled = false;       // Cancel or store closing: Next returns kCancelled at once
  grpc::ClientContext* stream_ctx = nullptr;  // the open stream, to interrupt a blocked Read

  bool done() const { return cancelled || error.has_value(); }

  // Ends the stream from any thread; the reading thread sees it at its next step.
  void End(std::optional<Status> why) {
    std::lock_guard<std::mutex> lock(mu);
    if (done()) return;
    if (why) {
      error = std::move(why);
    } else {
      cancelled = true;
    }
    if (stream_ctx != nullptr) stream_ctx->TryCancel();
    cv.notify_all();
  }
};

class EtcdWatcher final : public Watcher {
 public:
  EtcdWatcher(std::shared_ptr<Members> members, std::shared_ptr<WatchState> state,
              std::string prefix, int64_t start_revision, std::size_t buffer_limit)
      : state_(std::move(state)) {
    thread_ = std::thread(
        [members = std::move(members), state = state_, prefix = std::move(prefix), start_revision,
         buffer_limit] { ReadLoop(*members, *state, prefix, start_revision, buffer_limit); });
  }

  ~EtcdWatcher() override {
    Cancel();
    thread_.join();
  }

  EtcdWatcher(const EtcdWatcher&) = delete;
  EtcdWatcher& operator=(const EtcdWatcher&) = delete;

  Result<std::vector<Event>> Next(std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(state_->mu);
    state_->cv.wait_for(lock, timeout,
                        [this] { return !state_->buffer.empty() || state_->done(); });
    if (state_->cancelled) return Cancelled("watch cancelled");
    if (!state_->buffer.empty()) {
      std::vector<Event> batch;
      batch.swap(state_->buffer);
      return batch;
    }
    if (state_->error) return *state_->error;
    return std::vector<Event>{};
  }

  void Cancel() override { state_->End(std::nullopt); }

 private:
  // Runs on the watcher's thread: opens a stream from `next` (the revision after the last one
  // delivered), reads until it breaks, and reopens it, possibly on another member, until the
  // watch ends. Resuming from `next` is what makes a broken stream invisible to the consumer.
  static void ReadLoop(Members& members, WatchState& state, const std::string& prefix, int64_t next,
                       std::size_t buffer_limit) {
    std::chrono::milliseconds retry = kWatchRetryMin;
    for (;;) {
      grpc::ClientContext ctx;
      {
        std::lock_guard<std::mutex> lock(state.mu);
        if (state.done()) return;
        state.stream_ctx = &ctx;
      }
      std::size_t member = members.preferred();
      auto stream = members.at(member).watch->Watch(&ctx);

      pb::WatchRequest req;
      pb::WatchCreateRequest* create = req.mutable_create_request();
      create->set_key(RangeStart(prefix));
      create->set_range_end(PrefixEnd(prefix));
      create->set_start_revision(next);
      create->set_prev_kv(true);

      pb::WatchResponse resp;
      if (stream->Write(req)) {
        while (stream->Read(&resp)) {
          if (resp.created()) retry = kWatchRetryMin;
          if (resp.compact_revision() != 0) {
            state.End(Compacted(fmt::format("watch of '{}' needs revision {}, compacted up to {}",
                                            prefix, next, resp.compact_revision())));
            break;
          }
          if (resp.canceled()) {
            state.End(Internal(
                fmt::format("etcd cancelled the watch of '{}': {}", prefix, resp.cancel_reason())));
            break;
          }
          if (resp.events_size() == 0) continue;
          std::lock_guard<std::mutex> lock(state.mu);
          if (state.done()) break;
          if (state.buffer.size() + resp.events_size() > buffer_limit) {
            // The consumer stopped draining: dropping what is buffered and ending with
            // kCompacted makes it relist, exactly as if it had fallen behind a compaction.
            state.buffer.clear();
            state.buffer.shrink_to_fit();
            state.error = Compacted(fmt::format(
                "watch of '{}' fell behind: more than {} events unread", prefix, buffer_limit));
            ctx.TryCancel();
            state.cv.notify_all();
            break;
          }
          for (const pb::Event& e : resp.events()) state.buffer.push_back(ToEvent(e));
          next = resp.events(resp.events_size() - 1).kv().mod_revision() + 1;
          state.cv.notify_all();
        }
      }
      grpc::Status status = stream->Finish();

      std::unique_lock<std::mutex> lock(state.mu);
      state.stream_ctx = nullptr;
      if (state.done()) return;
      // One warning per outage, not one per retry.
      if (retry == kWatchRetryMin) {
        log::Warn(kLog, "watch stream of '{}' on {} broke ({}); resuming at revision {}", prefix,
                  members.at(member).url, status.error_message(), next);
      } else {
        log::Debug(kLog, "watch stream of '{}' still down: {}", prefix, status.error_message());
      }
      if (status.error_code() == grpc::StatusCode::UNAVAILABLE) members.MarkFailed(member);
      state.cv.wait_for(lock, retry, [&state] { return state.done(); });
      retry = std::min(retry * 2, kWatchRetryMax);
    }
  }

  std::shared_ptr<WatchState> state_;
  std::thread thread_;
};

class EtcdStore final : public Store {
 public:
  EtcdStore(std::shared_ptr<Members> members, StoreOptions options, EtcdTuning tuning)
      : members_(std::move(members)), options_(std::move(options)), tuning_(tuning) {}

  ~EtcdStore() override {
    std::vector<std::weak_ptr<WatchState>> watchers;
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing_ = true;
      watchers.swap(watchers_);
    }
    cv_.notify_all();
    if (compactor_.joinable()) compactor_.join();
    for (auto& w : watchers) {
      if (auto state = w.lock()) state->End(std::nullopt);
    }
  }

  EtcdStore(const EtcdStore&) = delete;
  EtcdStore& operator=(const EtcdStore&) = delete;

  // Waits until some member answers, up to `timeout`.
  Status WaitReady(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto rev = CurrentRevision();
      if (rev.ok()) {
        log::Info(kLog, "connected to {} at revision {}", options_.endpoint, *rev);
        return Status::Ok();
      }
      if (rev.status().code() != StatusCode::kUnavailable ||
          std::chrono::steady_clock::now() >= deadline) {
        return Unavailable(fmt::format("no etcd member of '{}' answers: {}", options_.endpoint,
                                       rev.status().message()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }

  void StartCompactor() {
    if (options_.retain_revisions <= 0 || options_.compact_interval.count() <= 0) return;
    compactor_ = std::thread([this] { CompactLoop(); });
  }

  Result<int64_t> CurrentRevision() override {
    pb::RangeRequest req;
    req.set_key(std::string(1, '\0'));
    req.set_count_only(true);
    auto resp = Range(req, "revision");
    if (!resp.ok()) return resp.status();
    return resp->header().revision();
  }

  Result<int64_t> CompactedRevision() override {
    // etcd tells no client its compaction point, but a read at a compacted revision fails: so
    // check the last point this store knows of and, if someone compacted past it, search.
    int64_t known = compacted_.load();
    int64_t bad = std::max<int64_t>(known, 1);
    auto readable = Readable(bad);
    if (!readable.ok()) return readable.status();
    if (*readable) return known;
    auto current = CurrentRevision();
    if (!current.ok()) return current.status();
    int64_t good = *current;  // compacting never goes past the current revision
    while (bad + 1 < good) {
      int64_t mid = bad + (good - bad) / 2;
      readable = Readable(mid);
      if (!readable.ok()) return readable.status();
      (*readable ? good : bad) = mid;
    }
    NoteCompacted(good);
    return good;
  }

  Result<KeyValue> Get(const std::string& key, int64_t revision) override {
    pb::RangeRequest req;
    req.set_key(key);
    req.set_revision(revision);
    auto resp = Range(req, "get " + key);
    if (!resp.ok()) return resp.status();
    if (resp->kvs_size() == 0) return NotFound("key " + key);
    return ToKeyValue(resp->kvs(0));
  }

  Result<ListResult> List(const RangeOptions& options) override {
    if (options.limit < 0) return InvalidArgument("negative list limit");
    pb::RangeRequest req;
    std::string start = RangeStart(options.prefix);
    if (!options.start_after.empty()) {
      // The smallest key strictly greater than start_after.
      std::string after = options.start_after + '\0';
      if (after > start) start = std::move(after);
    }
    req.set_key(std::move(start));
    req.set_range_end(PrefixEnd(options.prefix));
    req.set_limit(options.limit);
    req.set_revision(options.revision);
    auto resp = Range(req, "list " + options.prefix);
    if (!resp.ok()) return resp.status();
    ListResult out;
    out.kvs.reserve(resp->kvs_size());
    for (const pb::KeyValue& kv : resp->kvs()) out.kvs.push_back(ToKeyValue(kv));
    // The header carries the current revision, not the one read at.
    out.revision = options.revision != 0 ? options.revision : resp->header().revision();
    out.more = resp->more();
    return out;
  }

  Result<int64_t> Count(const std::string& prefix) override {
    pb::RangeRequest req;
    req.set_key(RangeStart(prefix));
    req.set_range_end(PrefixEnd(prefix));
    req.set_count_only(true);
    auto resp = Range(req, "count " + prefix);
    if (!resp.ok()) return resp.status();
    return resp->count();
  }

  Result<KeyValue> Create(const std::string& key, std::string value,
                          std::chrono::seconds ttl) override {
    auto lease = GrantLease(ttl);
    if (!lease.ok()) return lease.status();
    pb::TxnRequest req;
    pb::Compare* cmp = req.add_compare();
    cmp->set_key(key);
    cmp->set_target(pb::Compare::CREATE);
    cmp->set_result(pb::Compare::EQUAL);
    cmp->set_create_revision(0);  // the key does not exist
    pb::PutRequest* put = req.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value);
    put->set_lease(*lease);
    auto resp = Txn(req, "create " + key);
    if (!resp.ok()) {
      RevokeLease(*lease);
      return resp.status();
    }
    if (!resp->succeeded()) {
      RevokeLease(*lease);
      return AlreadyExists("key " + key);
    }
    KeyValue out;
    out.key = key;
    out.value = std::move(value);
    out.create_revision = out.mod_revision = resp->header().revision();
    return out;
  }

  Result<KeyValue> Update(const std::string& key, std::string value, int64_t expected_mod_revision,
                          std::chrono::seconds ttl) override {
    auto lease = GrantLease(ttl);
    if (!lease.ok()) return lease.status();
    pb::TxnRequest req;
    AddExpectation(req, key, expected_mod_revision);
    pb::PutRequest* put = req.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value);
    put->set_lease(*lease);  // 0 also detaches a lease an earlier version had
    put->set_prev_kv(true);  // for the create_revision, which a Put answer lacks
    req.add_failure()->mutable_request_range()->set_key(key);
    auto resp = Txn(req, "update " + key);
    if (!resp.ok() || !resp->succeeded()) RevokeLease(*lease);
    if (!resp.ok()) return resp.status();
    if (!resp->succeeded()) return WhyNot(*resp, key, expected_mod_revision);
    KeyValue out;
    out.key = key;
    out.value = std::move(value);
    out.mod_revision = resp->header().revision();
    if (resp->responses_size() > 0) {
      out.create_revision = resp->responses(0).response_put().prev_kv().create_revision();
    }
    return out;
  }

  Result<Event> Delete(const std::string& key, int64_t expected_mod_revision) override {
    pb::TxnRequest req;
    AddExpectation(req, key, expected_mod_revision);
    pb::DeleteRangeRequest* del = req.add_success()->mutable_request_delete_range();
    del->set_key(key);
    del->set_prev_kv(true);
    req.add_failure()->mutable_request_range()->set_key(key);
    auto resp = Txn(req, "delete " + key);
    if (!resp.ok()) return resp.status();
    if (!resp->succeeded()) return WhyNot(*resp, key, expected_mod_revision);
    Event out;
    out.type = Event::Type::kDelete;
    out.kv.key = key;
    out.kv.mod_revision = resp->header().revision();
    if (resp->responses_size() > 0) {
      const auto& deleted = resp->responses(0).response_delete_range();
      if (deleted.prev_kvs_size() > 0) out.prev = ToKeyValue(deleted.prev_kvs(0));
    }
    return out;
  }

  Result<std::unique_ptr<Watcher>> Watch(const std::string& prefix,
                                         int64_t from_revision) override {
    int64_t start = from_revision;
    if (from_revision <= 0) {
      // An explicit start (not etcd's "from now") so a stream that breaks before its first event
      // resumes exactly where the caller's "now" was.
      auto current = CurrentRevision();
      if (!current.ok()) return current.status();
      start = *current + 1;
    } else {
      // etcd reports a compacted start only after the stream opened; asking first lets Watch
      // itself fail with kCompacted, as the contract says.
      auto readable = Readable(from_revision);
      if (!readable.ok() && readable.status().code() != StatusCode::kInvalidArgument) {
        return readable.status();  // a future start is fine: those events will come
      }
      if (readable.ok() && !*readable) {
        return Compacted(
            fmt::format("watch of '{}' from revision {}: compacted", prefix, from_revision));
      }
    }
    auto state = std::make_shared<WatchState>();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closing_) return Cancelled("store closing");
      std::erase_if(watchers_, [](const std::weak_ptr<WatchState>& w) { return w.expired(); });
      watchers_.push_back(state);
    }
    try {
      return std::unique_ptr<Watcher>(std::make_unique<EtcdWatcher>(members_, state, prefix, start,
                                                                    tuning_.watch_buffer_limit));
    } catch (const std::system_error& e) {
      return Unavailable(fmt::format("cannot start a watch thread: {}", e.what()));
    }
  }

  Status Compact(int64_t revision) override {
    if (revision <= 0) return Status::Ok();
    pb::CompactionRequest req;
    req.set_revision(revision);
    req.set_physical(true);
    pb::CompactionResponse resp;
    grpc::Status s =
        members_->Call([&](Members::Member& m,
                           grpc::ClientContext* ctx) { return m.kv->Compact(ctx, req, &resp); },
                       std::chrono::duration_cast<std::chrono::milliseconds>(kCompactTimeout));
    if (!s.ok()) {
      Status st = FromGrpc(s, fmt::format("compact {}", revision));
      // Compacting at or before the existing point is no change, not an error.
      if (st.code() != StatusCode::kCompacted) return st;
      return Status::Ok();
    }
    NoteCompacted(revision);
    return Status::Ok();
  }

 private:
  Result<pb::RangeResponse> Range(const pb::RangeRequest& req, std::string_view what) {
    pb::RangeResponse resp;
    grpc::Status s = members_->Call(
        [&](Members::Member& m, grpc::ClientContext* ctx) { return m.kv->Range(ctx, req, &resp); });
    if (!s.ok()) return FromGrpc(s, what);
    return resp;
  }

  Result<pb::TxnResponse> Txn(const pb::TxnRequest& req, std::string_view what) {
    pb::TxnResponse resp;
    grpc::Status s = members_->Call(
        [&](Members::Member& m, grpc::ClientContext* ctx) { return m.kv->Txn(ctx, req, &resp); });
    if (!s.ok()) return FromGrpc(s, what);
    return resp;
  }

  // Whether the state at `revision` can still be read (false once compacted away).
  Result<bool> Readable(int64_t revision) {
    pb::RangeRequest req;
    req.set_key(std::string(1, '\0'));
    req.set_count_only(true);
    req.set_revision(revision);
    auto resp = Range(req, fmt::format("read at {}", revision));
    if (resp.ok()) return true;
    if (resp.status().code() == StatusCode::kCompacted) return false;
    return resp.status();
  }

  void NoteCompacted(int64_t revision) {
    int64_t known = compacted_.load();
    while (known < revision && !compacted_.compare_exchange_weak(known, revision)) {
    }
  }

  // The Txn condition for "the key exists at the expected version (any, for 0)".
  static void AddExpectation(pb::TxnRequest& req, const std::string& key, int64_t expected) {
    pb::Compare* cmp = req.add_compare();
    cmp->set_key(key);
    if (expected == 0) {
      cmp->set_target(pb::Compare::VERSION);
      cmp->set_result(pb::Compare::GREATER);
      cmp->set_version(0);
    } else {
      cmp->set_target(pb::Compare::MOD);
      cmp->set_result(pb::Compare::EQUAL);
      cmp->set_mod_revision(expected);
    }
  }

  // A failed conditional write read the key in the same Txn: absent is kNotFound, anything else
  // a lost compare-and-swap.
  static Status WhyNot(const pb::TxnResponse& resp, const std::string& key, int64_t expected) {
    if (resp.responses_size() == 0 || resp.responses(0).response_range().kvs_size() == 0) {
      return NotFound("key " + key);
    }
    return Conflict(fmt::format("key {} is at revision {}, not {}", key,
                                resp.responses(0).response_range().kvs(0).mod_revision(),
                                expected));
  }

  // A lease per expiring write: etcd deletes the key (emitting a delete event) when it runs out.
  // 0 (no lease) for ttl 0.
  Result<int64_t> GrantLease(std::chrono::seconds ttl) {
    if (ttl.count() <= 0) return int64_t{0};
    pb::LeaseGrantRequest req;
    req.set_ttl(ttl.count());
    pb::LeaseGrantResponse resp;
    grpc::Status s = members_->Call([&](Members::Member& m, grpc::ClientContext* ctx) {
      return m.lease->LeaseGrant(ctx, req, &resp);
    });
    if (!s.ok()) return FromGrpc(s, "lease grant");
    if (!resp.error().empty()) return Unavailable("etcd lease grant: " + resp.error());
    return resp.id();
  }

  // Best effort: a lease left behind only expires later, having no key attached.
  void RevokeLease(int64_t id) {
    if (id == 0) return;
    pb::LeaseRevokeRequest req;
    req.set_id(id);
    pb::LeaseRevokeResponse resp;
    grpc::Status s = members_->Call([&](Members::Member& m, grpc::ClientContext* ctx) {
      return m.lease->LeaseRevoke(ctx, req, &resp);
    });
    if (!s.ok()) log::Debug(kLog, "lease revoke {}: {}", id, s.error_message());
  }

  // Keeps the last retain_revisions revisions, as the SQLite store does; every server of an HA
  // cluster runs this, and a compaction someone else already did is a no-op.
  void CompactLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, options_.compact_interval, [this] { return closing_; })) {
      lock.unlock();
      auto current = CurrentRevision();
      int64_t target = current.ok() ? *current - options_.retain_revisions : 0;
      if (target > compacted_.load()) {
        Status s = Compact(target);
        if (s.ok()) {
          log::Debug(kLog, "compacted up to revision {}", target);
        } else {
          log::Warn(kLog, "automatic compaction to {}: {}", target, s.ToString());
        }
      }
      lock.lock();
    }
  }

  std::shared_ptr<Members> members_;
  const StoreOptions options_;
  const EtcdTuning tuning_;
  // The highest compaction this store made or found; others may have compacted further.
  std::atomic<int64_t> compacted_{0};

  std::mutex mu_;
  std::condition_variable cv_;                       // wakes the compactor on close
  bool closing_ = false;                             // guarded by mu_
  std::vector<std::weak_ptr<WatchState>> watchers_;  // guarded by mu_; ended on close
  std::thread compactor_;
};

}  // namespace

bool IsEtcdEndpoint(const std::string& endpoint) {
  return endpoint.starts_with("http://") || endpoint.starts_with("https://");
}

Result<std::vector<EtcdEndpoint>> ParseEtcdEndpoints(const std::string& endpoint) {
  std::vector<EtcdEndpoint> out;
  std::stringstream list(endpoint);
  std::string item;
  while (std::getline(list, item, ',')) {
    auto first = item.find_first_not_of(" \t");
    auto last = item.find_last_not_of(" \t");
    if (first == std::string::npos) continue;
    item = item.substr(first, last - first + 1);
    EtcdEndpoint e;
    e.url = item;
    std::string rest;
    if (item.starts_with("https://")) {
      e.tls = true;
      rest = item.substr(8);
    } else if (item.starts_with("http://")) {
      rest = item.substr(7);
    } else {
      return InvalidArgument(
          fmt::format("datastore endpoint '{}' is not an http:// or https:// etcd URL", item));
    }
    if (auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
    if (rest.empty())
      return InvalidArgument(fmt::format("datastore endpoint '{}' has no host", item));
    // A port is present unless the last ':' is inside an IPv6 literal's brackets.
    auto colon = rest.rfind(':');
    auto bracket = rest.rfind(']');
    if (colon == std::string::npos || (bracket != std::string::npos && bracket > colon)) {
      rest += ":2379";
    }
    e.target = std::move(rest);
    out.push_back(std::move(e));
  }
  if (out.empty()) return InvalidArgument("datastore endpoint lists no etcd member");
  return out;
}

namespace {

std::vector<EtcdMember> ToMembers(const google::protobuf::RepeatedPtrField<pb::Member>& in) {
  std::vector<EtcdMember> out;
  for (const pb::Member& m : in) {
    EtcdMember member;
    member.id = m.id();
    member.name = m.name();
    member.peer_urls.assign(m.peerurls().begin(), m.peerurls().end());
    member.client_urls.assign(m.clienturls().begin(), m.clienturls().end());
    out.push_back(std::move(member));
  }
  return out;
}

}  // namespace

Result<std::vector<EtcdMember>> ListEtcdMembers(const StoreOptions& options) {
  auto members = ConnectMembers(options, EtcdTuning{});
  if (!members.ok()) return members.status();
  pb::MemberListRequest req;
  pb::MemberListResponse resp;
  grpc::Status s = (*members)->Call([&](Members::Member& m, grpc::ClientContext* ctx) {
    return m.cluster->MemberList(ctx, req, &resp);
  });
  if (!s.ok()) return FromGrpc(s, "member list");
  return ToMembers(resp.members());
}

Result<std::vector<EtcdMember>> AddEtcdMember(const StoreOptions& options,
                                              const std::string& peer_url) {
  auto listed = ListEtcdMembers(options);
  if (!listed.ok()) return listed.status();
  for (const EtcdMember& m : *listed) {
    if (std::find(m.peer_urls.begin(), m.peer_urls.end(), peer_url) != m.peer_urls.end()) {
      return listed;
    }
  }
  auto members = ConnectMembers(options, EtcdTuning{});
  if (!members.ok()) return members.status();
  pb::MemberAddRequest req;
  req.add_peerurls(peer_url);
  pb::MemberAddResponse resp;
  grpc::Status s = (*members)->Call([&](Members::Member& m, grpc::ClientContext* ctx) {
    return m.cluster->MemberAdd(ctx, req, &resp);
  });
  if (!s.ok()) return FromGrpc(s, "member add " + peer_url);
  return ToMembers(resp.members());
}

Result<std::unique_ptr<Store>> OpenEtcdStore(const StoreOptions& options,
                                             const EtcdTuning& tuning) {
  auto members = ConnectMembers(options, tuning);
  if (!members.ok()) return members.status();
  auto store = std::make_unique<EtcdStore>(std::move(*members), options, tuning);
  Status ready = store->WaitReady(tuning.connect_timeout);
  if (!ready.ok()) return ready;
  store->StartCompactor();
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace orch
