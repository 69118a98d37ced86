// translate.h: Consul's catalog + Istio's rules -> the route table pilot would have pushed.
#include "istio/translate.h"

#include <gtest/gtest.h>

#include "istio_test_util.h"
#include "route/cluster_state.h"
#include "route/route_table.h"

namespace sm::istio {
namespace {

using test::bookinfo;
using test::instance;
using test::load;

const route::ClusterConfig* find_cluster(const route::RouteConfig& c, const std::string& name) {
  for (const auto& cl : c.clusters)
    if (cl.name == name) return &cl;
  return nullptr;
}
const route::VirtualHostConfig* find_vhost(const route::RouteConfig& c, const std::string& name) {
  for (const auto& vh : c.virtual_hosts)
    if (vh.name == name) return &vh;
  return nullptr;
}

// The table must also be one RouteTable::build accepts.
Translation translated(const MeshCatalog& catalog, const RuleSet& rules,
                       TranslateOptions options = {}) {
  Translation t = translate(catalog, rules, options);
  route::ClusterStateRegistry states;
  auto table = route::RouteTable::build(t.config, states);
  EXPECT_TRUE(table.ok()) << table.error().message();
  return t;
}

RuleSet bookinfo_rules(std::initializer_list<const char*> files) {
  RuleSet r;
  for (const char* f : files) r.append(load(std::string("bookinfo/") + f));
  return r;
}

TEST(Translate, CatalogAloneGivesClustersSubsetsAndTheSixDomains) {
  Translation t = translated(bookinfo(), {});
  EXPECT_TRUE(t.notes.empty());
  const route::ClusterConfig* all = find_cluster(t.config, "outbound|9080||reviews.service.consul");
  ASSERT_NE(all, nullptr);
  EXPECT_EQ(all->endpoints.size(), 3u);
  for (const char* v : {"v1", "v2", "v3"}) {
    const route::ClusterConfig* sub =
        find_cluster(t.config, std::string("outbound|9080|") + v + "|reviews.service.consul");
    ASSERT_NE(sub, nullptr) << v;
    ASSERT_EQ(sub->endpoints.size(), 1u);
    EXPECT_TRUE(sub->endpoints[0].labels.empty());  // the selection says it; not repeated
    EXPECT_EQ(sub->endpoints[0].address,
              all->endpoints[v[1] - '1'].address);  // v1, v2, v3 in address order
  }
  EXPECT_EQ(all->endpoints[1].labels.at("version"), "v2");
  const route::VirtualHostConfig* vh = find_vhost(t.config, "reviews.service.consul:9080");
  ASSERT_NE(vh, nullptr);
  EXPECT_EQ(vh->domains, (std::vector<std::string>{
                             "reviews.service.consul", "reviews.service.consul:9080", "reviews",
                             "reviews:9080", "reviews.service", "reviews.service:9080"}));
  ASSERT_EQ(vh->routes.size(), 1u);
  EXPECT_EQ(vh->routes[0].match.value, "/");
  EXPECT_EQ(vh->routes[0].action.cluster, "outbound|9080||reviews.service.consul");
  EXPECT_EQ(vh->routes[0].action.timeout, route::Duration(0));  // as the seed's config_dump
  ASSERT_TRUE(vh->routes[0].action.retry_policy);               // Istio's default: 2 retries
  EXPECT_EQ(vh->routes[0].action.retry_policy->num_retries, 2u);
  EXPECT_EQ(vh->routes[0].action.retry_policy->retriable_status_codes, std::vector<uint16_t>{503});
  EXPECT_EQ(t.config.virtual_hosts.size(), 4u);
}

TEST(Translate, WeightsAndEndpointsFromConsul) {
  MeshCatalog c;
  consul::Instance a = instance("a", "198.18.2.3", "v1"), b = instance("b", "2001:2::4", "");
  a.weight = 10;
  c["ratings"] = {9080, {a, b}};
  Translation t = translated(c, {});
  const route::ClusterConfig* cl = find_cluster(t.config, "outbound|9080||ratings.service.consul");
  ASSERT_NE(cl, nullptr);
  ASSERT_EQ(cl->endpoints.size(), 2u);
  EXPECT_EQ(cl->endpoints[0].weight, 10u);
  EXPECT_EQ(cl->endpoints[1].address.str(), "2001:2::4");
  // Only instances with a version make subsets.
  EXPECT_NE(find_cluster(t.config, "outbound|9080|v1|ratings.service.consul"), nullptr);
  EXPECT_EQ(t.config.clusters.size(), 2u);
}

TEST(Translate, ReviewsTestV2RoutesJasonToV2AndTheRestToV1) {
  Translation t = translated(bookinfo(), bookinfo_rules({"destination-rule-all.yaml",
                                                         "virtual-service-reviews-test-v2.yaml"}));
  // bookinfo's DestinationRule has a details v2 subset; this catalog has no details v2.
  EXPECT_EQ(t.notes, std::vector<std::string>{
                         "bookinfo/destination-rule-all.yaml#4 DestinationRule details: subset v2: "
                         "no passing instance of details has its labels"});
  const route::VirtualHostConfig* vh = find_vhost(t.config, "reviews.service.consul:9080");
  ASSERT_EQ(vh->routes.size(), 2u);
  const route::RouteEntryConfig& jason = vh->routes[0];
  ASSERT_EQ(jason.match.headers.size(), 1u);
  EXPECT_EQ(jason.match.headers[0].name, "end-user");
  EXPECT_EQ(jason.match.headers[0].kind, route::HeaderMatcherConfig::Kind::exact);
  EXPECT_EQ(jason.match.headers[0].value, "jason");
  EXPECT_EQ(jason.action.cluster, "outbound|9080|v2|reviews.service.consul");
  EXPECT_EQ(vh->routes[1].action.cluster, "outbound|9080|v1|reviews.service.consul");
  // Routing a request through the built table does what the rule says.
  route::ClusterStateRegistry states;
  auto table = *route::RouteTable::build(t.config, states);
  std::vector<http::Header> hj = {{"end-user", "jason"}};
  route::RequestView jreq{"reviews:9080", "/reviews/0", "GET", hj};
  EXPECT_EQ(table->route(jreq, 0).cluster->name(), "outbound|9080|v2|reviews.service.consul");
  route::RequestView other{"reviews.service.consul", "/reviews/0", "GET", {}};
  EXPECT_EQ(table->route(other, 0).cluster->name(), "outbound|9080|v1|reviews.service.consul");
}

TEST(Translate, FiftyFiftySplit) {
  Translation t = translated(bookinfo(), bookinfo_rules({"destination-rule-all.yaml",
                                                         "virtual-service-reviews-50-v3.yaml"}));
  const route::VirtualHostConfig* vh = find_vhost(t.config, "reviews.service.consul:9080");
  ASSERT_EQ(vh->routes.size(), 1u);
  const auto& w = vh->routes[0].action.weighted_clusters;
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].name, "outbound|9080|v1|reviews.service.consul");
  EXPECT_EQ(w[0].weight, 50u);
  EXPECT_EQ(w[1].name, "outbound|9080|v3|reviews.service.consul");
  EXPECT_EQ(w[1].weight, 50u);
}

