// The ControllerRevision history (controller_history.h): names, hashes and data, and against the
// fake API with a real informer: listing, the current revision, collisions and truncation.
#include "controller_history.h"

#include <catch2/catch.hpp>

#include "controller_test_util.h"
#include "deployment_util.h"

namespace {

using json = nlohmann::json;
using orch::ObjectPtr;
using orch::testing::ControllerFixture;
using orch::testing::Ptr;
using orch::testing::WaitUntil;
namespace ctrl = orch::ctrl;
namespace history = orch::ctrl::history;
namespace resources = orch::resources;

json DaemonSet(const std::string& name, const std::string& image) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "DaemonSet"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec",
           {{"selector", {{"matchLabels", {{"app", name}}}}},
            {"template", orch::testing::PodTemplate({{"app", name}}, image)}}}};
}

json Revision(const std::string& name, int64_t number, const json& data) {
  return {{"metadata", {{"name", name}}}, {"revision", number}, {"data", data}};
}

// A DaemonSet created in the fake API, and the history's view of it.
struct HistoryFixture {
  HistoryFixture() : revisions(fixture.context.informers.For(resources::kControllerRevisions)) {
    ctrl::AddControllerIndex(revisions);
    REQUIRE(fixture.context.informers.WaitForSync(std::chrono::seconds(10)));
  }

  json CreateOwner(const std::string& name, const std::string& image) {
    auto created = fixture.api.Create(resources::kDaemonSets, "default", DaemonSet(name, image));
    REQUIRE(created.ok());
    return *created;
  }
  history::RevisionList WaitForRevisions(const json& owner, size_t count) {
    history::RevisionList out;
    REQUIRE(WaitUntil([&] {
      out = history::ListRevisions(revisions, owner);
      return out.size() == count;
    }));
    return out;
  }

  ControllerFixture fixture;
  orch::Informer& revisions;
};

