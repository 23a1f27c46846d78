// Informers against the fake API client: sync, change notifications, paging, indexes, re-watch
// after a normal end, re-list (with the right synthetic diffs) after compaction, and Stop.
#include "orch/informer.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <future>
#include <mutex>

#include "concurrency_gauge.h"
#include "fake_api_client.h"

namespace {

using json = nlohmann::json;
using orch::ObjectPtr;
using orch::testing::FakeApiClient;
namespace resources = orch::resources;

json ConfigMap(const std::string& ns, const std::string& name, const std::string& app,
               const std::string& data = "1") {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{"app", app}}}}},
          {"data", {{"v", data}}}};
}

// Records handler calls as lines ("add a/x", "update a/y 1->2", "delete a/z") for assertions.
class Journal {
 public:
  orch::InformerHandler Handler() {
    orch::InformerHandler h;
    h.on_add = [this](const ObjectPtr& o) { Push("add " + orch::ObjectKey(*o)); };
    h.on_update = [this](const ObjectPtr& old_object, const ObjectPtr& o) {
      Push("update " + orch::ObjectKey(*o) + " " + (*old_object)["data"].value("v", "") + "->" +
           (*o)["data"].value("v", ""));
    };
    h.on_delete = [this](const ObjectPtr& o) { Push("delete " + orch::ObjectKey(*o)); };
    return h;
  }

  // Waits (up to 10 s) for `n` lines, then returns them sorted and forgets them.
  std::vector<std::string> Take(size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return lines_.size() >= n; });
    std::vector<std::string> out = std::move(lines_);
    lines_.clear();
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  void Push(std::string line) {
    std::lock_guard lock(mu_);
    lines_.push_back(std::move(line));
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
};

using Lines = std::vector<std::string>;

int Count(const FakeApiClient& fake, const std::string& verb) {
  auto actions = fake.Actions();
  return static_cast<int>(
      std::count_if(actions.begin(), actions.end(),
                    [&](const orch::testing::Action& a) { return a.verb == verb; }));
}

}  // namespace

TEST_CASE("An informer syncs, serves reads and tells handlers about every change") {
  FakeApiClient fake;
  REQUIRE(fake.Create(resources::kConfigMaps, "a", ConfigMap("a", "x", "web")).ok());
  REQUIRE(fake.Create(resources::kConfigMaps, "a", ConfigMap("a", "y", "db")).ok());
  REQUIRE(fake.Create(resources::kConfigMaps, "b", ConfigMap("b", "z", "web")).ok());

  auto factory = orch::InformerFactory::Create(fake);
  orch::Informer& informer = factory->For(resources::kConfigMaps);
  CHECK(&factory->For(resources::kConfigMaps) == &informer);
  CHECK(&factory->For(resources::kConfigMaps, "", "app=web") != &informer);
  informer.AddIndex("app", [](const json& o) {
    return std::vector<std::string>{o["metadata"]["labels"].value("app", "")};
  });
  Journal journal;
  informer.AddHandler(journal.Handler());
  CHECK_FALSE(informer.HasSynced());
  factory->Start();
  REQUIRE(factory->WaitForSync(std::chrono::seconds(10)));
  CHECK(informer.HasSynced());
  CHECK(journal.Take(3) == Lines{"add a/x", "add a/y", "add b/z"});

  CHECK(informer.List().size() == 3);
  CHECK(informer.List("a").size() == 2);
  CHECK(informer.List("c").empty());
  REQUIRE(informer.Get("a", "y") != nullptr);
  CHECK((*informer.Get("a", "y"))["data"]["v"] == "1");
  CHECK(informer.Get("a", "nope") == nullptr);
  CHECK(informer.ByIndex("app", "web").size() == 2);

  REQUIRE(fake.Create(resources::kConfigMaps, "b", ConfigMap("b", "w", "db")).ok());
  CHECK(journal.Take(1) == Lines{"add b/w"});
  REQUIRE(fake.Patch(resources::kConfigMaps, "a", "x", orch::PatchType::kMerge,
                     R"({"data":{"v":"2"},"metadata":{"labels":{"app":"db"}}})")
              .ok());
  CHECK(journal.Take(1) == Lines{"update a/x 1->2"});
  REQUIRE(fake.Delete(resources::kConfigMaps, "a", "y").ok());
  CHECK(journal.Take(1) == Lines{"delete a/y"});

  CHECK(informer.List().size() == 3);
  CHECK(informer.Get("a", "y") == nullptr);
  CHECK((*informer.Get("a", "x"))["data"]["v"] == "2");
  auto db = informer.ByIndex("app", "db");
  CHECK(db.size() == 2);  // a/x moved from web to db, b/w is new, a/y is gone
  CHECK(informer.ByIndex("app", "web").size() == 1);

  // A handler added after the sync first hears of everything already known.
  Journal late;
  informer.AddHandler(late.Handler());
  CHECK(late.Take(3) == Lines{"add a/x", "add b/w", "add b/z"});

  factory->Stop();
  REQUIRE(fake.Create(resources::kConfigMaps, "a", ConfigMap("a", "after-stop", "web")).ok());
  CHECK(fake.WaitForDelivery());
  CHECK(fake.WatchCount() == 0);
  CHECK(journal.Take(0).empty());
  factory->Stop();  // idempotent
}

