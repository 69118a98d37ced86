// sockmesh-proxy's command line: ports, workers, identity, route config, limits and
// timeouts. Parsing is pure and unit tested; every error names its flag.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "http/limits.h"
#include "sockmesh/net.h"
#include "sockmesh/result.h"

namespace sm::proxy {

using Millis = std::chrono::milliseconds;

// The workers' event loop (proxy/event_loop.h): automatic picks io_uring and falls back to
// epoll where io_uring is blocked (seccomp, kernel.io_uring_disabled).
enum class EventLoop : uint8_t { automatic, uring, epoll };

struct Options {
  uint16_t outbound_port = 15001;
  uint16_t inbound_port = 15006;
  uint16_t admin_port = 15000;
  // --admin-address: 127.0.0.1 unless a kubelet must reach it (the pod IP, 0.0.0.0, ::)
  IpAddr admin_address = IpAddr::v4(htonl(INADDR_LOOPBACK));
  uint32_t workers = 0;     // 0: one per CPU
  std::string config_path;  // --config FILE: a static route table (/config_dump's shape)
  // The control plane (proxy/control.h). Consul's address also comes from CONSUL_HTTP_ADDR.
  std::string consul_url;             // --consul URL (plain http)
  std::string service_cluster;        // --service-cluster NAME: this sidecar's own service
  std::vector<std::string> services;  // --services a,b: watch only these
  std::string state_dir;              // --state-dir DIR: the last good table
  std::string rules_path;             // --rules FILE|DIR: Istio rules
  std::string rules_kv_prefix;        // --rules-kv PREFIX: Istio rules in Consul KV
  uint32_t consul_wait_s = 60;        // --consul-wait-s: a blocking query's wait
  std::optional<uint32_t> uid, gid;   // drop to these after binding (when started as root)
  std::string access_log;             // "" off, "-" stdout, else a file path
  // Tracing (tracing/tracer.h): one span per request to a Zipkin collector.
  std::string zipkin_address;  // --zipkin-address host:port ("" off)
  double trace_sampling = 1;   // --trace-sampling PERCENT: requests without a decision (Istio: 1)

  http::Limits limits;  // --max-request-headers-kb, --max-headers
  // Protocol sniffing: how long to wait for a client's first bytes before treating the
  // connection as server-first (MySQL, SMTP) and passing it through.
  Millis sniff_timeout{100};
  // A request head must arrive completely within this time, else 408 (slowloris).
  Millis request_headers_timeout{10'000};
  // A downstream keep-alive connection with no request in flight is closed after this.
  Millis idle_timeout{300'000};
  // An idle pooled upstream connection is closed after this.
  Millis upstream_idle_timeout{60'000};
  // Connect timeout for passthrough and inbound targets (clusters carry their own).
  Millis connect_timeout{5'000};
  // Bytes queued towards a slow peer before reading from the other side pauses.
  uint32_t buffer_limit = 1 << 20;
  // Open downstream connections (both listeners, all workers); more are closed at once.
  // 0: the open-files limit less a reserve (see Shared).
  uint32_t max_connections = 0;
  // Envoy's stream_idle_timeout: an exchange with no bytes either way ends in 408 (or a
  // reset once the response started). 0 disables.
  Millis stream_idle_timeout{300'000};
  // Envoy's TCP proxy idle_timeout, for passthrough and upgraded tunnels. 0 disables.
  Millis tunnel_idle_timeout{3'600'000};
  // Provided receive buffers per worker (count, size).
  uint32_t recv_buffers = 1024;
  uint32_t recv_buffer_size = 16 * 1024;
  EventLoop event_loop = EventLoop::automatic;  // --event-loop uring|epoll|auto
  // Draining and hot restart (docs/ARCHITECTURE.md "Drain and hot restart"), as Envoy's
  // flags of the same names. A drain (SIGTERM, POST /drain_listeners) answers what is in
  // flight and closes connections for at most drain_time; a hot restart's parent exits at
  // the latest parent_shutdown_time after its child took the listeners.
  std::chrono::seconds drain_time{2};
  std::chrono::seconds parent_shutdown_time{3};
  uint32_t restart_epoch = 0;  // > 0: take the listeners from epoch - 1
  uint32_t base_id = 0;        // tells proxies in one netns apart (the hand-over socket's name)
  bool verbose = false;
};

Result<Options> parse_options(const std::vector<std::string>& args);
const char* usage();

}  // namespace sm::proxy
