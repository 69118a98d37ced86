// The route table as configuration: plain data in the shape of the JSON that --config reads
// and /config_dump prints (see config_json.h). RouteTable::build compiles it for matching.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "route/circuit_breaker.h"
#include "route/duration.h"
#include "route/retry_policy.h"
#include "sockmesh/net.h"
#include "sockmesh/result.h"

namespace sm::route {

// Envoy's HeaderMatcher, limited to exact/prefix/suffix/regex/present. A regex (Envoy's
// safe_regex_match) must match the whole value; ECMAScript syntax, which covers the RE2
// subset Istio rules use (no look-around, no back-references in RE2 either).
struct HeaderMatcherConfig {
  enum class Kind : uint8_t { exact, prefix, suffix, regex, present };
  std::string name;  // compared case-insensitively; ":method", ":path", ":authority" work too
  Kind kind = Kind::present;  // Envoy: a matcher with no match field tests presence
  std::string value;          // for exact/prefix/suffix/regex
  bool present = true;        // present_match's value; false means "must be absent"
  bool invert = false;        // invert_match
  friend bool operator==(const HeaderMatcherConfig&, const HeaderMatcherConfig&) = default;
};

struct RouteMatchConfig {
  enum class PathKind : uint8_t { prefix, path, regex };
  PathKind kind = PathKind::prefix;
  std::string value;                         // the prefix, the exact path, or a whole-path regex
  bool case_sensitive = true;                // applies to the path only, as in Envoy
  std::vector<HeaderMatcherConfig> headers;  // all must match
  friend bool operator==(const RouteMatchConfig&, const RouteMatchConfig&) = default;
};

struct WeightedClusterConfig {
  std::string name;
  uint32_t weight = 0;
  friend bool operator==(const WeightedClusterConfig&, const WeightedClusterConfig&) = default;
};

// Fault injection (Envoy's HTTPFault, Istio's HTTPFaultInjection) for one route: delay the
// request by `fixed_delay`, and/or answer `http_status` without contacting the upstream, each
// for `percent` of requests, drawn independently (see fault.h).
struct FaultConfig {
  struct Delay {
    Duration fixed_delay{0};
    double percent = 100;  // 0..100
    friend bool operator==(const Delay&, const Delay&) = default;
  };
  struct Abort {
    uint16_t http_status = 503;  // 200..599
    double percent = 100;
    friend bool operator==(const Abort&, const Abort&) = default;
  };
  std::optional<Delay> delay;
  std::optional<Abort> abort;
  friend bool operator==(const FaultConfig&, const FaultConfig&) = default;
};

struct RouteActionConfig {
  std::string cluster;  // exactly one of cluster and weighted_clusters is set
  std::vector<WeightedClusterConfig> weighted_clusters;
  Duration timeout = std::chrono::seconds(15);  // Envoy's default; 0 disables the timeout
  std::optional<RetryPolicy> retry_policy;      // absent: no retries
  std::optional<std::string> prefix_rewrite;    // swaps the matched prefix (or path)
  std::optional<std::string> host_rewrite;      // Host sent upstream (Envoy's host_rewrite_literal)
  std::optional<FaultConfig> fault;             // absent: no fault injection
  friend bool operator==(const RouteActionConfig&, const RouteActionConfig&) = default;
};

// One entry of a virtual host's routes: JSON {"name"?, "match": {...}, "route": {...}}.
struct RouteEntryConfig {
  std::string name;  // optional, for logs and dumps
  RouteMatchConfig match;
  RouteActionConfig action;
  friend bool operator==(const RouteEntryConfig&, const RouteEntryConfig&) = default;
};

struct VirtualHostConfig {
  std::string name;
  std::vector<std::string> domains;      // "reviews:9080", "*.consul", "reviews.*", "*"
  std::vector<RouteEntryConfig> routes;  // in order; first match wins
  friend bool operator==(const VirtualHostConfig&, const VirtualHostConfig&) = default;
};

struct EndpointConfig {
  IpAddr address;  // IPv4 (held v4-mapped) or IPv6
  uint16_t port = 0;
  uint32_t weight = 1;                        // Envoy's load_balancing_weight (>= 1)
  std::map<std::string, std::string> labels;  // e.g. version=v1 (Consul service meta/tags)
  friend bool operator==(const EndpointConfig&, const EndpointConfig&) = default;
};

enum class LbPolicy : uint8_t { round_robin, least_request, random };

// Envoy's outlier detector, driven by what the proxy sees (no active health checks):
//   - consecutive_local_origin_failure connect failures in a row (on by default, 5);
//   - consecutive_5xx responses that are 5xx, or connect failures (Envoy's default reading,
//     split_external_local_origin_errors false); 0: off (Istio's consecutive5xxErrors);
//   - consecutive_gateway_failure: 502/503/504 or connect failures; 0: off.
// An ejection lasts base_ejection_time x the number of times the endpoint was ejected (capped
// by max_ejection_time); each `interval` the endpoint spends un-ejected takes one off that
// count, as Envoy's interval timer does. At most max_ejection_percent of the cluster is ejected
// at once (but always one endpoint, as Envoy). Unlike Envoy the default is 100 percent: the
// cluster's healthy_panic_threshold keeps a mostly-ejected cluster usable.
struct OutlierDetectionConfig {
  uint32_t consecutive_local_origin_failure = 5;
  uint32_t consecutive_5xx = 0;
  uint32_t consecutive_gateway_failure = 0;
  Duration interval = std::chrono::seconds(10);
  Duration base_ejection_time = std::chrono::seconds(30);
  Duration max_ejection_time = std::chrono::seconds(300);
  uint32_t max_ejection_percent = 100;
  friend bool operator==(const OutlierDetectionConfig&, const OutlierDetectionConfig&) = default;
};

struct ClusterConfig {
  std::string name;  // "outbound|9080|v1|reviews.service.consul"
  LbPolicy lb_policy = LbPolicy::round_robin;
  Duration connect_timeout = std::chrono::seconds(5);  // Envoy's default
  std::vector<EndpointConfig> endpoints;
  CircuitBreakerThresholds circuit_breakers;
  OutlierDetectionConfig outlier_detection;
  // Envoy's common_lb_config.healthy_panic_threshold: below this percentage of non-ejected
  // endpoints, balance over all endpoints (ejected or not) instead of overloading the rest.
  uint32_t healthy_panic_threshold = 50;
  uint32_t max_requests_per_connection = 0;       // upstream keep-alive reuse; 0: unlimited
  Duration idle_timeout = std::chrono::hours(1);  // idle pooled upstream connection; 0: never
  friend bool operator==(const ClusterConfig&, const ClusterConfig&) = default;
};

struct RouteConfig {
  std::vector<VirtualHostConfig> virtual_hosts;
  std::vector<ClusterConfig> clusters;
  friend bool operator==(const RouteConfig&, const RouteConfig&) = default;
};

// Everything a well-formed config must satisfy beyond its JSON shape: domain syntax and
// uniqueness (case-insensitive, across all virtual hosts, as Envoy requires), cluster
// references, weights, ranges. Errors name the field path, e.g.
// "virtual_hosts[0].routes[1].route.cluster: unknown cluster 'outbound|9080||nope'".
Status validate_route_config(const RouteConfig& config);

// The one way a config's regex becomes a matcher (validation and matching agree on it).
Result<std::regex> compile_regex(const std::string& pattern, bool icase);

}  // namespace sm::route
