// Trace and span identifiers as B3 and Zipkin spell them: 64-bit span ids, 64- or 128-bit
// trace ids, lower-case hex on the wire; zero is never a valid id.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sm::tracing {

struct TraceId {
  uint64_t high = 0;  // 0 for a 64-bit id
  uint64_t low = 0;
  bool wide = false;  // 128 bits: encoded as 32 hex digits

  bool valid() const { return high != 0 || low != 0; }
  std::string hex() const;  // 16 or 32 lower-case hex digits
  friend bool operator==(const TraceId&, const TraceId&) = default;
};

// Exactly 16 hex digits (either case), not all zero.
std::optional<uint64_t> parse_span_id(std::string_view s);
// 16 or 32 hex digits (either case), not all zero.
std::optional<TraceId> parse_trace_id(std::string_view s);
// 16 lower-case hex digits.
std::string hex64(uint64_t v);
void hex64(uint64_t v, char out[16]);

// Random ids from a per-thread generator (seeded from the OS): never zero.
uint64_t random_id();
TraceId random_trace_id(bool wide);
// A version 4 UUID (8-4-4-4-12 lower-case hex digits), as Envoy makes x-request-id.
std::string random_request_id();

}  // namespace sm::tracing
