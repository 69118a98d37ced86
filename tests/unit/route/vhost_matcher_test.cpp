// vhost_matcher.h: Envoy's virtual host selection order, ports and case.
#include "route/vhost_matcher.h"

#include <gtest/gtest.h>

#include <optional>

#include "route_test_util.h"

namespace sm::route {
namespace {

std::vector<VirtualHostConfig> vhosts(std::vector<std::vector<std::string>> domain_lists) {
  std::vector<VirtualHostConfig> out;
  for (size_t i = 0; i < domain_lists.size(); ++i)
    out.push_back({"vh" + std::to_string(i), domain_lists[i], {}});
  return out;
}

TEST(VhostMatcher, ExactBeatsSuffixBeatsPrefixBeatsAny) {
  VhostMatcher m(vhosts({{"*"}, {"foo.*"}, {"*.foo.com"}, {"www.foo.com"}}));
  EXPECT_EQ(m.find("www.foo.com"), 3u);
  EXPECT_EQ(m.find("api.foo.com"), 2u);
  EXPECT_EQ(m.find("foo.com"), 1u);
  EXPECT_EQ(m.find("bar.org"), 0u);
}

TEST(VhostMatcher, SuffixWildcardBeatsPrefixWildcardForTheSameHost) {
  VhostMatcher m(vhosts({{"foo.*"}, {"*.com"}}));
  EXPECT_EQ(m.find("foo.com"), 1u);
}

TEST(VhostMatcher, LongestSuffixWildcardFirst) {
  VhostMatcher m(vhosts({{"*.foo.com"}, {"*-bar.foo.com"}, {"*.baz.foo.com"}}));
  EXPECT_EQ(m.find("x-bar.foo.com"), 1u);
  EXPECT_EQ(m.find("a.baz.foo.com"), 2u);
  EXPECT_EQ(m.find("bar.foo.com"), 0u);
}

TEST(VhostMatcher, LongestPrefixWildcardFirst) {
  VhostMatcher m(vhosts({{"foo.*"}, {"foo.bar.*"}}));
  EXPECT_EQ(m.find("foo.bar.com"), 1u);
  EXPECT_EQ(m.find("foo.baz.com"), 0u);
}

TEST(VhostMatcher, WildcardMatchesAtLeastOneCharacter) {
  VhostMatcher m(vhosts({{"*.foo.com"}, {"bar.*"}}));
  EXPECT_EQ(m.find(".foo.com"), std::nullopt);
  EXPECT_EQ(m.find("bar."), std::nullopt);
  EXPECT_EQ(m.find("a.foo.com"), 0u);
  EXPECT_EQ(m.find("bar.x"), 1u);
}

TEST(VhostMatcher, PortIsPartOfTheHostAsInEnvoysDefault) {
  VhostMatcher m(vhosts({{"reviews"}, {"reviews:9080"}, {"*.consul"}, {"ratings.*"}}));
  EXPECT_EQ(m.find("reviews"), 0u);
  EXPECT_EQ(m.find("reviews:9080"), 1u);
  // No port stripping: a port the domains do not list finds nothing.
  EXPECT_EQ(m.find("reviews:80"), std::nullopt);
  // A suffix wildcard does not reach past a port; a prefix wildcard covers it.
  EXPECT_EQ(m.find("x.consul"), 2u);
  EXPECT_EQ(m.find("x.consul:9080"), std::nullopt);
  EXPECT_EQ(m.find("ratings.service:9080"), 3u);
}

TEST(VhostMatcher, HostWithPortDoesNotMatchDomainWithout) {
  VhostMatcher m(vhosts({{"details"}, {"*"}}));
  EXPECT_EQ(m.find("details:9080"), 1u);  // falls to "*", not to "details"
}

TEST(VhostMatcher, CaseInsensitiveBothWays) {
  VhostMatcher m(vhosts({{"Reviews.Service.Consul"}, {"*.Example.COM"}, {"API.*"}}));
  EXPECT_EQ(m.find("reviews.service.consul"), 0u);
  EXPECT_EQ(m.find("REVIEWS.SERVICE.CONSUL"), 0u);
  EXPECT_EQ(m.find("www.example.com"), 1u);
  EXPECT_EQ(m.find("api.anything"), 2u);
}

TEST(VhostMatcher, NoMatchMeansPassthrough) {
  VhostMatcher m(vhosts({{"reviews"}}));
  EXPECT_EQ(m.find("198.18.0.12:9080"), std::nullopt);
  EXPECT_EQ(m.find(""), std::nullopt);
}

TEST(VhostMatcher, BookinfoServiceAnswersToAllSixNames) {
  RouteConfig config = test::load_fixture("bookinfo.json");
  VhostMatcher m(config.virtual_hosts);
  const auto reviews = m.find("reviews.service.consul");
  ASSERT_TRUE(reviews);
  EXPECT_EQ(config.virtual_hosts[*reviews].name, "reviews.service.consul:9080");
  for (const char* host :
       {"reviews.service.consul", "reviews.service.consul:9080", "reviews", "reviews:9080",
        "reviews.service", "reviews.service:9080", "Reviews:9080"})
    EXPECT_EQ(m.find(host), reviews) << host;
  EXPECT_EQ(m.find("reviews:9081"), std::nullopt);
  EXPECT_NE(m.find("ratings:9080"), reviews);
}

}  // namespace
}  // namespace sm::route