TEST_CASE("An informer lists in pages of 500") {
  FakeApiClient fake;
  for (int i = 0; i < 1100; ++i) {
    REQUIRE(
        fake.Create(resources::kConfigMaps, "a", ConfigMap("a", fmt::format("cm-{:04}", i), "x"))
            .ok());
  }
  auto factory = orch::InformerFactory::Create(fake);
  orch::Informer& informer = factory->For(resources::kConfigMaps, "a");
  factory->Start();
  REQUIRE(factory->WaitForSync(std::chrono::seconds(10)));
  CHECK(informer.List().size() == 1100);
  CHECK(Count(fake, "list") == 3);
}

TEST_CASE("After compaction an informer lists again and reports what changed meanwhile") {
  FakeApiClient fake;
  REQUIRE(fake.Create(resources::kConfigMaps, "a", ConfigMap("a", "keep", "x")).ok());
  REQUIRE(fake.Create(resources::kConfigMaps, "a", ConfigMap("a", "change", "x")).ok());
  REQUIRE(fake.Create(resources::kConfigMaps, "a", ConfigMap("a", "remove", "x")).ok());
  auto factory = orch::InformerFactory::Create(fake);
  orch::Informer& informer = factory->For(resources::kConfigMaps);
  Journal journal;
  informer.AddHandler(journal.Handler());
  factory->Start();
  REQUIRE(factory->WaitForSync(std::chrono::seconds(10)));
  CHECK(journal.Take(3).size() == 3);
  ObjectPtr kept = informer.Get("a", "keep");

  // Changes the watch never delivers: it falls behind a compaction and ends with kCompacted.
  fake.PauseWatches();
  REQUIRE(fake.Create(resources::kConfigMaps, "a", ConfigMap("a", "new", "x")).ok());
  REQUIRE(fake.Patch(resources::kConfigMaps, "a", "change", orch::PatchType::kMerge,
                     R"({"data":{"v":"2"}})")
              .ok());
  REQUIRE(fake.Delete(resources::kConfigMaps, "a", "remove").ok());
  fake.Compact();
  fake.ResumeWatches();

  CHECK(journal.Take(3) == Lines{"add a/new", "delete a/remove", "update a/change 1->2"});
  CHECK(Count(fake, "list") == 2);
  CHECK(informer.List().size() == 3);
  CHECK(informer.Get("a", "keep") == kept);  // unchanged objects keep their pointer
  CHECK((*informer.Get("a", "change"))["data"]["v"] == "2");

  // And it watches again from the new list.
  REQUIRE(fake.Delete(resources::kConfigMaps, "a", "new").ok());
  CHECK(journal.Take(1) == Lines{"delete a/new"});
}

TEST_CASE("A watch that ends normally is resumed from the last version, without a list") {
  FakeApiClient fake;
  REQUIRE(fake.Create(resources::kConfigMaps, "a", ConfigMap("a", "x", "x")).ok());
  auto factory = orch::InformerFactory::Create(fake);
  orch::Informer& informer = factory->For(resources::kConfigMaps);
  Journal journal;
  informer.AddHandler(journal.Handler());
  factory->Start();
  REQUIRE(factory->WaitForSync(std::chrono::seconds(10)));
  CHECK(journal.Take(1) == Lines{"add a/x"});

  fake.PauseWatches();
  REQUIRE(fake.Create(resources::kConfigMaps, "a", ConfigMap("a", "y", "x")).ok());
  fake.EndWatches(orch::Status::Ok());  // the pending ADDED is dropped with the old watch
  fake.ResumeWatches();
  // The new watch starts from the last version the informer saw, so it gets the ADDED again.
  CHECK(journal.Take(1) == Lines{"add a/y"});
  CHECK(Count(fake, "list") == 1);
  CHECK(Count(fake, "watch") == 2);
}

