// sockmesh-proxy flag parsing; see options.h.
#include "options.h"

#include <cstdlib>
#include <map>
#include <thread>

#include "sockmesh/net.h"

namespace sm::proxy {
namespace {

const char* const kUsage = R"(usage: sockmesh-proxy [flags]

  --outbound-port N           outbound listener, redirected connects (default 15001)
  --inbound-port N            inbound listener, steered connections (default 15006)
  --admin-port N              admin API port (default 15000)
  --admin-address ADDR        admin API address, IPv4 or IPv6 (default 127.0.0.1; a
                              pod's probes need the pod IP or 0.0.0.0)
  --workers N                 worker threads, one event loop each (default: CPUs)
  --event-loop uring|epoll|auto  the workers' event loop; auto: io_uring, or epoll where
                              io_uring is blocked (seccomp, io_uring_disabled) (auto)
  --config FILE               static route table, in the JSON shape of /config_dump
                              (with Consul: served until Consul answers)
  --consul URL                Consul agent, plain http (default: $CONSUL_HTTP_ADDR; token:
                              $CONSUL_HTTP_TOKEN, sent as X-Consul-Token)
  --service-cluster NAME      this sidecar's service ("productpage-v1": sourceLabels)
  --services a,b              watch only these Consul services (default: all)
  --state-dir DIR             keep the last good table here; served when Consul is down
  --rules FILE|DIR            Istio VirtualService/DestinationRule YAML or JSON
  --rules-kv PREFIX           Istio rules in Consul KV under PREFIX (watched)
  --consul-wait-s N           blocking query wait, seconds (60)
  --uid N --gid N             drop to this user/group after binding (when root)
  --access-log PATH|-         JSON-lines access log to a file or stdout (default off)
  --zipkin-address HOST:PORT  send spans to this Zipkin collector (POST /api/v2/spans)
  --trace-sampling PERCENT    trace this share of requests that carry no decision (1)
  --max-request-headers-kb N  request head limit, 431 above it (default 60)
  --max-headers N             header count limit, 431 above it (default 100)
  --sniff-timeout-ms N        wait for a client's first bytes; then server-first (100)
  --request-headers-timeout-ms N  whole request head within this, else 408 (10000)
  --idle-timeout-ms N         close idle downstream keep-alive connections (300000)
  --upstream-idle-timeout-ms N    close idle pooled upstream connections (60000)
  --connect-timeout-ms N      passthrough/inbound connect timeout (5000)
  --buffer-limit-kb N         queued bytes per connection before reads pause (1024)
  --max-connections N         open downstream connections, all workers; more are closed at
                              once (default 0: the open-files limit less 64)
  --stream-idle-timeout-ms N  an HTTP request with no bytes either way: 408 (300000; 0 off)
  --tunnel-idle-timeout-ms N  a TCP or upgraded tunnel with no bytes either way: closed
                              (3600000; 0 off)
  --recv-buffers N            provided receive buffers per worker (1024)
  --drain-time-s N            a drain (SIGTERM, POST /drain_listeners) answers what is in
                              flight and closes connections for at most N s (2)
  --restart-epoch N           hot restart: take the listeners and admin socket from the
                              proxy of epoch N-1 in this netns, which then drains (0)
  --parent-shutdown-time-s N  hot restart: the parent exits at the latest N s after
                              handing over (3)
  --base-id N                 tells apart proxies hot-restarting in one netns (0)
  -v, --verbose               debug logging
)";

Result<uint32_t> number(const std::string& flag, const std::string& v, uint32_t min, uint32_t max) {
  auto n = parse_u32(v, flag);
  if (!n) return n.error();
  if (*n < min || *n > max)
    return plain_error(flag + ": '" + v + "': must be " + std::to_string(min) + ".." +
                       std::to_string(max));
  return *n;
}

// "host:port" or "[v6]:port": the collector's address (the host may be a name).
Status check_host_port(const std::string& flag, const std::string& v) {
  const size_t colon = v.rfind(':');
  const std::string host = colon == std::string::npos ? "" : v.substr(0, colon);
  const bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
  if (host.empty() || (!bracketed && host.find(':') != std::string::npos) ||
      !parse_port(v.substr(colon + 1), flag))
    return plain_error(flag + ": '" + v + "': expected host:port or [ipv6]:port");
  return {};
}

}  // namespace

const char* usage() {
  return kUsage;
}

Result<Options> parse_options(const std::vector<std::string>& args) {
  Options o;
  static const std::map<std::string, bool> flags = {{"--outbound-port", true},
                                                    {"--inbound-port", true},
                                                    {"--admin-port", true},
                                                    {"--admin-address", true},
                                                    {"--workers", true},
                                                    {"--config", true},
                                                    {"--consul", true},
                                                    {"--service-cluster", true},
                                                    {"--services", true},
                                                    {"--state-dir", true},
                                                    {"--rules", true},
                                                    {"--rules-kv", true},
                                                    {"--consul-wait-s", true},
                                                    {"--uid", true},
                                                    {"--gid", true},
                                                    {"--access-log", true},
                                                    {"--zipkin-address", true},
                                                    {"--trace-sampling", true},
                                                    {"--max-request-headers-kb", true},
                                                    {"--max-headers", true},
                                                    {"--sniff-timeout-ms", true},
                                                    {"--request-headers-timeout-ms", true},
                                                    {"--idle-timeout-ms", true},
                                                    {"--upstream-idle-timeout-ms", true},
                                                    {"--connect-timeout-ms", true},
                                                    {"--buffer-limit-kb", true},
                                                    {"--recv-buffers", true},
                                                    {"--max-connections", true},
                                                    {"--stream-idle-timeout-ms", true},
                                                    {"--tunnel-idle-timeout-ms", true},
                                                    {"--event-loop", true},
                                                    {"--drain-time-s", true},
                                                    {"--parent-shutdown-time-s", true},
                                                    {"--restart-epoch", true},
                                                    {"--base-id", true},
                                                    {"--verbose", false},
                                                    {"-v", false}};
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i], v;
    size_t eq = a.find('=');
    bool inline_value = a.rfind("--", 0) == 0 && eq != std::string::npos;
    if (inline_value) {
      v = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    auto it = flags.find(a);
    if (it == flags.end()) return plain_error("unknown flag " + a + " (see --help)");
    if (it->second && !inline_value) {
      if (i + 1 >= args.size()) return plain_error(a + ": missing value");
      v = args[++i];
    }
    auto port = [&](uint16_t& out) -> Status {
      auto p = parse_port(v, a);
      if (!p) return p.error();
      out = *p;
      return {};
    };
    auto num = [&](uint32_t& out, uint32_t min, uint32_t max) -> Status {
      auto n = number(a, v, min, max);
      if (!n) return n.error();
      out = *n;
      return {};
    };
    auto millis = [&](Millis& out, uint32_t min) -> Status {
      uint32_t ms = 0;
      if (Status s = num(ms, min, 24u * 3600 * 1000); !s) return s;
      out = Millis(ms);
      return {};
    };
    Status s;
    if (a == "--outbound-port")
      s = port(o.outbound_port);
    else if (a == "--inbound-port")
      s = port(o.inbound_port);
    else if (a == "--admin-port")
      s = port(o.admin_port);
    else if (a == "--admin-address") {
      auto ip = parse_ip(v, "--admin-address");
      if (!ip) return ip.error();
      o.admin_address = *ip;
    } else if (a == "--workers")
      s = num(o.workers, 1, 256);
    else if (a == "--config") {
      if (v.empty()) return plain_error("--config: needs a file");
      o.config_path = v;
    } else if (a == "--consul" || a == "--service-cluster" || a == "--state-dir" ||
               a == "--rules" || a == "--rules-kv") {
      if (v.empty()) return plain_error(a + ": needs a value");
      std::string& field = a == "--consul"            ? o.consul_url
                           : a == "--service-cluster" ? o.service_cluster
                           : a == "--state-dir"       ? o.state_dir
                           : a == "--rules"           ? o.rules_path
                                                      : o.rules_kv_prefix;
      field = v;
    } else if (a == "--services") {
      o.services.clear();
      size_t start = 0;
      while (start <= v.size()) {
        size_t comma = v.find(',', start);
        std::string name = v.substr(start, comma == std::string::npos ? comma : comma - start);
        if (name.empty() || name.find_first_of(" /?#") != std::string::npos)
          return plain_error("--services: '" + v + "': a comma-separated list of service names");
        o.services.push_back(name);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else if (a == "--consul-wait-s") {
      s = num(o.consul_wait_s, 1, 600);  // Consul caps a blocking query's wait at 10 minutes
    } else if (a == "--uid" || a == "--gid") {
      uint32_t id = 0;
      s = num(id, 0, 0xfffffffeu);
      if (s) (a == "--uid" ? o.uid : o.gid) = id;
    } else if (a == "--access-log") {
      if (v.empty()) return plain_error("--access-log: needs a path or -");
      o.access_log = v;
    } else if (a == "--zipkin-address") {
      if (Status z = check_host_port(a, v); !z) return z.error();
      o.zipkin_address = v;
    } else if (a == "--trace-sampling") {
      char* end = nullptr;
      double p = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(p >= 0 && p <= 100))
        return plain_error("--trace-sampling: '" + v + "': must be a percentage 0..100");
      o.trace_sampling = p;
    } else if (a == "--max-request-headers-kb") {
      uint32_t kb = 0;
      s = num(kb, 1, 8192);
      if (s) o.limits.max_head_bytes = kb * 1024;
    } else if (a == "--max-headers")
      s = num(o.limits.max_headers, 1, 10000);
    else if (a == "--sniff-timeout-ms")
      s = millis(o.sniff_timeout, 1);
    else if (a == "--request-headers-timeout-ms")
      s = millis(o.request_headers_timeout, 1);
    else if (a == "--idle-timeout-ms")
      s = millis(o.idle_timeout, 1);
    else if (a == "--upstream-idle-timeout-ms")
      s = millis(o.upstream_idle_timeout, 1);
    else if (a == "--connect-timeout-ms")
      s = millis(o.connect_timeout, 1);
    else if (a == "--buffer-limit-kb") {
      uint32_t kb = 0;
      s = num(kb, 16, 1 << 20);
      if (s) o.buffer_limit = kb * 1024;
    } else if (a == "--recv-buffers")
      s = num(o.recv_buffers, 16, 32768);
    else if (a == "--max-connections")
      s = num(o.max_connections, 0, 100'000'000);
    else if (a == "--stream-idle-timeout-ms")
      s = millis(o.stream_idle_timeout, 0);
    else if (a == "--tunnel-idle-timeout-ms")
      s = millis(o.tunnel_idle_timeout, 0);
    else if (a == "--event-loop") {
      if (v == "uring")
        o.event_loop = EventLoop::uring;
      else if (v == "epoll")
        o.event_loop = EventLoop::epoll;
      else if (v == "auto")
        o.event_loop = EventLoop::automatic;
      else
        return plain_error("--event-loop: '" + v + "': must be uring, epoll or auto");
    } else if (a == "--drain-time-s" || a == "--parent-shutdown-time-s") {
      uint32_t secs = 0;
      s = num(secs, 0, 3600);
      if (s)
        (a == "--drain-time-s" ? o.drain_time : o.parent_shutdown_time) =
            std::chrono::seconds(secs);
    } else if (a == "--restart-epoch")
      s = num(o.restart_epoch, 0, 1'000'000);
    else if (a == "--base-id")
      s = num(o.base_id, 0, 1'000'000);
    else if (a == "--verbose" || a == "-v")
      o.verbose = true;
    if (!s) return s.error();
  }
  // Dropping only the group would leave the proxy running as root.
  if (o.gid && !o.uid) return plain_error("--gid: needs --uid (the user to run as)");
  if (o.outbound_port == o.inbound_port || o.outbound_port == o.admin_port ||
      o.inbound_port == o.admin_port)
    return plain_error("--outbound-port, --inbound-port and --admin-port must all differ");
  // A request line longer than the whole head limit must still get 414, not 431: the
  // parser looks at no byte past the head limit, so the line limit has to end before it.
  if (o.limits.max_start_line >= o.limits.max_head_bytes)
    o.limits.max_start_line = o.limits.max_head_bytes - 1;
  if (o.workers == 0) o.workers = std::max(1u, std::thread::hardware_concurrency());
  return o;
}

}  // namespace sm::proxy
