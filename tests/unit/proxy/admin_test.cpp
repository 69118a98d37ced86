// The admin API's answers (userspace/proxy/admin.cpp), without sockets.
#include "proxy/admin.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sstream>

#include "route/config_json.h"
#include "sockmesh/log.h"

namespace sm::proxy {
namespace {

class AdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    opts_.workers = 2;
    shared_ = std::make_unique<Shared>(opts_);
    auto cfg = route::load_route_config(std::string(SM_ROUTE_FIXTURES) + "/bookinfo.json");
    ASSERT_TRUE(cfg) << cfg.error().message();
    auto table = route::RouteTable::build(std::move(*cfg), shared_->cluster_states);
    ASSERT_TRUE(table) << table.error().message();
    shared_->routes.publish(*table);
    admin_ = std::make_unique<Admin>(*shared_);
  }
  Options opts_;
  std::unique_ptr<Shared> shared_;
  std::unique_ptr<Admin> admin_;
};

TEST_F(AdminTest, NativeConfigDumpIsTheLoadedTableAndRoundTrips) {
  auto r = admin_->handle("GET", "/config_dump?format=sockmesh");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  auto again = route::parse_route_config(r.body);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(route::dump_route_config(*again) + "\n", r.body);
  auto j = nlohmann::json::parse(r.body);
  EXPECT_FALSE(j["virtual_hosts"].empty());
}

TEST_F(AdminTest, ClustersListEndpoints) {
  auto r = admin_->handle("GET", "/clusters");
  EXPECT_NE(
      r.body.find("outbound|9080||reviews.service.consul::default_priority::max_connections::"),
      std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("::health_flags::healthy"), std::string::npos);
}

TEST_F(AdminTest, StatsAndPrometheus) {
  shared_->listener_stats[0].inc(shared_->listener_stats[0].downstream_rq_total, 7);
  shared_->listener_stats[0].downstream_rq_time.record_us(1500);
  auto s = admin_->handle("GET", "/stats");
  EXPECT_NE(s.body.find("listener.outbound.downstream_rq_total: 7"), std::string::npos) << s.body;
  EXPECT_NE(s.body.find("listener.outbound.downstream_rq_time: count=1"), std::string::npos);
  EXPECT_NE(s.body.find("cluster.outbound|9080||reviews.service.consul.upstream_rq_total: 0"),
            std::string::npos);
  auto p = admin_->handle("GET", "/stats/prometheus");
  EXPECT_NE(p.body.find("# TYPE sockmesh_listener_downstream_rq_total counter"), std::string::npos);
  EXPECT_NE(p.body.find("sockmesh_listener_downstream_rq_total{listener=\"outbound\"} 7"),
            std::string::npos);
  EXPECT_NE(
      p.body.find("sockmesh_listener_downstream_rq_time_bucket{listener=\"outbound\",le=\"5\"} 1"),
      std::string::npos);
  EXPECT_NE(p.body.find("sockmesh_cluster_upstream_rq_total{cluster_name=\"outbound|9080||reviews."
                        "service.consul\"} 0"),
            std::string::npos)
      << p.body.substr(0, 2000);
}

TEST_F(AdminTest, RespondFramesEveryAnswerAndRefusesGarbage) {
  EXPECT_EQ(admin_->respond("GET /healthz?verbose=1 HTTP/1.1\r\nHost: x\r\n"),
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\n"
            "server: sockmesh\r\nconnection: close\r\n\r\nOK\n");
  EXPECT_EQ(admin_->respond("").rfind("HTTP/1.1 400 Error\r\n", 0), 0u);
  EXPECT_EQ(admin_->respond("GET\r\n /x y").rfind("HTTP/1.1 400 Error\r\n", 0), 0u);
}

TEST_F(AdminTest, ReadyHealthAndErrors) {
  EXPECT_EQ(admin_->handle("GET", "/ready").status, 503);  // no worker running yet
  shared_->workers_running = 2;
  auto r = admin_->handle("GET", "/ready");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "LIVE\n");
  EXPECT_EQ(admin_->handle("GET", "/healthz").body, "OK\n");
  EXPECT_EQ(admin_->handle("GET", "/nope").status, 404);
  EXPECT_EQ(admin_->handle("POST", "/stats").status, 405);
}

TEST(AdminNoRoutes, EmptyConfigDump) {
  Options o;
  Shared shared(o);
  Admin admin(shared);
  EXPECT_EQ(admin.handle("GET", "/config_dump?format=sockmesh").body,
            "{\"virtual_hosts\":[],\"clusters\":[]}\n");
  // Envoy's shape: the listeners, no cluster and no route configuration yet.
  auto j = nlohmann::json::parse(admin.handle("GET", "/config_dump").body);
  ASSERT_EQ(j["configs"].size(), 3u);
  EXPECT_FALSE(j["configs"][0].contains("dynamic_active_clusters"));
  EXPECT_EQ(j["configs"][1]["static_listeners"].size(), 2u);
  EXPECT_FALSE(j["configs"][2].contains("dynamic_route_configs"));
}

