// parse.h: Istio's documents as they are; every supported field; unsupported fields named;
// invalid documents refused with the field's path; YAML and JSON edge cases.
#include "istio/parse.h"

#include <gtest/gtest.h>

#include <dirent.h>

#include <algorithm>

#include "istio_test_util.h"

namespace sm::istio {
namespace {

using test::istio_file;
using test::load;
using test::read_file;

std::vector<std::string> bookinfo_files() {
  std::vector<std::string> out;
  DIR* d = ::opendir((std::string(SM_ISTIO_DIR) + "/bookinfo").c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.ends_with(".yaml")) out.push_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(IstioBookinfo, EveryFileLoadsUnchangedWithNothingUnsupported) {
  const auto files = bookinfo_files();
  ASSERT_EQ(files.size(), 6u);
  for (const std::string& f : files) {
    auto r = parse_rules(istio_file("bookinfo/" + f), f);
    ASSERT_TRUE(r.ok()) << f << ": " << r.error().message();
    EXPECT_TRUE(r->unsupported.empty()) << f << ": " << r->unsupported[0];
    EXPECT_FALSE(r->virtual_services.empty() && r->destination_rules.empty()) << f;
  }
}

TEST(IstioBookinfo, OurCopyIsIstiosFilesUnchanged) {
  // tests/istio/bookinfo is a copy of shared/fixtures/istio-bookinfo-consul, byte for byte.
  const std::string shared = SM_SHARED_BOOKINFO;
  if (::access(shared.c_str(), R_OK) != 0) GTEST_SKIP() << shared << " is not beside the repo";
  for (const std::string& f : bookinfo_files())
    EXPECT_EQ(istio_file("bookinfo/" + f), read_file(shared + "/" + f)) << f;
}

TEST(IstioBookinfo, DestinationRuleAllHasFourRulesAndATrailingEmptyDocument) {
  RuleSet r = load("bookinfo/destination-rule-all.yaml");
  ASSERT_EQ(r.destination_rules.size(), 4u);
  const DestinationRule& reviews = r.destination_rules[1];
  EXPECT_EQ(reviews.name, "reviews");
  EXPECT_EQ(reviews.host, "reviews.service.consul");
  ASSERT_EQ(reviews.subsets.size(), 3u);
  EXPECT_EQ(reviews.subsets[2].name, "v3");
  EXPECT_EQ(reviews.subsets[2].labels.at("version"), "v3");
  EXPECT_EQ(reviews.source, "bookinfo/destination-rule-all.yaml#2");
}

TEST(IstioBookinfo, RatingsTestAbort) {
  RuleSet r = load("bookinfo/virtual-service-ratings-test-abort.yaml");
  ASSERT_EQ(r.virtual_services.size(), 1u);
  const VirtualService& vs = r.virtual_services[0];
  ASSERT_EQ(vs.http.size(), 2u);
  const HttpRoute& jason = vs.http[0];
  ASSERT_EQ(jason.match.size(), 1u);
  EXPECT_EQ(jason.match[0].headers.at("end-user"),
            (StringMatch{StringMatch::Kind::exact, "jason"}));
  ASSERT_TRUE(jason.fault && jason.fault->abort);
  EXPECT_EQ(jason.fault->abort->http_status, 500u);
  EXPECT_EQ(jason.fault->abort->percent, 100.0);
  EXPECT_FALSE(jason.fault->delay);
  EXPECT_EQ(jason.route[0].destination.subset, "v1");
}

TEST(IstioRules, EverySupportedField) {
  RuleSet r = load("fixtures/all_fields.yaml");
  EXPECT_TRUE(r.unsupported.empty()) << r.unsupported[0];
  ASSERT_EQ(r.virtual_services.size(), 1u);
  const VirtualService& vs = r.virtual_services[0];
  EXPECT_EQ(vs.hosts, (std::vector<std::string>{"reviews.service.consul", "reviews"}));
  ASSERT_EQ(vs.http.size(), 3u);
  const HttpRoute& h = vs.http[0];
  EXPECT_EQ(h.name, "jason");
  ASSERT_EQ(h.match.size(), 2u);
  const HttpMatchRequest& m = h.match[0];
  EXPECT_EQ(m.name, "by-user");
  EXPECT_EQ(m.uri, (StringMatch{StringMatch::Kind::prefix, "/reviews/"}));
  EXPECT_EQ(m.method, (StringMatch{StringMatch::Kind::exact, "GET"}));
  EXPECT_EQ(m.headers.at("x-canary"), std::nullopt);  // {}: present
  EXPECT_EQ(m.without_headers.at("x-debug"), (StringMatch{StringMatch::Kind::prefix, "1"}));
  EXPECT_TRUE(m.ignore_uri_case);
  EXPECT_EQ(h.match[1].uri->kind, StringMatch::Kind::regex);
  EXPECT_EQ(h.match[1].authority, (StringMatch{StringMatch::Kind::prefix, "reviews"}));
  EXPECT_EQ(h.route[0].destination.port, 9080u);
  EXPECT_EQ(h.timeout, std::chrono::milliseconds(2500));
  ASSERT_TRUE(h.retries);
  EXPECT_EQ(h.retries->attempts, 3u);
  EXPECT_EQ(h.retries->per_try_timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(h.retries->retry_on, "5xx,connect-failure,409");
  ASSERT_TRUE(h.fault && h.fault->delay && h.fault->abort);
  EXPECT_EQ(h.fault->delay->fixed_delay, std::chrono::seconds(7));
  EXPECT_EQ(h.fault->delay->percent, 10.5);
  EXPECT_EQ(h.fault->abort->http_status, 503u);
  EXPECT_EQ(h.fault->abort->percent, 0.1);
  EXPECT_EQ(h.rewrite->uri, "/v2/reviews/");
  EXPECT_EQ(h.rewrite->authority, "reviews-v2.service.consul");
  EXPECT_EQ(vs.http[1].match[0].source_labels.at("app"), "productpage");
  EXPECT_EQ(vs.http[2].route[0].weight, 75u);
  EXPECT_EQ(vs.http[2].retries->attempts, 0u);

  ASSERT_EQ(r.destination_rules.size(), 1u);
  const DestinationRule& dr = r.destination_rules[0];
  const TrafficPolicy& p = *dr.traffic_policy;
  EXPECT_EQ(p.load_balancer, LoadBalancer::least_request);
  EXPECT_EQ(p.connection_pool->max_connections, 100u);
  EXPECT_EQ(p.connection_pool->connect_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(p.connection_pool->http1_max_pending, 10u);
  EXPECT_EQ(p.connection_pool->http2_max_requests, 1000u);
  EXPECT_EQ(p.connection_pool->max_requests_per_connection, 5u);
  EXPECT_EQ(p.connection_pool->max_retries, 4u);
  EXPECT_EQ(p.connection_pool->idle_timeout, std::chrono::seconds(30));
  EXPECT_EQ(p.outlier_detection->consecutive_5xx, 7u);
  EXPECT_EQ(p.outlier_detection->consecutive_gateway, 3u);
  EXPECT_EQ(p.outlier_detection->interval, std::chrono::seconds(5));
  EXPECT_EQ(p.outlier_detection->base_ejection_time, std::chrono::seconds(15));
  EXPECT_EQ(p.outlier_detection->max_ejection_percent, 50u);
  EXPECT_EQ(p.outlier_detection->min_health_percent, 20u);
  EXPECT_EQ(dr.subsets[1].traffic_policy->load_balancer, LoadBalancer::random);
  EXPECT_EQ(dr.subsets[2].traffic_policy->outlier_detection->consecutive_gateway, 2u);
}

TEST(IstioRules, EveryUnsupportedFieldIsReportedByName) {
  RuleSet r = load("fixtures/unsupported.yaml");
  const std::vector<std::string> want = {
      "fixtures/unsupported.yaml#1 VirtualService ratings: spec.exportTo: not supported",
      "fixtures/unsupported.yaml#1 VirtualService ratings: spec.tcp: not supported",
      "fixtures/unsupported.yaml#1 VirtualService ratings: spec.gateways: only 'mesh' is "
      "supported ('bookinfo-gateway' ignored)",
      "fixtures/unsupported.yaml#1 VirtualService ratings: spec.http[0].mirror: not supported",
      "fixtures/unsupported.yaml#1 VirtualService ratings: spec.http[0].mirrorPercentage: not "
      "supported",
      "fixtures/unsupported.yaml#1 VirtualService ratings: spec.http[0].corsPolicy: not supported",
      "fixtures/unsupported.yaml#1 VirtualService ratings: spec.http[0].headers: not supported",
      "fixtures/unsupported.yaml#1 VirtualService ratings: spec.http[0].match[0].queryParams: not "
      "supported",
      "fixtures/unsupported.yaml#1 VirtualService ratings: spec.http[0].route[0].headers: not "
      "supported",
      "fixtures/unsupported.yaml#1 VirtualService ratings: spec.http[0].retries."
      "retryRemoteLocalities: not supported",
      "fixtures/unsupported.yaml#1 VirtualService ratings: spec.http[0].fault.abort.grpcStatus: "
      "not supported",
      "fixtures/unsupported.yaml#1 VirtualService ratings: spec.http[1].redirect: not supported",
      "fixtures/unsupported.yaml#1 VirtualService ratings: spec.http[1]: has no route "
      "destination; left out",
      "fixtures/unsupported.yaml#2 DestinationRule ratings: spec.exportTo: not supported",
      "fixtures/unsupported.yaml#2 DestinationRule ratings: spec.trafficPolicy.portLevelSettings: "
      "not supported",
      "fixtures/unsupported.yaml#2 DestinationRule ratings: spec.trafficPolicy.loadBalancer."
      "consistentHash: not supported",
      "fixtures/unsupported.yaml#2 DestinationRule ratings: spec.trafficPolicy.connectionPool.tcp."
      "tcpKeepalive: not supported",
      "fixtures/unsupported.yaml#2 DestinationRule ratings: spec.trafficPolicy.connectionPool."
      "http.h2UpgradePolicy: not supported",
      "fixtures/unsupported.yaml#2 DestinationRule ratings: spec.trafficPolicy.outlierDetection."
      "splitExternalLocalOriginErrors: not supported",
      "fixtures/unsupported.yaml#2 DestinationRule ratings: spec.trafficPolicy.tls: not supported",
      "fixtures/unsupported.yaml#3 Gateway bookinfo-gateway: kind: not supported; document "
      "ignored",
  };
  std::vector<std::string> got = r.unsupported, sorted_want = want;
  std::sort(got.begin(), got.end());
  std::sort(sorted_want.begin(), sorted_want.end());
  EXPECT_EQ(got, sorted_want);
  // What is supported in the same documents still loads.
  ASSERT_EQ(r.virtual_services.size(), 1u);
  EXPECT_EQ(r.virtual_services[0].http.size(), 1u);
  EXPECT_EQ(r.destination_rules.size(), 1u);
}

std::string refusal(const std::string& yaml) {
  auto r = parse_rules(yaml, "t.yaml");
  EXPECT_FALSE(r.ok()) << yaml;
  return r.ok() ? "" : r.error().message();
}

const char* kVsHead =
    "apiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\nmetadata: {name: r}\n";

TEST(IstioRules, InvalidDocumentsAreRefusedWithTheReason) {
  const std::string vs = kVsHead;
  EXPECT_EQ(refusal(vs + "spec: {hosts: [r], htpp: []}"),
            "t.yaml#1 VirtualService r: spec.htpp: unknown field");
  EXPECT_EQ(refusal(vs + "spec: {hosts: r}"),
            "t.yaml#1 VirtualService r: spec.hosts: must be a list");
  EXPECT_EQ(refusal(vs + "spec: {http: []}"), "t.yaml#1 VirtualService r: spec.hosts: required");
  EXPECT_EQ(refusal(vs + "spec: {hosts: [r], http: [{route: [{destination: {host: r}, weight: "
                         "fifty}]}]}"),
            "t.yaml#1 VirtualService r: spec.http[0].route[0].weight: must be an integer 0..100");
  EXPECT_EQ(refusal(vs + "spec: {hosts: [r], http: [{route: [{destination: {subset: v1}}]}]}"),
            "t.yaml#1 VirtualService r: spec.http[0].route[0].destination.host: required");
  EXPECT_EQ(refusal(vs + "spec: {hosts: [r], http: [{match: [{uri: {exact: /a, prefix: /b}}], "
                         "route: [{destination: {host: r}}]}]}"),
            "t.yaml#1 VirtualService r: spec.http[0].match[0].uri: needs exactly one of exact, "
            "prefix, regex");
  EXPECT_EQ(refusal(vs + "spec: {hosts: [r], http: [{timeout: soon, route: [{destination: "
                         "{host: r}}]}]}"),
            "t.yaml#1 VirtualService r: spec.http[0].timeout: 'soon': must be a duration such as "
            "\"10s\", \"0.5s\", \"100ms\", \"1m\"");
  EXPECT_EQ(refusal(vs + "spec: {hosts: [r], http: [{fault: {abort: {httpStatus: 700}}, route: "
                         "[{destination: {host: r}}]}]}"),
            "t.yaml#1 VirtualService r: spec.http[0].fault.abort.httpStatus: must be an integer "
            "200..599");
  EXPECT_EQ(refusal(vs + "spec: {hosts: [r], http: [{fault: {delay: {fixedDelay: 1s, "
                         "percentage: {value: 101}}}, route: [{destination: {host: r}}]}]}"),
            "t.yaml#1 VirtualService r: spec.http[0].fault.delay.percentage.value: must be 0..100");
  EXPECT_EQ(
      refusal(vs + "spec: {hosts: [r], http: [{retries: {attempts: 2, retryOn: \"5xx,oops\"}, "
                   "route: [{destination: {host: r}}]}]}"),
      "t.yaml#1 VirtualService r: spec.http[0].retries.retryOn: 'oops': unknown retry "
      "policy");
  EXPECT_EQ(refusal(vs + "spec: {hosts: [r], http: [{match: [{headers: {End-User: {exact: j}}}], "
                         "route: [{destination: {host: r}}]}]}"),
            "t.yaml#1 VirtualService r: spec.http[0].match[0].headers.End-User: header names must "
            "be lowercase");
  EXPECT_EQ(refusal(vs + "spec: {hosts: [r], http: [{route: [{destination: {host: a}}, "
                         "{destination: {host: b}}]}]}"),
            "t.yaml#1 VirtualService r: spec.http[0].route: weights of several destinations must "
            "add up to more than 0");
  EXPECT_EQ(refusal("apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata: {name: "
                    "r}\nspec: {hosts: [r]}"),
            "t.yaml#1 VirtualService r: apiVersion: 'networking.istio.io/v2': must be "
            "networking.istio.io/v1alpha3, v1beta1 or v1");
  EXPECT_EQ(refusal("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nspec: {host: r}"),
            "t.yaml#1: metadata.name: required");
  EXPECT_EQ(refusal("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: "
                    "d}\nspec: {host: r, subsets: [{name: v1}, {name: v1}]}"),
            "t.yaml#1 DestinationRule d: spec.subsets[1].name: duplicate subset 'v1'");
  EXPECT_EQ(refusal("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: "
                    "d}\nspec: {host: r, trafficPolicy: {loadBalancer: {simple: FASTEST}}}"),
            "t.yaml#1 DestinationRule d: spec.trafficPolicy.loadBalancer.simple: 'FASTEST': must "
            "be ROUND_ROBIN, LEAST_REQUEST, RANDOM, PASSTHROUGH or UNSPECIFIED");
}

TEST(IstioRules, ABadDocumentRefusesTheWholeSource) {
  // The first document is fine; the second is not: nothing of the file is taken.
  std::string two = std::string(kVsHead) +
                    "spec: {hosts: [a], http: [{route: [{destination: "
                    "{host: a}}]}]}\n---\n" +
                    kVsHead + "spec: {hosts: [b], http: [{route: [{destination: {hots: b}}]}]}\n";
  EXPECT_EQ(refusal(two),
            "t.yaml#2 VirtualService r: spec.http[0].route[0].destination.hots: "
            "unknown field");
}

TEST(IstioRules, YamlEdgeCases) {
  EXPECT_EQ(refusal("spec: [unclosed"),
            "t.yaml: invalid YAML at line 1, column 1: end of sequence flow not found");
  EXPECT_EQ(refusal("- a\n- b\n"), "t.yaml#1: a document must be an object");
  // Empty documents, comments only, leading/trailing separators: nothing, no error.
  auto empty = parse_rules("# nothing here\n---\n---\n", "e.yaml");
  ASSERT_TRUE(empty.ok()) << empty.error().message();
  EXPECT_TRUE(empty->virtual_services.empty());
  // JSON is YAML: a VirtualService as JSON loads the same.
  auto json = parse_rules(
      R"({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
          "metadata": {"name": "r"},
          "spec": {"hosts": ["r"], "http": [{"route": [{"destination": {"host": "r"}, "weight": 100}]}]}})",
      "r.json");
  ASSERT_TRUE(json.ok()) << json.error().message();
  EXPECT_EQ(json->virtual_services[0].http[0].route[0].weight, 100u);
  // Other APIs are reported and skipped, not refused (a directory may hold them).
  auto other = parse_rules("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", "c.yaml");
  ASSERT_TRUE(other.ok());
  ASSERT_EQ(other->unsupported.size(), 1u);
  EXPECT_EQ(other->unsupported[0],
            "c.yaml#1 ConfigMap c: apiVersion: 'v1' is not an Istio "
            "networking API; document ignored");
}

TEST(IstioDuration, ProtobufAndGoForms) {
  using namespace std::chrono;
  EXPECT_EQ(*parse_istio_duration("10s", "f"), seconds(10));
  EXPECT_EQ(*parse_istio_duration("0.5s", "f"), milliseconds(500));
  EXPECT_EQ(*parse_istio_duration("100ms", "f"), milliseconds(100));
  EXPECT_EQ(*parse_istio_duration("1m", "f"), minutes(1));
  EXPECT_EQ(*parse_istio_duration("1h", "f"), hours(1));
  EXPECT_EQ(*parse_istio_duration("0s", "f"), seconds(0));
  EXPECT_FALSE(parse_istio_duration("-1s", "f").ok());
  EXPECT_FALSE(parse_istio_duration("10", "f").ok());
  EXPECT_FALSE(parse_istio_duration("s", "f").ok());
}

}  // namespace
}  // namespace sm::istio
