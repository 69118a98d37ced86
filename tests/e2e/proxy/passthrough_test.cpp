// Bytes that are not HTTP/1.x pass through untouched (Redis, a server-first protocol,
// TLS-like records), and the inbound listener serves the workload's own port.
#include <sys/socket.h>

#include <thread>

#include "mesh.h"

namespace sm::test {
namespace {

using Passthrough = ProxyMesh;

TEST_P(Passthrough, RedisThroughTheOutboundListener) {
  start_redis(*srv1_, kSrv1, 6379);
  start_proxy();
  const std::string cli = "/usr/bin/redis-cli -h " + kSrv1 + " -p 6379 ";
  std::string out;
  EXPECT_EQ(sh_in(client(), cli + "SET sockmesh e2e-value", &out), 0) << out;
  EXPECT_EQ(out, "OK\n");
  EXPECT_EQ(sh_in(client(), cli + "GET sockmesh", &out), 0) << out;
  EXPECT_EQ(out, "e2e-value\n");
  // A raw RESP exchange, pipelined.
  std::string raw = run_in(client(), [&](std::string& o) {
    HttpConn c(kSrv1, 6379);
    c.send(
        "*1\r\n$4\r\nPING\r\n*3\r\n$6\r\nINCRBY\r\n$3\r\nctr\r\n$2\r\n41\r\n*2\r\n$4\r\nINCR\r\n$"
        "3\r\nctr\r\n");
    o = c.read_raw(19, 3000);
  });
  EXPECT_EQ(raw, "+PONG\r\n:41\r\n:42\r\n");
  // Many connections and requests: redis-benchmark.
  EXPECT_EQ(
      sh_in(client(),
            "/usr/bin/redis-benchmark -h " + kSrv1 + " -p 6379 -n 2000 -c 8 -t set,get -q", &out),
      0)
      << out;
  EXPECT_NE(out.find("SET: "), std::string::npos) << out;
  EXPECT_NE(out.find("GET: "), std::string::npos) << out;
  EXPECT_EQ(out.find("rror"), std::string::npos) << out;
  EXPECT_GE(stat("listener.outbound.downstream_cx_tcp"), 4u + 8u);
  EXPECT_EQ(stat("listener.outbound.downstream_cx_http1"), 0u);
  EXPECT_GT(stat("listener.outbound.tcp_bytes_sent"), 2000u * 20);
}

TEST_P(Passthrough, ServerFirstProtocolWorksAfterTheSniffTimeout) {
  start_py(*srv1_, "greet", kSrv1, 2525);
  start_proxy();
  std::string out = run_in(client(), [&](std::string& o) {
    HttpConn c(kSrv1, 2525);
    auto t0 = std::chrono::steady_clock::now();
    std::string greeting = c.read_raw(24, 3000);  // "220 sockmesh-e2e ready\r\n"
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    c.send("HELO app\r\n");
    std::string helo = c.read_raw(14, 3000);
    c.send("QUIT\r\n");
    std::string bye = c.read_raw(9, 3000);
    o = greeting + helo + bye + c.wait_closed(2000) + " " + std::to_string(ms);
  });
  EXPECT_EQ(out.rfind("220 sockmesh-e2e ready\r\n250 HELO app\r\n221 bye\r\neof ", 0), 0u) << out;
  int ms = std::atoi(out.substr(out.rfind(' ') + 1).c_str());
  EXPECT_GE(ms, 80) << "the greeting needs the sniff timeout (100 ms) to pass first";
  EXPECT_LE(ms, 1000);
  EXPECT_EQ(stat("listener.outbound.downstream_cx_server_first"), 1u);
}

TEST_P(Passthrough, TlsLikeBytesReachTheServerUnchanged) {
  start_py(*srv1_, "echo", kSrv1, 7443);
  start_proxy();
  // A TLS ClientHello record header, then arbitrary bytes; the client half-closes and
  // expects everything back, then EOF.
  std::string payload = std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) +
                        random_bytes(2 * 1024 * 1024, 43);
  std::string out = run_in(client(), [&](std::string& o) {
    HttpConn c(kSrv1, 7443);
    std::thread writer([&] {
      c.send(payload);
      ::shutdown(c.fd(), SHUT_WR);
    });
    std::string back = c.read_raw(payload.size(), 10000);
    writer.join();
    o = sha256_hex(back) + " " + std::to_string(back.size()) + " " + c.wait_closed(2000);
  });
  EXPECT_EQ(out, sha256_hex(payload) + " " + std::to_string(payload.size()) + " eof");
  EXPECT_EQ(stat("listener.outbound.downstream_cx_tcp"), 1u);
  EXPECT_EQ(stat("listener.outbound.downstream_cx_http1"), 0u);
  EXPECT_EQ(stat("listener.outbound.tcp_bytes_sent"), payload.size());
  EXPECT_EQ(stat("listener.outbound.tcp_bytes_received"), payload.size());
}

INSTANTIATE_TEST_SUITE_P(Modes, Passthrough, ::testing::Values(Mode::ebpf, Mode::iptables),
                         mode_name);

using Inbound = ProxyMesh;

TEST_P(Inbound, RequestToTheWorkloadPortArrivesThroughTheInboundListener) {
  // The workload: nginx on 0.0.0.0:9080 in the app netns (in the install's cgroup).
  Place workload = install_->place(*app_);
  start_nginx(*app_, "0.0.0.0:9080", "app", &workload);
  start_proxy();
  // A client on another host dials the workload's address.
  auto rs = HttpResponse::parse_list(run_in(Place::in(*srv1_, kAppUid), [&](std::string& out) {
    std::vector<HttpResponse> list;
    for (int i = 0; i < 3; ++i) {
      HttpConn c(kApp, 9080);
      c.send(get(kApp + ":9080", "/in/" + std::to_string(i)));
      list.push_back(c.read(3000));
    }
    out = HttpResponse::serialize_list(list);
  }));
  ASSERT_EQ(rs.size(), 3u);
  for (const auto& r : rs) {
    ASSERT_EQ(r.status, 200) << r;
    EXPECT_EQ(r.body, "app\n");
    EXPECT_EQ(r.header("server"), "sockmesh") << r;
    EXPECT_TRUE(r.has("x-sockmesh-upstream-service-time")) << r;
    EXPECT_FALSE(r.header("x-echo-request-id").empty()) << r;
  }
  EXPECT_EQ(stat("listener.inbound.downstream_cx_total"), 3u);
  EXPECT_EQ(stat("listener.inbound.downstream_cx_http1"), 3u);
  EXPECT_EQ(stat("listener.inbound.downstream_rq_total"), 3u);
  EXPECT_EQ(stat("listener.inbound.downstream_rq_2xx"), 3u);
  EXPECT_EQ(stat("listener.outbound.downstream_cx_total"), 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, Inbound, ::testing::Values(Mode::ebpf, Mode::iptables), mode_name);

}  // namespace
}  // namespace sm::test
