// Parsing of the node link's stream requests (stream_request.h).
#include "stream_request.h"

namespace orch::agent {

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
  if (q != std::string::npos) r.query = UrlQuery::Parse(std::string_view(target).substr(q + 1));
  std::string_view path = std::string_view(target).substr(0, q);
  std::vector<std::string> parts;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    size_t slash = path.find('/');
    parts.push_back(PercentDecode(path.substr(0, slash), false));
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
