// watcher.h against the project's Consul double on loopback: a change arrives through a
// blocking query; an index reset, 500s and a hung Consul lose nothing; the token is sent.
#include "consul/watcher.h"

#include <gtest/gtest.h>

#include "consul/catalog.h"
#include "consul_test_util.h"

namespace sm::consul {
namespace {

using namespace std::chrono_literals;

struct WatcherTest : ::testing::Test {
  void start(const std::string& token = "", WatchOptions o = {}) {
    consul = std::make_unique<test::ConsulDouble>(token);
    auto addr = parse_consul_address(consul->url(), "test");
    ASSERT_TRUE(addr.ok());
    addr->token = token;
    o.backoff_base = 20ms;
    o.backoff_max = 200ms;
    watcher = std::make_unique<ConsulWatcher>(*addr, o);
    watcher->on_error([this](const std::string&, const std::string& e) { errors.push_back(e); });
  }
  // Watches /v1/health/service/<name>?passing; `instances` follows it.
  void watch_health(const std::string& name) {
    watcher->add("/v1/health/service/" + name + "?passing", false,
                 [this](const HttpResponse& r, TimePoint) {
                   ++answers;
                   auto inst = parse_health_service(r.body, nullptr);
                   ASSERT_TRUE(inst.ok()) << inst.error().message();
                   instances = *inst;
                 });
  }
  // Polls until pred() or the time is up.
  template <typename Pred>
  bool until(Pred pred, Duration limit = 3s) {
    const TimePoint end = Clock::now() + limit;
    while (Clock::now() < end) {
      if (pred()) return true;
      watcher->poll(20ms);
    }
    return pred();
  }
  std::vector<std::string> addresses() const {
    std::vector<std::string> out;
    for (const Instance& i : instances) out.push_back(i.address.str());
    return out;
  }

