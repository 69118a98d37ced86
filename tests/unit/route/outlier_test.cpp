// Outlier detection (route_config.h OutlierDetectionConfig, Cluster and EndpointState):
// consecutive 5xx and gateway errors, growing ejection time with decay per interval,
// max_ejection_percent, and the random load-balancing policy.
#include <gtest/gtest.h>

#include <map>

#include "route/load_balancer.h"
#include "route_test_util.h"

namespace sm::route {
namespace {

using test::at_seconds;
using test::cluster;
using test::endpoint;
using test::table_of;

ClusterConfig four(OutlierDetectionConfig od) {
  ClusterConfig c = cluster("c", {endpoint("198.18.0.12"), endpoint("198.18.0.13"),
                                  endpoint("198.18.0.14"), endpoint("198.18.0.15")});
  c.outlier_detection = od;
  return c;
}

struct OutlierTest : ::testing::Test {
  ClusterStateRegistry states;
};

TEST_F(OutlierTest, Consecutive5xxEjectsAndAnyOtherStatusEndsTheRun) {
  OutlierDetectionConfig od;
  od.consecutive_5xx = 3;
  auto t = table_of(four(od), states);
  const Cluster& c = t->clusters()[0];
  auto respond = [&](int status) {
    c.on_request_start(0);
    c.on_request_end(0, status);
  };
  respond(500);
  respond(503);
  respond(200);  // ends the run
  respond(500);
  respond(502);
  EXPECT_FALSE(c.endpoint_state(0).ejected(Clock::now()));
  respond(504);
  EXPECT_TRUE(c.endpoint_state(0).ejected(Clock::now()));
  EXPECT_EQ(c.stats().ejections_enforced_total.value(), 1u);
}

TEST_F(OutlierTest, GatewayErrorsCountOnly502To504) {
  OutlierDetectionConfig od;
  od.consecutive_gateway_failure = 2;
  auto t = table_of(four(od), states);
  const Cluster& c = t->clusters()[0];
  for (int status : {502, 500, 503}) {  // the 500 ends the gateway run
    c.on_request_start(1);
    c.on_request_end(1, status);
  }
  EXPECT_FALSE(c.endpoint_state(1).ejected(Clock::now()));
  c.on_request_start(1);
  c.on_request_end(1, 504);
  EXPECT_TRUE(c.endpoint_state(1).ejected(Clock::now()));
}

TEST_F(OutlierTest, ConnectFailuresCountAsGatewayAnd5xxErrors) {
  OutlierDetectionConfig od;
  od.consecutive_local_origin_failure = 0;  // only the 5xx run may eject
  od.consecutive_5xx = 2;
  auto t = table_of(four(od), states);
  const Cluster& c = t->clusters()[0];
  c.on_connect_failure(2, at_seconds(10));
  EXPECT_FALSE(c.endpoint_state(2).ejected(at_seconds(10)));
  c.on_connect_failure(2, at_seconds(10));
  EXPECT_TRUE(c.endpoint_state(2).ejected(at_seconds(10)));
}

TEST_F(OutlierTest, EjectionTimeGrowsWithEachEjectionAndDecaysPerInterval) {
  OutlierDetectionConfig od;
  od.consecutive_local_origin_failure = 1;
  od.base_ejection_time = std::chrono::seconds(30);
  od.interval = std::chrono::seconds(10);
  od.max_ejection_time = std::chrono::seconds(100);
  auto t = table_of(four(od), states);
  const Cluster& c = t->clusters()[0];
  const EndpointState& ep = c.endpoint_state(0);
  c.on_connect_failure(0, at_seconds(1000));  // 1st: 30s
  EXPECT_TRUE(ep.ejected(at_seconds(1029)));
  EXPECT_FALSE(ep.ejected(at_seconds(1030)));
  c.on_connect_failure(0, at_seconds(1035));  // 5s back (no whole interval): 2nd, 60s
  EXPECT_EQ(ep.ejection_multiplier(), 2u);
  EXPECT_TRUE(ep.ejected(at_seconds(1094)));
  EXPECT_FALSE(ep.ejected(at_seconds(1095)));
  c.on_connect_failure(0, at_seconds(1096));  // 3rd: 90s
  EXPECT_TRUE(ep.ejected(at_seconds(1185)));
  c.on_connect_failure(0, at_seconds(1186));  // 4th: 120s, capped at max_ejection_time 100s
  EXPECT_TRUE(ep.ejected(at_seconds(1285)));
  EXPECT_FALSE(ep.ejected(at_seconds(1286)));
  // 25s healthy (two whole intervals): 4 - 2 + 1 = 3 -> 90s.
  c.on_connect_failure(0, at_seconds(1311));
  EXPECT_EQ(ep.ejection_multiplier(), 3u);
  EXPECT_TRUE(ep.ejected(at_seconds(1400)));
  EXPECT_FALSE(ep.ejected(at_seconds(1401)));
  // Long healthy: back to the base time.
  c.on_connect_failure(0, at_seconds(5000));
  EXPECT_EQ(ep.ejection_multiplier(), 1u);
  EXPECT_FALSE(ep.ejected(at_seconds(5030)));
}

TEST_F(OutlierTest, MaxEjectionPercentCapsEjectionsButAlwaysAllowsOne) {
  OutlierDetectionConfig od;
  od.consecutive_local_origin_failure = 1;
  od.max_ejection_percent = 10;  // of 4 endpoints: 0.4, but one is always allowed
  auto t = table_of(four(od), states);
  const Cluster& c = t->clusters()[0];
  for (uint32_t i = 0; i < 4; ++i) c.on_connect_failure(i, at_seconds(50));
  EXPECT_EQ(c.healthy_count(at_seconds(50)), 3u);
  EXPECT_EQ(c.stats().ejections_enforced_total.value(), 1u);
  EXPECT_EQ(c.stats().ejections_overflow.value(), 3u);

  ClusterStateRegistry other;
  od.max_ejection_percent = 50;
  auto half = table_of(four(od), other);
  for (uint32_t i = 0; i < 4; ++i) half->clusters()[0].on_connect_failure(i, at_seconds(50));
  EXPECT_EQ(half->clusters()[0].healthy_count(at_seconds(50)), 2u);
}

TEST_F(OutlierTest, RandomPolicySpreadsEvenlyAndFollowsWeights) {
  ClusterConfig cc =
      cluster("r", {endpoint("198.18.0.12"), endpoint("198.18.0.13")}, LbPolicy::random);
  auto t = table_of(cc, states);
  EndpointPicker p;
  std::map<uint32_t, int> seen;
  for (uint64_t r = 0; r < 1000; ++r) ++seen[*p.pick(t->clusters()[0], at_seconds(1), r)];
  EXPECT_EQ(seen[0], 500);
  EXPECT_EQ(seen[1], 500);

  ClusterStateRegistry other;
  auto w = table_of(
      cluster("w", {endpoint("198.18.0.12", 9080, 3), endpoint("198.18.0.13")}, LbPolicy::random),
      other);
  seen.clear();
  for (uint64_t r = 0; r < 4000; ++r) ++seen[*p.pick(w->clusters()[0], at_seconds(1), r)];
  EXPECT_EQ(seen[0], 3000);
  EXPECT_EQ(seen[1], 1000);
}

}  // namespace
}  // namespace sm::route
