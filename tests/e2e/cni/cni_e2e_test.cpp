// sockmesh-cni run exactly as a runtime runs a CNI plugin: the network config on stdin,
// CNI_COMMAND/CNI_CONTAINERID/CNI_NETNS/CNI_IFNAME/CNI_PATH/CNI_ARGS in the environment,
// the answer read from stdout. Against a real install and real sm-* netns: ADD makes a
// connect from the pod's netns land on the sidecar's outbound port with SO_ORIGINAL_DST
// intact, CHECK agrees, DEL removes it (and is idempotent). Then the whole chain as
// libcni executes a conflist: Debian's loopback and bridge (host-local IPAM, addresses
// from 198.18.7.0/24) and sockmesh-cni last, in a node netns of the test's own. Last,
// podman (CNI backend) starts a container on a network of that shape and nothing else
// is done: the container's connect is intercepted.
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "harness.h"

namespace sm::test {
namespace {

using Json = nlohmann::ordered_json;

constexpr uid_t kProxyUid = 1337;
constexpr uid_t kAppUid = 1000;
const std::string kCniPath = "/usr/lib/cni";  // Debian's containernetworking-plugins
// CNI_ARGS as containerd passes them for a pod.
const std::string kPodArgs =
    "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=sm-web;"
    "K8S_POD_INFRA_CONTAINER_ID=sm-ctr-1";

std::string fixture(const std::string& name) {
  std::string text = slurp(std::string(SM_CNI_E2E_FIXTURES) + "/" + name);
  if (text.empty()) fail("missing fixture " + name);
  return text;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

struct PluginRun {
  int rc = -1;
  std::string out;  // stdout only
};

// One plugin invocation, as libcni makes it: config on stdin, CNI_* env, in `where`
// (the node's netns). stderr goes to the test's log.
PluginRun exec_plugin(const Place& where, const TempDir& dir, const std::string& plugin,
                      const std::string& command, const std::string& netns, const Json& conf,
                      const std::string& args = "") {
  static int n = 0;
  std::string conf_file = dir.write("conf" + std::to_string(++n) + ".json", conf.dump());
  std::string cmd = "(CNI_COMMAND=" + command + " CNI_CONTAINERID=sm-ctr-1 CNI_NETNS=" + netns +
                    " CNI_IFNAME=eth0 CNI_PATH=" + kCniPath + " CNI_ARGS='" + args + "' " + plugin +
                    " < " + conf_file + " 2>>" + dir.file("plugins.log") + ")";
  PluginRun r;
  r.rc = where.netns.empty() ? sh(cmd, &r.out) : sh_in(where, cmd, &r.out);
  return r;
}

std::string cni_binary() {
  return build_dir() + "/bin/sockmesh-cni";
}

class Cni : public ::testing::Test {
 protected:
  void SetUp() override {
    SM_REQUIRE_ROOT();
    install_ = std::make_unique<Install>();
    dir_ = std::make_unique<TempDir>("cni");
  }
  void TearDown() override {
    if (HasFailure() && dir_) std::cerr << "plugin stderr:\n" << slurp(dir_->file("plugins.log"));
  }
  Json sockmesh_conf(const Json& prev_result = nullptr) const {
    Json c{{"cniVersion", "1.0.0"},
           {"name", "sm-net"},
           {"type", "sockmesh-cni"},
           {"pinDir", install_->pin_dir()}};
    if (!prev_result.is_null()) c["prevResult"] = prev_result;
    return c;
  }
  PluginRun cni(const std::string& command, const std::string& netns, const Json& conf,
                const std::string& args = "") {
    return exec_plugin(Place(), *dir_, cni_binary(), command, netns, conf, args);
  }
  std::string from(const Netns& ns, const std::string& addr, uint16_t port) {
    return connect_line(install_->place(ns, kAppUid), addr, port);
  }

  std::unique_ptr<Install> install_;
  std::unique_ptr<TempDir> dir_;
  std::vector<Proc> procs_;
};

TEST_F(Cni, AddInterceptsTheNetnsCheckAgreesDelRemoves) {
  TestNet net;
  Netns& pod = net.add_host("pod", "198.18.6.2/24");
  Netns& srv = net.add_host("srv", "198.18.6.3/24");
  for (uint16_t port : {9080, 9090})
    procs_.push_back(
        serve(Place::in(srv), [port] { return serve_direct("0.0.0.0", port, "srv"); }));
  procs_.push_back(serve(install_->place(pod, kProxyUid), [] { return serve_origdst(15001); }));
  ASSERT_EQ(from(pod, "198.18.6.3", 9080), "DIRECT srv");

  const Json prev = Json::parse(R"({"cniVersion":"1.0.0","interfaces":[{"name":"eth0",
      "sandbox":")" + pod.path() +
                                R"("}],"ips":[{"address":"198.18.6.2/24","interface":0}]})");
  PluginRun add = cni("ADD", pod.path(), sockmesh_conf(prev), kPodArgs);
  ASSERT_EQ(add.rc, 0) << add.out;
  EXPECT_EQ(add.out, prev.dump() + "\n");  // prevResult, unchanged
  std::string line = from(pod, "198.18.6.3", 9080);
  EXPECT_EQ(line.rfind("ORIG 198.18.6.3:9080 LOCAL 127.0.0.1:15001", 0), 0u) << line;

