// control.h: Consul + rules -> the published table, live; refusals keep the old rules; Consul
// lost keeps the last good table; --state-dir and --config at start when Consul is away.
#include "proxy/control.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "consul_test_util.h"

namespace sm::proxy {
namespace {

using namespace std::chrono_literals;
using consul::test::ConsulDouble;

std::string istio_file(const std::string& rel) {
  return consul::test::read_file(std::string(SM_ISTIO_DIR) + "/" + rel);
}

struct ControlTest : ::testing::Test {
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("sm-control-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir);
  }
  void TearDown() override {
    control.reset();
    std::filesystem::remove_all(dir);
  }

  ControlOptions options_for(const ConsulDouble* consul) {
    ControlOptions o;
    if (consul) o.consul = *consul::parse_consul_address(consul->url(), "test");
    o.watch.wait = 2s;
    o.watch.backoff_base = 20ms;
    o.watch.backoff_max = 200ms;
    o.rules_poll = 50ms;
    o.min_rebuild_interval = 20ms;
    o.initial_sync_timeout = 1s;
    o.save_interval = 50ms;
    return o;
  }
  void run(ControlOptions o, bool expect_ok = true) {
    control = std::make_unique<Control>(shared, std::move(o));
    Status s = control->load_initial();
    ASSERT_EQ(s.ok(), expect_ok) << (s.ok() ? "" : s.error().message());
    control->start();
  }
  std::shared_ptr<const route::RouteTable> table() { return shared.routes.current(); }
  size_t endpoints(const std::string& cluster) {
    auto t = table();
    const route::Cluster* c = t ? t->find_cluster(cluster) : nullptr;
    return c ? c->endpoint_count() : 0;
  }
  template <typename Pred>
  bool until(Pred pred, std::chrono::milliseconds limit = 3000ms) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (pred()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return pred();
  }
  std::string write(const std::string& name, const std::string& text) {
    const std::string p = (dir / name).string();
    std::ofstream(p) << text;
    return p;
  }
  // The route the table gives a request for `host` with these headers.
  std::string route_of(const std::string& host, std::vector<http::Header> headers = {}) {
    auto t = table();
    if (!t) return "no table";
    route::RequestView v{host, "/reviews/0", "GET", headers};
    route::RouteResult r = t->route(v, 0);
    return r.cluster ? r.cluster->name() : "no cluster";
  }
  nlohmann::json control_plane() { return nlohmann::json::parse(shared.control.dump_json()); }

