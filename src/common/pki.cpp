// OpenSSL implementation of orch/pki.h: EC P-256 keys, X.509 v3 certificates, CSR signing.
// Every OpenSSL object is owned by a unique_ptr with its free function.
#include "orch/pki.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <ctime>
#include <memory>

namespace orch::pki {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PKey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Req = std::unique_ptr<X509_REQ, Deleter<X509_REQ, X509_REQ_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Name = std::unique_ptr<X509_NAME, Deleter<X509_NAME, X509_NAME_free>>;

Status OpenSslError(const std::string& what) {
  unsigned long code = ERR_get_error();
  char buf[256] = "unknown error";
  if (code != 0) ERR_error_string_n(code, buf, sizeof(buf));
  ERR_clear_error();
  return Internal(what + ": " + buf);
}

Result<PKey> NewKey() {
  PKey key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("generate EC key");
  return key;
}

std::string KeyToPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, len);
}

std::string CertToPem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, len);
}

Result<Cert> CertFromPem(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return OpenSslError("parse certificate");
  return cert;
}

Result<PKey> KeyFromPem(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PKey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return OpenSslError("parse private key");
  return key;
}

Name MakeName(const std::string& common_name, const std::vector<std::string>& organizations) {
  Name name(X509_NAME_new());
  for (const std::string& org : organizations) {
    X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(org.c_str()), -1, -1, 0);
  }
  X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  return name;
}

bool AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// Builds and signs a certificate for `public_key` with the subject and usages of `request`.
// `ca_cert` null means self-signed (a CA).
Result<Cert> BuildCertificate(EVP_PKEY* public_key, const CertificateRequest& request,
                              X509* ca_cert, EVP_PKEY* ca_key, bool is_ca) {
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;  // keep the serial positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  // Back-date a little so that nodes with a slightly slow clock accept a fresh certificate.
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(request.valid_days) * 86400);
  X509_set_pubkey(cert.get(), public_key);
  Name subject = MakeName(request.common_name, request.organizations);
  X509_set_subject_name(cert.get(), subject.get());
  X509* issuer = ca_cert != nullptr ? ca_cert : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer));

  bool ok = true;
  if (is_ca) {
    ok &= AddExtension(cert.get(), issuer, NID_basic_constraints, "critical,CA:TRUE");
    ok &= AddExtension(cert.get(), issuer, NID_key_usage,
                       "critical,digitalSignature,keyEncipherment,keyCertSign");
    ok &= AddExtension(cert.get(), issuer, NID_subject_key_identifier, "hash");
  } else {
    ok &= AddExtension(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE");
    ok &= AddExtension(cert.get(), issuer, NID_key_usage,
                       "critical,digitalSignature,keyEncipherment");
    std::string usage;
    if (request.server) usage = "serverAuth";
    if (request.client) usage += usage.empty() ? "clientAuth" : ",clientAuth";
    if (!usage.empty()) ok &= AddExtension(cert.get(), issuer, NID_ext_key_usage, usage);
    std::string san;
    for (const std::string& dns : request.dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + dns;
    for (const std::string& ip : request.ip_addresses) san += (san.empty() ? "IP:" : ",IP:") + ip;
    if (!san.empty()) ok &= AddExtension(cert.get(), issuer, NID_subject_alt_name, san);
    ok &= AddExtension(cert.get(), issuer, NID_authority_key_identifier, "keyid:always");
  }
  if (!ok) return OpenSslError("certificate extensions");
  if (X509_sign(cert.get(), ca_key, EVP_sha256()) == 0) return OpenSslError("sign certificate");
  return cert;
}

}  // namespace

Result<Credential> CreateCA(const std::string& common_name, int valid_days) {
  auto key = NewKey();
  if (!key.ok()) return key.status();
  CertificateRequest request;
  request.common_name = common_name;
  request.valid_days = valid_days;
  auto cert = BuildCertificate(key->get(), request, nullptr, key->get(), /*is_ca=*/true);
  if (!cert.ok()) return cert.status();
  return Credential{CertToPem(cert->get()), KeyToPem(key->get())};
}

Result<Credential> IssueCertificate(const Credential& ca, const CertificateRequest& request) {
  auto ca_cert = CertFromPem(ca.cert_pem);
  if (!ca_cert.ok()) return ca_cert.status();
  auto ca_key = KeyFromPem(ca.key_pem);
  if (!ca_key.ok()) return ca_key.status();
  auto key = NewKey();
  if (!key.ok()) return key.status();
  auto cert = BuildCertificate(key->get(), request, ca_cert->get(), ca_key->get(), false);
  if (!cert.ok()) return cert.status();
  return Credential{CertToPem(cert->get()), KeyToPem(key->get())};
}

Result<std::string> SignRequest(const Credential& ca, const std::string& csr_pem,
                                const CertificateRequest& request) {
  auto ca_cert = CertFromPem(ca.cert_pem);
  if (!ca_cert.ok()) return ca_cert.status();
  auto ca_key = KeyFromPem(ca.key_pem);
  if (!ca_key.ok()) return ca_key.status();
  Bio bio(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())));
  Req req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!req) return InvalidArgument("not a PEM certificate signing request");
  PKey public_key(X509_REQ_get_pubkey(req.get()));
  if (!public_key || X509_REQ_verify(req.get(), public_key.get()) != 1) {
    ERR_clear_error();
    return InvalidArgument("certificate signing request signature does not verify");
  }
  auto cert = BuildCertificate(public_key.get(), request, ca_cert->get(), ca_key->get(), false);
  if (!cert.ok()) return cert.status();
  return CertToPem(cert->get());
}

Result<Credential> CreateSigningRequest(const std::string& common_name) {
  auto key = NewKey();
  if (!key.ok()) return key.status();
  Req req(X509_REQ_new());
  Name name = MakeName(common_name, {});
  X509_REQ_set_subject_name(req.get(), name.get());
  X509_REQ_set_pubkey(req.get(), key->get());
  if (X509_REQ_sign(req.get(), key->get(), EVP_sha256()) == 0) return OpenSslError("sign CSR");
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), req.get());
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return Credential{std::string(data, len), KeyToPem(key->get())};
}

Result<Subject> ReadSubject(const std::string& cert_pem) {
  auto cert = CertFromPem(cert_pem);
  if (!cert.ok()) return cert.status();
  Subject subject;
  X509_NAME* name = X509_get_subject_name(cert->get());
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    if (len < 0) continue;
    std::string value(reinterpret_cast<char*>(utf8), len);
    OPENSSL_free(utf8);
    if (nid == NID_commonName) subject.common_name = value;
    if (nid == NID_organizationName) subject.organizations.push_back(value);
  }
  return subject;
}

Result<int> DaysUntilExpiry(const std::string& cert_pem) {
  auto cert = CertFromPem(cert_pem);
  if (!cert.ok()) return cert.status();
  int days = 0, seconds = 0;
  if (ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(cert->get())) != 1) {
    return OpenSslError("certificate expiry");
  }
  return days;
}

std::string Sha256Hex(const std::string& data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(2 * SHA256_DIGEST_LENGTH);
  for (unsigned char c : digest) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes));
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

}  // namespace orch::pki
