// Controllers that hand out service-account credentials: the root CA publisher (ConfigMap
// kube-root-ca.crt in every namespace) and the tokens controller (legacy
// kubernetes.io/service-account-token Secrets get a token, ca.crt and namespace).
#pragma once

#include <memory>

#include "orch/component.h"
#include "orch/controllers.h"

namespace orch {

// Publishes <data_dir>/server/tls/server-ca.crt as kube-root-ca.crt/ca.crt in every namespace
// and restores it when changed or deleted. Without that file it does nothing (logged).
std::unique_ptr<Component> NewRootCaPublisher(ControllerContext& context);

// Upstream's tokens controller for legacy token Secrets: a Secret of type
// kubernetes.io/service-account-token naming an existing account in its
// kubernetes.io/service-account.name annotation gets data.token (a JWT without expiry signed
// with <data_dir>/server/tls/service.key), data.ca.crt, data.namespace and the account's uid
// annotation; a Secret whose account is gone (or was replaced: another uid) is deleted. Without
// the key it does nothing (logged).
std::unique_ptr<Component> NewServiceAccountTokensController(ControllerContext& context);

}  // namespace orch
