// Tests of the embedded SQLite store (storage/sqlite_store.cpp) through the store contract:
// CAS, revisions, consistent pagination, TTL, watch, compaction, opening checks, snapshots,
// crashes.
#include "../../storage/sqlite_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "orch/log.h"
#include "orch/store.h"

namespace orch {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

// A fresh folder per test, removed at the end.
class TempDir {
 public:
  explicit TempDir(const std::string& base = fs::temp_directory_path().string()) {
    std::string templ = base + "/orch-sqlite-XXXXXX";
    REQUIRE(::mkdtemp(templ.data()) != nullptr);
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

StoreOptions Options(const TempDir& dir) {
  StoreOptions o;
  o.data_dir = dir.path();
  o.compact_interval = seconds(0);  // tests compact explicitly unless they say otherwise
  return o;
}

std::string DbPath(const TempDir& dir) {
  return dir.path() + "/server/db/state.db";
}

std::unique_ptr<Store> MustOpen(const StoreOptions& options) {
  auto store = OpenStore(options);
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  return std::move(*store);
}

// The store with test-sized internals (a tiny event window, small compaction slices).
std::unique_ptr<Store> MustOpenTuned(const TempDir& dir, const StoreOptions& options,
                                     const SqliteTuning& tuning) {
  auto store = OpenSqliteStore(DbPath(dir), options, tuning);
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  return std::move(*store);
}

// Runs `fn(thread, i)` for i in [0, n) spread over `threads` threads (writes then share group
// commits); returns how many calls returned false.
int Parallel(int threads, int n, const std::function<bool(int, int)>& fn) {
  std::atomic<int> failures{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = t; i < n; i += threads) {
        if (!fn(t, i)) ++failures;
      }
    });
  }
  for (auto& t : ts) t.join();
  return failures;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Reads events until one with revision >= `until` arrives (or fails the test after 10 s).
std::vector<Event> CollectUntil(Watcher& w, int64_t until) {
  std::vector<Event> all;
  auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while (all.empty() || all.back().kv.mod_revision < until) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    auto batch = w.Next(milliseconds(500));
    INFO(batch.status().ToString());
    REQUIRE(batch.ok());
    for (auto& e : *batch) all.push_back(std::move(e));
  }
  return all;
}

int64_t CountLogRows(const std::string& db_path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT count(*) FROM log", -1, &stmt, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
  int64_t n = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return n;
}

TEST_CASE("sqlite store: create, update, delete and their CAS failures", "[sqlite]") {
  TempDir dir;
  auto store = MustOpen(Options(dir));
  REQUIRE(*store->CurrentRevision() == 0);

  auto a = store->Create("/a", "1");
  REQUIRE(a.ok());
  CHECK(a->mod_revision == 1);
  CHECK(a->create_revision == 1);
  CHECK(store->Create("/a", "again").status().code() == StatusCode::kAlreadyExists);
  CHECK(*store->CurrentRevision() == 1);  // a failed write takes no revision

  CHECK(store->Update("/a", "2", 7).status().code() == StatusCode::kConflict);
  CHECK(store->Update("/missing", "2", 0).status().code() == StatusCode::kNotFound);
  auto a2 = store->Update("/a", "2", 1);
  REQUIRE(a2.ok());
  CHECK(a2->mod_revision == 2);
  CHECK(a2->create_revision == 1);
  auto a3 = store->Update("/a", "3", 0);  // 0 = any version
  REQUIRE(a3.ok());
  CHECK(a3->mod_revision == 3);

  CHECK(store->Delete("/a", 2).status().code() == StatusCode::kConflict);
  CHECK(store->Delete("/missing").status().code() == StatusCode::kNotFound);
  auto del = store->Delete("/a", 3);
  REQUIRE(del.ok());
  CHECK(del->type == Event::Type::kDelete);
  CHECK(del->kv.mod_revision == 4);
  CHECK(del->kv.value.empty());
  REQUIRE(del->prev);
  CHECK(del->prev->value == "3");
  CHECK(del->prev->mod_revision == 3);
  CHECK(store->Get("/a").status().code() == StatusCode::kNotFound);

  // Re-creation starts a new life: new create revision.
  auto again = store->Create("/a", "new");
  REQUIRE(again.ok());
  CHECK(again->create_revision == 5);
  CHECK(*store->CurrentRevision() == 5);

  CHECK(store->Create("", "x").status().code() == StatusCode::kInvalidArgument);
  CHECK(store->Create("/big", std::string(17 * 1024 * 1024, 'x')).status().code() ==
        StatusCode::kTooLarge);
  // Keys and values are bytes.
  std::string odd_key("/bin\0\xff\x01", 7);
  std::string odd_value("\0\1\2\xff", 4);
  REQUIRE(store->Create(odd_key, odd_value).ok());
  auto got = store->Get(odd_key);
  REQUIRE(got.ok());
  CHECK(got->value == odd_value);
  REQUIRE(store->Create("/empty", "").ok());
  CHECK(store->Get("/empty")->value.empty());
}

