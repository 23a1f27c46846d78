// The node link: control frames, HTTP head helpers, the server's registry of links and pending
// streams (with fake connections), the byte splice, and the request head sent to agents.
#include <catch2/catch.hpp>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>

#include "node_links.h"
#include "orch/node_link.h"
#include "pod_streams.h"

using namespace orch;
using namespace orch::api;

namespace {

// A connection whose I/O completes only when the test says so (as the real one completes on
// its own thread, never inside the call).
class FakeConnection : public RawConnection {
 public:
  void ReadSome(char* buffer, size_t size, std::function<void(bool, size_t)> done) override {
    std::lock_guard lock(mu_);
    read_ = {buffer, size, std::move(done)};
  }
  void Write(std::string_view data, std::function<void(bool)> done) override {
    std::lock_guard lock(mu_);
    written += std::string(data);
    writes_.push_back(std::move(done));
  }
  void Close() override {
    std::lock_guard lock(mu_);
    closed = true;
  }
  // Completes pending writes; true if there were any.
  bool FlushWrites() {
    std::deque<std::function<void(bool)>> writes;
    {
      std::lock_guard lock(mu_);
      writes.swap(writes_);
    }
    for (auto& w : writes) w(!closed);
    return !writes.empty();
  }
  // Delivers `data` (or the end of the stream when empty) to the pending read.
  bool Deliver(const std::string& data) {
    PendingRead r;
    {
      std::lock_guard lock(mu_);
      if (!read_.done) return false;
      r = std::move(read_);
      read_ = {};
    }
    if (data.empty()) {
      r.done(false, 0);
      return true;
    }
    size_t n = std::min(data.size(), r.size);
    std::copy(data.data(), data.data() + n, r.buffer);
    r.done(true, n);
    return true;
  }
  std::string written;
  bool closed = false;

 private:
  struct PendingRead {
    char* buffer = nullptr;
    size_t size = 0;
    std::function<void(bool, size_t)> done;
  };
  std::mutex mu_;
  PendingRead read_;
  std::deque<std::function<void(bool)>> writes_;
};

class FakeWriter : public ResponseWriter {
 public:
  explicit FakeWriter(std::shared_ptr<FakeConnection> conn) : conn_(std::move(conn)) {}
  void Send(Response response) override { sent = response; }
  void StartStream(int, std::string, std::vector<std::pair<std::string, std::string>>) override {}
  bool Write(std::string) override { return false; }
  void End() override {}
  void OnClose(std::function<void()>) override {}
  std::shared_ptr<RawConnection> TakeConnection() override {
    taken = true;
    return conn_;
  }
  std::optional<Response> sent;
  bool taken = false;

 private:
  std::shared_ptr<FakeConnection> conn_;
};

Request ConnectRequest(const std::string& cn, const std::string& stream = "") {
  Request r;
  r.method = "GET";
  r.path = link::kConnectPath;
  r.target = r.path + (stream.empty() ? "" : "?stream=" + stream);
  if (!stream.empty()) r.query = Query::Parse("stream=" + stream);
  r.headers.Add("upgrade", link::kLinkProtocol);
  r.headers.Add("connection", "Upgrade");
  if (!cn.empty()) r.peer = PeerCertificate{cn, {"system:nodes"}};
  return r;
}

}  // namespace

TEST_CASE("frames survive any split and oversized frames break the decoder") {
  std::string stream = link::EncodeFrame("one") + link::EncodeFrame("") + link::EncodeFrame("three");
  link::FrameDecoder decoder;
  std::vector<std::string> got;
  for (char c : stream) {
    REQUIRE(decoder.Feed(std::string_view(&c, 1)));
    while (auto f = decoder.Next()) got.push_back(*f);
  }
  CHECK(got == std::vector<std::string>{"one", "", "three"});

  link::FrameDecoder bad;
  std::string huge = link::EncodeFrame(std::string(link::kMaxFrameBytes + 1, 'x'));
  CHECK_FALSE(bad.Feed(huge.substr(0, 4)));
  CHECK_FALSE(bad.Feed("more"));
}

TEST_CASE("response heads other than 101 are made close-delimited") {
  std::string text = "HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\nconnection: keep-alive\r\n\r\nabc";
  size_t n = link::HeadLength(text);
  REQUIRE(n == text.size() - 3);
  auto head = link::ParseHead(text.substr(0, n));
  REQUIRE(head);
  CHECK(head->StatusCode() == 400);
  CHECK(head->Get("content-length") == "3");
  CHECK(link::CloseDelimited(*head) ==
        "HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\nConnection: close\r\n\r\n");
  auto upgrade = link::ParseHead("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n");
  REQUIRE(upgrade);
  CHECK(link::CloseDelimited(*upgrade) == upgrade->Serialize());
  CHECK(link::HeadLength("HTTP/1.1 200 OK\r\n") == 0);
  CHECK_FALSE(link::ParseHead("HTTP/1.1 200 OK\r\nno colon\r\n\r\n"));
}

TEST_CASE("a node without a link gets Unavailable at once") {
  auto links = NodeLinks::Create();
  std::optional<Status> got;
  links->OpenStream("n1", [&](Result<std::shared_ptr<RawConnection>> r) { got = r.status(); });
  REQUIRE(got);
  CHECK(got->code() == StatusCode::kUnavailable);
  CHECK(got->message().find("node \"n1\" is not connected") != std::string::npos);
  links->Stop();
}

