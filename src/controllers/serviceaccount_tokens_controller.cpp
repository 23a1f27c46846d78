// The tokens controller (service_account_credentials.h): keys are the ObjectKeys of legacy
// token Secrets; a sync fills what the Secret lacks or deletes it when its account is gone.
#include <fmt/format.h>

#include "controller_util.h"
#include "orch/base64.h"
#include "orch/files.h"
#include "orch/log.h"
#include "orch/sa_token.h"
#include "service_account_credentials.h"

namespace orch {
namespace {

using json = nlohmann::json;

constexpr char kComponent[] = "serviceaccount-token";

class TokensController : public Component {
 public:
  explicit TokensController(ControllerContext& context)
      : client_(context.client),
        data_dir_(context.data_dir),
        secrets_(context.informers.For(resources::kSecrets, "", "",
                                       std::string("type=") + satoken::kSecretType)),
        accounts_(context.informers.For(resources::kServiceAccounts)),
        loop_(
            kComponent, context.informers, context.workers, std::chrono::minutes(5),
            [this] { return ctrl::InformerKeys(secrets_); },
            [this](const std::string& key) { return Sync(key); }) {}

  std::string_view Name() const override { return kComponent; }

  Status Start() override {
    auto pem = ReadFileToString(data_dir_ + "/server/tls/service.key");
    auto ca = ReadFileToString(data_dir_ + "/server/tls/server-ca.crt");
    if (!pem.ok() || !ca.ok()) {
      log::Warn(kComponent,
                "no service-account key or CA under {}/server/tls: legacy token "
                "Secrets stay empty",
                data_dir_);
      return Status::Ok();
    }
    auto key = satoken::SigningKey::FromPem(*pem);
    if (!key.ok()) return key.status();
    key_ = std::move(*key);
    ca_ = *ca;
    auto by_key = [this](const ObjectPtr& secret) { loop_.Add(ObjectKey(*secret)); };
    secrets_.AddHandler({
        by_key,
        [by_key](const ObjectPtr&, const ObjectPtr& secret) { by_key(secret); },
        nullptr,
    });
    auto users = [this](const ObjectPtr& sa) { EnqueueSecretsOf(*sa); };
    accounts_.AddHandler({
        users,
        [users](const ObjectPtr&, const ObjectPtr& sa) { users(sa); },
        users,
    });
    loop_.Start();
    started_ = true;
    return Status::Ok();
  }

  void Stop() override {
    if (started_) loop_.Stop();
  }

 private:
  void EnqueueSecretsOf(const json& sa) {
    std::string name = ctrl::NameOf(sa);
    for (const ObjectPtr& secret : secrets_.List(ctrl::NamespaceOf(sa))) {
      if (ctrl::StringField(*secret, {"metadata", "annotations", satoken::kNameAnnotation}) ==
          name) {
        loop_.Add(ObjectKey(*secret));
      }
    }
  }

  Status DeleteSecret(const json& secret, const std::string& why) {
    log::Info(kComponent, "deleting token secret {}: {}", ObjectKey(secret), why);
    DeleteOptions options;
    options.precondition_uid = ctrl::UidOf(secret);
    auto deleted = client_.Delete(resources::kSecrets, ctrl::NamespaceOf(secret),
                                  ctrl::NameOf(secret), options);
    if (deleted.ok() || deleted.status().code() == StatusCode::kNotFound) return Status::Ok();
    return deleted.status();
  }

  Status Sync(const std::string& key) {
    auto [ns, name] = SplitObjectKey(key);
    ObjectPtr secret = secrets_.Get(ns, name);
    if (!secret || ctrl::IsBeingDeleted(*secret)) return Status::Ok();
    const json& annotations = ctrl::Field(*secret, {"metadata", "annotations"});
    std::string sa_name = ctrl::StringField(annotations, {satoken::kNameAnnotation});
    if (sa_name.empty()) return Status::Ok();
    std::string want_uid = ctrl::StringField(annotations, {satoken::kUidAnnotation});
    ObjectPtr sa = accounts_.Get(ns, sa_name);
    if (!sa) {
      // The cache may lag behind a ServiceAccount created just before its Secret.
      auto live = client_.Get(resources::kServiceAccounts, ns, sa_name);
      if (!live.ok()) {
        if (live.status().code() != StatusCode::kNotFound) return live.status();
        return DeleteSecret(*secret, fmt::format("service account {} does not exist", sa_name));
      }
      sa = std::make_shared<const json>(std::move(*live));
    }
    std::string sa_uid = ctrl::UidOf(*sa);
    if (!want_uid.empty() && want_uid != sa_uid) {
      return DeleteSecret(*secret, fmt::format("service account {} was replaced", sa_name));
    }
    const json& data = ctrl::Field(*secret, {"data"});
    std::string ca = Base64Encode(ca_);
    std::string ns_b64 = Base64Encode(ns);
    bool has_token = !ctrl::StringField(data, {"token"}).empty();
    if (has_token && want_uid == sa_uid && ctrl::StringField(data, {"ca.crt"}) == ca &&
        ctrl::StringField(data, {"namespace"}) == ns_b64) {
      return Status::Ok();
    }
    json next = *secret;
    next["metadata"]["annotations"][satoken::kUidAnnotation] = sa_uid;
    if (!next["data"].is_object()) next["data"] = json::object();
    if (!has_token) {
      auto token = key_->Sign(satoken::LegacyClaims(ns, sa_name, sa_uid, name));
      if (!token.ok()) return token.status();
      next["data"]["token"] = Base64Encode(*token);
    }
    next["data"]["ca.crt"] = ca;
    next["data"]["namespace"] = ns_b64;
    auto updated = client_.Update(resources::kSecrets, ns, next);
    if (updated.ok() || updated.status().code() == StatusCode::kNotFound) return Status::Ok();
    return updated.status();  // a conflict: the newer copy arrives and is synced again
  }

  ApiClient& client_;
  const std::string data_dir_;
  std::optional<satoken::SigningKey> key_;  // set in Start, read-only after
  std::string ca_;
  bool started_ = false;
  Informer& secrets_;
  Informer& accounts_;
  ctrl::ControllerLoop loop_;  // last: its workers use everything above
};

}  // namespace

std::unique_ptr<Component> NewServiceAccountTokensController(ControllerContext& context) {
  return std::make_unique<TokensController>(context);
}

}  // namespace orch
