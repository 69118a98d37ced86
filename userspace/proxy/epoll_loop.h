// One worker's epoll event loop: the Io the session runs on where io_uring is blocked (the
// default seccomp profiles of Docker and containerd) or chosen with --event-loop epoll. It
// keeps UringLoop's contract: receive buffers lent from a fixed pool of the same size and
// given back by release() or once sent, one ordered send queue per connection with the same
// accounting, connect outcomes and send completions reported in a later batch, never from
// inside the call that caused them, and one timer per slot.
//
// Sockets are non-blocking and registered edge-triggered once; readiness is remembered per
// connection, so pausing and resuming reading costs no system call.
#pragma once

#include <atomic>
#include <deque>
#include <string>
#include <vector>

#include "proxy/io.h"
#include "proxy/loop_config.h"
#include "proxy/timer_heap.h"
#include "sockmesh/net.h"
#include "sockmesh/result.h"
#include "sockmesh/unique_fd.h"

namespace sm::proxy {

class EpollLoop final : public Io {
 public:
  explicit EpollLoop(const LoopConfig& config) : config_(config), now_(now_ns()) {}
  ~EpollLoop() override;
  EpollLoop(const EpollLoop&) = delete;
  EpollLoop& operator=(const EpollLoop&) = delete;
  Status init(IoEvents* events);
  // Handles events until `stop` is set (checked at least every 200 ms).
  void run(const std::atomic<bool>& stop);
  // One round: sends what was queued, waits up to `max_wait` for readiness (less when a
  // timer is due, none when work is left over), then reports events, expired timers and
  // the batch end.
  void run_once(Nanos max_wait);
  // Takes a connected socket as if accepted (tests).
  Slot adopt(int fd, Listener l, const Accepted& a);
  // Receive buffers lent out and not yet given back (tests: nothing may leak).
  uint32_t buffers_lent() const { return buf_count_ - static_cast<uint32_t>(free_bufs_.size()); }

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
  struct Transport {
    uint32_t gen = 0;
    int fd = -1;
    bool open = false;
    bool connecting = false;
    bool reading = false;   // the session wants data
    bool readable = false;  // no EAGAIN since the last readiness edge
    bool writable = false;  // likewise for sending
    bool eof = false;       // recv saw the end (FIN or an error): never read again
    bool in_ready = false;  // on ready_ (reads left over for the next round)
    bool in_dirty = false;  // on dirty_ (sends to write before waiting)
    std::vector<Chunk> sendq;
    size_t sendq_head = 0;
    uint32_t sent_in_front = 0;  // bytes of sendq[sendq_head] already sent
    uint64_t pending = 0;        // queued, unsent bytes
    uint32_t buffers = 0;        // lent buffers in sendq
  };
  // What happened to a connection outside any event handler, reported after the next wait
  // (as io_uring reports a completion): a send made progress or failed, a connect ended.
  enum class Done : uint8_t { sent, send_failed, connected, connect_failed };
  struct Completion {
    Slot slot;
    uint32_t gen;
    Done what;
    int err;
  };

  Transport& t(Slot s) { return slots_[s]; }
  const Transport& t(Slot s) const { return slots_[s]; }
  bool current(Slot s, uint32_t gen) const { return s < slots_.size() && slots_[s].gen == gen; }
  Slot alloc(int fd);
  Status watch(Slot s);
  void drop_sendq(Transport& k);

  void on_ready(uint64_t data, uint32_t mask);
  void accept_from(Listener l);
  void watch_listener(Listener l, bool on);
  void resume_listeners();
  // Acts on LoopConfig::listening: stops accepting (and takes what is queued, for close).
  void follow_listeners();
  void mark_readable(Slot s);
  void read_ready();
  void read_some(Slot s);
  void rearm_starving();
  void flush_dirty();
  void write_some(Slot s);
  void connect_done(Slot s, int err);
  void deliver(const Completion& c);
  void queue(Slot s, Chunk c);
  bool append_to_tail(Transport& k, std::string_view bytes);
  void mark_dirty(Slot s);
  void give_back(int32_t buf);

  LoopConfig config_;
  IoEvents* events_ = nullptr;
  UniqueFd epoll_;
  // The receive buffer pool: buf_count_ buffers of config_.recv_buffer_size bytes.
  char* buf_base_ = nullptr;
  size_t buf_bytes_ = 0;
  uint32_t buf_count_ = 0;
  std::vector<uint16_t> free_bufs_;
  std::deque<Transport> slots_;
  std::vector<Slot> free_;
  std::vector<std::pair<Slot, uint32_t>> ready_;     // reads left over
  std::vector<std::pair<Slot, uint32_t>> dirty_;     // sends queued since the last write
  std::vector<std::pair<Slot, uint32_t>> starving_;  // reads stopped for lack of buffers
  std::vector<Completion> done_;
  // The lists being worked through this round (kept to reuse their memory).
  std::vector<std::pair<Slot, uint32_t>> ready_now_, dirty_now_;
  std::vector<Completion> done_now_;
  TimerHeap timers_;
  std::vector<std::string*> strings_;
  // A listener that ran out of descriptors rests until then (0: accepting).
  Nanos accept_resume_at_[2] = {0, 0};
  Nanos accept_backoff_[2] = {0, 0};
  bool accept_watched_[2] = {false, false};
  bool accept_stopped_[2] = {false, false};  // for good (LoopConfig::listening)
  Nanos now_;
};

}  // namespace sm::proxy