TEST_CASE("sqlite store: get at old revisions", "[sqlite]") {
  TempDir dir;
  auto store = MustOpen(Options(dir));
  REQUIRE(store->Create("/k", "v1").ok());     // 1
  REQUIRE(store->Create("/o", "x").ok());      // 2
  REQUIRE(store->Update("/k", "v2", 1).ok());  // 3
  REQUIRE(store->Delete("/k").ok());           // 4
  REQUIRE(store->Create("/k", "v3").ok());     // 5

  CHECK(store->Get("/k", 1)->value == "v1");
  CHECK(store->Get("/k", 2)->value == "v1");
  CHECK(store->Get("/k", 3)->value == "v2");
  CHECK(store->Get("/k", 3)->create_revision == 1);
  CHECK(store->Get("/k", 4).status().code() == StatusCode::kNotFound);
  CHECK(store->Get("/k", 5)->value == "v3");
  CHECK(store->Get("/k", 5)->create_revision == 5);
  CHECK(store->Get("/k")->value == "v3");
  CHECK(store->Get("/o", 1).status().code() == StatusCode::kNotFound);
  CHECK(store->Get("/k", 6).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("sqlite store: list, count, and exact `more`", "[sqlite]") {
  TempDir dir;
  auto store = MustOpen(Options(dir));
  for (int i = 0; i < 20; ++i) REQUIRE(store->Create(fmt::format("/p/{:02}", i), "v").ok());
  REQUIRE(store->Create("/pa", "outside").ok());
  REQUIRE(store->Create("/o", "outside").ok());

  CHECK(*store->Count("/p/") == 20);
  CHECK(*store->Count("") == 22);
  CHECK(*store->Count("/none/") == 0);

  RangeOptions o;
  o.prefix = "/p/";
  o.limit = 10;
  auto page1 = store->List(o);
  REQUIRE(page1.ok());
  CHECK(page1->kvs.size() == 10);
  CHECK(page1->more);
  CHECK(page1->revision == 22);
  o.start_after = page1->kvs.back().key;
  auto page2 = store->List(o);
  REQUIRE(page2.ok());
  CHECK(page2->kvs.size() == 10);
  CHECK(page2->kvs.front().key == "/p/10");
  CHECK_FALSE(page2->more);  // exactly the limit was left

  RangeOptions all;
  auto everything = store->List(all);
  REQUIRE(everything.ok());
  CHECK(everything->kvs.size() == 22);
  CHECK(std::is_sorted(everything->kvs.begin(), everything->kvs.end(),
                       [](const KeyValue& a, const KeyValue& b) { return a.key < b.key; }));
}

TEST_CASE("sqlite store: pagination stays consistent at a revision while writes go on",
          "[sqlite]") {
  TempDir dir;
  auto store = MustOpen(Options(dir));
  for (int i = 0; i < 100; i += 2) {
    REQUIRE(store->Create(fmt::format("/p/{:03}", i), fmt::format("v{}", i)).ok());
  }
  REQUIRE(store->Create("/q", "other prefix").ok());
  const int64_t at = *store->CurrentRevision();
  std::map<std::string, KeyValue> expected;
  auto before = store->List({"/p/", "", 0, 0});
  REQUIRE(before.ok());
  for (auto& kv : before->kvs) expected[kv.key] = kv;

  RangeOptions o;
  o.prefix = "/p/";
  o.limit = 7;
  auto page = store->List(o);
  REQUIRE(page.ok());
  REQUIRE(page->revision == at);
  std::vector<KeyValue> got = page->kvs;

  // Writes in the range, before and after the first page's end: updates, deletes, creations,
  // a delete and re-create, keys before the prefix and after it.
  REQUIRE(store->Update("/p/000", "changed", 0).ok());
  REQUIRE(store->Delete("/p/004").ok());
  REQUIRE(store->Update("/p/020", "changed", 0).ok());
  REQUIRE(store->Delete("/p/030").ok());
  REQUIRE(store->Create("/p/031", "new").ok());
  REQUIRE(store->Create("/p/001", "new").ok());
  REQUIRE(store->Delete("/p/050").ok());
  REQUIRE(store->Create("/p/050", "recreated").ok());
  REQUIRE(store->Create("/p/999", "new").ok());
  REQUIRE(store->Create("/o", "before").ok());
  for (int i = 60; i < 100; i += 2) REQUIRE(store->Delete(fmt::format("/p/{:03}", i)).ok());

  while (page->more) {
    o.start_after = got.back().key;
    o.revision = at;
    page = store->List(o);
    REQUIRE(page.ok());
    CHECK(page->revision == at);
    got.insert(got.end(), page->kvs.begin(), page->kvs.end());
  }
  REQUIRE(got.size() == expected.size());
  for (const auto& kv : got) {
    INFO(kv.key);
    REQUIRE(expected.count(kv.key));
    CHECK(expected[kv.key].value == kv.value);
    CHECK(expected[kv.key].mod_revision == kv.mod_revision);
    CHECK(expected[kv.key].create_revision == kv.create_revision);
  }

  // The same list at the old revision in one call, and `more` exact at old revisions too.
  auto whole = store->List({"/p/", "", 0, at});
  REQUIRE(whole.ok());
  CHECK(whole->kvs.size() == expected.size());
  auto last = store->List({"/p/", "/p/094", 2, at});
  REQUIRE(last.ok());
  CHECK(last->kvs.size() == 2);  // 096, 098: deleted since, still there at `at`
  CHECK_FALSE(last->more);
  // And the latest state.
  auto now = store->List({"/p/", "", 0, 0});
  CHECK(now->kvs.size() == expected.size() - 1 - 1 - 20 + 1 + 1 + 1);
}

TEST_CASE("sqlite store: TTL expiry deletes the key with a watched delete event", "[sqlite]") {
  TempDir dir;
  auto store = MustOpen(Options(dir));
  auto created = store->Create("/ttl/a", "x", seconds(1));
  REQUIRE(created.ok());
  REQUIRE(store->Create("/ttl/kept", "y", seconds(1)).ok());
  REQUIRE(store->Update("/ttl/kept", "y2", 0, seconds(0)).ok());  // TTL removed
  auto w = store->Watch("/ttl/", created->mod_revision);
  REQUIRE(w.ok());
  auto start = std::chrono::steady_clock::now();
  auto events = CollectUntil(**w, 4);
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE(events.size() == 4);
  const Event& expiry = events[3];
  CHECK(expiry.type == Event::Type::kDelete);
  CHECK(expiry.kv.key == "/ttl/a");
  REQUIRE(expiry.prev);
  CHECK(expiry.prev->value == "x");
  CHECK(took < seconds(3));
  CHECK(store->Get("/ttl/a").status().code() == StatusCode::kNotFound);
  std::this_thread::sleep_for(milliseconds(300));
  CHECK(store->Get("/ttl/kept")->value == "y2");
}

TEST_CASE("sqlite store: watch sees every revision once, in order, from 8 writers", "[sqlite]") {
  TempDir dir;
  auto store = MustOpen(Options(dir));
  REQUIRE(store->Create("/other", "not watched").ok());
  auto w = store->Watch("/w/", 0);
  REQUIRE(w.ok());

  struct Written {
    Event::Type type;
    std::string key, value;
  };
  std::mutex mu;
  std::map<int64_t, Written> written;
  constexpr int kThreads = 8;
  constexpr int kKeys = 40;
  std::atomic<int> failures{0};  // Catch2 assertions are for the test thread only
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kKeys; ++i) {
        std::string key = fmt::format("/w/{}/{}", t, i);
        auto c = store->Create(key, "c" + key);
        if (!c.ok()) return void(++failures);
        auto u = store->Update(key, "u" + key, c->mod_revision);
        if (!u.ok()) return void(++failures);
        std::lock_guard lock(mu);
        written[c->mod_revision] = {Event::Type::kPut, key, "c" + key};
        written[u->mod_revision] = {Event::Type::kPut, key, "u" + key};
        if (i % 3 == 0) {
          auto d = store->Delete(key, u->mod_revision);
          if (!d.ok()) return void(++failures);
          written[d->kv.mod_revision] = {Event::Type::kDelete, key, ""};
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  REQUIRE(failures == 0);
  const int64_t last = *store->CurrentRevision();
  REQUIRE(written.size() == static_cast<size_t>(last - 1));

  auto events = CollectUntil(**w, last);
  REQUIRE(events.size() == written.size());
  int64_t expect_rev = 2;
  for (const Event& e : events) {
    REQUIRE(e.kv.mod_revision == expect_rev);
    const Written& x = written[expect_rev];
    CHECK(e.type == x.type);
    CHECK(e.kv.key == x.key);
    CHECK(e.kv.value == x.value);
    if (x.type == Event::Type::kDelete) {
      REQUIRE(e.prev);
      CHECK(e.prev->value == "u" + x.key);
    } else if (x.value[0] == 'u') {
      REQUIRE(e.prev);
      CHECK(e.prev->value == "c" + x.key);
    } else {
      CHECK_FALSE(e.prev);
    }
    ++expect_rev;
  }
  // Nothing more.
  auto more = (*w)->Next(milliseconds(50));
  REQUIRE(more.ok());
  CHECK(more->empty());
}

TEST_CASE("sqlite store: watch resumes from a revision: history, then live, no gap", "[sqlite]") {
  TempDir dir;
  auto options = Options(dir);
  {
    auto store = MustOpen(options);
    for (int i = 1; i <= 30; ++i) REQUIRE(store->Create(fmt::format("/r/{}", i), "h").ok());
    REQUIRE(store->Update("/r/1", "h2", 1).ok());  // 31
    REQUIRE(store->Delete("/r/2").ok());           // 32
  }
  // Reopened, the in-memory window is empty: revisions 10..32 come from the log table.
  auto store = MustOpen(options);
  auto w = store->Watch("/r/", 10);
  REQUIRE(w.ok());
  std::atomic<int> failures{0};
  std::thread live([&] {
    for (int i = 31; i <= 60; ++i) {
      if (!store->Create(fmt::format("/r/{}", i), "live").ok()) ++failures;
    }
  });
  auto events = CollectUntil(**w, 62);
  live.join();
  REQUIRE(failures == 0);
  REQUIRE(events.size() == 53);
  for (size_t i = 0; i < events.size(); ++i) REQUIRE(events[i].kv.mod_revision == 10 + int64_t(i));
  const Event& update = events[31 - 10];
  CHECK(update.kv.value == "h2");
  REQUIRE(update.prev);  // from the log row at prev_rev
  CHECK(update.prev->value == "h");
  CHECK(update.prev->mod_revision == 1);
  const Event& del = events[32 - 10];
  CHECK(del.type == Event::Type::kDelete);
  REQUIRE(del.prev);
  CHECK(del.prev->key == "/r/2");
  CHECK(del.prev->value == "h");

  // From 0: only what follows.
  auto now = store->Watch("/r/", 0);
  REQUIRE(now.ok());
  REQUIRE(store->Update("/r/3", "after", 0).ok());
  auto next = CollectUntil(**now, *store->CurrentRevision());
  REQUIRE(next.size() == 1);
  CHECK(next[0].kv.value == "after");
}

TEST_CASE("sqlite store: a slow watcher falls out of the event window and catches up from the log",
          "[sqlite]") {
  TempDir dir;
  SqliteTuning tuning;
  tuning.ring_max_events = 16;
  auto store = MustOpenTuned(dir, Options(dir), tuning);
  auto w = store->Watch("/e/", 1);
  REQUIRE(w.ok());
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Every other write is outside the watched prefix.
        std::string key = fmt::format("/{}/{}/{}", i % 2 ? "e" : "x", t, i);
        if (!store->Create(key, key).ok()) ++failures;
        if (i % 10 == 0) std::this_thread::sleep_for(milliseconds(1));
      }
    });
  }
  // Consume slowly while the writers run: the cursor moves between log table and window.
  std::vector<Event> events;
  const int64_t total = kThreads * kPerThread;
  auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while (events.size() < static_cast<size_t>(total / 2)) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    auto batch = (*w)->Next(milliseconds(200));
    REQUIRE(batch.ok());
    events.insert(events.end(), batch->begin(), batch->end());
    std::this_thread::sleep_for(milliseconds(3));
  }
  for (auto& t : writers) t.join();
  REQUIRE(failures == 0);
  REQUIRE(events.size() == static_cast<size_t>(total / 2));
  std::set<std::string> keys;
  for (size_t i = 0; i < events.size(); ++i) {
    if (i > 0) CHECK(events[i].kv.mod_revision > events[i - 1].kv.mod_revision);
    CHECK(events[i].kv.key.rfind("/e/", 0) == 0);
    CHECK(events[i].kv.value == events[i].kv.key);
    keys.insert(events[i].kv.key);
  }
  CHECK(keys.size() == events.size());
  auto more = (*w)->Next(milliseconds(20));
  REQUIRE(more.ok());
  CHECK(more->empty());
}

