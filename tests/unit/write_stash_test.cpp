// The write stash (src/apiserver/write_stash.h): a write's objects are taken once by key and
// revision, older entries are forgotten as the watch cache moves on, and the stash is bounded.
#include "write_stash.h"

#include <catch2/catch.hpp>

namespace orch::api {
namespace {

using nlohmann::json;

WriteStash::Objects Obj(int n) {
  WriteStash::Objects o;
  o.object = std::make_shared<const json>(json{{"n", n}});
  o.prev = std::make_shared<const json>(json{{"n", n - 1}});
  return o;
}

TEST_CASE("write stash: taken once, by key and revision") {
  WriteStash stash;
  auto put = Obj(1);
  const json* object = put.object.get();
  stash.Put("/registry/pods/ns/a", 5, std::move(put));
  CHECK(!stash.Take("/registry/pods/ns/b", 4).has_value());  // another key, older revision
  auto got = stash.Take("/registry/pods/ns/a", 5);
  REQUIRE(got.has_value());
  CHECK(got->object.get() == object);  // the writer's object itself, not a copy
  CHECK((*got->prev)["n"] == 0);
  CHECK(!stash.Take("/registry/pods/ns/a", 5).has_value());  // used once
  CHECK(stash.size() == 0);
}

TEST_CASE("write stash: entries the cache went past are dropped") {
  WriteStash stash;
  stash.Put("/registry/pods/ns/a", 5, Obj(1));
  stash.Put("/registry/pods/ns/b", 6, Obj(2));
  stash.Put("/registry/pods/ns/c", 6, Obj(3));  // same transaction
  // The cache reads revision 6 of b: a (revision 5) can never be asked for any more.
  REQUIRE(stash.Take("/registry/pods/ns/b", 6).has_value());
  CHECK(stash.size() == 1);
  REQUIRE(stash.Take("/registry/pods/ns/c", 6).has_value());
  // A write put after the cache went past its revision (the writer was slow) is not kept.
  stash.Take("/registry/pods/ns/d", 9);
  stash.Put("/registry/pods/ns/e", 8, Obj(4));
  CHECK(stash.size() == 0);
}

TEST_CASE("write stash: bounded, the oldest go first") {
  WriteStash stash(3);
  for (int i = 1; i <= 10; ++i) stash.Put("/registry/pods/ns/p", i, Obj(i));
  CHECK(stash.size() == 3);
  CHECK(!stash.Take("/registry/pods/ns/p", 7).has_value());
  CHECK(stash.size() == 3);  // 8, 9, 10 stay
  CHECK(stash.Take("/registry/pods/ns/p", 10).has_value());
  CHECK(stash.size() == 0);
}

}  // namespace
}  // namespace orch::api
