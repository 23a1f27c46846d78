// The node agent's volumes in a temp folder (no root: tmpfs off): the atomic writer, configMap
// and secret payloads with their errors, emptyDir, hostPath type checks, volumeMounts, and
// downwardAPI and projected volumes.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "agent_fakes.h"
#include "orch/base64.h"
#include "orch/files.h"
#include "volumes.h"

using json = nlohmann::json;
using namespace orch::agent;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/orch-agent-volumes-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string Read(const std::string& path) {
  auto r = orch::ReadFileToString(path);
  return r.ok() ? *r : "<missing>";
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("the atomic writer swaps whole payloads through ..data") {
  TempDir tmp;
  std::string dir = tmp.path + "/vol";
  VolumePayload first = {{"a.txt", {"one", 0644}}, {"sub/b.txt", {"two", 0600}}};
  auto w1 = WriteAtomically(dir, first);
  REQUIRE(w1.ok());
  CHECK(*w1);
  CHECK(Read(dir + "/a.txt") == "one");
  CHECK(Read(dir + "/sub/b.txt") == "two");
  CHECK(fs::is_symlink(dir + "/a.txt"));
  CHECK(fs::read_symlink(dir + "/a.txt") == "..data/a.txt");
  CHECK(fs::is_symlink(dir + "/..data"));
  CHECK(ModeOf(dir + "/sub/b.txt") == 0600);
  std::string first_target = fs::read_symlink(dir + "/..data");

  auto same = WriteAtomically(dir, first);
  REQUIRE(same.ok());
  CHECK_FALSE(*same);
  CHECK(fs::read_symlink(dir + "/..data") == first_target);

  VolumePayload second = {{"a.txt", {"uno", 0644}}, {"c.txt", {"tres", 0644}}};
  auto w2 = WriteAtomically(dir, second);
  REQUIRE(w2.ok());
  CHECK(*w2);
  CHECK(Read(dir + "/a.txt") == "uno");
  CHECK(Read(dir + "/c.txt") == "tres");
  CHECK_FALSE(fs::exists(dir + "/sub"));
  CHECK_FALSE(fs::exists(dir + "/" + first_target));
  size_t timestamped = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename();
    if (name.rfind("..", 0) == 0 && name != "..data") ++timestamped;
  }
  CHECK(timestamped == 1);
}

TEST_CASE("configMap and secret payloads") {
  json cm = {{"metadata", {{"name", "settings"}}},
             {"data", {{"app.conf", "x=1"}, {"other", "y"}}},
             {"binaryData", {{"blob", orch::Base64Encode(std::string("\x00\x01", 2))}}}};
  auto all = ConfigMapPayload({{"name", "settings"}}, &cm);
  REQUIRE(all.ok());
  CHECK(all->size() == 3);
  CHECK(all->at("app.conf").content == "x=1");
  CHECK(all->at("app.conf").mode == 0644);
  CHECK(all->at("blob").content == std::string("\x00\x01", 2));

  json items = {{"name", "settings"},
                {"defaultMode", 0440},
                {"items", json::array({{{"key", "app.conf"}, {"path", "conf/app.conf"}},
                                       {{"key", "other"}, {"path", "o"}, {"mode", 0400}}})}};
  auto picked = ConfigMapPayload(items, &cm);
  REQUIRE(picked.ok());
  CHECK(picked->size() == 2);
  CHECK(picked->at("conf/app.conf").mode == 0440);
  CHECK(picked->at("o").mode == 0400);

  auto missing = ConfigMapPayload({{"name", "absent"}}, nullptr);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message() == "configmap \"absent\" not found");
  auto optional = ConfigMapPayload({{"name", "absent"}, {"optional", true}}, nullptr);
  REQUIRE(optional.ok());
  CHECK(optional->empty());
  auto bad_key = ConfigMapPayload(
      {{"name", "settings"}, {"items", json::array({{{"key", "nope"}, {"path", "n"}}})}}, &cm);
  REQUIRE_FALSE(bad_key.ok());
  CHECK(bad_key.status().message() == "configmap references non-existent config key: nope");
  auto escape = ConfigMapPayload(
      {{"name", "settings"}, {"items", json::array({{{"key", "other"}, {"path", "../x"}}})}}, &cm);
  CHECK_FALSE(escape.ok());

  json secret = {{"data", {{"token", orch::Base64Encode("t0k")}}}};
  auto s = SecretPayload({{"secretName", "creds"}}, &secret);
  REQUIRE(s.ok());
  CHECK(s->at("token").content == "t0k");
  auto absent = SecretPayload({{"secretName", "creds"}}, nullptr);
  REQUIRE_FALSE(absent.ok());
  CHECK(absent.status().message() == "secret \"creds\" not found");
}