TEST_CASE("sqlite store: Cancel and close wake a blocked Next", "[sqlite]") {
  TempDir dir;
  auto store = MustOpen(Options(dir));
  auto w = store->Watch("/", 0);
  REQUIRE(w.ok());
  auto start = std::chrono::steady_clock::now();
  std::thread canceller([&] {
    std::this_thread::sleep_for(milliseconds(100));
    (*w)->Cancel();
  });
  auto r = (*w)->Next(seconds(10));
  canceller.join();
  CHECK(r.status().code() == StatusCode::kCancelled);
  CHECK(std::chrono::steady_clock::now() - start < seconds(2));

  auto w2 = store->Watch("/", 0);
  REQUIRE(w2.ok());
  std::thread closer([&] {
    std::this_thread::sleep_for(milliseconds(100));
    store.reset();
  });
  auto r2 = (*w2)->Next(seconds(10));
  closer.join();
  CHECK(r2.status().code() == StatusCode::kCancelled);
}

TEST_CASE("sqlite store: compaction", "[sqlite]") {
  TempDir dir;
  auto options = Options(dir);
  SqliteTuning tuning;
  tuning.compact_slice_revisions = 2;  // many slices, each resuming where the last stopped
  auto store = MustOpenTuned(dir, options, tuning);
  auto early = store->Watch("/", 1);
  REQUIRE(early.ok());
  REQUIRE(store->Create("/a", "a1").ok());     // 1
  REQUIRE(store->Update("/a", "a2", 0).ok());  // 2
  REQUIRE(store->Update("/a", "a3", 0).ok());  // 3
  REQUIRE(store->Create("/b", "b1").ok());     // 4
  REQUIRE(store->Delete("/b").ok());           // 5
  REQUIRE(store->Create("/c", "c1").ok());     // 6
  REQUIRE(store->Update("/a", "a4", 0).ok());  // 7
  REQUIRE(store->Create("/d", "d1").ok());     // 8
  REQUIRE(store->Delete("/d").ok());           // 9

  CHECK(store->Compact(10).code() == StatusCode::kInvalidArgument);
  REQUIRE(store->Compact(5).ok());
  CHECK(*store->CompactedRevision() == 5);
  REQUIRE(store->Compact(3).ok());  // already compacted: fine, no change
  CHECK(*store->CompactedRevision() == 5);

  auto check_reads = [](Store& s) {
    CHECK(s.Get("/a", 4).status().code() == StatusCode::kCompacted);
    CHECK(s.List({"/", "", 0, 4}).status().code() == StatusCode::kCompacted);
    CHECK(s.Get("/a", 5)->value == "a3");
    CHECK(s.Get("/a", 6)->value == "a3");
    CHECK(s.Get("/a", 7)->value == "a4");
    CHECK(s.Get("/b", 5).status().code() == StatusCode::kNotFound);
    CHECK(s.Get("/d", 8)->value == "d1");
    auto at5 = s.List({"/", "", 0, 5});
    REQUIRE(at5.ok());
    REQUIRE(at5->kvs.size() == 1);
    CHECK(at5->kvs[0].value == "a3");
    auto at8 = s.List({"/", "", 0, 8});
    REQUIRE(at8.ok());
    CHECK(at8->kvs.size() == 3);
    CHECK(s.Watch("/", 4).status().code() == StatusCode::kCompacted);
    auto w = s.Watch("/", 5);
    REQUIRE(w.ok());
    auto events = CollectUntil(**w, 9);
    REQUIRE(events.size() == 5);
    CHECK(events[0].type == Event::Type::kDelete);  // the delete at 5 keeps its value
    REQUIRE(events[0].prev);
    CHECK(events[0].prev->value == "b1");
    REQUIRE(events[2].prev);  // the put at 7 replaced a3, the latest version at 5: kept
    CHECK(events[2].prev->value == "a3");
  };
  check_reads(*store);
  // The watcher left behind at revision 1 ends.
  CHECK((*early)->Next(milliseconds(10)).status().code() == StatusCode::kCompacted);

  // Rows removed: a1, a2 (superseded), b1 (superseded by its delete at 5). 9 - 3 = 6 remain.
  auto deadline = std::chrono::steady_clock::now() + seconds(5);
  while (CountLogRows(DbPath(dir)) != 6 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  CHECK(CountLogRows(DbPath(dir)) == 6);
  // Reopened, with no events in memory: the same answers from the log table.
  early->reset();
  store.reset();
  store = MustOpenTuned(dir, options, tuning);
  check_reads(*store);

  // Compact to the latest revision: the delete at 9 stays (it is the revision itself). Closed
  // right away, the compaction resumes after the reopen.
  REQUIRE(store->Compact(9).ok());
  store.reset();
  store = MustOpenTuned(dir, options, tuning);
  deadline = std::chrono::steady_clock::now() + seconds(5);
  while (CountLogRows(DbPath(dir)) != 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  CHECK(CountLogRows(DbPath(dir)) == 3);  // a4, c1, the delete of d
  CHECK(*store->CompactedRevision() == 9);
  CHECK(*store->CurrentRevision() == 9);
  CHECK(store->Get("/a", 9)->value == "a4");
  CHECK(store->Get("/c")->value == "c1");
}

TEST_CASE("sqlite store: automatic compaction keeps the history bounded", "[sqlite]") {
  TempDir dir;
  auto options = Options(dir);
  options.retain_revisions = 100;
  options.compact_interval = seconds(1);
  auto store = MustOpen(options);
  for (int i = 0; i < 10; ++i) REQUIRE(store->Create(fmt::format("/k/{}", i), "0").ok());
  // Each of 10 threads updates its own key 100 times.
  REQUIRE(Parallel(10, 1000, [&](int t, int) {
            return store->Update(fmt::format("/k/{}", t), "x", 0).ok();
          }) == 0);
  const int64_t last = *store->CurrentRevision();
  auto deadline = std::chrono::steady_clock::now() + seconds(5);
  while (*store->CompactedRevision() != last - 100 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  CHECK(*store->CompactedRevision() == last - 100);
  while (CountLogRows(DbPath(dir)) > 110 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  CHECK(CountLogRows(DbPath(dir)) <= 110);
  CHECK(*store->Count("/k/") == 10);
}

// Random CAS writes from 8 threads on 24 shared keys; the acknowledged results, ordered by
// revision, are the model. Every read at every revision (Get, paginated List, Watch with prev
// values) must match it: live, during a compaction done in tiny slices, and after a reopen.
TEST_CASE("sqlite store: random concurrent writes match a model at every revision", "[sqlite]") {
  TempDir dir;
  auto options = Options(dir);
  SqliteTuning tuning;
  tuning.compact_slice_revisions = 3;
  tuning.ring_max_events = 64;
  auto store = MustOpenTuned(dir, options, tuning);

  struct Change {
    std::string key;
    bool deleted = false;
    std::string value;
  };
  std::mutex mu;
  std::map<int64_t, Change> history;  // guarded by mu
  constexpr int kKeys = 24;
  REQUIRE(Parallel(8, 8 * 70, [&](int t, int i) {
            std::mt19937 rng(static_cast<unsigned>(t * 7919 + i));
            const std::string key = fmt::format("/m/{:02}", rng() % kKeys);
            const std::string value = fmt::format("{}-{}", t, i);
            auto cur = store->Get(key);
            // A stale or random expected revision now and then: those must fail, taking no
            // revision.
            const int64_t expected = rng() % 4 == 0 ? int64_t(rng() % 50) : 0;
            const int64_t seen = cur.ok() ? cur->mod_revision : 0;
            auto record = [&](int64_t rev, Change c) {
              std::lock_guard lock(mu);
              history[rev] = std::move(c);
            };
            switch (rng() % 3) {
              case 0: {
                auto kv = store->Create(key, value);
                if (kv.ok()) record(kv->mod_revision, {key, false, value});
                return kv.ok() || kv.status().code() == StatusCode::kAlreadyExists;
              }
              case 1: {
                auto kv = store->Update(key, value, expected ? expected : seen);
                if (kv.ok()) record(kv->mod_revision, {key, false, value});
                return kv.ok() || kv.status().code() == StatusCode::kConflict ||
                       kv.status().code() == StatusCode::kNotFound;
              }
              default: {
                auto e = store->Delete(key, expected);
                if (e.ok()) record(e->kv.mod_revision, {key, true, ""});
                return e.ok() || e.status().code() == StatusCode::kConflict ||
                       e.status().code() == StatusCode::kNotFound;
              }
            }
          }) == 0);
  const int64_t last = *store->CurrentRevision();
  REQUIRE(last > 100);
  // Dense revisions: every successful write took exactly the next one, failures none.
  REQUIRE(history.size() == static_cast<size_t>(last));
  REQUIRE(history.begin()->first == 1);

  // The model: the state after every revision.
  std::vector<std::map<std::string, KeyValue>> states(last + 1);
  for (int64_t r = 1; r <= last; ++r) {
    states[r] = states[r - 1];
    const Change& c = history[r];
    if (c.deleted) {
      states[r].erase(c.key);
    } else {
      auto it = states[r - 1].find(c.key);
      int64_t create = it == states[r - 1].end() ? r : it->second.create_revision;
      states[r][c.key] = KeyValue{c.key, c.value, create, r};
    }
  }

  auto check_at = [&](Store& s, int64_t r) {
    INFO("revision " << r);
    // Paginated list at r, 5 keys a page.
    std::vector<KeyValue> got;
    RangeOptions o{"/m/", "", 5, r};
    while (true) {
      auto page = s.List(o);
      REQUIRE(page.ok());
      got.insert(got.end(), page->kvs.begin(), page->kvs.end());
      if (!page->more) break;
      REQUIRE(page->kvs.size() == 5);
      o.start_after = page->kvs.back().key;
    }
    REQUIRE(got.size() == states[r].size());
    size_t i = 0;
    for (const auto& [key, kv] : states[r]) {
      CHECK(got[i].key == key);
      CHECK(got[i].value == kv.value);
      CHECK(got[i].mod_revision == kv.mod_revision);
      CHECK(got[i].create_revision == kv.create_revision);
      ++i;
    }
    for (int k = 0; k < kKeys; k += 5) {
      const std::string key = fmt::format("/m/{:02}", k);
      auto kv = s.Get(key, r);
      auto it = states[r].find(key);
      if (it == states[r].end()) {
        CHECK(kv.status().code() == StatusCode::kNotFound);
      } else {
        REQUIRE(kv.ok());
        CHECK(kv->value == it->second.value);
        CHECK(kv->mod_revision == it->second.mod_revision);
      }
    }
  };
  auto check_watch = [&](Store& s, int64_t from, int64_t compacted) {
    auto w = s.Watch("/m/", from);
    REQUIRE(w.ok());
    auto events = CollectUntil(**w, last);
    REQUIRE(events.size() == static_cast<size_t>(last - from + 1));
    for (const Event& e : events) {
      const int64_t r = e.kv.mod_revision;
      INFO("event at revision " << r);
      const Change& c = history[r];
      CHECK(e.kv.key == c.key);
      CHECK(e.type == (c.deleted ? Event::Type::kDelete : Event::Type::kPut));
      CHECK(e.kv.value == c.value);
      auto before = states[r - 1].find(c.key);
      if (before == states[r - 1].end()) {
        CHECK_FALSE(e.prev);
        continue;
      }
      // The version replaced is gone only if compaction removed it (it was superseded by this
      // very event at or below the compacted revision); deletes always carry it.
      if (c.deleted || r > compacted) REQUIRE(e.prev);
      if (e.prev) {
        CHECK(e.prev->value == before->second.value);
        CHECK(e.prev->mod_revision == before->second.mod_revision);
      }
    }
  };

  for (int64_t r = 1; r <= last; ++r) check_at(*store, r);
  check_watch(*store, 1, 0);

  // Compact to the middle; reads stay right while the slices run and after.
  const int64_t mid = last / 2;
  REQUIRE(store->Compact(mid).ok());
  for (int64_t r = mid; r <= last; ++r) check_at(*store, r);
  CHECK(store->Get("/m/00", mid - 1).status().code() == StatusCode::kCompacted);
  check_watch(*store, mid, mid);

  // From the log table alone.
  store.reset();
  store = MustOpenTuned(dir, options, tuning);
  for (int64_t r = mid; r <= last; r += 3) check_at(*store, r);
  check_watch(*store, mid, mid);
  check_watch(*store, last - 10, mid);
}

TEST_CASE("sqlite store: reopen keeps the data and the revision", "[sqlite]") {
  TempDir dir;
  auto options = Options(dir);
  {
    auto store = MustOpen(options);
    for (int i = 0; i < 50; ++i) REQUIRE(store->Create(fmt::format("/k/{}", i), "v").ok());
    REQUIRE(store->Delete("/k/7").ok());
  }
  struct stat st {};
  REQUIRE(::stat((dir.path() + "/server/db").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  REQUIRE(::stat((dir.path() + "/server").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);

  auto store = MustOpen(options);
  CHECK(*store->CurrentRevision() == 51);
  CHECK(*store->Count("/k/") == 49);
  CHECK(store->Get("/k/3")->mod_revision == 4);
  auto next = store->Create("/k/new", "v");
  REQUIRE(next.ok());
  CHECK(next->mod_revision == 52);

  // An explicit sqlite:// endpoint.
  StoreOptions explicit_path;
  explicit_path.endpoint = "sqlite://" + dir.path() + "/other/x.db?_journal=WAL";
  auto other = OpenStore(explicit_path);
  REQUIRE(other.ok());
  CHECK(fs::exists(dir.path() + "/other/x.db"));
}

TEST_CASE("sqlite store: a database in use is refused", "[sqlite]") {
  TempDir dir;
  auto store = MustOpen(Options(dir));
  auto second = OpenStore(Options(dir));
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == StatusCode::kUnavailable);
  CHECK_THAT(second.status().message(), Catch::Contains(DbPath(dir)));
  store.reset();
  CHECK(OpenStore(Options(dir)).ok());  // released on close
}

TEST_CASE("sqlite store: corrupt, foreign and unreadable files are refused, never replaced",
          "[sqlite]") {
  TempDir dir;
  const std::string db = DbPath(dir);
  fs::create_directories(fs::path(db).parent_path());

  SECTION("garbage") {
    std::string garbage;
    for (int i = 0; i < 2000; ++i) garbage += "not a database at all ";
    std::ofstream(db, std::ios::binary) << garbage;
    auto s = OpenStore(Options(dir));
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().code() == StatusCode::kUnavailable);
    CHECK_THAT(s.status().message(), Catch::Contains(db));
    CHECK(ReadFile(db) == garbage);
  }
  SECTION("a damaged orch database") {
    {
      auto store = MustOpen(Options(dir));
      REQUIRE(Parallel(8, 500, [&](int, int i) {
                return store->Create(fmt::format("/k/{}", i), std::string(200, 'v')).ok();
              }) == 0);
    }
    std::string bytes = ReadFile(db);
    REQUIRE(bytes.size() > 5 * 4096);
    // Trash pages 2-4 (btree roots and interior pages).
    for (size_t i = 4096; i < 4 * 4096; ++i) bytes[i] = static_cast<char>(i * 7);
    std::ofstream(db, std::ios::binary | std::ios::trunc) << bytes;
    auto s = OpenStore(Options(dir));
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().code() == StatusCode::kUnavailable);
    CHECK(ReadFile(db) == bytes);
  }
  SECTION("a WAL without its database") {
    std::ofstream(db + "-wal", std::ios::binary) << std::string(8192, 'w');
    auto s = OpenStore(Options(dir));
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().code() == StatusCode::kUnavailable);
    CHECK_FALSE(fs::exists(db));
  }
  SECTION("another application's SQLite database") {
    sqlite3* other = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &other) == SQLITE_OK);
    REQUIRE(sqlite3_exec(other, "CREATE TABLE kine(id INTEGER PRIMARY KEY)", nullptr, nullptr,
                         nullptr) == SQLITE_OK);
    sqlite3_close(other);
    auto s = OpenStore(Options(dir));
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(s.status().message(), Catch::Contains("not an orch datastore"));
  }
  SECTION("a file this user cannot read") {
    { auto store = MustOpen(Options(dir)); }
    const std::string before = ReadFile(db);
    // Run the open as an unprivileged user (root reads everything): the folders are reachable,
    // the lock file writable, the database itself is root's 0600.
    for (const std::string& d : {dir.path(), dir.path() + "/server", dir.path() + "/server/db"}) {
      REQUIRE(::chmod(d.c_str(), 0777) == 0);
    }
    REQUIRE(::chmod((db + ".lock").c_str(), 0666) == 0);
    REQUIRE(::chmod(db.c_str(), 0600) == 0);
    if (::geteuid() == 0) {
      pid_t pid = ::fork();
      REQUIRE(pid >= 0);
      if (pid == 0) {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
        auto s = OpenStore(Options(dir));
        ::_exit(!s.ok() && s.status().code() == StatusCode::kUnavailable &&
                        s.status().message().find(db) != std::string::npos
                    ? 0
                    : 1);
      }
      int status = 0;
      REQUIRE(::waitpid(pid, &status, 0) == pid);
      CHECK(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 0);
    } else {
      REQUIRE(::chmod(db.c_str(), 0) == 0);
      auto s = OpenStore(Options(dir));
      CHECK(s.status().code() == StatusCode::kUnavailable);
      REQUIRE(::chmod(db.c_str(), 0600) == 0);
    }
    CHECK(ReadFile(db) == before);
  }
}

TEST_CASE("sqlite store: snapshot save while writing, and restore", "[sqlite]") {
  TempDir dir;
  auto options = Options(dir);
  const std::string snap = dir.path() + "/snap.db";
  auto store = MustOpen(options);
  std::mutex mu;
  std::map<std::string, int64_t> revs;
  REQUIRE(Parallel(8, 200, [&](int, int i) {
            auto kv = store->Create(fmt::format("/s/{}", i), "v");
            if (!kv.ok()) return false;
            std::lock_guard lock(mu);
            revs[kv->key] = kv->mod_revision;
            return true;
          }) == 0);
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::thread writer([&] {
    for (int i = 200; !stop; ++i) {
      auto kv = store->Create(fmt::format("/s/{}", i), "v");
      if (!kv.ok()) return void(++failures);
      std::lock_guard lock(mu);
      revs[kv->key] = kv->mod_revision;
    }
  });
  std::this_thread::sleep_for(milliseconds(50));
  Status saved = SaveSnapshot(options, snap);
  std::this_thread::sleep_for(milliseconds(50));
  stop = true;
  writer.join();
  REQUIRE(failures == 0);
  INFO(saved.ToString());
  REQUIRE(saved.ok());
  CHECK_FALSE(fs::exists(snap + ".tmp"));

  StoreOptions etcd = options;
  etcd.endpoint = "http://127.0.0.1:2379";
  CHECK(SaveSnapshot(etcd, snap).code() == StatusCode::kInvalidArgument);
  // The server is running: restore refuses.
  CHECK(RestoreSnapshot(options, snap).code() == StatusCode::kUnavailable);
  const int64_t final_rev = *store->CurrentRevision();
  store.reset();

  // A file that is no snapshot changes nothing.
  std::ofstream(dir.path() + "/junk") << "junk";
  CHECK(RestoreSnapshot(options, dir.path() + "/junk").code() == StatusCode::kInvalidArgument);
  CHECK(MustOpen(options)->CurrentRevision().value() == final_rev);

  REQUIRE(RestoreSnapshot(options, snap).ok());
  store = MustOpen(options);
  const int64_t at = *store->CurrentRevision();
  CHECK(at >= 200);
  CHECK(at <= final_rev);
  // The snapshot is one consistent revision: exactly the keys written up to it.
  auto list = store->List({"/s/", "", 0, 0});
  REQUIRE(list.ok());
  size_t expected = 0;
  for (auto& [key, rev] : revs) expected += rev <= at ? 1 : 0;
  CHECK(list->kvs.size() == expected);
  for (auto& kv : list->kvs) CHECK(revs[kv.key] == kv.mod_revision);
  // And it keeps working from there.
  CHECK(store->Create("/after", "x")->mod_revision == at + 1);
}

// The child writes from several threads and reports each acknowledged revision (with its key) to
// the parent through a pipe; the parent SIGKILLs it mid-stream and checks that everything
// acknowledged survived.
TEST_CASE("sqlite store: acknowledged writes survive a SIGKILL", "[sqlite]") {
  TempDir dir;
  auto options = Options(dir);
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    auto store = OpenStore(options);
    if (!store.ok()) ::_exit(3);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int64_t i = 0;; ++i) {
          auto kv = (*store)->Create(fmt::format("/d/{}/{}", t, i), fmt::format("value {}", i));
          if (!kv.ok()) ::_exit(4);
          int64_t report[3] = {t, i, kv->mod_revision};
          if (::write(fds[1], report, sizeof(report)) != sizeof(report)) ::_exit(5);
        }
      });
    }
    for (auto& t : threads) t.join();
    ::_exit(0);
  }
  ::close(fds[1]);
  std::vector<std::array<int64_t, 3>> acked;
  std::array<int64_t, 3> report{};
  while (acked.size() < 400 && ::read(fds[0], report.data(), sizeof(report)) == sizeof(report)) {
    acked.push_back(report);
  }
  REQUIRE(acked.size() == 400);
  ::kill(pid, SIGKILL);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFSIGNALED(status));
  // Reports already in the pipe were acknowledged too.
  while (::read(fds[0], report.data(), sizeof(report)) == sizeof(report)) acked.push_back(report);
  ::close(fds[0]);

  auto store = MustOpen(options);
  int64_t max_rev = 0;
  for (const auto& [t, i, rev] : acked) {
    auto kv = store->Get(fmt::format("/d/{}/{}", t, i));
    INFO(fmt::format("/d/{}/{} acknowledged at revision {}", t, i, rev));
    REQUIRE(kv.ok());
    CHECK(kv->mod_revision == rev);
    CHECK(kv->value == fmt::format("value {}", i));
    max_rev = std::max(max_rev, rev);
  }
  CHECK(*store->CurrentRevision() >= max_rev);
  // Revisions stay dense: no revision was handed out twice or skipped across the crash.
  CHECK(*store->Count("/d/") == *store->CurrentRevision());
}

