// ControlOptions::from: flags and Consul's environment variables, and what needs Consul.
#include <gtest/gtest.h>

#include "proxy/control.h"

namespace sm::proxy {
namespace {

Options parsed(std::vector<std::string> args) {
  auto o = parse_options(args);
  EXPECT_TRUE(o.ok()) << o.error().message();
  return o.ok() ? *o : Options{};
}

TEST(ControlOptions, ConsulFromTheFlagOrTheEnvironment) {
  auto flag =
      ControlOptions::from(parsed({"--consul", "http://127.0.0.1:8500"}), "198.18.0.9:1", "tok");
  ASSERT_TRUE(flag.ok());
  EXPECT_EQ(flag->consul->authority(), "127.0.0.1:8500");  // the flag wins
  EXPECT_EQ(flag->consul->token, "tok");                   // CONSUL_HTTP_TOKEN
  auto env = ControlOptions::from(parsed({}), "198.18.0.9:8501", nullptr);
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->consul->authority(), "198.18.0.9:8501");
  auto none = ControlOptions::from(parsed({"--config", "x.json"}), nullptr, nullptr);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->consul);
}

TEST(ControlOptions, ErrorsNameTheFlagOrVariable) {
  auto https = ControlOptions::from(parsed({}), "https://consul:8501", nullptr);
  ASSERT_FALSE(https.ok());
  EXPECT_EQ(https.error().message().rfind("CONSUL_HTTP_ADDR: 'https://consul:8501': https is not "
                                          "supported",
                                          0),
            0u);
  auto rules = ControlOptions::from(parsed({"--rules", "r.yaml"}), nullptr, nullptr);
  ASSERT_FALSE(rules.ok());
  EXPECT_EQ(rules.error().message(),
            "--rules: needs Consul (--consul URL or CONSUL_HTTP_ADDR): the table is built from "
            "its catalog");
}

TEST(ControlOptions, FlagsParse) {
  Options o =
      parsed({"--consul", "127.0.0.1:8500", "--service-cluster", "productpage-v1", "--services",
              "reviews,ratings", "--state-dir", "/var/lib/sockmesh", "--rules",
              "/etc/sockmesh/rules", "--rules-kv", "sockmesh/rules/", "--consul-wait-s", "30"});
  EXPECT_EQ(o.service_cluster, "productpage-v1");
  EXPECT_EQ(o.services, (std::vector<std::string>{"reviews", "ratings"}));
  EXPECT_EQ(o.state_dir, "/var/lib/sockmesh");
  EXPECT_EQ(o.rules_path, "/etc/sockmesh/rules");
  EXPECT_EQ(o.rules_kv_prefix, "sockmesh/rules/");
  EXPECT_EQ(o.consul_wait_s, 30u);
  EXPECT_FALSE(parse_options({"--services", "a,,b"}).ok());
  EXPECT_FALSE(parse_options({"--consul-wait-s", "601"}).ok());
  EXPECT_FALSE(parse_options({"--rules", ""}).ok());
}

}  // namespace
}  // namespace sm::proxy
