// The node agent's image pull helpers: registries of image names, pull secret credentials,
// and Go-style durations in events.
#include <catch2/catch.hpp>

#include "image_puller.h"
#include "orch/base64.h"

using json = nlohmann::json;
using namespace orch::agent;
using namespace std::chrono_literals;

TEST_CASE("the registry of an image") {
  CHECK(ImageRegistry("busybox") == "docker.io");
  CHECK(ImageRegistry("library/busybox:1") == "docker.io");
  CHECK(ImageRegistry("docker.io/library/busybox") == "docker.io");
  CHECK(ImageRegistry("index.docker.io/x/y") == "docker.io");
  CHECK(ImageRegistry("registry.local:5000/app:1") == "registry.local:5000");
  CHECK(ImageRegistry("localhost/app") == "localhost");
}

TEST_CASE("pull secret credentials by registry") {
  json config = {{"auths",
                  {{"https://index.docker.io/v1/", {{"auth", orch::Base64Encode("hub:pw")}}},
                   {"registry.local:5000", {{"username", "u"}, {"password", "p"}}}}}};
  auto hub = AuthForImage("busybox", config);
  REQUIRE(hub);
  CHECK(hub->username == "hub");
  CHECK(hub->password == "pw");
  CHECK(hub->server_address == "https://index.docker.io/v1/");
  auto local = AuthForImage("registry.local:5000/app:1", config);
  REQUIRE(local);
  CHECK(local->username == "u");
  CHECK(local->password == "p");
  CHECK_FALSE(AuthForImage("quay.io/x", config));
  // The legacy .dockercfg has no "auths" level.
  json legacy = {{"quay.io", {{"username", "q"}, {"password", "r"}}}};
  auto quay = AuthForImage("quay.io/x/y", legacy);
  REQUIRE(quay);
  CHECK(quay->username == "q");
}

TEST_CASE("durations as Go prints them") {
  CHECK(GoDuration(0ms) == "0s");
  CHECK(GoDuration(523ms) == "523ms");
  CHECK(GoDuration(1200ms) == "1.2s");
  CHECK(GoDuration(1234ms) == "1.234s");
  CHECK(GoDuration(10s) == "10s");
  CHECK(GoDuration(62500ms) == "1m2.5s");
  CHECK(GoDuration(300s) == "5m0s");
  CHECK(GoDuration(3723s) == "1h2m3s");
}