// A soak run, not part of the suite: `sqlite_store_test "[.soak]"`. Steady updates with automatic
// compaction; the database and WAL files must level off instead of growing.
TEST_CASE("sqlite store: files stay bounded under a steady write load", "[.soak]") {
  TempDir dir;
  auto options = Options(dir);
  options.retain_revisions = 2000;
  options.compact_interval = seconds(1);
  auto store = MustOpen(options);
  const std::string value(2048, 'v');
  std::atomic<bool> stop{false};
  std::atomic<int64_t> writes{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 8; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        const std::string key = fmt::format("/soak/{}/{}", t, i % 100);
        if (!store->Update(key, value, 0).ok() && !store->Create(key, value).ok()) return;
        ++writes;
      }
    });
  }
  auto size = [](const std::string& f) {
    std::error_code ec;
    auto n = fs::file_size(f, ec);
    return ec ? 0 : static_cast<int64_t>(n) / 1024;
  };
  for (int s = 1; s <= 20; ++s) {
    std::this_thread::sleep_for(seconds(1));
    fmt::print("{:2} s: {:7} writes  db {:6} KiB  wal {:6} KiB  compacted at {}\n", s,
               writes.load(), size(DbPath(dir)), size(DbPath(dir) + "-wal"),
               *store->CompactedRevision());
  }
  stop = true;
  for (auto& t : writers) t.join();
}

