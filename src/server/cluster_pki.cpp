// Creation and reuse of the server's credentials (cluster_pki.h). Everything private lives
// under <data-dir>/server with mode 0600/0700; only the kubeconfig goes elsewhere.
#include "cluster_pki.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>

#include "orch/base64.h"
#include "orch/files.h"
#include "orch/log.h"
#include "orch/pki.h"

namespace orch {
namespace {

constexpr int kRenewWithinDays = 90;

Result<pki::Credential> LoadOrCreateCA(const std::string& cert_file, const std::string& key_file) {
  auto cert = ReadFileToString(cert_file);
  auto key = ReadFileToString(key_file);
  if (cert.ok() && key.ok()) return pki::Credential{*cert, *key};
  if (cert.ok() != key.ok()) {
    return Unavailable(fmt::format("{} and {} must both exist; refusing to replace the cluster CA",
                                   cert_file, key_file));
  }
  auto ca = pki::CreateCA("orch-ca@" + std::to_string(std::time(nullptr)));
  if (!ca.ok()) return ca.status();
  if (Status s = WriteFileAtomic(key_file, ca->key_pem, 0600); !s.ok()) return s;
  if (Status s = WriteFileAtomic(cert_file, ca->cert_pem, 0644); !s.ok()) return s;
  log::Info("pki", "created the cluster CA {}", cert_file);
  return *ca;
}

// Issues `request` into cert_file/key_file unless a valid certificate is there already and
// `fingerprint` (what it was issued for) is unchanged.
Status EnsureCertificate(const pki::Credential& ca, const pki::CertificateRequest& request,
                         const std::string& cert_file, const std::string& key_file,
                         const std::string& fingerprint) {
  auto cert = ReadFileToString(cert_file);
  auto key = ReadFileToString(key_file);
  auto stored_fingerprint = ReadFileToString(cert_file + ".for");
  if (cert.ok() && key.ok() && stored_fingerprint.ok() && *stored_fingerprint == fingerprint) {
    auto days = pki::DaysUntilExpiry(*cert);
    if (days.ok() && *days > kRenewWithinDays) return Status::Ok();
  }
  auto issued = pki::IssueCertificate(ca, request);
  if (!issued.ok()) return issued.status();
  if (Status s = WriteFileAtomic(key_file, issued->key_pem, 0600); !s.ok()) return s;
  if (Status s = WriteFileAtomic(cert_file, issued->cert_pem, 0644); !s.ok()) return s;
  log::Info("pki", "issued {}", cert_file);
  return WriteFileAtomic(cert_file + ".for", fingerprint, 0600);
}

bool LooksLikeIp(const std::string& s) {
  return !s.empty() && (s.find(':') != std::string::npos ||
                        s.find_first_not_of("0123456789.") == std::string::npos);
}

std::string Kubeconfig(const std::string& server, const std::string& ca_pem,
                       const std::string& cert_pem, const std::string& key_pem) {
  return fmt::format(R"(apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: {}
    server: {}
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
preferences: {{}}
users:
- name: default
  user:
    client-certificate-data: {}
    client-key-data: {}
)",
                     Base64Encode(ca_pem), server, Base64Encode(cert_pem), Base64Encode(key_pem));
}

}  // namespace

Result<ParsedToken> ParseToken(const std::string& token) {
  ParsedToken parsed;
  if (token.rfind("K10", 0) != 0) {
    if (token.empty() || token.find_first_of(" \t\n:") != std::string::npos) {
      return InvalidArgument("the token must be K10<ca-hash>::<user>:<secret> or a bare secret");
    }
    parsed.secret = token;
    return parsed;
  }
  size_t sep = token.find("::");
  size_t colon = sep == std::string::npos ? std::string::npos : token.find(':', sep + 2);
  if (sep == std::string::npos || colon == std::string::npos || sep < 3 + 64) {
    return InvalidArgument("the token is not in the form K10<ca-hash>::<user>:<secret>");
  }
  parsed.ca_hash = token.substr(3, sep - 3);
  parsed.user = token.substr(sep + 2, colon - sep - 2);
  parsed.secret = token.substr(colon + 1);
  if (parsed.secret.empty()) return InvalidArgument("the token has an empty secret");
  return parsed;
}

