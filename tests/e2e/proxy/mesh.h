// The e2e topology for sockmesh-proxy: a sockmesh install, a workload netns "app" enrolled
// in one interception mode (eBPF or Istio-style iptables) with sockmesh-proxy running in it
// as uid 1337 inside the install's cgroup, and two server netns running real servers
// (nginx, python, redis-server). Clients run as uid 1000 in the app netns and the cgroup and
// dial the servers' real addresses; interception sends them through the proxy.
// Every test starts only what it uses; everything is removed at the end.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "harness.h"
#include "http_client.h"

namespace sm::test {

enum class Mode { ebpf, iptables };
void PrintTo(Mode m, std::ostream* os);
std::string mode_name(const ::testing::TestParamInfo<Mode>& info);

class ProxyMesh : public ::testing::TestWithParam<Mode> {
 protected:
  static constexpr uid_t kProxyUid = 1337;
  static constexpr uid_t kAppUid = 1000;
  static const std::string kApp;   // the workload, 198.18.2.2
  static const std::string kSrv1;  // 198.18.2.3
  static const std::string kSrv2;  // 198.18.2.4

  void SetUp() override;
  void TearDown() override;
  bool ebpf() const { return GetParam() == Mode::ebpf; }

  // --- servers (each call returns once the server accepts connections)
  // nginx from nginx.conf.in: answers "<name>\n" and echoes request headers (x-echo-*);
  // serves files from <its dir>/files/ under /files/. Returns its directory.
  std::string start_nginx(const Netns& ns, const std::string& listen, const std::string& name,
                          const Place* where = nullptr);
  // servers.py http|echo|greet ...
  void start_py_http(const Netns& ns, const std::string& addr, uint16_t port,
                     const std::string& name);
  void start_py(const Netns& ns, const std::string& mode, const std::string& addr, uint16_t port);
  // python3 -m http.server serving `dir`.
  void start_http_server_module(const Netns& ns, const std::string& addr, uint16_t port,
                                const std::string& dir);
  void start_redis(const Netns& ns, const std::string& addr, uint16_t port);

  // --- the sidecar
  // Routes: the rendered routes.json.in (see routes_path()).
  struct ProxyFlags {
    bool routes = false;
    std::string extra;  // more flags, e.g. "--idle-timeout-ms 500"
    uint16_t admin_port = 15000;
    uint16_t outbound_port = 15001;
    uint16_t inbound_port = 15006;
    std::string config;                // a --config file other than routes.json
    std::vector<std::string> wrapper;  // argv before the proxy's, e.g. prlimit --nofile=N:N --
  };
  void launch_proxy(const ProxyFlags& flags);
  // Passthrough only (no route table), or with --config routes.json.
  void start_proxy(const std::string& extra = "") {
    ProxyFlags f;
    f.extra = extra;
    launch_proxy(f);
  }
  void start_routed_proxy(const std::string& extra = "") {
    ProxyFlags f;
    f.routes = true;
    f.extra = extra;
    launch_proxy(f);
  }
  void stop_proxy();
  // A killed proxy's io_uring lets go of its listening sockets a few ms after the process
  // is gone (a kernel worker tears the ring down); until then they stay in the port's
  // SO_REUSEPORT group, and a connection that lands on them is reset when they close.
  // Waits (at most a second) until nothing listens on the sidecar ports of the app netns.
  void wait_sidecar_ports_free();
  // The running sidecar's process (port 15000's), taken out of the fixture: it is no longer
  // killed by the next launch_proxy() (a hot restart needs both) nor by stop_proxy().
  std::unique_ptr<Proc> take_proxy() { return std::move(proxy_); }
  std::string routes_path();
  std::string proxy_log() const { return tmp_->file("proxy.log"); }

  // --- admin API (from inside the app netns, on 127.0.0.1)
  HttpResponse admin(const std::string& path, uint16_t port = 15000);
  HttpResponse admin_post(const std::string& path, uint16_t port = 15000);
  HttpResponse admin_request(const std::string& request, uint16_t port);
  std::map<std::string, uint64_t> stats(uint16_t port = 15000);
  // One /stats value (a missing name fails the test and returns ~0).
  uint64_t stat(const std::string& name, uint16_t port = 15000);

  // --- clients: uid 1000 in the app netns and the install's cgroup
  Place client() const { return install_->place(*app_, kAppUid); }
  // One request on a fresh connection.
  HttpResponse http(const std::string& addr, uint16_t port, const std::string& request,
                    int timeout_ms = 5000);
  // Requests one after another on one connection.
  std::vector<HttpResponse> http_seq(const std::string& addr, uint16_t port,
                                     const std::vector<std::string>& requests,
                                     int timeout_ms = 5000);

  // A process's log, to print when a test fails.
  void keep_log(const std::string& what, const std::string& path);

  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<Install> install_;
  std::unique_ptr<TestNet> net_;
  Netns* app_ = nullptr;
  Netns* srv1_ = nullptr;
  Netns* srv2_ = nullptr;
  std::unique_ptr<Proc> proxy_;
  std::vector<Proc> servers_;  // destroyed (killed) before the namespaces

 private:
  std::vector<std::pair<std::string, std::string>> logs_;
  int next_id_ = 0;
};

// The test sources' directory (fixture files) and the proxy binary.
std::string fixture_path(const std::string& name);
std::string proxy_path();
// sm-no-io-uring (no_io_uring.cpp): runs a program with io_uring blocked by seccomp.
std::string no_io_uring_path();
// Replaces every @KEY@ in text.
std::string render(std::string text, const std::map<std::string, std::string>& vars);

}  // namespace sm::test
