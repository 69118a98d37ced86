// Runtime cluster state; see cluster_state.h.
#include "route/cluster_state.h"

namespace sm::route {

namespace {

// Adds one to `counter`; true when that made it reach `threshold` (0: this run is off).
bool count_to(std::atomic<uint32_t>& counter, uint32_t threshold) {
  const uint32_t n = counter.fetch_add(1, std::memory_order_relaxed) + 1;
  return threshold != 0 && n == threshold;
}

}  // namespace

void EndpointState::end_runs() {
  local_failures_.store(0, std::memory_order_relaxed);
  consecutive_5xx_.store(0, std::memory_order_relaxed);
  consecutive_gateway_.store(0, std::memory_order_relaxed);
}

bool EndpointState::record_connect_failure(const OutlierDetectionConfig& od) {
  bool hit = count_to(local_failures_, od.consecutive_local_origin_failure);
  hit |= count_to(consecutive_5xx_, od.consecutive_5xx);
  hit |= count_to(consecutive_gateway_, od.consecutive_gateway_failure);
  return hit;
}

bool EndpointState::record_response(int status, const OutlierDetectionConfig& od) {
  if (status < 500) {
    consecutive_5xx_.store(0, std::memory_order_relaxed);
    consecutive_gateway_.store(0, std::memory_order_relaxed);
    return false;
  }
  bool hit = count_to(consecutive_5xx_, od.consecutive_5xx);
  if (status == 502 || status == 503 || status == 504)
    hit |= count_to(consecutive_gateway_, od.consecutive_gateway_failure);
  else
    consecutive_gateway_.store(0, std::memory_order_relaxed);
  return hit;
}

Duration EndpointState::eject(TimePoint now, const OutlierDetectionConfig& od) {
  end_runs();
  // Envoy decrements the multiplier on each interval tick the endpoint is not ejected; done
  // lazily here: whole intervals since the last ejection ended.
  uint32_t m = multiplier_.load(std::memory_order_relaxed);
  const int64_t until = ejected_until_.load(std::memory_order_relaxed);
  const int64_t since = now.time_since_epoch().count() - until;
  if (m > 0 && since > 0) {
    const auto ticks = static_cast<uint64_t>(
        Clock::duration(since) / std::chrono::duration_cast<Clock::duration>(od.interval));
    m = ticks >= m ? 0 : m - static_cast<uint32_t>(ticks);
  }
  m += 1;
  multiplier_.store(m, std::memory_order_relaxed);
  Duration d = od.base_ejection_time * m;
  if (d > od.max_ejection_time || d < od.base_ejection_time) d = od.max_ejection_time;
  const auto end = now + std::chrono::duration_cast<Clock::duration>(d);
  ejected_until_.store(end.time_since_epoch().count(), std::memory_order_relaxed);
  return d;
}

std::vector<std::shared_ptr<EndpointState>> ClusterState::bind_endpoints(
    const std::vector<EndpointConfig>& endpoints) {
  std::lock_guard lock(mu_);
  std::erase_if(endpoints_, [](const auto& kv) { return kv.second.expired(); });
  std::vector<std::shared_ptr<EndpointState>> out;
  out.reserve(endpoints.size());
  for (const EndpointConfig& ep : endpoints) {
    std::weak_ptr<EndpointState>& slot = endpoints_[{ep.address, ep.port}];
    std::shared_ptr<EndpointState> state = slot.lock();
    if (!state) {
      state = std::make_shared<EndpointState>();
      slot = state;
    }
    out.push_back(std::move(state));
  }
  return out;
}

std::shared_ptr<ClusterState> ClusterStateRegistry::get(const std::string& name) {
  std::lock_guard lock(mu_);
  std::weak_ptr<ClusterState>& slot = states_[name];
  std::shared_ptr<ClusterState> state = slot.lock();
  if (!state) {
    state = std::make_shared<ClusterState>(name);
    slot = state;
  }
  return state;
}

std::shared_ptr<RouteFaultStats> ClusterStateRegistry::route_fault_stats(const std::string& key) {
  std::lock_guard lock(mu_);
  std::weak_ptr<RouteFaultStats>& slot = route_faults_[key];
  std::shared_ptr<RouteFaultStats> stats = slot.lock();
  if (!stats) {
    stats = std::make_shared<RouteFaultStats>();
    slot = stats;
  }
  return stats;
}

void ClusterStateRegistry::prune() {
  std::lock_guard lock(mu_);
  std::erase_if(states_, [](const auto& kv) { return kv.second.expired(); });
  std::erase_if(route_faults_, [](const auto& kv) { return kv.second.expired(); });
}

size_t ClusterStateRegistry::live() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& kv : states_) n += !kv.second.expired();
  return n;
}

}  // namespace sm::route
