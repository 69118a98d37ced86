// The proxy's own counters and latency histograms (per listener), shared by all workers as
// relaxed atomics; cluster counters live with the clusters (route/cluster_stats.h). Names
// follow Envoy's where Envoy has one (downstream_rq_5xx, downstream_cx_active...).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sm::proxy {

#define SM_LISTENER_COUNTERS(X)                                                               \
  X(downstream_cx_total)          /* connections accepted */                                  \
  X(downstream_cx_http1)          /* ... sniffed as HTTP/1.x */                               \
  X(downstream_cx_tcp)            /* ... passed through as opaque bytes */                    \
  X(downstream_cx_server_first)   /* ... where the client sent nothing within the sniff */    \
  X(downstream_cx_no_destination) /* no original destination: closed */                       \
  X(downstream_cx_loop)           /* original destination is this listener: closed */         \
  X(downstream_cx_idle_timeout)                                                               \
  X(downstream_cx_destroy_remote) /* the client closed or reset */                            \
  X(downstream_cx_overflow)       /* over --max-connections: closed at once */                \
  X(downstream_cx_accept_backoff) /* accept out of descriptors/memory: the listener rested */ \
  X(downstream_cx_delayed_close_timeout) /* closing: the client did not close in time */      \
  X(downstream_cx_drain_close)           /* closed by a drain: after its response, or idle */ \
  X(downstream_rq_total)                                                                      \
  X(downstream_rq_1xx)                                                                        \
  X(downstream_rq_2xx)                                                                        \
  X(downstream_rq_3xx)                                                                        \
  X(downstream_rq_4xx)                                                                        \
  X(downstream_rq_5xx)                                                                        \
  X(downstream_rq_passthrough)    /* no virtual host: sent to the original destination */     \
  X(downstream_rq_no_route)       /* a virtual host but no route: 404 */                      \
  X(downstream_rq_bad_request)    /* malformed head: 400 (also 414, 431, 501, 505) */         \
  X(downstream_rq_header_timeout) /* head not complete in time: 408 */                        \
  X(downstream_rq_idle_timeout)   /* no bytes either way for --stream-idle-timeout-ms */      \
  X(downstream_rq_no_healthy_upstream)                                                        \
  X(downstream_rq_overflow) /* circuit breaker: 503 */                                        \
  X(downstream_rq_upstream_connect_fail)                                                      \
  X(downstream_rq_upstream_timeout)                                                           \
  X(downstream_rq_upstream_reset)                                                             \
  X(downstream_rq_upstream_bad_response)                                                      \
  X(downstream_rq_upstream_too_many_1xx) /* more interim responses than allowed: 502 */       \
  X(downstream_rq_retry)                                                                      \
  X(downstream_rq_client_gone)         /* client left mid-response: upstream released */      \
  X(downstream_rq_pipeline_paused)     /* replies unread: pipelined requests wait */          \
  X(flow_control_paused_reading_total) /* a connection stopped reading (backpressure) */      \
  X(flow_control_resumed_reading_total)                                                       \
  X(tcp_upstream_connect_fail)                                                                \
  X(tcp_idle_timeout) /* a tunnel idle for --tunnel-idle-timeout-ms: closed */                \
  X(tcp_bytes_sent)                                                                           \
  X(tcp_bytes_received)

class Histogram {
 public:
  // Envoy's default bucket bounds, in milliseconds.
  static constexpr std::array<double, 19> kBounds = {
      0.5,  1,    5,     10,    25,    50,     100,    250,     500,    1000,
      2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000};
  void record_us(uint64_t us);
  struct Snapshot {
    std::array<uint64_t, kBounds.size() + 1> buckets{};  // per bucket (last: +Inf)
    uint64_t count = 0;
    double sum_ms = 0;
    double quantile_ms(double q) const;  // interpolated within buckets
  };
  Snapshot snapshot() const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_us_{0};
};

struct ListenerStats {
  explicit ListenerStats(std::string n) : name(std::move(n)) {}
#define SM_DECLARE(c) std::atomic<uint64_t> c{0};
  SM_LISTENER_COUNTERS(SM_DECLARE)
#undef SM_DECLARE
  // Envoy's fault filter counters ("fault.delays_injected", "fault.aborts_injected").
  std::atomic<uint64_t> fault_delays_injected{0};
  std::atomic<uint64_t> fault_aborts_injected{0};
  std::atomic<int64_t> downstream_cx_active{0};
  std::atomic<int64_t> downstream_rq_active{0};
  Histogram downstream_rq_time;  // first request byte to last response byte
  Histogram upstream_rq_time;    // request sent upstream to response head received
  std::string name;              // "outbound" or "inbound"

  void inc(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.fetch_add(n, std::memory_order_relaxed);
  }
  void record_status(int status);
  // ("listener.<name>.<counter>", value), counters then gauges.
  std::vector<std::pair<std::string, uint64_t>> counters() const;
  // Adds n to the counter (not a gauge) of that name, without the "listener.<name>." prefix
  // (a hot restart's parent's count); false: no such counter.
  bool add(std::string_view counter, uint64_t n);
};

}  // namespace sm::proxy
