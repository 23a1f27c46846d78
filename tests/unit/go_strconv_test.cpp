// Go's strconv as Kubernetes uses it: Quote (escapes, UTF-8 kept, stray bytes as \x) and
// ParseInt (sign, digits, int64 range).
#include "orch/go_strconv.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

TEST_CASE("GoQuote quotes like strconv.Quote") {
  using orch::GoQuote;
  CHECK(GoQuote("") == "\"\"");
  CHECK(GoQuote("plain-name") == "\"plain-name\"");
  CHECK(GoQuote("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(GoQuote("\n\t\r\a\b\f\v") == "\"\\n\\t\\r\\a\\b\\f\\v\"");
  CHECK(GoQuote(std::string("\x01\x1f\x7f", 3)) == "\"\\x01\\x1f\\x7f\"");
  CHECK(GoQuote(std::string("\0", 1)) == "\"\\x00\"");
  CHECK(GoQuote("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") ==
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");  // well-formed UTF-8 as is
  CHECK(GoQuote("a\xff") == "\"a\\xff\"");                 // not UTF-8
  CHECK(GoQuote("\xc3") == "\"\\xc3\"");                   // truncated sequence
  CHECK(GoQuote("\xe2\x28\xa1") == "\"\\xe2(\\xa1\"");     // bad continuation byte
}

TEST_CASE("GoParseInt parses like strconv.ParseInt(s, 10, 64)") {
  using orch::GoParseInt;
  CHECK(GoParseInt("0") == 0);
  CHECK(GoParseInt("42") == 42);
  CHECK(GoParseInt("+7") == 7);
  CHECK(GoParseInt("-12") == -12);
  CHECK(GoParseInt("007") == 7);
  CHECK(GoParseInt("9223372036854775807") == INT64_MAX);
  CHECK(GoParseInt("-9223372036854775808") == INT64_MIN);
  for (const char* bad :
       {"", "+", "-", " 1", "1 ", "1.5", "0x10", "1e3", "--1", "9223372036854775808",
        "-9223372036854775809", "18446744073709551620", "99999999999999999999"}) {
    INFO(bad);
    CHECK_FALSE(GoParseInt(bad).has_value());
  }
}
