// Blocking-query rules; see blocking_query.h.
#include "consul/blocking_query.h"

#include <algorithm>

namespace sm::consul {

BlockingIndex::Update BlockingIndex::on_response(uint64_t x_consul_index) {
  const uint64_t got = std::max<uint64_t>(x_consul_index, 1);  // never below 1
  const uint64_t had = index_;
  if (had == 0) {
    index_ = got;
    return Update::first;
  }
  if (got < had) {
    index_ = 0;  // start again without blocking
    return Update::backwards;
  }
  index_ = got;
  return got == had ? Update::same : Update::moved;
}

Duration Backoff::next(uint64_t random) {
  const uint32_t n = std::min<uint32_t>(failures_++, 30);
  Duration d = base_ * (int64_t{1} << std::min<uint32_t>(n, 20));
  if (d > max_ || d <= Duration::zero()) d = max_;
  const int64_t half = d.count() / 2;
  return Duration(half +
                  static_cast<int64_t>(random % static_cast<uint64_t>(std::max<int64_t>(half, 1))));
}

void RateLimiter::refill(TimePoint now) {
  if (!started_) {
    started_ = true;
    last_ = now;
    return;
  }
  if (now <= last_) return;
  tokens_ = std::min(burst_, tokens_ + std::chrono::duration<double>(now - last_).count() * rate_);
  last_ = now;
}

TimePoint RateLimiter::acquire(TimePoint now) {
  refill(now);
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return now;
  }
  const double missing = 1.0 - tokens_;
  return now + std::chrono::duration_cast<Clock::duration>(
                   std::chrono::duration<double>(missing / rate_));
}

}  // namespace sm::consul
