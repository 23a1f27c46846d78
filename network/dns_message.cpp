// The DNS wire format (dns_message.h): a bounds-checked reader for names with compression
// pointers, and a writer that points owner names equal to the question back at it.
#include "dns_message.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace orch::dns {
namespace {

constexpr size_t kHeaderSize = 12;
constexpr uint16_t kFlagQr = 0x8000;
constexpr uint16_t kFlagAa = 0x0400;
constexpr uint16_t kFlagTc = 0x0200;
constexpr uint16_t kFlagRd = 0x0100;
constexpr uint16_t kFlagRa = 0x0080;
constexpr size_t kMaxUdpSize = 4096;

uint16_t Get16(std::span<const uint8_t> m, size_t at) {
  return static_cast<uint16_t>((m[at] << 8) | m[at + 1]);
}
uint32_t Get32(std::span<const uint8_t> m, size_t at) {
  return (uint32_t{m[at]} << 24) | (uint32_t{m[at + 1]} << 16) | (uint32_t{m[at + 2]} << 8) |
         m[at + 3];
}
void Put16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}
void Put32(std::vector<uint8_t>& out, uint32_t v) {
  Put16(out, static_cast<uint16_t>(v >> 16));
  Put16(out, static_cast<uint16_t>(v));
}

// Reads the name at `at`; `end` becomes the offset after it (after the first pointer, if any).
// Pointers must point backwards, which also bounds the loop.
bool ReadName(std::span<const uint8_t> m, size_t at, std::string* name, size_t* end) {
  std::string out;
  size_t pos = at;
  bool jumped = false;
  size_t limit = at;  // a pointer must go below every earlier position
  for (;;) {
    if (pos >= m.size()) return false;
    uint8_t len = m[pos];
    if ((len & 0xC0) == 0xC0) {
      if (pos + 1 >= m.size()) return false;
      size_t target = static_cast<size_t>(((len & 0x3F) << 8) | m[pos + 1]);
      if (!jumped) *end = pos + 2;
      jumped = true;
      if (target >= limit) return false;
      limit = target;
      pos = target;
      continue;
    }
    if ((len & 0xC0) != 0) return false;
    if (len == 0) {
      if (!jumped) *end = pos + 1;
      break;
    }
    if (pos + 1 + len > m.size()) return false;
    if (!out.empty()) out.push_back('.');
    for (size_t i = 0; i < len; ++i) {
      out.push_back(static_cast<char>(std::tolower(m[pos + 1 + i])));
    }
    if (out.size() > 255) return false;
    pos += 1 + len;
  }
  if (name) *name = std::move(out);
  return true;
}

void PutName(std::vector<uint8_t>& out, const std::string& name) {
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    size_t len = std::min<size_t>(dot - start, 63);
    out.push_back(static_cast<uint8_t>(len));
    out.insert(out.end(), name.begin() + static_cast<std::ptrdiff_t>(start),
               name.begin() + static_cast<std::ptrdiff_t>(start + len));
    start = dot + 1;
  }
  out.push_back(0);
}

// Skips one resource record; false when it does not fit.
bool SkipRecord(std::span<const uint8_t> m, size_t* pos, uint16_t* type, uint32_t* ttl,
                size_t* rdata_at, uint16_t* klass = nullptr) {
  size_t end = 0;
  if (!ReadName(m, *pos, nullptr, &end)) return false;
  if (end + 10 > m.size()) return false;
  *type = Get16(m, end);
  if (klass) *klass = Get16(m, end + 2);
  *ttl = Get32(m, end + 4);
  uint16_t rdlength = Get16(m, end + 8);
  *rdata_at = end + 10;
  if (*rdata_at + rdlength > m.size()) return false;
  *pos = *rdata_at + rdlength;
  return true;
}

}  // namespace

std::optional<Query> ParseQuery(std::span<const uint8_t> m) {
  if (m.size() < kHeaderSize) return std::nullopt;
  uint16_t flags = Get16(m, 2);
  if ((flags & kFlagQr) || ((flags >> 11) & 0xF) != 0) return std::nullopt;
  if (Get16(m, 4) != 1 || Get16(m, 6) != 0 || Get16(m, 8) != 0) return std::nullopt;
  Query q;
  q.id = Get16(m, 0);
  q.recursion_desired = (flags & kFlagRd) != 0;
  size_t end = 0;
  if (!ReadName(m, kHeaderSize, &q.name, &end) || end + 4 > m.size()) return std::nullopt;
  q.type = Get16(m, end);
  q.klass = Get16(m, end + 2);
  // EDNS0: an OPT record among the additional ones carries the client's UDP buffer size.
  size_t pos = end + 4;
  for (uint16_t i = 0, n = Get16(m, 10); i < n; ++i) {
    uint16_t type = 0, klass = 0;
    uint32_t ttl = 0;
    size_t rdata = 0;
    if (!SkipRecord(m, &pos, &type, &ttl, &rdata, &klass)) return std::nullopt;
    if (type == kTypeOpt) q.udp_size = std::clamp<size_t>(klass, 512, kMaxUdpSize);
  }
  return q;
}

std::vector<uint8_t> FormErrFor(std::span<const uint8_t> m) {
  if (m.size() < kHeaderSize || (Get16(m, 2) & kFlagQr)) return {};
  uint16_t opcode = (Get16(m, 2) >> 11) & 0xF;
  std::vector<uint8_t> out(kHeaderSize, 0);
  out[0] = m[0];
  out[1] = m[1];
  uint16_t flags = static_cast<uint16_t>(kFlagQr | (Get16(m, 2) & (0x7800 | kFlagRd)) | kFlagRa |
                                         (opcode != 0 ? kNotImp : kFormErr));
  out[2] = static_cast<uint8_t>(flags >> 8);
  out[3] = static_cast<uint8_t>(flags);
  return out;
}

