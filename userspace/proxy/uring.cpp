// Ring and BufferRing; see uring.h.
#include "uring.h"

#include <sys/mman.h>

namespace sm::proxy {

Ring::~Ring() {
  if (ok_) io_uring_queue_exit(&ring_);
}

Status Ring::init(unsigned entries) {
  io_uring_params p{};
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
  p.flags |= IORING_SETUP_CQSIZE;
  p.cq_entries = entries * 4;  // multishot ops post many completions per submission
  int rc = io_uring_queue_init_params(entries, &ring_, &p);
  if (rc == -EINVAL) {  // older kernel: no single issuer / deferred task running
    p = {};
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = entries * 4;
    rc = io_uring_queue_init_params(entries, &ring_, &p);
  }
  if (rc < 0) return errno_error("io_uring_queue_init", rc);
  ok_ = true;
  return {};
}

io_uring_sqe* Ring::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  while (!s) {
    io_uring_submit(&ring_);
    s = io_uring_get_sqe(&ring_);
  }
  return s;
}

BufferRing::~BufferRing() {
  if (ring_ && br_) io_uring_unregister_buf_ring(ring_, bgid_);
  if (br_) ::munmap(br_, br_bytes_);
  if (base_) ::munmap(base_, base_bytes_);
}

Status BufferRing::init(Ring& ring, uint16_t bgid, uint32_t count, uint32_t size) {
  if (count == 0 || (count & (count - 1)) != 0 || count > 32768)
    return plain_error("provided buffer count must be a power of two up to 32768");
  count_ = count;
  size_ = size;
  bgid_ = bgid;
  br_bytes_ = count * sizeof(io_uring_buf);
  void* m = ::mmap(nullptr, br_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return errno_error("mmap buffer ring");
  br_ = static_cast<io_uring_buf_ring*>(m);
  // The buffers themselves: untouched pages cost no memory until a recv fills them.
  base_bytes_ = static_cast<size_t>(count) * size;
  m = ::mmap(nullptr, base_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return errno_error("mmap receive buffers");
  base_ = static_cast<char*>(m);

  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(br_);
  reg.ring_entries = count;
  reg.bgid = bgid;
  int rc = io_uring_register_buf_ring(ring.get(), &reg, 0);
  if (rc < 0) return errno_error("io_uring_register_buf_ring", rc);
  ring_ = ring.get();
  io_uring_buf_ring_init(br_);
  for (uint32_t i = 0; i < count; ++i) give_back(static_cast<uint16_t>(i));
  publish();
  return {};
}

void BufferRing::give_back(uint16_t bid) {
  io_uring_buf_ring_add(br_, data(bid), size_, bid, io_uring_buf_ring_mask(count_), pending_);
  ++pending_;
  ++available_;
}

void BufferRing::publish() {
  if (pending_ == 0) return;
  io_uring_buf_ring_advance(br_, pending_);
  pending_ = 0;
}

}  // namespace sm::proxy
