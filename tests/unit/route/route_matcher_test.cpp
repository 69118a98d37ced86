// route_matcher.h: path and header matching with Envoy's semantics.
#include "route/route_matcher.h"

#include <gtest/gtest.h>

#include <vector>

namespace sm::route {
namespace {

using Kind = HeaderMatcherConfig::Kind;

RouteMatchConfig prefix(std::string p, std::vector<HeaderMatcherConfig> headers = {}) {
  return {RouteMatchConfig::PathKind::prefix, std::move(p), true, std::move(headers)};
}
RouteMatchConfig exact_path(std::string p) {
  return {RouteMatchConfig::PathKind::path, std::move(p), true, {}};
}
HeaderMatcherConfig header(std::string name, Kind kind, std::string value = "",
                           bool invert = false) {
  return {std::move(name), kind, std::move(value), true, invert};
}
HeaderMatcherConfig present(std::string name, bool present, bool invert = false) {
  return {std::move(name), Kind::present, "", present, invert};
}

struct Req {
  Req(std::string p = "/", std::vector<http::Header> h = {}, std::string a = "reviews:9080",
      std::string m = "GET")
      : path(std::move(p)), headers(std::move(h)), authority(std::move(a)), method(std::move(m)) {}
  RequestView view() const { return {authority, path, method, headers}; }

