// blocking_query.h: Consul's documented client rules for blocking queries, one test each.
#include "consul/blocking_query.h"

#include <gtest/gtest.h>

namespace sm::consul {
namespace {

using U = BlockingIndex::Update;
using std::chrono::milliseconds;

TEST(BlockingIndex, FirstQueryDoesNotBlockThenFollowsXConsulIndex) {
  BlockingIndex idx;
  EXPECT_EQ(idx.next(), 0u);  // index 0: answer at once
  EXPECT_EQ(idx.on_response(42), U::first);
  EXPECT_EQ(idx.next(), 42u);
  EXPECT_EQ(idx.on_response(42), U::same);  // wait elapsed: no change, no rebuild
  EXPECT_EQ(idx.on_response(57), U::moved);
  EXPECT_EQ(idx.next(), 57u);
}

TEST(BlockingIndex, GoingBackwardsResetsToZero) {
  BlockingIndex idx;
  idx.on_response(1000);
  EXPECT_EQ(idx.on_response(3), U::backwards);
  EXPECT_EQ(idx.next(), 0u);                // the next query answers at once...
  EXPECT_EQ(idx.on_response(3), U::first);  // ...and blocking resumes from there
  EXPECT_EQ(idx.next(), 3u);
}

TEST(BlockingIndex, NeverBelowOne) {
  BlockingIndex idx;
  EXPECT_EQ(idx.on_response(0), U::first);  // a missing or zero header
  EXPECT_EQ(idx.next(), 1u);                // not 0: that would answer at once forever (a hot loop)
  EXPECT_EQ(idx.on_response(0), U::same);
  EXPECT_EQ(idx.next(), 1u);
}

TEST(Backoff, GrowsWithJitterUpToTheCapAndResets) {
  Backoff b(milliseconds(100), milliseconds(1000));
  // Uniform in [d/2, d): random 0 gives the low end, a huge one stays below d.
  EXPECT_EQ(b.next(0), milliseconds(50));
  EXPECT_EQ(b.next(0), milliseconds(100));
  EXPECT_EQ(b.next(0), milliseconds(200));
  EXPECT_EQ(b.next(0), milliseconds(400));
  EXPECT_EQ(b.next(0), milliseconds(500));  // capped: d = 1000
  Duration high = b.next(~0ull);
  EXPECT_GE(high, milliseconds(500));
  EXPECT_LT(high, milliseconds(1000));
  EXPECT_EQ(b.failures(), 6u);
  b.reset();
  EXPECT_EQ(b.next(0), milliseconds(50));
}

TEST(Backoff, JitterSpreadsClients) {
  Backoff a(milliseconds(100), milliseconds(5000)), b(milliseconds(100), milliseconds(5000));
  a.next(0);
  b.next(0);
  EXPECT_NE(a.next(12345), b.next(67890));
}

TEST(RateLimiter, BurstThenSteadyRate) {
  RateLimiter r(10, 3);  // 10 queries/s, bursts of 3
  const TimePoint t0 = TimePoint(std::chrono::seconds(100));
  EXPECT_EQ(r.acquire(t0), t0);
  EXPECT_EQ(r.acquire(t0), t0);
  EXPECT_EQ(r.acquire(t0), t0);
  const TimePoint next = r.acquire(t0);  // the bucket is empty: wait for one token
  EXPECT_EQ(next, t0 + milliseconds(100));
  EXPECT_EQ(r.acquire(next), next);
  // A quiet watch never waits: the bucket refills up to its burst.
  const TimePoint later = next + std::chrono::seconds(10);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(r.acquire(later), later);
}

TEST(RateLimiter, ChurnIsCappedAtTheRate) {
  RateLimiter r(10, 3);
  TimePoint t = TimePoint(std::chrono::seconds(1));
  int queries = 0;
  // A watch whose result changes all the time asks again as soon as it may, for 5 s.
  const TimePoint end = t + std::chrono::seconds(5);
  while (t < end) {
    TimePoint at = r.acquire(t);
    if (at == t) {
      ++queries;
    } else {
      t = at;
    }
  }
  EXPECT_LE(queries, 3 + 50 + 1);
  EXPECT_GE(queries, 50);
}

}  // namespace
}  // namespace sm::consul
