// The admin API's answers (userspace/proxy/admin.cpp), without sockets.
#include "proxy/admin.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "route/config_json.h"

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

TEST_F(AdminTest, ConfigDumpIsTheLoadedTableAndRoundTrips) {
  auto r = admin_->handle("GET", "/config_dump");
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
  EXPECT_EQ(admin.handle("GET", "/config_dump").body, "{\"virtual_hosts\":[],\"clusters\":[]}\n");
}

}  // namespace
}  // namespace sm::proxy
