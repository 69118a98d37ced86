// One finished span, as Zipkin's v2 model has it (zipkin2-api.yaml, definitions/Span).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tracing/ids.h"

namespace sm::tracing {

enum class SpanKind : uint8_t { client, server };

struct Endpoint {
  std::string service_name;  // "" when unknown (left out)
  std::string ip;            // IPv4 or IPv6 text; "" when unknown
  uint16_t port = 0;         // 0 when unknown (left out)
  bool empty() const { return service_name.empty() && ip.empty() && port == 0; }
};

struct Span {
  TraceId trace_id;
  uint64_t id = 0;
  uint64_t parent_id = 0;  // 0: a root span
  std::string name;        // the operation, e.g. "reviews.service.consul:9080/*"
  SpanKind kind = SpanKind::server;
  int64_t timestamp_us = 0;  // epoch microseconds of the start
  int64_t duration_us = 0;   // at least 1
  bool shared = false;       // a server span sharing the client's id (Envoy's default)
  bool debug = false;
  Endpoint local;   // serviceName: the sidecar's --service-cluster
  Endpoint remote;  // CLIENT: the upstream endpoint; SERVER: the downstream peer
  std::vector<std::pair<std::string, std::string>> tags;  // in insertion order
};

}  // namespace sm::tracing
