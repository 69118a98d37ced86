// Whether a request matches one route: path (prefix or exact) and header matchers, with
// Envoy's semantics. Works on views into the parser's buffer and never allocates.
#pragma once

#include <optional>
#include <regex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "http/header.h"
#include "route/route_config.h"

namespace sm::route {

// The parts of a request that routing reads (views; nothing is copied).
struct RequestView {
  std::string_view authority;  // the Host header (HTTP/1.1) or :authority, as received
  std::string_view path;       // origin-form request target, query included: "/r/1?x=y"
  std::string_view method;
  std::span<const http::Header> headers;  // every request header, in order
};

// A RouteMatchConfig prepared once at snapshot build (header names lowercased, pseudo-headers
// resolved, regexes compiled). Path matching, as Envoy: query string and fragment are ignored,
// prefix, path and regex compare case-insensitively when case_sensitive is false; a regex must
// match the whole path (or the whole header value).
//
// Header matchers, as Envoy's HeaderUtility::matchHeaders: repeated headers are matched as
// one value joined with ","; an absent header matches only present_match:false (or, inverted,
// present_match:true), whatever invert_match says for the value matchers; an empty
// exact_match matches any value (Envoy's legacy exact_match). ":authority", ":path" and
// ":method" read the request line and Host, as Envoy's HTTP/1 codec exposes them.
class RouteMatcher {
 public:
  explicit RouteMatcher(const RouteMatchConfig& config);

  bool matches(const RequestView& req) const;

 private:
  enum class Source : uint8_t { header, authority, path, method };
  struct Header {
    std::string lname;  // lowercased name
    Source source;
    const HeaderMatcherConfig* config;
    std::optional<std::regex> re;  // Kind::regex
  };

  bool path_matches(std::string_view path) const;
  static bool header_matches(const Header& h, const RequestView& req);

  const RouteMatchConfig* config_;
  std::optional<std::regex> path_re_;  // PathKind::regex
  std::vector<Header> headers_;
};

}  // namespace sm::route
