// Publishing immutable snapshots (the RouteTable) to worker threads. The control side swaps
// in a new shared_ptr<const T>; each worker's reader notices through a generation counter, so
// the request path costs one relaxed atomic load: no mutex, no refcount traffic.
#pragma once

#include <atomic>
#include <cassert>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace sm::route {

template <typename T>
class SnapshotReader;

// One per proxy; publish() from the control thread (config load, Consul watch), any time.
template <typename T>
class SnapshotPublisher {
 public:
  void publish(std::shared_ptr<const T> next) {
    std::lock_guard lock(mu_);
    current_ = std::move(next);
    // Bumped under the mutex: a reader that sees the new number and takes the mutex is
    // guaranteed to get this snapshot (or a newer one).
    generation_.fetch_add(1, std::memory_order_relaxed);
  }
  // For the admin side (/config_dump); not for the request path.
  std::shared_ptr<const T> current() const {
    std::lock_guard lock(mu_);
    return current_;
  }
  uint64_t generation() const { return generation_.load(std::memory_order_relaxed); }

 private:
  friend class SnapshotReader<T>;
  mutable std::mutex mu_;
  std::shared_ptr<const T> current_;
  std::atomic<uint64_t> generation_{0};
};

// One per worker thread, used only by that thread. Holds its own shared_ptr to the snapshot
// and re-reads the publisher's only when the generation moved; the mutex is taken then and
// only then. A worker that is idle keeps the old snapshot alive until its next request, and
// frees it on its own thread when it moves on.
//
// Requests outlive the call that routed them (I/O is asynchronous), and a Route, Cluster or
// EndpointState reference must stay valid until the request ends. A Lease pins the snapshot
// for that time: the reader keeps a swapped-out snapshot until its last lease ends. Leases
// are counted in plain integers, because only the owning worker ever touches them.
template <typename T>
class SnapshotReader {
  struct Slot {
    std::shared_ptr<const T> snapshot;
    uint32_t leases = 0;
  };

 public:
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& o) noexcept
        : reader_(std::exchange(o.reader_, nullptr)), slot_(std::exchange(o.slot_, nullptr)) {}
    Lease& operator=(Lease&& o) noexcept {
      if (this != &o) {
        reset();
        reader_ = std::exchange(o.reader_, nullptr);
        slot_ = std::exchange(o.slot_, nullptr);
      }
      return *this;
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { reset(); }

    const T* get() const { return slot_ ? slot_->snapshot.get() : nullptr; }
    const T& operator*() const { return *get(); }
    const T* operator->() const { return get(); }
    explicit operator bool() const { return get() != nullptr; }
    void reset() {
      if (slot_) reader_->unpin(slot_);
      reader_ = nullptr;
      slot_ = nullptr;
    }

   private:
    friend class SnapshotReader;
    Lease(SnapshotReader* reader, Slot* slot) : reader_(reader), slot_(slot) { ++slot_->leases; }
    SnapshotReader* reader_ = nullptr;
    Slot* slot_ = nullptr;
  };

  explicit SnapshotReader(const SnapshotPublisher<T>& publisher)
      : publisher_(&publisher), current_(std::make_unique<Slot>()) {}
  SnapshotReader(const SnapshotReader&) = delete;
  SnapshotReader& operator=(const SnapshotReader&) = delete;
  ~SnapshotReader() {
    assert(retired_.empty() && current_->leases == 0 && "lease outlived reader");
  }

  // The newest snapshot; nullptr before the first publish. Valid until the next call to
  // get() or lease() on this reader; take a lease to keep it longer.
  const T* get() {
    if (publisher_->generation_.load(std::memory_order_relaxed) != seen_) [[unlikely]]
      refresh();
    return current_->snapshot.get();
  }

  // get(), pinned until the lease ends.
  Lease lease() {
    get();
    return Lease(this, current_.get());
  }

  // Swapped-out snapshots still pinned by leases (for tests and /stats).
  size_t retired() const { return retired_.size(); }

 private:
  void refresh() {
    auto next = std::make_unique<Slot>();
    {
      std::lock_guard lock(publisher_->mu_);
      next->snapshot = publisher_->current_;
      seen_ = publisher_->generation_.load(std::memory_order_relaxed);
    }
    if (current_->leases > 0) retired_.push_back(std::move(current_));
    current_ = std::move(next);
  }

  void unpin(Slot* slot) {
    if (--slot->leases > 0 || slot == current_.get()) return;
    std::erase_if(retired_, [&](const std::unique_ptr<Slot>& s) { return s.get() == slot; });
  }

  const SnapshotPublisher<T>* publisher_;
  uint64_t seen_ = 0;
  std::unique_ptr<Slot> current_;
  std::vector<std::unique_ptr<Slot>> retired_;
};

}  // namespace sm::route
