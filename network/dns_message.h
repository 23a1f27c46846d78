// The DNS wire format (RFC 1035, SRV from RFC 2782, EDNS0 from RFC 6891) as far as cluster DNS
// needs it: parsing queries, building answers, and reading forwarded answers for the cache.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace orch::dns {

inline constexpr uint16_t kTypeA = 1;
inline constexpr uint16_t kTypeNs = 2;
inline constexpr uint16_t kTypeCname = 5;
inline constexpr uint16_t kTypeSoa = 6;
inline constexpr uint16_t kTypePtr = 12;
inline constexpr uint16_t kTypeTxt = 16;
inline constexpr uint16_t kTypeAaaa = 28;
inline constexpr uint16_t kTypeSrv = 33;
inline constexpr uint16_t kTypeOpt = 41;
inline constexpr uint16_t kTypeAny = 255;
inline constexpr uint16_t kClassIn = 1;

inline constexpr uint8_t kNoError = 0;
inline constexpr uint8_t kFormErr = 1;
inline constexpr uint8_t kServFail = 2;
inline constexpr uint8_t kNxDomain = 3;
inline constexpr uint8_t kNotImp = 4;
inline constexpr uint8_t kRefused = 5;

// One question of a standard query.
struct Query {
  uint16_t id = 0;
  bool recursion_desired = false;
  std::string name;  // lowercase, without the final dot; "" is the root
  uint16_t type = 0;
  uint16_t klass = 0;
  // The largest UDP answer the client takes: 512, or its EDNS0 buffer size (at most 4096).
  size_t udp_size = 512;
};

// A standard query with one question. nullopt for anything else (a response, another opcode,
// no or several questions, a malformed message); FormErrFor() answers those.
std::optional<Query> ParseQuery(std::span<const uint8_t> message);

// The answer to a message ParseQuery refused: FORMERR (NOTIMP for other opcodes) echoing its id;
// empty when the message is too short to have an id or is itself a response (never answer
// those: it could loop).
std::vector<uint8_t> FormErrFor(std::span<const uint8_t> message);

struct Record {
  std::string name;  // owner, without the final dot
  uint16_t type = 0;
  uint32_t ttl = 0;
  std::vector<uint8_t> rdata;
};

std::vector<uint8_t> ARdata(uint32_t address);            // host byte order
std::vector<uint8_t> NameRdata(const std::string& name);  // CNAME, PTR
std::vector<uint8_t> SrvRdata(uint16_t priority, uint16_t weight, uint16_t port,
                              const std::string& target);
std::vector<uint8_t> SoaRdata(const std::string& mname, const std::string& rname, uint32_t serial,
                              uint32_t minimum);

struct Answer {
  uint8_t rcode = kNoError;
  bool authoritative = true;
  std::vector<Record> answers;
  std::vector<Record> authority;
  std::vector<Record> additional;
};

// The response to `query`. Records that do not fit in `max_size` bytes are left out and the TC
// bit is set (additional records are dropped first, without TC).
std::vector<uint8_t> BuildResponse(const Query& query, const Answer& answer, size_t max_size);

// What the cache needs of a forwarded response.
struct ResponseInfo {
  uint16_t id = 0;
  uint8_t rcode = 0;
  bool truncated = false;
  // The smallest TTL of the answer records, or for a negative answer the SOA's (min of its TTL
  // and MINIMUM field); nullopt when there is neither.
  std::optional<uint32_t> ttl;
};
std::optional<ResponseInfo> InspectResponse(std::span<const uint8_t> message);

// Overwrites a message's id (the first two bytes).
void SetId(std::vector<uint8_t>& message, uint16_t id);

// "1.2.3.4" -> host-order address; nullopt otherwise.
std::optional<uint32_t> ParseIPv4(const std::string& text);
std::string FormatIPv4(uint32_t address);

}  // namespace orch::dns
