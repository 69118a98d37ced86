// Response shapes from HashiCorp's own consul-api-double (npm @hashicorp/consul-api-double,
// two templates vendored in tests/consul/consul-api-double): our parsers read them, and the
// project's Consul double answers with at least the fields they have.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "consul/catalog.h"
#include "consul_test_util.h"

namespace sm::consul {
namespace {

using json = nlohmann::json;
using test::run;

std::string render(const std::string& tmpl, const std::string& url, const std::string& env) {
  int status = 0;
  std::string out =
      run("node " + test::consul_dir() + "/render_api_double.js " + test::consul_dir() +
              "/consul-api-double/" + tmpl + " '" + url + "' " + env + " 2>&1",
          &status);
  EXPECT_EQ(status, 0) << out;
  return out;
}

bool have_node() {
  int status = 0;
  run("node --version >/dev/null 2>&1", &status);
  return status == 0;
}

std::set<std::string> keys(const json& j) {
  std::set<std::string> out;
  for (const auto& [k, v] : j.items()) out.insert(k);
  return out;
}

TEST(ConsulApiDouble, OurParserReadsHashicorpsHealthServiceShape) {
  if (!have_node()) GTEST_SKIP() << "needs node to render the consul-api-double templates";
  const std::string body = render("v1/health/service/_", "/v1/health/service/reviews",
                                  "CONSUL_NODE_COUNT=3 CONSUL_TAG_COUNT=2 CONSUL_CHECK_COUNT=2");
  std::vector<std::string> skipped;
  auto inst = parse_health_service(body, &skipped);
  ASSERT_TRUE(inst.ok()) << inst.error().message() << "\n" << body.substr(0, 2000);
  EXPECT_TRUE(skipped.empty());
  ASSERT_EQ(inst->size(), 3u);
  // The template gives every instance its own Service.Address: that is the one we take.
  const json j = json::parse(body);
  std::set<std::string> want, got;
  for (const json& e : j) want.insert(e["Service"]["Address"].get<std::string>());
  for (const Instance& i : *inst) got.insert(i.address.str());
  EXPECT_EQ(got, want);
}

TEST(ConsulApiDouble, OurParserReadsHashicorpsKvShape) {
  if (!have_node()) GTEST_SKIP() << "needs node to render the consul-api-double templates";
  auto kv = parse_kv_entries(render("v1/kv/_", "/v1/kv/sockmesh/rules/x?recurse", ""));
  ASSERT_TRUE(kv.ok()) << kv.error().message();
  ASSERT_EQ(kv->size(), 1u);
  EXPECT_EQ((*kv)[0].value, "Tue Feb  6 13:19:22 UTC 2018");  // the template's base64 value
  EXPECT_EQ((*kv)[0].modify_index, 467499u);
}

TEST(ConsulApiDouble, TheProjectsDoubleAnswersWithHashicorpsFields) {
  if (!have_node()) GTEST_SKIP() << "needs node to render the consul-api-double templates";
  const json theirs = json::parse(render("v1/health/service/_", "/v1/health/service/reviews",
                                         "CONSUL_NODE_COUNT=1 CONSUL_CHECK_COUNT=1"));
  test::ConsulDouble consul;
  consul.put("/v1/agent/service/register",
             R"({"ID": "r1", "Name": "reviews", "Port": 9080, "Address": "198.18.2.3",
                 "Check": {"TTL": "10s", "Status": "passing"}})");
  const json ours = json::parse(consul.get("/v1/health/service/reviews"));
  ASSERT_EQ(ours.size(), 1u);
  // Fields Consul dropped since (ProxyDestination) are not expected from a current Consul.
  std::set<std::string> obsolete = {"ProxyDestination"};
  for (const char* part : {"Node", "Service"}) {
    for (const std::string& k : keys(theirs[0][part])) {
      if (obsolete.count(k)) continue;
      EXPECT_TRUE(ours[0][part].contains(k)) << part << "." << k;
    }
  }
  for (const std::string& k : keys(theirs[0]["Checks"][0]))
    EXPECT_TRUE(ours[0]["Checks"][0].contains(k)) << "Checks[]." << k;
}

}  // namespace
}  // namespace sm::consul
