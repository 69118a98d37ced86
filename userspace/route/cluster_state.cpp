// Runtime cluster state; see cluster_state.h.
#include "route/cluster_state.h"

namespace sm::route {

bool EndpointState::record_connect_failure(TimePoint now, const OutlierDetectionConfig& od) {
  if (od.consecutive_local_origin_failure == 0) return false;
  // Exactly one thread sees the count reach the threshold, so one failure run ejects once.
  uint32_t n = consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n != od.consecutive_local_origin_failure) return false;
  consecutive_failures_.store(0, std::memory_order_relaxed);
  const auto until = now + std::chrono::duration_cast<Clock::duration>(od.base_ejection_time);
  ejected_until_.store(until.time_since_epoch().count(), std::memory_order_relaxed);
  return true;
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

void ClusterStateRegistry::prune() {
  std::lock_guard lock(mu_);
  std::erase_if(states_, [](const auto& kv) { return kv.second.expired(); });
}

size_t ClusterStateRegistry::live() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& kv : states_) n += !kv.second.expired();
  return n;
}

}  // namespace sm::route
