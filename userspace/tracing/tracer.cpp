// The per-request tracing decisions; see tracer.h.
#include "tracing/tracer.h"

#include <algorithm>
#include <cmath>

namespace sm::tracing {
namespace {

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

constexpr std::string_view kRemoved[] = {"b3"};

}  // namespace

std::span<const std::string_view> SpanContext::removed_headers() {
  return kRemoved;
}

std::span<const http::Header> SpanContext::upstream_headers() const {
  return {headers_.data(), n_headers_};
}

void SpanContext::build_headers() {
  n_headers_ = 0;
  if (d_.span_id == 0) return;
  const TraceId& t = d_.trace_id;
  if (t.wide) {
    hex64(t.high, trace_hex_);
    hex64(t.low, trace_hex_ + 16);
  } else {
    hex64(t.low, trace_hex_);
  }
  hex64(d_.span_id, span_hex_);
  headers_[n_headers_++] = {"x-b3-traceid", std::string_view(trace_hex_, t.wide ? 32 : 16)};
  headers_[n_headers_++] = {"x-b3-spanid", std::string_view(span_hex_, 16)};
  if (d_.parent_id != 0) {
    hex64(d_.parent_id, parent_hex_);
    headers_[n_headers_++] = {"x-b3-parentspanid", std::string_view(parent_hex_, 16)};
  }
  headers_[n_headers_++] = {"x-b3-sampled", d_.sampled ? "1" : "0"};
  if (d_.debug) headers_[n_headers_++] = {"x-b3-flags", "1"};
  if (d_.request_id_made) headers_[n_headers_++] = {"x-request-id", d_.request_id};
}

Tracer::Tracer(TracerConfig config, SpanSink* sink)
    : config_(std::move(config)),
      threshold_(static_cast<uint32_t>(
          std::lround(std::clamp(config_.sampling_percent, 0.0, 100.0) * 100.0))),
      sink_(sink) {}

bool Tracer::sample_by_request_id(std::string_view request_id) const {
  return fnv1a(request_id) % 10000 < threshold_;
}

SpanContext Tracer::begin(const http::HeaderList& headers, const BeginInfo& info) const {
  SpanContext ctx;
  SpanContext::Data& d = ctx.d_;
  if (info.request_id.empty()) {
    d.request_id = random_request_id();
    d.request_id_made = true;
  }
  const std::string_view request_id = d.request_id_made ? d.request_id : info.request_id;
  const B3 in = extract_b3(headers);
  d.debug = in.debug;
  switch (in.sampling) {
    case Sampling::sample:
      d.sampled = true;
      break;
    case Sampling::drop:
      d.sampled = false;
      break;
    case Sampling::unset:
      d.sampled = sample_by_request_id(request_id);
      break;
  }
  // The request id is kept only where it is used: a sampled span's tag, or a made one.
  if (d.sampled && !d.request_id_made) d.request_id.assign(info.request_id);
  bool shared = false;
  if (in.has_context()) {
    d.trace_id = *in.trace_id;
    if (info.kind == SpanKind::server && config_.shared_span_context) {
      // The server side of the caller's client span: same id, same parent.
      d.span_id = in.span_id;
      d.parent_id = in.parent_id;
      shared = true;
    } else {
      d.span_id = random_id();
      d.parent_id = in.span_id;
    }
  } else {
    d.trace_id = random_trace_id(config_.trace_id_128bit);
    d.span_id = random_id();
  }
  ctx.build_headers();
  if (!d.sampled) return ctx;

  d.start = std::chrono::steady_clock::now();
  d.start_us = now_us();
  Span& s = d.span;
  s.trace_id = d.trace_id;
  s.id = d.span_id;
  s.parent_id = d.parent_id;
  s.kind = info.kind;
  s.shared = shared;
  s.debug = d.debug;
  if (!info.operation.empty())
    s.name.assign(info.operation);
  else
    s.name.assign(info.authority).append("/*");
  s.local.service_name = config_.service_name;
  s.local.ip = config_.local_ip;
  if (info.kind == SpanKind::server) {
    s.remote.ip.assign(info.peer_ip);
    s.remote.port = info.peer_port;
  }
  s.tags.reserve(16);
  s.tags.emplace_back("component", "proxy");
  s.tags.emplace_back("guid:x-request-id", d.request_id);
  s.tags.emplace_back("http.method", std::string(info.method));
  std::string url = "http://";
  url.append(info.authority).append(info.path);
  s.tags.emplace_back("http.url", std::move(url));
  s.tags.emplace_back("http.protocol", std::string(info.protocol));
  if (!info.user_agent.empty()) s.tags.emplace_back("user_agent", std::string(info.user_agent));
  if (!info.downstream_cluster.empty())
    s.tags.emplace_back("downstream_cluster", std::string(info.downstream_cluster));
  if (!config_.node_id.empty()) s.tags.emplace_back("node_id", config_.node_id);
  return ctx;
}

void Tracer::finish(SpanContext& ctx, const FinishInfo& info) const {
  SpanContext::Data& d = ctx.d_;
  if (!d.sampled || d.start_us == 0) return;
  Span& s = d.span;
  s.timestamp_us = d.start_us;
  s.duration_us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - d.start)
                      .count();
  if (info.status != 0) s.tags.emplace_back("http.status_code", std::to_string(info.status));
  s.tags.emplace_back("response_flags", info.response_flags.empty()
                                            ? std::string("-")
                                            : std::string(info.response_flags));
  if (!info.upstream_cluster.empty())
    s.tags.emplace_back("upstream_cluster", std::string(info.upstream_cluster));
  s.tags.emplace_back("request_size", std::to_string(info.request_size));
  s.tags.emplace_back("response_size", std::to_string(info.response_size));
  if (info.status == 0 || info.status >= 500) s.tags.emplace_back("error", "true");
  if (s.kind == SpanKind::client) {
    s.remote.ip.assign(info.upstream_ip);
    s.remote.port = info.upstream_port;
  }
  d.start_us = 0;
  if (sink_) sink_->report(std::move(s));
}

}  // namespace sm::tracing
