// Consul's documented rules for a client of blocking queries, as plain logic (no sockets, no
// clock of its own), so each rule is unit-tested:
//   - send `index` = the last X-Consul-Index and `wait`; a return is no proof of a change;
//   - the index going backwards (a snapshot restore, a new leader) resets it to 0, so the next
//     query answers at once instead of blocking on an index that will not come;
//   - an index below 1 is taken as 1 (a 0 would make every query return at once: a hot loop);
//   - errors back off with jitter; a query loop under churn is rate limited.
#pragma once

#include <chrono>
#include <cstdint>

namespace sm::consul {

using Duration = std::chrono::nanoseconds;
using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

class BlockingIndex {
 public:
  enum class Update : uint8_t {
    first,      // the first answer since start or a reset: the result is new
    same,       // the index did not move (wait elapsed, or an idempotent write)
    moved,      // the index moved forward: the result may have changed
    backwards,  // it went backwards: reset to 0; the result may have changed
  };

  // The index to send; 0 means "answer at once".
  uint64_t next() const { return index_; }
  // Records a successful answer's X-Consul-Index (0 when the header is absent or invalid).
  Update on_response(uint64_t x_consul_index);
  void reset() { index_ = 0; }

 private:
  uint64_t index_ = 0;
};

// Jittered exponential back-off after errors: the n-th consecutive failure waits a uniform
// time in [d/2, d) with d = min(base * 2^n, max), so a fleet of sidecars that lost Consul
// together does not come back in lockstep.
class Backoff {
 public:
  Backoff(Duration base, Duration max) : base_(base), max_(max) {}
  // The wait before the next attempt; `random` is any uniformly random value.
  Duration next(uint64_t random);
  void reset() { failures_ = 0; }
  uint32_t failures() const { return failures_; }

 private:
  Duration base_, max_;
  uint32_t failures_ = 0;
};

// A token bucket: `burst` queries at once, then `per_second` on average. A watch whose
// result changes all the time (churn) re-queries at most this often; quiet watches never
// notice it.
class RateLimiter {
 public:
  RateLimiter(double per_second, double burst) : rate_(per_second), burst_(burst), tokens_(burst) {}
  // When the next query may go: `now` if a token is left (and it is taken), else later.
  // Call again at the returned time.
  TimePoint acquire(TimePoint now);

 private:
  void refill(TimePoint now);
  double rate_, burst_, tokens_;
  TimePoint last_{};
  bool started_ = false;
};

}  // namespace sm::consul
