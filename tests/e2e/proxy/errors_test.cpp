// Errors a user can read: upstream failures become 502/503/504 with a body and a counter;
// bad or slow clients get 400/408/414/431 and a clean close; idle and vanished clients are
// cleaned up while the proxy keeps serving.
#include <sys/socket.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "mesh.h"

namespace sm::test {
namespace {

const std::string kVip = "198.18.2.100";

using Errors = ProxyMesh;

TEST_P(Errors, EndpointRefusingConnectionsIs503WithABody) {
  start_routed_proxy();
  HttpResponse r = http(kVip, 80, get("dead", "/"));
  EXPECT_EQ(r.status, 503) << r;
  EXPECT_EQ(r.header("server"), "sockmesh");
  EXPECT_NE(r.body.find("upstream connect error"), std::string::npos) << r.body;
  EXPECT_EQ(r.header("content-length"), std::to_string(r.body.size()));
  EXPECT_EQ(stat("listener.outbound.downstream_rq_upstream_connect_fail"), 1u);
  EXPECT_EQ(stat("cluster.dead.upstream_cx_connect_fail"), 1u);
  EXPECT_EQ(stat("listener.outbound.downstream_rq_5xx"), 1u);
}

TEST_P(Errors, ClusterWithoutEndpointsIs503NoHealthyUpstream) {
  start_routed_proxy();
  HttpResponse r = http(kVip, 80, get("empty", "/"), 2000);
  EXPECT_EQ(r.status, 503) << r;
  EXPECT_EQ(r.body, "no healthy upstream");
  EXPECT_EQ(stat("listener.outbound.downstream_rq_no_healthy_upstream"), 1u);
  EXPECT_EQ(stat("cluster.empty.upstream_cx_none_healthy"), 1u);
}

TEST_P(Errors, ConnectTimeoutIs503WithinTheClustersConnectTimeout) {
  // The blackhole cluster's endpoint is srv1:9, where SYNs are dropped; connect_timeout 0.5s.
  sh_ok("ip netns exec " + srv1_->name() + " iptables -w -A INPUT -p tcp --dport 9 -j DROP");
  start_routed_proxy();
  HttpResponse r = http(kVip, 80, get("blackhole", "/"), 5000);
  EXPECT_EQ(r.status, 503) << r;
  EXPECT_NE(r.body.find("upstream connect error"), std::string::npos) << r.body;
  EXPECT_GE(r.elapsed_ms, 450) << r;
  EXPECT_LE(r.elapsed_ms, 1500) << r;
  EXPECT_EQ(stat("cluster.blackhole.upstream_cx_connect_timeout"), 1u);
  EXPECT_EQ(stat("listener.outbound.downstream_rq_upstream_connect_fail"), 1u);
}

TEST_P(Errors, RouteTimeoutIs504) {
  start_py_http(*srv1_, kSrv1, 8080, "py");
  start_routed_proxy();
  // Route "/slow" has "timeout": "0.5s"; the server sleeps 3 s.
  HttpResponse r = http(kVip, 8080, get("py:8080", "/slow?s=3"), 5000);
  EXPECT_EQ(r.status, 504) << r;
  EXPECT_EQ(r.body, "upstream request timeout");
  EXPECT_GE(r.elapsed_ms, 450) << r;
  EXPECT_LE(r.elapsed_ms, 1500) << r;
  EXPECT_EQ(stat("listener.outbound.downstream_rq_upstream_timeout"), 1u);
  EXPECT_EQ(stat("cluster.py.upstream_rq_timeout"), 1u);
  // The same server answers in time on a route without that timeout.
  HttpResponse ok = http(kVip, 8080, get("py:8080", "/echo"));
  EXPECT_EQ(ok.status, 200) << ok;
}

TEST_P(Errors, UpstreamResetOrCloseBeforeTheResponseIs502) {
  start_py_http(*srv1_, kSrv1, 8080, "py");
  start_routed_proxy();
  HttpResponse reset = http(kVip, 8080, get("py:8080", "/reset"));
  EXPECT_EQ(reset.status, 502) << reset;
  EXPECT_NE(reset.body.find("disconnect/reset before headers"), std::string::npos) << reset.body;
  HttpResponse closed = http(kVip, 8080, get("py:8080", "/close"));
  EXPECT_EQ(closed.status, 502) << closed;
  // Passthrough has the same failure path.
  HttpResponse direct = http(kSrv1, 8080, get("anything", "/reset"));
  EXPECT_EQ(direct.status, 502) << direct;
  EXPECT_EQ(stat("listener.outbound.downstream_rq_upstream_reset"), 3u);
  EXPECT_EQ(stat("listener.outbound.downstream_rq_5xx"), 3u);
}

INSTANTIATE_TEST_SUITE_P(Modes, Errors, ::testing::Values(Mode::ebpf, Mode::iptables), mode_name);

// Bad input and limits, against nginx by passthrough.
class Limits : public ProxyMesh {
 protected:
  void SetUp() override {
    ProxyMesh::SetUp();
    if (IsSkipped()) return;
    nginx_dir_ = start_nginx(*srv1_, kSrv1 + ":9080", "v1");
  }
  void start(const std::string& flags) { start_proxy(flags); }

