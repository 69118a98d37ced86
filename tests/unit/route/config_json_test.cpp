// config_json.h: --config and /config_dump share one JSON shape; a dump reads back equal, is
// stable, and every error names its field.
#include "route/config_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "route_test_util.h"

namespace sm::route {
namespace {

using json = nlohmann::json;
using test::load_fixture;
using test::read_fixture;

class RouteConfigRoundTrip : public ::testing::TestWithParam<const char*> {};

TEST_P(RouteConfigRoundTrip, ParseDumpParseIsEqualAndTheDumpIsStable) {
  RouteConfig first = load_fixture(GetParam());
  const std::string dump = dump_route_config(first);
  auto second = parse_route_config(dump);
  ASSERT_TRUE(second.ok()) << second.error().message() << "\n" << dump;
  EXPECT_EQ(*second, first);
  EXPECT_EQ(dump_route_config(*second), dump);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, RouteConfigRoundTrip,
                         ::testing::Values("minimal.json", "bookinfo.json", "features.json",
                                           "control_features.json"),
                         [](const auto& p) {
                           std::string n = p.param;
                           return n.substr(0, n.find('.'));
                         });

TEST(RouteConfigJson, DumpOfTheMinimalShapeIsThatShape) {
  // Defaults are left out, so the brief's minimal table dumps as itself.
  const std::string text = read_fixture("minimal.json");
  auto config = parse_route_config(text);
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(json::parse(dump_route_config(*config)), json::parse(text));
}

TEST(RouteConfigJson, BookinfoTable) {
  RouteConfig c = load_fixture("bookinfo.json");
  ASSERT_EQ(c.virtual_hosts.size(), 4u);
  const VirtualHostConfig& reviews = c.virtual_hosts[2];
  EXPECT_EQ(reviews.domains, (std::vector<std::string>{
                                 "reviews.service.consul", "reviews.service.consul:9080", "reviews",
                                 "reviews:9080", "reviews.service", "reviews.service:9080"}));
  ASSERT_EQ(reviews.routes.size(), 2u);
  EXPECT_EQ(reviews.routes[0].match.headers[0].name, "end-user");
  EXPECT_EQ(reviews.routes[0].action.cluster, "outbound|9080|v2|reviews.service.consul");
  const RouteActionConfig& split = reviews.routes[1].action;
  ASSERT_EQ(split.weighted_clusters.size(), 2u);
  EXPECT_EQ(split.weighted_clusters[1].name, "outbound|9080|v3|reviews.service.consul");
  ASSERT_TRUE(split.retry_policy);
  EXPECT_EQ(split.retry_policy->retry_on,
            retry_on::kConnectFailure | retry_on::kRefusedStream | retry_on::kGatewayError);
  EXPECT_EQ(split.retry_policy->num_retries, 2u);
  EXPECT_EQ(split.retry_policy->per_try_timeout, std::chrono::seconds(2));

  auto find = [&](const std::string& name) -> const ClusterConfig& {
    for (const auto& cl : c.clusters)
      if (cl.name == name) return cl;
    ADD_FAILURE() << "no cluster " << name;
    return c.clusters[0];
  };
  const ClusterConfig& all = find("outbound|9080||reviews.service.consul");
  EXPECT_EQ(all.lb_policy, LbPolicy::least_request);
  EXPECT_EQ(all.endpoints.size(), 3u);
  EXPECT_EQ(all.connect_timeout, std::chrono::seconds(10));
  EXPECT_EQ(all.circuit_breakers.max_connections, 100u);
  EXPECT_EQ(all.circuit_breakers.max_retries, 3u);  // default kept
  ASSERT_TRUE(all.circuit_breakers.retry_budget);
  EXPECT_EQ(all.circuit_breakers.retry_budget->min_retry_concurrency, 5u);
  EXPECT_EQ(all.outlier_detection.consecutive_local_origin_failure, 3u);
  const ClusterConfig& v3 = find("outbound|9080|v3|reviews.service.consul");
  ASSERT_EQ(v3.endpoints.size(), 1u);
  EXPECT_EQ(v3.endpoints[0].address.str(), "198.18.0.14");
  EXPECT_EQ(v3.endpoints[0].labels.at("version"), "v3");
  EXPECT_EQ(find("outbound|9080|v1|ratings.service.consul").endpoints[0].port, 9080);
}

TEST(RouteConfigJson, EveryFeatureParses) {
  RouteConfig c = load_fixture("features.json");
  const auto& routes = c.virtual_hosts[0].routes;
  EXPECT_EQ(routes[0].match.kind, RouteMatchConfig::PathKind::path);
  EXPECT_FALSE(routes[0].match.case_sensitive);
  EXPECT_EQ(routes[0].action.timeout, Duration(0));
  EXPECT_EQ(routes[0].action.prefix_rewrite, "/ready");
  const auto& headers = routes[1].match.headers;
  ASSERT_EQ(headers.size(), 5u);
  EXPECT_EQ(headers[1].kind, HeaderMatcherConfig::Kind::prefix);
  EXPECT_TRUE(headers[1].invert);
  EXPECT_EQ(headers[3].kind, HeaderMatcherConfig::Kind::present);
  EXPECT_FALSE(headers[3].present);
  const RetryPolicy& p = *routes[1].action.retry_policy;
  EXPECT_EQ(p.retriable_status_codes, (std::vector<uint16_t>{429, 503}));
  EXPECT_EQ(p.base_interval, std::chrono::milliseconds(10));
  EXPECT_EQ(p.max_interval, std::chrono::seconds(1));
  EXPECT_EQ(*routes[2].action.retry_policy, RetryPolicy{});  // "retry_policy": {}
  const ClusterConfig& api = c.clusters[0];
  EXPECT_EQ(api.lb_policy, LbPolicy::least_request);  // Envoy's capitals accepted
  EXPECT_EQ(api.endpoints[0].weight, 3u);
  EXPECT_EQ(api.circuit_breakers.retry_budget, RetryBudget{});
  EXPECT_EQ(api.outlier_detection.consecutive_local_origin_failure, 0u);
  EXPECT_EQ(api.healthy_panic_threshold, 0u);
  EXPECT_EQ(api.max_requests_per_connection, 100u);
  EXPECT_EQ(api.idle_timeout, std::chrono::microseconds(1));
}

TEST(RouteConfigJson, EndpointsOfBothFamilies) {
  // IPv6 as written; a v4-mapped IPv6 spelling is the IPv4 address (one form for both).
  RouteConfig c = load_fixture("features.json");
  const ClusterConfig& canary = c.clusters[1];
  ASSERT_EQ(canary.endpoints.size(), 2u);
  EXPECT_FALSE(canary.endpoints[0].address.is_v4());
  EXPECT_EQ(canary.endpoints[0].address.str(), "2001:2::11");
  EXPECT_TRUE(canary.endpoints[1].address.is_v4());
  EXPECT_EQ(canary.endpoints[1].address, *parse_ip("198.18.1.3", "test"));
  const json dump = json::parse(dump_route_config(c));
  EXPECT_EQ(dump["clusters"][1]["endpoints"][0]["address"], "2001:2::11");
  EXPECT_EQ(dump["clusters"][1]["endpoints"][1]["address"], "198.18.1.3");
}

TEST(RouteConfigJson, RetryBackOffMaxDefaultsToTenTimesBase) {
  auto c = parse_route_config(R"({"virtual_hosts": [{"name": "v", "domains": ["v"], "routes": [
      {"match": {"prefix": "/"}, "route": {"cluster": "c",
       "retry_policy": {"retry_back_off": {"base_interval": "0.1s"}}}}]}],
    "clusters": [{"name": "c"}]})");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->virtual_hosts[0].routes[0].action.retry_policy->max_interval,
            std::chrono::seconds(1));
}

