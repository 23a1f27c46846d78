// Parsing of the node link's stream requests (stream_request.h).
#include "stream_request.h"

namespace orch::agent {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Decode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && in[i] == '+' ? ' ' : in[i]);
  }
  return out;
}

}  // namespace

QueryParams QueryParams::Parse(std::string_view raw) {
  QueryParams q;
  while (!raw.empty()) {
    size_t amp = raw.find('&');
    std::string_view pair = raw.substr(0, amp);
    raw = amp == std::string_view::npos ? std::string_view() : raw.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string name = Decode(pair.substr(0, eq), true);
    std::string value = eq == std::string_view::npos ? "" : Decode(pair.substr(eq + 1), true);
    q.values_.emplace(std::move(name), std::move(value));
  }
  return q;
}

std::string QueryParams::Get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

std::vector<std::string> QueryParams::GetAll(const std::string& name) const {
  std::vector<std::string> out;
  auto [begin, end] = values_.equal_range(name);
  for (auto it = begin; it != end; ++it) out.push_back(it->second);
  return out;
}

bool QueryParams::IsTrue(const std::string& name) const {
  std::string v = Get(name);
  return v == "1" || v == "t" || v == "T" || v == "true" || v == "True" || v == "TRUE";
}

std::optional<StreamRequest> ParseStreamRequest(std::string_view head_text) {
  auto head = link::ParseHead(head_text);
  if (!head) return std::nullopt;
  StreamRequest r;
  const std::string& line = head->first_line;
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string::npos) return std::nullopt;
  r.method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  size_t q = target.find('?');
  if (q != std::string::npos) r.query = QueryParams::Parse(std::string_view(target).substr(q + 1));
  std::string_view path = std::string_view(target).substr(0, q);
  std::vector<std::string> parts;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    size_t slash = path.find('/');
    parts.push_back(Decode(path.substr(0, slash), false));
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash);
  }
  if (parts.empty()) return std::nullopt;
  r.kind = parts[0];
  if (r.kind == "portForward") {
    if (parts.size() != 4) return std::nullopt;
  } else if (r.kind == "containerLogs" || r.kind == "exec" || r.kind == "attach") {
    if (parts.size() != 5) return std::nullopt;
    r.container = parts[4];
  } else {
    return std::nullopt;
  }
  r.ns = parts[1];
  r.pod = parts[2];
  r.uid = parts[3];
  r.head = std::move(*head);
  return r;
}

}  // namespace orch::agent