std::vector<uint8_t> ARdata(uint32_t address) {
  std::vector<uint8_t> out;
  Put32(out, address);
  return out;
}

std::vector<uint8_t> NameRdata(const std::string& name) {
  std::vector<uint8_t> out;
  PutName(out, name);
  return out;
}

std::vector<uint8_t> SrvRdata(uint16_t priority, uint16_t weight, uint16_t port,
                              const std::string& target) {
  std::vector<uint8_t> out;
  Put16(out, priority);
  Put16(out, weight);
  Put16(out, port);
  PutName(out, target);
  return out;
}

std::vector<uint8_t> SoaRdata(const std::string& mname, const std::string& rname, uint32_t serial,
                              uint32_t minimum) {
  std::vector<uint8_t> out;
  PutName(out, mname);
  PutName(out, rname);
  Put32(out, serial);
  Put32(out, 7200);   // refresh
  Put32(out, 1800);   // retry
  Put32(out, 86400);  // expire
  Put32(out, minimum);
  return out;
}

std::vector<uint8_t> BuildResponse(const Query& query, const Answer& answer, size_t max_size) {
  std::vector<uint8_t> out;
  out.reserve(512);
  Put16(out, query.id);
  Put16(out, 0);  // flags, below
  Put16(out, 1);
  Put16(out, 0);
  Put16(out, 0);
  Put16(out, 0);
  PutName(out, query.name);
  Put16(out, query.type);
  Put16(out, query.klass);
  bool truncated = false;
  uint16_t counts[3] = {0, 0, 0};
  const std::vector<Record>* sections[3] = {&answer.answers, &answer.authority, &answer.additional};
  for (int s = 0; s < 3 && !truncated; ++s) {
    for (const Record& r : *sections[s]) {
      size_t mark = out.size();
      if (r.name == query.name) {
        Put16(out, 0xC000 | kHeaderSize);  // the question's name
      } else {
        PutName(out, r.name);
      }
      Put16(out, r.type);
      Put16(out, kClassIn);
      Put32(out, r.ttl);
      Put16(out, static_cast<uint16_t>(r.rdata.size()));
      out.insert(out.end(), r.rdata.begin(), r.rdata.end());
      if (out.size() > max_size) {
        out.resize(mark);
        // Missing additional records are no loss; missing answers or authority are.
        truncated = s < 2;
        s = 3;
        break;
      }
      ++counts[s];
    }
  }
  uint16_t flags = static_cast<uint16_t>(kFlagQr | (query.recursion_desired ? kFlagRd : 0) |
                                         kFlagRa | (answer.authoritative ? kFlagAa : 0) |
                                         (truncated ? kFlagTc : 0) | (answer.rcode & 0xF));
  out[2] = static_cast<uint8_t>(flags >> 8);
  out[3] = static_cast<uint8_t>(flags);
  for (int s = 0; s < 3; ++s) {
    out[6 + 2 * s] = static_cast<uint8_t>(counts[s] >> 8);
    out[7 + 2 * s] = static_cast<uint8_t>(counts[s]);
  }
  return out;
}

std::optional<ResponseInfo> InspectResponse(std::span<const uint8_t> m) {
  if (m.size() < kHeaderSize) return std::nullopt;
  uint16_t flags = Get16(m, 2);
  if (!(flags & kFlagQr)) return std::nullopt;
  ResponseInfo info;
  info.id = Get16(m, 0);
  info.rcode = flags & 0xF;
  info.truncated = (flags & kFlagTc) != 0;
  size_t pos = kHeaderSize;
  for (uint16_t i = 0, n = Get16(m, 4); i < n; ++i) {
    size_t end = 0;
    if (!ReadName(m, pos, nullptr, &end) || end + 4 > m.size()) return std::nullopt;
    pos = end + 4;
  }
  uint16_t answers = Get16(m, 6);
  uint16_t authority = Get16(m, 8);
  std::optional<uint32_t> answer_ttl, soa_ttl;
  for (uint32_t i = 0; i < uint32_t{answers} + authority; ++i) {
    uint16_t type = 0;
    uint32_t ttl = 0;
    size_t rdata = 0;
    if (!SkipRecord(m, &pos, &type, &ttl, &rdata)) return std::nullopt;
    if (i < answers) {
      answer_ttl = std::min(answer_ttl.value_or(ttl), ttl);
    } else if (type == kTypeSoa) {
      // MINIMUM is the last field, after two names and four other numbers.
      size_t after = 0;
      if (ReadName(m, rdata, nullptr, &after) && ReadName(m, after, nullptr, &after) &&
          after + 20 <= m.size()) {
        soa_ttl = std::min(ttl, Get32(m, after + 16));
      }
    }
  }
  info.ttl = answers > 0 ? answer_ttl : soa_ttl;
  return info;
}

void SetId(std::vector<uint8_t>& message, uint16_t id) {
  if (message.size() < 2) return;
  message[0] = static_cast<uint8_t>(id >> 8);
  message[1] = static_cast<uint8_t>(id);
}

std::optional<uint32_t> ParseIPv4(const std::string& text) {
  in_addr addr{};
  if (::inet_pton(AF_INET, text.c_str(), &addr) != 1) return std::nullopt;
  return ntohl(addr.s_addr);
}

std::string FormatIPv4(uint32_t address) {
  return std::to_string(address >> 24) + "." + std::to_string((address >> 16) & 0xFF) + "." +
         std::to_string((address >> 8) & 0xFF) + "." + std::to_string(address & 0xFF);
}

}  // namespace orch::dns
