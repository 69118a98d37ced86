// The runtime side of a cluster: counters, circuit-breaker counts, per-endpoint active
// requests and ejections. Kept out of the immutable snapshot and keyed by cluster name in a
// registry, so it survives a snapshot swap for every cluster that keeps its name.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "route/circuit_breaker.h"
#include "route/cluster_stats.h"
#include "route/duration.h"
#include "route/route_config.h"

namespace sm::route {

// One endpoint's live state, shared by all workers. Lock-free; relaxed where a slightly
// stale value only nudges a load-balancing choice.
class EndpointState {
 public:
  uint32_t active_requests() const { return active_.load(std::memory_order_relaxed); }
  void request_started() { active_.fetch_add(1, std::memory_order_relaxed); }
  void request_finished() { active_.fetch_sub(1, std::memory_order_relaxed); }

  bool ejected(TimePoint now) const {
    return now.time_since_epoch().count() < ejected_until_.load(std::memory_order_relaxed);
  }
  // Outlier detection (see OutlierDetectionConfig). Each record_* returns true when this
  // event completed a run that calls for an ejection; the Cluster then decides (at most
  // max_ejection_percent ejected) and calls eject(). Exactly one thread sees a run complete.
  //
  // A connect failure (refused, unreachable, timed out): a local-origin failure, and a 5xx
  // and gateway failure too (Envoy's reading without split_external_local_origin_errors).
  bool record_connect_failure(const OutlierDetectionConfig& od);
  // A connect success ends the run of local-origin failures.
  void record_connect_success() { local_failures_.store(0, std::memory_order_relaxed); }
  // An upstream response's status: a 5xx continues the 5xx run (502/503/504 also the gateway
  // run); anything else ends both.
  bool record_response(int status, const OutlierDetectionConfig& od);
  // Ejects until now + base_ejection_time x (times ejected, less one per `interval` spent
  // un-ejected since the last ejection), capped by max_ejection_time. Returns that duration.
  Duration eject(TimePoint now, const OutlierDetectionConfig& od);
  uint32_t ejection_multiplier() const { return multiplier_.load(std::memory_order_relaxed); }

 private:
  void end_runs();

  std::atomic<uint32_t> active_{0};
  std::atomic<uint32_t> local_failures_{0};
  std::atomic<uint32_t> consecutive_5xx_{0};
  std::atomic<uint32_t> consecutive_gateway_{0};
  std::atomic<uint32_t> multiplier_{0};    // Envoy's num_ejections, decayed per interval
  std::atomic<int64_t> ejected_until_{0};  // steady_clock ticks; not ejected before then
};

class ClusterState {
 public:
  explicit ClusterState(std::string name) : name_(std::move(name)) {}
  ClusterState(const ClusterState&) = delete;
  ClusterState& operator=(const ClusterState&) = delete;

  const std::string& name() const { return name_; }
  ClusterStats& stats() { return stats_; }
  CircuitBreaker& circuit_breaker() { return breaker_; }

  // The states for `endpoints`, in order. An address:port this cluster already has keeps its
  // state (active requests, ejection); a new one starts fresh. Snapshot build time only.
  std::vector<std::shared_ptr<EndpointState>> bind_endpoints(
      const std::vector<EndpointConfig>& endpoints);

 private:
  const std::string name_;
  ClusterStats stats_;
  CircuitBreaker breaker_;
  std::mutex mu_;  // guards endpoints_ (build time only; workers hold shared_ptrs)
  // Weak: an endpoint's state lives as long as some snapshot lists it.
  std::map<std::pair<IpAddr, uint16_t>, std::weak_ptr<EndpointState>> endpoints_;
};

// Envoy's fault filter counters for one route. Like a cluster's state they outlive the
// snapshot: a route keeps its counts across rebuilds while its virtual host and name stay.
struct RouteFaultStats {
  mutable std::atomic<uint64_t> delays_injected{0};
  mutable std::atomic<uint64_t> aborts_injected{0};
};

// Cluster name -> state. Weak references: a cluster's state (and its counters) lives while
// any snapshot, or any request pinning an old snapshot, still has that cluster, and is freed
// after the last one goes. One registry per proxy; used only when building snapshots.
class ClusterStateRegistry {
 public:
  std::shared_ptr<ClusterState> get(const std::string& name);
  // "<virtual host>.route.<route name or index>" -> that route's fault counters.
  std::shared_ptr<RouteFaultStats> route_fault_stats(const std::string& key);
  // Drops entries whose state is gone; RouteTable::build calls it.
  void prune();
  size_t live() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::weak_ptr<ClusterState>> states_;
  std::unordered_map<std::string, std::weak_ptr<RouteFaultStats>> route_faults_;
};

}  // namespace sm::route
