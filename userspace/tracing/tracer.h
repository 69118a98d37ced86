// Tracer: what a sidecar does for tracing on each request, as Envoy's Zipkin tracer does.
// begin() reads the request's B3 headers, decides sampling and opens a span: SERVER on
// the inbound listener, CLIENT on the outbound one; it returns the headers to set on the
// request it forwards. finish() closes the span and hands it to the sink (the Reporter)
// when sampled. Both are thread-safe and never block (see Reporter).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "http/header.h"
#include "http/header_list.h"
#include "tracing/b3.h"
#include "tracing/reporter.h"
#include "tracing/span.h"

namespace sm::tracing {

struct TracerConfig {
  std::string service_name;  // --service-cluster: every span's localEndpoint.serviceName
  std::string node_id;       // the node_id tag (Envoy: the proxy's node id)
  std::string local_ip;      // localEndpoint.ipv4/ipv6 when known ("" to leave it out)
  // --trace-sampling: percent of requests without a sampling decision that are traced
  // (Istio's default 1). Decided from a hash of x-request-id, so the hops of one request
  // agree even where a decision header is lost.
  double sampling_percent = 1.0;
  bool trace_id_128bit = false;     // Envoy's trace_id_128bit (off by default)
  bool shared_span_context = true;  // Envoy's default: a SERVER span reuses the client's id
};

struct BeginInfo {
  SpanKind kind = SpanKind::client;  // inbound listener: server; outbound: client
  std::string_view request_id = {};  // the request's x-request-id; "" makes one
  std::string_view method = {};      // http.method
  std::string_view authority = {};   // with path: http.url ("http://authority/path")
  std::string_view path = {};
  std::string_view operation = {};  // the span name; "" gives "<authority>/*" (Istio's default)
  std::string_view protocol = "HTTP/1.1";
  std::string_view user_agent = {};
  std::string_view downstream_cluster = {};  // x-envoy-downstream-service-cluster, when sent
  std::string_view peer_ip = {};             // SERVER: the downstream peer (remoteEndpoint)
  uint16_t peer_port = 0;
};

// One request's span while it is open. Movable; header views point into the context, so
// keep it alive (and unmoved) while a head built from upstream_headers() is being written.
class SpanContext {
 public:
  SpanContext() = default;
  // Moves re-point the header views at the new object's own buffers.
  SpanContext(SpanContext&& o) noexcept : d_(std::move(o.d_)) { build_headers(); }
  SpanContext& operator=(SpanContext&& o) noexcept {
    d_ = std::move(o.d_);
    build_headers();
    return *this;
  }
  SpanContext(const SpanContext&) = delete;
  SpanContext& operator=(const SpanContext&) = delete;

  bool sampled() const { return d_.sampled; }
  const TraceId& trace_id() const { return d_.trace_id; }
  uint64_t span_id() const { return d_.span_id; }
  uint64_t parent_id() const { return d_.parent_id; }
  // The x-request-id begin() made, or the request's own when sampled ("" otherwise: an
  // unsampled request costs no copy).
  const std::string& request_id() const { return d_.request_id; }
  // Fields to set (replacing any of the same name) on the request forwarded upstream:
  // x-b3-traceid, x-b3-spanid, x-b3-parentspanid (when there is a parent), x-b3-sampled,
  // x-b3-flags (debug only), and x-request-id when begin() made it. Empty for a
  // default-constructed context.
  std::span<const http::Header> upstream_headers() const;
  // Fields to drop from the forwarded request: the single `b3` header (its ids are the
  // previous hop's; the x-b3-* set replaces it).
  static std::span<const std::string_view> removed_headers();

 private:
  friend class Tracer;
  void build_headers();

  struct Data {
    TraceId trace_id;
    uint64_t span_id = 0, parent_id = 0;
    bool sampled = false, debug = false, request_id_made = false;
    std::string request_id;
    // Kept only for sampled spans (no allocation for the others); start_us 0: finished.
    int64_t start_us = 0;
    std::chrono::steady_clock::time_point start;
    Span span;
  } d_;
  char trace_hex_[32] = {}, span_hex_[16] = {}, parent_hex_[16] = {};
  std::array<http::Header, 6> headers_{};
  size_t n_headers_ = 0;
};

struct FinishInfo {
  uint16_t status = 0;                     // 0: no response (reset, timeout before one)
  std::string_view response_flags = {};    // "UF", "UT,URX"... ("" or "-": none)
  std::string_view upstream_cluster = {};  // "outbound|9080|v1|reviews.service.consul"
  std::string_view upstream_ip = {};       // CLIENT: the endpoint chosen (remoteEndpoint)
  uint16_t upstream_port = 0;
  uint64_t request_size = 0, response_size = 0;  // body bytes
};

class Tracer {
 public:
  // `sink` may be null: contexts are still made and propagated, nothing is reported.
  Tracer(TracerConfig config, SpanSink* sink);

  SpanContext begin(const http::HeaderList& request_headers, const BeginInfo& info) const;
  // Closes the span (idempotent: a second call does nothing).
  void finish(SpanContext& ctx, const FinishInfo& info) const;

  const TracerConfig& config() const { return config_; }
  // The sampling decision for a request id that carries none (exposed for tests).
  bool sample_by_request_id(std::string_view request_id) const;

 private:
  TracerConfig config_;
  uint32_t threshold_;  // of 10000
  SpanSink* sink_;
};

}  // namespace sm::tracing
