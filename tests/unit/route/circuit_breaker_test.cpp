// circuit_breaker.h: Envoy's per-cluster limits, exact under concurrent workers.
#include "route/circuit_breaker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>
#include <vector>

#include "route_test_util.h"

namespace sm::route {
namespace {

TEST(CircuitBreaker, EnvoyDefaults) {
  CircuitBreakerThresholds t;
  EXPECT_EQ(t.max_connections, 1024u);
  EXPECT_EQ(t.max_pending_requests, 1024u);
  EXPECT_EQ(t.max_requests, 1024u);
  EXPECT_EQ(t.max_retries, 3u);
  EXPECT_FALSE(t.retry_budget);
}

TEST(CircuitBreaker, EachResourceHasItsOwnLimit) {
  CircuitBreakerThresholds t;
  t.max_connections = 1;
  t.max_pending_requests = 2;
  t.max_requests = 3;
  t.max_retries = 0;
  CircuitBreaker cb;
  EXPECT_TRUE(cb.try_acquire(Resource::connection, t));
  EXPECT_FALSE(cb.try_acquire(Resource::connection, t));
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(cb.try_acquire(Resource::pending_request, t));
  EXPECT_FALSE(cb.try_acquire(Resource::pending_request, t));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(cb.try_acquire(Resource::request, t));
  EXPECT_FALSE(cb.try_acquire(Resource::request, t));
  EXPECT_FALSE(cb.try_acquire(Resource::retry, t));
  cb.release(Resource::request);
  EXPECT_EQ(cb.count(Resource::request), 2u);
  EXPECT_TRUE(cb.try_acquire(Resource::request, t));
  // A lower limit from a newer snapshot applies at once to the live count.
  t.max_requests = 2;
  EXPECT_FALSE(cb.try_acquire(Resource::request, t));
}

TEST(CircuitBreaker, RetryBudgetScalesWithActiveAndPendingRequests) {
  CircuitBreakerThresholds t;
  t.max_retries = 1;
  t.retry_budget = RetryBudget{};  // Envoy's defaults: 20%, at least 3
  CircuitBreaker cb;
  EXPECT_EQ(cb.limit(Resource::retry, t), 3u);  // min_retry_concurrency, not max_retries
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(cb.try_acquire(Resource::request, t));
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(cb.try_acquire(Resource::pending_request, t));
  EXPECT_EQ(cb.limit(Resource::retry, t), 20u);  // 20% of 100
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(cb.try_acquire(Resource::retry, t));
  EXPECT_FALSE(cb.try_acquire(Resource::retry, t));
  t.retry_budget->budget_percent = 50;
  EXPECT_EQ(cb.limit(Resource::retry, t), 50u);
  t.retry_budget->min_retry_concurrency = 80;
  EXPECT_EQ(cb.limit(Resource::retry, t), 80u);
}

TEST(CircuitBreaker, NeverExceedsTheLimitUnderContention) {
  CircuitBreakerThresholds t;
  t.max_requests = 16;
  CircuitBreaker cb;
  std::atomic<int> inside{0}, max_inside{0};
  std::atomic<uint64_t> admitted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 8; ++w) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20'000; ++i) {
        if (!cb.try_acquire(Resource::request, t)) {
          refused.fetch_add(1);
          continue;
        }
        int now = inside.fetch_add(1) + 1;
        int seen = max_inside.load();
        while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {
        }
        if (i % 64 == 0) std::this_thread::yield();
        inside.fetch_sub(1);
        admitted.fetch_add(1);
        cb.release(Resource::request);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(max_inside.load(), 16);
  EXPECT_EQ(admitted.load() + refused.load(), 8u * 20'000u);
  EXPECT_GT(admitted.load(), 0u);
  EXPECT_EQ(cb.count(Resource::request), 0u);
}

TEST(CircuitBreaker, AdmitsExactlyTheLimitWhenNothingIsReleased) {
  CircuitBreakerThresholds t;
  t.max_connections = 1000;
  CircuitBreaker cb;
  std::atomic<uint64_t> admitted{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 8; ++w) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5'000; ++i) admitted += cb.try_acquire(Resource::connection, t);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(admitted.load(), 1000u);
  EXPECT_EQ(cb.count(Resource::connection), 1000u);
}

TEST(CircuitBreaker, ClusterCountsEachOverflowAsEnvoyDoes) {
  ClusterStateRegistry states;
  ClusterConfig cfg = test::cluster("c", {test::endpoint("198.18.0.12")});
  cfg.circuit_breakers = {1, 1, 1, 1, std::nullopt};
  auto t = test::table_of(cfg, states);
  const Cluster& c = t->clusters()[0];
  for (Resource r :
       {Resource::connection, Resource::pending_request, Resource::request, Resource::retry}) {
    EXPECT_TRUE(c.try_acquire(r));
    EXPECT_FALSE(c.try_acquire(r));
  }
  EXPECT_EQ(c.stats().upstream_cx_overflow.value(), 1u);
  EXPECT_EQ(c.stats().upstream_rq_pending_overflow.value(), 2u);  // pending and request
  EXPECT_EQ(c.stats().upstream_rq_retry_overflow.value(), 1u);

  std::map<std::string_view, uint64_t> gauges;
  for (const Stat& s : c.stats_snapshot(test::at_seconds(1)))
    if (s.type == StatType::gauge) gauges[s.name] = s.value;
  EXPECT_EQ(gauges["circuit_breakers.default.rq_open"], 1u);
  EXPECT_EQ(gauges["circuit_breakers.default.remaining_rq"], 0u);
  EXPECT_EQ(gauges["upstream_rq_active"], 1u);
  c.release(Resource::request);
  gauges.clear();
  for (const Stat& s : c.stats_snapshot(test::at_seconds(1))) gauges[s.name] = s.value;
  EXPECT_EQ(gauges["circuit_breakers.default.rq_open"], 0u);
  EXPECT_EQ(gauges["circuit_breakers.default.remaining_rq"], 1u);
}

}  // namespace
}  // namespace sm::route
