// Lifecycle; see lifecycle.h.
#include "proxy/lifecycle.h"

#include <sstream>

#include "sockmesh/log.h"

namespace sm::proxy {
namespace {

constexpr uint8_t kBoth = 0b11;
constexpr auto kTick = std::chrono::milliseconds(50);  // how often flags and the clock are read

}  // namespace

Status Lifecycle::listen_for_next_epoch() {
  return next_epoch_.start(shared_.opts.base_id, shared_.opts.restart_epoch);
}

int64_t Lifecycle::uptime_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - shared_.started)
             .count() +
         shared_.earlier_epochs_uptime_ms.load();
}

std::string Lifecycle::counter_lines() const {
  std::string out;
  for (int l = 0; l < 2; ++l) {
    const ListenerStats& ls = shared_.listener_stats[l];
    const std::string prefix = "listener." + ls.name + ".";
    for (const auto& [name, v] : ls.counters()) {
      if (v == 0 || name.ends_with("_active")) continue;  // gauges are each process's own
      out += "L " + std::to_string(l) + " " + name.substr(prefix.size()) + " " + std::to_string(v) +
             "\n";
    }
  }
  if (auto table = shared_.routes.current()) {
    for (const auto& cl : table->clusters()) {
      std::vector<route::Stat> stats;
      cl.stats().append_to(stats);
      for (const route::Stat& st : stats)
        if (st.value)
          out +=
              "C " + cl.name() + " " + std::string(st.name) + " " + std::to_string(st.value) + "\n";
    }
  }
  return out;
}

void Lifecycle::add_counters(const std::string& lines) {
  auto table = shared_.routes.current();
  std::istringstream in(lines);
  std::string kind, where, name;
  uint64_t n = 0;
  while (in >> kind >> where >> name >> n) {
    if (kind == "L" && (where == "0" || where == "1")) {
      shared_.listener_stats[where[0] - '0'].add(name, n);
    } else if (kind == "C" && table) {
      for (const auto& cl : table->clusters())  // a cluster this table no longer has: dropped
        if (cl.name() == where) cl.stats().add(name, n);
    }
  }
}

void Lifecycle::hand_over_counters() {
  next_epoch_.send_counters(counter_lines());
}

void Lifecycle::begin_drain(uint8_t which, Listening how) {
  // Sockets another process holds are never shut down (shutdown acts on the socket, in
  // every process): once handed over, a drain only stops accepting here.
  if (handed_over_ && how == Listening::close) how = Listening::stop;
  shared_.draining = true;
  for (int l = 0; l < 2; ++l) {
    if (!(which & (1u << l))) continue;
    shared_.drain_close[l] = true;
    Listening current = Listening::accept;
    if (how != Listening::accept) shared_.listening[l].compare_exchange_strong(current, how);
  }
}

void Lifecycle::close_stopped_listeners() {
  for (int l = 0; l < 2; ++l) {
    if (closed_[l] || shared_.listening[l].load() == Listening::accept) continue;
    if (shared_.listeners_stopped[l].load(std::memory_order_acquire) < fds_[l]->size()) continue;
    fds_[l]->clear();  // every worker stopped accepting on them
    closed_[l] = true;
  }
}

void Lifecycle::run(const sigset_t& signals) {
  for (;;) {
    timespec tick{0, std::chrono::duration_cast<std::chrono::nanoseconds>(kTick).count()};
    const int sig = ::sigtimedwait(&signals, nullptr, &tick);
    const Clock::time_point now = Clock::now();
    if (sig == SIGHUP) control_.reload();
    if (sig == SIGINT) return;
    if (sig == SIGTERM) {
      if (sigterm_seen_) return;  // asked twice: at once
      sigterm_seen_ = true;
      SM_INFO("sockmesh-proxy: SIGTERM: draining, exit within %llds",
              static_cast<long long>(shared_.opts.drain_time.count()));
      begin_drain(kBoth, Listening::close);
      // A hot restart's drain may already have set a deadline: the earlier one holds.
      const Clock::time_point at = now + shared_.opts.drain_time;
      exit_at_ = exit_at_ ? std::min(*exit_at_, at) : at;
    }
    if (shared_.quit.load() || shared_.stop.load()) return;
    if (const uint8_t req = shared_.drain_request.exchange(0)) {
      // Bits 0-1: listeners to drain now; bits 2-3: gracefully (admin.cpp).
      begin_drain(req & kBoth, Listening::close);
      begin_drain((req >> 2) & kBoth, Listening::accept);
      for (int l = 0; l < 2; ++l)
        if ((req >> 2) & (1u << l) && !stop_accepting_at_[l])
          stop_accepting_at_[l] = now + shared_.opts.drain_time;
    }
    for (int l = 0; l < 2; ++l) {
      if (!stop_accepting_at_[l] || now < *stop_accepting_at_[l]) continue;
      stop_accepting_at_[l].reset();
      Listening current = Listening::accept;
      shared_.listening[l].compare_exchange_strong(current, Listening::close);
    }
    HotRestartServer::Sockets mine;
    mine.admin = admin_.listen_fd();
    for (const UniqueFd& fd : *fds_[0]) mine.outbound.push_back(fd.get());
    for (const UniqueFd& fd : *fds_[1]) mine.inbound.push_back(fd.get());
    // A draining proxy (or one about to stop accepting) hands nothing over: it says so.
    bool willing = !shared_.draining.load() && !stop_accepting_at_[0] && !stop_accepting_at_[1];
    for (int l = 0; l < 2; ++l)
      willing = willing && shared_.listening[l].load() == Listening::accept;
    const auto event = closed_[0] || closed_[1] || mine.admin < 0
                           ? HotRestartServer::Event::none
                           : next_epoch_.poll(mine, uptime_ms(), willing);
    if (event == HotRestartServer::Event::handed_over) handed_over_ = true;
    if (event == HotRestartServer::Event::gone) handed_over_ = false;
    if (event == HotRestartServer::Event::drain) {
      SM_INFO("sockmesh-proxy: the new proxy is LIVE: draining, exit within %llds",
              static_cast<long long>(shared_.opts.parent_shutdown_time.count()));
      admin_.stop();  // the new proxy answers on the same socket
      begin_drain(kBoth, Listening::stop);
      exit_at_ = now + shared_.opts.parent_shutdown_time;
    }
    if (parent_) {
      std::string lines;
      const bool alive = read_parent(parent_.get(), &lines);
      add_counters(lines);
      if (!alive) {
        parent_.reset();
        SM_INFO("sockmesh-proxy: the proxy of epoch %u exited; its counters continue here",
                shared_.opts.restart_epoch - 1);
      }
    }
    close_stopped_listeners();
    if (exit_at_ && (now >= *exit_at_ ||
                     (closed_[0] && closed_[1] && shared_.downstream_connections.load() == 0)))
      return;
  }
}

}  // namespace sm::proxy
