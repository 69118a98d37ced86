// Istio's traffic rules as sockmesh reads them: the VirtualService and DestinationRule
// fields it supports (networking.istio.io v1alpha3, v1beta1, v1), as plain values. Fields
// that are valid Istio but not supported are not modelled: the parser reports them by name.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sm::istio {

using Duration = std::chrono::nanoseconds;

struct StringMatch {
  enum class Kind : uint8_t { exact, prefix, regex };
  Kind kind = Kind::exact;
  std::string value;
  friend bool operator==(const StringMatch&, const StringMatch&) = default;
};

struct HttpMatchRequest {
  std::string name;
  std::optional<StringMatch> uri;
  std::optional<StringMatch> method;
  std::optional<StringMatch> authority;
  // Header name (lowercase, as Istio requires) -> match; nullopt: the header must be present.
  std::map<std::string, std::optional<StringMatch>> headers;
  std::map<std::string, std::optional<StringMatch>> without_headers;
  bool ignore_uri_case = false;
  std::map<std::string, std::string> source_labels;
  friend bool operator==(const HttpMatchRequest&, const HttpMatchRequest&) = default;
};

struct Destination {
  std::string host;
  std::string subset;
  std::optional<uint32_t> port;
  friend bool operator==(const Destination&, const Destination&) = default;
};

struct RouteDestination {
  Destination destination;
  std::optional<uint32_t> weight;
  friend bool operator==(const RouteDestination&, const RouteDestination&) = default;
};

struct HttpRetry {
  uint32_t attempts = 0;
  std::optional<Duration> per_try_timeout;
  std::optional<std::string> retry_on;  // "5xx,connect-failure,503"
  friend bool operator==(const HttpRetry&, const HttpRetry&) = default;
};

struct HttpFault {
  struct Delay {
    Duration fixed_delay{0};
    double percent = 0;  // of requests, 0..100; unspecified: none (Istio)
    friend bool operator==(const Delay&, const Delay&) = default;
  };
  struct Abort {
    uint32_t http_status = 0;
    double percent = 0;
    friend bool operator==(const Abort&, const Abort&) = default;
  };
  std::optional<Delay> delay;
  std::optional<Abort> abort;
  friend bool operator==(const HttpFault&, const HttpFault&) = default;
};

struct HttpRewrite {
  std::optional<std::string> uri;
  std::optional<std::string> authority;
  friend bool operator==(const HttpRewrite&, const HttpRewrite&) = default;
};

struct HttpRoute {
  std::string name;
  std::vector<HttpMatchRequest> match;  // any may match; none: matches everything
  std::vector<RouteDestination> route;
  std::optional<Duration> timeout;
  std::optional<HttpRetry> retries;
  std::optional<HttpFault> fault;
  std::optional<HttpRewrite> rewrite;
  friend bool operator==(const HttpRoute&, const HttpRoute&) = default;
};

struct VirtualService {
  std::string name;
  std::string source;  // "rules/reviews.yaml#2", "kv sockmesh/rules/reviews"
  std::vector<std::string> hosts;
  std::vector<HttpRoute> http;
  friend bool operator==(const VirtualService&, const VirtualService&) = default;
};

enum class LoadBalancer : uint8_t { round_robin, least_request, random };

struct ConnectionPool {
  std::optional<uint32_t> max_connections;     // tcp.maxConnections
  std::optional<Duration> connect_timeout;     // tcp.connectTimeout
  std::optional<uint32_t> http1_max_pending;   // http.http1MaxPendingRequests
  std::optional<uint32_t> http2_max_requests;  // http.http2MaxRequests
  std::optional<uint32_t> max_requests_per_connection;
  std::optional<uint32_t> max_retries;
  std::optional<Duration> idle_timeout;  // http.idleTimeout
  friend bool operator==(const ConnectionPool&, const ConnectionPool&) = default;
};

struct OutlierDetection {
  std::optional<uint32_t> consecutive_5xx;
  std::optional<uint32_t> consecutive_gateway;
  std::optional<uint32_t> consecutive_local_origin;
  std::optional<Duration> interval;
  std::optional<Duration> base_ejection_time;
  std::optional<uint32_t> max_ejection_percent;
  std::optional<uint32_t> min_health_percent;
  friend bool operator==(const OutlierDetection&, const OutlierDetection&) = default;
};

struct TrafficPolicy {
  std::optional<LoadBalancer> load_balancer;
  std::optional<ConnectionPool> connection_pool;
  std::optional<OutlierDetection> outlier_detection;
  friend bool operator==(const TrafficPolicy&, const TrafficPolicy&) = default;
};

struct Subset {
  std::string name;
  std::map<std::string, std::string> labels;
  std::optional<TrafficPolicy> traffic_policy;
  friend bool operator==(const Subset&, const Subset&) = default;
};

struct DestinationRule {
  std::string name;
  std::string source;
  std::string host;
  std::optional<TrafficPolicy> traffic_policy;
  std::vector<Subset> subsets;
  friend bool operator==(const DestinationRule&, const DestinationRule&) = default;
};

// Everything loaded from one or more sources. `unsupported` names each valid-but-unsupported
// field found ("rules/r.yaml#1 VirtualService reviews: spec.http[0].mirror"), in order.
struct RuleSet {
  std::vector<VirtualService> virtual_services;
  std::vector<DestinationRule> destination_rules;
  std::vector<std::string> unsupported;
  friend bool operator==(const RuleSet&, const RuleSet&) = default;

  void append(RuleSet other);
};

}  // namespace sm::istio