TEST_CASE("the link is for node certificates only") {
  auto links = NodeLinks::Create();
  auto conn = std::make_shared<FakeConnection>();
  auto writer = std::make_shared<FakeWriter>(conn);
  links->ServeConnect(ConnectRequest(""), writer);
  REQUIRE(writer->sent);
  CHECK(writer->sent->status == 403);
  auto admin = std::make_shared<FakeWriter>(conn);
  links->ServeConnect(ConnectRequest("admin"), admin);
  REQUIRE(admin->sent);
  CHECK(admin->sent->status == 403);
  CHECK_FALSE(admin->taken);
  links->Stop();
}

TEST_CASE("a linked node is asked for a stream and its answer reaches the caller") {
  auto links = NodeLinks::Create();
  auto control = std::make_shared<FakeConnection>();
  links->ServeConnect(ConnectRequest("system:node:n1"), std::make_shared<FakeWriter>(control));
  CHECK(control->written.find("HTTP/1.1 101 ") == 0);
  REQUIRE(control->FlushWrites());  // the 101 is written: the link registers
  CHECK(links->Connected("n1"));
  CHECK_FALSE(links->Connected("n2"));

  std::shared_ptr<RawConnection> stream;
  links->OpenStream("n1", [&](Result<std::shared_ptr<RawConnection>> r) {
    REQUIRE(r.ok());
    stream = *r;
  });
  control->FlushWrites();
  // The open frame follows the 101 head on the control link.
  std::string frames = control->written.substr(control->written.find("\r\n\r\n") + 4);
  link::FrameDecoder decoder;
  REQUIRE(decoder.Feed(frames));
  auto frame = decoder.Next();
  REQUIRE(frame);
  auto message = nlohmann::json::parse(*frame);
  CHECK(message["type"] == "open");
  std::string id = message["id"];

  // Another node cannot take the stream; the right one can, once.
  auto other = std::make_shared<FakeWriter>(std::make_shared<FakeConnection>());
  links->ServeConnect(ConnectRequest("system:node:n2", id), other);
  REQUIRE(other->sent);
  CHECK(other->sent->status == 404);

  auto data = std::make_shared<FakeConnection>();
  links->ServeConnect(ConnectRequest("system:node:n1", id), std::make_shared<FakeWriter>(data));
  CHECK(data->written.find("HTTP/1.1 101 ") == 0);
  CHECK_FALSE(stream);
  data->FlushWrites();
  CHECK(stream == data);

  auto again = std::make_shared<FakeWriter>(std::make_shared<FakeConnection>());
  links->ServeConnect(ConnectRequest("system:node:n1", id), again);
  REQUIRE(again->sent);
  CHECK(again->sent->status == 404);

  // The control link ends: the node is no longer connected.
  control->Deliver("");
  CHECK_FALSE(links->Connected("n1"));
  links->Stop();
}

TEST_CASE("a reconnecting agent replaces its previous link") {
  auto links = NodeLinks::Create();
  auto first = std::make_shared<FakeConnection>();
  links->ServeConnect(ConnectRequest("system:node:n1"), std::make_shared<FakeWriter>(first));
  first->FlushWrites();
  auto second = std::make_shared<FakeConnection>();
  links->ServeConnect(ConnectRequest("system:node:n1"), std::make_shared<FakeWriter>(second));
  second->FlushWrites();
  CHECK(first->closed);
  CHECK(links->Connected("n1"));
  first->Deliver("");  // the old link's end does not unregister the new one
  CHECK(links->Connected("n1"));
  links->Stop();
  CHECK(second->closed);
}

TEST_CASE("splice copies both ways and closes both ends when one closes") {
  auto a = std::make_shared<FakeConnection>();
  auto b = std::make_shared<FakeConnection>();
  Splice(a, b);
  REQUIRE(a->Deliver("to b"));
  CHECK(b->written == "to b");
  CHECK_FALSE(a->Deliver("more"));  // no read until the write completed: back-pressure
  b->FlushWrites();
  REQUIRE(a->Deliver("more"));
  CHECK(b->written == "to bmore");
  REQUIRE(b->Deliver("to a"));
  CHECK(a->written == "to a");
  b->FlushWrites();
  a->FlushWrites();
  REQUIRE(b->Deliver(""));
  CHECK(a->closed);
  CHECK(b->closed);
}

TEST_CASE("the agent gets the client's request without its credentials") {
  Request r;
  r.method = "POST";
  r.headers.Add("authorization", "Bearer secret");
  r.headers.Add("upgrade", "SPDY/3.1");
  r.headers.Add("x-stream-protocol-version", "v4.channel.k8s.io");
  r.headers.Add("x-stream-protocol-version", "v3.channel.k8s.io");
  r.headers.Add("host", "server:6443");
  std::string head = AgentRequestHead(r, "/exec/ns/p/u/c?command=ls", "node-1");
  CHECK(head ==
        "POST /exec/ns/p/u/c?command=ls HTTP/1.1\r\nHost: node-1\r\nupgrade: SPDY/3.1\r\n"
        "x-stream-protocol-version: v4.channel.k8s.io\r\n"
        "x-stream-protocol-version: v3.channel.k8s.io\r\n\r\n");
}
