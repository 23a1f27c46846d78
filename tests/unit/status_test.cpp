// Status and Result: values, errors, formatting.
#include "orch/status.h"

#include <catch2/catch.hpp>
#include <memory>

TEST_CASE("Result holds a value or an error") {
  orch::Result<int> ok = 42;
  REQUIRE(ok.ok());
  REQUIRE(*ok == 42);
  REQUIRE(ok.status().ok());

  orch::Result<int> err = orch::NotFound("key /a");
  REQUIRE_FALSE(err.ok());
  REQUIRE(err.status().code() == orch::StatusCode::kNotFound);
  REQUIRE(err.status().ToString() == "NotFound: key /a");
}

TEST_CASE("Result moves non-copyable values out") {
  orch::Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  std::unique_ptr<int> p = std::move(r).value();
  REQUIRE(*p == 7);
}