  Options opts;
  Shared shared{opts};
  std::unique_ptr<Control> control;
  std::filesystem::path dir;
};

void bookinfo_reviews(const ConsulDouble& c) {
  c.add("reviews-v1", "reviews", "198.18.2.11", 9080, "v1");
  c.add("reviews-v2", "reviews", "198.18.2.12", 9080, "v2");
  c.add("reviews-v3", "reviews", "198.18.2.13", 9080, "v3");
}

const std::string kAll = "outbound|9080||reviews.service.consul";

TEST_F(ControlTest, CatalogChangesReachThePublishedTable) {
  ConsulDouble consul;
  bookinfo_reviews(consul);
  run(options_for(&consul));
  ASSERT_TRUE(until([&] { return endpoints(kAll) == 3; }));
  EXPECT_EQ(endpoints("outbound|9080|v2|reviews.service.consul"), 1u);
  EXPECT_EQ(control_plane()["source"], "consul");
  consul.add("reviews-v3b", "reviews", "198.18.2.14", 9080, "v3");
  ASSERT_TRUE(until([&] { return endpoints(kAll) == 4; }, 1000ms));
  consul.remove("reviews-v1");
  ASSERT_TRUE(until([&] { return endpoints(kAll) == 3; }, 1000ms));
  EXPECT_EQ(endpoints("outbound|9080|v1|reviews.service.consul"), 0u);
  // A new service gets its cluster and virtual host.
  consul.add("ratings-v1", "ratings", "198.18.2.21", 9080, "v1");
  ASSERT_TRUE(until([&] { return endpoints("outbound|9080||ratings.service.consul") == 1; }));
  EXPECT_EQ(route_of("ratings:9080"), "outbound|9080||ratings.service.consul");
  EXPECT_GE(shared.control.consul_propagation.snapshot().count, 3u);
}

TEST_F(ControlTest, NothingChangedNothingPublished) {
  ConsulDouble consul;
  bookinfo_reviews(consul);
  ControlOptions o = options_for(&consul);
  o.watch.wait = 200ms;  // blocking queries time out and return unchanged, often
  run(std::move(o));
  ASSERT_TRUE(until([&] { return endpoints(kAll) == 3; }));
  const uint64_t published = shared.control.publishes.load();
  const uint64_t table_id = table()->id();
  // Re-registering an instance as it is moves Consul's index but not the content.
  consul.add("reviews-v1", "reviews", "198.18.2.11", 9080, "v1");
  std::this_thread::sleep_for(800ms);
  EXPECT_EQ(shared.control.publishes.load(), published);
  EXPECT_EQ(table()->id(), table_id);
}

TEST_F(ControlTest, RulesFromAFileTakeEffectAndABadEditIsRefused) {
  ConsulDouble consul;
  bookinfo_reviews(consul);
  ControlOptions o = options_for(&consul);
  o.rules_path = write("reviews.yaml", istio_file("bookinfo/virtual-service-reviews-v3.yaml"));
  run(std::move(o));
  ASSERT_TRUE(
      until([&] { return route_of("reviews") == "outbound|9080|v3|reviews.service.consul"; }));
  // A broken edit: refused with the reason, the v3 rule keeps serving.
  write("reviews.yaml",
        "apiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\n"
        "metadata: {name: reviews}\nspec: {hosts: [reviews], htp: []}\n");
  ASSERT_TRUE(until([&] { return shared.control.rules_rejected.load() == 1; }));
  EXPECT_NE(shared.control.ready_note().find("spec.htp: unknown field"), std::string::npos)
      << shared.control.ready_note();
  EXPECT_EQ(control_plane()["rules_rejected"][0]["error"],
            (dir / "reviews.yaml").string() + "#1 VirtualService reviews: spec.htp: unknown field");
  EXPECT_EQ(route_of("reviews"), "outbound|9080|v3|reviews.service.consul");
  // Fixed: jason goes to v2, everyone else to v1.
  write("reviews.yaml", istio_file("bookinfo/virtual-service-reviews-test-v2.yaml"));
  ASSERT_TRUE(
      until([&] { return route_of("reviews") == "outbound|9080|v1|reviews.service.consul"; }));
  EXPECT_EQ(route_of("reviews", {{"end-user", "jason"}}),
            "outbound|9080|v2|reviews.service.consul");
  EXPECT_TRUE(control_plane()["rules_rejected"].empty());
}

TEST_F(ControlTest, ARuleDirectoryAndItsUnsupportedFields) {
  ConsulDouble consul;
  bookinfo_reviews(consul);
  std::filesystem::create_directories(dir / "rules");
  write("rules/dr.yaml", istio_file("bookinfo/destination-rule-all.yaml"));
  write("rules/vs.yaml", istio_file("bookinfo/virtual-service-reviews-50-v3.yaml"));
  write("rules/other.yaml", istio_file("fixtures/unsupported.yaml"));
  write("rules/README.txt", "not a rule file");
  ControlOptions o = options_for(&consul);
  o.rules_path = (dir / "rules").string();
  run(std::move(o));
  ASSERT_TRUE(until([&] {
    auto t = table();
    auto* vh = t ? t->find_virtual_host("reviews") : nullptr;
    return vh && vh->config().routes[0].action.weighted_clusters.size() == 2;
  }));
  EXPECT_EQ(shared.control.unsupported_fields.load(), 21u);
  EXPECT_EQ(control_plane()["rules"].size(), 3u);
  EXPECT_EQ(control_plane()["unsupported"].size(), 21u);
}

TEST_F(ControlTest, RulesFromKvAreWatchedAndABadKeyIsRefusedAlone) {
  ConsulDouble consul;
  bookinfo_reviews(consul);
  ControlOptions o = options_for(&consul);
  o.rules_kv_prefix = "sockmesh/rules/";
  run(std::move(o));
  ASSERT_TRUE(until([&] { return route_of("reviews") == kAll; }));
  consul.put("/v1/kv/sockmesh/rules/reviews",
             istio_file("bookinfo/virtual-service-reviews-v3.yaml"));
  ASSERT_TRUE(
      until([&] { return route_of("reviews") == "outbound|9080|v3|reviews.service.consul"; }));
  consul.put("/v1/kv/sockmesh/rules/reviews",
             "apiVersion: networking.istio.io/v1alpha3\n"
             "kind: VirtualService\nmetadata: {name: x}\nspec: 5\n");
  ASSERT_TRUE(until([&] { return shared.control.rules_rejected.load() == 1; }));
  EXPECT_EQ(route_of("reviews"), "outbound|9080|v3|reviews.service.consul");
  EXPECT_NE(shared.control.ready_note().find("kv sockmesh/rules/reviews"), std::string::npos);
  consul.put("/v1/kv/sockmesh/rules/reviews?flags=0", "");  // deleted content: no rules
  ASSERT_TRUE(until([&] { return route_of("reviews") == kAll; }));
}

TEST_F(ControlTest, ConsulLostKeepsTheTableAndARestartServesTheStateDir) {
  auto consul = std::make_unique<ConsulDouble>();
  bookinfo_reviews(*consul);
  ControlOptions o = options_for(consul.get());
  o.state_dir = dir.string();
  run(o);
  ASSERT_TRUE(until([&] { return endpoints(kAll) == 3; }));
  ASSERT_TRUE(until([&] { return std::filesystem::exists(dir / "routes.json"); }));
  consul.reset();  // Consul is gone
  ASSERT_TRUE(
      until([&] { return shared.control.ready_note().find("unreachable") != std::string::npos; }));
  EXPECT_EQ(endpoints(kAll), 3u);  // still serving
  EXPECT_FALSE(control_plane()["consul"]["reachable"]);

  // A restart with Consul still away: the saved table, and it says so.
  control.reset();
  Options opts2;
  Shared fresh(opts2);
  Control again(fresh, o);
  ASSERT_TRUE(again.load_initial().ok());
  ASSERT_TRUE(fresh.routes.current());
  EXPECT_EQ(fresh.routes.current()->find_cluster(kAll)->endpoint_count(), 3u);
  EXPECT_NE(fresh.control.ready_note().find("serving the last good table saved in --state-dir"),
            std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(fresh.control.dump_json())["source"], "state-dir");
}

TEST_F(ControlTest, ConfigIsTheFallbackWhenConsulIsAwayAtStart) {
  const std::string config = write("routes.json", R"({"virtual_hosts": [{"name": "r",
      "domains": ["reviews"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "c"}}]}],
      "clusters": [{"name": "c", "endpoints": [{"address": "198.18.2.3", "port": 9080}]}]})");
  ControlOptions o = options_for(nullptr);
  o.consul = *consul::parse_consul_address("127.0.0.1:" + std::to_string(consul::test::free_port()),
                                           "test");
  o.config_path = config;
  run(std::move(o));
  ASSERT_TRUE(table());
  EXPECT_EQ(route_of("reviews"), "c");
  EXPECT_NE(shared.control.ready_note().find("serving the table from --config"), std::string::npos);
  ASSERT_TRUE(until([&] { return shared.control.consul_errors.load() > 0; }));
  EXPECT_NE(shared.control.ready_note().find("Connection refused"), std::string::npos);
}

TEST_F(ControlTest, ABrokenRuleFileAtStartIsFatal) {
  ConsulDouble consul;
  ControlOptions o = options_for(&consul);
  o.rules_path = write("bad.yaml", "kind: [");
  control = std::make_unique<Control>(shared, std::move(o));
  Status s = control->load_initial();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("invalid YAML"), std::string::npos) << s.error().message();
}

TEST_F(ControlTest, ScopedToSomeServices) {
  ConsulDouble consul;
  bookinfo_reviews(consul);
  consul.add("ratings-v1", "ratings", "198.18.2.21", 9080, "v1");
  ControlOptions o = options_for(&consul);
  o.services = {"ratings"};
  run(std::move(o));
  ASSERT_TRUE(until([&] { return endpoints("outbound|9080||ratings.service.consul") == 1; }));
  EXPECT_EQ(table()->find_cluster(kAll), nullptr);
}

}  // namespace
}  // namespace sm::proxy
