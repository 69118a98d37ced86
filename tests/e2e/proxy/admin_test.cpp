// The admin API on 127.0.0.1:15000 and the access log, checked against real traffic.
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "mesh.h"

namespace sm::test {
namespace {

const std::string kVip = "198.18.2.100";
const std::string kReviews = "outbound|9080||reviews.service.consul";

using Admin = ProxyMesh;

TEST_P(Admin, ConfigDumpShowsTheTableAndRoundTripsThroughConfig) {
  start_routed_proxy();
  // The native table (Envoy's ConfigDump is the plain /config_dump: see the test below).
  HttpResponse dump = admin("/config_dump?format=sockmesh");
  ASSERT_EQ(dump.status, 200) << dump;
  EXPECT_EQ(dump.header("content-type"), "application/json");
  auto j = nlohmann::json::parse(dump.body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << dump.body;
  // What routes.json.in says is what the proxy loaded.
  auto src = nlohmann::json::parse(slurp(routes_path()));
  ASSERT_EQ(j["virtual_hosts"].size(), src["virtual_hosts"].size());
  ASSERT_EQ(j["clusters"].size(), src["clusters"].size());
  for (size_t i = 0; i < src["virtual_hosts"].size(); ++i) {
    EXPECT_EQ(j["virtual_hosts"][i]["name"], src["virtual_hosts"][i]["name"]);
    EXPECT_EQ(j["virtual_hosts"][i]["domains"], src["virtual_hosts"][i]["domains"]);
    EXPECT_EQ(j["virtual_hosts"][i]["routes"].size(), src["virtual_hosts"][i]["routes"].size());
  }
  for (size_t i = 0; i < src["clusters"].size(); ++i) {
    EXPECT_EQ(j["clusters"][i]["name"], src["clusters"][i]["name"]);
    EXPECT_EQ(j["clusters"][i].value("endpoints", nlohmann::json::array()).size(),
              src["clusters"][i]["endpoints"].size());
  }
  EXPECT_EQ(j["clusters"][0]["endpoints"][1]["address"], kSrv2);
  EXPECT_EQ(j["virtual_hosts"][0]["routes"][0]["match"]["headers"][0]["exact_match"], "jason");
  // Fed back as --config to a second proxy (own ports), the dump comes back the same.
  std::string file = tmp_->write("dump.json", dump.body);
  ProxyFlags second;
  second.config = file;
  second.admin_port = 15100;
  second.outbound_port = 15101;
  second.inbound_port = 15106;
  launch_proxy(second);
  HttpResponse again = admin("/config_dump?format=sockmesh", 15100);
  ASSERT_EQ(again.status, 200) << again;
  EXPECT_EQ(again.body, dump.body);
}

// Envoy's operational endpoints on a running proxy, read as Envoy's tools read them.
TEST_P(Admin, EnvoyEndpointsAnswerInEnvoysShapes) {
  start_routed_proxy();
  auto src = nlohmann::json::parse(slurp(routes_path()));
  HttpResponse dump = admin("/config_dump?resource=dynamic_active_clusters&mask=cluster.name");
  ASSERT_EQ(dump.status, 200) << dump;
  auto clusters = nlohmann::json::parse(dump.body)["configs"];
  ASSERT_EQ(clusters.size(), src["clusters"].size()) << dump.body;
  for (size_t i = 0; i < clusters.size(); ++i)
    EXPECT_EQ(clusters[i]["cluster"]["name"], src["clusters"][i]["name"]);
  auto routes = nlohmann::json::parse(admin("/config_dump?resource=dynamic_route_configs").body);
  EXPECT_EQ(routes["configs"][0]["route_config"]["virtual_hosts"].size(),
            src["virtual_hosts"].size());

  HttpResponse info = admin("/server_info");
  ASSERT_EQ(info.status, 200) << info;
  auto si = nlohmann::json::parse(info.body);
  EXPECT_EQ(si["state"], "LIVE");
  EXPECT_TRUE(si["uptime_current_epoch"].get<std::string>().ends_with("s"));
  // Istio's pilot-agent readiness query.
  HttpResponse ready = admin(
      "/stats?usedonly&filter=%5E%28server%5C.state%7Clistener_manager%5C."
      "workers_started%29");
  EXPECT_EQ(ready.body, "server.state: 0\nlistener_manager.workers_started: 1\n") << ready;
  EXPECT_NE(admin("/listeners").body.find("outbound::"), std::string::npos);
  EXPECT_NE(admin("/stats/prometheus").body.find("# HELP sockmesh_server_state "),
            std::string::npos);

  // Traffic counts, a POST /reset_counters zeroes it; a GET is refused and changes nothing.
  EXPECT_EQ(http(kVip, 80, get("dead", "/")).status, 503);  // no server needed to count
  EXPECT_GT(stats()["listener.outbound.downstream_rq_total"], 0u);
  EXPECT_EQ(admin("/reset_counters").status, 405);
  EXPECT_GT(stats()["listener.outbound.downstream_rq_total"], 0u);
  HttpResponse reset = HttpResponse::parse(run_in(Place::in(*app_), [&](std::string& out) {
    HttpConn c("127.0.0.1", 15000);
    c.send("POST /reset_counters HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n");
    out = c.read(3000).serialize();
  }));
  EXPECT_EQ(reset.status, 200) << reset;
  EXPECT_EQ(stats()["listener.outbound.downstream_rq_total"], 0u);
}

TEST_P(Admin, ClustersListsEndpointsAndTheirHealth) {
  start_routed_proxy();
  // Five connect failures in a row eject the dead endpoint (outlier detection default).
  for (int i = 0; i < 5; ++i) EXPECT_EQ(http(kVip, 80, get("dead", "/")).status, 503);
  HttpResponse r = admin("/clusters");
  ASSERT_EQ(r.status, 200) << r;
  const std::string& b = r.body;
  for (const std::string& line : {kReviews + "::" + kSrv1 + ":9080::health_flags::healthy",
                                  kReviews + "::" + kSrv2 + ":9080::health_flags::healthy",
                                  kReviews + "::" + kSrv1 + ":9080::label::version=v1",
                                  kReviews + "::" + kSrv2 + ":9080::weight::1",
                                  std::string("breaker::default_priority::max_requests::1"),
                                  "dead::" + kSrv1 + ":9999::health_flags::/failed_outlier_check"})
    EXPECT_NE(b.find(line + "\n"), std::string::npos) << line << "\nin\n" << b;
  EXPECT_EQ(b.find("empty::198."), std::string::npos) << b;
}

TEST_P(Admin, StatsAndPrometheusCountTheTraffic) {
  start_nginx(*srv1_, kSrv1 + ":9080", "v1");
  start_nginx(*srv2_, kSrv2 + ":9080", "v2");
  start_routed_proxy();
  auto rs = http_seq(kVip, 9080, std::vector<std::string>(3, get("reviews", "/")));
  for (const auto& r : rs) EXPECT_EQ(r.status, 200) << r;
  EXPECT_EQ(http(kSrv1, 9080, get("direct", "/")).status, 200);
  auto s = stats();
  EXPECT_EQ(s["listener.outbound.downstream_rq_total"], 4u);
  EXPECT_EQ(s["listener.outbound.downstream_rq_2xx"], 4u);
  EXPECT_EQ(s["listener.outbound.downstream_cx_total"], 2u);
  EXPECT_EQ(s["listener.outbound.downstream_rq_active"], 0u);
  EXPECT_EQ(s["cluster." + kReviews + ".upstream_rq_total"], 3u);
  EXPECT_EQ(s["cluster." + kReviews + ".upstream_rq_2xx"], 3u);
  EXPECT_EQ(s["cluster." + kReviews + ".membership_total"], 2u);
  EXPECT_EQ(s["listener.inbound.downstream_rq_total"], 0u);
  HttpResponse text = admin("/stats");
  EXPECT_NE(text.body.find("listener.outbound.downstream_rq_time: count=4 "), std::string::npos)
      << text.body;

  HttpResponse p = admin("/stats/prometheus");
  ASSERT_EQ(p.status, 200) << p;
  EXPECT_EQ(p.header("content-type").rfind("text/plain; version=0.0.4", 0), 0u) << p;
  for (const std::string& line : {
           std::string("# TYPE sockmesh_listener_downstream_rq_total counter"),
           std::string("sockmesh_listener_downstream_rq_total{listener=\"outbound\"} 4"),
           std::string("sockmesh_listener_downstream_rq_total{listener=\"inbound\"} 0"),
           std::string("sockmesh_listener_downstream_rq_time_count{listener=\"outbound\"} 4"),
           std::string(
               "sockmesh_listener_downstream_rq_time_bucket{listener=\"outbound\",le=\"+Inf\"} 4"),
           "sockmesh_cluster_upstream_rq_total{cluster_name=\"" + kReviews + "\"} 3",
           "sockmesh_cluster_upstream_rq_2xx{cluster_name=\"" + kReviews + "\"} 3",
       })
    EXPECT_NE(p.body.find(line + "\n"), std::string::npos) << line << "\nin\n" << p.body;
}

TEST_P(Admin, ReadyHealthzAndUnknownPaths) {
  start_proxy();
  HttpResponse ready = admin("/ready");
  EXPECT_EQ(ready.status, 200) << ready;
  EXPECT_EQ(ready.body, "LIVE\n");
  HttpResponse health = admin("/healthz");
  EXPECT_EQ(health.status, 200) << health;
  EXPECT_EQ(health.body, "OK\n");
  EXPECT_EQ(admin("/nope").status, 404);
  // Without a route table the dump is empty, not an error.
  HttpResponse dump = admin("/config_dump?format=sockmesh");
  EXPECT_EQ(dump.status, 200) << dump;
  auto j = nlohmann::json::parse(dump.body, nullptr, false);
  EXPECT_TRUE(!j.is_discarded() && j["virtual_hosts"].empty() && j["clusters"].empty()) << dump;
}

// The admin API listens on 127.0.0.1 only: another host must not reach it, even though the
// inbound listener forwards steered connections to 127.0.0.1:<port>.
TEST_P(Admin, AdminApiIsNotReachableFromOtherHosts) {
  start_proxy();
  HttpResponse r = HttpResponse::parse(run_in(Place::in(*srv1_, kAppUid), [&](std::string& out) {
    HttpConn c(kApp, 15000);
    if (!c.ok()) {
      HttpResponse e;
      e.error = std::string("connect: ") + strerrorname_np(c.connect_error());
      out = e.serialize();
      return;
    }
    c.send(get(kApp + ":15000", "/stats"));
    out = c.read(3000).serialize();
  }));
  EXPECT_EQ(r.body.find("listener.outbound"), std::string::npos)
      << "GET http://" << kApp << ":15000/stats from another host answered:\n"
      << r;
}

TEST_P(Admin, AccessLogHasOneJsonLinePerRequest) {
  start_nginx(*srv1_, kSrv1 + ":9080", "v1");
  start_nginx(*srv2_, kSrv2 + ":9080", "v2");
  std::string log = tmp_->file("access.log");
  start_routed_proxy("--access-log " + log);
  auto routed = http_seq(kVip, 9080,
                         {get("reviews:9080", "/a", "x-request-id: rid-a\r\nuser-agent: e2e\r\n"),
                          get("reviews:9080", "/b"), get("dead", "/nope")});
  ASSERT_EQ(routed.size(), 3u);
  EXPECT_EQ(http(kSrv1, 9080, get("direct", "/c")).status, 200);
  EXPECT_EQ(http(kSrv1, 9080, "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n").status, 400);

  std::vector<nlohmann::json> lines;
  for (int i = 0; i < 100 && lines.size() < 5; ++i) {
    lines.clear();
    std::istringstream in(slurp(log));
    for (std::string l; std::getline(in, l);)
      lines.push_back(nlohmann::json::parse(l, nullptr, false));
    if (lines.size() < 5) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(lines.size(), 5u) << slurp(log);
  std::multiset<int> codes;
  std::map<std::string, nlohmann::json> by_path;
  for (const auto& j : lines) {
    ASSERT_FALSE(j.is_discarded()) << slurp(log);
    codes.insert(j.value("response_code", -1));
    by_path[j.value("path", "")] = j;
  }
  EXPECT_EQ(codes, (std::multiset<int>{200, 200, 200, 503, 400})) << slurp(log);
  const auto& a = by_path["/a"];
  EXPECT_EQ(a["x_request_id"], "rid-a");
  EXPECT_EQ(a["user_agent"], "e2e");
  EXPECT_EQ(a["authority"], "reviews:9080");
  EXPECT_EQ(a["method"], "GET");
  EXPECT_EQ(a["upstream_cluster"], kReviews);
  EXPECT_EQ(a["listener"], "outbound");
  EXPECT_EQ(by_path["/b"]["upstream_host"],
            routed[1].header("x-served-by") == "v1" ? kSrv1 + ":9080" : kSrv2 + ":9080");
  EXPECT_EQ(by_path["/nope"]["response_flags"], "UF");
  EXPECT_EQ(by_path["/nope"]["upstream_cluster"], "dead");
  EXPECT_EQ(by_path["/c"]["upstream_cluster"], "PassthroughCluster");
  EXPECT_EQ(by_path["/c"]["upstream_host"], kSrv1 + ":9080");
}

INSTANTIATE_TEST_SUITE_P(Modes, Admin, ::testing::Values(Mode::ebpf, Mode::iptables), mode_name);

}  // namespace
}  // namespace sm::test
