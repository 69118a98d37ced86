// The sidecar under a seccomp profile that blocks io_uring (issue 12): started through
// sm-no-io-uring (a real seccomp filter answering io_uring_setup/enter/register with EPERM,
// as Docker's and containerd's default profiles do, or ENOSYS), --event-loop auto falls back
// to epoll, says so, and proxies real HTTP; --event-loop uring refuses to start and says
// why. The whole proxy suite also runs under the filter (CMakeLists.txt: e2e.no_io_uring.*).
#include <sys/wait.h>

#include <fstream>
#include <thread>

#include "mesh.h"

namespace sm::test {
namespace {

class EventLoop : public ProxyMesh {
 protected:
  void SetUp() override {
    ProxyMesh::SetUp();
    if (IsSkipped()) return;
    start_nginx(*srv1_, kSrv1 + ":9080", "v1");
    files_ = start_nginx(*srv2_, kSrv2 + ":9080", "v2") + "/files/";
  }
  // The routed proxy under the filter.
  void start_blocked(const std::string& err, const std::string& extra) {
    ProxyFlags f;
    f.routes = true;
    f.extra = extra;
    f.wrapper = {no_io_uring_path(), "--errno", err, "--"};
    launch_proxy(f);
  }
  std::string files_;
};

TEST_P(EventLoop, UnderAFilterThatBlocksIoUringAutoFallsBackToEpollAndProxies) {
  start_blocked("EPERM", "--event-loop auto");
  EXPECT_EQ(stat("server.event_loop.epoll"), 1u);
  EXPECT_EQ(stat("server.event_loop.uring"), 0u);
  const std::string log = slurp(proxy_log());
  EXPECT_NE(log.find("event loop epoll: io_uring unavailable: "), std::string::npos) << log;
  EXPECT_NE(log.find("Operation not permitted"), std::string::npos) << log;

  // Routed keep-alive requests, round robin over both servers.
  auto rs = http_seq(kSrv1, 9080, std::vector<std::string>(20, get("reviews:9080", "/")));
  ASSERT_EQ(rs.size(), 20u);
  std::map<std::string, int> served;
  for (const auto& r : rs) ++served[r.status == 200 ? r.header("x-served-by") : r.error];
  EXPECT_EQ(served["v1"], 10) << ::testing::PrintToString(served);
  EXPECT_EQ(served["v2"], 10) << ::testing::PrintToString(served);
  // A passthrough request (no virtual host) reaches the address the client dialed.
  HttpResponse p = http(kSrv2, 9080, get(kSrv2 + ":9080", "/"));
  EXPECT_EQ(p.status, 200) << p;
  EXPECT_EQ(p.header("x-served-by"), "v2") << p;
  // A body larger than the socket buffers goes through the receive buffer pool intact.
  std::string big;
  for (int i = 0; big.size() < (6u << 20); ++i) big += std::to_string(i) + "\n";
  std::ofstream(files_ + "big.txt") << big;
  HttpResponse f = http(kSrv2, 9080, get(kSrv2 + ":9080", "/files/big.txt"), 20000);
  EXPECT_EQ(f.status, 200) << f;
  EXPECT_TRUE(f.body == big) << "body of " << f.body.size() << " bytes, want " << big.size();
  EXPECT_EQ(stat("cluster.outbound|9080||reviews.service.consul.upstream_rq_2xx"), 20u);
}

TEST_P(EventLoop, AKernelWithoutIoUringFallsBackToo) {
  start_blocked("ENOSYS", "");  // the default is auto
  EXPECT_EQ(stat("server.event_loop.epoll"), 1u);
  const std::string log = slurp(proxy_log());
  EXPECT_NE(log.find("Function not implemented"), std::string::npos) << log;
  HttpResponse r = http(kSrv1, 9080, get("reviews:9080", "/v1/"));
  EXPECT_EQ(r.status, 200) << r;
  EXPECT_EQ(r.header("x-served-by"), "v1") << r;
}

TEST_P(EventLoop, UringAskedForUnderTheFilterFailsAtStartAndSaysWhy) {
  const std::string log = tmp_->file("uring-refused.log");
  keep_log("sockmesh-proxy --event-loop uring", log);
  Proc p = spawn(install_->place(*app_, kProxyUid, kProxyUid),
                 {no_io_uring_path(), "--", proxy_path(), "--event-loop", "uring", "--workers", "1",
                  "--config", routes_path()},
                 log);
  // It must exit on its own (a hang is the failure, not a test timeout).
  siginfo_t info{};
  for (int i = 0; i < 250; ++i) {
    info = {};
    if (::waitid(P_PID, static_cast<id_t>(p.pid()), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == p.pid())
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(info.si_pid, p.pid()) << "still running 5 s after start:\n" << slurp(log);
  EXPECT_EQ(p.wait(), 1) << slurp(log);
  const std::string out = slurp(log);
  EXPECT_NE(out.find("--event-loop uring: io_uring is not available here: "), std::string::npos)
      << out;
  EXPECT_NE(out.find("Operation not permitted"), std::string::npos) << out;
  EXPECT_NE(out.find("--event-loop epoll or auto"), std::string::npos) << out;
  // Nothing was left listening.
  EXPECT_FALSE(wait_port(Place::in(*app_), "127.0.0.1", 15000, 200));
}

TEST_P(EventLoop, EpollChosenByNameRunsWithoutAFilter) {
  ProxyFlags f;
  f.routes = true;
  f.extra = "--event-loop epoll";
  launch_proxy(f);
  EXPECT_EQ(stat("server.event_loop.epoll"), 1u);
  HttpResponse r = http(kSrv1, 9080, get("reviews:9080", "/v1/"));
  EXPECT_EQ(r.status, 200) << r;
}

INSTANTIATE_TEST_SUITE_P(Modes, EventLoop, ::testing::Values(Mode::ebpf, Mode::iptables),
                         mode_name);

}  // namespace
}  // namespace sm::test
