// The route table as configuration: plain data in the shape of the JSON that --config reads
// and /config_dump prints (see config_json.h). RouteTable::build compiles it for matching.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "route/circuit_breaker.h"
#include "route/duration.h"
#include "route/retry_policy.h"
#include "sockmesh/net.h"
#include "sockmesh/result.h"

namespace sm::route {

// Envoy's HeaderMatcher, limited to exact/prefix/suffix/present.
struct HeaderMatcherConfig {
  enum class Kind : uint8_t { exact, prefix, suffix, present };
  std::string name;  // compared case-insensitively; ":method", ":path", ":authority" work too
  Kind kind = Kind::present;  // Envoy: a matcher with no match field tests presence
  std::string value;          // for exact/prefix/suffix
  bool present = true;        // present_match's value; false means "must be absent"
  bool invert = false;        // invert_match
  friend bool operator==(const HeaderMatcherConfig&, const HeaderMatcherConfig&) = default;
};

struct RouteMatchConfig {
  enum class PathKind : uint8_t { prefix, path };
  PathKind kind = PathKind::prefix;
  std::string value;                         // the prefix, or the exact path
  bool case_sensitive = true;                // applies to the path only, as in Envoy
  std::vector<HeaderMatcherConfig> headers;  // all must match
  friend bool operator==(const RouteMatchConfig&, const RouteMatchConfig&) = default;
};

struct WeightedClusterConfig {
  std::string name;
  uint32_t weight = 0;
  friend bool operator==(const WeightedClusterConfig&, const WeightedClusterConfig&) = default;
};

struct RouteActionConfig {
  std::string cluster;  // exactly one of cluster and weighted_clusters is set
  std::vector<WeightedClusterConfig> weighted_clusters;
  Duration timeout = std::chrono::seconds(15);  // Envoy's default; 0 disables the timeout
  std::optional<RetryPolicy> retry_policy;      // absent: no retries
  std::optional<std::string> prefix_rewrite;    // swaps the matched prefix (or path)
  std::optional<std::string> host_rewrite;      // Host sent upstream (Envoy's host_rewrite_literal)
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

enum class LbPolicy : uint8_t { round_robin, least_request };

// A simplified Envoy outlier detector: `consecutive_local_origin_failure` connect failures in a
// row (no success between) eject the endpoint for `base_ejection_time`; it then comes back on
// its own. Unlike Envoy the time does not grow with repeated ejections, there is no
// max_ejection_percent, and it is on by default (we have no active health checks); 0 turns it
// off. The cluster's healthy_panic_threshold keeps a mostly-ejected cluster usable.
struct OutlierDetectionConfig {
  uint32_t consecutive_local_origin_failure = 5;
  Duration base_ejection_time = std::chrono::seconds(30);
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

}  // namespace sm::route
