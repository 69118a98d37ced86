// One worker's io_uring event loop, the Io the session runs on: multishot accept on the
// worker's listeners, multishot recv into provided buffers, one gathered sendmsg in flight
// per connection, connects, and one timer per slot. user_data = {op, slot, generation}: a
// completion for a slot that was closed (and maybe reused) is recognized and dropped.
#pragma once

#include <atomic>
#include <deque>
#include <vector>

#include "proxy/io.h"
#include "proxy/loop_config.h"
#include "proxy/timer_heap.h"
#include "proxy/uring.h"
#include "sockmesh/net.h"

namespace sm::proxy {

class UringLoop final : public Io {
 public:
  explicit UringLoop(const LoopConfig& config) : config_(config), now_(now_ns()) {}
  ~UringLoop() override;
  Status init(IoEvents* events);
  // Handles events until `stop` is set (checked at least every 200 ms).
  void run(const std::atomic<bool>& stop);
  // One round: waits up to `max_wait` for completions (less when a timer is due), then
  // handles them, expired timers and the batch end.
  void run_once(Nanos max_wait);
  // Takes a connected socket as if accepted (tests, and a future hand-over of sockets).
  Slot adopt(int fd, Listener l, const Accepted& a);
  // Receive buffers lent out and not yet given back (tests: nothing may leak).
  uint32_t buffers_lent() const { return bufs_.count() - bufs_.available(); }
  bool recv_armed(Slot s) const { return t(s).recv_armed; }

  // Io
  Nanos now() const override { return now_; }
  void pause_reading(Slot s) override;
  void resume_reading(Slot s) override;
  void release(const RecvBuf& b) override;
  void send(Slot s, const RecvBuf& b) override;
  void send(Slot s, std::string_view bytes) override;
  void send(Slot s, std::string* owned) override;
  std::string* take_string() override;
  void return_string(std::string* s) override;
  SendQueue queued(Slot s) const override;
  void shutdown_write(Slot s) override;
  Slot connect(const Endpoint& target, const std::optional<IpAddr>& source, int* err) override;
  void close(Slot s, CloseHow how) override;
  void set_timer(Slot s, Nanos at) override;
  void cancel_timer(Slot s) override;

 private:
  // A chunk queued for sending: a slice of a lent receive buffer (given back once sent) or a
  // pooled string (returned once sent).
  struct Chunk {
    const char* data;  // for buffers; strings are read through `owned`
    uint32_t len;
    int32_t buf;  // receive buffer id, or -1
    std::string* owned;
  };
  // The socket side of a connection.
  struct Transport {
    uint32_t gen = 0;
    int fd = -1;
    uint16_t inflight = 0;  // operations in the kernel that reference this slot
    bool open = false;      // false once closed: no events, freed when inflight is 0
    bool connecting = false;
    bool reading = false;     // the session wants data
    bool recv_armed = false;  // a multishot recv is in the kernel
    bool cancelling = false;  // ... and a cancel for it was submitted
    bool eof = false;         // recv saw the end (FIN or an error): never armed again
    bool send_inflight = false;
    bool flush_wanted = false;  // in to_flush_: sent before the next wait
    std::vector<Chunk> sendq;
    size_t sendq_head = 0;
    size_t inflight_end = 0;     // sendq[sendq_head, inflight_end) are in the sendmsg
    uint32_t sent_in_front = 0;  // bytes of sendq[sendq_head] already sent
    uint64_t pending = 0;        // queued, unsent bytes
    uint32_t buffers = 0;        // lent buffers in sendq
    SockAddr connect_addr{};     // stable storage for the connect operation
    static constexpr int kIov = 8;
    iovec iov[kIov];
    msghdr msg{};
  };

  Transport& t(Slot s) { return slots_[s]; }
  const Transport& t(Slot s) const { return slots_[s]; }
  uint64_t ud(Op op, Slot s) const { return UserData{op, s, slots_[s].gen}.pack(); }
  Slot alloc(int fd);
  void release_if_done(Slot s);
  void drop_sendq(Transport& k);
  void cancel(Op op, Slot s);

  void handle(io_uring_cqe* cqe);
  void arm_accept(Listener l);
  void on_accept(Listener l, int res, uint32_t flags);
  void resume_listeners();
  // Acts on LoopConfig::listening: stops accepting (and takes what is queued, for close).
  void follow_listeners();
  void accepted(Listener l, int fd);
  void arm_recv(Slot s);
  void on_recv(Slot s, int res, uint32_t flags);
  void rearm_starving();
  void flush(Slot s);
  // Sends go out once per round, before the wait: what a round queues for one connection
  // (a response's head and body, say) leaves as one send, one TCP segment.
  void want_flush(Slot s);
  void flush_round();
  void on_send(Slot s, int res);
  void on_connect(Slot s, int res);
  void queue(Slot s, Chunk c);
  // Appends to the last queued string when it is not being sent (small bytes share one).
  bool append_to_tail(Transport& k, std::string_view bytes);
  void give_back(int32_t buf);

  LoopConfig config_;
  IoEvents* events_ = nullptr;
  Ring ring_;
  BufferRing bufs_;
  std::deque<Transport> slots_;  // stable addresses: sendmsg headers live in them
  std::vector<Slot> free_;
  std::vector<Slot> to_flush_;
  // recv stopped for lack of buffers: re-armed (same generation only) once some are back.
  std::vector<std::pair<Slot, uint32_t>> starving_;
  TimerHeap timers_;
  std::vector<std::string*> strings_;
  // A listener that ran out of descriptors rests until then (0: accepting).
  Nanos accept_resume_at_[2] = {0, 0};
  Nanos accept_backoff_[2] = {0, 0};
  bool accept_armed_[2] = {false, false};
  bool accept_stopped_[2] = {false, false};  // for good (LoopConfig::listening)
  bool ack_pending_[2] = {false, false};     // ... once the cancelled accept's end is in
  Nanos now_;
};

}  // namespace sm::proxy
