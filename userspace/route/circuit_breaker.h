// Envoy's circuit breakers: per-cluster limits on connections, pending requests, active
// requests and concurrent retries, shared by every worker (atomics, no locks).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>

namespace sm::route {

// Envoy's retry budget: concurrent retries may be budget_percent of the active plus pending
// requests, but never fewer than min_retry_concurrency. When set it replaces max_retries.
struct RetryBudget {
  double budget_percent = 20.0;
  uint32_t min_retry_concurrency = 3;
  friend bool operator==(const RetryBudget&, const RetryBudget&) = default;
};

// Envoy's defaults (thresholds for the DEFAULT priority; we have no other priority).
struct CircuitBreakerThresholds {
  uint32_t max_connections = 1024;
  uint32_t max_pending_requests = 1024;
  uint32_t max_requests = 1024;
  uint32_t max_retries = 3;
  std::optional<RetryBudget> retry_budget;
  friend bool operator==(const CircuitBreakerThresholds&,
                         const CircuitBreakerThresholds&) = default;
};

enum class Resource : uint8_t { connection, pending_request, request, retry };
inline constexpr size_t kResourceCount = 4;

// The live counts. The thresholds are passed in rather than stored, so the counts survive a
// new snapshot that changes the limits, and the newest snapshot's limits apply at once.
class CircuitBreaker {
 public:
  // Takes one unit of `r` unless the count has reached its limit. A compare-and-swap loop, so
  // the limit holds exactly under contention (Envoy's check-then-increment may overshoot).
  bool try_acquire(Resource r, const CircuitBreakerThresholds& t);
  // Gives back a unit taken by try_acquire (exactly once per successful acquire).
  void release(Resource r);
  uint64_t count(Resource r) const;
  // The limit in force now. Under a retry budget it moves with the request counts.
  uint64_t limit(Resource r, const CircuitBreakerThresholds& t) const;

 private:
  // One cache line each: workers acquiring requests should not stall workers opening
  // connections.
  struct alignas(64) Count {
    std::atomic<uint64_t> n{0};
  };
  std::array<Count, kResourceCount> counts_;
};

}  // namespace sm::route
