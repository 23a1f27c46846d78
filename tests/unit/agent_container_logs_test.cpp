// Container logs as kubectl shows them: the CRI log line format, the pods/log options, the
// formatter (timestamps, partial lines, limitBytes, since) and the tail offset; and the
// node link requests the agent parses.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "container_logs.h"
#include "stream_request.h"

using namespace orch::agent;
using orch::UrlQuery;

TEST_CASE("CRI log lines parse into time, stream, tag and text") {
  auto line = ParseCriLogLine("2024-05-01T10:00:00.5Z stdout F hello world");
  REQUIRE(line);
  CHECK(line->time_nanos == 1714557600'500000000);
  CHECK(line->stream == "stdout");
  CHECK_FALSE(line->partial);
  CHECK(line->content == "hello world");

  auto partial = ParseCriLogLine("2024-05-01T10:00:00Z stderr P part");
  REQUIRE(partial);
  CHECK(partial->partial);
  CHECK(partial->stream == "stderr");

  auto empty = ParseCriLogLine("2024-05-01T10:00:00Z stdout F");
  REQUIRE(empty);
  CHECK(empty->content.empty());

  auto tagged = ParseCriLogLine("2024-05-01T10:00:00Z stdout F:x  two spaces");
  REQUIRE(tagged);
  CHECK(tagged->content == " two spaces");

  CHECK_FALSE(ParseCriLogLine("not a log line"));
  CHECK_FALSE(ParseCriLogLine("2024-05-01T10:00:00Z stdin F x"));
  CHECK_FALSE(ParseCriLogLine("2024-05-01T10:00:00Z stdout X x"));
}

TEST_CASE("log options follow upstream's names and limits") {
  int64_t now = 1'000'000'000'000'000'000;
  auto o = ParseLogOptions(
      UrlQuery::Parse("follow=true&timestamps=1&tailLines=3&limitBytes=10&sinceSeconds=5"), now);
  REQUIRE(o.ok());
  CHECK(o->follow);
  CHECK(o->timestamps);
  CHECK(*o->tail_lines == 3);
  CHECK(*o->limit_bytes == 10);
  CHECK(*o->since_nanos == now - 5'000'000'000);
  auto since = ParseLogOptions(UrlQuery::Parse("sinceTime=2024-05-01T10%3A00%3A00Z"), now);
  REQUIRE(since.ok());
  CHECK(*since->since_nanos == 1714557600'000000000);
  CHECK_FALSE(ParseLogOptions(UrlQuery::Parse("tailLines=-1"), now).ok());
  CHECK_FALSE(ParseLogOptions(UrlQuery::Parse("limitBytes=0"), now).ok());
  CHECK_FALSE(ParseLogOptions(UrlQuery::Parse("sinceSeconds=x"), now).ok());
  auto none = ParseLogOptions(UrlQuery::Parse(""), now);
  REQUIRE(none.ok());
  CHECK_FALSE(none->follow);
  CHECK_FALSE(none->tail_lines);
}

TEST_CASE("the formatter joins partial lines and prefixes whole lines with fixed timestamps") {
  LogOptions options;
  options.timestamps = true;
  LogFormatter f(options);
  std::string out;
  CHECK(f.Add("2024-05-01T10:00:00.1Z stdout P ab", out));
  CHECK(f.Add("2024-05-01T10:00:00.2Z stdout F cd", out));
  CHECK(f.Add("garbage", out));
  CHECK(f.Add("2024-05-01T10:00:01Z stderr F ef", out));
  CHECK(out ==
        "2024-05-01T10:00:00.100000000Z abcd\n"
        "2024-05-01T10:00:01.000000000Z ef\n");
  CHECK(FormatLogTime(1714557600'000000007) == "2024-05-01T10:00:00.000000007Z");
}

TEST_CASE("the formatter stops at limitBytes and skips lines before since") {
  LogOptions options;
  options.limit_bytes = 5;
  options.since_nanos = 1714557601'000000000;
  LogFormatter f(options);
  std::string out;
  CHECK(f.Add("2024-05-01T10:00:00Z stdout F old", out));
  CHECK(out.empty());
  CHECK(f.Add("2024-05-01T10:00:01Z stdout F abc", out));
  CHECK_FALSE(f.Add("2024-05-01T10:00:02Z stdout F defgh", out));
  CHECK(out == "abc\nd");
  CHECK(f.done());
  CHECK_FALSE(f.Add("2024-05-01T10:00:03Z stdout F more", out));
  CHECK(out == "abc\nd");
}

TEST_CASE("the tail offset finds where the last N lines start") {
  char path[] = "/tmp/orch-tail-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "line " + std::to_string(i) + "\n";
  REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  auto size = static_cast<int64_t>(text.size());
  auto at = [&](int64_t n) {
    auto r = TailOffset(fd, size, n);
    REQUIRE(r.ok());
    return text.substr(static_cast<size_t>(*r));
  };
  CHECK(at(0).empty());
  CHECK(at(1) == "line 19999\n");
  CHECK(at(2) == "line 19998\nline 19999\n");
  CHECK(at(15000).rfind("line 5000\n", 0) == 0);  // across read blocks
  CHECK(at(20000) == text);
  CHECK(at(50000) == text);
  close(fd);
  unlink(path);
}

TEST_CASE("stream requests name the kind, pod, uid and container; queries decode") {
  auto r = ParseStreamRequest(
      "POST /exec/default/web/u-1/main?command=sh&command=-c&command=echo%20hi+there&stdin=true "
      "HTTP/1.1\r\nHost: n\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
      "X-Stream-Protocol-Version: v3.channel.k8s.io\r\n\r\n");
  REQUIRE(r);
  CHECK(r->kind == "exec");
  CHECK(r->method == "POST");
  CHECK(r->ns == "default");
  CHECK(r->pod == "web");
  CHECK(r->uid == "u-1");
  CHECK(r->container == "main");
  CHECK(r->query.GetAll("command") == std::vector<std::string>{"sh", "-c", "echo hi there"});
  CHECK(r->query.IsTrue("stdin"));
  CHECK_FALSE(r->query.IsTrue("tty"));
  CHECK(r->head.Get("upgrade") == "SPDY/3.1");
  CHECK(r->head.headers.size() == 4);

  auto pf = ParseStreamRequest("POST /portForward/ns/p/u HTTP/1.1\r\n\r\n");
  REQUIRE(pf);
  CHECK(pf->kind == "portForward");
  CHECK(pf->container.empty());

  CHECK_FALSE(ParseStreamRequest("GET /exec/ns/p HTTP/1.1\r\n\r\n"));
  CHECK_FALSE(ParseStreamRequest("GET /other/a/b/c/d HTTP/1.1\r\n\r\n"));
  CHECK_FALSE(ParseStreamRequest("garbage"));
}
