// Admin API; see admin.h.
#include "proxy/admin.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>

#include "proxy/envoy_config_dump.h"
#include "proxy/event_loop.h"
#include "proxy/hot_restart.h"
#include "proxy/io.h"
#include "route/config_json.h"
#include "sockmesh/log.h"
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

using ojson = nlohmann::ordered_json;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded: %XX and '+' for a space; a malformed escape stays as is.
std::string url_decode(std::string_view v) {
  std::string o;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '+') {
      o += ' ';
    } else if (v[i] == '%' && i + 2 < v.size() && hex_digit(v[i + 1]) >= 0 &&
               hex_digit(v[i + 2]) >= 0) {
      o += static_cast<char>(hex_digit(v[i + 1]) * 16 + hex_digit(v[i + 2]));
      i += 2;
    } else {
      o += v[i];
    }
  }
  return o;
}

std::map<std::string, std::string> parse_query(std::string_view q) {
  std::map<std::string, std::string> out;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view kv = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (kv.empty()) continue;
    size_t eq = kv.find('=');
    out[url_decode(kv.substr(0, eq))] =
        eq == std::string_view::npos ? std::string() : url_decode(kv.substr(eq + 1));
  }
  return out;
}

// Envoy's (spdlog's) level names; ours has four levels, so trace is debug and critical is
// error. "off" has no equivalent and is refused.
std::optional<log::Level> parse_level(std::string_view name) {
  if (name == "trace" || name == "debug") return log::Level::debug;
  if (name == "info") return log::Level::info;
  if (name == "warning" || name == "warn") return log::Level::warn;
  if (name == "error" || name == "critical") return log::Level::error;
  return std::nullopt;
}

const char* level_name(log::Level l) {
  switch (l) {
    case log::Level::debug:
      return "debug";
    case log::Level::info:
      return "info";
    case log::Level::warn:
      return "warning";
    case log::Level::error:
      break;
  }
  return "error";
}

// What the listeners bind, as open_listener (sockets.cpp) decides: [::] with IPv4 mapped in,
// or 0.0.0.0 where this host cannot make such a socket.
bool listeners_dual_stack() {
  static const bool dual = [] {
    UniqueFd s(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int zero = 0;
    return s && ::setsockopt(s.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) == 0;
  }();
  return dual;
}

// Protobuf's JSON form of a Duration in whole milliseconds ("12.345s").
std::string duration_json(int64_t ms) {
  return route::format_duration(std::chrono::milliseconds(ms));
}

// A Prometheus family's HELP text, from its name (sockmesh_ left off).
std::string prometheus_help(const std::string& family) {
  if (family == "server_state")
    return "Envoy's server.state: 0 LIVE, 1 DRAINING, 2 PRE_INITIALIZING";
  if (family == "listener_manager_workers_started")
    return "1 once every worker runs (Envoy's listener_manager.workers_started)";
  if (family == "server_event_loop") return "The workers' event loop (label loop), always 1";
  if (family.starts_with("listener_"))
    return "Envoy's listener." + family.substr(9) + ", per listener (outbound, inbound)";
  if (family.starts_with("cluster_"))
    return "Envoy's cluster." + family.substr(8) + ", per cluster (label cluster_name)";
  if (family.starts_with("access_log_")) return "access_log." + family.substr(11);
  if (family.starts_with("control_plane_")) return "control_plane." + family.substr(14);
  return "sockmesh's " + family;
}

// /server_info's version (Envoy prints "<sha>/<version>/<status>/<build type>").
constexpr const char* kVersion = "sockmesh/0.1.0-dev";

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
  return start(std::move(listen_));
}

