// Deadlines of one worker: an indexed min-heap with one entry per connection slot, so
// re-arming or cancelling is O(log n) and the heap never holds more entries than slots
// (a lazy-deletion heap would pile up stale entries for minutes-long idle timeouts).
// The event loop waits until the earliest deadline; no timer syscalls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace sm::proxy {

using Nanos = uint64_t;  // CLOCK_MONOTONIC nanoseconds
Nanos now_ns();

class TimerHeap {
 public:
  // Arms (or moves) the timer of `slot`.
  void set(uint32_t slot, Nanos deadline) {
    if (slot >= pos_.size()) pos_.resize(slot + 1, kAbsent);
    if (pos_[slot] == kAbsent) {
      pos_[slot] = static_cast<uint32_t>(heap_.size());
      heap_.push_back({deadline, slot});
      up(pos_[slot]);
    } else {
      uint32_t i = pos_[slot];
      Nanos old = heap_[i].deadline;
      heap_[i].deadline = deadline;
      deadline < old ? up(i) : down(i);
    }
  }
  void cancel(uint32_t slot) {
    if (slot >= pos_.size() || pos_[slot] == kAbsent) return;
    remove_at(pos_[slot]);
  }
  bool armed(uint32_t slot) const { return slot < pos_.size() && pos_[slot] != kAbsent; }
  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  Nanos next_deadline() const { return heap_.empty() ? 0 : heap_[0].deadline; }
  // Removes every timer due at `now` and calls fire(slot) for it (earliest first). fire()
  // may arm timers again, also due ones: those run in this call too.
  template <typename F>
  void expire(Nanos now, F&& fire) {
    while (!heap_.empty() && heap_[0].deadline <= now) {
      uint32_t slot = heap_[0].slot;
      remove_at(0);
      fire(slot);
    }
  }

 private:
  static constexpr uint32_t kAbsent = 0xffffffff;
  struct Entry {
    Nanos deadline;
    uint32_t slot;
  };
  void swap_at(uint32_t a, uint32_t b) {
    std::swap(heap_[a], heap_[b]);
    pos_[heap_[a].slot] = a;
    pos_[heap_[b].slot] = b;
  }
  void up(uint32_t i) {
    while (i > 0) {
      uint32_t parent = (i - 1) / 2;
      if (heap_[parent].deadline <= heap_[i].deadline) return;
      swap_at(i, parent);
      i = parent;
    }
  }
  void down(uint32_t i) {
    for (;;) {
      uint32_t l = 2 * i + 1, r = l + 1, m = i;
      if (l < heap_.size() && heap_[l].deadline < heap_[m].deadline) m = l;
      if (r < heap_.size() && heap_[r].deadline < heap_[m].deadline) m = r;
      if (m == i) return;
      swap_at(i, m);
      i = m;
    }
  }
  void remove_at(uint32_t i) {
    uint32_t last = static_cast<uint32_t>(heap_.size() - 1);
    pos_[heap_[i].slot] = kAbsent;
    if (i != last) {
      heap_[i] = heap_[last];
      uint32_t moved = heap_[i].slot;
      pos_[moved] = i;
      heap_.pop_back();
      up(i);
      down(pos_[moved]);
    } else {
      heap_.pop_back();
    }
  }

  std::vector<Entry> heap_;
  std::vector<uint32_t> pos_;  // slot -> index in heap_, or kAbsent
};

}  // namespace sm::proxy