TEST(Translate, RatingsAbortForJason) {
  Translation t = translated(
      bookinfo(),
      bookinfo_rules({"destination-rule-all.yaml", "virtual-service-ratings-test-abort.yaml"}));
  const route::VirtualHostConfig* vh = find_vhost(t.config, "ratings.service.consul:9080");
  ASSERT_EQ(vh->routes.size(), 2u);
  ASSERT_TRUE(vh->routes[0].action.fault && vh->routes[0].action.fault->abort);
  EXPECT_EQ(vh->routes[0].action.fault->abort->http_status, 500);
  EXPECT_EQ(vh->routes[0].action.fault->abort->percent, 100.0);
  EXPECT_FALSE(vh->routes[1].action.fault);
}

TEST(Translate, EverySupportedFieldReachesTheTable) {
  TranslateOptions own;
  own.own_labels = labels_from_service_cluster("productpage-v1");
  own.own_labels_known = true;
  Translation t = translated(bookinfo(), load("fixtures/all_fields.yaml"), own);
  EXPECT_TRUE(t.notes.empty()) << t.notes[0];
  const route::VirtualHostConfig* vh = find_vhost(t.config, "reviews.service.consul:9080");
  ASSERT_EQ(vh->routes.size(), 4u);  // two matches of the first route, then two routes
  const route::RouteEntryConfig& a = vh->routes[0];
  EXPECT_EQ(a.name, "jason");
  EXPECT_EQ(a.match.kind, route::RouteMatchConfig::PathKind::prefix);
  EXPECT_EQ(a.match.value, "/reviews/");
  EXPECT_FALSE(a.match.case_sensitive);
  using K = route::HeaderMatcherConfig::Kind;
  ASSERT_EQ(a.match.headers.size(), 4u);
  EXPECT_EQ(a.match.headers[0].name, ":method");
  EXPECT_EQ(a.match.headers[1].name, "end-user");
  EXPECT_EQ(a.match.headers[2].name, "x-canary");
  EXPECT_EQ(a.match.headers[2].kind, K::present);
  EXPECT_EQ(a.match.headers[3].name, "x-debug");
  EXPECT_EQ(a.match.headers[3].kind, K::prefix);
  EXPECT_TRUE(a.match.headers[3].invert);
  EXPECT_EQ(a.action.cluster, "outbound|9080|v2|reviews.service.consul");
  EXPECT_EQ(a.action.timeout, std::chrono::milliseconds(2500));
  ASSERT_TRUE(a.action.retry_policy);
  EXPECT_EQ(a.action.retry_policy->num_retries, 3u);
  EXPECT_EQ(a.action.retry_policy->per_try_timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(a.action.retry_policy->retry_on, route::retry_on::k5xx |
                                                 route::retry_on::kConnectFailure |
                                                 route::retry_on::kRetriableStatusCodes);
  EXPECT_EQ(a.action.retry_policy->retriable_status_codes, std::vector<uint16_t>{409});
  ASSERT_TRUE(a.action.fault);
  EXPECT_EQ(a.action.fault->delay->fixed_delay, std::chrono::seconds(7));
  EXPECT_EQ(a.action.fault->delay->percent, 10.5);
  EXPECT_EQ(a.action.fault->abort->http_status, 503);
  EXPECT_EQ(a.action.prefix_rewrite, "/v2/reviews/");
  EXPECT_EQ(a.action.host_rewrite, "reviews-v2.service.consul");
  const route::RouteEntryConfig& b = vh->routes[1];
  EXPECT_EQ(b.match.kind, route::RouteMatchConfig::PathKind::regex);
  EXPECT_EQ(b.match.headers[0].name, ":authority");
  EXPECT_EQ(b.match.headers[1].kind, K::regex);
  EXPECT_EQ(b.action, a.action);  // one Istio route, one action per match
  EXPECT_EQ(vh->routes[2].action.cluster, "outbound|9080|v3|reviews.service.consul");
  EXPECT_FALSE(vh->routes[3].action.retry_policy);  // attempts: 0

  const route::ClusterConfig* all = find_cluster(t.config, "outbound|9080||reviews.service.consul");
  EXPECT_EQ(all->lb_policy, route::LbPolicy::least_request);
  EXPECT_EQ(all->circuit_breakers.max_connections, 100u);
  EXPECT_EQ(all->circuit_breakers.max_pending_requests, 10u);
  EXPECT_EQ(all->circuit_breakers.max_requests, 1000u);
  EXPECT_EQ(all->circuit_breakers.max_retries, 4u);
  EXPECT_EQ(all->connect_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(all->max_requests_per_connection, 5u);
  EXPECT_EQ(all->idle_timeout, std::chrono::seconds(30));
  EXPECT_EQ(all->outlier_detection.consecutive_5xx, 7u);
  EXPECT_EQ(all->outlier_detection.consecutive_gateway_failure, 3u);
  EXPECT_EQ(all->outlier_detection.interval, std::chrono::seconds(5));
  EXPECT_EQ(all->outlier_detection.base_ejection_time, std::chrono::seconds(15));
  EXPECT_EQ(all->outlier_detection.max_ejection_percent, 50u);
  EXPECT_EQ(all->healthy_panic_threshold, 20u);
  // Subset policies override the rule's, field by field.
  const route::ClusterConfig* v2 =
      find_cluster(t.config, "outbound|9080|v2|reviews.service.consul");
  EXPECT_EQ(v2->lb_policy, route::LbPolicy::random);
  EXPECT_EQ(v2->circuit_breakers.max_connections, 100u);
  const route::ClusterConfig* v3 =
      find_cluster(t.config, "outbound|9080|v3|reviews.service.consul");
  EXPECT_EQ(v3->lb_policy, route::LbPolicy::round_robin);
  EXPECT_EQ(v3->outlier_detection.consecutive_gateway_failure, 2u);
  EXPECT_EQ(v3->outlier_detection.consecutive_5xx, 5u);  // Istio/Envoy's default
  EXPECT_EQ(v3->outlier_detection.max_ejection_percent, 10u);
}

TEST(Translate, SourceLabelsNeedToKnowThisSidecar) {
  RuleSet r = load("fixtures/all_fields.yaml");
  // Unknown labels: the match is left out, and said so.
  Translation unknown = translated(bookinfo(), r);
  EXPECT_EQ(find_vhost(unknown.config, "reviews.service.consul:9080")->routes.size(), 3u);
  ASSERT_EQ(unknown.notes.size(), 1u);
  EXPECT_NE(unknown.notes[0].find("sourceLabels"), std::string::npos);
  // Another workload's sidecar: the match does not apply, silently.
  TranslateOptions ratings;
  ratings.own_labels = labels_from_service_cluster("ratings-v1");
  ratings.own_labels_known = true;
  Translation other = translated(bookinfo(), r, ratings);
  EXPECT_EQ(find_vhost(other.config, "reviews.service.consul:9080")->routes.size(), 3u);
  EXPECT_TRUE(other.notes.empty());
}

TEST(Translate, WhatCannotBeServedIsNoted) {
  const std::string yaml = R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [reviews, nowhere.service.consul]
  http:
  - route:
    - destination: {host: reviews, subset: v9}
      weight: 90
    - destination: {host: ghost, port: {number: 8080}}
      weight: 10
)";
  auto rules = parse_rules(yaml, "n.yaml");
  ASSERT_TRUE(rules.ok()) << rules.error().message();
  Translation t = translated(bookinfo(), *rules);
  std::vector<std::string> want = {
      "n.yaml#1 VirtualService r: host nowhere.service.consul: no such service in Consul (yet)",
      "n.yaml#1 VirtualService r: destination reviews subset v9: not defined (no "
      "DestinationRule subset, no instance version); requests get 503",
      "n.yaml#1 VirtualService r: destination ghost: no such service in Consul (yet); requests "
      "get 503"};
  EXPECT_EQ(t.notes, want);
  const route::ClusterConfig* v9 =
      find_cluster(t.config, "outbound|9080|v9|reviews.service.consul");
  ASSERT_NE(v9, nullptr);
  EXPECT_TRUE(v9->endpoints.empty());
  EXPECT_NE(find_cluster(t.config, "outbound|8080||ghost.service.consul"), nullptr);
}

TEST(Translate, WildcardHostAppliesWhereNoExactRuleDoes) {
  const std::string yaml = R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: all}
spec:
  hosts: ["*.service.consul"]
  http:
  - timeout: 3s
    route:
    - destination: {host: details}
)";
  RuleSet r = *parse_rules(yaml, "w.yaml");
  r.append(load("bookinfo/virtual-service-reviews-v3.yaml"));
  Translation t = translated(bookinfo(), r);
  EXPECT_EQ(find_vhost(t.config, "ratings.service.consul:9080")->routes[0].action.timeout,
            std::chrono::seconds(3));
  EXPECT_EQ(find_vhost(t.config, "reviews.service.consul:9080")->routes[0].action.cluster,
            "outbound|9080|v3|reviews.service.consul");
}

