// snapshot.h: swapping snapshots under reader threads, and leases that keep an old one alive
// for requests still in flight.
#include "route/snapshot.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "route_test_util.h"

namespace sm::route {
namespace {

// A snapshot whose every field must agree; a torn or freed read would show.
struct Numbered {
  explicit Numbered(uint64_t g, std::atomic<int>* live = nullptr)
      : generation(g), copies(64, g), live_count(live) {
    if (live_count) ++*live_count;
  }
  ~Numbered() {
    if (live_count) --*live_count;
  }
  uint64_t generation;
  std::vector<uint64_t> copies;
  std::atomic<int>* live_count;
};

TEST(SnapshotSwap, NothingBeforeTheFirstPublish) {
  SnapshotPublisher<Numbered> pub;
  SnapshotReader<Numbered> reader(pub);
  EXPECT_EQ(reader.get(), nullptr);
  EXPECT_FALSE(reader.lease());
}

TEST(SnapshotSwap, ReaderFollowsPublishes) {
  SnapshotPublisher<Numbered> pub;
  SnapshotReader<Numbered> reader(pub);
  pub.publish(std::make_shared<Numbered>(1));
  ASSERT_NE(reader.get(), nullptr);
  EXPECT_EQ(reader.get()->generation, 1u);
  pub.publish(std::make_shared<Numbered>(2));
  EXPECT_EQ(reader.get()->generation, 2u);
  EXPECT_EQ(pub.current()->generation, 2u);
  EXPECT_EQ(pub.generation(), 2u);
}

TEST(SnapshotSwap, AReaderKeepsItsSnapshotUntilItLooksAgain) {
  std::atomic<int> live{0};
  SnapshotPublisher<Numbered> pub;
  SnapshotReader<Numbered> reader(pub);
  pub.publish(std::make_shared<Numbered>(1, &live));
  reader.get();
  pub.publish(std::make_shared<Numbered>(2, &live));
  EXPECT_EQ(live.load(), 2);  // the reader still holds 1
  reader.get();
  EXPECT_EQ(live.load(), 1);  // and drops it on its own thread when it moves on
}

TEST(SnapshotSwap, LeaseKeepsASwappedOutSnapshotAlive) {
  std::atomic<int> live{0};
  SnapshotPublisher<Numbered> pub;
  SnapshotReader<Numbered> reader(pub);
  pub.publish(std::make_shared<Numbered>(1, &live));
  auto in_flight = reader.lease();
  auto second = reader.lease();
  pub.publish(std::make_shared<Numbered>(2, &live));
  EXPECT_EQ(reader.get()->generation, 2u);
  EXPECT_EQ(in_flight->generation, 1u);
  EXPECT_EQ(reader.retired(), 1u);
  EXPECT_EQ(live.load(), 2);
  in_flight.reset();
  EXPECT_EQ(live.load(), 2);  // `second` still pins it
  auto moved = std::move(second);
  EXPECT_FALSE(second);
  moved = reader.lease();  // ends the last lease on 1 by assignment
  EXPECT_EQ(reader.retired(), 0u);
  EXPECT_EQ(live.load(), 1);
  EXPECT_EQ(moved->generation, 2u);
}

TEST(SnapshotSwap, LeaseOnTheCurrentSnapshotRetiresNothing) {
  SnapshotPublisher<Numbered> pub;
  SnapshotReader<Numbered> reader(pub);
  pub.publish(std::make_shared<Numbered>(1));
  { auto l = reader.lease(); }
  pub.publish(std::make_shared<Numbered>(2));
  reader.get();
  EXPECT_EQ(reader.retired(), 0u);
}

TEST(SnapshotSwap, SwapsUnderReaderThreads) {
  std::atomic<int> live{0};
  SnapshotPublisher<Numbered> pub;
  pub.publish(std::make_shared<Numbered>(0, &live));
  constexpr uint64_t kLast = 3000;
  std::atomic<bool> bad{false};
  std::vector<std::thread> readers;
  for (int r = 0; r < 4; ++r) {
    readers.emplace_back([&] {
      SnapshotReader<Numbered> reader(pub);
      uint64_t last = 0;
      std::vector<SnapshotReader<Numbered>::Lease> in_flight;
      while (true) {
        const Numbered* s = reader.get();
        for (uint64_t c : s->copies) bad = bad || c != s->generation;
        bad = bad || s->generation < last;  // never goes back
        last = s->generation;
        // Hold a few leases across swaps, like requests waiting on upstream I/O.
        in_flight.push_back(reader.lease());
        if (in_flight.size() > 8) in_flight.erase(in_flight.begin());
        for (const auto& l : in_flight)
          for (uint64_t c : l->copies) bad = bad || c != l->generation;
        if (last == kLast) break;
      }
    });
  }
  for (uint64_t g = 1; g <= kLast; ++g) pub.publish(std::make_shared<Numbered>(g, &live));
  for (auto& t : readers) t.join();
  EXPECT_FALSE(bad.load());
  EXPECT_EQ(live.load(), 1);  // every old snapshot was freed
}

TEST(SnapshotSwap, RouteTableSwapsKeepClusterCountersExact) {
  // Two tables send reviews to the same cluster name with different timeouts; workers route
  // and count through whichever table they see, and the shared state adds up across swaps.
  ClusterStateRegistry states;
  auto make = [&](int timeout_s) {
    RouteConfig config = test::load_fixture("minimal.json");
    config.virtual_hosts[0].routes[0].action.timeout = std::chrono::seconds(timeout_s);
    return *RouteTable::build(config, states);
  };
  SnapshotPublisher<RouteTable> pub;
  pub.publish(make(1));
  constexpr int kWorkers = 4, kRequests = 20'000;
  std::atomic<int> started{0};
  std::atomic<bool> bad{false};
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&] {
      SnapshotReader<RouteTable> reader(pub);
      for (int i = 0; i < kRequests; ++i) {
        auto table = reader.lease();
        RouteResult r = table->route({"reviews:9080", "/", "GET", {}}, i);
        if (r.outcome != RouteOutcome::cluster) {
          bad = true;
          continue;
        }
        bad = bad || (r.route->timeout() != std::chrono::seconds(1) &&
                      r.route->timeout() != std::chrono::seconds(2));
        r.cluster->on_request_start(0);
        ++started;
        std::this_thread::yield();
        r.cluster->on_request_end(0, 200);
      }
    });
  }
  for (int swap = 0; started.load() < kWorkers * kRequests; ++swap) {
    pub.publish(make(1 + swap % 2));
    std::this_thread::yield();
  }
  for (auto& t : workers) t.join();
  EXPECT_FALSE(bad.load());
  const Cluster& c = *pub.current()->find_cluster("outbound|9080||reviews.service.consul");
  EXPECT_EQ(c.stats().upstream_rq_total.value(), uint64_t{kWorkers} * kRequests);
  EXPECT_EQ(c.stats().upstream_rq_2xx.value(), uint64_t{kWorkers} * kRequests);
  EXPECT_EQ(c.endpoint_state(0).active_requests(), 0u);
}

}  // namespace
}  // namespace sm::route
