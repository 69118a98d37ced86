// Operations under continuous load (issue 13): a client keeps sending requests through the
// enrolled netns, on a keep-alive connection and on new connections, while
//   - the loader is upgraded: `install` of a build whose BPF programs differ (sm-loader-next:
//     the same sources compiled for BPF CPU v3, so every program's instructions change)
//     replaces each attached program with bpf_link_update;
//   - the sidecar is killed and restarted, with enroll --fail-open and without;
//   - the sidecar drains (SIGTERM, a failed health check) and hot-restarts (issue 13).
// Each reports requests sent and failed.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include "mesh.h"

namespace sm::test {
namespace {

const std::string kVip = "198.18.2.100";

using LoaderUpgrade = ProxyMesh;

struct LoadCounts {
  // failed: anything but a 200; lost: of those, the ones that got no response at all (a
  // connect refused, a connection cut or silent).
  uint64_t sent = 0, failed = 0, lost = 0, keepalive = 0, fresh = 0, fresh_failed = 0;
  std::string first_failure;
};

// For `seconds`, alternately one request on a kept-alive connection and one on a new
// connection. A response that says `connection: close` ends the kept-alive connection
// cleanly (nginx closes after 100 requests): the next one opens another.
LoadCounts drive(double seconds, const std::string& addr, uint16_t port) {
  LoadCounts n;
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::unique_ptr<HttpConn> kept;
  auto check = [&](const HttpResponse& r, const char* kind) {
    ++n.sent;
    if (r.status == 200) return true;
    ++n.failed;
    if (r.status == 0) ++n.lost;
    if (n.first_failure.empty()) n.first_failure = std::string(kind) + ": " + r.serialize();
    return false;
  };
  while (std::chrono::steady_clock::now() < end) {
    if (!kept) kept = std::make_unique<HttpConn>(addr, port);
    HttpResponse r;
    if (kept->ok() && kept->send(get("reviews", "/"))) r = kept->read(3000);
    ++n.keepalive;
    if (!check(r, "keep-alive") || r.header("connection") == "close") kept.reset();
    HttpConn fresh(addr, port);
    HttpResponse f;
    if (fresh.ok() && fresh.send(get("reviews", "/", "connection: close\r\n")))
      f = fresh.read(3000);
    ++n.fresh;
    if (!check(f, "new connection")) ++n.fresh_failed;
  }
  return n;
}

// Runs drive() for `seconds` as the app (uid 1000, the install's cgroup) while `during`
// runs here; returns the child's counts and prints them.
LoadCounts under_load(const Place& client, const std::string& file, double seconds,
                      const std::string& addr, uint16_t port, const std::function<void()>& during,
                      const char* what) {
  Proc load(client, [&] {
    LoadCounts n = drive(seconds, addr, port);
    std::ofstream(file) << n.sent << " " << n.failed << " " << n.lost << " " << n.keepalive << " "
                        << n.fresh << " " << n.fresh_failed << "\n"
                        << n.first_failure;
    return 0;
  });
  during();
  EXPECT_EQ(load.wait(), 0);
  std::ifstream in(file);
  LoadCounts n;
  in >> n.sent >> n.failed >> n.lost >> n.keepalive >> n.fresh >> n.fresh_failed;
  std::getline(in >> std::ws, n.first_failure, '\0');
  std::printf(
      "%s: sent %llu (keep-alive %llu, new connections %llu), failed %llu (on new "
      "connections %llu), lost %llu\n",
      what, static_cast<unsigned long long>(n.sent), static_cast<unsigned long long>(n.keepalive),
      static_cast<unsigned long long>(n.fresh), static_cast<unsigned long long>(n.failed),
      static_cast<unsigned long long>(n.fresh_failed), static_cast<unsigned long long>(n.lost));
  ::testing::Test::RecordProperty("sent", std::to_string(n.sent));
  ::testing::Test::RecordProperty("failed", std::to_string(n.failed));
  ::testing::Test::RecordProperty("lost", std::to_string(n.lost));
  return n;
}

int run_loader(const std::string& path, const std::string& args, std::string* out) {
  std::string cmd = path + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[512];
  while (size_t k = std::fread(buf, 1, sizeof buf, p)) out->append(buf, k);
  return ::pclose(p);
}

TEST_P(LoaderUpgrade, InstallOfChangedProgramsUnderLoadLosesNoRequest) {
  if (!ebpf()) GTEST_SKIP() << "upgrading the BPF programs is an eBPF-mode matter";
  start_nginx(*srv1_, kSrv1 + ":9080", "v1");
  start_nginx(*srv2_, kSrv2 + ":9080", "v2");
  start_routed_proxy();
  const std::string where = "--cgroup " + install_->cgroup() + " --pin-dir " + install_->pin_dir();
  LoadCounts n = under_load(
      client(), tmp_->file("load-counts"), 3.0, kVip, 9080,
      [&] {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        std::string out;
        EXPECT_EQ(run_loader(SM_LOADER_NEXT, "install " + where, &out), 0) << out;
        EXPECT_NE(out.find("upgraded"), std::string::npos) << out;
        // And back to this build's programs, still under load.
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        std::string back;
        EXPECT_EQ(install_->loader("install --cgroup " + install_->cgroup(), &back), 0) << back;
        EXPECT_NE(back.find("upgraded"), std::string::npos) << back;
      },
      "loader upgrade under load");
  EXPECT_GT(n.keepalive, 100u);
  EXPECT_GT(n.fresh, 100u);
  EXPECT_EQ(n.failed, 0u) << n.first_failure;
  // Every redirected connection still found its original destination.
  EXPECT_EQ(stat("listener.outbound.downstream_cx_no_destination"), 0u);
  EXPECT_EQ(install_->counter("origdst_missing"), 0u);
}

using SidecarRestart = ProxyMesh;

// The sidecar killed (SIGKILL) and started again under load, the client dialing a real
// server (198.18.2.3:9080) through the mesh. Returns the counts.
LoadCounts kill_and_restart(const Place& client, const std::string& file,
                            const std::function<void()>& stop, const std::function<void()>& start,
                            const char* what) {
  return under_load(
      client, file, 3.0, "198.18.2.3", 9080,
      [&] {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        stop();
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        start();  // returns once /ready says LIVE
      },
      what);
}

// Default (both modes): fail closed. While no sidecar listens, connects are refused; once it
// is back, requests succeed again.
TEST_P(SidecarRestart, KilledSidecarFailsClosedUntilItIsBack) {
  start_nginx(*srv1_, kSrv1 + ":9080", "v1");
  start_nginx(*srv2_, kSrv2 + ":9080", "v2");
  start_routed_proxy();
  LoadCounts n = kill_and_restart(
      client(), tmp_->file("load-counts"), [&] { stop_proxy(); }, [&] { start_routed_proxy(); },
      ebpf() ? "sidecar kill, fail closed (ebpf)" : "sidecar kill, fail closed (iptables)");
  EXPECT_GT(n.fresh_failed, 0u) << "nothing was refused while the sidecar was down";
  EXPECT_LT(n.failed, n.sent / 2);
  EXPECT_EQ(http(kSrv1, 9080, get("reviews", "/")).status, 200);  // served again
  if (ebpf()) {
    EXPECT_EQ(install_->counter("fail_open"), 0u);
  }
}

// enroll --fail-open (eBPF only): while the sidecar is down, new connections go straight
// to the server and succeed (counted as fail_open). What the kill itself cuts still fails:
// the one request in flight (the client sends one at a time) and the next request on the
// kept-alive connection the killed sidecar held; and a new connection whose connect found
// the dying sidecar's listener still open (a SIGKILLed process closes its sockets a moment
// later) is cut with it. So at most two new connections and one keep-alive request.
TEST_P(SidecarRestart, KilledSidecarWithFailOpenGoesDirect) {
  if (!ebpf()) GTEST_SKIP() << "--fail-open is eBPF only";
  install_->enroll(*app_, "--fail-open");
  start_nginx(*srv1_, kSrv1 + ":9080", "v1");
  start_nginx(*srv2_, kSrv2 + ":9080", "v2");
  start_routed_proxy();
  LoadCounts n = kill_and_restart(
      client(), tmp_->file("load-counts"), [&] { stop_proxy(); }, [&] { start_routed_proxy(); },
      "sidecar kill, --fail-open (ebpf)");
  EXPECT_GT(install_->counter("fail_open"), 0u);
  EXPECT_LE(n.fresh_failed, 2u) << n.first_failure;
  EXPECT_LE(n.failed - n.fresh_failed, 1u) << n.first_failure;
  EXPECT_EQ(http(kSrv1, 9080, get("reviews", "/")).status, 200);
}

using SidecarDrain = ProxyMesh;

// SIGTERM: /ready turns 503 at once; the request in flight is answered (with `connection:
// close`); a new connection is refused (fail closed: the listeners stopped); the idle
// keep-alive connection is closed once idle for half the drain time; then, no connection
// left, the proxy exits 0 before the drain time is up.
TEST_P(SidecarDrain, SigtermAnswersWhatIsInFlightRefusesNewConnectionsAndExits) {
  start_py_http(*srv1_, kSrv1, 8080, "py");
  start_proxy("--drain-time-s 4");
  std::unique_ptr<Proc> proxy = take_proxy();
  const std::string file = tmp_->file("drain-client");
  Proc c(client(), [&] {
    HttpConn idle(kSrv1, 8080);
    HttpResponse a;
    if (idle.send(get("py", "/"))) a = idle.read(3000);
    HttpConn busy(kSrv1, 8080);
    HttpResponse b;
    if (busy.send(get("py", "/late?s=1.5&tag=inflight"))) b = busy.read(5000);  // SIGTERM at 0.5 s
    HttpConn fresh(kSrv1, 8080);
    const std::string idle_end = idle.wait_closed(4000);
    std::ofstream(file) << a.status << " " << b.status << " " << b.body.substr(0, 8) << " "
                        << b.header("connection") << " "
                        << (fresh.ok() ? "connected" : strerrorname_np(fresh.connect_error()))
                        << " " << idle_end;
    return 0;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_EQ(::kill(proxy->pid(), SIGTERM), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  HttpResponse ready = admin("/ready");
  EXPECT_EQ(ready.status, 503) << ready;
  EXPECT_EQ(ready.body, "DRAINING\n");
  EXPECT_EQ(c.wait(), 0);
  std::string seen;
  std::getline(std::ifstream(file), seen);
  EXPECT_EQ(seen, "200 200 inflight close ECONNREFUSED eof");
  // Both connections gone (the second at about 2.5 s): the proxy exits, well before 4 s.
  EXPECT_EQ(proxy->wait_for(3000), std::optional<int>(0)) << slurp(proxy_log());
}

// POST /healthcheck/fail under load: /ready 503, every response says `connection: close`
// (the client opens a new connection, served as well), nothing fails; /healthcheck/ok ends it.
TEST_P(SidecarDrain, FailedHealthCheckUnderLoadFailsNoRequest) {
  start_nginx(*srv1_, kSrv1 + ":9080", "v1");
  start_nginx(*srv2_, kSrv2 + ":9080", "v2");
  start_routed_proxy();
  LoadCounts n = under_load(
      client(), tmp_->file("load-counts"), 3.0, "198.18.2.3", 9080,
      [&] {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        EXPECT_EQ(admin_post("/healthcheck/fail").status, 200);
        EXPECT_EQ(admin("/ready").status, 503);
        EXPECT_EQ(admin("/healthcheck/fail").status, 405);  // mutations are POST only
        std::this_thread::sleep_for(std::chrono::seconds(1));
        EXPECT_EQ(admin_post("/healthcheck/ok").status, 200);
        EXPECT_EQ(admin("/ready").status, 200);
      },
      ebpf() ? "failed health check under load (ebpf)"
             : "failed health check under load (iptables)");
  EXPECT_GT(n.keepalive, 100u);
  EXPECT_EQ(n.failed, 0u) << n.first_failure;
  EXPECT_GT(stat("listener.outbound.downstream_cx_drain_close"), 10u);
}

// SIGTERM under load with enroll --fail-open: the listeners close, so new connections go
// straight to the server; what the sidecar had is answered; then it starts again.
TEST_P(SidecarDrain, SigtermWithFailOpenUnderLoadFailsNoRequest) {
  if (!ebpf()) GTEST_SKIP() << "--fail-open is eBPF only";
  install_->enroll(*app_, "--fail-open");
  start_nginx(*srv1_, kSrv1 + ":9080", "v1");
  start_nginx(*srv2_, kSrv2 + ":9080", "v2");
  start_routed_proxy();
  std::unique_ptr<Proc> proxy = take_proxy();
  LoadCounts n = under_load(
      client(), tmp_->file("load-counts"), 3.0, "198.18.2.3", 9080,
      [&] {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        ASSERT_EQ(::kill(proxy->pid(), SIGTERM), 0);
        EXPECT_EQ(proxy->wait_for(4000), std::optional<int>(0)) << slurp(proxy_log());
        start_routed_proxy();
      },
      "SIGTERM drain under load, --fail-open (ebpf)");
  EXPECT_GT(n.keepalive, 100u);
  EXPECT_GT(install_->counter("fail_open"), 0u);
  EXPECT_EQ(n.failed, 0u) << n.first_failure;
}

using HotRestart = ProxyMesh;

// Two hot restarts under load (epoch 0 -> 1 -> 2): each new proxy takes the listeners and
// the admin socket, each old one drains and exits 0 by itself; no request fails.
TEST_P(HotRestart, TwoRestartsUnderLoadLoseNoRequest) {
  start_nginx(*srv1_, kSrv1 + ":9080", "v1");
  start_nginx(*srv2_, kSrv2 + ":9080", "v2");
  start_routed_proxy();
  std::unique_ptr<Proc> old = take_proxy();
  auto epoch_is = [&](int want) {
    for (int i = 0; i < 100; ++i) {
      HttpResponse r = admin("/server_info");
      if (r.status == 200 &&
          r.body.find("\"restart_epoch\": " + std::to_string(want)) != std::string::npos)
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  };
  LoadCounts n = under_load(
      client(), tmp_->file("load-counts"), 5.0, "198.18.2.3", 9080,
      [&] {
        for (int epoch = 1; epoch <= 2; ++epoch) {
          std::this_thread::sleep_for(std::chrono::seconds(1));
          start_routed_proxy("--restart-epoch " + std::to_string(epoch));
          EXPECT_TRUE(epoch_is(epoch)) << "epoch " << epoch << " does not answer /server_info";
          // The parent drains (its keep-alive connection closes after its next response) and
          // exits by itself, well before --parent-shutdown-time-s (3 s) would end it.
          EXPECT_EQ(old->wait_for(5000), std::optional<int>(0)) << "epoch " << epoch - 1;
          old = take_proxy();
        }
      },
      ebpf() ? "two hot restarts under load (ebpf)" : "two hot restarts under load (iptables)");
  EXPECT_GT(n.keepalive, 100u);
  EXPECT_GT(n.fresh, 100u);
  EXPECT_EQ(n.failed, 0u) << n.first_failure;
  // Counters continue: each old proxy's arrive as it exits, so the last one counts every
  // request of the run.
  uint64_t counted = 0;
  for (int i = 0; i < 50 && counted != n.sent; ++i) {
    counted = stat("listener.outbound.downstream_rq_total");
    if (counted != n.sent) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(counted, n.sent);
  HttpResponse info = admin("/server_info");
  EXPECT_NE(info.body.find("\"state\": \"LIVE\""), std::string::npos) << info;
  EXPECT_EQ(stat("listener.outbound.downstream_cx_no_destination"), 0u);
}

// SIGTERM to the old proxy as soon as it handed its sockets over (Kubernetes stopping the
// old container), before or just after the new one says it is LIVE: the old one drains
// without touching the sockets it handed over (a shutdown would stop the new proxy's
// listeners too), answers its slow request in flight, and exits; the new one serves.
TEST_P(HotRestart, SigtermToTheOldProxyDuringARestartLeavesTheNewOneServing) {
  start_py_http(*srv1_, kSrv1, 8080, "py");
  start_proxy("--drain-time-s 4");
  std::unique_ptr<Proc> old = take_proxy();
  const std::string file = tmp_->file("slow");
  Proc slow(client(), [&] {
    HttpConn c(kSrv1, 8080);
    HttpResponse r;
    if (c.send(get("py", "/late?s=2&tag=inflight"))) r = c.read(6000);
    std::ofstream(file) << r.status << " " << r.body.substr(0, 8);
    return 0;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  start_proxy("--drain-time-s 4 --restart-epoch 1");  // the old proxy may answer its /ready
  bool handed = false;
  for (int i = 0; i < 500 && !handed; ++i) {
    handed = slurp(proxy_log()).find("listeners handed over") != std::string::npos;
    if (!handed) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_TRUE(handed) << slurp(proxy_log());
  ASSERT_EQ(::kill(old->pid(), SIGTERM), 0);
  for (int i = 0; i < 10; ++i) {
    HttpResponse r = http(kSrv1, 8080, get("py", "/"));
    EXPECT_EQ(r.status, 200) << "request " << i << " after the SIGTERM: " << r;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(slow.wait(), 0);
  std::string seen;
  std::getline(std::ifstream(file), seen);
  EXPECT_EQ(seen, "200 inflight");
  EXPECT_EQ(old->wait_for(5000), std::optional<int>(0));
  EXPECT_EQ(http(kSrv1, 8080, get("py", "/")).status, 200);
}

INSTANTIATE_TEST_SUITE_P(Modes, SidecarDrain, ::testing::Values(Mode::ebpf, Mode::iptables),
                         mode_name);

INSTANTIATE_TEST_SUITE_P(Modes, HotRestart, ::testing::Values(Mode::ebpf, Mode::iptables),
                         mode_name);

INSTANTIATE_TEST_SUITE_P(Modes, SidecarRestart, ::testing::Values(Mode::ebpf, Mode::iptables),
                         mode_name);

INSTANTIATE_TEST_SUITE_P(Modes, LoaderUpgrade, ::testing::Values(Mode::ebpf, Mode::iptables),
                         mode_name);

}  // namespace
}  // namespace sm::test