TEST(Translate, SameInputsSameTable) {
  RuleSet r = bookinfo_rules({"destination-rule-all.yaml", "virtual-service-reviews-v2-v3.yaml"});
  EXPECT_EQ(translate(bookinfo(), r, {}).config, translate(bookinfo(), r, {}).config);
}

TEST(Translate, ServicePortIsTheMostCommonOne) {
  consul::Instances i = {instance("a", "198.18.2.1", "", 9081),
                         instance("b", "198.18.2.2", "", 9080),
                         instance("c", "198.18.2.3", "", 9081)};
  EXPECT_EQ(service_port(i), 9081);
  EXPECT_EQ(
      service_port({instance("a", "198.18.2.1", "", 90), instance("b", "198.18.2.2", "", 80)}),
      80);  // a tie: the lowest
  EXPECT_EQ(service_port({}), 0);
}

TEST(Translate, LabelsFromTheServiceClusterName) {
  using L = std::map<std::string, std::string>;
  EXPECT_EQ(labels_from_service_cluster("productpage-v1"),
            (L{{"app", "productpage"}, {"version", "v1"}}));
  EXPECT_EQ(labels_from_service_cluster("reviews-v2.1"),
            (L{{"app", "reviews"}, {"version", "v2.1"}}));
  EXPECT_EQ(labels_from_service_cluster("api-gateway"), (L{{"app", "api-gateway"}}));
  EXPECT_EQ(labels_from_service_cluster("web"), (L{{"app", "web"}}));
}

}  // namespace
}  // namespace sm::istio
