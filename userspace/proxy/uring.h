// io_uring plumbing for one worker: the ring (RAII), the provided-buffer ring that
// multishot recv draws from, and user_data = {op, slot, generation} so a completion that
// arrives after its connection slot was closed and reused is recognized and dropped.
#pragma once

#include <liburing.h>

#include <cstdint>

#include "sockmesh/result.h"

namespace sm::proxy {

enum class Op : uint8_t {
  accept = 1,  // slot = listener index
  recv,        // multishot, provided buffers
  send,
  connect,
  cancel,  // completion of a cancel request: nothing to do
};

struct UserData {
  Op op;
  uint32_t slot;  // 24 bits
  uint32_t gen;

  uint64_t pack() const {
    return (uint64_t{static_cast<uint8_t>(op)} << 56) | (uint64_t{slot & 0xffffff} << 32) | gen;
  }
  static UserData unpack(uint64_t v) {
    return {static_cast<Op>(v >> 56), static_cast<uint32_t>((v >> 32) & 0xffffff),
            static_cast<uint32_t>(v)};
  }
};

class Ring {
 public:
  Ring() = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring();

  // Single issuer + deferred task running where the kernel has them (6.1+), else plain.
  Status init(unsigned entries);
  io_uring* get() { return &ring_; }
  // A free SQE; submits the queue first when it is full.
  io_uring_sqe* sqe();

 private:
  io_uring ring_{};
  bool ok_ = false;
};

// Buffers the kernel picks from for multishot recv (group `bgid`). liburing 2.3 has no
// io_uring_setup_buf_ring: the ring memory is mapped and registered here. A buffer taken
// by a completion is ours until give_back(); a send from it must complete first.
class BufferRing {
 public:
  BufferRing() = default;
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;
  ~BufferRing();

  Status init(Ring& ring, uint16_t bgid, uint32_t count, uint32_t size);
  uint16_t bgid() const { return bgid_; }
  uint32_t size() const { return size_; }
  uint32_t count() const { return count_; }
  char* data(uint16_t bid) const { return base_ + static_cast<size_t>(bid) * size_; }
  // Returns a buffer to the kernel (made visible at the next publish()).
  void give_back(uint16_t bid);
  void publish();
  // A completion took one buffer out of the kernel's ring.
  void taken() { --available_; }
  uint32_t available() const { return available_; }

 private:
  io_uring* ring_ = nullptr;
  io_uring_buf_ring* br_ = nullptr;
  size_t br_bytes_ = 0;
  char* base_ = nullptr;
  size_t base_bytes_ = 0;
  uint32_t count_ = 0, size_ = 0;
  uint16_t bgid_ = 0;
  int pending_ = 0;
  uint32_t available_ = 0;
};

}  // namespace sm::proxy
