// What the workers of one proxy share: options, the published route snapshot and the
// cluster state behind it, listener stats, the connection count, the access log and the
// stop flag.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "proxy/access_log.h"
#include "proxy/control_status.h"
#include "proxy/loop_config.h"
#include "proxy/options.h"
#include "proxy/proxy_stats.h"
#include "route/cluster_state.h"
#include "route/route_table.h"
#include "route/snapshot.h"
#include "tracing/reporter.h"
#include "tracing/tracer.h"

namespace sm::proxy {

struct Shared {
  explicit Shared(const Options& o);
  const Options& opts;
  // --max-connections, or (0) what the descriptor limit allows: two per proxied connection.
  const uint64_t max_connections;
  std::atomic<int64_t> downstream_connections{0};  // open, both listeners, every worker
  // The workers' event loop, uring or epoll, chosen at start (proxy/event_loop.h).
  std::atomic<EventLoop> event_loop{EventLoop::automatic};
  route::ClusterStateRegistry cluster_states;
  route::SnapshotPublisher<route::RouteTable> routes;
  ListenerStats listener_stats[2] = {ListenerStats("outbound"), ListenerStats("inbound")};
  AccessLog access_log;
  ControlStatus control;  // written by the control plane (control.h), read by the admin
  std::atomic<bool> stop{false};
  std::atomic<uint32_t> workers_running{0};
  // Draining (SIGTERM, POST /drain_listeners, a hot restart's parent): set by whoever
  // starts the drain, never cleared. The admin reports it: /server_info "state":
  // "DRAINING", server.state 1, /ready 503.
  std::atomic<bool> draining{false};
  // POST /healthcheck/fail (cleared by /healthcheck/ok): reported as draining, and every
  // response says `connection: close`, as Envoy's drain decision while its health check fails.
  std::atomic<bool> health_failed{false};
  // Per listener (index: Listener), set by a drain, never cleared: responses on its
  // connections say `connection: close` and idle keep-alive connections close early.
  std::atomic<bool> drain_close[2] = {false, false};
  // Per listener: what the workers do with it (proxy/loop_config.h). Each worker
  // acknowledges a change in listeners_stopped once it no longer accepts (having taken
  // what was queued, for `close`); whoever owns the listening sockets closes them after
  // every worker did.
  std::atomic<Listening> listening[2] = {Listening::accept, Listening::accept};
  std::atomic<uint32_t> listeners_stopped[2] = {0, 0};
  // POST /quitquitquit: the main thread exits at once.
  std::atomic<bool> quit{false};
  // POST /drain_listeners: the listeners to drain, a bit per Listener: bits 0-1 now, bits
  // 2-3 gracefully (keep accepting for --drain-time-s); the main thread carries it out.
  std::atomic<uint8_t> drain_request{0};
  // For /server_info: when this process started, and how long the proxies of earlier
  // restart epochs had run when this one started (a hot restart sets it; 0 in epoch 0).
  const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::atomic<int64_t> earlier_epochs_uptime_ms{0};
  // --zipkin-address: the span reporter and the tracer the workers call (null: tracing off,
  // and no tracing header is added to any request).
  std::unique_ptr<tracing::Reporter> zipkin;
  std::unique_ptr<const tracing::Tracer> tracer;
};

}  // namespace sm::proxy