TEST_CASE("volume manager: set up, mounts, refresh and tear down") {
  TempDir tmp;
  AgentPaths paths(tmp.path);
  orch::testing::FakeObjectSource objects;
  objects.AddConfigMap("ns", "settings", {{"greeting", "hello"}});
  objects.AddSecret("ns", "creds", {{"password", orch::Base64Encode("pw")}});
  std::string host_dir = tmp.path + "/host-data";
  std::string host_file = tmp.path + "/host-file";
  REQUIRE(orch::MakeDirectories(host_dir, 0755).ok());
  REQUIRE(orch::WriteFileAtomic(host_file, "f", 0644).ok());
  json pod = {
      {"metadata", {{"name", "p"}, {"namespace", "ns"}, {"uid", "u-1"}}},
      {"spec",
       {{"volumes",
         json::array(
             {{{"name", "scratch"}, {"emptyDir", json::object()}},
              {{"name", "cfg"}, {"configMap", {{"name", "settings"}}}},
              {{"name", "sec"}, {"secret", {{"secretName", "creds"}}}},
              {{"name", "host"}, {"hostPath", {{"path", host_dir}, {"type", "Directory"}}}},
              {{"name", "made"},
               {"hostPath", {{"path", tmp.path + "/made"}, {"type", "DirectoryOrCreate"}}}}})}}}};
  VolumeManager volumes(paths, objects, /*use_tmpfs=*/false);
  auto set_up = volumes.SetUp(pod);
  REQUIRE(set_up.ok());
  std::string pod_dir = paths.PodDir("u-1");
  CHECK(set_up->at("scratch").host_path == pod_dir + "/volumes/kubernetes.io~empty-dir/scratch");
  CHECK(ModeOf(set_up->at("scratch").host_path) == 0777);
  CHECK(Read(set_up->at("cfg").host_path + "/greeting") == "hello");
  CHECK(set_up->at("cfg").read_only);
  CHECK(Read(set_up->at("sec").host_path + "/password") == "pw");
  CHECK(set_up->at("host").host_path == host_dir);
  CHECK(fs::is_directory(tmp.path + "/made"));

  json container = {
      {"name", "c"},
      {"volumeMounts",
       json::array(
           {{{"name", "scratch"}, {"mountPath", "/scratch"}},
            {{"name", "cfg"}, {"mountPath", "/etc/cfg"}},
            {{"name", "host"},
             {"mountPath", "/data"},
             {"readOnly", true},
             {"mountPropagation", "HostToContainer"}},
            {{"name", "scratch"}, {"mountPath", "/logs"}, {"subPathExpr", "$(POD)/logs"}}})}};
  auto mounts = volumes.MountsFor(container, *set_up, {{"POD", "p"}});
  REQUIRE(mounts.ok());
  REQUIRE(mounts->size() == 4);
  CHECK((*mounts)[0].container_path == "/scratch");
  CHECK_FALSE((*mounts)[0].readonly);
  CHECK((*mounts)[1].readonly);
  CHECK((*mounts)[2].readonly);
  CHECK((*mounts)[2].propagation == orch::cri::MountPropagation::kHostToContainer);
  CHECK((*mounts)[3].host_path == set_up->at("scratch").host_path + "/p/logs");
  CHECK(fs::is_directory((*mounts)[3].host_path));
  auto bad = volumes.MountsFor(
      {{"name", "c"}, {"volumeMounts", json::array({{{"name", "nope"}, {"mountPath", "/x"}}})}},
      *set_up, {});
  CHECK_FALSE(bad.ok());

  // The source changes: the files follow.
  objects.AddConfigMap("ns", "settings", {{"greeting", "bonjour"}});
  REQUIRE(volumes.SetUp(pod).ok());
  CHECK(Read(set_up->at("cfg").host_path + "/greeting") == "bonjour");

  REQUIRE(volumes.TearDown("u-1").ok());
  CHECK_FALSE(fs::exists(pod_dir));
  CHECK(fs::is_directory(host_dir));  // hostPath folders are the host's, never removed
}

