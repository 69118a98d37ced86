// A cluster as a snapshot holds it: its config (immutable, owned by the snapshot) bound to
// its runtime ClusterState (shared, survives swaps). The worker's handle for admission,
// endpoint bookkeeping, retries and stats.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "route/cluster_state.h"
#include "route/route_config.h"

namespace sm::route {

class Cluster {
 public:
  Cluster(const ClusterConfig& config, std::shared_ptr<ClusterState> state, uint32_t index,
          uint64_t table_id);

  const ClusterConfig& config() const { return *config_; }
  const std::string& name() const { return config_->name; }
  // Position in its RouteTable's clusters(); per-worker load-balancer state is indexed by it.
  uint32_t index() const { return index_; }
  uint64_t table_id() const { return table_id_; }

  uint32_t endpoint_count() const { return static_cast<uint32_t>(endpoints_.size()); }
  const EndpointConfig& endpoint(uint32_t i) const { return config_->endpoints[i]; }
  // Mutable through a const Cluster by design: the snapshot is immutable, the state it points
  // to is the live, shared part.
  EndpointState& endpoint_state(uint32_t i) const { return *endpoints_[i]; }
  // All endpoints carry the same weight (the common case: plain round robin / P2C).
  bool uniform_weights() const { return uniform_weights_; }
  ClusterStats& stats() const { return state_->stats(); }
  CircuitBreaker& circuit_breaker() const { return state_->circuit_breaker(); }

  // Admission against this cluster's circuit breakers. A refusal bumps Envoy's counter for it
  // (connection: upstream_cx_overflow; pending or request: upstream_rq_pending_overflow;
  // retry: upstream_rq_retry_overflow); the proxy answers 503 for a refused request.
  bool try_acquire(Resource r) const;
  void release(Resource r) const;

  // Bookkeeping around one upstream attempt on endpoint `i`.
  void on_request_start(uint32_t i) const;  // upstream_rq_total; active requests + 1
  // `status` is the upstream's response status, or 0 when none came (reset, timeout, the
  // client left); a status feeds outlier detection (consecutive 5xx / gateway errors).
  void on_request_end(uint32_t i, int status) const;
  // How a connect attempt ended; both count in upstream_cx_total (Envoy counts attempts).
  void on_connect_success(uint32_t i) const;
  // Also upstream_cx_connect_fail, and outlier detection (may eject the endpoint). For a
  // connect timeout the proxy bumps upstream_cx_connect_timeout as well.
  void on_connect_failure(uint32_t i, TimePoint now) const;

  // Envoy's retry decision for a failed attempt: the route's policy, then num_retries, then
  // this cluster's retry limit (max_retries or the retry budget). On `retry` the caller holds
  // one Resource::retry until that retry attempt ends. Bumps upstream_rq_retry*, as Envoy.
  RetryDecision decide_retry(const RetryPolicy& policy, RetryReason reason,
                             uint32_t retries_done) const;

  // Endpoints not ejected at `now`.
  uint32_t healthy_count(TimePoint now) const;
  // Counters, then gauges (active counts, circuit breaker state, membership), Envoy's names.
  std::vector<Stat> stats_snapshot(TimePoint now) const;

 private:
  // An outlier-detection run completed on endpoint i: eject it unless that would exceed
  // max_ejection_percent (then outlier_detection.ejections_overflow).
  void maybe_eject(uint32_t i, TimePoint now) const;

  const ClusterConfig* config_;
  std::shared_ptr<ClusterState> state_;
  std::vector<std::shared_ptr<EndpointState>> endpoints_;  // parallel to config_->endpoints
  uint32_t index_;
  uint64_t table_id_;
  bool uniform_weights_;
};

}  // namespace sm::route
