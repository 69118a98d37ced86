// catalog.h: Consul's documented response shapes -> services, instances, KV entries.
#include "consul/catalog.h"

#include <gtest/gtest.h>

#include "consul_test_util.h"

namespace sm::consul {
namespace {

using test::fixture;

TEST(CatalogServices, NamesAndTags) {
  auto s = parse_catalog_services(fixture("catalog_services.json"));
  ASSERT_TRUE(s.ok()) << s.error().message();
  ASSERT_EQ(s->size(), 5u);
  EXPECT_EQ(s->at("reviews"),
            (std::vector<std::string>{"primary", "version|v1", "version|v2", "version|v3"}));
  EXPECT_TRUE(s->at("consul").empty());
}

TEST(HealthService, AddressWeightAndLabelsAsDocumented) {
  std::vector<std::string> skipped;
  auto inst = parse_health_service(fixture("health_reviews.json"), &skipped);
  ASSERT_TRUE(inst.ok()) << inst.error().message();
  ASSERT_EQ(inst->size(), 2u);
  const Instance& v1 = (*inst)[0];
  EXPECT_EQ(v1.id, "reviews-v1");
  EXPECT_EQ(v1.node, "node-a");
  EXPECT_EQ(v1.address.str(), "198.18.2.3");  // Service.Address, not Node.Address
  EXPECT_EQ(v1.port, 9080);
  EXPECT_EQ(v1.weight, 10u);                 // Weights.Passing
  EXPECT_EQ(v1.labels.at("version"), "v1");  // Service.Meta
  const Instance& v2 = (*inst)[1];
  EXPECT_EQ(v2.address.str(), "198.18.2.4");  // Service.Address empty: Node.Address
  EXPECT_EQ(v2.weight, 1u);
  EXPECT_EQ(v2.labels.at("version"), "v2");  // the tag version|v2
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find("reviews-v3-by-name"), std::string::npos);
  EXPECT_NE(skipped[0].find("not an IP address"), std::string::npos);
}

TEST(HealthService, MetaWinsOverATagAndIPv6Works) {
  const char* json = R"([{"Node": {"Node": "n", "Address": "2001:2::5"},
    "Service": {"ID": "a", "Service": "s", "Tags": ["version|v9"], "Address": "",
                "Meta": {"version": "v1"}, "Port": 80}}])";
  auto inst = parse_health_service(json, nullptr);
  ASSERT_TRUE(inst.ok()) << inst.error().message();
  ASSERT_EQ(inst->size(), 1u);
  EXPECT_EQ((*inst)[0].labels.at("version"), "v1");
  EXPECT_EQ((*inst)[0].address.str(), "2001:2::5");
  EXPECT_FALSE((*inst)[0].address.is_v4());
}

TEST(HealthService, SortedSoEqualCatalogsCompareEqual) {
  const char* a = R"([
    {"Node": {"Address": "198.18.2.9"}, "Service": {"ID": "b", "Port": 80, "Address": ""}},
    {"Node": {"Address": "198.18.2.1"}, "Service": {"ID": "a", "Port": 80, "Address": ""}}])";
  const char* b = R"([
    {"Node": {"Address": "198.18.2.1"}, "Service": {"ID": "a", "Port": 80, "Address": ""}},
    {"Node": {"Address": "198.18.2.9"}, "Service": {"ID": "b", "Port": 80, "Address": ""}}])";
  EXPECT_EQ(*parse_health_service(a, nullptr), *parse_health_service(b, nullptr));
}

TEST(HealthService, MalformedIsAnErrorNotAnEmptyService) {
  EXPECT_FALSE(parse_health_service("{", nullptr).ok());
  EXPECT_FALSE(parse_health_service("{}", nullptr).ok());
  auto e = parse_health_service(R"([{"Service": {"Port": "80"}}])", nullptr);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message(), "health/service[0].Service.Port: expected 0..65535");
}

TEST(KvEntries, DecodedAndSorted) {
  auto kv = parse_kv_entries(fixture("kv_rules.json"));
  ASSERT_TRUE(kv.ok()) << kv.error().message();
  ASSERT_EQ(kv->size(), 2u);
  EXPECT_EQ((*kv)[0].key, "sockmesh/rules/");  // a "folder" key with a null value
  EXPECT_EQ((*kv)[0].value, "");
  EXPECT_EQ((*kv)[1].key, "sockmesh/rules/reviews");
  EXPECT_EQ((*kv)[1].value, "kind: VirtualService\n");
  EXPECT_EQ((*kv)[1].modify_index, 200u);
}

TEST(Base64, DecodesAndRefusesGarbage) {
  EXPECT_EQ(*decode_base64(""), "");
  EXPECT_EQ(*decode_base64("YQ=="), "a");
  EXPECT_EQ(*decode_base64("YWI="), "ab");
  EXPECT_EQ(*decode_base64("YWJj"), "abc");
  EXPECT_FALSE(decode_base64("YW*j").ok());
  EXPECT_FALSE(decode_base64("YQ==YQ==").ok());
}

}  // namespace
}  // namespace sm::consul
