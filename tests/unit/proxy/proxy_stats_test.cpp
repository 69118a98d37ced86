// Listener counters and latency histograms (userspace/proxy/proxy_stats.cpp).
#include "proxy/proxy_stats.h"
#include "route/cluster_stats.h"

#include <gtest/gtest.h>

namespace sm::proxy {
namespace {

TEST(Histogram, BucketsAndQuantiles) {
  Histogram h;
  for (int i = 0; i < 90; ++i) h.record_us(700);    // 0.7 ms -> (0.5, 1]
  for (int i = 0; i < 10; ++i) h.record_us(40000);  // 40 ms -> (25, 50]
  auto s = h.snapshot();
  EXPECT_EQ(s.count, 100u);
  EXPECT_EQ(s.buckets[1], 90u);
  EXPECT_EQ(s.buckets[5], 10u);
  EXPECT_GT(s.quantile_ms(0.5), 0.5);
  EXPECT_LE(s.quantile_ms(0.5), 1.0);
  EXPECT_GT(s.quantile_ms(0.99), 25.0);
  EXPECT_LE(s.quantile_ms(0.99), 50.0);
  EXPECT_NEAR(s.sum_ms, 90 * 0.7 + 10 * 40.0, 1e-6);
  EXPECT_EQ(Histogram().snapshot().quantile_ms(0.5), 0.0);
}

TEST(ListenerStats, StatusClassesAndNames) {
  ListenerStats st("outbound");
  st.record_status(200);
  st.record_status(204);
  st.record_status(404);
  st.record_status(503);
  EXPECT_EQ(st.downstream_rq_2xx.load(), 2u);
  EXPECT_EQ(st.downstream_rq_4xx.load(), 1u);
  EXPECT_EQ(st.downstream_rq_5xx.load(), 1u);
  bool found = false;
  for (const auto& [name, v] : st.counters())
    if (name == "listener.outbound.downstream_rq_2xx") found = v == 2;
  EXPECT_TRUE(found);
}

// A hot restart's parent's counts are added by name; gauges and unknown names are not.
TEST(ListenerStats, AddsACounterByName) {
  ListenerStats s("outbound");
  s.inc(s.downstream_rq_total, 2);
  EXPECT_TRUE(s.add("downstream_rq_total", 5));
  EXPECT_EQ(s.downstream_rq_total.load(), 7u);
  EXPECT_TRUE(s.add("fault.aborts_injected", 1));
  EXPECT_EQ(s.fault_aborts_injected.load(), 1u);
  EXPECT_FALSE(s.add("downstream_cx_active", 3));
  EXPECT_EQ(s.downstream_cx_active.load(), 0);
  EXPECT_FALSE(s.add("nope", 1));
  route::ClusterStats c;
  EXPECT_TRUE(c.add("outlier_detection.ejections_enforced_total", 4));
  EXPECT_EQ(c.ejections_enforced_total.value(), 4u);
  EXPECT_FALSE(c.add("ejections_enforced_total", 1));  // the rendered name only
}

}  // namespace
}  // namespace sm::proxy