TEST_CASE("A failed list is retried with back-off") {
  FakeApiClient fake;
  REQUIRE(fake.Create(resources::kPods, "a",
                      {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "p"}}}})
              .ok());
  int failures = 0;
  fake.SetErrorHook([&](const orch::testing::Action& a) {
    if (a.verb == "list" && failures < 1) {
      ++failures;
      return orch::Unavailable("connection refused");
    }
    return orch::Status::Ok();
  });
  auto factory = orch::InformerFactory::Create(fake);
  orch::Informer& informer = factory->For(resources::kPods);
  factory->Start();
  REQUIRE(factory->WaitForSync(std::chrono::seconds(10)));
  CHECK(informer.Get("a", "p") != nullptr);
  CHECK(Count(fake, "list") == 2);
}

TEST_CASE("A metadata informer keeps apiVersion, kind and metadata only") {
  FakeApiClient fake;
  json cm = ConfigMap("a", "x", "web");
  cm["metadata"]["managedFields"] = json::array({{{"manager", "kubectl"}}});
  cm["metadata"]["ownerReferences"] = json::array({{{"uid", "u1"}, {"kind", "Deployment"}}});
  REQUIRE(fake.Create(resources::kConfigMaps, "a", cm).ok());

  auto factory = orch::InformerFactory::Create(fake);
  orch::Informer& metadata = factory->ForMetadata(resources::kConfigMaps);
  CHECK(&factory->ForMetadata(resources::kConfigMaps) == &metadata);
  CHECK(&factory->For(resources::kConfigMaps) != &metadata);  // whole objects elsewhere
  factory->Start();
  REQUIRE(factory->WaitForSync(std::chrono::seconds(10)));

  auto listed = metadata.Get("a", "x");
  REQUIRE(listed != nullptr);
  CHECK_FALSE(listed->contains("data"));
  CHECK((*listed)["kind"] == "ConfigMap");
  CHECK((*listed)["metadata"]["ownerReferences"][0]["uid"] == "u1");
  CHECK_FALSE((*listed)["metadata"].contains("managedFields"));
  CHECK(factory->For(resources::kConfigMaps).Get("a", "x")->contains("data"));

  // Objects from the watch are trimmed the same way.
  Journal journal;
  metadata.AddHandler(journal.Handler());
  CHECK(journal.Take(1) == Lines{"add a/x"});
  REQUIRE(fake.Create(resources::kConfigMaps, "a", ConfigMap("a", "y", "db")).ok());
  CHECK(journal.Take(1) == Lines{"add a/y"});
  REQUIRE(metadata.Get("a", "y") != nullptr);
  CHECK_FALSE(metadata.Get("a", "y")->contains("data"));
  CHECK((*metadata.Get("a", "y"))["metadata"]["labels"]["app"] == "db");
  factory->Stop();
}

TEST_CASE("A factory told to drop managedFields stores objects without them") {
  FakeApiClient fake;
  json cm = ConfigMap("a", "x", "web");
  cm["metadata"]["managedFields"] = json::array({{{"manager", "kubectl"}}});
  REQUIRE(fake.Create(resources::kConfigMaps, "a", cm).ok());

  orch::InformerFactoryOptions options;
  options.drop_managed_fields = true;
  auto dropping = orch::InformerFactory::Create(fake, options);
  auto keeping = orch::InformerFactory::Create(fake);  // the default keeps them
  orch::Informer& dropped = dropping->For(resources::kConfigMaps);
  orch::Informer& kept = keeping->For(resources::kConfigMaps);
  Journal journal;
  dropped.AddHandler(journal.Handler());
  dropping->Start();
  keeping->Start();
  REQUIRE(dropping->WaitForSync(std::chrono::seconds(10)));
  REQUIRE(keeping->WaitForSync(std::chrono::seconds(10)));
  CHECK(journal.Take(1) == Lines{"add a/x"});

  REQUIRE(dropped.Get("a", "x") != nullptr);
  CHECK_FALSE((*dropped.Get("a", "x"))["metadata"].contains("managedFields"));
  CHECK((*dropped.Get("a", "x"))["data"]["v"] == "1");  // the rest is whole
  CHECK((*dropped.Get("a", "x"))["metadata"]["labels"]["app"] == "web");
  CHECK((*kept.Get("a", "x"))["metadata"]["managedFields"][0]["manager"] == "kubectl");

  // Objects from the watch too.
  json cm2 = ConfigMap("a", "y", "db");
  cm2["metadata"]["managedFields"] = json::array({{{"manager", "kubectl"}}});
  REQUIRE(fake.Create(resources::kConfigMaps, "a", cm2).ok());
  CHECK(journal.Take(1) == Lines{"add a/y"});
  REQUIRE(dropped.Get("a", "y") != nullptr);
  CHECK_FALSE((*dropped.Get("a", "y"))["metadata"].contains("managedFields"));
  CHECK((*dropped.Get("a", "y"))["data"]["v"] == "1");
  dropping->Stop();
  keeping->Stop();
}

