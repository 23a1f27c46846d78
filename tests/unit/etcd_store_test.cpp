// The etcd store against a real etcd (/usr/bin/etcd on loopback, own temp data dir): the
// behaviour include/orch/store.h promises. Registered as e2e_etcd_store since it runs a server.
#include "etcd/etcd_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "etcd_process.h"
#include "orch/store.h"

namespace {

using namespace std::chrono_literals;
using orch::Event;
using orch::KeyValue;
using orch::StatusCode;
using orch::Store;
using orch::Watcher;

// One etcd for the whole run (starting one takes a second); each test case works under its own
// key prefix. Destroyed at exit, and killed by the kernel if the test dies first.
orch::testing::EtcdProcess& Etcd() {
  static std::unique_ptr<orch::testing::EtcdProcess> etcd = [] {
    auto started = orch::testing::EtcdProcess::Start();
    if (!started.ok()) FAIL("cannot start etcd: " << started.status().ToString());
    return std::move(started).value();
  }();
  return *etcd;
}

std::unique_ptr<Store> Open(orch::EtcdTuning tuning = {}) {
  orch::StoreOptions options;
  options.endpoint = Etcd().endpoint();
  auto store = orch::OpenEtcdStore(options, tuning);
  if (!store.ok()) FAIL("cannot open the etcd store: " << store.status().ToString());
  return std::move(store).value();
}

// Reads from `w` until `count` events arrived or `timeout` passed.
std::vector<Event> Collect(Watcher& w, std::size_t count, std::chrono::milliseconds timeout = 10s) {
  std::vector<Event> out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < count && std::chrono::steady_clock::now() < deadline) {
    auto batch = w.Next(200ms);
    REQUIRE(batch.ok());
    out.insert(out.end(), batch->begin(), batch->end());
  }
  return out;
}

}  // namespace