  std::string path;
  std::vector<http::Header> headers;
  std::string authority;
  std::string method;
};

bool matches(const RouteMatchConfig& config, const Req& req) {
  return RouteMatcher(config).matches(req.view());
}

RouteMatchConfig regex_path(std::string re, bool case_sensitive = true) {
  return {RouteMatchConfig::PathKind::regex, std::move(re), case_sensitive, {}};
}

TEST(RouteMatcher, RegexMatchesTheWholePathWithoutQuery) {
  auto m = regex_path("/reviews/[0-9]+");
  EXPECT_TRUE(matches(m, {"/reviews/12"}));
  EXPECT_TRUE(matches(m, {"/reviews/12?x=1"}));
  EXPECT_FALSE(matches(m, {"/reviews/12/x"}));  // whole path, not a search
  EXPECT_FALSE(matches(m, {"/v1/reviews/12"}));
  EXPECT_FALSE(matches(m, {"/REVIEWS/12"}));
  EXPECT_TRUE(matches(regex_path("/reviews/[0-9]+", false), {"/REVIEWS/12"}));
}

TEST(RouteMatcher, RegexHeaderMatchesTheWholeJoinedValue) {
  auto m = prefix("/", {header("end-user", Kind::regex, "ja.*n")});
  EXPECT_TRUE(matches(m, {"/", {{"End-User", "jason"}}}));
  EXPECT_FALSE(matches(m, {"/", {{"end-user", "jasonx"}}}));
  EXPECT_FALSE(matches(m, {"/"}));  // absent
  // Repeated headers are matched joined with ",", as Envoy does.
  auto joined = prefix("/", {header("x-a", Kind::regex, "1,2")});
  EXPECT_TRUE(matches(joined, {"/", {{"x-a", "1"}, {"x-b", "z"}, {"x-a", "2"}}}));
  auto inverted = prefix("/", {header("end-user", Kind::regex, "ja.*n", true)});
  EXPECT_TRUE(matches(inverted, {"/", {{"end-user", "mary"}}}));
  EXPECT_FALSE(matches(inverted, {"/", {{"end-user", "jason"}}}));
}

TEST(RouteMatcher, MethodRegexThroughThePseudoHeader) {
  auto m = prefix("/", {header(":method", Kind::regex, "GET|HEAD")});
  EXPECT_TRUE(matches(m, {"/", {}, "a", "HEAD"}));
  EXPECT_FALSE(matches(m, {"/", {}, "a", "POST"}));
}

TEST(RouteMatcher, PrefixIgnoresQueryAndFragment) {
  auto m = prefix("/api");
  EXPECT_TRUE(matches(m, {"/api"}));
  EXPECT_TRUE(matches(m, {"/api/v1?x=1"}));
  EXPECT_TRUE(matches(m, {"/apix"}));  // a prefix is a string prefix, not a path segment
  EXPECT_FALSE(matches(m, {"/ap?i"}));
  EXPECT_FALSE(matches(m, {"/API"}));  // case-sensitive by default
  EXPECT_FALSE(matches(prefix("/api?x"), {"/api?x=1"}));
}

TEST(RouteMatcher, ExactPathIgnoresQueryAndFragment) {
  auto m = exact_path("/health");
  EXPECT_TRUE(matches(m, {"/health"}));
  EXPECT_TRUE(matches(m, {"/health?full=1"}));
  EXPECT_TRUE(matches(m, {"/health#top"}));
  EXPECT_FALSE(matches(m, {"/health/"}));
  EXPECT_FALSE(matches(m, {"/healthz"}));
}

TEST(RouteMatcher, CaseInsensitivePathWhenAsked) {
  auto p = prefix("/API/");
  p.case_sensitive = false;
  EXPECT_TRUE(matches(p, {"/api/x"}));
  auto e = exact_path("/Health");
  e.case_sensitive = false;
  EXPECT_TRUE(matches(e, {"/HEALTH?x"}));
  EXPECT_FALSE(matches(e, {"/HEALTHZ"}));
}

TEST(RouteMatcher, HeaderValueMatchers) {
  Req req{"/", {{"End-User", "jason"}, {"x-tenant", "a.internal"}}};
  EXPECT_TRUE(matches(prefix("/", {header("end-user", Kind::exact, "jason")}), req));
  EXPECT_FALSE(matches(prefix("/", {header("end-user", Kind::exact, "Jason")}), req));
  EXPECT_FALSE(matches(prefix("/", {header("end-user", Kind::exact, "jaso")}), req));
  EXPECT_TRUE(matches(prefix("/", {header("END-USER", Kind::prefix, "jas")}), req));
  EXPECT_FALSE(matches(prefix("/", {header("end-user", Kind::prefix, "json")}), req));
  EXPECT_TRUE(matches(prefix("/", {header("x-tenant", Kind::suffix, ".internal")}), req));
  EXPECT_FALSE(matches(prefix("/", {header("x-tenant", Kind::suffix, ".external")}), req));
  // Envoy's legacy exact_match: an empty value matches any value of a present header.
  EXPECT_TRUE(matches(prefix("/", {header("end-user", Kind::exact, "")}), req));
}

TEST(RouteMatcher, InvertMatch) {
  Req req{"/", {{"user-agent", "curl/8.0"}}};
  EXPECT_FALSE(matches(prefix("/", {header("user-agent", Kind::prefix, "curl/", true)}), req));
  EXPECT_TRUE(matches(prefix("/", {header("user-agent", Kind::prefix, "wget/", true)}), req));
}

TEST(RouteMatcher, AbsentHeaderFollowsEnvoy) {
  Req req{"/", {{"other", "x"}}};
  // Value matchers never match an absent header, inverted or not.
  EXPECT_FALSE(matches(prefix("/", {header("end-user", Kind::exact, "jason")}), req));
  EXPECT_FALSE(matches(prefix("/", {header("end-user", Kind::exact, "jason", true)}), req));
  EXPECT_FALSE(matches(prefix("/", {header("end-user", Kind::exact, "")}), req));
  // present_match: true needs it, false forbids it; invert flips both.
  EXPECT_FALSE(matches(prefix("/", {present("end-user", true)}), req));
  EXPECT_TRUE(matches(prefix("/", {present("end-user", false)}), req));
  EXPECT_TRUE(matches(prefix("/", {present("end-user", true, true)}), req));
  EXPECT_FALSE(matches(prefix("/", {present("end-user", false, true)}), req));
  Req with{"/", {{"end-user", ""}}};  // present, even if empty
  EXPECT_TRUE(matches(prefix("/", {present("end-user", true)}), with));
  EXPECT_FALSE(matches(prefix("/", {present("end-user", false)}), with));
}

TEST(RouteMatcher, RepeatedHeadersAreJoinedWithComma) {
  Req req{"/", {{"x-tag", "a"}, {"other", "z"}, {"X-Tag", "bc"}, {"x-tag", "d"}}};
  EXPECT_TRUE(matches(prefix("/", {header("x-tag", Kind::exact, "a,bc,d")}), req));
  EXPECT_FALSE(matches(prefix("/", {header("x-tag", Kind::exact, "a,bc,")}), req));
  EXPECT_FALSE(matches(prefix("/", {header("x-tag", Kind::exact, "a,bc,dd")}), req));
  EXPECT_FALSE(matches(prefix("/", {header("x-tag", Kind::exact, "a")}), req));
  EXPECT_TRUE(matches(prefix("/", {header("x-tag", Kind::prefix, "a,b")}), req));
  EXPECT_TRUE(matches(prefix("/", {header("x-tag", Kind::suffix, "c,d")}), req));
  EXPECT_TRUE(matches(prefix("/", {header("x-tag", Kind::suffix, "a,bc,d")}), req));
  EXPECT_FALSE(matches(prefix("/", {header("x-tag", Kind::suffix, "z,a,bc,d")}), req));
}

TEST(RouteMatcher, PseudoHeadersReadTheRequestLine) {
  Req req{"/reviews/1?x", {}, "Reviews:9080", "POST"};
  EXPECT_TRUE(matches(prefix("/", {header(":method", Kind::exact, "POST")}), req));
  EXPECT_FALSE(matches(prefix("/", {header(":method", Kind::exact, "GET")}), req));
  EXPECT_TRUE(matches(prefix("/", {header(":authority", Kind::suffix, ":9080")}), req));
  EXPECT_TRUE(matches(prefix("/", {header(":path", Kind::exact, "/reviews/1?x")}), req));
}

TEST(RouteMatcher, AllHeaderMatchersMustMatch) {
  Req req{"/", {{"a", "1"}, {"b", "2"}}};
  auto both = prefix("/", {header("a", Kind::exact, "1"), header("b", Kind::exact, "2")});
  EXPECT_TRUE(matches(both, req));
  auto one_off = prefix("/", {header("a", Kind::exact, "1"), header("b", Kind::exact, "3")});
  EXPECT_FALSE(matches(one_off, req));
  EXPECT_FALSE(matches(prefix("/x", {header("a", Kind::exact, "1")}), req));  // path too
}

}  // namespace
}  // namespace sm::route