TEST_F(AdminTest, StatsFilterIsAPartialRegexMatchAndUsedOnlySkipsZeros) {
  auto r = admin_->handle("GET", "/stats?filter=^server\\.state$");
  EXPECT_EQ(r.body, "server.state: 2\n");  // PRE_INITIALIZING: no worker runs yet
  shared_->workers_running = 2;
  // What Istio's pilot-agent asks before it calls the sidecar ready (percent-encoded here).
  r = admin_->handle("GET",
                     "/stats?usedonly&filter=%5E%28server%5C.state%7Clistener_manager%5C."
                     "workers_started%29");
  EXPECT_EQ(r.body, "server.state: 0\nlistener_manager.workers_started: 1\n");
  shared_->listener_stats[1].inc(shared_->listener_stats[1].downstream_cx_total, 3);
  r = admin_->handle("GET", "/stats?usedonly&filter=listener\\.");
  EXPECT_EQ(r.body, "listener.inbound.downstream_cx_total: 3\n");
  r = admin_->handle("GET", "/stats?filter=downstream_cx_total");
  EXPECT_EQ(r.body,
            "listener.outbound.downstream_cx_total: 0\nlistener.inbound.downstream_cx_total: 3\n");
  EXPECT_EQ(admin_->handle("GET", "/stats?filter=(").status, 400);
  EXPECT_EQ(admin_->handle("GET", "/stats?format=xml").status, 400);
  shared_->draining = true;
  EXPECT_EQ(admin_->handle("GET", "/stats?filter=^server.state").body, "server.state: 1\n");
  EXPECT_EQ(admin_->handle("GET", "/ready").status, 503);
  EXPECT_EQ(admin_->handle("GET", "/ready").body, "DRAINING\n");
}

TEST_F(AdminTest, PrometheusHasHelpBeforeEveryTypeAndTheServerGauges) {
  auto p = admin_->handle("GET", "/stats/prometheus").body;
  EXPECT_EQ(admin_->handle("GET", "/stats?format=prometheus").body, p);
  std::istringstream in(p);
  std::string line, prev;
  size_t types = 0;
  while (std::getline(in, line)) {
    if (line.starts_with("# TYPE ")) {
      ++types;
      std::string family = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(prev.starts_with("# HELP " + family + " ")) << prev << " / " << line;
    }
    prev = line;
  }
  EXPECT_GT(types, 10u);
  EXPECT_NE(p.find("\nsockmesh_server_state 2\n"), std::string::npos);
  EXPECT_NE(p.find("\nsockmesh_listener_manager_workers_started 0\n"), std::string::npos);
  shared_->workers_running = 2;
  p = admin_->handle("GET", "/stats/prometheus").body;
  EXPECT_NE(p.find("\nsockmesh_server_state 0\n"), std::string::npos);
  EXPECT_NE(p.find("\nsockmesh_listener_manager_workers_started 1\n"), std::string::npos);
}

TEST_F(AdminTest, ListenersTextIsNameAndAddress) {
  auto r = admin_->handle("GET", "/listeners");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body == "outbound::[::]:15001\ninbound::[::]:15006\n" ||
              r.body == "outbound::0.0.0.0:15001\ninbound::0.0.0.0:15006\n")
      << r.body;
}

TEST_F(AdminTest, ResetCountersIsPostOnlyAndZeroesCountersNotGauges) {
  auto& ls = shared_->listener_stats[0];
  ls.inc(ls.downstream_rq_total, 5);
  ls.downstream_cx_active = 2;
  auto table = shared_->routes.current();
  const auto& cluster = table->clusters().front();
  cluster.stats().upstream_rq_total.inc(4);
  auto get = admin_->handle("GET", "/reset_counters");
  EXPECT_EQ(get.status, 405);
  EXPECT_EQ(ls.downstream_rq_total.load(), 5u);  // a GET changes nothing
  auto post = admin_->handle("POST", "/reset_counters");
  EXPECT_EQ(post.status, 200);
  EXPECT_EQ(ls.downstream_rq_total.load(), 0u);
  EXPECT_EQ(cluster.stats().upstream_rq_total.value(), 0u);
  EXPECT_EQ(ls.downstream_cx_active.load(), 2);
  EXPECT_NE(admin_->handle("GET", "/stats").body.find("listener.outbound.downstream_cx_active: 2"),
            std::string::npos);
}