  // Sends raw bytes, reads one response, then how the connection ended ("eof", "reset",
  // "open", "data") goes into `error` and the time it took into the "closed-after-ms" header.
  HttpResponse exchange(const std::string& bytes, int close_wait_ms = 2000) {
    return HttpResponse::parse(run_in(client(), [&](std::string& out) {
      HttpConn c(kSrv1, 9080);
      c.send(bytes);
      HttpResponse r = c.read(5000);
      auto t0 = std::chrono::steady_clock::now();
      std::string how = c.wait_closed(close_wait_ms);
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - t0)
                    .count();
      r.headers.emplace_back("closed-after-ms", std::to_string(ms));
      r.error = r.error.empty() ? how : r.error + "; then " + how;
      out = r.serialize();
    }));
  }

  std::string nginx_dir_;
};

TEST_P(Limits, MalformedRequestLineIs400AndACleanClose) {
  start("");
  HttpResponse r = exchange("GET /a b HTTP/1.1\r\nHost: v1\r\n\r\n");
  EXPECT_EQ(r.status, 400) << r;
  EXPECT_EQ(r.header("connection"), "close") << r;
  EXPECT_EQ(r.error, "eof") << "the proxy must close with a FIN after the 400, not a reset";
  EXPECT_EQ(stat("listener.outbound.downstream_rq_bad_request"), 1u);
  EXPECT_EQ(stat("listener.outbound.downstream_rq_4xx"), 1u);
}

TEST_P(Limits, HeadersOverTheLimitAre431) {
  start("--max-request-headers-kb 8");
  std::string big;
  for (int i = 0; i < 40; ++i)
    big += "x-filler-" + std::to_string(i) + ": " + std::string(250, 'f') + "\r\n";
  HttpResponse r = exchange(get("v1", "/", big));
  EXPECT_EQ(r.status, 431) << r;
  EXPECT_EQ(r.error, "eof");
  // Just under the limit passes.
  HttpResponse ok =
      http(kSrv1, 9080, get("v1", "/", "x-filler: " + std::string(7000, 'f') + "\r\n"));
  EXPECT_EQ(ok.status, 200) << ok;
}

TEST_P(Limits, RequestLineOverTheLimitIs414) {
  start("--max-request-headers-kb 8");
  HttpResponse r = exchange(get("v1", "/" + std::string(9000, 'a')));
  EXPECT_EQ(r.status, 414) << r;
  EXPECT_EQ(r.error, "eof");
  EXPECT_EQ(stat("listener.outbound.downstream_rq_bad_request"), 1u);
}

TEST_P(Limits, SlowlorisGets408AfterTheHeadersTimeout) {
  start("--request-headers-timeout-ms 500");
  HttpResponse r = HttpResponse::parse(run_in(client(), [&](std::string& out) {
    HttpConn c(kSrv1, 9080);
    c.send("GET / HTTP/1.1\r\nHost: v1\r\nX-Slow: ");  // half a head, then silence
    auto t0 = std::chrono::steady_clock::now();
    HttpResponse resp = c.read(3000);
    resp.elapsed_ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count());
    resp.error = c.wait_closed(2000);
    out = resp.serialize();
  }));
  EXPECT_EQ(r.status, 408) << r;
  EXPECT_GE(r.elapsed_ms, 450);
  EXPECT_LE(r.elapsed_ms, 1500);
  EXPECT_EQ(r.error, "eof");
  EXPECT_EQ(stat("listener.outbound.downstream_rq_header_timeout"), 1u);
}

TEST_P(Limits, IdleKeepAliveConnectionIsClosed) {
  start("--idle-timeout-ms 600");
  HttpResponse r = exchange(get("v1", "/"), 3000);
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(r.error, "eof") << r;
  int after = std::stoi(r.header("closed-after-ms"));
  EXPECT_GE(after, 500) << r;
  EXPECT_LE(after, 1500) << r;
  EXPECT_EQ(stat("listener.outbound.downstream_cx_idle_timeout"), 1u);
}

TEST_P(Limits, ClientGoneMidResponseIsCountedAndTheProxyKeepsServing) {
  start("");
  std::ofstream(nginx_dir_ + "/files/big", std::ios::binary) << random_bytes(32 << 20, 41);
  std::string got = run_in(client(), [&](std::string& out) {
    HttpConn c(kSrv1, 9080);
    c.send(get("v1", "/files/big"));
    out = std::to_string(c.read_raw(256 * 1024, 3000).size());
    // Leaves with most of the body unread: the kernel resets the connection.
  });
  EXPECT_EQ(got, std::to_string(256 * 1024));
  uint64_t gone = 0;
  for (int i = 0; i < 100 && gone == 0; ++i) {
    gone = stat("listener.outbound.downstream_rq_client_gone");
    if (gone == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(gone, 1u);
  EXPECT_EQ(stat("listener.outbound.downstream_rq_active"), 0u);
  // The upstream connection that was carrying the body is closed too, not left hanging
  // (nginx would keep it until its send_timeout, 60 s).
  std::string est;
  for (int i = 0; i < 50; ++i) {
    est =
        sh_ok("ip netns exec " + srv1_->name() + " ss -Htn state established '( sport = :9080 )'");
    if (est.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(est, "") << "upstream connections still open 1 s after the client left";
  // Still serving, on new connections and the same upstream.
  for (int i = 0; i < 3; ++i) {
    HttpResponse r = http(kSrv1, 9080, get("v1", "/after"));
    EXPECT_EQ(r.status, 200) << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, Limits, ::testing::Values(Mode::ebpf, Mode::iptables), mode_name);

}  // namespace
}  // namespace sm::test