TEST_CASE("etcd: endpoints parse k3s style and bad ones are refused") {
  auto eps = orch::ParseEtcdEndpoints("http://10.0.0.1:2379, https://node-b,http://[::1]:2381/");
  REQUIRE(eps.ok());
  REQUIRE(eps->size() == 3);
  CHECK((*eps)[0].target == "10.0.0.1:2379");
  CHECK_FALSE((*eps)[0].tls);
  CHECK((*eps)[1].target == "node-b:2379");
  CHECK((*eps)[1].tls);
  CHECK((*eps)[2].target == "[::1]:2381");
  CHECK(orch::ParseEtcdEndpoints("etcd://x:2379").status().code() == StatusCode::kInvalidArgument);
  CHECK(orch::ParseEtcdEndpoints("").status().code() == StatusCode::kInvalidArgument);
  CHECK(orch::IsEtcdEndpoint("https://a:2379"));
  CHECK_FALSE(orch::IsEtcdEndpoint("sqlite:///tmp/x.db"));

  orch::StoreOptions options;
  options.endpoint = "https://127.0.0.1:1";
  options.ca_file = "/nonexistent/ca.pem";
  CHECK(orch::OpenStore(options).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("etcd: create, compare-and-swap update, delete") {
  auto store = Open();
  const std::string key = "/t/crud/a";

  auto created = store->Create(key, "v1");
  REQUIRE(created.ok());
  CHECK(created->value == "v1");
  CHECK(created->create_revision == created->mod_revision);
  auto rev = store->CurrentRevision();
  REQUIRE(rev.ok());
  CHECK(*rev == created->mod_revision);

  CHECK(store->Create(key, "again").status().code() == StatusCode::kAlreadyExists);
  // A failed write takes no revision.
  CHECK(*store->CurrentRevision() == created->mod_revision);

  CHECK(store->Update(key, "v2", created->mod_revision + 100).status().code() ==
        StatusCode::kConflict);
  CHECK(store->Update("/t/crud/missing", "v", 0).status().code() == StatusCode::kNotFound);
  CHECK(store->Update("/t/crud/missing", "v", 5).status().code() == StatusCode::kNotFound);

  auto updated = store->Update(key, "v2", created->mod_revision);
  REQUIRE(updated.ok());
  CHECK(updated->mod_revision > created->mod_revision);
  CHECK(updated->create_revision == created->create_revision);
  auto any = store->Update(key, "v3", 0);
  REQUIRE(any.ok());
  CHECK(any->create_revision == created->create_revision);

  auto now = store->Get(key);
  REQUIRE(now.ok());
  CHECK(now->value == "v3");
  CHECK(now->mod_revision == any->mod_revision);
  auto then = store->Get(key, updated->mod_revision);
  REQUIRE(then.ok());
  CHECK(then->value == "v2");
  CHECK(store->Get(key, created->mod_revision - 1).status().code() == StatusCode::kNotFound);
  CHECK(store->Get(key, *store->CurrentRevision() + 1000).status().code() ==
        StatusCode::kInvalidArgument);

  CHECK(store->Delete(key, updated->mod_revision).status().code() == StatusCode::kConflict);
  auto deleted = store->Delete(key, any->mod_revision);
  REQUIRE(deleted.ok());
  CHECK(deleted->type == Event::Type::kDelete);
  CHECK(deleted->kv.key == key);
  CHECK(deleted->kv.mod_revision > any->mod_revision);
  REQUIRE(deleted->prev.has_value());
  CHECK(deleted->prev->value == "v3");
  CHECK(store->Delete(key).status().code() == StatusCode::kNotFound);
  CHECK(store->Get(key).status().code() == StatusCode::kNotFound);

  // A deleted key can be created anew.
  auto recreated = store->Create(key, "v4");
  REQUIRE(recreated.ok());
  CHECK(recreated->create_revision == recreated->mod_revision);
}

TEST_CASE("etcd: paged lists stay consistent at the first page's revision") {
  auto store = Open();
  const std::string prefix = "/t/list/";
  std::map<std::string, std::string> expected;
  for (int i = 0; i < 25; ++i) {
    std::string key = prefix + fmt::format("k{:03}", i);
    REQUIRE(store->Create(key, fmt::format("v{}", i)).ok());
    expected[key] = fmt::format("v{}", i);
  }
  // Neighbours that a prefix match must not pick up.
  REQUIRE(store->Create("/t/list", "parent").ok());
  REQUIRE(store->Create("/t/listx/k", "sibling").ok());

  orch::RangeOptions page;
  page.prefix = prefix;
  page.limit = 10;
  auto first = store->List(page);
  REQUIRE(first.ok());
  REQUIRE(first->kvs.size() == 10);
  CHECK(first->more);
  const int64_t at = first->revision;

  // Writes between pages must not show in later pages.
  REQUIRE(store->Update(prefix + "k015", "changed", 0).ok());
  REQUIRE(store->Create(prefix + "k010a", "new").ok());
  REQUIRE(store->Delete(prefix + "k020").ok());

  std::map<std::string, std::string> seen;
  for (const KeyValue& kv : first->kvs) seen[kv.key] = kv.value;
  page.revision = at;
  page.start_after = first->kvs.back().key;
  for (;;) {
    auto next = store->List(page);
    REQUIRE(next.ok());
    CHECK(next->revision == at);
    for (const KeyValue& kv : next->kvs) {
      CHECK(kv.key > page.start_after);
      seen[kv.key] = kv.value;
    }
    if (!next->more) break;
    REQUIRE_FALSE(next->kvs.empty());
    page.start_after = next->kvs.back().key;
  }
  CHECK(seen == expected);

  orch::RangeOptions all;
  all.prefix = prefix;
  auto latest = store->List(all);
  REQUIRE(latest.ok());
  CHECK(latest->kvs.size() == 25);  // +k010a -k020
  CHECK_FALSE(latest->more);
  CHECK(std::is_sorted(latest->kvs.begin(), latest->kvs.end(),
                       [](const KeyValue& a, const KeyValue& b) { return a.key < b.key; }));
  auto count = store->Count(prefix);
  REQUIRE(count.ok());
  CHECK(*count == 25);
  CHECK(*store->Count("/t/nothing-here/") == 0);

  // A limit that ends exactly at the last key says there is no more.
  orch::RangeOptions exact;
  exact.prefix = prefix;
  exact.limit = 25;
  auto whole = store->List(exact);
  REQUIRE(whole.ok());
  CHECK(whole->kvs.size() == 25);
  CHECK_FALSE(whole->more);
}

TEST_CASE("etcd: a key with a TTL expires with a delete event") {
  auto store = Open();
  auto watcher = store->Watch("/t/ttl/", 0);
  REQUIRE(watcher.ok());
  auto created = store->Create("/t/ttl/lease", "short-lived", 1s);
  REQUIRE(created.ok());
  // etcd raises TTLs below its minimum (2 s by default) and checks expiry twice a second.
  auto events = Collect(**watcher, 2, 15s);
  REQUIRE(events.size() == 2);
  CHECK(events[0].type == Event::Type::kPut);
  CHECK(events[1].type == Event::Type::kDelete);
  CHECK(events[1].kv.key == "/t/ttl/lease");
  CHECK(events[1].kv.mod_revision > created->mod_revision);
  REQUIRE(events[1].prev.has_value());
  CHECK(events[1].prev->value == "short-lived");
  CHECK(store->Get("/t/ttl/lease").status().code() == StatusCode::kNotFound);

  // An update without TTL detaches the key from its lease: it stays.
  auto kept = store->Create("/t/ttl/kept", "x", 1s);
  REQUIRE(kept.ok());
  REQUIRE(store->Update("/t/ttl/kept", "y", kept->mod_revision).ok());
  std::this_thread::sleep_for(3500ms);
  CHECK(store->Get("/t/ttl/kept").ok());
}

TEST_CASE("etcd: concurrent writers are watched in revision order without gaps") {
  auto store = Open();
  auto watcher = store->Watch("/t/order/", 0);
  REQUIRE(watcher.ok());
  constexpr int kWriters = 4;
  constexpr int kEach = 50;
  std::vector<std::vector<int64_t>> acked(kWriters);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kEach; ++i) {
        std::string key = fmt::format("/t/order/w{}/k{}", w, i % 10);
        auto r = i < 10 ? store->Create(key, "x") : store->Update(key, "y", 0);
        if (r.ok()) acked[w].push_back(r->mod_revision);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<int64_t> want;
  for (auto& a : acked) {
    REQUIRE(a.size() == kEach);
    want.insert(a.begin(), a.end());
  }
  auto events = Collect(**watcher, kWriters * kEach);
  REQUIRE(events.size() == kWriters * kEach);
  std::set<int64_t> got;
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (i > 0) CHECK(events[i].kv.mod_revision > events[i - 1].kv.mod_revision);
    got.insert(events[i].kv.mod_revision);
    // Updates carry the version they replaced.
    if (events[i].kv.value == "y") CHECK(events[i].prev.has_value());
  }
  CHECK(got == want);
  auto extra = (*watcher)->Next(300ms);
  REQUIRE(extra.ok());
  CHECK(extra->empty());
}

TEST_CASE("etcd: watch replays history from a revision, then follows live") {
  auto store = Open();
  auto first = store->Create("/t/replay/a", "1");
  REQUIRE(first.ok());
  REQUIRE(store->Update("/t/replay/a", "2", 0).ok());
  REQUIRE(store->Create("/t/replay/b", "3").ok());
  REQUIRE(store->Delete("/t/replay/a").ok());
  REQUIRE(store->Create("/t/other", "not watched").ok());

  auto watcher = store->Watch("/t/replay/", first->mod_revision);
  REQUIRE(watcher.ok());
  auto history = Collect(**watcher, 4);
  REQUIRE(history.size() == 4);
  CHECK(history[0].kv.mod_revision == first->mod_revision);
  CHECK(history[0].kv.value == "1");
  CHECK_FALSE(history[0].prev.has_value());
  CHECK(history[1].prev->value == "1");
  CHECK(history[3].type == Event::Type::kDelete);
  CHECK(history[3].prev->value == "2");

  auto live = store->Create("/t/replay/c", "4");
  REQUIRE(live.ok());
  auto more = Collect(**watcher, 1);
  REQUIRE(more.size() == 1);
  CHECK(more[0].kv.mod_revision == live->mod_revision);
}

TEST_CASE("etcd: a watch resumes without gaps after etcd restarts") {
  auto store = Open();
  auto watcher = store->Watch("/t/resume/", 0);
  REQUIRE(watcher.ok());
  auto before = store->Create("/t/resume/before", "1");
  REQUIRE(before.ok());
  auto got = Collect(**watcher, 1);
  REQUIRE(got.size() == 1);

  REQUIRE(Etcd().Restart().ok());
  // Writes fail while etcd is down or electing itself; the caller retries.
  std::vector<int64_t> acked;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (acked.size() < 3 && std::chrono::steady_clock::now() < deadline) {
    auto r = store->Create(fmt::format("/t/resume/after{}", acked.size()), "x");
    if (r.ok()) {
      acked.push_back(r->mod_revision);
    } else {
      CHECK(r.status().code() == StatusCode::kUnavailable);
      std::this_thread::sleep_for(100ms);
    }
  }
  REQUIRE(acked.size() == 3);
  auto after = Collect(**watcher, 3, 20s);
  REQUIRE(after.size() == 3);
  for (int i = 0; i < 3; ++i) CHECK(after[i].kv.mod_revision == acked[i]);
  auto extra = (*watcher)->Next(300ms);
  REQUIRE(extra.ok());
  CHECK(extra->empty());
}

TEST_CASE("etcd: compaction makes old revisions kCompacted") {
  auto store = Open();
  auto v1 = store->Create("/t/compact/a", "1");
  REQUIRE(v1.ok());
  auto v2 = store->Update("/t/compact/a", "2", 0);
  REQUIRE(v2.ok());
  auto v3 = store->Update("/t/compact/a", "3", 0);
  REQUIRE(v3.ok());

  REQUIRE(store->Compact(v2->mod_revision).ok());
  CHECK(*store->CompactedRevision() == v2->mod_revision);
  CHECK(store->Compact(v1->mod_revision).ok());  // already compacted: no change
  CHECK(store->Compact(*store->CurrentRevision() + 100).code() == StatusCode::kInvalidArgument);

  CHECK(store->Get("/t/compact/a", v1->mod_revision).status().code() == StatusCode::kCompacted);
  auto kept = store->Get("/t/compact/a", v2->mod_revision);
  REQUIRE(kept.ok());
  CHECK(kept->value == "2");
  orch::RangeOptions old;
  old.prefix = "/t/compact/";
  old.revision = v1->mod_revision;
  CHECK(store->List(old).status().code() == StatusCode::kCompacted);
  CHECK(store->Watch("/t/compact/", v1->mod_revision).status().code() == StatusCode::kCompacted);
  auto from_kept = store->Watch("/t/compact/", v2->mod_revision);
  REQUIRE(from_kept.ok());
  auto events = Collect(**from_kept, 2);
  REQUIRE(events.size() == 2);
  CHECK(events[1].kv.value == "3");

  // Another client learns the compaction point from etcd itself.
  auto other = Open();
  CHECK(*other->CompactedRevision() == v2->mod_revision);
}

TEST_CASE("etcd: a watcher nobody drains ends with kCompacted") {
  orch::EtcdTuning tuning;
  tuning.watch_buffer_limit = 20;
  auto store = Open(tuning);
  auto watcher = store->Watch("/t/slow/", 0);
  REQUIRE(watcher.ok());
  for (int i = 0; i < 50; ++i) REQUIRE(store->Create(fmt::format("/t/slow/k{}", i), "x").ok());
  auto deadline = std::chrono::steady_clock::now() + 10s;
  orch::Status ended;
  while (ended.ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
    auto batch = (*watcher)->Next(0ms);
    if (!batch.ok()) ended = batch.status();
  }
  CHECK(ended.code() == StatusCode::kCompacted);
}

TEST_CASE("etcd: Cancel and closing the store end blocked watchers") {
  auto store = Open();
  auto watcher = store->Watch("/t/cancel/", 0);
  REQUIRE(watcher.ok());
  std::atomic<int> code{-1};
  std::thread reader([&] {
    auto r = (*watcher)->Next(30s);
    code = static_cast<int>(r.status().code());
  });
  std::this_thread::sleep_for(200ms);
  auto start = std::chrono::steady_clock::now();
  (*watcher)->Cancel();
  reader.join();
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  CHECK(code == static_cast<int>(StatusCode::kCancelled));

  auto second = store->Watch("/t/cancel/", 0);
  REQUIRE(second.ok());
  store.reset();
  CHECK((*second)->Next(5s).status().code() == StatusCode::kCancelled);
}

TEST_CASE("etcd: OpenStore dispatches http endpoints and fails over to a live member") {
  orch::StoreOptions options;
  // The first member is a closed port: calls move on to the live one.
  options.endpoint = "http://127.0.0.1:1," + Etcd().endpoint();
  auto store = orch::OpenStore(options);
  REQUIRE(store.ok());
  for (int i = 0; i < 5; ++i) {
    auto r = (*store)->Create(fmt::format("/t/failover/k{}", i), "x");
    REQUIRE(r.ok());
  }
  CHECK(*(*store)->Count("/t/failover/") == 5);

  orch::StoreOptions dead;
  dead.endpoint = "http://127.0.0.1:1";
  orch::EtcdTuning quick;
  quick.connect_timeout = 500ms;
  CHECK(orch::OpenEtcdStore(dead, quick).status().code() == StatusCode::kUnavailable);
}

TEST_CASE("etcd: https endpoints with a CA and a client certificate") {
  char dir_template[] = "/tmp/orch-etcd-tls-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const std::string dir = dir_template;
  struct RemoveDir {
    std::string path;
    ~RemoveDir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } cleanup{dir};
  // A throwaway CA that signs etcd's serving certificate (for 127.0.0.1) and orch's client one.
  std::string script = fmt::format(
      "(set -e; cd '{}'\n"
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -subj /CN=orch-ca "
      "-days 1\n"
      "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > ext\n"
      "for n in server client; do\n"
      "  openssl req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr -subj /CN=orch-$n\n"
      "  openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $n.pem "
      "-days 1 -extfile ext\n"
      "done) >'{}/openssl.log' 2>&1",
      dir, dir);
  REQUIRE(std::system(script.c_str()) == 0);

  auto etcd = orch::testing::EtcdProcess::Start(
      "/usr/bin/etcd",
      orch::testing::EtcdProcess::Tls{dir + "/ca.pem", dir + "/server.pem", dir + "/server.key"});
  REQUIRE(etcd.ok());
  orch::StoreOptions options;
  options.endpoint = (*etcd)->endpoint();
  REQUIRE(options.endpoint.starts_with("https://"));
  options.ca_file = dir + "/ca.pem";
  options.cert_file = dir + "/client.pem";
  options.key_file = dir + "/client.key";
  auto store = orch::OpenStore(options);
  REQUIRE(store.ok());
  auto created = (*store)->Create("/t/tls/a", "secret");
  REQUIRE(created.ok());
  CHECK((*store)->Get("/t/tls/a")->value == "secret");

  // etcd demands a client certificate: without one no call gets through.
  orch::StoreOptions anonymous = options;
  anonymous.cert_file.clear();
  anonymous.key_file.clear();
  orch::EtcdTuning quick;
  quick.connect_timeout = 1s;
  CHECK(orch::OpenEtcdStore(anonymous, quick).status().code() == StatusCode::kUnavailable);
  anonymous.cert_file = options.cert_file;
  CHECK(orch::OpenEtcdStore(anonymous, quick).status().code() == StatusCode::kInvalidArgument);
}