  PluginRun check = cni("CHECK", pod.path(), sockmesh_conf(prev));
  EXPECT_EQ(check.rc, 0) << check.out;
  EXPECT_EQ(check.out, "");

  PluginRun del = cni("DEL", pod.path(), sockmesh_conf(prev));
  EXPECT_EQ(del.rc, 0) << del.out;
  EXPECT_EQ(del.out, "");
  EXPECT_EQ(from(pod, "198.18.6.3", 9080), "DIRECT srv");
  EXPECT_EQ(install_->map_entries("sm_netns_v1"), 0);

  check = cni("CHECK", pod.path(), sockmesh_conf(prev));
  EXPECT_EQ(check.rc, 1);
  EXPECT_EQ(Json::parse(check.out)["code"], 101) << check.out;
  // DEL again, and DEL of a netns the plugin never saw (or that is gone): success.
  EXPECT_EQ(cni("DEL", pod.path(), sockmesh_conf()).rc, 0);
  EXPECT_EQ(cni("DEL", "/run/netns/sm-never-existed", sockmesh_conf()).rc, 0);
  EXPECT_EQ(cni("DEL", "", sockmesh_conf()).rc, 0);
}

TEST_F(Cni, PodAnnotationsFromRuntimeConfigApply) {
  TestNet net;
  Netns& pod = net.add_host("pod", "198.18.6.2/24");
  Netns& srv = net.add_host("srv", "198.18.6.3/24");
  for (uint16_t port : {9080, 9090})
    procs_.push_back(
        serve(Place::in(srv), [port] { return serve_direct("0.0.0.0", port, "srv"); }));
  procs_.push_back(serve(install_->place(pod, kProxyUid), [] { return serve_origdst(15001); }));
  Json conf = sockmesh_conf(Json::object({{"cniVersion", "1.0.0"}}));
  conf["runtimeConfig"]["io.kubernetes.cri.pod-annotations"] = {
      {"traffic.sidecar.istio.io/excludeOutboundPorts", "9090"}};
  PluginRun add = cni("ADD", pod.path(), conf);
  ASSERT_EQ(add.rc, 0) << add.out;
  EXPECT_EQ(from(pod, "198.18.6.3", 9090), "DIRECT srv");
  EXPECT_EQ(from(pod, "198.18.6.3", 9080).rfind("ORIG 198.18.6.3:9080 ", 0), 0u);
  EXPECT_EQ(cni("DEL", pod.path(), conf).rc, 0);
}

TEST_F(Cni, NotInstalledIsTryAgainLater) {
  Netns pod(unique_name("pod"));
  Json conf = sockmesh_conf();
  conf["pinDir"] = "/sys/fs/bpf/sm-not-installed";
  PluginRun add = cni("ADD", pod.path(), conf);
  EXPECT_EQ(add.rc, 1);
  Json e = Json::parse(add.out);
  EXPECT_EQ(e["code"], 11) << add.out;
  EXPECT_NE(e["msg"].get<std::string>().find("not installed at /sys/fs/bpf/sm-not-installed"),
            std::string::npos);
}

// libcni's conflist execution: each plugin gets the list's cniVersion and name, and from
// the second on the previous plugin's result as prevResult; DEL runs in reverse.
std::vector<Json> plugin_configs(const Json& list) {
  std::vector<Json> out;
  for (const Json& p : list["plugins"]) {
    Json c = p;
    c["cniVersion"] = list["cniVersion"];
    c["name"] = list["name"];
    out.push_back(c);
  }
  return out;
}

// Where the runtime finds a plugin: CNI_PATH (ours comes from the build).
std::string binary_of(const Json& plugin) {
  std::string type = plugin["type"];
  return type == "sockmesh-cni" ? cni_binary() : kCniPath + "/" + type;
}

