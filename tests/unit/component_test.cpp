// ComponentList: start in order, stop in reverse, roll back when a start fails.
#include "orch/component.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace {

class Recorder : public orch::Component {
 public:
  Recorder(std::string name, std::vector<std::string>* journal, bool fail = false)
      : name_(std::move(name)), journal_(journal), fail_(fail) {}
  std::string_view Name() const override { return name_; }
  orch::Status Start() override {
    journal_->push_back("start " + name_);
    if (fail_) return orch::Unavailable("port in use");
    return orch::Status::Ok();
  }
  void Stop() override { journal_->push_back("stop " + name_); }

 private:
  std::string name_;
  std::vector<std::string>* journal_;
  bool fail_;
};

}  // namespace

TEST_CASE("Components start in order and stop in reverse") {
  std::vector<std::string> journal;
  orch::ComponentList list;
  list.Add(std::make_unique<Recorder>("datastore", &journal));
  list.Add(std::make_unique<Recorder>("apiserver", &journal));
  REQUIRE(list.StartAll().ok());
  list.StopAll();
  list.StopAll();  // idempotent
  CHECK(journal == std::vector<std::string>{"start datastore", "start apiserver", "stop apiserver",
                                            "stop datastore"});
}

TEST_CASE("A failed start stops what was started and names the component") {
  std::vector<std::string> journal;
  orch::ComponentList list;
  list.Add(std::make_unique<Recorder>("datastore", &journal));
  list.Add(std::make_unique<Recorder>("apiserver", &journal, /*fail=*/true));
  list.Add(std::make_unique<Recorder>("controllers", &journal));
  orch::Status s = list.StartAll();
  CHECK(s.code() == orch::StatusCode::kUnavailable);
  CHECK(s.message() == "apiserver: port in use");
  CHECK(journal ==
        std::vector<std::string>{"start datastore", "start apiserver", "stop datastore"});
}

TEST_CASE("The destructor stops running components") {
  std::vector<std::string> journal;
  {
    orch::ComponentList list;
    list.Add(std::make_unique<Recorder>("datastore", &journal));
    REQUIRE(list.StartAll().ok());
  }
  CHECK(journal == std::vector<std::string>{"start datastore", "stop datastore"});
}