Status Admin::start(UniqueFd listening) {
  listen_ = std::move(listening);
  // The serving loop polls and accepts until EAGAIN: a socket handed over must not block.
  const int flags = ::fcntl(listen_.get(), F_GETFL);
  if (flags < 0 || ::fcntl(listen_.get(), F_SETFL, flags | O_NONBLOCK) != 0)
    return errno_error("admin socket O_NONBLOCK");
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
  listen_.reset();
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
    r = handle(req.substr(0, sp1), req.substr(sp1 + 1, sp2 - sp1 - 1));
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
  // stop(): no more clients; those being served get their answer (a hot restart's old proxy
  // hands its socket to the new one, which answers the next ones), within a second.
  int64_t stop_by = 0;
  for (;;) {
    const int64_t now = mono_ms();
    std::erase_if(clients_, [&](Client& c) { return now >= c.deadline_ms; });  // too slow
    if (stop_by && (clients_.empty() || now >= stop_by)) return;
    int64_t wait = stop_by ? stop_by - now : -1;
    const bool accepting = !stop_by && clients_.size() < kMaxClients;
    fds.assign({{listen_.get(), accepting ? short(POLLIN) : short(0), 0},
                {wake_.get(), stop_by ? short(0) : short(POLLIN), 0}});
    for (const Client& c : clients_) {
      fds.push_back({c.fd.get(), c.out.empty() ? short(POLLIN) : short(POLLOUT), 0});
      wait = wait < 0 ? c.deadline_ms - now : std::min(wait, c.deadline_ms - now);
    }
    if (::poll(fds.data(), fds.size(), static_cast<int>(wait)) < 0 && errno != EINTR) return;
    if (fds[1].revents) {
      stop_by = mono_ms() + 1000;
      continue;
    }
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

AdminResponse Admin::handle(std::string_view method, std::string_view target) const {
  const size_t qm = target.find('?');
  const std::string_view path = target.substr(0, qm);
  const Query q = qm == std::string_view::npos ? Query{} : parse_query(target.substr(qm + 1));
  // Envoy's rule: what changes the server's state is POST only (405 otherwise, nothing done);
  // the rest is read with GET (or HEAD).
  struct Entry {
    std::string_view path;
    bool mutates;
  };
  static constexpr Entry kEndpoints[] = {{"/config_dump", false},    {"/clusters", false},
                                         {"/stats", false},          {"/stats/prometheus", false},
                                         {"/server_info", false},    {"/listeners", false},
                                         {"/ready", false},          {"/healthz", false},
                                         {"/reset_counters", true},  {"/logging", true},
                                         {"/drain_listeners", true}, {"/healthcheck/fail", true},
                                         {"/healthcheck/ok", true},  {"/quitquitquit", true}};
  const Entry* e = nullptr;
  for (const auto& x : kEndpoints)
    if (x.path == path) e = &x;
  if (!e) {
    std::string help = "not found; GET:";
    for (const auto& x : kEndpoints)
      if (!x.mutates) help += " " + std::string(x.path);
    help += "; POST:";
    for (const auto& x : kEndpoints)
      if (x.mutates) help += " " + std::string(x.path);
    return {404, "text/plain", help + "\n"};
  }
  if (e->mutates && method != "POST")
    return {405, "text/plain", "method " + std::string(method) + " not allowed, POST required\n"};
  if (!e->mutates && method != "GET" && method != "HEAD") return {405, "text/plain", "use GET\n"};

  if (path == "/config_dump") return config_dump(q);
  if (path == "/clusters") return {200, "text/plain", clusters()};
  if (path == "/stats") return stats(q);
  if (path == "/stats/prometheus") return {200, "text/plain; version=0.0.4", prometheus()};
  if (path == "/server_info") return {200, "application/json", server_info()};
  if (path == "/listeners")
    return {200,
            q.contains("format") && q.at("format") == "json" ? "application/json" : "text/plain",
            listeners(q)};
  if (path == "/healthz") return {200, "text/plain", "OK\n"};
  if (path == "/reset_counters") return {200, "text/plain", reset_counters()};
  if (path == "/logging") return logging(q);
  if (path == "/drain_listeners") return drain_listeners(q);
  if (path == "/healthcheck/fail" || path == "/healthcheck/ok") {
    shared_.health_failed = path == "/healthcheck/fail";
    return {200, "text/plain", "OK\n"};
  }
  if (path == "/quitquitquit") {
    shared_.quit = true;
    return {200, "text/plain", "OK\n"};
  }
  // /ready: LIVE once every worker runs and a table is there (when a control plane feeds
  // one); what is degraded (Consul unreachable, a stale table, a refused rule) follows.
  switch (server_state()) {
    case ServerState::live:
      return {200, "text/plain", "LIVE\n" + shared_.control.ready_note()};
    case ServerState::draining:
      return {503, "text/plain", "DRAINING\n"};
    case ServerState::pre_initializing:
      break;
  }
  return {503, "text/plain", "PRE_INITIALIZING\n" + shared_.control.ready_note()};
}

// Envoy's POST /drain_listeners: every listener (?inboundonly: the inbound one) drains;
// ?graceful keeps accepting for --drain-time-s first (new connections are served with
// `connection: close`), else accepting stops at once. The process stays up.
AdminResponse Admin::drain_listeners(const Query& q) const {
  for (const auto& [k, v] : q)
    if (k != "inboundonly" && k != "graceful")
      return {400, "text/plain",
              "drain_listeners: unknown parameter '" + k + "' (known: inboundonly, graceful)\n"};
  const uint8_t which =
      q.contains("inboundonly") ? 1u << static_cast<int>(Listener::inbound) : 0b11;
  // Bits 0-1: drain now; bits 2-3: gracefully (lifecycle.cpp).
  shared_.drain_request.fetch_or(q.contains("graceful") ? static_cast<uint8_t>(which << 2) : which);
  return {200, "text/plain", "OK\n"};
}

Admin::ServerState Admin::server_state() const {
  if (shared_.draining.load() || shared_.health_failed.load()) return ServerState::draining;
  bool live = shared_.workers_running.load() == shared_.opts.workers;
  const bool needs_table = !shared_.opts.config_path.empty() || shared_.control.consul();
  if (needs_table && !shared_.routes.current()) live = false;
  return live ? ServerState::live : ServerState::pre_initializing;
}

AdminResponse Admin::config_dump(const Query& q) const {
  if (auto f = q.find("format"); f != q.end()) {
    if (f->second == "sockmesh") return {200, "application/json", native_config_dump()};
    return {400, "text/plain",
            "format: '" + f->second +
                "' unknown; omit it for Envoy's "
                "ConfigDump, or use format=sockmesh for the native table\n"};
  }
  auto table = shared_.routes.current();
  ConfigDumpSource src;
  if (table) src.routes = &table->config();
  src.version_info = std::to_string(shared_.routes.generation());
  const bool dual = listeners_dual_stack();
  for (const auto& ls : shared_.listener_stats) {
    const bool out = &ls == &shared_.listener_stats[0];
    src.listeners.push_back({ls.name, dual ? "::" : "0.0.0.0",
                             out ? shared_.opts.outbound_port : shared_.opts.inbound_port, dual,
                             out});
  }
  ConfigDumpAnswer a = envoy_config_dump(src, q);
  return {a.status, a.status == 200 ? "application/json" : "text/plain", std::move(a.body)};
}

std::string Admin::native_config_dump() const {
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

std::string Admin::server_info() const {
  // envoy.admin.v3.ServerInfo; fields at their proto default are left out, as Envoy's JSON.
  static constexpr const char* kStates[] = {"LIVE", "DRAINING", "PRE_INITIALIZING"};
  const auto& o = shared_.opts;
  const int64_t up_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - shared_.started)
                            .count();
  ojson cli;
  if (o.base_id) cli["base_id"] = std::to_string(o.base_id);  // uint64: a string in proto JSON
  cli["concurrency"] = o.workers;
  if (!o.config_path.empty()) cli["config_path"] = o.config_path;
  cli["log_level"] = level_name(log::threshold());
  if (!o.service_cluster.empty()) cli["service_cluster"] = o.service_cluster;
  cli["drain_time"] = duration_json(o.drain_time.count() * 1000);
  cli["parent_shutdown_time"] = duration_json(o.parent_shutdown_time.count() * 1000);
  if (o.restart_epoch) cli["restart_epoch"] = o.restart_epoch;
  ojson node = {{"user_agent_name", "sockmesh"}, {"user_agent_version", kVersion}};
  if (!o.service_cluster.empty()) node["cluster"] = o.service_cluster;
  ojson j = {{"version", kVersion},
             {"state", kStates[static_cast<int>(server_state())]},
             {"uptime_current_epoch", duration_json(up_ms / 1000 * 1000)},
             {"uptime_all_epochs",
              duration_json((up_ms + shared_.earlier_epochs_uptime_ms.load()) / 1000 * 1000)},
             {"hot_restart_version", kHotRestartVersion},
             {"command_line_options", std::move(cli)},
             {"node", std::move(node)}};
  return j.dump(2) + "\n";
}

std::string Admin::listeners(const Query& q) const {
  // Envoy's /listeners: "name::address" lines, or envoy.admin.v3.Listeners as JSON.
  const bool dual = listeners_dual_stack();
  const std::string host = dual ? "::" : "0.0.0.0";
  const bool json = q.contains("format") && q.at("format") == "json";
  ojson statuses = ojson::array();
  std::string text;
  for (int i = 0; i < 2; ++i) {
    const auto& name = shared_.listener_stats[i].name;
    const uint16_t port = i == 0 ? shared_.opts.outbound_port : shared_.opts.inbound_port;
    ojson sa = {{"address", host}, {"port_value", port}};
    if (dual) sa["ipv4_compat"] = true;
    statuses.push_back({{"name", name}, {"local_address", {{"socket_address", std::move(sa)}}}});
    text += name + "::" + (dual ? "[::]" : host) + ":" + std::to_string(port) + "\n";
  }
  if (!json) return text;
  return ojson{{"listener_statuses", std::move(statuses)}}.dump(2) + "\n";
}

AdminResponse Admin::logging(const Query& q) const {
  // Envoy's POST /logging: no parameter lists the loggers; level=L sets every logger, and
  // <logger>=L one logger (here there is one, "sockmesh").
  for (const auto& [k, v] : q) {
    if (k != "level" && k != "sockmesh")
      return {404, "text/plain", "unknown logger '" + k + "'; the one logger is 'sockmesh'\n"};
    auto l = parse_level(v);
    if (!l)
      return {400, "text/plain",
              "level: '" + v + "' unknown; one of trace debug info warning error critical\n"};
    log::set_threshold(*l);
    SM_INFO("admin: log level set to %s", level_name(*l));
  }
  return {200, "text/plain",
          std::string("active loggers:\n  sockmesh: ") + level_name(log::threshold()) + "\n"};
}

std::string Admin::reset_counters() const {
  // Counters only, as Envoy: gauges (active connections) and histograms keep their values.
  for (auto& ls : shared_.listener_stats) {
#define SM_RESET(c) ls.c.store(0, std::memory_order_relaxed);
    SM_LISTENER_COUNTERS(SM_RESET)
#undef SM_RESET
  }
  if (auto table = shared_.routes.current())
    for (const auto& cl : table->clusters()) cl.stats().reset();
  auto& c = shared_.control;
  for (auto* counter :
       {&c.rebuilds, &c.rebuilds_unchanged, &c.publishes, &c.consul_errors, &c.rules_rejected})
    counter->store(0, std::memory_order_relaxed);
  return "OK\n";
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

AdminResponse Admin::stats(const Query& q) const {
  if (auto f = q.find("format"); f != q.end() && f->second == "prometheus")
    return {200, "text/plain; version=0.0.4", prometheus()};
  std::optional<std::regex> filter;
  if (auto f = q.find("filter"); f != q.end()) {
    try {
      filter.emplace(f->second, std::regex::ECMAScript);  // partial match, as Envoy's RE2
    } catch (const std::regex_error& e) {
      return {400, "text/plain", "filter: invalid regex '" + f->second + "': " + e.what() + "\n"};
    }
  }
  const bool used_only = q.contains("usedonly");
  const bool json = q.contains("format") && q.at("format") == "json";
  if (q.contains("format") && !json)
    return {400, "text/plain", "format: one of json, prometheus (or none for text)\n"};

  // Counters and gauges, then histograms. "used" follows Envoy's usedonly loosely: a value
  // that moved from 0; the server's own gauges always count as used (Istio's readiness probe
  // asks for /stats?usedonly&filter=^(server.state|listener_manager.workers_started)).
  struct Value {
    std::string name;
    uint64_t value;
    bool used;
  };
  struct Hist {
    std::string name;
    Histogram::Snapshot s;
  };
  std::vector<Value> values;
  std::vector<Hist> hists;
  auto add = [&](std::string name, uint64_t v, bool always = false) {
    if (filter && !std::regex_search(name, *filter)) return;
    if (used_only && !always && v == 0) return;
    values.push_back({std::move(name), v, true});
  };
  auto add_hist = [&](std::string name, const Histogram& h) {
    if (filter && !std::regex_search(name, *filter)) return;
    auto snap = h.snapshot();
    if (used_only && snap.count == 0) return;
    hists.push_back({std::move(name), snap});
  };
  const ServerState state = server_state();
  add("server.state", static_cast<uint64_t>(state), true);
  add("server.live", state == ServerState::live ? 1 : 0, true);
  add("server.uptime",
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::steady_clock::now() - shared_.started)
                                .count()),
      true);
  add("server.concurrency", shared_.opts.workers, true);
  for (EventLoop l : {EventLoop::uring, EventLoop::epoll})  // 1: the workers' event loop
    add(std::string("server.event_loop.") + event_loop_name(l), shared_.event_loop == l, true);
  add("server.total_connections",
      static_cast<uint64_t>(std::max<int64_t>(0, shared_.downstream_connections.load())), true);
  add("listener_manager.workers_started",
      shared_.workers_running.load() == shared_.opts.workers ? 1 : 0, true);
  for (const auto& ls : shared_.listener_stats)
    for (const auto& [name, v] : ls.counters()) add(name, v);
  if (shared_.access_log.enabled()) {
    add("access_log.written_lines", shared_.access_log.written_lines());
    add("access_log.dropped_lines", shared_.access_log.dropped_lines());
  }
  if (const tracing::Reporter* z = shared_.zipkin.get()) {  // Envoy's tracing.zipkin.*
    const tracing::ReporterStats& zs = z->stats();
    add("tracing.zipkin.spans_sent", zs.spans_sent.load());
    add("tracing.zipkin.spans_dropped", zs.spans_dropped.load());
    add("tracing.zipkin.reports_sent", zs.reports_sent.load());
    add("tracing.zipkin.reports_dropped", zs.reports_dropped.load());
    add("tracing.zipkin.reports_failed", zs.reports_failed.load());
    add("tracing.zipkin.timer_flushed", zs.timer_flushed.load());
  }
  if (auto table = shared_.routes.current())
    for (const auto& [name, v] : route::render_stats(*table, route::Clock::now())) add(name, v);
  if (shared_.control.consul())
    for (const auto& [name, v] : shared_.control.counters()) add(name, v);
  for (const auto& ls : shared_.listener_stats) {
    add_hist("listener." + ls.name + ".downstream_rq_time", ls.downstream_rq_time);
    add_hist("listener." + ls.name + ".upstream_rq_time", ls.upstream_rq_time);
  }
  if (shared_.control.consul()) {
    add_hist("control_plane.consul_propagation_ms", shared_.control.consul_propagation);
    add_hist("control_plane.rebuild_ms", shared_.control.rebuild_time);
  }

  if (json) {
    // Envoy's shape: {"stats": [{"name", "value"}..., {"histograms": {supported_quantiles,
    // computed_quantiles}}]}. Only cumulative values: there are no flush intervals here.
    static constexpr double kQuantiles[] = {0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100};
    ojson rows = ojson::array();
    for (const auto& v : values) rows.push_back({{"name", v.name}, {"value", v.value}});
    if (!hists.empty()) {
      ojson computed = ojson::array();
      for (const auto& h : hists) {
        ojson qs = ojson::array();
        for (double pct : kQuantiles) {
          ojson cum = h.s.count ? ojson(h.s.quantile_ms(pct / 100)) : ojson(nullptr);
          qs.push_back({{"interval", nullptr}, {"cumulative", std::move(cum)}});
        }
        computed.push_back({{"name", h.name}, {"values", std::move(qs)}});
      }
      rows.push_back({{"histograms",
                       {{"supported_quantiles", kQuantiles}, {"computed_quantiles", computed}}}});
    }
    return {200, "application/json", ojson{{"stats", std::move(rows)}}.dump(2) + "\n"};
  }
  std::ostringstream o;
  for (const auto& v : values) o << v.name << ": " << v.value << "\n";
  for (const auto& h : hists)
    o << h.name << ": count=" << h.s.count << " P50=" << fmt_ms(h.s.quantile_ms(0.5))
      << " P90=" << fmt_ms(h.s.quantile_ms(0.9)) << " P99=" << fmt_ms(h.s.quantile_ms(0.99))
      << " (ms)\n";
  return {200, "text/plain", o.str()};
}

std::string Admin::prometheus() const {
  std::ostringstream o;
  auto emit_family = [&](const std::string& name, const char* type) {
    o << "# HELP sockmesh_" << name << " " << prometheus_help(name) << "\n";
    o << "# TYPE sockmesh_" << name << " " << type << "\n";
  };
  // What Istio's and Envoy's probes read first: the server state and whether workers run.
  emit_family("server_state", "gauge");
  o << "sockmesh_server_state " << static_cast<int>(server_state()) << "\n";
  emit_family("listener_manager_workers_started", "gauge");
  o << "sockmesh_listener_manager_workers_started "
    << (shared_.workers_running.load() == shared_.opts.workers ? 1 : 0) << "\n";
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
