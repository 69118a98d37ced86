// load_balancer.h: round robin, least request (P2C), weights, ejection and recovery, panic.
#include "route/load_balancer.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "route_test_util.h"

namespace sm::route {
namespace {

using test::at_seconds;
using test::cluster;
using test::endpoint;
using test::table_of;

std::vector<EndpointConfig> three() {
  return {endpoint("198.18.0.12"), endpoint("198.18.0.13"), endpoint("198.18.0.14")};
}

std::vector<uint32_t> picks(EndpointPicker& p, const Cluster& c, int n, TimePoint now) {
  std::vector<uint32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(p.pick(c, now, 0).value_or(99));
  return out;
}

void eject(const Cluster& c, uint32_t i, TimePoint now) {
  for (uint32_t k = 0; k < c.config().outlier_detection.consecutive_local_origin_failure; ++k)
    c.on_connect_failure(i, now);
  ASSERT_TRUE(c.endpoint_state(i).ejected(now));
}

struct LoadBalancerTest : ::testing::Test {
  ClusterStateRegistry states;
};

TEST_F(LoadBalancerTest, RoundRobinInOrder) {
  auto t = table_of(cluster("c", three()), states);
  EndpointPicker p;
  EXPECT_EQ(picks(p, t->clusters()[0], 7, at_seconds(1)),
            (std::vector<uint32_t>{0, 1, 2, 0, 1, 2, 0}));
  EndpointPicker from_two(2);
  EXPECT_EQ(picks(from_two, t->clusters()[0], 4, at_seconds(1)),
            (std::vector<uint32_t>{2, 0, 1, 2}));
}

TEST_F(LoadBalancerTest, EmptyClusterHasNoEndpoint) {
  auto t = table_of(cluster("c", {}), states);
  EndpointPicker p;
  EXPECT_EQ(p.pick(t->clusters()[0], at_seconds(1), 0), std::nullopt);
  EXPECT_EQ(t->clusters()[0].stats().upstream_cx_none_healthy.value(), 1u);
}

TEST_F(LoadBalancerTest, ConsecutiveConnectFailuresEjectUntilTheTimeIsUp) {
  auto t = table_of(cluster("c", three()), states);
  const Cluster& c = t->clusters()[0];
  // Defaults: 5 consecutive connect failures eject for 30s.
  for (int i = 0; i < 4; ++i) c.on_connect_failure(1, at_seconds(100));
  EXPECT_FALSE(c.endpoint_state(1).ejected(at_seconds(100)));
  c.on_connect_failure(1, at_seconds(100));
  EXPECT_TRUE(c.endpoint_state(1).ejected(at_seconds(100)));
  EXPECT_EQ(c.stats().ejections_enforced_total.value(), 1u);
  EXPECT_EQ(c.stats().upstream_cx_connect_fail.value(), 5u);

  EndpointPicker p;
  EXPECT_EQ(picks(p, c, 4, at_seconds(110)), (std::vector<uint32_t>{0, 2, 0, 2}));
  EXPECT_EQ(c.healthy_count(at_seconds(129)), 2u);
  // Back after base_ejection_time, on its own.
  EXPECT_EQ(c.healthy_count(at_seconds(130)), 3u);
  EXPECT_EQ(picks(p, c, 3, at_seconds(130)), (std::vector<uint32_t>{0, 1, 2}));
}

TEST_F(LoadBalancerTest, ASuccessEndsTheFailureRun) {
  auto t = table_of(cluster("c", three()), states);
  const Cluster& c = t->clusters()[0];
  for (int i = 0; i < 4; ++i) c.on_connect_failure(0, at_seconds(1));
  c.on_connect_success(0);
  for (int i = 0; i < 4; ++i) c.on_connect_failure(0, at_seconds(1));
  EXPECT_FALSE(c.endpoint_state(0).ejected(at_seconds(1)));
  c.on_connect_failure(0, at_seconds(1));
  EXPECT_TRUE(c.endpoint_state(0).ejected(at_seconds(1)));
}

TEST_F(LoadBalancerTest, OutlierDetectionCanBeTurnedOff) {
  ClusterConfig cfg = cluster("c", three());
  cfg.outlier_detection.consecutive_local_origin_failure = 0;
  auto t = table_of(cfg, states);
  for (int i = 0; i < 100; ++i) t->clusters()[0].on_connect_failure(0, at_seconds(1));
  EXPECT_FALSE(t->clusters()[0].endpoint_state(0).ejected(at_seconds(1)));
}

TEST_F(LoadBalancerTest, BelowPanicThresholdEjectedEndpointsAreUsedToo) {
  auto t = table_of(cluster("c", three()), states);
  const Cluster& c = t->clusters()[0];
  eject(c, 0, at_seconds(1));
  eject(c, 1, at_seconds(1));
  // 1 of 3 healthy is under Envoy's default 50%: balance over all three.
  EndpointPicker p;
  EXPECT_EQ(picks(p, c, 3, at_seconds(2)), (std::vector<uint32_t>{0, 1, 2}));
}

TEST_F(LoadBalancerTest, AllEjectedWithoutPanicHasNoEndpoint) {
  ClusterConfig cfg = cluster("c", three());
  cfg.healthy_panic_threshold = 0;
  auto t = table_of(cfg, states);
  const Cluster& c = t->clusters()[0];
  eject(c, 0, at_seconds(1));
  eject(c, 1, at_seconds(1));
  EndpointPicker p;
  EXPECT_EQ(picks(p, c, 2, at_seconds(2)), (std::vector<uint32_t>{2, 2}));
  eject(c, 2, at_seconds(1));
  EXPECT_EQ(p.pick(c, at_seconds(2), 0), std::nullopt);
  EXPECT_EQ(c.stats().upstream_cx_none_healthy.value(), 1u);
}

TEST_F(LoadBalancerTest, LeastRequestPrefersTheLessLoaded) {
  auto t = table_of(
      cluster("c", {endpoint("198.18.0.12"), endpoint("198.18.0.13")}, LbPolicy::least_request),
      states);
  const Cluster& c = t->clusters()[0];
  for (int i = 0; i < 10; ++i) c.on_request_start(0);
  EndpointPicker p;
  std::mt19937_64 rng(42);
  int loaded = 0;
  const int n = 10'000;
  for (int i = 0; i < n; ++i) loaded += p.pick(c, at_seconds(1), rng()) == 0u;
  // Two draws: the loaded endpoint wins only when both draws land on it (1/4).
  EXPECT_NEAR(loaded, n / 4, n / 50);
}

TEST_F(LoadBalancerTest, LeastRequestAmongManyAvoidsLoadedOnes) {
  std::vector<EndpointConfig> eps;
  for (int i = 0; i < 4; ++i)
    eps.push_back(endpoint(("198.18.0." + std::to_string(20 + i)).c_str()));
  auto t = table_of(cluster("c", eps, LbPolicy::least_request), states);
  const Cluster& c = t->clusters()[0];
  for (uint32_t i : {0u, 2u, 3u})
    for (int k = 0; k < 5; ++k) c.on_request_start(i);
  EndpointPicker p;
  std::mt19937_64 rng(7);
  std::vector<int> count(4);
  const int n = 16'000;
  for (int i = 0; i < n; ++i) ++count[*p.pick(c, at_seconds(1), rng())];
  // The idle endpoint is picked unless neither draw hits it: 1 - (3/4)^2 = 7/16.
  EXPECT_NEAR(count[1], n * 7 / 16, n / 50);
}

TEST_F(LoadBalancerTest, LeastRequestSkipsEjected) {
  auto t = table_of(cluster("c", three(), LbPolicy::least_request), states);
  const Cluster& c = t->clusters()[0];
  eject(c, 1, at_seconds(1));
  EndpointPicker p;
  for (uint64_t r = 0; r < 1000; ++r) EXPECT_NE(p.pick(c, at_seconds(2), r * 0x9e3779b9), 1u);
}

TEST_F(LoadBalancerTest, WeightedRoundRobinIsProportionalAndSmooth) {
  auto t =
      table_of(cluster("c", {endpoint("198.18.0.12", 9080, 3), endpoint("198.18.0.13")}), states);
  EXPECT_FALSE(t->clusters()[0].uniform_weights());
  EndpointPicker p;
  // Smooth weighted round robin spreads the light endpoint out instead of bunching.
  EXPECT_EQ(picks(p, t->clusters()[0], 8, at_seconds(1)),
            (std::vector<uint32_t>{0, 0, 1, 0, 0, 0, 1, 0}));
}

TEST_F(LoadBalancerTest, WeightedLeastRequestDividesWeightByLoad) {
  auto t = table_of(cluster("c", {endpoint("198.18.0.12", 9080, 2), endpoint("198.18.0.13")},
                            LbPolicy::least_request),
                    states);
  const Cluster& c = t->clusters()[0];
  for (int k = 0; k < 3; ++k) c.on_request_start(0);  // 2/(3+1) = 0.5 against 1/(0+1) = 1
  EndpointPicker p;
  std::vector<int> count(2);
  for (int i = 0; i < 300; ++i) ++count[*p.pick(c, at_seconds(1), 0)];
  EXPECT_EQ(count[1], 200);
  EXPECT_EQ(count[0], 100);
}

TEST_F(LoadBalancerTest, WorkerLoadBalancerKeepsAPickerPerClusterAndResetsOnNewTable) {
  RouteConfig config;
  config.clusters.push_back(cluster("a", three()));
  config.clusters.push_back(cluster("b", three()));
  auto t1 = *RouteTable::build(config, states);
  WorkerLoadBalancer lb;
  const Cluster& a = t1->clusters()[0];
  const Cluster& b = t1->clusters()[1];
  EXPECT_EQ(lb.pick(a, at_seconds(1), 0), 0u);
  EXPECT_EQ(lb.pick(a, at_seconds(1), 0), 1u);
  EXPECT_EQ(lb.pick(b, at_seconds(1), 0), 0u);  // its own position
  EXPECT_EQ(lb.pick(a, at_seconds(1), 0), 2u);
  auto t2 = *RouteTable::build(config, states);
  EXPECT_EQ(lb.pick(t2->clusters()[0], at_seconds(1), 0), 0u);  // fresh after a swap

  // Seeded workers start at different places.
  std::set<uint32_t> starts;
  for (uint64_t seed = 1; seed <= 20; ++seed)
    starts.insert(*WorkerLoadBalancer(seed).pick(a, at_seconds(1), 0));
  EXPECT_GT(starts.size(), 1u);
}

}  // namespace
}  // namespace sm::route
