// Header helpers of http.h.
#include "http.h"

#include <algorithm>
#include <cctype>

namespace orch::api {
namespace {
std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}
}  // namespace

void Headers::Add(std::string name, std::string value) {
  values_.emplace_back(Lower(name), std::move(value));
}

std::string Headers::Get(std::string_view name) const {
  std::string key = Lower(name);
  for (const auto& [n, v] : values_) {
    if (n == key) return v;
  }
  return "";
}

}  // namespace orch::api
