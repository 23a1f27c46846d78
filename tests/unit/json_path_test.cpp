// The shared JSON path accessor (include/orch/json_path.h): present, absent and mistyped steps,
// and that a found value is the object's own (no copy).
#include "orch/json_path.h"

#include <catch2/catch.hpp>

using nlohmann::json;
namespace json_path = orch::json_path;

TEST_CASE("Find and Field follow a path of object keys") {
  const json pod = json::parse(R"({"metadata": {"name": "web", "labels": {"app": "a"}},
                                   "spec": {"containers": [{"name": "c"}], "priority": 5}})");
  const json* labels = json_path::Find(pod, {"metadata", "labels"});
  REQUIRE(labels != nullptr);
  CHECK(labels == &pod["metadata"]["labels"]);
  CHECK(json_path::Field(pod, {"metadata", "labels", "app"}) == "a");
  CHECK(json_path::Field(pod, "spec").is_object());
  CHECK(json_path::Field(pod, {}) == pod);
  CHECK(json_path::Field(pod, {"spec", "priority"}) == 5);
}

TEST_CASE("A missing step or a non-object on the way reads as absent") {
  const json pod = json::parse(R"({"metadata": {"name": "web"}, "spec": {"containers": [1]}})");
  CHECK(json_path::Find(pod, {"status"}) == nullptr);
  CHECK(json_path::Find(pod, {"metadata", "name", "deeper"}) == nullptr);
  CHECK(json_path::Find(pod, {"spec", "containers", "0"}) == nullptr);
  CHECK(json_path::Field(pod, {"status", "phase"}).is_null());
  CHECK(json_path::Field(json(), "spec").is_null());
  CHECK(json_path::Field(json::array({1, 2}), "spec").is_null());
}

TEST_CASE("String reads strings only, else the fallback") {
  const json pod = json::parse(R"({"metadata": {"name": "web", "generation": 3}})");
  CHECK(json_path::String(pod, {"metadata", "name"}) == "web");
  CHECK(json_path::String(pod, {"metadata", "generation"}).empty());
  CHECK(json_path::String(pod, {"metadata", "uid"}, "none") == "none");
  CHECK(json_path::String(pod["metadata"], "name") == "web");
  CHECK(json_path::String(pod, "metadata", "x") == "x");
}
