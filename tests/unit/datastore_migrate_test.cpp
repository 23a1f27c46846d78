// Tests of `orch datastore migrate`'s copy (cmd/orch/datastore_migrate.cpp) between two embedded
// SQLite stores: values unchanged, consistent at one revision, non-empty targets, --force.
#include "datastore_migrate.h"

#include <fmt/format.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "orch/store.h"

namespace orch {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "orch-migrate-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path); }
};

std::unique_ptr<Store> Open(const fs::path& dir, const std::string& name) {
  StoreOptions options;
  options.endpoint = "sqlite://" + (dir / name).string();
  options.compact_interval = std::chrono::seconds(0);
  auto store = OpenStore(options);
  REQUIRE(store.ok());
  return std::move(*store);
}

std::string Value(Store& store, const std::string& key) {
  auto kv = store.Get(key);
  REQUIRE(kv.ok());
  return kv->value;
}

TEST_CASE("migrate copies every key with its value, in pages and in parallel") {
  TempDir dir;
  auto from = Open(dir.path, "from.db");
  auto to = Open(dir.path, "to.db");
  // Values are opaque bytes: an encrypted Secret must arrive exactly as stored.
  std::string secret = "k8s:enc:aesgcm:v1:key1:";
  secret += std::string("\0\x01\xff\x80 binary", 12);
  REQUIRE(from->Create("/registry/core/secrets/default/s", secret).ok());
  std::string pod =
      R"({"metadata":{"name":"p","uid":"1234","finalizers":["f"],"ownerReferences":[{"uid":"9"}]}})";
  REQUIRE(from->Create("/registry/core/pods/default/p", pod).ok());
  for (int i = 0; i < 57; ++i) {
    REQUIRE(from->Create(fmt::format("/registry/core/configmaps/default/cm{:03}", i),
                         fmt::format("value {}", i))
                .ok());
  }
  REQUIRE(
      from->Create("/registry/core/events/default/e1", "event", std::chrono::seconds(600)).ok());
  REQUIRE(from->Create("/bootstrap/token", "outside the registry").ok());
  // Deleted and overwritten keys: only the current state is copied.
  REQUIRE(from->Create("/registry/core/configmaps/default/gone", "x").ok());
  REQUIRE(from->Delete("/registry/core/configmaps/default/gone").ok());
  auto cur = from->Get("/registry/core/configmaps/default/cm000");
  REQUIRE(cur.ok());
  REQUIRE(from->Update("/registry/core/configmaps/default/cm000", "new", cur->mod_revision).ok());

  MigrateOptions options;
  options.page_size = 10;
  options.writers = 3;
  int pages = 0;
  options.progress = [&](int64_t) { ++pages; };
  auto report = MigrateStore(*from, *to, options);
  REQUIRE(report.ok());
  CHECK(report->keys == 61);
  CHECK(pages == 7);
  CHECK(report->overwritten == 0);
  CHECK(report->deleted == 0);
  CHECK(report->by_resource["core/configmaps"] == 57);
  CHECK(report->by_resource["core/secrets"] == 1);
  CHECK(report->by_resource["core/events"] == 1);
  CHECK(report->by_resource["other"] == 1);
  CHECK(*to->Count("") == 61);
  CHECK(Value(*to, "/registry/core/secrets/default/s") == secret);
  CHECK(Value(*to, "/registry/core/pods/default/p") == pod);
  CHECK(Value(*to, "/registry/core/configmaps/default/cm000") == "new");
  CHECK(Value(*to, "/registry/core/configmaps/default/cm056") == "value 56");
  CHECK(Value(*to, "/bootstrap/token") == "outside the registry");
  CHECK(to->Get("/registry/core/configmaps/default/gone").status().code() == StatusCode::kNotFound);
  // The source is left as it was.
  CHECK(*from->Count("") == 61);
}

TEST_CASE("migrate refuses a target that holds keys unless forced, then replaces its state") {
  TempDir dir;
  auto from = Open(dir.path, "from.db");
  auto to = Open(dir.path, "to.db");
  REQUIRE(from->Create("/registry/core/configmaps/default/a", "source a").ok());
  REQUIRE(from->Create("/registry/core/configmaps/default/b", "source b").ok());
  REQUIRE(to->Create("/registry/core/configmaps/default/a", "target a").ok());
  REQUIRE(to->Create("/registry/core/configmaps/default/stale", "target only").ok());
  REQUIRE(to->Create("/other-program/key", "not ours").ok());

  auto refused = MigrateStore(*from, *to);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == StatusCode::kAlreadyExists);
  CHECK_THAT(refused.status().message(), Catch::Contains("already holds 3 keys"));
  CHECK(Value(*to, "/registry/core/configmaps/default/a") == "target a");

  MigrateOptions force;
  force.force = true;
  auto report = MigrateStore(*from, *to, force);
  REQUIRE(report.ok());
  CHECK(report->keys == 2);
  CHECK(report->overwritten == 1);
  CHECK(report->deleted == 1);
  CHECK(Value(*to, "/registry/core/configmaps/default/a") == "source a");
  CHECK(Value(*to, "/registry/core/configmaps/default/b") == "source b");
  CHECK(to->Get("/registry/core/configmaps/default/stale").status().code() ==
        StatusCode::kNotFound);
  CHECK(Value(*to, "/other-program/key") == "not ours");
}

TEST_CASE("migrate of an empty store copies nothing") {
  TempDir dir;
  auto from = Open(dir.path, "from.db");
  auto to = Open(dir.path, "to.db");
  auto report = MigrateStore(*from, *to);
  REQUIRE(report.ok());
  CHECK(report->keys == 0);
  CHECK(*to->Count("") == 0);
}

}  // namespace
}  // namespace orch