TEST_CASE("ForMetadata returns the informer of whole objects when there is one") {
  FakeApiClient fake;
  REQUIRE(fake.Create(resources::kConfigMaps, "a", ConfigMap("a", "x", "web")).ok());
  auto factory = orch::InformerFactory::Create(fake);
  orch::Informer& whole = factory->For(resources::kConfigMaps);
  CHECK(&factory->ForMetadata(resources::kConfigMaps) == &whole);
  factory->Start();
  REQUIRE(factory->WaitForSync(std::chrono::seconds(10)));
  CHECK(Count(fake, "list") == 1);  // one list for both
  factory->Stop();
}

TEST_CASE("HasSynced and WaitForSync count handlers whose registration is still queued") {
  FakeApiClient fake;
  REQUIRE(fake.Create(resources::kConfigMaps, "a", ConfigMap("a", "x", "web")).ok());
  REQUIRE(fake.Create(resources::kConfigMaps, "a", ConfigMap("a", "y", "web")).ok());
  auto factory = orch::InformerFactory::Create(fake);
  orch::Informer& config_maps = factory->For(resources::kConfigMaps);
  orch::Informer& pods = factory->For(resources::kPods);
  // A pod handler that holds the factory's delivery thread until released.
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  orch::InformerHandler blocking;
  blocking.on_add = [&entered, released](const ObjectPtr&) {
    entered.set_value();
    released.wait();
  };
  pods.AddHandler(blocking);
  factory->Start();
  REQUIRE(factory->WaitForSync(std::chrono::seconds(10)));
  CHECK(config_maps.HasSynced());

  REQUIRE(fake.Create(resources::kPods, "a",
                      {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "p"}}}})
              .ok());
  REQUIRE(entered.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);

  // The registration waits behind the blocked handler: not synced for this caller yet.
  Journal journal;
  config_maps.AddHandler(journal.Handler());
  CHECK_FALSE(config_maps.HasSynced());
  CHECK_FALSE(factory->WaitForSync(std::chrono::milliseconds(50)));

  release.set_value();
  REQUIRE(factory->WaitForSync(std::chrono::seconds(10)));
  CHECK(config_maps.HasSynced());
  // Synced means the new handler already heard of everything listed.
  CHECK(journal.Take(0) == Lines{"add a/x", "add a/y"});
  factory->Stop();
}

namespace {

// Holds each list until `want` lists are in flight together (or 10 s passed), and records the
// most that were.
class SideBySideLists : public FakeApiClient {
 public:
  explicit SideBySideLists(int want) : gauge_(want) {}

  orch::Result<orch::ObjectList> List(const orch::ResourceRef& ref, const std::string& ns,
                                      const orch::ListOptions& options) override {
    return gauge_.Run([&] { return FakeApiClient::List(ref, ns, options); });
  }

  int Most() { return gauge_.Most(); }

 private:
  orch::testing::ConcurrencyGauge gauge_;
};

}  // namespace

TEST_CASE("A factory lists its informers side by side") {
  SideBySideLists fake(3);
  REQUIRE(fake.Create(resources::kConfigMaps, "a", ConfigMap("a", "x", "web")).ok());
  auto factory = orch::InformerFactory::Create(fake);
  orch::Informer& config_maps = factory->For(resources::kConfigMaps);
  orch::Informer& pods = factory->For(resources::kPods);
  orch::Informer& secrets = factory->For(resources::kSecrets);
  Journal journal;
  config_maps.AddHandler(journal.Handler());
  factory->Start();
  REQUIRE(factory->WaitForSync(std::chrono::seconds(30)));
  CHECK(fake.Most() == 3);  // one after another, it would be 1
  CHECK(config_maps.HasSynced());
  CHECK(pods.HasSynced());
  CHECK(secrets.HasSynced());
  CHECK(journal.Take(1) == Lines{"add a/x"});
  // The watches started from the lists: changes arrive.
  REQUIRE(fake.Create(resources::kConfigMaps, "a", ConfigMap("a", "y", "web")).ok());
  CHECK(journal.Take(1) == Lines{"add a/y"});
  factory->Stop();
}

TEST_CASE("ObjectKey and SplitObjectKey") {
  CHECK(orch::ObjectKey(json{{"metadata", {{"name", "n"}, {"namespace", "ns"}}}}) == "ns/n");
  CHECK(orch::ObjectKey(json{{"metadata", {{"name", "node-1"}}}}) == "node-1");
  CHECK(orch::SplitObjectKey("ns/n") == std::pair<std::string, std::string>{"ns", "n"});
  CHECK(orch::SplitObjectKey("node-1") == std::pair<std::string, std::string>{"", "node-1"});
}