TEST_F(Cni, ChainedAfterDebiansBridgePluginAContainerIsInterceptedWithoutAnyCommandOfOurs) {
  struct stat st {};
  if (::stat((kCniPath + "/bridge").c_str(), &st) != 0)
    GTEST_SKIP() << "needs Debian's containernetworking-plugins (" << kCniPath << "/bridge)";
  Netns node(unique_name("node"));  // the node's network, where the runtime runs plugins
  Netns pod(unique_name("pod"));
  Place at_node = Place::in(node);
  std::string data_dir = dir_->file("ipam");
  Json list = Json::parse(
      replace_all(replace_all(fixture("podnet.conflist"), "@PIN_DIR@", install_->pin_dir()),
                  "@DATA_DIR@", data_dir));
  auto configs = plugin_configs(list);
  auto lo = plugin_configs(Json::parse(fixture("lo.conflist")));

  // ADD: loopback (its own network, as runtimes do), then bridge -> sockmesh-cni.
  PluginRun r = exec_plugin(at_node, *dir_, kCniPath + "/loopback", "ADD", pod.path(), lo[0]);
  ASSERT_EQ(r.rc, 0) << r.out;
  Json prev;
  for (const Json& c : configs) {
    Json conf = c;
    if (!prev.is_null()) conf["prevResult"] = prev;
    r = exec_plugin(at_node, *dir_, binary_of(c), "ADD", pod.path(), conf, kPodArgs);
    ASSERT_EQ(r.rc, 0) << c["type"] << ": " << r.out;
    Json result = Json::parse(r.out);
    if (c["type"] == "sockmesh-cni") {
      EXPECT_EQ(result, prev);  // passed through unchanged
    }
    prev = result;
  }
  ASSERT_EQ(prev["ips"][0]["address"], "198.18.7.2/24") << prev.dump();

  // The node answers on its bridge address; the pod's sidecar (uid 1337) reaches it
  // directly, the app is redirected to the sidecar.
  procs_.push_back(serve(at_node, [] { return serve_direct("198.18.7.1", 9080, "node"); }));
  procs_.push_back(serve(install_->place(pod, kProxyUid), [] { return serve_origdst(15001); }));
  EXPECT_EQ(connect_line(install_->place(pod, kProxyUid), "198.18.7.1", 9080), "DIRECT node");
  std::string line = from(pod, "198.18.7.1", 9080);
  EXPECT_EQ(line.rfind("ORIG 198.18.7.1:9080 LOCAL 127.0.0.1:15001", 0), 0u) << line;

  // CHECK through the chain, then DEL in reverse order.
  for (const Json& c : configs) {
    Json conf = c;
    conf["prevResult"] = prev;
    r = exec_plugin(at_node, *dir_, binary_of(c), "CHECK", pod.path(), conf);
    EXPECT_EQ(r.rc, 0) << c["type"] << ": " << r.out;
  }
  for (auto it = configs.rbegin(); it != configs.rend(); ++it) {
    Json conf = *it;
    conf["prevResult"] = prev;
    r = exec_plugin(at_node, *dir_, binary_of(*it), "DEL", pod.path(), conf);
    EXPECT_EQ(r.rc, 0) << (*it)["type"] << ": " << r.out;
    if ((*it)["type"] == "sockmesh-cni") {
      EXPECT_EQ(from(pod, "198.18.7.1", 9080), "DIRECT node");  // before the bridge goes
    }
  }
  EXPECT_EQ(install_->map_entries("sm_netns_v1"), 0);
}

// A podman container on a CNI network whose conflist chains sockmesh-cni (podman's CNI
// backend runs the chain, from a node netns of ours), placed below the install's cgroup
// (--cgroup-parent): no command of ours enrolls it, yet its connect reaches its sidecar.
class PodmanContainer {
 public:
  PodmanContainer(std::string name, std::string cgroup_name)
      : name_(std::move(name)), cgroup_name_(std::move(cgroup_name)) {}
  ~PodmanContainer() {
    sh("podman rm -f -t 0 --ignore " + name_);
    // runc made the cgroup parent (with conmon's cgroup) in every v1 hierarchy (hybrid host).
    sh("for d in /sys/fs/cgroup/*/" + cgroup_name_ + "; do [ -d \"$d\" ] || continue; " +
       "[ \"$d\" = " + cgroup2_root() + "/" + cgroup_name_ + " ] && continue; " +
       "rmdir \"$d\"/libpod-* \"$d\"/conmon 2>/dev/null; rmdir \"$d\"; done");
  }
  PodmanContainer(const PodmanContainer&) = delete;
  PodmanContainer& operator=(const PodmanContainer&) = delete;
  const std::string& name() const { return name_; }

