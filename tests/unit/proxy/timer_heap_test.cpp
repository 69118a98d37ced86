// The worker's timer heap (userspace/proxy/timer_heap.h) against a reference model.
#include "proxy/timer_heap.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace sm::proxy {
namespace {

TEST(TimerHeap, FiresInDeadlineOrderAndSupportsMovesAndCancels) {
  TimerHeap h;
  h.set(1, 50);
  h.set(2, 10);
  h.set(3, 30);
  h.set(1, 5);   // moved earlier
  h.set(2, 40);  // moved later
  h.cancel(3);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_EQ(h.next_deadline(), 5u);
  std::vector<uint32_t> fired;
  h.expire(100, [&](uint32_t s) { fired.push_back(s); });
  EXPECT_EQ(fired, (std::vector<uint32_t>{1, 2}));
  EXPECT_TRUE(h.empty());
}

TEST(TimerHeap, OneEntryPerSlotHoweverOftenRearmed) {
  TimerHeap h;
  for (int i = 0; i < 100000; ++i) h.set(static_cast<uint32_t>(i % 10), static_cast<Nanos>(i));
  EXPECT_EQ(h.size(), 10u);
}

TEST(TimerHeap, MatchesAReferenceModel) {
  std::mt19937 rng(7);
  TimerHeap h;
  std::map<uint32_t, Nanos> model;  // slot -> deadline
  Nanos now = 0;
  for (int step = 0; step < 20000; ++step) {
    uint32_t slot = rng() % 64;
    switch (rng() % 4) {
      case 0:
      case 1: {
        Nanos d = now + rng() % 1000;
        h.set(slot, d);
        model[slot] = d;
        break;
      }
      case 2:
        h.cancel(slot);
        model.erase(slot);
        break;
      case 3: {
        now += rng() % 300;
        std::vector<std::pair<Nanos, uint32_t>> want;
        for (auto [s, d] : model)
          if (d <= now) want.emplace_back(d, s);
        std::sort(want.begin(), want.end());
        std::vector<Nanos> got;
        h.expire(now, [&](uint32_t s) {
          got.push_back(model.at(s));
          model.erase(s);
        });
        ASSERT_EQ(got.size(), want.size());
        for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i].first);
        break;
      }
    }
    ASSERT_EQ(h.size(), model.size());
  }
}

}  // namespace
}  // namespace sm::proxy
