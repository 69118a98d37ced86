// Routing with --config (routes.json.in): virtual hosts by Host, round robin over a
// cluster's endpoints, header and prefix routes, weighted clusters, passthrough for unknown
// hosts and 404 for a virtual host without a matching route.
#include <cmath>

#include "mesh.h"

namespace sm::test {
namespace {

// A service address the app dials (as it would get from Consul DNS). It is srv2's second
// address, where nothing listens on 9080 (nginx binds srv2's first address): a request
// that reached it instead of being routed is refused at once and answered with 503.
const std::string kVip = "198.18.2.100";

class Routing : public ProxyMesh {
 protected:
  void SetUp() override {
    ProxyMesh::SetUp();
    if (IsSkipped()) return;
    srv2_->ip("addr add " + kVip + "/32 dev eth0");
    start_nginx(*srv1_, kSrv1 + ":9080", "v1");
    start_nginx(*srv2_, kSrv2 + ":9080", "v2");
    start_routed_proxy();
  }

  // Which server answered each request: {"v1": n, "v2": m, other: k}.
  static std::map<std::string, int> tally(const std::vector<HttpResponse>& rs) {
    std::map<std::string, int> n;
    for (const auto& r : rs)
      ++n[r.status == 200 ? r.header("x-served-by") : "HTTP " + std::to_string(r.status)];
    return n;
  }
  std::vector<HttpResponse> repeat(const std::string& request, int times) {
    return http_seq(kVip, 9080, std::vector<std::string>(static_cast<size_t>(times), request));
  }
};

TEST_P(Routing, RoundRobinOverBothEndpointsForEveryDomain) {
  // One connection stays on one worker: strict alternation.
  auto n = tally(repeat(get("reviews:9080", "/reviews/1"), 40));
  EXPECT_EQ(n["v1"], 20) << ::testing::PrintToString(n);
  EXPECT_EQ(n["v2"], 20) << ::testing::PrintToString(n);
  // Every domain of the virtual host routes the same way.
  for (const char* host : {"reviews.service.consul", "reviews.service.consul:9080", "reviews"}) {
    auto m = tally(repeat(get(host, "/"), 4));
    EXPECT_EQ(m["v1"], 2) << host << " " << ::testing::PrintToString(m);
    EXPECT_EQ(m["v2"], 2) << host << " " << ::testing::PrintToString(m);
  }
  // A connection per request: both workers alternate on their own.
  std::vector<HttpResponse> fresh;
  for (int i = 0; i < 20; ++i) fresh.push_back(http(kVip, 9080, get("reviews:9080", "/")));
  auto f = tally(fresh);
  EXPECT_EQ(f["v1"] + f["v2"], 20) << ::testing::PrintToString(f);
  EXPECT_LE(std::abs(f["v1"] - f["v2"]), 2) << ::testing::PrintToString(f);
  EXPECT_EQ(stat("cluster.outbound|9080||reviews.service.consul.upstream_rq_2xx"), 72u);
  EXPECT_EQ(stat("listener.outbound.downstream_rq_passthrough"), 0u);
}

TEST_P(Routing, HeaderMatchSendsJasonToV2Only) {
  auto jason = tally(repeat(get("reviews:9080", "/", "end-user: jason\r\n"), 10));
  EXPECT_EQ(jason["v2"], 10) << ::testing::PrintToString(jason);
  // Another user falls through to the default route (both versions).
  auto other = tally(repeat(get("reviews:9080", "/", "end-user: mary\r\n"), 10));
  EXPECT_EQ(other["v1"], 5) << ::testing::PrintToString(other);
  EXPECT_EQ(other["v2"], 5) << ::testing::PrintToString(other);
  EXPECT_EQ(stat("cluster.outbound|9080|v2|reviews.service.consul.upstream_rq_total"), 10u);
}

TEST_P(Routing, PrefixRouteGoesToV1WithItsPrefixRewritten) {
  auto rs = repeat(get("reviews:9080", "/v1/reviews/7?x=1"), 6);
  auto n = tally(rs);
  EXPECT_EQ(n["v1"], 6) << ::testing::PrintToString(n);
  for (const auto& r : rs) EXPECT_EQ(r.header("x-echo-uri"), "/reviews/7?x=1") << r;
  // "/v1" alone does not match the "/v1/" prefix: default route, both versions.
  auto d = tally(repeat(get("reviews:9080", "/v1"), 4));
  EXPECT_EQ(d["v1"], 2) << ::testing::PrintToString(d);
  EXPECT_EQ(d["v2"], 2) << ::testing::PrintToString(d);
}

TEST_P(Routing, WeightedClustersSplit80To20) {
  constexpr int kRequests = 1000;
  auto n = tally(repeat(get("reviews:9080", "/weighted"), kRequests));
  EXPECT_EQ(n["v1"] + n["v2"], kRequests) << ::testing::PrintToString(n);
  // Binomial(1000, 0.8): standard deviation 12.6; 60 is more than 4.5 of them.
  EXPECT_NEAR(n["v1"], 800, 60) << ::testing::PrintToString(n);
  EXPECT_NEAR(n["v2"], 200, 60) << ::testing::PrintToString(n);
}

TEST_P(Routing, UnknownHostPassesThroughToTheOriginalDestination) {
  HttpResponse r2 = http(kSrv2, 9080, get("unknown.example", "/direct"));
  ASSERT_EQ(r2.status, 200) << r2;
  EXPECT_EQ(r2.header("x-served-by"), "v2");
  EXPECT_EQ(r2.header("server"), "sockmesh");
  HttpResponse r1 = http(kSrv1, 9080, get(kSrv1 + ":9080", "/direct"));
  ASSERT_EQ(r1.status, 200) << r1;
  EXPECT_EQ(r1.header("x-served-by"), "v1");
  // Passthrough goes where the app dialed: nothing at the service address.
  HttpResponse none = http(kVip, 9080, get("unknown.example", "/"));
  EXPECT_EQ(none.status, 503) << none;
  EXPECT_EQ(stat("listener.outbound.downstream_rq_passthrough"), 3u);
}

TEST_P(Routing, VirtualHostWithoutAMatchingRouteIs404) {
  // Short timeouts: a proxy that answers the same request again and again (it did) eats
  // memory until it is killed.
  HttpResponse nope = http(kVip, 9080, get("strict:9080", "/nope"), 2000);
  EXPECT_EQ(nope.status, 404) << nope;
  EXPECT_EQ(nope.header("server"), "sockmesh");
  HttpResponse only = http(kVip, 9080, get("strict", "/only"), 2000);
  ASSERT_EQ(only.status, 200) << only;
  EXPECT_EQ(only.header("x-served-by"), "v1");
  EXPECT_EQ(stat("listener.outbound.downstream_rq_no_route"), 1u);
  EXPECT_EQ(stat("listener.outbound.downstream_rq_4xx"), 1u);
}

INSTANTIATE_TEST_SUITE_P(Modes, Routing, ::testing::Values(Mode::ebpf, Mode::iptables), mode_name);

}  // namespace
}  // namespace sm::test
