// route_table.h: host -> virtual host -> route -> cluster, weighted splits, rewrites, and the
// runtime state a snapshot swap must keep.
#include "route/route_table.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <new>

#include "route_test_util.h"

// Counts heap allocations made while `g_counting` is set on this thread, to prove that
// routing a request allocates nothing. GCC cannot see that this new and delete are a pair.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {
thread_local bool g_counting = false;
thread_local size_t g_allocations = 0;
}  // namespace

void* operator new(size_t n) {
  if (g_counting) ++g_allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}

namespace sm::route {
namespace {

using test::cluster;
using test::endpoint;

constexpr const char* kV1 = "outbound|9080|v1|reviews.service.consul";
constexpr const char* kV2 = "outbound|9080|v2|reviews.service.consul";
constexpr const char* kV3 = "outbound|9080|v3|reviews.service.consul";

struct Fixture : ::testing::Test {
  ClusterStateRegistry states;
  std::shared_ptr<const RouteTable> bookinfo() {
    auto t = RouteTable::build(test::load_fixture("bookinfo.json"), states);
    EXPECT_TRUE(t.ok()) << t.error().message();
    return *t;
  }
};

RouteEntryConfig route_to(std::string cluster_name, RouteMatchConfig match = {}) {
  RouteEntryConfig r;
  r.match = std::move(match);
  if (r.match.value.empty()) r.match.value = "/";
  r.action.cluster = std::move(cluster_name);
  return r;
}

using RouteTableTest = Fixture;

TEST_F(RouteTableTest, UnknownHostPassesThrough) {
  auto t = bookinfo();
  RouteResult r = t->route({"198.18.0.12:9080", "/", "GET", {}}, 0);
  EXPECT_EQ(r.outcome, RouteOutcome::passthrough);
  EXPECT_EQ(r.virtual_host, nullptr);
  EXPECT_EQ(t->route({"", "/", "GET", {}}, 0).outcome, RouteOutcome::passthrough);
}

TEST_F(RouteTableTest, KnownHostWithoutMatchingRouteIsNoRoute) {
  RouteConfig config;
  config.clusters.push_back(cluster("c", {endpoint("198.18.0.1")}));
  config.virtual_hosts.push_back(
      {"vh", {"svc"}, {route_to("c", {RouteMatchConfig::PathKind::prefix, "/api", true, {}})}});
  auto t = RouteTable::build(config, states);
  ASSERT_TRUE(t.ok()) << t.error().message();
  RouteResult r = (*t)->route({"svc", "/other", "GET", {}}, 0);
  EXPECT_EQ(r.outcome, RouteOutcome::no_route);
  ASSERT_NE(r.virtual_host, nullptr);
  EXPECT_EQ(r.virtual_host->name(), "vh");
  EXPECT_EQ((*t)->route({"svc", "/api/1", "GET", {}}, 0).outcome, RouteOutcome::cluster);
}

TEST_F(RouteTableTest, FirstMatchingRouteWins) {
  RouteConfig config;
  for (const char* c : {"a", "b", "c"})
    config.clusters.push_back(cluster(c, {endpoint("198.18.0.1")}));
  using PK = RouteMatchConfig::PathKind;
  config.virtual_hosts.push_back(
      {"vh",
       {"svc"},
       {route_to("a", {PK::path, "/exact", true, {}}), route_to("b", {PK::prefix, "/", true, {}}),
        route_to("c", {PK::prefix, "/never", true, {}})}});
  auto t = *RouteTable::build(config, states);
  EXPECT_EQ(t->route({"svc", "/exact", "GET", {}}, 0).cluster->name(), "a");
  EXPECT_EQ(t->route({"svc", "/exact/", "GET", {}}, 0).cluster->name(), "b");
  EXPECT_EQ(t->route({"svc", "/never", "GET", {}}, 0).cluster->name(), "b");  // shadowed
}

TEST_F(RouteTableTest, BookinfoHeaderRouteThenWeightedDefault) {
  auto t = bookinfo();
  std::vector<http::Header> jason{{"end-user", "jason"}};
  for (uint64_t rnd = 0; rnd < 10; ++rnd) {
    RouteResult r = t->route({"reviews:9080", "/reviews/0", "GET", jason}, rnd);
    ASSERT_EQ(r.outcome, RouteOutcome::cluster);
    EXPECT_EQ(r.cluster->name(), kV2);
    EXPECT_EQ(r.route->config().name, "jason");
    EXPECT_EQ(r.route->timeout(), std::chrono::seconds(5));
  }
  std::map<std::string, int> seen;
  for (uint64_t rnd = 0; rnd < 100; ++rnd)
    ++seen[t->route({"reviews.service.consul", "/reviews/0", "GET", {}}, rnd).cluster->name()];
  EXPECT_EQ(seen[kV1], 50);
  EXPECT_EQ(seen[kV3], 50);
  EXPECT_EQ(seen.count(kV2), 0u);
}

TEST_F(RouteTableTest, WeightedSplitFollowsWeights) {
  RouteConfig config;
  for (const char* c : {"a", "b", "c", "zero"})
    config.clusters.push_back(cluster(c, {endpoint("198.18.0.1")}));
  RouteEntryConfig r;
  r.match.value = "/";
  r.action.weighted_clusters = {{"a", 50}, {"zero", 0}, {"b", 30}, {"c", 20}};
  config.virtual_hosts.push_back({"vh", {"svc"}, {r}});
  auto t = *RouteTable::build(config, states);
  const Route& route = t->virtual_hosts()[0].routes()[0];
  // Envoy: random % total picks the cluster whose cumulative range holds it.
  EXPECT_EQ(route.pick_cluster(0).name(), "a");
  EXPECT_EQ(route.pick_cluster(49).name(), "a");
  EXPECT_EQ(route.pick_cluster(50).name(), "b");
  EXPECT_EQ(route.pick_cluster(79).name(), "b");
  EXPECT_EQ(route.pick_cluster(80).name(), "c");
  EXPECT_EQ(route.pick_cluster(199).name(), "c");
  std::map<std::string, int> seen;
  for (uint64_t rnd = 0; rnd < 100'000; ++rnd) ++seen[route.pick_cluster(rnd * 7919).name()];
  EXPECT_EQ(seen["a"], 50'000);
  EXPECT_EQ(seen["b"], 30'000);
  EXPECT_EQ(seen["c"], 20'000);
  EXPECT_EQ(seen.count("zero"), 0u);
}

TEST_F(RouteTableTest, RewritesAndPolicies) {
  RouteConfig config = test::load_fixture("features.json");
  auto t = *RouteTable::build(config, states);
  const auto routes = t->virtual_hosts()[0].routes();
  // path match, case-insensitive: the whole matched path is swapped, the query kept
  EXPECT_EQ(routes[0].rewrite_path("/HEALTHZ?verbose=1"), "/ready?verbose=1");
  EXPECT_EQ(routes[0].timeout(), Duration(0));
  EXPECT_EQ(routes[0].retry_policy(), nullptr);
  EXPECT_EQ(routes[0].host_rewrite(), nullptr);
  EXPECT_EQ(routes[1].rewrite_path("/v2/x"), "/v2/x");  // no prefix_rewrite
  ASSERT_NE(routes[1].host_rewrite(), nullptr);
  EXPECT_EQ(*routes[1].host_rewrite(), "api-canary.consul");
  ASSERT_NE(routes[1].retry_policy(), nullptr);
  EXPECT_EQ(routes[1].retry_policy()->num_retries, 4u);
  EXPECT_EQ(routes[1].timeout(), std::chrono::milliseconds(2500));
  EXPECT_EQ(routes[2].timeout(), std::chrono::seconds(15));  // Envoy's default

  RouteConfig prefix_config;
  prefix_config.clusters.push_back(cluster("c", {endpoint("198.18.0.1")}));
  RouteEntryConfig r = route_to("c", {RouteMatchConfig::PathKind::prefix, "/api/", true, {}});
  r.action.prefix_rewrite = "/";
  prefix_config.virtual_hosts.push_back({"vh", {"svc"}, {r}});
  auto p = *RouteTable::build(prefix_config, states);
  EXPECT_EQ(p->virtual_hosts()[0].routes()[0].rewrite_path("/api/v1/x?y=1"), "/v1/x?y=1");
}

TEST_F(RouteTableTest, BuildValidatesConfigsMadeInCode) {
  RouteConfig config;
  config.virtual_hosts.push_back({"vh", {"svc"}, {route_to("missing")}});
  auto t = RouteTable::build(config, states);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message(),
            "virtual_hosts[0].routes[0].route.cluster: unknown cluster 'missing'");
}

TEST_F(RouteTableTest, RoutingDoesNotAllocate) {
  auto t = bookinfo();
  std::vector<http::Header> headers{{"Accept", "*/*"}, {"end-user", "jason"}, {"End-User", "x"}};
  g_allocations = 0;
  g_counting = true;
  size_t hits = 0;
  for (uint64_t rnd = 0; rnd < 100; ++rnd) {
    hits +=
        t->route({"REVIEWS.service.consul:9080", "/reviews/1?x=1", "GET", headers}, rnd).outcome ==
        RouteOutcome::cluster;
    hits += t->route({"reviews:9080", "/", "GET", {}}, rnd).outcome == RouteOutcome::cluster;
    hits += t->route({"unknown:80", "/", "GET", {}}, rnd).outcome == RouteOutcome::passthrough;
  }
  g_counting = false;
  EXPECT_EQ(hits, 300u);
  EXPECT_EQ(g_allocations, 0u);
}

TEST_F(RouteTableTest, ClusterStateSurvivesSnapshotSwap) {
  RouteConfig first;
  first.clusters.push_back(cluster(kV1, {endpoint("198.18.0.12"), endpoint("198.18.0.13")}));
  auto t1 = *RouteTable::build(first, states);
  const Cluster& c1 = *t1->find_cluster(kV1);
  c1.stats().upstream_rq_total.inc(7);
  c1.on_request_start(0);
  ASSERT_TRUE(c1.try_acquire(Resource::request));

  // Same name, one endpoint kept, one replaced: counters, breaker counts and the kept
  // endpoint's active requests carry over; the new endpoint starts fresh.
  RouteConfig second;
  second.clusters.push_back(cluster(kV1, {endpoint("198.18.0.14"), endpoint("198.18.0.12")}));
  second.clusters.push_back(cluster(kV3, {endpoint("198.18.0.14")}));
  auto t2 = *RouteTable::build(second, states);
  const Cluster& c2 = *t2->find_cluster(kV1);
  EXPECT_EQ(c2.stats().upstream_rq_total.value(), 8u);
  EXPECT_EQ(c2.circuit_breaker().count(Resource::request), 1u);
  EXPECT_EQ(&c2.endpoint_state(1), &c1.endpoint_state(0));
  EXPECT_EQ(c2.endpoint_state(1).active_requests(), 1u);
  EXPECT_EQ(c2.endpoint_state(0).active_requests(), 0u);
  EXPECT_NE(t1->id(), t2->id());

  // The request that started under t1 ends under t2: same state, so the books balance.
  c2.on_request_end(1, 200);
  c2.release(Resource::request);
  EXPECT_EQ(c1.endpoint_state(0).active_requests(), 0u);
  EXPECT_EQ(c1.circuit_breaker().count(Resource::request), 0u);

  // A cluster no snapshot has any more is forgotten: a later one of that name starts at 0.
  EXPECT_EQ(states.live(), 2u);
  RouteConfig third;
  third.clusters.push_back(cluster(kV3, {endpoint("198.18.0.14")}));
  auto t3 = *RouteTable::build(third, states);
  t1.reset();
  t2.reset();
  EXPECT_EQ(states.live(), 1u);
  auto t4 = *RouteTable::build(first, states);
  EXPECT_EQ(t4->find_cluster(kV1)->stats().upstream_rq_total.value(), 0u);
}

TEST_F(RouteTableTest, RenderStatsUsesEnvoyNames) {
  auto t = bookinfo();
  const Cluster& reviews = *t->find_cluster("outbound|9080||reviews.service.consul");
  reviews.on_request_start(0);
  reviews.on_request_end(0, 503);
  auto stats = render_stats(*t, test::at_seconds(1));
  std::map<std::string, uint64_t> by_name(stats.begin(), stats.end());
  EXPECT_EQ(by_name.size(), stats.size());  // no duplicate names
  EXPECT_EQ(by_name["cluster.outbound|9080||reviews.service.consul.upstream_rq_total"], 1u);
  EXPECT_EQ(by_name["cluster.outbound|9080||reviews.service.consul.upstream_rq_5xx"], 1u);
  EXPECT_EQ(by_name["cluster.outbound|9080||reviews.service.consul.membership_total"], 3u);
  EXPECT_EQ(by_name.count("cluster.outbound|9080|v2|reviews.service.consul.upstream_rq_2xx"), 1u);
  EXPECT_EQ(by_name.count(
                "cluster.outbound|9080||ratings.service.consul.outlier_detection.ejections_active"),
            1u);
}

}  // namespace
}  // namespace sm::route
