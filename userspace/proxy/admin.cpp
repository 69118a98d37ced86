// Admin API; see admin.h.
#include "proxy/admin.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

#include "proxy/event_loop.h"
#include "route/config_json.h"
#include "sockmesh/net.h"

namespace sm::proxy {
namespace {

// Prometheus label values escape backslash, quote and newline.
std::string label(std::string_view v) {
  std::string o;
  for (char ch : v) {
    if (ch == '\\' || ch == '"') o += '\\';
    if (ch == '\n') {
      o += "\\n";
      continue;
    }
    o += ch;
  }
  return o;
}

std::string fmt_ms(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

Admin::~Admin() {
  stop();
}

Status Admin::start(const IpAddr& address, uint16_t port) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return errno_error("admin socket");
  listen_.reset(fd);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  SockAddr sa = make_sockaddr(address, port);
  if (::bind(fd, sa.get(), sa.len) != 0)
    return errno_error("--admin-address/--admin-port: bind " + endpoint_str(address, port));
  if (::listen(fd, 64) != 0) return errno_error("admin listen");
  int ev = ::eventfd(0, EFD_CLOEXEC);
  if (ev < 0) return errno_error("eventfd");
  wake_.reset(ev);
  thread_ = std::thread([this] { serve(); });
  return {};
}

void Admin::stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
  thread_.join();
}

namespace {

int64_t mono_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

}  // namespace

std::string Admin::respond(std::string_view req) const {
  size_t sp1 = req.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : req.find(' ', sp1 + 1);
  size_t eol = req.find("\r\n");
  AdminResponse r;
  if (sp2 == std::string_view::npos || eol == std::string_view::npos || sp2 > eol) {
    r = {400, "text/plain", "bad request\n"};
  } else {
    std::string_view path = req.substr(sp1 + 1, sp2 - sp1 - 1);
    path = path.substr(0, path.find('?'));
    r = handle(req.substr(0, sp1), path);
  }
  std::ostringstream out;
  out << "HTTP/1.1 " << r.status << (r.status == 200 ? " OK" : " Error")
      << "\r\ncontent-type: " << r.content_type << "\r\ncontent-length: " << r.body.size()
      << "\r\nserver: sockmesh\r\nconnection: close\r\n\r\n"
      << r.body;
  return out.str();
}

void Admin::serve() {
  std::vector<pollfd> fds;
  for (;;) {
    const int64_t now = mono_ms();
    std::erase_if(clients_, [&](Client& c) { return now >= c.deadline_ms; });  // too slow
    int64_t wait = -1;
    fds.assign({{listen_.get(), clients_.size() < kMaxClients ? short(POLLIN) : short(0), 0},
                {wake_.get(), POLLIN, 0}});
    for (const Client& c : clients_) {
      fds.push_back({c.fd.get(), c.out.empty() ? short(POLLIN) : short(POLLOUT), 0});
      wait = wait < 0 ? c.deadline_ms - now : std::min(wait, c.deadline_ms - now);
    }
    if (::poll(fds.data(), fds.size(), static_cast<int>(wait)) < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    // Serve the clients polled above (accepting may append more).
    const int64_t t = mono_ms();
    size_t polled = fds.size() - 2;
    for (size_t i = polled; i-- > 0;)
      if (fds[i + 2].revents && !step(clients_[i], t)) clients_.erase(clients_.begin() + i);
    if (fds[0].revents) accept_clients();
  }
}

void Admin::accept_clients() {
  while (clients_.size() < kMaxClients) {
    int fd = ::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    Client c;
    c.fd.reset(fd);
    c.deadline_ms = mono_ms() + kRequestTimeoutMs;
    if (step(c, mono_ms())) clients_.push_back(std::move(c));
  }
}

bool Admin::step(Client& c, int64_t now_ms) {
  if (c.out.empty()) {
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
      if (n == 0) return false;
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
      c.in.append(buf, static_cast<size_t>(n));
      size_t end = c.in.find("\r\n\r\n");
      if (end == std::string::npos && c.in.size() < kMaxRequest) continue;
      c.out = end == std::string::npos ? respond("")  // a head that never ends
                                       : respond(std::string_view(c.in).substr(0, end + 2));
      c.in.clear();
      c.deadline_ms = now_ms + kResponseTimeoutMs;
      break;
    }
  }
  while (c.sent < c.out.size()) {
    ssize_t n = ::send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.sent += static_cast<size_t>(n);
  }
  return false;  // answered: close
}

AdminResponse Admin::handle(std::string_view method, std::string_view path) const {
  if (method != "GET" && method != "HEAD") return {405, "text/plain", "use GET\n"};
  if (path == "/config_dump") return {200, "application/json", config_dump()};
  if (path == "/clusters") return {200, "text/plain", clusters()};
  if (path == "/stats") return {200, "text/plain", stats()};
  if (path == "/stats/prometheus") return {200, "text/plain; version=0.0.4", prometheus()};
  if (path == "/healthz") return {200, "text/plain", "OK\n"};
  if (path == "/ready") {
    // Live once every worker runs and a table is there (when a control plane feeds one);
    // what is degraded (Consul unreachable, a stale table, a refused rule) follows "LIVE".
    bool live = shared_.workers_running.load() == shared_.opts.workers;
    const bool needs_table = !shared_.opts.config_path.empty() || shared_.control.consul();
    if (needs_table && !shared_.routes.current()) live = false;
    return {live ? 200 : 503, "text/plain",
            (live ? "LIVE\n" : "PRE_INITIALIZING\n") + shared_.control.ready_note()};
  }
  return {404, "text/plain",
          "not found; try /config_dump /clusters /stats /stats/prometheus /ready /healthz\n"};
}

std::string Admin::config_dump() const {
  auto table = shared_.routes.current();
  std::string dump = table ? route::dump_route_config(table->config()) + "\n"
                           : "{\"virtual_hosts\":[],\"clusters\":[]}\n";
  if (shared_.control.consul()) {
    // Where the table came from and what the rules could not give, as one more member
    // ("control_plane", which --config ignores, so a dump still reads back).
    std::string status = shared_.control.dump_json();
    for (size_t p = 0; (p = status.find('\n', p)) != std::string::npos; p += 3)
      status.replace(p, 1, "\n  ");
    dump.erase(dump.find_last_of('}'));
    while (!dump.empty() && (dump.back() == '\n' || dump.back() == ' ')) dump.pop_back();
    dump += ",\n  \"control_plane\": " + status + "\n}\n\n";
  }
  return dump;
}

std::string Admin::clusters() const {
  // Envoy's /clusters text format: cluster::field::value and cluster::host::field::value.
  auto table = shared_.routes.current();
  std::ostringstream o;
  if (!table) return "";
  auto now = route::Clock::now();
  for (const auto& cl : table->clusters()) {
    const auto& n = cl.name();
    const auto& cb = cl.config().circuit_breakers;
    o << n << "::default_priority::max_connections::" << cb.max_connections << "\n";
    o << n << "::default_priority::max_pending_requests::" << cb.max_pending_requests << "\n";
    o << n << "::default_priority::max_requests::" << cb.max_requests << "\n";
    o << n << "::default_priority::max_retries::" << cb.max_retries << "\n";
    for (uint32_t i = 0; i < cl.endpoint_count(); ++i) {
      const auto& e = cl.endpoint(i);
      const auto& es = cl.endpoint_state(i);
      std::string h = n + "::" + endpoint_str(e.address, e.port);
      o << h << "::rq_active::" << es.active_requests() << "\n";
      o << h << "::weight::" << e.weight << "\n";
      o << h << "::health_flags::" << (es.ejected(now) ? "/failed_outlier_check" : "healthy")
        << "\n";
      for (const auto& [k, v] : e.labels) o << h << "::label::" << k << "=" << v << "\n";
    }
  }
  return o.str();
}

std::string Admin::stats() const {
  std::ostringstream o;
  for (EventLoop l : {EventLoop::uring, EventLoop::epoll})  // 1: the workers' event loop
    o << "server.event_loop." << event_loop_name(l) << ": " << (shared_.event_loop == l) << "\n";
  for (const auto& ls : shared_.listener_stats) {
    for (const auto& [name, v] : ls.counters()) o << name << ": " << v << "\n";
    for (auto [hname, h] : {std::pair{"downstream_rq_time", &ls.downstream_rq_time},
                            std::pair{"upstream_rq_time", &ls.upstream_rq_time}}) {
      auto s = h->snapshot();
      o << "listener." << ls.name << "." << hname << ": count=" << s.count
        << " P50=" << fmt_ms(s.quantile_ms(0.5)) << " P90=" << fmt_ms(s.quantile_ms(0.9))
        << " P99=" << fmt_ms(s.quantile_ms(0.99)) << " (ms)\n";
    }
  }
  if (shared_.access_log.enabled()) {
    o << "access_log.written_lines: " << shared_.access_log.written_lines() << "\n";
    o << "access_log.dropped_lines: " << shared_.access_log.dropped_lines() << "\n";
  }
  if (auto table = shared_.routes.current())
    for (const auto& [name, v] : route::render_stats(*table, route::Clock::now()))
      o << name << ": " << v << "\n";
  if (shared_.control.consul()) {
    for (const auto& [name, v] : shared_.control.counters()) o << name << ": " << v << "\n";
    for (auto [hname, h] : {std::pair{"consul_propagation_ms", &shared_.control.consul_propagation},
                            std::pair{"rebuild_ms", &shared_.control.rebuild_time}}) {
      auto p = h->snapshot();
      o << "control_plane." << hname << ": count=" << p.count
        << " P50=" << fmt_ms(p.quantile_ms(0.5)) << " P90=" << fmt_ms(p.quantile_ms(0.9))
        << " P99=" << fmt_ms(p.quantile_ms(0.99)) << " (ms)\n";
    }
  }
  return o.str();
}

std::string Admin::prometheus() const {
  std::ostringstream o;
  auto emit_family = [&](const std::string& name, const char* type) {
    o << "# TYPE sockmesh_" << name << " " << type << "\n";
  };
  emit_family("server_event_loop", "gauge");
  o << "sockmesh_server_event_loop{loop=\"" << event_loop_name(shared_.event_loop) << "\"} 1\n";
  // Listener counters and gauges, one family per stat with a listener label.
  std::vector<std::vector<std::pair<std::string, uint64_t>>> per(2);
  for (int i = 0; i < 2; ++i) per[i] = shared_.listener_stats[i].counters();
  for (size_t j = 0; j < per[0].size(); ++j) {
    std::string stat = per[0][j].first.substr(per[0][j].first.rfind('.') + 1);
    bool gauge = stat.find("_active") != std::string::npos;
    emit_family("listener_" + stat, gauge ? "gauge" : "counter");
    for (int i = 0; i < 2; ++i)
      o << "sockmesh_listener_" << stat << "{listener=\"" << shared_.listener_stats[i].name
        << "\"} " << per[i][j].second << "\n";
  }
  for (const char* hname : {"downstream_rq_time", "upstream_rq_time"}) {
    emit_family(std::string("listener_") + hname, "histogram");
    for (const auto& ls : shared_.listener_stats) {
      auto s =
          (std::string(hname) == "downstream_rq_time" ? ls.downstream_rq_time : ls.upstream_rq_time)
              .snapshot();
      uint64_t cum = 0;
      for (size_t b = 0; b < Histogram::kBounds.size(); ++b) {
        cum += s.buckets[b];
        o << "sockmesh_listener_" << hname << "_bucket{listener=\"" << ls.name << "\",le=\""
          << fmt_ms(Histogram::kBounds[b]) << "\"} " << cum << "\n";
      }
      o << "sockmesh_listener_" << hname << "_bucket{listener=\"" << ls.name << "\",le=\"+Inf\"} "
        << s.count << "\n";
      o << "sockmesh_listener_" << hname << "_sum{listener=\"" << ls.name << "\"} "
        << fmt_ms(s.sum_ms) << "\n";
      o << "sockmesh_listener_" << hname << "_count{listener=\"" << ls.name << "\"} " << s.count
        << "\n";
    }
  }
  if (shared_.access_log.enabled()) {
    emit_family("access_log_written_lines", "counter");
    o << "sockmesh_access_log_written_lines " << shared_.access_log.written_lines() << "\n";
    emit_family("access_log_dropped_lines", "counter");
    o << "sockmesh_access_log_dropped_lines " << shared_.access_log.dropped_lines() << "\n";
  }
  if (auto table = shared_.routes.current()) {
    auto now = route::Clock::now();
    std::map<std::string, std::vector<std::pair<std::string, std::string>>> families;
    std::map<std::string, const char*> types;
    for (const auto& cl : table->clusters()) {
      for (const auto& st : cl.stats_snapshot(now)) {
        std::string fam(st.name);
        for (char& ch : fam)
          if (ch == '.') ch = '_';
        families[fam].emplace_back(cl.name(), std::to_string(st.value));
        types[fam] = st.type == route::StatType::counter ? "counter" : "gauge";
      }
    }
    for (const auto& [fam, rows] : families) {
      emit_family("cluster_" + fam, types[fam]);
      for (const auto& [cluster, v] : rows)
        o << "sockmesh_cluster_" << fam << "{cluster_name=\"" << label(cluster) << "\"} " << v
          << "\n";
    }
  }
  if (shared_.control.consul()) {
    for (const auto& [name, v] : shared_.control.counters()) {
      std::string fam = name;
      for (char& ch : fam)
        if (ch == '.') ch = '_';
      const bool gauge = fam.ends_with("_fields") || fam.find("watches") != std::string::npos;
      emit_family(fam, gauge ? "gauge" : "counter");
      o << "sockmesh_" << fam << " " << v << "\n";
    }
    emit_family("consul_propagation_ms", "histogram");
    auto p = shared_.control.consul_propagation.snapshot();
    uint64_t cum = 0;
    for (size_t b = 0; b < Histogram::kBounds.size(); ++b) {
      cum += p.buckets[b];
      o << "sockmesh_consul_propagation_ms_bucket{le=\"" << fmt_ms(Histogram::kBounds[b]) << "\"} "
        << cum << "\n";
    }
    o << "sockmesh_consul_propagation_ms_bucket{le=\"+Inf\"} " << p.count << "\n";
    o << "sockmesh_consul_propagation_ms_sum " << fmt_ms(p.sum_ms) << "\n";
    o << "sockmesh_consul_propagation_ms_count " << p.count << "\n";
  }
  return o.str();
}

}  // namespace sm::proxy