 private:
  std::string name_, cgroup_name_;
};

TEST_F(Cni, PodmanContainerOnAChainedNetworkIsInterceptedWithoutAnyCommandOfOurs) {
  std::string have;
  if (sh("command -v podman && command -v runc && command -v busybox", &have) != 0)
    GTEST_SKIP() << "needs podman, runc and busybox";
  if (sh("podman info --format '{{.Host.NetworkBackend}}'", &have) != 0 || have != "cni\n")
    GTEST_SKIP() << "needs podman's CNI network backend (podman info: " << have << ")";
  struct stat st {};
  if (::stat((kCniPath + "/bridge").c_str(), &st) != 0)
    GTEST_SKIP() << "needs Debian's containernetworking-plugins (" << kCniPath << "/bridge)";

  Netns node(unique_name("node"));
  const std::string network = unique_name("net");
  const std::string d = dir_->path();
  // Our network config dir, our plugin dir first, a rootfs of busybox and its libraries.
  sh_ok("mkdir -p " + d + "/net.d " + d + "/bin " + d + "/ipam " + d + "/rootfs/bin && cp " +
        cni_binary() + " " + d + "/bin/ && cp -L $(command -v busybox) " + d +
        "/rootfs/bin/busybox && for l in $(ldd $(command -v busybox) | awk '$3 ~ /^\\// " +
        "{ print $3 } $1 ~ /^\\// { print $1 }'); do mkdir -p " + d + "/rootfs$(dirname $l) && " +
        "cp -L $l " + d + "/rootfs$l; done");
  dir_->write(
      "net.d/" + network + ".conflist",
      replace_all(replace_all(replace_all(fixture("podman-net.conflist"), "@NETWORK@", network),
                              "@PIN_DIR@", install_->pin_dir()),
                  "@DATA_DIR@", d + "/ipam"));
  std::string conf = dir_->write("containers.conf",
                                 "[network]\ncni_plugin_dirs = [\"" + d + "/bin\", \"" + kCniPath +
                                     "\"]\nnetwork_config_dir = \"" + d + "/net.d\"\n");
  std::string cg_name = install_->cgroup().substr(cgroup2_root().size() + 1);
  PodmanContainer ctr(unique_name("ctr"), cg_name);
  std::string out;
  int rc =
      sh("CONTAINERS_CONF=" + conf + " nsenter --net=" + node.path() +
             " podman run --runtime runc -d --name " + ctr.name() +
             " --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 --network " + network +
             " --cgroup-parent /" + cg_name + " --rootfs " + d + "/rootfs /bin/busybox sleep 600",
         &out);
  ASSERT_EQ(rc, 0) << out << slurp(dir_->file("plugins.log"));
  EXPECT_EQ(install_->map_entries("sm_netns_v1"), 1);  // enrolled by the runtime's ADD
  std::string pid_text;
  ASSERT_EQ(sh("podman inspect --format '{{.State.Pid}}' " + ctr.name(), &pid_text), 0);
  const std::string ctr_netns = "/proc/" + std::to_string(std::stoi(pid_text)) + "/ns/net";

  procs_.push_back(serve(Place::in(node), [] { return serve_direct("198.18.8.1", 9080, "node"); }));
  Place sidecar;
  sidecar.netns = ctr_netns;
  sidecar.cgroup = install_->cgroup();
  sidecar.uid = kProxyUid;
  sidecar.gid = kProxyUid;
  procs_.push_back(serve(sidecar, [] { return serve_origdst(15001); }));
  EXPECT_EQ(connect_line(sidecar, "198.18.8.1", 9080), "DIRECT node");  // the network works
  // The container's own process (podman exec joins its cgroup and netns).
  rc = sh("podman exec " + ctr.name() + " /bin/busybox nc -w 3 198.18.8.1 9080 </dev/null", &out);
  EXPECT_EQ(out.rfind("ORIG 198.18.8.1:9080 LOCAL 127.0.0.1:15001", 0), 0u) << rc << ": " << out;

  procs_.clear();
  ASSERT_EQ(sh("CONTAINERS_CONF=" + conf + " nsenter --net=" + node.path() + " podman rm -f -t 0 " +
                   ctr.name(),
               &out),
            0)
      << out;
  EXPECT_EQ(install_->map_entries("sm_netns_v1"), 0);  // unenrolled by the runtime's DEL
}

}  // namespace
}  // namespace sm::test