TEST_CASE("volume set-up errors name the volume") {
  TempDir tmp;
  AgentPaths paths(tmp.path);
  orch::testing::FakeObjectSource objects;
  VolumeManager volumes(paths, objects, false);
  auto pod = [](json volume) {
    return json{{"metadata", {{"name", "p"}, {"namespace", "ns"}, {"uid", "u-2"}}},
                {"spec", {{"volumes", json::array({volume})}}}};
  };
  auto missing = volumes.SetUp(pod({{"name", "cfg"}, {"configMap", {{"name", "absent"}}}}));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message() ==
        "MountVolume.SetUp failed for volume \"cfg\" : configmap \"absent\" not found");
  auto not_dir = volumes.SetUp(
      pod({{"name", "h"}, {"hostPath", {{"path", tmp.path + "/absent"}, {"type", "Directory"}}}}));
  REQUIRE_FALSE(not_dir.ok());
  CHECK(not_dir.status().message() ==
        "MountVolume.SetUp failed for volume \"h\" : hostPath type check failed: " + tmp.path +
            "/absent is not a directory");
  auto not_file =
      volumes.SetUp(pod({{"name", "h"}, {"hostPath", {{"path", tmp.path}, {"type", "File"}}}}));
  REQUIRE_FALSE(not_file.ok());
  CHECK(not_file.status().message().find("is not a file") != std::string::npos);
  auto created = volumes.SetUp(pod(
      {{"name", "h"}, {"hostPath", {{"path", tmp.path + "/new-file"}, {"type", "FileOrCreate"}}}}));
  REQUIRE(created.ok());
  CHECK(fs::is_regular_file(tmp.path + "/new-file"));
  auto unsupported = volumes.SetUp(pod({{"name", "v"}, {"iscsi", {{"lun", 0}}}}));
  REQUIRE_FALSE(unsupported.ok());
  CHECK(unsupported.status().message().find("volume type iscsi") != std::string::npos);
}

