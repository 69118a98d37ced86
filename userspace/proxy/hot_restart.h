// Hot restart (--restart-epoch N, as Envoy's flag): the proxy of epoch N takes the listening
// sockets (both listeners of every worker, and the admin's) from the running proxy of epoch
// N-1 over a unix socket in the sidecar's netns, so not one queued connection is lost: the
// sockets stay the same, only who accepts on them changes. Once the new proxy is LIVE it
// tells the old one to drain; the old one stops accepting, answers what it has in flight and
// exits when its connections are gone or --parent-shutdown-time-s has passed.
//
// The socket is abstract (no file, per netns): "sockmesh-proxy.<base-id>.<epoch>". Both ends
// check the other's uid (SO_PEERCRED: root or the proxy's own), and the new proxy checks
// that every descriptor it receives is a listening TCP socket on the port its flags name.
// Counters continue: when the old proxy exits it sends its listener and cluster counters,
// which the new one adds to its own (gauges and histograms are each process's; what the old
// one counted shows up in the new one's /stats once it has exited). /server_info's
// uptime_all_epochs adds up the epochs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proxy/options.h"
#include "sockmesh/result.h"
#include "sockmesh/unique_fd.h"

namespace sm::proxy {

// The hand-over's conversation (hot_restart.cpp): /server_info's hot_restart_version. Two
// proxies hot-restart into each other when theirs are equal.
inline constexpr const char* kHotRestartVersion = "sockmesh.1";

// The abstract socket name (without the leading NUL) of the proxy of `epoch`.
std::string hot_restart_name(uint32_t base_id, uint32_t epoch);

// What the parent hands over.
struct Handover {
  UniqueFd admin;
  std::vector<UniqueFd> outbound, inbound;  // one pair per worker of the parent
  int64_t uptime_ms = 0;                    // the parent's, all its epochs
  UniqueFd conn;                            // to the parent, until it exits
};

// The new proxy's side: connects to the proxy of epoch opts.restart_epoch - 1 and takes its
// sockets. `peer_uid`: the uid the parent may run as besides root (the one this proxy will
// run as).
Result<Handover> take_over(const Options& opts, uint32_t peer_uid);
// Once this proxy is LIVE: the parent stops accepting and drains.
Status drain_parent(Handover& h);
// What the parent sends from `conn` without blocking: its counters' lines (appended to
// *lines) as it exits. False once the parent is gone (conn can be closed).
bool read_parent(int conn, std::string* lines);

// The running proxy's side: listens for the next epoch and, when it connects, sends the
// sockets; then waits for its word to drain. Polled from the main thread (never blocks).
class HotRestartServer {
 public:
  struct Sockets {
    int admin = -1;
    std::vector<int> outbound, inbound;
  };
  Status start(uint32_t base_id, uint32_t epoch);
  enum class Event { none, handed_over, drain, gone };
  // Accepts a new proxy and hands `s` over (uptime_ms: this proxy's, all epochs), or reads
  // its word to drain. A new proxy that goes away before that (gone) leaves this one as it
  // was. Unless `willing` (this proxy drains): the new proxy is told so, and gets nothing.
  // Blocks at most 200 ms (a peer that connects and says nothing).
  Event poll(const Sockets& s, int64_t uptime_ms, bool willing = true);
  // Once drained, as this proxy exits: its counters, one "<kind> <where> <name> <value>" per
  // line (lifecycle.cpp), to the new proxy; sent in pieces of whole lines.
  void send_counters(const std::string& lines);

 private:
  UniqueFd listen_, conn_;
  bool drained_ = false;
  std::string name_;
};

}  // namespace sm::proxy
