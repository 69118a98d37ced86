// Lock-free admission counts; see circuit_breaker.h.
#include "route/circuit_breaker.h"

#include <algorithm>
#include <cassert>

namespace sm::route {

uint64_t CircuitBreaker::limit(Resource r, const CircuitBreakerThresholds& t) const {
  switch (r) {
    case Resource::connection:
      return t.max_connections;
    case Resource::pending_request:
      return t.max_pending_requests;
    case Resource::request:
      return t.max_requests;
    case Resource::retry:
      break;
  }
  if (!t.retry_budget) return t.max_retries;
  const uint64_t active = count(Resource::request) + count(Resource::pending_request);
  const auto budget =
      static_cast<uint64_t>(t.retry_budget->budget_percent / 100.0 * static_cast<double>(active));
  return std::max<uint64_t>(budget, t.retry_budget->min_retry_concurrency);
}

bool CircuitBreaker::try_acquire(Resource r, const CircuitBreakerThresholds& t) {
  std::atomic<uint64_t>& n = counts_[static_cast<size_t>(r)].n;
  uint64_t cur = n.load(std::memory_order_relaxed);
  do {
    if (cur >= limit(r, t)) return false;
  } while (!n.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed));
  return true;
}

void CircuitBreaker::release(Resource r) {
  [[maybe_unused]] uint64_t before =
      counts_[static_cast<size_t>(r)].n.fetch_sub(1, std::memory_order_relaxed);
  assert(before > 0 && "CircuitBreaker::release without a matching try_acquire");
}

uint64_t CircuitBreaker::count(Resource r) const {
  return counts_[static_cast<size_t>(r)].n.load(std::memory_order_relaxed);
}

}  // namespace sm::route
