// The pieces of Go's strconv that Kubernetes' wording and grammar rest on, so every module quotes
// values in errors and parses integers exactly as upstream does (clients and tests compare these).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace orch {

// strconv.Quote: `"a\"b"` for a"b. Quotes, backslashes and ASCII control characters are escaped
// (\n, \t, ..., else \xNN), bytes that are not well-formed UTF-8 become \xNN, and well-formed
// UTF-8 is kept as is. Thread-safe (a pure function).
std::string GoQuote(std::string_view s);

// strconv.ParseInt(s, 10, 64): an optional sign then decimal digits, nothing else; nullopt when
// malformed or out of int64's range. Thread-safe (a pure function).
std::optional<int64_t> GoParseInt(std::string_view s);

}  // namespace orch
