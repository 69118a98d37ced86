// What the workers of one proxy share: options, the published route snapshot and the
// cluster state behind it, listener stats, the access log and the stop flag.
#pragma once

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>

#include "proxy/control_status.h"
#include "proxy/options.h"
#include "proxy/proxy_stats.h"
#include "route/cluster_state.h"
#include "route/route_table.h"
#include "route/snapshot.h"

namespace sm::proxy {

// JSON-lines access log. Workers format lines in their own buffer and hand over whole
// batches, so one write(2) carries many lines and lines never interleave.
class AccessLog {
 public:
  // "" disables; "-" is stdout.
  Status open(const std::string& path);
  bool enabled() const { return fd_ >= 0; }
  void write_batch(const std::string& lines);
  ~AccessLog();

 private:
  int fd_ = -1;
  bool owned_ = false;
  std::mutex mu_;
};

struct Shared {
  explicit Shared(const Options& o) : opts(o) {}
  const Options& opts;
  route::ClusterStateRegistry cluster_states;
  route::SnapshotPublisher<route::RouteTable> routes;
  ListenerStats listener_stats[2] = {ListenerStats("outbound"), ListenerStats("inbound")};
  AccessLog access_log;
  ControlStatus control;  // written by the control plane (control.h), read by the admin
  std::atomic<bool> stop{false};
  std::atomic<uint32_t> workers_running{0};
};

}  // namespace sm::proxy
