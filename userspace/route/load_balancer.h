// Endpoint choice within a cluster, per worker: round robin, least request (Envoy's
// power-of-two-choices) or random (in proportion to weight), skipping ejected endpoints, with
// Envoy's panic threshold and endpoint weights. No sockets and no clock: "now" and randomness are
// passed in.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "route/cluster.h"
#include "route/duration.h"

namespace sm::route {

// The choosing state of one cluster on one worker. Round-robin position is per worker, as in
// Envoy (workers never contend on it); active-request counts are the shared EndpointState's.
//
// Uniform weights: round robin walks the endpoints in order, least request draws two
// endpoints at random and takes the one with fewer active requests (Envoy's default
// choice_count of 2). Unequal weights: smooth weighted round robin (nginx's, close to
// Envoy's EDF scheduler), where least request uses weight / (active + 1), as Envoy does
// with active_request_bias 1.0. That walk is O(endpoints); mesh clusters are small.
class EndpointPicker {
 public:
  explicit EndpointPicker(uint32_t rr_start = 0) : rr_next_(rr_start) {}

  // An index into c's endpoints, or nullopt when there is none to use (no endpoints, or all
  // ejected with healthy_panic_threshold 0); then upstream_cx_none_healthy is bumped and the
  // proxy answers 503. Below the panic threshold, ejected endpoints are used like the rest.
  // `random` is a uniformly random value (the worker's PRNG); least request draws from it.
  std::optional<uint32_t> pick(const Cluster& c, TimePoint now, uint64_t random);

 private:
  uint32_t rr_next_;
  std::vector<double> credit_;  // smooth weighted round robin: per-endpoint running credit
};

// A worker's pickers for the clusters of the snapshot it routes with. A new snapshot resets
// them (a new round-robin start is harmless); no locks, no atomics.
class WorkerLoadBalancer {
 public:
  // `seed` spreads the workers' round-robin starting points (Envoy starts each worker at a
  // random position so they do not move in lockstep); 0 starts every cluster at endpoint 0.
  explicit WorkerLoadBalancer(uint64_t seed = 0) : seed_(seed) {}

  std::optional<uint32_t> pick(const Cluster& c, TimePoint now, uint64_t random);

 private:
  uint64_t seed_;
  uint64_t table_id_ = 0;
  std::vector<EndpointPicker> pickers_;  // by Cluster::index()
};

}  // namespace sm::route