TEST_CASE("persistentVolumeClaim volumes wait for the claim, then mount its volume's folder") {
  TempDir tmp;
  AgentPaths paths(tmp.path + "/agent");
  orch::testing::FakeObjectSource objects;
  VolumeManager volumes(paths, objects, false);
  json pod = {
      {"metadata", {{"name", "p"}, {"namespace", "ns"}, {"uid", "u-3"}}},
      {"spec",
       {{"volumes",
         json::array({{{"name", "data"}, {"persistentVolumeClaim", {{"claimName", "c"}}}},
                      {{"name", "ro"},
                       {"persistentVolumeClaim", {{"claimName", "s"}, {"readOnly", true}}}}})}}}};
  // No claim yet: the pod waits (kUnavailable), it does not fail.
  auto missing = volumes.SetUp(pod);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == orch::StatusCode::kUnavailable);
  CHECK(missing.status().message() ==
        "MountVolume.SetUp failed for volume \"data\" : "
        "persistentvolumeclaim \"c\" not found");

  json claim = {{"metadata", {{"name", "c"}, {"namespace", "ns"}, {"uid", "claim-uid"}}},
                {"spec", {{"storageClassName", "local-path"}}},
                {"status", {{"phase", "Pending"}}}};
  objects.AddPersistentVolumeClaim(claim);
  auto pending = volumes.SetUp(pod);
  REQUIRE_FALSE(pending.ok());
  CHECK(pending.status().code() == orch::StatusCode::kUnavailable);
  CHECK(pending.status().message().find("unbound PersistentVolumeClaim") != std::string::npos);
  CHECK(pending.status().message().find("Pending") != std::string::npos);

  // Bound to a local-path volume whose folder does not exist yet: created, writable by all.
  std::string data_dir = tmp.path + "/storage/pvc-claim-uid_ns_c";
  claim["spec"]["volumeName"] = "pvc-claim-uid";
  claim["status"]["phase"] = "Bound";
  objects.AddPersistentVolumeClaim(claim);
  auto no_volume = volumes.SetUp(pod);
  REQUIRE_FALSE(no_volume.ok());
  CHECK(no_volume.status().message().find("persistentvolume \"pvc-claim-uid\"") !=
        std::string::npos);
  objects.AddPersistentVolume(
      {{"metadata",
        {{"name", "pvc-claim-uid"},
         {"annotations", {{"pv.kubernetes.io/provisioned-by", "rancher.io/local-path"}}}}},
       {"spec",
        {{"hostPath", {{"path", data_dir}, {"type", "DirectoryOrCreate"}}},
         {"claimRef", {{"namespace", "ns"}, {"name", "c"}, {"uid", "claim-uid"}}}}},
       {"status", {{"phase", "Bound"}}}});

  // A static `local` volume must exist; read-only claims mount read-only.
  std::string static_dir = tmp.path + "/static";
  objects.AddPersistentVolumeClaim(
      {{"metadata", {{"name", "s"}, {"namespace", "ns"}, {"uid", "s-uid"}}},
       {"spec", {{"volumeName", "static-pv"}}},
       {"status", {{"phase", "Bound"}}}});
  objects.AddPersistentVolume(
      {{"metadata", {{"name", "static-pv"}}},
       {"spec",
        {{"local", {{"path", static_dir}}},
         {"claimRef", {{"namespace", "ns"}, {"name", "s"}, {"uid", "s-uid"}}}}}});
  auto absent_local = volumes.SetUp(pod);
  REQUIRE_FALSE(absent_local.ok());
  CHECK(fs::is_directory(data_dir));
  CHECK(ModeOf(data_dir) == 0777);
  fs::create_directories(static_dir);

  auto set_up = volumes.SetUp(pod);
  REQUIRE(set_up.ok());
  CHECK(set_up->at("data").host_path == data_dir);
  CHECK_FALSE(set_up->at("data").read_only);
  CHECK(set_up->at("ro").host_path == static_dir);
  CHECK(set_up->at("ro").read_only);
  json container = {{"name", "c"},
                    {"volumeMounts", json::array({{{"name", "data"}, {"mountPath", "/data"}},
                                                  {{"name", "ro"}, {"mountPath", "/ro"}}})}};
  auto mounts = volumes.MountsFor(container, *set_up, {});
  REQUIRE(mounts.ok());
  REQUIRE(mounts->size() == 2);
  CHECK((*mounts)[0].host_path == data_dir);
  CHECK((*mounts)[0].container_path == "/data");
  CHECK_FALSE((*mounts)[0].readonly);
  CHECK((*mounts)[1].readonly);

  // The data stays when the pod goes: it is the volume's, not the pod's.
  std::ofstream(data_dir + "/file") << "kept";
  REQUIRE(volumes.TearDown("u-3").ok());
  CHECK(Read(data_dir + "/file") == "kept");

  // A volume bound to another claim (a stale claimRef) is refused.
  objects.AddPersistentVolume(
      {{"metadata", {{"name", "static-pv"}}},
       {"spec",
        {{"local", {{"path", static_dir}}},
         {"claimRef", {{"namespace", "ns"}, {"name", "s"}, {"uid", "older-uid"}}}}}});
  auto stale = volumes.SetUp(pod);
  REQUIRE_FALSE(stale.ok());
  CHECK(stale.status().message().find("bound to another claim") != std::string::npos);
}

