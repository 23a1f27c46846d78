// PKI: a CA signs serving and client certificates and CSRs; subjects and hashes read back.
#include "orch/pki.h"

#include <catch2/catch.hpp>

TEST_CASE("CA issues client and server certificates") {
  auto ca = orch::pki::CreateCA("orch-ca");
  REQUIRE(ca.ok());
  orch::pki::CertificateRequest request;
  request.common_name = "system:admin";
  request.organizations = {"system:masters"};
  request.client = true;
  auto admin = orch::pki::IssueCertificate(*ca, request);
  REQUIRE(admin.ok());
  auto subject = orch::pki::ReadSubject(admin->cert_pem);
  REQUIRE(subject.ok());
  CHECK(subject->common_name == "system:admin");
  CHECK(subject->organizations == std::vector<std::string>{"system:masters"});
  auto days = orch::pki::DaysUntilExpiry(admin->cert_pem);
  REQUIRE(days.ok());
  CHECK(*days >= 364);

  orch::pki::CertificateRequest serving;
  serving.common_name = "orch-apiserver";
  serving.dns_names = {"localhost", "kubernetes.default.svc"};
  serving.ip_addresses = {"127.0.0.1", "10.43.0.1"};
  serving.server = true;
  REQUIRE(orch::pki::IssueCertificate(*ca, serving).ok());
}

TEST_CASE("CSR is signed with the signer's subject, not the requester's") {
  auto ca = orch::pki::CreateCA("orch-ca");
  REQUIRE(ca.ok());
  auto csr = orch::pki::CreateSigningRequest("i-claim-to-be-admin");
  REQUIRE(csr.ok());
  orch::pki::CertificateRequest request;
  request.common_name = "system:node:n1";
  request.organizations = {"system:nodes"};
  request.client = true;
  auto cert = orch::pki::SignRequest(*ca, csr->cert_pem, request);
  REQUIRE(cert.ok());
  CHECK(orch::pki::ReadSubject(*cert)->common_name == "system:node:n1");
  CHECK_FALSE(orch::pki::SignRequest(*ca, "garbage", request).ok());
}

TEST_CASE("hashes and random hex") {
  CHECK(orch::pki::Sha256Hex("abc") ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(orch::pki::RandomHex(16).size() == 32);
  CHECK(orch::pki::RandomHex(16) != orch::pki::RandomHex(16));
}
