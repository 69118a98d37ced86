// Listener counters and histograms; see proxy_stats.h.
#include "proxy_stats.h"

#include <algorithm>

namespace sm::proxy {

void Histogram::record_us(uint64_t us) {
  double ms = static_cast<double>(us) / 1000.0;
  size_t i =
      static_cast<size_t>(std::lower_bound(kBounds.begin(), kBounds.end(), ms) - kBounds.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(us, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  for (size_t i = 0; i < buckets_.size(); ++i)
    s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
  for (uint64_t b : s.buckets) s.count += b;
  s.sum_ms = static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1000.0;
  return s;
}

double Histogram::Snapshot::quantile_ms(double q) const {
  if (count == 0) return 0;
  double target = q * static_cast<double>(count);
  double seen = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    double next = seen + static_cast<double>(buckets[i]);
    if (next >= target && buckets[i] > 0) {
      double lo = i == 0 ? 0 : kBounds[i - 1];
      double hi = i < kBounds.size() ? kBounds[i] : kBounds.back();
      return lo + (hi - lo) * (target - seen) / static_cast<double>(buckets[i]);
    }
    seen = next;
  }
  return kBounds.back();
}

void ListenerStats::record_status(int status) {
  switch (status / 100) {
    case 1:
      inc(downstream_rq_1xx);
      break;
    case 2:
      inc(downstream_rq_2xx);
      break;
    case 3:
      inc(downstream_rq_3xx);
      break;
    case 4:
      inc(downstream_rq_4xx);
      break;
    default:
      inc(downstream_rq_5xx);
      break;
  }
}

bool ListenerStats::add(std::string_view counter, uint64_t n) {
#define SM_ADD(c)      \
  if (counter == #c) { \
    inc(c, n);         \
    return true;       \
  }
  SM_LISTENER_COUNTERS(SM_ADD)
#undef SM_ADD
  if (counter == "fault.delays_injected") return inc(fault_delays_injected, n), true;
  if (counter == "fault.aborts_injected") return inc(fault_aborts_injected, n), true;
  return false;
}

std::vector<std::pair<std::string, uint64_t>> ListenerStats::counters() const {
  std::vector<std::pair<std::string, uint64_t>> out;
  const std::string p = "listener." + name + ".";
#define SM_EMIT(c) out.emplace_back(p + #c, c.load(std::memory_order_relaxed));
  SM_LISTENER_COUNTERS(SM_EMIT)
#undef SM_EMIT
  out.emplace_back(p + "fault.delays_injected",
                   fault_delays_injected.load(std::memory_order_relaxed));
  out.emplace_back(p + "fault.aborts_injected",
                   fault_aborts_injected.load(std::memory_order_relaxed));
  out.emplace_back(p + "downstream_cx_active",
                   static_cast<uint64_t>(std::max<int64_t>(0, downstream_cx_active.load())));
  out.emplace_back(p + "downstream_rq_active",
                   static_cast<uint64_t>(std::max<int64_t>(0, downstream_rq_active.load())));
  return out;
}

}  // namespace sm::proxy
