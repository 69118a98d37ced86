// When a failed upstream attempt is tried again: Envoy's retry_on conditions, num_retries and
// jittered back-off, as plain data plus the decision, so it is testable without sockets.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "route/duration.h"
#include "sockmesh/result.h"

namespace sm::route {

// Envoy's retry_on conditions (the x-envoy-retry-on spellings), one bit each.
namespace retry_on {
inline constexpr uint32_t k5xx = 1u << 0;             // "5xx": any 5xx, and every reset
inline constexpr uint32_t kGatewayError = 1u << 1;    // "gateway-error": 502/503/504, and resets
inline constexpr uint32_t kReset = 1u << 2;           // "reset": no response at all
inline constexpr uint32_t kConnectFailure = 1u << 3;  // "connect-failure"
inline constexpr uint32_t kRefusedStream = 1u << 4;   // "refused-stream"
inline constexpr uint32_t kRetriable4xx = 1u << 5;    // "retriable-4xx": 409 only
inline constexpr uint32_t kRetriableStatusCodes = 1u << 6;  // "retriable-status-codes"
}  // namespace retry_on

// "connect-failure,5xx" -> bits. Unknown names are an error (Envoy ignores them, but in a
// config file a typo that silently disables retries is worse than a refusal to start).
Result<uint32_t> parse_retry_on(std::string_view text, std::string_view field);
// Bits -> names, always in the same order, so a dump is stable.
std::string format_retry_on(uint32_t bits);

// Why an upstream attempt failed.
enum class FailureKind : uint8_t {
  connect_failure,  // connect refused/unreachable/timed out: nothing reached the upstream
  refused_stream,   // the upstream refused the request before processing it (HTTP/2)
  reset,            // connection closed or reset before a complete response header
  per_try_timeout,  // the per-try timeout fired; Envoy resets the attempt, so it is a reset
  overflow,         // our own circuit breaker refused: never retried (it would only add load)
  response,         // a response arrived; `status` says which
};

struct RetryReason {
  FailureKind kind = FailureKind::reset;
  uint16_t status = 0;  // the upstream's status code when kind == response

  static constexpr RetryReason response(uint16_t code) { return {FailureKind::response, code}; }
};

// What the proxy does after a failed attempt (see Cluster::decide_retry, which adds the
// cluster's shared retry limit and counters to RetryPolicy::should_retry).
enum class RetryDecision : uint8_t {
  retry,           // go again (after backoff()); release Resource::retry when that try ends
  not_retriable,   // the policy does not cover this failure: pass it downstream
  limit_exceeded,  // num_retries used up (upstream_rq_retry_limit_exceeded)
  overflow,        // the cluster's max_retries / retry budget is full (upstream_rq_retry_overflow)
};

struct RetryPolicy {
  uint32_t retry_on = 0;        // retry_on:: bits
  uint32_t num_retries = 1;     // Envoy's default when a retry policy is present
  Duration per_try_timeout{0};  // 0: a try may use all that is left of the route timeout
  std::vector<uint16_t> retriable_status_codes;            // used with retriable-status-codes
  Duration base_interval = std::chrono::milliseconds(25);  // Envoy's retry_back_off defaults
  Duration max_interval = std::chrono::milliseconds(250);  // Envoy: 10 x base_interval

  // Whether retry_on covers `reason`, with Envoy's reading: 5xx and gateway-error also cover
  // every reset and connect failure (no response is a gateway error); retriable-status-codes
  // only looks at responses.
  bool retriable(RetryReason reason) const;
  // retriable() and retries left: `retries_done` is how many retries this request already had
  // (0 after the first try failed).
  bool should_retry(RetryReason reason, uint32_t retries_done) const;
  // Envoy's fully jittered exponential back-off: uniform in [0, min(base * 2^n, max)) for the
  // retry after `retries_done` retries. `random` is any uniformly random value.
  Duration backoff(uint32_t retries_done, uint64_t random) const;

  friend bool operator==(const RetryPolicy&, const RetryPolicy&) = default;
};

}  // namespace sm::route