TEST(RouteConfigJson, SyntaxErrorSaysWhere) {
  auto c = parse_route_config("{\"virtual_hosts\": [\n  {\"name\": }\n]}");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message().rfind("invalid JSON: parse error at line 2, column ", 0), 0u)
      << c.error().message();
}

TEST(RouteConfigJson, RootMustBeAnObject) {
  auto c = parse_route_config("[]");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message(), "route config: must be a JSON object");
}

TEST(RouteConfigJson, UnknownTopLevelField) {
  auto c = parse_route_config(R"({"virtual_hosts": [], "listeners": []})");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message(), "listeners: unknown field");
}

TEST(RouteConfigJson, ControlPlaneFeatures) {
  RouteConfig c = load_fixture("control_features.json");
  const RouteEntryConfig& r = c.virtual_hosts[0].routes[0];
  EXPECT_EQ(r.match.kind, RouteMatchConfig::PathKind::regex);
  EXPECT_EQ(r.match.value, "/ratings/[0-9]+");
  EXPECT_EQ(r.match.headers[0].kind, HeaderMatcherConfig::Kind::regex);
  ASSERT_TRUE(r.action.fault && r.action.fault->delay && r.action.fault->abort);
  EXPECT_EQ(r.action.fault->delay->fixed_delay, std::chrono::seconds(7));
  EXPECT_EQ(r.action.fault->delay->percent, 10.5);
  EXPECT_EQ(r.action.fault->abort->http_status, 500);
  EXPECT_EQ(r.action.fault->abort->percent, 100.0);  // default: every request
  const ClusterConfig& cl = c.clusters[0];
  EXPECT_EQ(cl.lb_policy, LbPolicy::random);
  EXPECT_EQ(cl.outlier_detection.consecutive_5xx, 5u);
  EXPECT_EQ(cl.outlier_detection.consecutive_gateway_failure, 3u);
  EXPECT_EQ(cl.outlier_detection.interval, std::chrono::seconds(1));
  EXPECT_EQ(cl.outlier_detection.max_ejection_time, std::chrono::seconds(60));
  EXPECT_EQ(cl.outlier_detection.max_ejection_percent, 10u);
}

