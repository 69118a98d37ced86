// The main thread's part once the workers run: signals, drains and hot restarts.
//   SIGHUP         re-read --config or the rule files
//   SIGTERM        drain: /ready 503, stop accepting (what is queued is still served), answer
//                  what is in flight with `connection: close`, close idle keep-alive
//                  connections, exit once no connection is left or --drain-time-s passed;
//                  a second SIGTERM exits at once
//   SIGINT, POST /quitquitquit   exit at once
//   POST /drain_listeners[?inboundonly][&graceful]   drain without exiting (admin.cpp)
//   a new proxy of the next epoch (hot_restart.h)    hand the sockets over; when it is LIVE,
//                  drain and exit once no connection is left or --parent-shutdown-time-s
//                  passed; its counters go to the new proxy as it exits
// The listening sockets are this class's (one owner): closed here once every worker stopped
// accepting on them.
#pragma once

#include <signal.h>

#include <chrono>
#include <optional>
#include <vector>

#include "proxy/admin.h"
#include "proxy/control.h"
#include "proxy/hot_restart.h"
#include "proxy/shared.h"
#include "sockmesh/unique_fd.h"

namespace sm::proxy {

class Lifecycle {
 public:
  Lifecycle(Shared& shared, Control& control, Admin& admin, std::vector<UniqueFd>& outbound,
            std::vector<UniqueFd>& inbound)
      : shared_(shared), control_(control), admin_(admin), fds_{&outbound, &inbound} {}
  // Lets the proxy of the next epoch (--restart-epoch + 1) take over from this one.
  Status listen_for_next_epoch();
  // A hot restart's new proxy: reads the old one's counters from `conn` as it exits.
  void follow_parent(UniqueFd conn) { parent_ = std::move(conn); }
  // Returns when the process should exit.
  void run(const sigset_t& signals);
  // Once the workers stopped, if this proxy handed over: its counters to the new proxy.
  void hand_over_counters();

 private:
  using Clock = std::chrono::steady_clock;
  // Listeners in `which` (bit per Listener) drain; `how`: what happens to their sockets.
  void begin_drain(uint8_t which, Listening how);
  void close_stopped_listeners();
  int64_t uptime_ms() const;
  // Listener and cluster counters as "L <listener index> <counter> <n>" and
  // "C <cluster> <counter> <n>" lines, and the other way: added to this process's.
  std::string counter_lines() const;
  void add_counters(const std::string& lines);

  Shared& shared_;
  Control& control_;
  Admin& admin_;
  std::vector<UniqueFd>* fds_[2];
  HotRestartServer next_epoch_;
  UniqueFd parent_;
  bool closed_[2] = {false, false};
  bool sigterm_seen_ = false;
  bool handed_over_ = false;  // a new proxy holds our sockets (from the hand-over on)
  std::optional<Clock::time_point> stop_accepting_at_[2];  // a graceful drain's end
  std::optional<Clock::time_point> exit_at_;               // a drain that ends the process
};

}  // namespace sm::proxy