Result<ClusterCredentials> EnsureClusterCredentials(const ServerConfig& config,
                                                    const std::vector<std::string>& sans) {
  const std::string server_dir = config.data_dir + "/server";
  const std::string tls = server_dir + "/tls";
  const std::string cred = server_dir + "/cred";
  for (const std::string& dir : {tls, cred}) {
    if (Status s = MakeDirectories(dir, 0700); !s.ok()) return s;
  }
  ClusterCredentials out;
  out.ca_cert_file = tls + "/server-ca.crt";
  out.ca_key_file = tls + "/server-ca.key";
  auto ca = LoadOrCreateCA(out.ca_cert_file, out.ca_key_file);
  if (!ca.ok()) return ca.status();
  out.ca_cert_pem = ca->cert_pem;

  // Serving certificate.
  pki::CertificateRequest serving;
  serving.common_name = "orch-apiserver";
  serving.server = true;
  for (const std::string& san : sans) {
    auto& list = LooksLikeIp(san) ? serving.ip_addresses : serving.dns_names;
    if (std::find(list.begin(), list.end(), san) == list.end()) list.push_back(san);
  }
  // The CA is part of what a certificate was issued for: servers of an HA cluster may take a
  // new CA from the datastore, and their certificates must then follow it.
  const std::string ca_line = "CA:" + pki::Sha256Hex(ca->cert_pem) + "\n";
  std::string fingerprint = ca_line;
  for (const auto& s : serving.ip_addresses) fingerprint += "IP:" + s + "\n";
  for (const auto& s : serving.dns_names) fingerprint += "DNS:" + s + "\n";
  out.serving_cert_file = tls + "/serving-kube-apiserver.crt";
  out.serving_key_file = tls + "/serving-kube-apiserver.key";
  if (Status s =
          EnsureCertificate(*ca, serving, out.serving_cert_file, out.serving_key_file, fingerprint);
      !s.ok()) {
    return s;
  }

  // Admin client certificate, for the kubeconfig.
  pki::CertificateRequest admin;
  admin.common_name = "system:admin";
  admin.organizations = {"system:masters"};
  admin.client = true;
  const std::string admin_cert = tls + "/client-admin.crt";
  const std::string admin_key = tls + "/client-admin.key";
  if (Status s = EnsureCertificate(*ca, admin, admin_cert, admin_key, ca_line + "system:admin\n");
      !s.ok()) {
    return s;
  }

  // Join token: K10<sha256 of the CA bundle>::server:<secret>, stable across restarts.
  const std::string token_file = server_dir + "/token";
  std::string ca_hash = pki::Sha256Hex(ca->cert_pem);
  auto stored = ReadFileToString(token_file);
  std::string secret;
  if (stored.ok()) {
    std::string text = *stored;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    auto parsed = ParseToken(text);
    if (!parsed.ok()) return InvalidArgument(token_file + ": " + parsed.status().message());
    secret = parsed->secret;
  }
  if (!config.token.empty()) {
    auto given = ParseToken(config.token);
    if (!given.ok()) return InvalidArgument("--token: " + given.status().message());
    if (!given->ca_hash.empty() && given->ca_hash != ca_hash) {
      return InvalidArgument("--token names a different cluster CA than " + out.ca_cert_file);
    }
    if (!secret.empty() && given->secret != secret) {
      return InvalidArgument("--token differs from the cluster's token in " + token_file +
                             "; a cluster's token cannot change");
    }
    secret = given->secret;
  }
  if (secret.empty()) secret = pki::RandomHex(16);
  out.token_secret = secret;
  out.token = "K10" + ca_hash + "::server:" + secret;
  if (!stored.ok() || stored->find(out.token) == std::string::npos) {
    if (Status s = WriteFileAtomic(token_file, out.token + "\n", 0600); !s.ok()) return s;
  }

  out.encryption_key_file = cred + "/encryption-key";

  // The admin kubeconfig, rewritten at every start so that it follows the port and the CA.
  auto admin_cert_pem = ReadFileToString(admin_cert);
  auto admin_key_pem = ReadFileToString(admin_key);
  if (!admin_cert_pem.ok()) return admin_cert_pem.status();
  if (!admin_key_pem.ok()) return admin_key_pem.status();
  out.kubeconfig_file = config.write_kubeconfig;
  std::string kubeconfig_dir = out.kubeconfig_file.substr(0, out.kubeconfig_file.find_last_of('/'));
  if (!kubeconfig_dir.empty()) {
    if (Status s = MakeDirectories(kubeconfig_dir, 0755); !s.ok()) return s;
  }
  std::string server = fmt::format("https://127.0.0.1:{}", config.https_listen_port);
  if (Status s = WriteFileAtomic(out.kubeconfig_file,
                                 Kubeconfig(server, ca->cert_pem, *admin_cert_pem, *admin_key_pem),
                                 static_cast<mode_t>(config.write_kubeconfig_mode));
      !s.ok()) {
    return s;
  }
  return out;
}

}  // namespace orch