TEST_CASE("downwardAPI payloads: fields, label and annotation maps, resources, modes") {
  json pod = {
      {"metadata",
       {{"name", "web"},
        {"namespace", "ns"},
        {"uid", "u-3"},
        {"labels", {{"tier", "front"}, {"app", "shop"}}},
        {"annotations", {{"note", "say \"hi\"\n"}}}}},
      {"spec",
       {{"nodeName", "node-a"},
        {"serviceAccountName", "robot"},
        {"containers",
         json::array({{{"name", "c"}, {"resources", {{"limits", {{"memory", "64Mi"}}}}}}})}}}};
  CHECK(FormatDownwardMap(pod["metadata"]["labels"]) == "app=\"shop\"\ntier=\"front\"");
  EnvContext ctx;
  ctx.node_name = "node-a";
  ctx.host_ip = "192.168.1.10";
  ctx.node_cpu_milli = 2000;
  json source = {
      {"defaultMode", 0600},
      {"items",
       json::array(
           {{{"path", "labels"}, {"fieldRef", {{"fieldPath", "metadata.labels"}}}},
            {{"path", "annotations"}, {"fieldRef", {{"fieldPath", "metadata.annotations"}}}},
            {{"path", "meta/name"}, {"fieldRef", {{"fieldPath", "metadata.name"}}}, {"mode", 0644}},
            {{"path", "uid"}, {"fieldRef", {{"fieldPath", "metadata.uid"}}}},
            {{"path", "tier"}, {"fieldRef", {{"fieldPath", "metadata.labels['tier']"}}}},
            {{"path", "node"}, {"fieldRef", {{"fieldPath", "spec.nodeName"}}}},
            {{"path", "sa"}, {"fieldRef", {{"fieldPath", "spec.serviceAccountName"}}}},
            {{"path", "mem"},
             {"resourceFieldRef",
              {{"containerName", "c"}, {"resource", "limits.memory"}, {"divisor", "1Mi"}}}},
            {{"path", "cpu"},
             {"resourceFieldRef", {{"containerName", "c"}, {"resource", "limits.cpu"}}}}})}};
  auto payload = DownwardApiPayload(source, pod, ctx, 0644);
  REQUIRE(payload.ok());
  CHECK(payload->at("labels").content == "app=\"shop\"\ntier=\"front\"");
  CHECK(payload->at("labels").mode == 0600);
  CHECK(payload->at("annotations").content == "note=\"say \\\"hi\\\"\\n\"");
  CHECK(payload->at("meta/name").content == "web");
  CHECK(payload->at("meta/name").mode == 0644);
  CHECK(payload->at("uid").content == "u-3");
  CHECK(payload->at("tier").content == "front");
  CHECK(payload->at("node").content == "node-a");
  CHECK(payload->at("sa").content == "robot");
  CHECK(payload->at("mem").content == "64");
  CHECK(payload->at("cpu").content == "2");  // no limit: the node's allocatable, in cores

  auto bad = DownwardApiPayload(
      {{"items",
        json::array({{{"path", "../x"}, {"fieldRef", {{"fieldPath", "metadata.name"}}}}})}},
      pod, ctx, 0644);
  CHECK_FALSE(bad.ok());
  auto unknown = DownwardApiPayload(
      {{"items", json::array({{{"path", "x"}, {"fieldRef", {{"fieldPath", "spec.bogus"}}}}})}}, pod,
      ctx, 0644);
  CHECK_FALSE(unknown.ok());
  auto nameless = DownwardApiPayload(
      {{"items",
        json::array({{{"path", "x"}, {"resourceFieldRef", {{"resource", "limits.cpu"}}}}})}},
      pod, ctx, 0644);
  CHECK_FALSE(nameless.ok());
}

