// Query strings and percent-decoding of request targets, as the API server reads kubectl's
// requests and the agent reads the ones the server relays to it.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace orch {

// Percent-decoding of one path or query component ('+' is a space only in queries).
std::string PercentDecode(std::string_view in, bool plus_is_space);

// Query parameters, decoded. A name may repeat (e.g. `command` of exec).
class UrlQuery {
 public:
  UrlQuery() = default;
  // Parses "a=1&b=x%20y&a=2".
  static UrlQuery Parse(std::string_view raw);

  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  // The first value of `name`, or `fallback`.
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  std::vector<std::string> GetAll(const std::string& name) const;
  void Set(const std::string& name, std::string value);
  // Go's strconv.ParseBool truths, as upstream reads boolean parameters.
  bool IsTrue(const std::string& name) const;

 private:
  std::multimap<std::string, std::string> values_;
};

}  // namespace orch
