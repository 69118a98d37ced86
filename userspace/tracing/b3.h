// B3 propagation as Envoy's Zipkin tracer reads it: the single `b3` header first, else the
// x-b3-* headers. A context needs both a trace id and a span id; malformed ids are ignored
// (the request starts a new trace) but the sampling headers still count on their own.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "http/header_list.h"
#include "tracing/ids.h"

namespace sm::tracing {

// x-b3-sampled / the b3 sampling state: absent, "1"/"true", "0"/"false".
enum class Sampling : uint8_t { unset, sample, drop };

struct B3 {
  std::optional<TraceId> trace_id;
  uint64_t span_id = 0;    // 0: none
  uint64_t parent_id = 0;  // 0: none (a root)
  Sampling sampling = Sampling::unset;
  bool debug = false;  // x-b3-flags: 1, or the b3 sampling state "d": always sampled
  // Why ids present in the request were ignored ("" when none were or all were valid).
  std::string_view malformed;

  bool has_context() const { return trace_id.has_value() && span_id != 0; }
};

B3 extract_b3(const http::HeaderList& headers);
// The single-header form alone: "{trace}-{span}[-{sampling}[-{parent}]]" or "{sampling}".
B3 parse_b3_single(std::string_view value);

}  // namespace sm::tracing