// A throwaway measurement, not part of the suite: `sqlite_store_test "[.bench]"`.
TEST_CASE("sqlite store: write throughput and latency", "[.bench]") {
  // ORCH_BENCH_DIR picks the file system (e.g. /dev/shm to see the cost without fsync).
  const char* base = std::getenv("ORCH_BENCH_DIR");
  TempDir dir(base ? base : fs::temp_directory_path().string());
  {
    // The disk's own fsync latency, for comparison.
    const std::string f = dir.path() + "/fsync";
    int fd = ::open(f.c_str(), O_CREAT | O_WRONLY, 0600);
    std::vector<double> lat;
    char page[4096] = {};
    for (int i = 0; i < 300; ++i) {
      REQUIRE(::write(fd, page, sizeof(page)) == sizeof(page));
      auto a = std::chrono::steady_clock::now();
      ::fdatasync(fd);
      lat.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
    }
    ::close(fd);
    std::sort(lat.begin(), lat.end());
    fmt::print("raw fdatasync of 4 KiB: p50 {:.2f} ms  p99 {:.2f} ms\n", lat[150], lat[296]);
  }
  if (std::getenv("ORCH_BENCH_DEBUG")) log::SetLevel(log::Level::kDebug);
  auto store = MustOpen(Options(dir));
  const std::string value(1024, 'v');
  for (int threads : {1, 8, 64}) {
    const int per_thread = threads == 1 ? 3000 : 12000 / threads;
    std::vector<std::vector<double>> lat(threads);
    auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < per_thread; ++i) {
          auto a = std::chrono::steady_clock::now();
          auto kv = store->Create(fmt::format("/bench/{}/{}/{}", threads, t, i), value);
          auto b = std::chrono::steady_clock::now();
          REQUIRE(kv.ok());
          lat[t].push_back(std::chrono::duration<double, std::milli>(b - a).count());
        }
      });
    }
    for (auto& t : ts) t.join();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::vector<double> all;
    for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
    std::sort(all.begin(), all.end());
    auto pct = [&](double p) { return all[static_cast<size_t>(p * (all.size() - 1))]; };
    fmt::print("{:2} writers: {:6.0f} writes/s  p50 {:.2f} ms  p99 {:.2f} ms  max {:.2f} ms\n",
               threads, all.size() / secs, pct(0.5), pct(0.99), all.back());
  }
}

}  // namespace
}  // namespace orch
