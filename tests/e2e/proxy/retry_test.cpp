// Retries and circuit breaking (routes.json.in: "retry", "py" /flaky, "breaker").
#include <thread>

#include "mesh.h"

namespace sm::test {
namespace {

const std::string kVip = "198.18.2.100";

using Retry = ProxyMesh;

TEST_P(Retry, ConnectFailureIsRetriedOnTheLiveEndpoint) {
  // Cluster half-dead: srv1:9999 refuses, srv1:9080 is nginx; connect-failure,5xx x2.
  start_nginx(*srv1_, kSrv1 + ":9080", "v1");
  start_routed_proxy();
  std::vector<HttpResponse> rs;
  for (int i = 0; i < 6; ++i) rs.push_back(http(kVip, 80, get("retry", "/fresh")));
  auto same = http_seq(kVip, 80, std::vector<std::string>(10, get("retry", "/kept")));
  rs.insert(rs.end(), same.begin(), same.end());
  ASSERT_EQ(rs.size(), 16u);
  for (const auto& r : rs) {
    EXPECT_EQ(r.status, 200) << r;
    EXPECT_EQ(r.header("x-served-by"), "v1") << r;
  }
  uint64_t retries = stat("cluster.half-dead.upstream_rq_retry");
  EXPECT_GE(retries, 1u);
  EXPECT_EQ(stat("listener.outbound.downstream_rq_retry"), retries);
  EXPECT_EQ(stat("cluster.half-dead.upstream_cx_connect_fail"), retries);
  EXPECT_EQ(stat("listener.outbound.downstream_rq_2xx"), 16u);
}

TEST_P(Retry, A503IsRetriedAndTheClientSeesTheSecondAnswer) {
  // /flaky answers 503 the first time it sees an x-request-id, 200 the second time.
  start_py_http(*srv1_, kSrv1, 8080, "py");
  start_routed_proxy();
  for (int i = 0; i < 4; ++i) {
    HttpResponse r = http(kVip, 8080, get("py:8080", "/flaky/" + std::to_string(i)));
    EXPECT_EQ(r.status, 200) << r;
    EXPECT_EQ(r.body, "recovered") << r;
  }
  EXPECT_EQ(stat("cluster.py.upstream_rq_retry"), 4u);
  EXPECT_EQ(stat("cluster.py.upstream_rq_5xx"), 4u);
  EXPECT_EQ(stat("cluster.py.upstream_rq_2xx"), 4u);
  EXPECT_EQ(stat("listener.outbound.downstream_rq_5xx"), 0u);
  // A route without a retry policy hands the 503 to the client (a new x-request-id).
  HttpResponse plain = http(kSrv1, 8080, get("not-routed", "/flaky"));
  EXPECT_EQ(plain.status, 503) << plain;
}

TEST_P(Retry, CircuitBreakerOverflowIs503) {
  // Cluster breaker: max_requests 1, its endpoint the python server.
  start_py_http(*srv1_, kSrv1, 8080, "py");
  start_routed_proxy();
  auto rs = HttpResponse::parse_list(run_in(client(), [&](std::string& out) {
    HttpConn slow(kVip, 8080);
    slow.send(get("breaker", "/slow?s=1.5"));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    // Connect just before sending: a client silent for longer than the sniff timeout
    // would be taken for a server-first protocol and passed through.
    HttpConn fast(kVip, 8080);
    fast.send(get("breaker", "/"));
    std::vector<HttpResponse> list{fast.read(2000), slow.read(3000)};
    out = HttpResponse::serialize_list(list);
  }));
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].status, 503) << rs[0];
  EXPECT_NE(rs[0].body.find("overflow"), std::string::npos) << rs[0].body;
  EXPECT_LE(rs[0].elapsed_ms, 500) << "an overflow is refused at once";
  EXPECT_EQ(rs[1].status, 200) << rs[1];
  EXPECT_EQ(rs[1].body, "slow");
  EXPECT_EQ(stat("cluster.breaker.upstream_rq_pending_overflow"), 1u);
  EXPECT_EQ(stat("listener.outbound.downstream_rq_overflow"), 1u);
  // Once the slow one is done the breaker lets requests through again.
  HttpResponse after = http(kVip, 8080, get("breaker", "/"), 2000);
  EXPECT_EQ(after.status, 200) << after;
}

INSTANTIATE_TEST_SUITE_P(Modes, Retry, ::testing::Values(Mode::ebpf, Mode::iptables), mode_name);

}  // namespace
}  // namespace sm::test
