// Endpoint selection; see load_balancer.h.
#include "route/load_balancer.h"

namespace sm::route {
namespace {

// splitmix64: turns one random value into a sequence, so a pick needs only one from the caller.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Which endpoints may be picked now: the non-ejected ones, or all of them in panic.
struct Usable {
  const Cluster& c;
  TimePoint now;
  bool panic;

  bool operator()(uint32_t i) const { return panic || !c.endpoint_state(i).ejected(now); }
  // The n-th usable endpoint, counting from 0.
  uint32_t nth(uint32_t n) const {
    for (uint32_t i = 0;; ++i) {
      if ((*this)(i) && n-- == 0) return i;
    }
  }
};

}  // namespace

std::optional<uint32_t> EndpointPicker::pick(const Cluster& c, TimePoint now, uint64_t random) {
  const uint32_t n = c.endpoint_count();
  const uint32_t healthy = n ? c.healthy_count(now) : 0;
  // Envoy: below healthy_panic_threshold percent healthy, balance over every endpoint.
  const bool panic = uint64_t{healthy} * 100 < uint64_t{c.config().healthy_panic_threshold} * n;
  const uint32_t usable_count = panic ? n : healthy;
  if (usable_count == 0) {
    c.stats().upstream_cx_none_healthy.inc();
    return std::nullopt;
  }
  const Usable usable{c, now, panic};
  const bool least_request = c.config().lb_policy == LbPolicy::least_request;

  if (c.config().lb_policy == LbPolicy::random) {
    if (c.uniform_weights()) return usable.nth(static_cast<uint32_t>(random % usable_count));
    // In proportion to weight: a point in the usable endpoints' total weight.
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; ++i)
      if (usable(i)) total += c.endpoint(i).weight;
    uint64_t point = random % total;
    for (uint32_t i = 0; i < n; ++i) {
      if (!usable(i)) continue;
      if (point < c.endpoint(i).weight) return i;
      point -= c.endpoint(i).weight;
    }
    return std::nullopt;  // unreachable: point < total
  }

  if (c.uniform_weights()) {
    if (least_request) {
      uint32_t best = usable.nth(static_cast<uint32_t>(random % usable_count));
      uint32_t other = usable.nth(static_cast<uint32_t>(mix(random) % usable_count));
      if (c.endpoint_state(other).active_requests() < c.endpoint_state(best).active_requests())
        best = other;
      return best;
    }
    for (uint32_t k = 0; k < n; ++k) {
      uint32_t i = static_cast<uint32_t>((uint64_t{rr_next_} + k) % n);
      if (!usable(i)) continue;
      rr_next_ = (i + 1) % n;
      return i;
    }
    return std::nullopt;  // unreachable: usable_count > 0
  }

  // Smooth weighted round robin: every usable endpoint earns its weight in credit, the
  // richest is picked and pays the total. Over a cycle each is picked in proportion.
  if (credit_.size() != n) credit_.assign(n, 0.0);
  double total = 0;
  uint32_t best = n;
  for (uint32_t i = 0; i < n; ++i) {
    if (!usable(i)) continue;
    double w = c.endpoint(i).weight;
    if (least_request) w /= 1.0 + c.endpoint_state(i).active_requests();
    credit_[i] += w;
    total += w;
    if (best == n || credit_[i] > credit_[best]) best = i;
  }
  credit_[best] -= total;
  return best;
}

std::optional<uint32_t> WorkerLoadBalancer::pick(const Cluster& c, TimePoint now, uint64_t random) {
  if (c.table_id() != table_id_) {
    pickers_.clear();
    table_id_ = c.table_id();
  }
  while (pickers_.size() <= c.index())
    pickers_.emplace_back(seed_ ? static_cast<uint32_t>(mix(seed_ ^ pickers_.size())) : 0);
  return pickers_[c.index()].pick(c, now, random);
}

}  // namespace sm::route
