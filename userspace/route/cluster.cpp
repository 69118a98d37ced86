// The worker-facing cluster handle; see cluster.h.
#include "route/cluster.h"

#include <algorithm>

namespace sm::route {

Cluster::Cluster(const ClusterConfig& config, std::shared_ptr<ClusterState> state, uint32_t index,
                 uint64_t table_id)
    : config_(&config),
      state_(std::move(state)),
      endpoints_(state_->bind_endpoints(config.endpoints)),
      index_(index),
      table_id_(table_id),
      uniform_weights_(std::all_of(
          config.endpoints.begin(), config.endpoints.end(),
          [&](const EndpointConfig& ep) { return ep.weight == config.endpoints[0].weight; })) {}

bool Cluster::try_acquire(Resource r) const {
  if (state_->circuit_breaker().try_acquire(r, config_->circuit_breakers)) return true;
  ClusterStats& s = state_->stats();
  switch (r) {
    case Resource::connection:
      s.upstream_cx_overflow.inc();
      break;
    case Resource::pending_request:
    case Resource::request:
      // Envoy counts both the pending and the active-request breaker here.
      s.upstream_rq_pending_overflow.inc();
      break;
    case Resource::retry:
      s.upstream_rq_retry_overflow.inc();
      break;
  }
  return false;
}

void Cluster::release(Resource r) const {
  state_->circuit_breaker().release(r);
}

void Cluster::on_request_start(uint32_t i) const {
  state_->stats().upstream_rq_total.inc();
  endpoints_[i]->request_started();
}

void Cluster::on_request_end(uint32_t i, int status) const {
  endpoints_[i]->request_finished();
  if (status <= 0) return;
  state_->stats().record_response(status);
  if (endpoints_[i]->record_response(status, config_->outlier_detection))
    maybe_eject(i, Clock::now());
}

void Cluster::maybe_eject(uint32_t i, TimePoint now) const {
  EndpointState& ep = *endpoints_[i];
  if (ep.ejected(now)) return;
  // Envoy: at most max_ejection_percent of the cluster at once, but always one endpoint.
  const uint64_t ejected = endpoint_count() - healthy_count(now);
  const uint64_t limit = config_->outlier_detection.max_ejection_percent;
  if (ejected > 0 && (ejected + 1) * 100 > limit * endpoint_count()) {
    state_->stats().ejections_overflow.inc();
    return;
  }
  ep.eject(now, config_->outlier_detection);
  state_->stats().ejections_enforced_total.inc();
}

void Cluster::on_connect_success(uint32_t i) const {
  state_->stats().upstream_cx_total.inc();
  endpoints_[i]->record_connect_success();
}

void Cluster::on_connect_failure(uint32_t i, TimePoint now) const {
  state_->stats().upstream_cx_total.inc();
  state_->stats().upstream_cx_connect_fail.inc();
  if (endpoints_[i]->record_connect_failure(config_->outlier_detection)) maybe_eject(i, now);
}

RetryDecision Cluster::decide_retry(const RetryPolicy& policy, RetryReason reason,
                                    uint32_t retries_done) const {
  if (!policy.retriable(reason)) return RetryDecision::not_retriable;
  ClusterStats& s = state_->stats();
  if (retries_done >= policy.num_retries) {
    s.upstream_rq_retry_limit_exceeded.inc();
    return RetryDecision::limit_exceeded;
  }
  if (!try_acquire(Resource::retry)) return RetryDecision::overflow;
  s.upstream_rq_retry.inc();
  return RetryDecision::retry;
}

uint32_t Cluster::healthy_count(TimePoint now) const {
  uint32_t n = 0;
  for (const auto& ep : endpoints_) n += !ep->ejected(now);
  return n;
}

std::vector<Stat> Cluster::stats_snapshot(TimePoint now) const {
  std::vector<Stat> out;
  out.reserve(48);
  state_->stats().append_to(out);
  const CircuitBreaker& cb = state_->circuit_breaker();
  const CircuitBreakerThresholds& t = config_->circuit_breakers;
  auto gauge = [&](std::string_view name, uint64_t v) {
    out.push_back({name, v, StatType::gauge});
  };
  gauge("upstream_cx_active", cb.count(Resource::connection));
  gauge("upstream_rq_active", cb.count(Resource::request));
  gauge("upstream_rq_pending_active", cb.count(Resource::pending_request));
  // Envoy's circuit_breakers.default.* gauges: open = the limit is reached right now.
  struct Named {
    Resource r;
    std::string_view open, remaining;
  };
  static constexpr Named kBreakers[] = {
      {Resource::connection, "circuit_breakers.default.cx_open",
       "circuit_breakers.default.remaining_cx"},
      {Resource::pending_request, "circuit_breakers.default.rq_pending_open",
       "circuit_breakers.default.remaining_pending"},
      {Resource::request, "circuit_breakers.default.rq_open",
       "circuit_breakers.default.remaining_rq"},
      {Resource::retry, "circuit_breakers.default.rq_retry_open",
       "circuit_breakers.default.remaining_retries"},
  };
  for (const Named& n : kBreakers) {
    uint64_t count = cb.count(n.r), limit = cb.limit(n.r, t);
    gauge(n.open, count >= limit ? 1 : 0);
    gauge(n.remaining, limit > count ? limit - count : 0);
  }
  const uint32_t healthy = healthy_count(now);
  gauge("membership_total", endpoint_count());
  gauge("membership_healthy", healthy);
  gauge("outlier_detection.ejections_active", endpoint_count() - healthy);
  return out;
}

}  // namespace sm::route
