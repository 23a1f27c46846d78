// Certificates for the cluster: the CA created on first server start, serving and client
// certificates signed by it, and the CA hash that join tokens pin. PEM strings in and out.
#pragma once

#include <string>
#include <vector>

#include "orch/status.h"

namespace orch::pki {

// A certificate and its private key, both PEM.
struct Credential {
  std::string cert_pem;
  std::string key_pem;
};

struct CertificateRequest {
  std::string common_name;                 // user name for client certificates
  std::vector<std::string> organizations;  // groups for client certificates
  std::vector<std::string> dns_names;      // subjectAltName DNS entries (server certificates)
  std::vector<std::string> ip_addresses;   // subjectAltName IP entries (server certificates)
  bool server = false;                     // extendedKeyUsage serverAuth
  bool client = false;                     // extendedKeyUsage clientAuth
  int valid_days = 365;
};

// A new self-signed CA (EC P-256 key), valid for `valid_days`.
Result<Credential> CreateCA(const std::string& common_name, int valid_days = 3650);

// A new key and a certificate for it signed by `ca`.
Result<Credential> IssueCertificate(const Credential& ca, const CertificateRequest& request);

// Signs the public key of a PEM certificate signing request with `ca`, taking the subject and
// usages from `request` (never from the CSR: the signer decides who the holder is).
Result<std::string> SignRequest(const Credential& ca, const std::string& csr_pem,
                                const CertificateRequest& request);

// A new key and a PEM CSR for it (what a joining agent sends).
Result<Credential> CreateSigningRequest(const std::string& common_name);  // cert_pem = the CSR

// Subject of a PEM certificate: common name and organizations.
struct Subject {
  std::string common_name;
  std::vector<std::string> organizations;
};
Result<Subject> ReadSubject(const std::string& cert_pem);

// Days until a PEM certificate expires (negative when expired).
Result<int> DaysUntilExpiry(const std::string& cert_pem);

// Lower-case hex SHA-256 of `data` (the token's CA hash is this over the CA bundle PEM).
std::string Sha256Hex(const std::string& data);

// Cryptographically random bytes as lower-case hex (2 * `bytes` characters).
std::string RandomHex(size_t bytes);

}  // namespace orch::pki
