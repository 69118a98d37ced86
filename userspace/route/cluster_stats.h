// Per-cluster counters with Envoy's names (cluster.<name>.upstream_rq_total, ...), as
// atomics the workers bump, and the (name, value) list that /stats and Prometheus render.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>
#include <vector>

namespace sm::route {

// Relaxed on purpose: a counter orders nothing, it only has to add up.
class Counter {
 public:
  void inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }
  void reset() { v_.store(0, std::memory_order_relaxed); }  // POST /reset_counters

 private:
  std::atomic<uint64_t> v_{0};
};

enum class StatType : uint8_t { counter, gauge };

// One rendered value. `name` is relative to the cluster ("upstream_rq_total"); the admin
// prefixes "cluster.<cluster name>." for /stats, or makes it a label for Prometheus.
struct Stat {
  std::string_view name;
  uint64_t value = 0;
  StatType type = StatType::counter;
};

// The counters, each listed once: (member, Envoy's stat name).
#define SM_CLUSTER_COUNTERS(X)                                              \
  X(upstream_cx_total, "upstream_cx_total")                                 \
  X(upstream_cx_connect_fail, "upstream_cx_connect_fail")                   \
  X(upstream_cx_connect_timeout, "upstream_cx_connect_timeout")             \
  X(upstream_cx_overflow, "upstream_cx_overflow")                           \
  X(upstream_cx_none_healthy, "upstream_cx_none_healthy")                   \
  X(upstream_cx_max_requests, "upstream_cx_max_requests")                   \
  X(upstream_cx_idle_timeout, "upstream_cx_idle_timeout")                   \
  X(upstream_rq_total, "upstream_rq_total")                                 \
  X(upstream_rq_completed, "upstream_rq_completed")                         \
  X(upstream_rq_1xx, "upstream_rq_1xx")                                     \
  X(upstream_rq_2xx, "upstream_rq_2xx")                                     \
  X(upstream_rq_3xx, "upstream_rq_3xx")                                     \
  X(upstream_rq_4xx, "upstream_rq_4xx")                                     \
  X(upstream_rq_5xx, "upstream_rq_5xx")                                     \
  X(upstream_rq_timeout, "upstream_rq_timeout")                             \
  X(upstream_rq_per_try_timeout, "upstream_rq_per_try_timeout")             \
  X(upstream_rq_rx_reset, "upstream_rq_rx_reset")                           \
  X(upstream_rq_pending_total, "upstream_rq_pending_total")                 \
  X(upstream_rq_pending_overflow, "upstream_rq_pending_overflow")           \
  X(upstream_rq_retry, "upstream_rq_retry")                                 \
  X(upstream_rq_retry_success, "upstream_rq_retry_success")                 \
  X(upstream_rq_retry_overflow, "upstream_rq_retry_overflow")               \
  X(upstream_rq_retry_limit_exceeded, "upstream_rq_retry_limit_exceeded")   \
  X(ejections_enforced_total, "outlier_detection.ejections_enforced_total") \
  X(ejections_overflow, "outlier_detection.ejections_overflow")

struct ClusterStats {
#define SM_DECLARE_COUNTER(member, name) Counter member;
  SM_CLUSTER_COUNTERS(SM_DECLARE_COUNTER)
#undef SM_DECLARE_COUNTER

  // A complete upstream response: upstream_rq_completed and its upstream_rq_<N>xx class.
  void record_response(int status);
  // Every counter back to 0 (POST /reset_counters).
  void reset() {
#define SM_RESET_COUNTER(member, name) member.reset();
    SM_CLUSTER_COUNTERS(SM_RESET_COUNTER)
#undef SM_RESET_COUNTER
  }
  // Appends every counter, in declaration order.
  void append_to(std::vector<Stat>& out) const;
  // Adds n to the counter of that name (a hot restart's parent's count); false: no such one.
  bool add(std::string_view name, uint64_t n);
};

}  // namespace sm::route