TEST_CASE("revision names, hashes and data") {
  json ds = DaemonSet("web", "nginx:1");
  json data = history::TemplateRevisionData(ds);
  CHECK(data["spec"]["template"]["$patch"] == "replace");
  CHECK(data["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1");
  CHECK(history::TemplateFromRevision({{"data", data}}) == ds["spec"]["template"]);
  CHECK(history::TemplateFromRevision(json::object()).is_null());

  // The Deployment's hash spelling, with the collision count fed only when not zero.
  CHECK(history::HashRevisionData(data, 0) == ctrl::deploy::ComputeHash(data, std::nullopt));
  CHECK(history::HashRevisionData(data, 2) == ctrl::deploy::ComputeHash(data, 2));
  CHECK(history::HashRevisionData(data, 1) != history::HashRevisionData(data, 0));
  CHECK(history::HashRevisionData(data, 0) !=
        history::HashRevisionData(history::TemplateRevisionData(DaemonSet("web", "nginx:2")), 0));

  CHECK(history::RevisionName("web", "abc") == "web-abc");
  CHECK(history::RevisionName(std::string(300, 'a'), "abc") == std::string(223, 'a') + "-abc");

  json owner = ds;
  owner["metadata"]["uid"] = "u1";
  json rev = history::NewRevision({owner, "apps/v1", "DaemonSet"}, {{"app", "web"}},
                                  {{"note", "x"}}, data, 3, 0);
  const std::string hash = history::HashRevisionData(data, 0);
  CHECK(rev["kind"] == "ControllerRevision");
  CHECK(rev["metadata"]["name"] == "web-" + hash);
  CHECK(rev["metadata"]["namespace"] == "default");
  CHECK(rev["metadata"]["labels"] == json{{"app", "web"}, {"controller-revision-hash", hash}});
  CHECK(rev["metadata"]["annotations"]["note"] == "x");
  CHECK(rev["metadata"]["ownerReferences"][0]["uid"] == "u1");
  CHECK(rev["metadata"]["ownerReferences"][0]["controller"] == true);
  CHECK(rev["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet");
  CHECK(rev["revision"] == 3);
  CHECK(rev["data"] == data);
  CHECK(history::RevisionHash(rev) == hash);
  CHECK(history::RevisionHash({{"metadata", {{"name", "web-xyz"}}}}) == "xyz");
  CHECK_FALSE(history::NewRevision({owner, "apps/v1", "DaemonSet"}, json::object(), nullptr, data,
                                   1, 0)["metadata"]
                  .contains("annotations"));
}

TEST_CASE("revision sorting, equality and limits") {
  json d1 = {{"a", 1}}, d2 = {{"a", 2}};
  history::RevisionList list = {Ptr(Revision("c", 3, d1)), Ptr(Revision("a", 1, d2)),
                                Ptr(Revision("b", 2, d1))};
  history::SortRevisions(list);
  CHECK(ctrl::NameOf(*list[0]) == "a");
  CHECK(ctrl::NameOf(*list[2]) == "c");
  CHECK(history::MaxRevision(list) == 3);
  CHECK(history::MaxRevision({}) == 0);
  auto equal = history::FindEqualRevisions(list, {{"a", 1}, {"empty", json::object()}});
  REQUIRE(equal.size() == 2);
  CHECK(ctrl::NameOf(*equal[0]) == "b");
  CHECK(history::EqualRevision(*list[1], *list[2]));
  CHECK_FALSE(history::EqualRevision(*list[0], *list[1]));

  CHECK(history::RevisionHistoryLimit(json::object()) == 10);
  CHECK(history::RevisionHistoryLimit({{"spec", {{"revisionHistoryLimit", 0}}}}) == 0);
  CHECK(history::RevisionHistoryLimit({{"spec", {{"revisionHistoryLimit", -1}}}}) == 10);
}

TEST_CASE("EnsureCurrentRevision creates, reuses and renumbers revisions") {
  HistoryFixture h;
  json owner = h.CreateOwner("web", "nginx:1");
  const history::Owner ref{owner, "apps/v1", "DaemonSet"};
  const json labels = {{"app", "web"}};
  int64_t collisions = 0;

  // The first revision: created with number 1.
  json data1 = history::TemplateRevisionData(owner);
  auto first =
      history::EnsureCurrentRevision(h.fixture.api, ref, labels, nullptr, data1, {}, &collisions);
  REQUIRE(first.ok());
  CHECK(first->created);
  CHECK(history::RevisionNumber(*first->revision) == 1);
  CHECK(first->revisions.size() == 1);
  auto listed = h.WaitForRevisions(owner, 1);

  // Unchanged data: the same revision, nothing written.
  h.fixture.api.ClearActions();
  auto again = history::EnsureCurrentRevision(h.fixture.api, ref, labels, nullptr, data1, listed,
                                              &collisions);
  REQUIRE(again.ok());
  CHECK_FALSE(again->created);
  CHECK(ctrl::NameOf(*again->revision) == ctrl::NameOf(*first->revision));
  CHECK(h.fixture.api.Actions().empty());

  // A new template: revision 2.
  json owner2 = owner;
  owner2["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2";
  json data2 = history::TemplateRevisionData(owner2);
  auto second = history::EnsureCurrentRevision(h.fixture.api, ref, labels, nullptr, data2, listed,
                                               &collisions);
  REQUIRE(second.ok());
  CHECK(second->created);
  CHECK(history::RevisionNumber(*second->revision) == 2);
  CHECK(second->revisions.size() == 2);
  listed = h.WaitForRevisions(owner, 2);

  // Back to the first template: its revision is renumbered 3, not duplicated.
  auto back = history::EnsureCurrentRevision(h.fixture.api, ref, labels, nullptr, data1, listed,
                                             &collisions);
  REQUIRE(back.ok());
  CHECK_FALSE(back->created);
  CHECK(ctrl::NameOf(*back->revision) == ctrl::NameOf(*first->revision));
  CHECK(history::RevisionNumber(*back->revision) == 3);
  REQUIRE(back->revisions.size() == 2);
  CHECK(back->revisions.back() == back->revision);
  CHECK(h.fixture.Get(resources::kControllerRevisions,
                      ctrl::NameOf(*first->revision))["revision"] == 3);
  CHECK(collisions == 0);

  // Renumbering from a stale list fails on the resourceVersion precondition.
  auto stale = history::EnsureCurrentRevision(h.fixture.api, ref, labels, nullptr, data2, listed,
                                              &collisions);
  REQUIRE(stale.ok());  // listed still has revision 2 as the newest: nothing to renumber
  history::RevisionList stale_list = listed;
  auto conflict = history::EnsureCurrentRevision(h.fixture.api, ref, labels, nullptr, data1,
                                                 stale_list, &collisions);
  CHECK_FALSE(conflict.ok());
  CHECK(conflict.status().code() == orch::StatusCode::kConflict);
}

TEST_CASE("a revision whose data is already stored under its name is reused (stale cache)") {
  HistoryFixture h;
  json owner = h.CreateOwner("web", "nginx:1");
  const history::Owner ref{owner, "apps/v1", "DaemonSet"};
  int64_t collisions = 0;
  json data = history::TemplateRevisionData(owner);
  REQUIRE(history::EnsureCurrentRevision(h.fixture.api, ref, {{"app", "web"}}, nullptr, data, {},
                                         &collisions)
              .ok());
  // The caller's cache has not seen it yet: the create meets AlreadyExists with equal data.
  auto again = history::EnsureCurrentRevision(h.fixture.api, ref, {{"app", "web"}}, nullptr, data,
                                              {}, &collisions);
  REQUIRE(again.ok());
  CHECK(again->revisions.size() == 1);
  CHECK(collisions == 0);
  CHECK(h.fixture.List(resources::kControllerRevisions).size() == 1);
}

TEST_CASE("a hash collision raises the collision count and takes another name") {
  HistoryFixture h;
  json owner = h.CreateOwner("web", "nginx:1");
  const history::Owner ref{owner, "apps/v1", "DaemonSet"};
  json data = history::TemplateRevisionData(owner);
  // Someone else's revision under the name our data hashes to.
  json squatter = {
      {"apiVersion", "apps/v1"},
      {"kind", "ControllerRevision"},
      {"metadata", {{"name", history::RevisionName("web", history::HashRevisionData(data, 0))}}},
      {"data", {{"other", true}}},
      {"revision", 1}};
  REQUIRE(h.fixture.api.Create(resources::kControllerRevisions, "default", squatter).ok());

  int64_t collisions = 0;
  auto result = history::EnsureCurrentRevision(h.fixture.api, ref, {{"app", "web"}}, nullptr, data,
                                               {}, &collisions);
  REQUIRE(result.ok());
  CHECK(collisions == 1);
  CHECK(ctrl::NameOf(*result->revision) ==
        history::RevisionName("web", history::HashRevisionData(data, 1)));
  CHECK(history::RevisionHash(*result->revision) == history::HashRevisionData(data, 1));
  CHECK(result->revision->at("data") == data);
}

TEST_CASE("ListRevisions and ClaimRevisions see only the owner's revisions") {
  HistoryFixture h;
  json owner = h.CreateOwner("web", "nginx:1");
  json other = h.CreateOwner("db", "postgres:1");
  int64_t collisions = 0;
  REQUIRE(history::EnsureCurrentRevision(h.fixture.api, {owner, "apps/v1", "DaemonSet"},
                                         {{"app", "web"}}, nullptr,
                                         history::TemplateRevisionData(owner), {}, &collisions)
              .ok());
  REQUIRE(history::EnsureCurrentRevision(h.fixture.api, {other, "apps/v1", "DaemonSet"},
                                         {{"app", "db"}}, nullptr,
                                         history::TemplateRevisionData(other), {}, &collisions)
              .ok());
  // An orphan matching web's selector, to be adopted.
  json orphan = {{"apiVersion", "apps/v1"},
                 {"kind", "ControllerRevision"},
                 {"metadata", {{"name", "web-orphan"}, {"labels", {{"app", "web"}}}}},
                 {"data", {{"x", 1}}},
                 {"revision", 7}};
  REQUIRE(h.fixture.api.Create(resources::kControllerRevisions, "default", orphan).ok());
  h.WaitForRevisions(owner, 1);
  REQUIRE(WaitUntil([&] { return h.revisions.List("default").size() == 3; }));

  orch::Status error;
  auto claimed = history::ClaimRevisions(h.fixture.api, h.revisions,
                                         {owner, "apps/v1", "DaemonSet"}, resources::kDaemonSets,
                                         orch::LabelSelector::FromMap({{"app", "web"}}), &error);
  REQUIRE(error.ok());
  REQUIRE(claimed.size() == 2);
  CHECK(ctrl::NameOf(*claimed[1]) == "web-orphan");  // revision 7 sorts last
  json adopted = h.fixture.Get(resources::kControllerRevisions, "web-orphan");
  CHECK(adopted["metadata"]["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]);
  h.WaitForRevisions(owner, 2);
  h.WaitForRevisions(other, 1);
}

TEST_CASE("TruncateHistory deletes the oldest revisions not in use beyond the limit") {
  HistoryFixture h;
  json owner = h.CreateOwner("web", "nginx:1");
  const history::Owner ref{owner, "apps/v1", "DaemonSet"};
  int64_t collisions = 0;
  history::RevisionList all;
  for (int i = 1; i <= 6; ++i) {
    json version = owner;
    version["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:" + std::to_string(i);
    auto r =
        history::EnsureCurrentRevision(h.fixture.api, ref, {{"app", "web"}}, nullptr,
                                       history::TemplateRevisionData(version), all, &collisions);
    REQUIRE(r.ok());
    all = r->revisions;
  }
  REQUIRE(all.size() == 6);
  // In use: the newest (by name) and revision 2 (by hash, as a DaemonSet pod's label says).
  std::set<std::string> in_use = {ctrl::NameOf(*all[5]), history::RevisionHash(*all[1])};
  int deleted = 0;
  REQUIRE(history::TruncateHistory(h.fixture.api, all, in_use, 2, &deleted).ok());
  CHECK(deleted == 2);  // of the four not in use (1, 3, 4, 5), 1 and 3 go
  std::set<std::string> left;
  for (const json& r : h.fixture.List(resources::kControllerRevisions)) {
    left.insert(ctrl::NameOf(r));
  }
  CHECK(left == std::set<std::string>{ctrl::NameOf(*all[1]), ctrl::NameOf(*all[3]),
                                      ctrl::NameOf(*all[4]), ctrl::NameOf(*all[5])});

  // Within the limit: nothing; revisions already gone are not errors.
  REQUIRE(history::TruncateHistory(h.fixture.api, all, in_use, 10, &deleted).ok());
  CHECK(deleted == 0);
  REQUIRE(history::TruncateHistory(h.fixture.api, all, {}, 0, &deleted).ok());
  CHECK(deleted == 4);
  CHECK(h.fixture.List(resources::kControllerRevisions).empty());
}

}  // namespace