TEST_F(AdminTest, LoggingListsAndSetsLevelsByPostOnly) {
  const log::Level before = log::threshold();
  log::set_threshold(log::Level::info);
  EXPECT_EQ(admin_->handle("GET", "/logging?level=debug").status, 405);
  EXPECT_EQ(log::threshold(), log::Level::info);
  auto list = admin_->handle("POST", "/logging");
  EXPECT_EQ(list.status, 200);
  EXPECT_EQ(list.body, "active loggers:\n  sockmesh: info\n");
  EXPECT_EQ(admin_->handle("POST", "/logging?level=debug").body,
            "active loggers:\n  sockmesh: debug\n");
  EXPECT_EQ(log::threshold(), log::Level::debug);
  EXPECT_EQ(admin_->handle("POST", "/logging?sockmesh=warning").body,
            "active loggers:\n  sockmesh: warning\n");
  EXPECT_EQ(admin_->handle("POST", "/logging?level=critical").body,
            "active loggers:\n  sockmesh: error\n");
  EXPECT_EQ(admin_->handle("POST", "/logging?level=loud").status, 400);
  EXPECT_EQ(admin_->handle("POST", "/logging?upstream=debug").status, 404);
  EXPECT_EQ(log::threshold(), log::Level::error);
  log::set_threshold(before);
}

TEST_F(AdminTest, MutationsArePostOnlyAndReadsGetOnly) {
  for (const char* p : {"/reset_counters", "/logging", "/drain_listeners", "/healthcheck/fail",
                        "/healthcheck/ok", "/quitquitquit"}) {
    EXPECT_EQ(admin_->handle("GET", p).status, 405) << p;
    EXPECT_EQ(admin_->handle("HEAD", p).status, 405) << p;
    EXPECT_EQ(admin_->handle("PUT", p).status, 405) << p;
  }
  for (const char* p : {"/config_dump", "/clusters", "/stats", "/stats/prometheus", "/server_info",
                        "/listeners", "/ready", "/healthz"}) {
    EXPECT_EQ(admin_->handle("POST", p).status, 405) << p;
    EXPECT_NE(admin_->handle("GET", p).status, 405) << p;
  }
  EXPECT_EQ(admin_->respond("POST /reset_counters HTTP/1.1\r\n").rfind("HTTP/1.1 200 OK\r\n", 0),
            0u);
}

// Envoy's /healthcheck/fail and /healthcheck/ok: the server reports DRAINING (and /ready
// 503) while the health check fails, and LIVE again after ok; nothing else changes.
TEST_F(AdminTest, HealthcheckFailTurnsReadyDrainingUntilOk) {
  shared_->workers_running = 2;
  EXPECT_EQ(admin_->handle("POST", "/healthcheck/fail").status, 200);
  EXPECT_TRUE(shared_->health_failed.load());
  auto r = admin_->handle("GET", "/ready");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "DRAINING\n");
  EXPECT_NE(admin_->handle("GET", "/server_info").body.find("\"state\": \"DRAINING\""),
            std::string::npos);
  EXPECT_NE(admin_->handle("GET", "/stats").body.find("server.state: 1"), std::string::npos);
  EXPECT_FALSE(shared_->draining.load());
  EXPECT_EQ(admin_->handle("POST", "/healthcheck/ok").status, 200);
  EXPECT_EQ(admin_->handle("GET", "/ready").status, 200);
}

// POST /drain_listeners asks the main thread (lifecycle.h) for a drain: which listeners
// (?inboundonly) and whether gracefully; an unknown parameter is refused, nothing asked.
TEST_F(AdminTest, DrainListenersRequestsADrainOfTheNamedListeners) {
  EXPECT_EQ(admin_->handle("POST", "/drain_listeners?bogus=1").status, 400);
  EXPECT_EQ(shared_->drain_request.load(), 0);
  EXPECT_EQ(admin_->handle("POST", "/drain_listeners?inboundonly&graceful").status, 200);
  EXPECT_EQ(shared_->drain_request.load(), 0b1000);  // the inbound listener, gracefully
  EXPECT_EQ(admin_->handle("POST", "/drain_listeners").status, 200);  // both, now: kept apart
  EXPECT_EQ(shared_->drain_request.load(), 0b1011);
  EXPECT_FALSE(shared_->quit.load());
  EXPECT_EQ(admin_->handle("POST", "/quitquitquit").status, 200);
  EXPECT_TRUE(shared_->quit.load());
}

TEST_F(AdminTest, ServerInfoShowsTheDrainAndRestartOptions) {
  auto j = nlohmann::json::parse(admin_->handle("GET", "/server_info").body);
  EXPECT_EQ(j["hot_restart_version"], "sockmesh.1");
  EXPECT_EQ(j["command_line_options"]["drain_time"], "2s");
  EXPECT_EQ(j["command_line_options"]["parent_shutdown_time"], "3s");
  EXPECT_FALSE(j["command_line_options"].contains("restart_epoch"));  // 0: the proto default
}

}  // namespace
}  // namespace sm::proxy
