// retry_policy.h: Envoy's retry_on semantics, num_retries, the cluster's retry limit and
// budget, and jittered back-off.
#include "route/retry_policy.h"

#include <gtest/gtest.h>

#include "route_test_util.h"

namespace sm::route {
namespace {

using std::chrono::milliseconds;

constexpr RetryReason kConnect{FailureKind::connect_failure};
constexpr RetryReason kRefused{FailureKind::refused_stream};
constexpr RetryReason kReset{FailureKind::reset};
constexpr RetryReason kPerTry{FailureKind::per_try_timeout};
constexpr RetryReason kOverflow{FailureKind::overflow};

RetryPolicy policy(const char* retry_on, uint32_t num_retries = 1) {
  RetryPolicy p;
  p.retry_on = *parse_retry_on(retry_on, "retry_on");
  p.num_retries = num_retries;
  return p;
}

TEST(RetryOn, ParsesAndFormatsInAFixedOrder) {
  auto bits = parse_retry_on(
      "retriable-status-codes, connect-failure,refused-stream,reset,5xx,gateway-error", "f");
  ASSERT_TRUE(bits.ok());
  EXPECT_EQ(format_retry_on(*bits),
            "5xx,gateway-error,reset,connect-failure,refused-stream,retriable-status-codes");
  EXPECT_EQ(*parse_retry_on("", "f"), 0u);
  EXPECT_EQ(*parse_retry_on(format_retry_on(*bits), "f"), *bits);
}

TEST(RetryOn, UnknownConditionIsAnError) {
  auto bits =
      parse_retry_on("5xx,unavailable", "virtual_hosts[0].routes[0].route.retry_policy.retry_on");
  ASSERT_FALSE(bits.ok());
  EXPECT_EQ(bits.error().message().rfind("virtual_hosts[0].routes[0].route.retry_policy.retry_on: "
                                         "unknown retry condition 'unavailable'",
                                         0),
            0u)
      << bits.error().message();
}

TEST(RetryPolicy, ConnectFailure) {
  EXPECT_TRUE(policy("connect-failure").retriable(kConnect));
  EXPECT_TRUE(policy("5xx").retriable(kConnect));
  EXPECT_TRUE(policy("gateway-error").retriable(kConnect));
  EXPECT_TRUE(policy("reset").retriable(kConnect));
  EXPECT_FALSE(policy("refused-stream,retriable-4xx,retriable-status-codes").retriable(kConnect));
}

TEST(RetryPolicy, RefusedStream) {
  EXPECT_TRUE(policy("refused-stream").retriable(kRefused));
  EXPECT_TRUE(policy("5xx").retriable(kRefused));
  EXPECT_FALSE(policy("connect-failure").retriable(kRefused));
}

TEST(RetryPolicy, ResetAndPerTryTimeout) {
  for (RetryReason r : {kReset, kPerTry}) {
    EXPECT_TRUE(policy("reset").retriable(r));
    EXPECT_TRUE(policy("5xx").retriable(r));
    EXPECT_TRUE(policy("gateway-error").retriable(r));
    EXPECT_FALSE(policy("connect-failure,refused-stream").retriable(r));
  }
}

TEST(RetryPolicy, ResponseCodes) {
  RetryPolicy fivexx = policy("5xx");
  EXPECT_TRUE(fivexx.retriable(RetryReason::response(500)));
  EXPECT_TRUE(fivexx.retriable(RetryReason::response(503)));
  EXPECT_FALSE(fivexx.retriable(RetryReason::response(404)));
  RetryPolicy gateway = policy("gateway-error");
  EXPECT_FALSE(gateway.retriable(RetryReason::response(500)));
  for (uint16_t s : {502, 503, 504}) EXPECT_TRUE(gateway.retriable(RetryReason::response(s)));
  EXPECT_TRUE(policy("retriable-4xx").retriable(RetryReason::response(409)));
  EXPECT_FALSE(policy("retriable-4xx").retriable(RetryReason::response(429)));
  RetryPolicy codes = policy("retriable-status-codes");
  codes.retriable_status_codes = {429, 418};
  EXPECT_TRUE(codes.retriable(RetryReason::response(429)));
  EXPECT_FALSE(codes.retriable(RetryReason::response(503)));
  // Listing codes does nothing unless retry_on names retriable-status-codes.
  RetryPolicy listed_only = policy("5xx");
  listed_only.retriable_status_codes = {429};
  EXPECT_FALSE(listed_only.retriable(RetryReason::response(429)));
  EXPECT_FALSE(policy("reset,connect-failure").retriable(RetryReason::response(503)));
}

TEST(RetryPolicy, OurOwnOverflowIsNeverRetried) {
  EXPECT_FALSE(
      policy("5xx,gateway-error,reset,connect-failure,refused-stream").retriable(kOverflow));
}

TEST(RetryPolicy, ShouldRetryCountsRetries) {
  RetryPolicy p = policy("5xx", 2);
  EXPECT_TRUE(p.should_retry(kReset, 0));
  EXPECT_TRUE(p.should_retry(kReset, 1));
  EXPECT_FALSE(p.should_retry(kReset, 2));
  EXPECT_EQ(RetryPolicy{}.num_retries, 1u);  // Envoy's default
}

TEST(RetryPolicy, BackoffIsFullyJitteredExponential) {
  RetryPolicy p;  // 25ms base, 250ms max
  const milliseconds ceilings[] = {milliseconds(25),  milliseconds(50),  milliseconds(100),
                                   milliseconds(200), milliseconds(250), milliseconds(250)};
  for (uint32_t n = 0; n < 6; ++n) {
    Duration top{0};
    for (uint64_t r = 0; r < 2000; ++r) {
      Duration d = p.backoff(n, r * 0x9e3779b97f4a7c15ull);
      EXPECT_GE(d.count(), 0);
      EXPECT_LT(d, ceilings[n]);
      top = std::max(top, d);
    }
    EXPECT_GT(top, ceilings[n] * 9 / 10) << n;  // the whole range is used
  }
}

struct DecideRetryTest : ::testing::Test {
  ClusterStateRegistry states;
  std::shared_ptr<const RouteTable> table(CircuitBreakerThresholds t) {
    ClusterConfig cfg = test::cluster("c", {test::endpoint("198.18.0.12")});
    cfg.circuit_breakers = t;
    return test::table_of(cfg, states);
  }
};

TEST_F(DecideRetryTest, PolicyThenNumRetriesThenClusterLimit) {
  CircuitBreakerThresholds t;
  t.max_retries = 2;
  auto tab = table(t);
  const Cluster& c = tab->clusters()[0];
  RetryPolicy p = policy("connect-failure", 5);
  EXPECT_EQ(c.decide_retry(p, RetryReason::response(503), 0), RetryDecision::not_retriable);
  EXPECT_EQ(c.decide_retry(p, kConnect, 5), RetryDecision::limit_exceeded);
  EXPECT_EQ(c.decide_retry(p, kConnect, 0), RetryDecision::retry);
  EXPECT_EQ(c.decide_retry(p, kConnect, 0), RetryDecision::retry);
  // Two retries in flight across the cluster: max_retries is full.
  EXPECT_EQ(c.decide_retry(p, kConnect, 1), RetryDecision::overflow);
  c.release(Resource::retry);
  EXPECT_EQ(c.decide_retry(p, kConnect, 1), RetryDecision::retry);
  EXPECT_EQ(c.stats().upstream_rq_retry.value(), 3u);
  EXPECT_EQ(c.stats().upstream_rq_retry_overflow.value(), 1u);
  EXPECT_EQ(c.stats().upstream_rq_retry_limit_exceeded.value(), 1u);
}

TEST_F(DecideRetryTest, RetryBudgetReplacesMaxRetries) {
  CircuitBreakerThresholds t;
  t.max_retries = 100;
  t.retry_budget = RetryBudget{10.0, 2};
  auto tab = table(t);
  const Cluster& c = tab->clusters()[0];
  RetryPolicy p = policy("5xx", 10);
  // No traffic: min_retry_concurrency (2) applies.
  EXPECT_EQ(c.decide_retry(p, kReset, 0), RetryDecision::retry);
  EXPECT_EQ(c.decide_retry(p, kReset, 0), RetryDecision::retry);
  EXPECT_EQ(c.decide_retry(p, kReset, 0), RetryDecision::overflow);
  // 50 active requests: 10% of them is 5 concurrent retries.
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(c.try_acquire(Resource::request));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.decide_retry(p, kReset, 0), RetryDecision::retry);
  EXPECT_EQ(c.decide_retry(p, kReset, 0), RetryDecision::overflow);
}

}  // namespace
}  // namespace sm::route
