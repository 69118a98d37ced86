// Deadlines of one worker: a min-heap with lazy deletion. A connection re-arming or
// cancelling its timer just bumps its own deadline; stale heap entries are dropped when
// they surface. The event loop waits until the earliest deadline (no timer syscalls).
#pragma once

#include <cstdint>
#include <queue>
#include <vector>

namespace sm::proxy {

using Nanos = uint64_t;  // CLOCK_MONOTONIC nanoseconds
Nanos now_ns();

struct TimerEntry {
  Nanos deadline;
  uint32_t slot;
  uint32_t gen;
  uint32_t seq;  // the owner's timer sequence number when armed; a mismatch means stale
  bool operator>(const TimerEntry& o) const { return deadline > o.deadline; }
};

class TimerQueue {
 public:
  void push(const TimerEntry& e) { heap_.push(e); }
  bool empty() const { return heap_.empty(); }
  Nanos next_deadline() const { return heap_.empty() ? 0 : heap_.top().deadline; }
  // Pops every entry due at `now`, calling fire(entry); fire() checks staleness itself.
  template <typename F>
  void expire(Nanos now, F&& fire) {
    while (!heap_.empty() && heap_.top().deadline <= now) {
      TimerEntry e = heap_.top();
      heap_.pop();
      fire(e);
    }
  }
  size_t size() const { return heap_.size(); }

 private:
  std::priority_queue<TimerEntry, std::vector<TimerEntry>, std::greater<>> heap_;
};

}  // namespace sm::proxy
