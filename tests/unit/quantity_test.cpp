// Quantities: parsing, canonical strings, rounding, arithmetic and errors, against the values
// k8s.io/apimachinery/pkg/api/resource gives for the same inputs.
#include "orch/quantity.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

using orch::Quantity;

namespace {

std::string Canonical(const std::string& text) {
  orch::Result<Quantity> q = Quantity::Parse(text);
  REQUIRE(q.ok());
  return q->String();
}

Quantity Q(const std::string& text) {
  orch::Result<Quantity> q = Quantity::Parse(text);
  REQUIRE(q.ok());
  return *q;
}

std::string ParseError(const std::string& text) {
  orch::Result<Quantity> q = Quantity::Parse(text);
  REQUIRE_FALSE(q.ok());
  REQUIRE(q.status().code() == orch::StatusCode::kInvalidArgument);
  return q.status().message();
}

}  // namespace

TEST_CASE("Quantities print in upstream's canonical form") {
  CHECK(Canonical("0") == "0");
  CHECK(Canonical("100m") == "100m");
  CHECK(Canonical("1500m") == "1500m");
  CHECK(Canonical("1.5") == "1500m");
  CHECK(Canonical("1000m") == "1");
  CHECK(Canonical("2Gi") == "2Gi");
  CHECK(Canonical("500Mi") == "500Mi");
  CHECK(Canonical("1024Mi") == "1Gi");
  CHECK(Canonical("1536Mi") == "1536Mi");
  CHECK(Canonical("1.5Gi") == "1536Mi");
  CHECK(Canonical("0.5Gi") == "512Mi");
  CHECK(Canonical("0.1Ki") == "102400m");
  CHECK(Canonical("1000Ki") == "1000Ki");
  CHECK(Canonical("1e3") == "1e3");
  CHECK(Canonical("12e6") == "12e6");
  CHECK(Canonical("1.5e3") == "1500");
  CHECK(Canonical("1k") == "1k");
  CHECK(Canonical("1000") == "1k");
  CHECK(Canonical("1000000") == "1M");
  CHECK(Canonical("128974848") == "128974848");
  CHECK(Canonical("129e6") == "129e6");
  CHECK(Canonical("129M") == "129M");
  CHECK(Canonical("-100m") == "-100m");
  CHECK(Canonical("0.0001") == "100u");
  CHECK(Canonical("1n") == "1n");
  CHECK(Canonical("0.0000000001") == "1n");           // rounded up to the nano
  CHECK(Canonical("1.000000001") == "1.000000001");   // kept as written, like upstream
  CHECK(Canonical("1.0000000001") == "1000000001n");  // rounded up to the nano
  CHECK(Canonical("1.10") == "1100m");
  CHECK(Canonical("00100m") == "00100m");
  CHECK(Canonical("1E") == "1E");
  CHECK(Canonical("0Ki") == "0");
  // Upstream keeps a text it considers canonical digits as it was written, sign included.
  CHECK(Canonical("+1") == "+1");
  CHECK(Canonical("1.500k") == "1.500k");
  // Binary values are capped at 2^63-1.
  CHECK(Canonical("8Ei") == "9223372036854775807");
}

TEST_CASE("Quantities give values rounded away from zero") {
  CHECK(Q("100m").MilliValue() == 100);
  CHECK(Q("100m").Value() == 1);
  CHECK(Q("1.5").MilliValue() == 1500);
  CHECK(Q("2Gi").Value() == 2147483648);
  CHECK(Q("500Mi").Value() == 524288000);
  CHECK(Q("1e3").Value() == 1000);
  CHECK(Q("1n").MilliValue() == 1);
  CHECK(Q("-1500m").Value() == -2);
  CHECK(Q("8Ei").Value() == INT64_MAX);
  CHECK(Q("1E").Value() == 1000000000000000000);
  CHECK(Q("100E").Value() == INT64_MAX);  // saturates
}

TEST_CASE("Quantities compare by value and add keeping the format") {
  CHECK(Q("1Gi") == Q("1073741824"));
  CHECK(Q("1Gi").Cmp(Q("1G")) == 1);
  CHECK(Q("100m") < Q("1"));
  CHECK(Q("-1").Sign() == -1);

  Quantity a = Q("1");
  a.Add(Q("500m"));
  CHECK(a.String() == "1500m");

  Quantity b = Q("1Gi");
  b.Add(Q("1Gi"));
  CHECK(b.String() == "2Gi");

  Quantity zero;
  zero.Add(Q("1Gi"));  // a zero takes the other's format
  CHECK(zero.String() == "1Gi");

  Quantity c = Q("1Gi");
  c.Sub(Q("512Mi"));
  CHECK(c.String() == "512Mi");
  CHECK(Q("250m").Neg().String() == "-250m");

  CHECK(Quantity::FromMilli(1500, Quantity::Format::kDecimalSI).String() == "1500m");
  CHECK(Quantity::FromInt(1024LL * 1024 * 1024, Quantity::Format::kBinarySI).String() == "1Gi");
  CHECK(Quantity::FromInt(0, Quantity::Format::kBinarySI).String() == "0");
  CHECK(Quantity::FromInt(5, Quantity::Format::kBinarySI).String() == "5");
}

TEST_CASE("Quantities come from JSON strings and numbers") {
  CHECK(Quantity::FromJson(" 100m ")->String() == "100m");
  CHECK(Quantity::FromJson(2)->String() == "2");
  CHECK(Quantity::FromJson(0.5)->String() == "500m");
  CHECK(Quantity::FromJson(nullptr)->IsZero());
  CHECK_FALSE(Quantity::FromJson(nlohmann::json::array()).ok());
}

TEST_CASE("Malformed quantities give upstream's errors") {
  const std::string format =
      "quantities must match the regular expression "
      "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
  CHECK(ParseError("") == format);
  CHECK(ParseError("abc") == format);
  CHECK(ParseError("1.5.5") == format);
  CHECK(ParseError("1KB") == format);
  CHECK(ParseError("1 ") == format);
  CHECK(ParseError("1e") == "unable to parse quantity's suffix");
  CHECK(ParseError("1mm") == "unable to parse quantity's suffix");
  CHECK(ParseError("5Ki5") == "unable to parse quantity's suffix");
  CHECK(ParseError("1e100") == "quantity is too large");
}