TEST(RouteConfigJson, ControlPlaneSectionOfADumpIsIgnoredOnLoad) {
  auto c = parse_route_config(
      R"({"clusters": [], "control_plane": {"source": "consul", "unsupported": ["x"]}})");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(*c, RouteConfig{});
}

TEST(RouteConfigJson, EmptyTableIsValid) {
  auto c = parse_route_config("{}");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(*c, RouteConfig{});
}

TEST(RouteConfigJson, MissingFileNamesIt) {
  auto c = load_route_config("/nonexistent/routes.json");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message(), "open /nonexistent/routes.json: No such file or directory");
}

TEST(RouteConfigJson, FileErrorsStartWithTheFileName) {
  const std::string path = ::testing::TempDir() + "bad_routes.json";
  {
    std::ofstream out(path);
    out << R"({"clusters": [{"name": "c", "endpoints": [{"address": "198.18.0.1", "port": 0}]}]})";
  }
  auto c = load_route_config(path);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message(), path + ": clusters[0].endpoints[0].port: must be 1..65535");
}

// One case per kind of error: errors_base.json with one field changed (a JSON pointer and the
// new value, or removed), and the message it must produce (a prefix of it).
struct ErrorCase {
  const char* name;
  const char* pointer;
  const char* value;  // JSON text, or nullptr to remove the field
  const char* message;
};

class RouteConfigError : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(RouteConfigError, NamesTheField) {
  const ErrorCase& e = GetParam();
  json doc = json::parse(read_fixture("errors_base.json"));
  ASSERT_TRUE(parse_route_config(doc.dump()).ok()) << "the base must be valid";
  const json::json_pointer ptr(e.pointer);
  if (e.value) {
    doc[ptr] = json::parse(e.value);
  } else {
    doc[ptr.parent_pointer()].erase(ptr.back());
  }
  auto c = parse_route_config(doc.dump());
  ASSERT_FALSE(c.ok()) << "accepted: " << doc.dump();
  EXPECT_EQ(c.error().message().rfind(e.message, 0), 0u)
      << "got:  " << c.error().message() << "\nwant: " << e.message;
}