  std::unique_ptr<test::ConsulDouble> consul;
  std::unique_ptr<ConsulWatcher> watcher;
  Instances instances;
  int answers = 0;
  std::vector<std::string> errors;
};

TEST_F(WatcherTest, ChangesArriveThroughOneBlockingConnection) {
  start();
  consul->add("r1", "reviews", "198.18.2.3", 9080, "v1");
  watch_health("reviews");
  ASSERT_TRUE(until([&] { return instances.size() == 1; }));
  consul->add("r2", "reviews", "198.18.2.4", 9080, "v2");
  const TimePoint t0 = Clock::now();
  ASSERT_TRUE(until([&] { return instances.size() == 2; }));
  EXPECT_LT(Clock::now() - t0, 1s);
  consul->remove("r1");
  ASSERT_TRUE(until([&] { return instances.size() == 1; }));
  EXPECT_EQ(addresses(), std::vector<std::string>{"198.18.2.4"});
  EXPECT_EQ(watcher->connections(), 1u);  // kept alive across queries
  EXPECT_TRUE(errors.empty()) << errors[0];
}

TEST_F(WatcherTest, NoCallbackWhenOnlyTheWaitElapsed) {
  WatchOptions o;
  o.wait = 200ms;  // the double answers after 200..212 ms with the same index
  start("", o);
  consul->add("r1", "reviews", "198.18.2.3", 9080, "v1");
  watch_health("reviews");
  ASSERT_TRUE(until([&] { return answers == 1; }));
  until([] { return false; }, 1s);  // about four blocking queries come back unchanged
  EXPECT_EQ(answers, 1);
}

TEST_F(WatcherTest, IndexGoingBackwardsLosesNothing) {
  start();
  consul->add("r1", "reviews", "198.18.2.3", 9080, "v1");
  watch_health("reviews");
  ASSERT_TRUE(until([&] { return instances.size() == 1; }));
  // A snapshot restore: every index drops (and blocked queries return at once). A change
  // made afterwards carries an index below the one we held; it must still arrive.
  consul->post("/_double/reset_index");
  consul->add("r2", "reviews", "198.18.2.4", 9080, "v2");
  ASSERT_TRUE(until([&] { return instances.size() == 2; }))
      << "answers " << answers << ", instances " << instances.size();
}

TEST_F(WatcherTest, ServerErrorsBackOffAndLoseNothing) {
  WatchOptions o;
  o.wait = 200ms;  // so the query in flight when Consul starts failing comes back soon
  start("", o);
  consul->add("r1", "reviews", "198.18.2.3", 9080, "v1");
  watch_health("reviews");
  ASSERT_TRUE(until([&] { return instances.size() == 1; }));
  consul->post("/_double/fail?status=500");  // reads fail; registrations still go through
  ASSERT_TRUE(until([&] { return watcher->failing() == 1; }));
  consul->add("r2", "reviews", "198.18.2.4", 9080, "v2");
  ASSERT_TRUE(until([&] { return errors.size() >= 3; }));
  EXPECT_EQ(errors[0].rfind("HTTP 500", 0), 0u) << errors[0];
  EXPECT_EQ(instances.size(), 1u);  // the last good answer stays
  consul->post("/_double/clear");
  ASSERT_TRUE(until([&] { return instances.size() == 2; }));
  EXPECT_EQ(watcher->failing(), 0u);
  // Backed off (20..200 ms here), not hammering: a few attempts, not hundreds.
  EXPECT_LT(errors.size(), 40u);
}

TEST_F(WatcherTest, AHungConsulIsGivenUpOnAndRetried) {
  WatchOptions o;
  o.wait = 300ms;
  o.answer_margin = 300ms;
  start("", o);
  consul->add("r1", "reviews", "198.18.2.3", 9080, "v1");
  watch_health("reviews");
  ASSERT_TRUE(until([&] { return instances.size() == 1; }));
  consul->post("/_double/hang");
  ASSERT_TRUE(until([&] { return !errors.empty(); }, 3s));
  EXPECT_EQ(errors[0], "no answer within the blocking query's wait");
  consul->add("r2", "reviews", "198.18.2.4", 9080, "v2");
  consul->post("/_double/clear");
  ASSERT_TRUE(until([&] { return instances.size() == 2; }, 5s));
}

TEST_F(WatcherTest, SendsTheToken) {
  start("s3cr3t");
  consul->add("r1", "reviews", "198.18.2.3", 9080, "v1");
  watch_health("reviews");
  ASSERT_TRUE(until([&] { return instances.size() == 1; }));
  EXPECT_TRUE(errors.empty());
}

TEST_F(WatcherTest, WithoutTheTokenConsulRefuses) {
  start("s3cr3t");
  consul->add("r1", "reviews", "198.18.2.3", 9080, "v1");
  auto addr = parse_consul_address(consul->url(), "test");
  ConsulWatcher anonymous(*addr, {});
  std::string error;
  anonymous.on_error([&](const std::string&, const std::string& e) { error = e; });
  anonymous.add("/v1/health/service/reviews?passing", false, [](const HttpResponse&, TimePoint) {});
  for (int i = 0; i < 100 && error.empty(); ++i) anonymous.poll(20ms);
  EXPECT_EQ(error, "HTTP 403: ACL not found");
}

TEST_F(WatcherTest, KvPrefixWithNoKeysIsAnEmptyAnswer) {
  start();
  std::vector<KvEntry> entries{{"x", "y", 1}};
  int kv_answers = 0;
  watcher->add("/v1/kv/sockmesh/rules/?recurse", true, [&](const HttpResponse& r, TimePoint) {
    ++kv_answers;
    entries = r.status == 404 ? std::vector<KvEntry>{} : *parse_kv_entries(r.body);
  });
  ASSERT_TRUE(until([&] { return kv_answers == 1; }));
  EXPECT_TRUE(entries.empty());
  consul->put("/v1/kv/sockmesh/rules/reviews", "kind: VirtualService");
  ASSERT_TRUE(until([&] { return entries.size() == 1; }));
  EXPECT_EQ(entries[0].value, "kind: VirtualService\n");
}

TEST_F(WatcherTest, ConsulDownIsAnErrorAndComesBack) {
  auto addr = parse_consul_address("127.0.0.1:" + std::to_string(test::free_port()), "test");
  WatchOptions o;
  o.backoff_base = 20ms;
  ConsulWatcher w(*addr, o);
  std::string error;
  w.on_error([&](const std::string&, const std::string& e) { error = e; });
  w.add("/v1/catalog/services", false, [](const HttpResponse&, TimePoint) {});
  for (int i = 0; i < 50 && error.empty(); ++i) w.poll(20ms);
  EXPECT_NE(error.find("Connection refused"), std::string::npos) << error;
  EXPECT_EQ(w.failing(), 1u);
}

}  // namespace
}  // namespace sm::consul
