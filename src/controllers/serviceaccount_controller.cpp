// The ServiceAccount controller (serviceaccount_controller.h): keys are namespace names; a sync
// creates the namespace's `default` ServiceAccount when the informer does not have it.
#include "serviceaccount_controller.h"

#include "orch/log.h"

namespace orch {
namespace ctrl {

bool NamespaceWantsServiceAccounts(const json& ns) {
  return !IsBeingDeleted(ns) && StringField(ns, {"status", "phase"}) != "Terminating";
}

json DefaultServiceAccount(const std::string& ns) {
  return {{"apiVersion", "v1"},
          {"kind", "ServiceAccount"},
          {"metadata", {{"name", kDefaultServiceAccount}, {"namespace", ns}}}};
}

}  // namespace ctrl

namespace {

constexpr char kComponent[] = "serviceaccount";

class ServiceAccountController : public Component {
 public:
  explicit ServiceAccountController(ControllerContext& context)
      : client_(context.client),
        namespaces_(context.informers.For(resources::kNamespaces)),
        accounts_(context.informers.For(resources::kServiceAccounts)),
        loop_(
            kComponent, context.informers, context.workers, std::chrono::minutes(5),
            [this] { return ctrl::InformerKeys(namespaces_); },
            [this](const std::string& key) { return Sync(key); }) {}

  std::string_view Name() const override { return kComponent; }

  Status Start() override {
    namespaces_.AddHandler({
        [this](const ObjectPtr& ns) { loop_.Add(ctrl::NameOf(*ns)); },
        [this](const ObjectPtr&, const ObjectPtr& ns) { loop_.Add(ctrl::NameOf(*ns)); },
        nullptr,
    });
    accounts_.AddHandler({
        nullptr,
        nullptr,
        [this](const ObjectPtr& sa) {
          if (ctrl::NameOf(*sa) == ctrl::kDefaultServiceAccount) {
            loop_.Add(ctrl::NamespaceOf(*sa));
          }
        },
    });
    loop_.Start();
    return Status::Ok();
  }

  void Stop() override { loop_.Stop(); }

 private:
  Status Sync(const std::string& name) {
    ObjectPtr ns = namespaces_.Get("", name);
    if (!ns || !ctrl::NamespaceWantsServiceAccounts(*ns)) return Status::Ok();
    if (accounts_.Get(name, ctrl::kDefaultServiceAccount)) return Status::Ok();
    auto created =
        client_.Create(resources::kServiceAccounts, name, ctrl::DefaultServiceAccount(name));
    if (created.ok()) {
      log::Debug(kComponent, "created {}/default", name);
      return Status::Ok();
    }
    switch (created.status().code()) {
      case StatusCode::kAlreadyExists:  // the informer has not seen it yet
      case StatusCode::kNotFound:       // the namespace went meanwhile
        return Status::Ok();
      default:
        // Refused because the namespace began terminating: its update event tells us.
        if (created.status().message().find("being terminated") != std::string::npos) {
          return Status::Ok();
        }
        return created.status();
    }
  }

  ApiClient& client_;
  Informer& namespaces_;
  Informer& accounts_;
  ctrl::ControllerLoop loop_;  // last: its workers use everything above
};

}  // namespace

std::unique_ptr<Component> NewServiceAccountController(ControllerContext& context) {
  return std::make_unique<ServiceAccountController>(context);
}

}  // namespace orch
