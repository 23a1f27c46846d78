// The link between the API server and a node agent that serves logs, exec, attach and
// port-forward: the wire protocol both ends speak, and small HTTP head helpers they share.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace orch::link {

// The agent opens every connection (nodes behind NAT work), over TLS with its node client
// certificate (CN system:node:<name>), verifying the server against the cluster CA:
//
//   control link:  GET /v1-orch/connect HTTP/1.1 / Connection: Upgrade / Upgrade: orch-link/1
//                  -> 101, then frames both ways (below) for as long as the agent runs.
//   data stream:   GET /v1-orch/connect?stream=<id> HTTP/1.1 (same upgrade headers)
//                  -> 101, then the server writes one HTTP/1.1 request (kubectl's, re-targeted
//                  to a kubelet-style path below) and the agent answers it on the same
//                  connection: a log stream it serves itself, or the bytes of the runtime's
//                  streaming server (exec/attach/port-forward upgrades), copied both ways.
//
// For each kubectl request the server sends {"type":"open","id":<id>} on the control link and
// waits for the data stream with that id. One TCP connection per stream keeps flow control,
// back-pressure and closing to TCP itself: nothing is multiplexed, so nothing can block a
// neighbour stream.
inline constexpr const char* kConnectPath = "/v1-orch/connect";
inline constexpr const char* kLinkProtocol = "orch-link/1";

// Frames on the control link: a 4-byte big-endian length, then that many bytes of JSON.
// Server -> agent: {"type":"open","id":"<hex>"}, {"type":"ping"}. Agent -> server:
// {"type":"pong"}. Unknown types are ignored (newer peers).
inline constexpr size_t kMaxFrameBytes = 64 * 1024;

inline std::string EncodeFrame(std::string_view payload) {
  std::string out;
  out.reserve(4 + payload.size());
  uint32_t n = static_cast<uint32_t>(payload.size());
  out.push_back(static_cast<char>((n >> 24) & 0xff));
  out.push_back(static_cast<char>((n >> 16) & 0xff));
  out.push_back(static_cast<char>((n >> 8) & 0xff));
  out.push_back(static_cast<char>(n & 0xff));
  out.append(payload);
  return out;
}

// Splits a byte stream into frames. Not thread-safe; one per connection.
class FrameDecoder {
 public:
  // Appends bytes; false once a frame announces more than kMaxFrameBytes (the peer is broken
  // and the link must be closed: memory stays bounded).
  bool Feed(std::string_view bytes) {
    if (broken_) return false;
    buffer_.append(bytes);
    while (true) {
      if (buffer_.size() - offset_ < 4) break;
      const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data() + offset_);
      size_t n = (size_t{p[0]} << 24) | (size_t{p[1]} << 16) | (size_t{p[2]} << 8) | p[3];
      if (n > kMaxFrameBytes) {
        broken_ = true;
        return false;
      }
      if (buffer_.size() - offset_ < 4 + n) break;
      frames_.emplace_back(buffer_, offset_ + 4, n);
      offset_ += 4 + n;
    }
    buffer_.erase(0, offset_);
    offset_ = 0;
    return true;
  }
  // The next complete frame, if any.
  std::optional<std::string> Next() {
    if (next_ == frames_.size()) {
      frames_.clear();
      next_ = 0;
      return std::nullopt;
    }
    return std::move(frames_[next_++]);
  }

 private:
  std::string buffer_;
  size_t offset_ = 0;
  std::vector<std::string> frames_;
  size_t next_ = 0;
  bool broken_ = false;
};

// --- HTTP heads (request or response) as raw text ---

inline constexpr size_t kMaxHeadBytes = 64 * 1024;

// The length of the head (up to and including the blank line) in `data`, or 0 when incomplete.
inline size_t HeadLength(std::string_view data) {
  size_t end = data.find("\r\n\r\n");
  return end == std::string_view::npos ? 0 : end + 4;
}

struct Head {
  std::string first_line;  // "GET /x HTTP/1.1" or "HTTP/1.1 101 Switching Protocols"
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent

  // The first value of `name` (ASCII case-insensitive), or "".
  std::string Get(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (n.size() != name.size()) continue;
      bool same = true;
      for (size_t i = 0; i < n.size() && same; ++i) {
        same = (n[i] | 0x20) == (name[i] | 0x20);
      }
      if (same) return v;
    }
    return "";
  }
  // Removes every header called `name` (case-insensitive).
  void Remove(std::string_view name) {
    std::vector<std::pair<std::string, std::string>> kept;
    for (auto& h : headers) {
      bool same = h.first.size() == name.size();
      for (size_t i = 0; i < name.size() && same; ++i) {
        same = (h.first[i] | 0x20) == (name[i] | 0x20);
      }
      if (!same) kept.push_back(std::move(h));
    }
    headers = std::move(kept);
  }
  // The status code of a response head; 0 when the first line is not one.
  int StatusCode() const {
    if (first_line.rfind("HTTP/", 0) != 0) return 0;
    size_t sp = first_line.find(' ');
    if (sp == std::string::npos || sp + 4 > first_line.size()) return 0;
    int code = 0;
    for (size_t i = sp + 1; i < sp + 4; ++i) {
      if (first_line[i] < '0' || first_line[i] > '9') return 0;
      code = code * 10 + (first_line[i] - '0');
    }
    return code;
  }
  std::string Serialize() const {
    std::string out = first_line + "\r\n";
    for (const auto& [n, v] : headers) out += n + ": " + v + "\r\n";
    out += "\r\n";
    return out;
  }
};

// Parses a complete head (as HeadLength measured it); nullopt when malformed.
inline std::optional<Head> ParseHead(std::string_view text) {
  Head head;
  size_t pos = text.find("\r\n");
  if (pos == std::string_view::npos || pos == 0) return std::nullopt;
  head.first_line = std::string(text.substr(0, pos));
  pos += 2;
  while (pos < text.size()) {
    size_t end = text.find("\r\n", pos);
    if (end == std::string_view::npos) return std::nullopt;
    if (end == pos) break;  // the blank line
    std::string_view line = text.substr(pos, end - pos);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    head.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
    pos = end + 2;
  }
  return head;
}

// A response head for an answer that ends the connection: anything but a protocol switch
// must say "Connection: close", or a client that keeps connections alive (kubectl) would send
// its next request on a connection that is about to close and fail with EOF.
inline std::string CloseDelimited(Head head) {
  if (head.StatusCode() == 101) return head.Serialize();
  head.Remove("Connection");
  head.Remove("Keep-Alive");
  head.headers.emplace_back("Connection", "close");
  return head.Serialize();
}

}  // namespace orch::link
