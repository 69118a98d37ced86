// fault.h: which requests a route's fault injection delays or aborts, drawn from a given
// random value; the percentages hold exactly over the whole draw space.
#include "route/fault.h"

#include <gtest/gtest.h>

#include <random>

namespace sm::route {
namespace {

FaultConfig delay_and_abort(double delay_pct, double abort_pct) {
  FaultConfig f;
  f.delay = FaultConfig::Delay{std::chrono::seconds(7), delay_pct};
  f.abort = FaultConfig::Abort{500, abort_pct};
  return f;
}

// Over one full cycle of the per-million space, exactly percent x 10,000 draws hit.
uint64_t hits_per_million(double percent) {
  uint64_t hits = 0;
  for (uint64_t r = 0; r < 1'000'000; ++r) hits += percent_hit(percent, r);
  return hits;
}

TEST(FaultDecision, PercentagesAreExactOverTheDrawSpace) {
  EXPECT_EQ(hits_per_million(0), 0u);
  EXPECT_EQ(hits_per_million(100), 1'000'000u);
  EXPECT_EQ(hits_per_million(50), 500'000u);
  EXPECT_EQ(hits_per_million(10), 100'000u);
  EXPECT_EQ(hits_per_million(0.1), 1'000u);  // Istio's percentage.value: 0.1
  EXPECT_EQ(hits_per_million(0.0001), 1u);   // the resolution: one in a million
  EXPECT_EQ(hits_per_million(33.3333), 333'333u);
}

TEST(FaultDecision, FullPercentAlwaysAppliesBoth) {
  const FaultConfig f = delay_and_abort(100, 100);
  for (uint64_t r : {0ull, 1ull, 999'999ull, ~0ull}) {
    FaultDecision d = decide_fault(f, r);
    EXPECT_EQ(d.delay, std::chrono::seconds(7));
    EXPECT_EQ(d.abort_status, 500);
  }
}

TEST(FaultDecision, ZeroPercentNeverApplies) {
  const FaultConfig f = delay_and_abort(0, 0);
  for (uint64_t r = 0; r < 10'000; ++r) {
    FaultDecision d = decide_fault(f, r * 7919);
    EXPECT_FALSE(d.delayed());
    EXPECT_FALSE(d.aborted());
  }
}

TEST(FaultDecision, DelayOnlyOrAbortOnly) {
  FaultConfig delay_only;
  delay_only.delay = FaultConfig::Delay{std::chrono::milliseconds(5), 100};
  EXPECT_TRUE(decide_fault(delay_only, 42).delayed());
  EXPECT_FALSE(decide_fault(delay_only, 42).aborted());
  FaultConfig abort_only;
  abort_only.abort = FaultConfig::Abort{503, 100};
  EXPECT_FALSE(decide_fault(abort_only, 42).delayed());
  EXPECT_EQ(decide_fault(abort_only, 42).abort_status, 503);
}

// With a uniform random source, delay and abort hit their own shares independently: about
// 50% x 10% of requests get both.
TEST(FaultDecision, DelayAndAbortAreDrawnIndependently) {
  const FaultConfig f = delay_and_abort(50, 10);
  std::mt19937_64 rng(1234);  // fixed seed: the test is deterministic
  const int n = 200'000;
  int delayed = 0, aborted = 0, both = 0;
  for (int i = 0; i < n; ++i) {
    FaultDecision d = decide_fault(f, rng());
    delayed += d.delayed();
    aborted += d.aborted();
    both += d.delayed() && d.aborted();
  }
  EXPECT_NEAR(delayed / double(n), 0.50, 0.01);
  EXPECT_NEAR(aborted / double(n), 0.10, 0.01);
  EXPECT_NEAR(both / double(n), 0.05, 0.01);
}

}  // namespace
}  // namespace sm::route