const ErrorCase kErrors[] = {
    {"UnknownField", "/virtual_hosts/0/routes/0/match/prefx", R"("/")",
     "virtual_hosts[0].routes[0].match.prefx: unknown field"},
    {"MissingField", "/clusters/1/name", nullptr, "clusters[1].name: required"},
    {"WrongType", "/virtual_hosts/0/domains/1", "5",
     "virtual_hosts[0].domains[1]: must be a string"},
    {"NotAnObject", "/virtual_hosts/1", R"("ratings")", "virtual_hosts[1]: must be an object"},
    {"NotAnArray", "/clusters/0/endpoints", "{}", "clusters[0].endpoints: must be an array"},
    {"MatchWithPrefixAndPath", "/virtual_hosts/0/routes/2/match",
     R"({"prefix": "/", "path": "/x"})",
     "virtual_hosts[0].routes[2].match: needs exactly one of prefix, path"},
    {"MatchWithNeither", "/virtual_hosts/0/routes/2/match", R"({"case_sensitive": false})",
     "virtual_hosts[0].routes[2].match: needs exactly one of prefix, path"},
    {"TwoHeaderMatchKinds", "/virtual_hosts/0/routes/0/match/headers",
     R"([{"name": "end-user", "exact_match": "jason", "prefix_match": "j"}])",
     "virtual_hosts[0].routes[0].match.headers[0]: needs at most one of exact_match, "
     "prefix_match, suffix_match, safe_regex_match, present_match"},
    {"ActionWithoutTarget", "/virtual_hosts/0/routes/0/route", R"({"timeout": "1s"})",
     "virtual_hosts[0].routes[0].route: needs exactly one of cluster, weighted_clusters"},
    {"PortTooBig", "/clusters/1/endpoints/0/port", "70000",
     "clusters[1].endpoints[0].port: must be 1..65535"},
    {"PortZero", "/clusters/1/endpoints/0/port", "0",
     "clusters[1].endpoints[0].port: must be 1..65535"},
    {"PortNegative", "/clusters/1/endpoints/0/port", "-1",
     "clusters[1].endpoints[0].port: must be 1..65535"},
    {"PortFractional", "/clusters/1/endpoints/0/port", "80.5",
     "clusters[1].endpoints[0].port: must be 1..65535"},
    {"PortAsString", "/clusters/1/endpoints/0/port", R"("9080")",
     "clusters[1].endpoints[0].port: must be an integer"},
    {"BadAddress", "/clusters/0/endpoints/0/address", R"("198.18.0")",
     "clusters[0].endpoints[0].address: '198.18.0': not an IP address"},
    {"BadIpv6Address", "/clusters/0/endpoints/0/address", R"("2001:2::1::2")",
     "clusters[0].endpoints[0].address: '2001:2::1::2': not an IP address"},
    {"UnspecifiedIpv4", "/clusters/0/endpoints/0/address", R"("0.0.0.0")",
     "clusters[0].endpoints[0].address: must not be 0.0.0.0"},
    {"UnspecifiedIpv6", "/clusters/0/endpoints/0/address", R"("::")",
     "clusters[0].endpoints[0].address: must not be ::"},
    {"DuplicateIpv6Endpoint", "/clusters/0/endpoints",
     R"([{"address": "2001:2::5", "port": 9080}, {"address": "2001:2:0::5", "port": 9080}])",
     "clusters[0].endpoints[1]: duplicate endpoint [2001:2::5]:9080"},
    {"DuplicateMappedEndpoint", "/clusters/0/endpoints/1",
     R"({"address": "::ffff:198.18.0.12", "port": 9080})",
     "clusters[0].endpoints[1]: duplicate endpoint 198.18.0.12:9080"},
    {"EndpointWeightZero", "/clusters/0/endpoints/0/weight", "0",
     "clusters[0].endpoints[0].weight: must be 1..4294967295"},
    {"DuplicateEndpoint", "/clusters/0/endpoints/1", R"({"address": "198.18.0.12", "port": 9080})",
     "clusters[0].endpoints[1]: duplicate endpoint 198.18.0.12:9080"},
    {"BadDuration", "/virtual_hosts/0/routes/1/route/timeout", R"("15")",
     "virtual_hosts[0].routes[1].route.timeout: '15': not a duration"},
    {"ConnectTimeoutZero", "/clusters/0/connect_timeout", R"("0s")",
     "clusters[0].connect_timeout: must be greater than 0s"},
    {"UnknownCluster", "/virtual_hosts/1/routes/0/route/cluster", R"("outbound|9080||nope")",
     "virtual_hosts[1].routes[0].route.cluster: unknown cluster 'outbound|9080||nope'"},
    {"UnknownWeightedCluster", "/virtual_hosts/0/routes/0/route",
     R"({"weighted_clusters": {"clusters": [
         {"name": "outbound|9080|v1|reviews.service.consul", "weight": 50},
         {"name": "outbound|9080|v9|reviews.service.consul", "weight": 50}]}})",
     "virtual_hosts[0].routes[0].route.weighted_clusters.clusters[1].name: unknown cluster "
     "'outbound|9080|v9|reviews.service.consul'"},
    {"WeightsAddUpToZero", "/virtual_hosts/0/routes/0/route",
     R"({"weighted_clusters": {"clusters": [
         {"name": "outbound|9080|v1|reviews.service.consul", "weight": 0}]}})",
     "virtual_hosts[0].routes[0].route.weighted_clusters: weights must add up to more than 0"},
    {"DuplicateDomain", "/virtual_hosts/1/domains/0", R"("REVIEWS")",
     "virtual_hosts[1].domains[0]: duplicate domain 'REVIEWS' (also virtual_hosts[0].domains[1])"},
    {"WildcardInTheMiddle", "/virtual_hosts/1/domains/0", R"("ratings.*.consul")",
     "virtual_hosts[1].domains[0]: 'ratings.*.consul': a wildcard must be a single '*' at the "
     "start or the end"},
    {"NoDomains", "/virtual_hosts/1/domains", "[]", "virtual_hosts[1].domains: must not be empty"},
    {"DuplicateVirtualHost", "/virtual_hosts/1/name", R"("reviews")",
     "virtual_hosts[1].name: duplicate virtual host 'reviews'"},
    {"DuplicateCluster", "/clusters/1/name", R"("outbound|9080|v1|reviews.service.consul")",
     "clusters[1].name: duplicate cluster 'outbound|9080|v1|reviews.service.consul'"},
    {"UnknownRetryCondition", "/virtual_hosts/0/routes/0/route/retry_policy",
     R"({"retry_on": "5xx,sometimes"})",
     "virtual_hosts[0].routes[0].route.retry_policy.retry_on: unknown retry condition "
     "'sometimes'"},
    {"RetriableStatusOutOfRange", "/virtual_hosts/0/routes/0/route/retry_policy",
     R"({"retriable_status_codes": [503, 99]})",
     "virtual_hosts[0].routes[0].route.retry_policy.retriable_status_codes[1]: must be 100..599"},
    {"BackOffMaxBelowBase", "/virtual_hosts/0/routes/0/route/retry_policy",
     R"({"retry_back_off": {"base_interval": "1s", "max_interval": "0.5s"}})",
     "virtual_hosts[0].routes[0].route.retry_policy.retry_back_off.max_interval: must be >= "
     "base_interval"},
    {"BadPathRegex", "/virtual_hosts/0/routes/0/match", R"({"safe_regex": {"regex": "(/v2"}})",
     "virtual_hosts[0].routes[0].match.safe_regex: invalid regex '(/v2'"},
    {"BadHeaderRegex", "/virtual_hosts/0/routes/0/match/headers",
     R"([{"name": "end-user", "safe_regex_match": {"regex": "[a-"}}])",
     "virtual_hosts[0].routes[0].match.headers[0].safe_regex_match: invalid regex '[a-'"},
    {"FaultPercentOver100", "/virtual_hosts/0/routes/0/route/fault",
     R"({"delay": {"fixed_delay": "1s", "percent": 100.5}})",
     "virtual_hosts[0].routes[0].route.fault.delay.percent: must be 0..100"},
    {"FaultAbortStatus", "/virtual_hosts/0/routes/0/route/fault",
     R"({"abort": {"http_status": 99}})",
     "virtual_hosts[0].routes[0].route.fault.abort.http_status: must be 200..599"},
    {"EmptyFault", "/virtual_hosts/0/routes/0/route/fault", "{}",
     "virtual_hosts[0].routes[0].route.fault: needs delay or abort"},
    {"MaxEjectionPercent", "/clusters/0/outlier_detection", R"({"max_ejection_percent": 101})",
     "clusters[0].outlier_detection.max_ejection_percent: must be 0..100"},
    {"MaxEjectionTimeBelowBase", "/clusters/0/outlier_detection", R"({"max_ejection_time": "1s"})",
     "clusters[0].outlier_detection.max_ejection_time: must be >= base_ejection_time"},
    {"HostRewriteWithCrLf", "/virtual_hosts/0/routes/0/route/host_rewrite",
     R"("v1\r\nx-injected: 1")",
     "virtual_hosts[0].routes[0].route.host_rewrite: must not contain spaces, control "
     "characters or non-ASCII bytes"},
    {"HostRewriteWithSpace", "/virtual_hosts/0/routes/0/route/host_rewrite", R"("a b")",
     "virtual_hosts[0].routes[0].route.host_rewrite: must not contain spaces"},
    {"PrefixRewriteSplittingTheRequestLine", "/virtual_hosts/0/routes/0/route/prefix_rewrite",
     R"("/x HTTP/1.1\r\nHost: evil\r\n\r\nGET /")",
     "virtual_hosts[0].routes[0].route.prefix_rewrite: must not contain spaces"},
    {"EmptyHostRewrite", "/virtual_hosts/0/routes/0/route/host_rewrite", R"("")",
     "virtual_hosts[0].routes[0].route.host_rewrite: must not be empty"},
    {"BadLbPolicy", "/clusters/0/lb_policy", R"("maglev")",
     "clusters[0].lb_policy: 'maglev': must be round_robin, least_request or random"},
    {"PanicThresholdOutOfRange", "/clusters/0/healthy_panic_threshold", "101",
     "clusters[0].healthy_panic_threshold: must be 0..100"},
    {"BudgetPercentOutOfRange", "/clusters/0/circuit_breakers",
     R"({"retry_budget": {"budget_percent": 150}})",
     "clusters[0].circuit_breakers.retry_budget.budget_percent: must be 0..100"},
    {"CircuitBreakerNegative", "/clusters/0/circuit_breakers", R"({"max_requests": -5})",
     "clusters[0].circuit_breakers.max_requests: must be 0..4294967295"},
};

INSTANTIATE_TEST_SUITE_P(Kinds, RouteConfigError, ::testing::ValuesIn(kErrors),
                         [](const auto& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace sm::route
