// address.h: --consul / CONSUL_HTTP_ADDR forms, plain http only, and the request we send.
#include "consul/address.h"

#include <gtest/gtest.h>

namespace sm::consul {
namespace {

ConsulAddress ok(const char* text) {
  auto a = parse_consul_address(text, "--consul");
  EXPECT_TRUE(a.ok()) << text << ": " << (a.ok() ? "" : a.error().message());
  return a.ok() ? *a : ConsulAddress{};
}

std::string err(const char* text) {
  auto a = parse_consul_address(text, "--consul");
  EXPECT_FALSE(a.ok()) << text;
  return a.ok() ? "" : a.error().message();
}

TEST(ConsulAddress, AcceptsTheFormsConsulsOwnToolsAccept) {
  EXPECT_EQ(ok("http://127.0.0.1:8500").authority(), "127.0.0.1:8500");
  EXPECT_EQ(ok("127.0.0.1:18500").port, 18500);
  EXPECT_EQ(ok("consul").authority(), "consul:8500");  // Consul's default port
  EXPECT_EQ(ok("http://consul.service.consul/").host, "consul.service.consul");
  EXPECT_EQ(ok("[2001:2::1]:8500").authority(), "[2001:2::1]:8500");
  EXPECT_EQ(ok("2001:2::1").host, "2001:2::1");
}

TEST(ConsulAddress, RefusesHttpsAndOtherSchemesByName) {
  EXPECT_EQ(err("https://127.0.0.1:8501"),
            "--consul: 'https://127.0.0.1:8501': https is not supported: sockmesh speaks plain "
            "http to Consul (use a local agent)");
  EXPECT_EQ(err("ftp://x"), "--consul: 'ftp://x': scheme must be http");
  EXPECT_EQ(err("http://x/v1"), "--consul: 'http://x/v1': a path is not supported");
  EXPECT_EQ(err("http://"), "--consul: 'http://': needs a host");
  EXPECT_EQ(err("127.0.0.1:99999"), "--consul: '127.0.0.1:99999': port must be 1..65535");
}

TEST(ConsulAddress, RequestCarriesTheTokenOnlyWhenSet) {
  ConsulAddress a = ok("127.0.0.1:8500");
  std::string r = build_get(a, "/v1/catalog/services?index=0");
  EXPECT_EQ(r.rfind("GET /v1/catalog/services?index=0 HTTP/1.1\r\nHost: 127.0.0.1:8500\r\n", 0),
            0u);
  EXPECT_EQ(r.find("X-Consul-Token"), std::string::npos);
  EXPECT_TRUE(r.ends_with("\r\n\r\n"));
  a.token = "s3cr3t";
  EXPECT_NE(build_get(a, "/").find("\r\nX-Consul-Token: s3cr3t\r\n"), std::string::npos);
}

TEST(ConsulAddress, EscapesPathSegments) {
  EXPECT_EQ(escape_path("reviews"), "reviews");
  EXPECT_EQ(escape_path("sockmesh/rules/"), "sockmesh/rules/");
  EXPECT_EQ(escape_path("a b?c&d"), "a%20b%3Fc%26d");
}

}  // namespace
}  // namespace sm::consul