TEST_CASE("downwardAPI and projected volumes through the volume manager") {
  TempDir tmp;
  AgentPaths paths(tmp.path);
  orch::testing::FakeObjectSource objects;
  objects.AddConfigMap("ns", "settings", {{"greeting", "hello"}, {"other", "x"}});
  objects.AddSecret("ns", "creds", {{"password", orch::Base64Encode("pw")}});
  json pod = {
      {"metadata", {{"name", "p"}, {"namespace", "ns"}, {"uid", "u-4"}, {"labels", {{"a", "1"}}}}},
      {"spec",
       {{"volumes",
         json::array(
             {{{"name", "info"},
               {"downwardAPI",
                {{"items", json::array({{{"path", "labels"},
                                         {"fieldRef", {{"fieldPath", "metadata.labels"}}}}})}}}},
              {{"name", "all"},
               {"projected",
                {{"defaultMode", 0640},
                 {"sources",
                  json::array({{{"configMap",
                                 {{"name", "settings"},
                                  {"items", json::array({{{"key", "greeting"},
                                                          {"path", "cfg/greeting"}}})}}}},
                               {{"secret", {{"name", "creds"}}}},
                               {{"downwardAPI",
                                 {{"items", json::array({{{"path", "name"},
                                                          {"fieldRef",
                                                           {{"fieldPath", "metadata.name"}}}}})}}}},
                               {{"serviceAccountToken", {{"path", "token"}}}}})}}}}})}}}};
  VolumeManager volumes(paths, objects, false);
  std::vector<std::string> warnings;
  auto set_up = volumes.SetUp(pod, {}, &warnings);
  REQUIRE(set_up.ok());
  std::string info = set_up->at("info").host_path;
  CHECK(info == paths.PodDir("u-4") + "/volumes/kubernetes.io~downward-api/info");
  CHECK(Read(info + "/labels") == "a=\"1\"");
  CHECK(set_up->at("info").read_only);
  std::string all = set_up->at("all").host_path;
  CHECK(Read(all + "/cfg/greeting") == "hello");
  CHECK_FALSE(fs::exists(all + "/other"));
  CHECK(Read(all + "/password") == "pw");
  CHECK(ModeOf(all + "/password") == 0640);
  CHECK(Read(all + "/name") == "p");
  CHECK_FALSE(fs::exists(all + "/token"));
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("serviceAccountToken") != std::string::npos);

  // Labels change: the file follows.
  pod["metadata"]["labels"]["b"] = "2";
  REQUIRE(volumes.SetUp(pod).ok());
  CHECK(Read(info + "/labels") == "a=\"1\"\nb=\"2\"");

  // A missing source that is not optional fails the volume.
  pod["spec"]["volumes"][1]["projected"]["sources"][1]["secret"]["name"] = "absent";
  auto missing = volumes.SetUp(pod);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message() ==
        "MountVolume.SetUp failed for volume \"all\" : secret \"absent\" not found");
  REQUIRE(volumes.TearDown("u-4").ok());
}

TEST_CASE("IsMountPoint agrees with the mount table") {
  TempDir dir;
  CHECK_FALSE(IsMountPoint(dir.path));
  CHECK_FALSE(IsMountPoint(dir.path + "/missing"));
  // "/" and /proc are mount roots wherever the tests run; the table lists both.
  for (const std::string path : {"/", "/proc"}) {
    auto listed = MountPointsUnder(path);
    CHECK(std::find(listed.begin(), listed.end(), path) != listed.end());
    CHECK(IsMountPoint(path));
  }
  // Deepest first, every entry under the prefix.
  auto under_proc = MountPointsUnder("/proc/");
  REQUIRE_FALSE(under_proc.empty());
  CHECK(under_proc.back() == "/proc");
  for (const auto& m : under_proc) CHECK((m == "/proc" || m.rfind("/proc/", 0) == 0));
}

TEST_CASE("IsMountPoint sees a tmpfs mounted on a folder (root only)") {
  TempDir dir;
  if (::geteuid() != 0 || ::mount("tmpfs", dir.path.c_str(), "tmpfs", 0, "size=64k") != 0) {
    WARN("not root or no tmpfs here: skipped");
    return;
  }
  CHECK(IsMountPoint(dir.path));
  ::umount2(dir.path.c_str(), MNT_DETACH);
  CHECK_FALSE(IsMountPoint(dir.path));
}
