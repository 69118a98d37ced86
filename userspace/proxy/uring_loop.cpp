// UringLoop; see uring_loop.h.
#include "proxy/uring_loop.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "proxy/sockets.h"

namespace sm::proxy {
namespace {

// Received segments up to this size are copied into a string and their buffer given back
// at once: a peer that dribbles bytes must not pin a whole buffer per byte.
constexpr uint32_t kCopyBelow = 2048;
// Small copies share the last queued string up to this size.
constexpr size_t kTailLimit = 64 * 1024;
// A listener out of descriptors first rests this long, doubling up to the maximum.
constexpr Nanos kAcceptBackoffMin = 50'000'000;
constexpr Nanos kAcceptBackoffMax = 1'000'000'000;

}  // namespace

Nanos now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Nanos>(ts.tv_sec) * 1'000'000'000ull + static_cast<Nanos>(ts.tv_nsec);
}

UringLoop::~UringLoop() {
  for (Transport& k : slots_)
    if (k.fd >= 0) ::close(k.fd);
  for (std::string* s : strings_) delete s;
}

Status UringLoop::init(IoEvents* events) {
  events_ = events;
  now_ = now_ns();
  if (Status s = ring_.init(config_.ring_entries); !s) return s;
  uint32_t n = 16;
  while (n < config_.recv_buffers) n <<= 1;
  if (Status s = bufs_.init(ring_, 0, n, config_.recv_buffer_size); !s) return s;
  for (Listener l : {Listener::outbound, Listener::inbound})
    if (config_.listen_fd[static_cast<int>(l)] >= 0) arm_accept(l);
  return {};
}

void UringLoop::run(const std::atomic<bool>& stop) {
  while (!stop.load(std::memory_order_relaxed)) run_once(200'000'000);
}

void UringLoop::run_once(Nanos max_wait) {
  // Buffers given back during the last round become visible to the kernel; recvs that ran
  // dry are re-armed.
  bufs_.publish();
  rearm_starving();
  flush_round();
  now_ = now_ns();
  follow_listeners();
  resume_listeners();
  Nanos wait = max_wait;
  auto until = [&](Nanos at) {
    if (at) wait = at <= now_ ? 0 : std::min(wait, at - now_);
  };
  if (!timers_.empty()) until(timers_.next_deadline());
  until(accept_resume_at_[0]);
  until(accept_resume_at_[1]);
  __kernel_timespec ts{static_cast<long long>(wait / 1'000'000'000),
                       static_cast<long long>(wait % 1'000'000'000)};
  io_uring* ring = ring_.get();
  io_uring_cqe* cqe = nullptr;
  (void)io_uring_submit_and_wait_timeout(ring, &cqe, wait ? 1 : 0, &ts, nullptr);
  now_ = now_ns();  // one clock read per batch of completions
  unsigned head;
  unsigned seen = 0;
  io_uring_for_each_cqe(ring, head, cqe) {
    handle(cqe);
    ++seen;
  }
  io_uring_cq_advance(ring, seen);
  timers_.expire(now_, [&](uint32_t s) {
    if (t(s).open) events_->on_timer(s);
  });
  events_->on_batch_end();
}

// ---- slots ----------------------------------------------------------------------------------

Slot UringLoop::alloc(int fd) {
  Slot s;
  if (!free_.empty()) {
    s = free_.back();
    free_.pop_back();
  } else {
    s = static_cast<Slot>(slots_.size());
    slots_.emplace_back();
  }
  Transport& k = t(s);
  k.fd = fd;
  k.inflight = 0;
  k.open = true;
  k.connecting = false;
  k.reading = true;
  k.recv_armed = k.cancelling = k.send_inflight = k.eof = false;
  k.sendq.clear();
  k.sendq_head = k.inflight_end = 0;
  k.sent_in_front = 0;
  k.pending = 0;
  k.buffers = 0;
  return s;
}

void UringLoop::drop_sendq(Transport& k) {
  for (size_t i = k.sendq_head; i < k.sendq.size(); ++i) {
    give_back(k.sendq[i].buf);
    if (k.sendq[i].owned) return_string(k.sendq[i].owned);
  }
  k.sendq.clear();
  k.sendq_head = k.inflight_end = 0;
  k.pending = 0;
  k.buffers = 0;
}

void UringLoop::release_if_done(Slot s) {
  Transport& k = t(s);
  if (k.open || k.inflight > 0 || k.fd == -2) return;
  drop_sendq(k);
  k.fd = -2;  // freed (until alloc)
  ++k.gen;    // completions still addressed to the old generation are dropped
  free_.push_back(s);
}

void UringLoop::cancel(Op op, Slot s) {
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_cancel64(sqe, ud(op, s), 0);
  io_uring_sqe_set_data64(sqe, UserData{Op::cancel, s, t(s).gen}.pack());
}

void UringLoop::close(Slot s, CloseHow how) {
  Transport& k = t(s);
  if (!k.open) return;
  k.open = false;
  k.reading = false;
  timers_.cancel(s);
  if (k.connecting) cancel(Op::connect, s);  // a pending connect holds the socket
  if (k.fd >= 0) {
    if (how == CloseHow::reset) {
      linger lg{1, 0};
      ::setsockopt(k.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    } else {
      // Ends a multishot recv still armed (it completes with 0) and an in-flight send.
      ::shutdown(k.fd, SHUT_RDWR);
    }
    // io_uring holds its own file references: operations in flight complete on their own.
    ::close(k.fd);
    k.fd = -1;
  }
  if (k.recv_armed && !k.cancelling) {
    cancel(Op::recv, s);
    k.cancelling = true;
  }
  // A send stalled on a peer that does not read would keep the socket alive (io_uring
  // holds a reference), so neither the RST nor the FIN would ever go out.
  if (k.send_inflight) cancel(Op::send, s);
  if (!k.send_inflight) drop_sendq(k);  // else on_send() gives the queue back
  release_if_done(s);
}

Slot UringLoop::adopt(int fd, Listener l, const Accepted& a) {
  Slot s = alloc(fd);
  arm_recv(s);
  events_->on_accepted(s, l, a);
  return s;
}

// ---- completions ----------------------------------------------------------------------------

void UringLoop::handle(io_uring_cqe* cqe) {
  UserData u = UserData::unpack(cqe->user_data);
  if (u.op == Op::accept) return on_accept(static_cast<Listener>(u.slot), cqe->res, cqe->flags);
  if (u.op == Op::cancel) return;
  if (u.slot >= slots_.size() || slots_[u.slot].gen != u.gen) {
    // A late completion for a slot that was freed (and maybe reused): drop it, but a
    // buffer it carries is still ours to give back.
    if (cqe->flags & IORING_CQE_F_BUFFER) {
      bufs_.taken();
      give_back(static_cast<int32_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT));
    }
    return;
  }
  switch (u.op) {
    case Op::recv:
      on_recv(u.slot, cqe->res, cqe->flags);
      break;
    case Op::send:
      on_send(u.slot, cqe->res);
      break;
    case Op::connect:
      on_connect(u.slot, cqe->res);
      break;
    default:
      break;
  }
  release_if_done(u.slot);
}

// ---- accept ---------------------------------------------------------------------------------

void UringLoop::arm_accept(Listener l) {
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_multishot_accept(sqe, config_.listen_fd[static_cast<int>(l)], nullptr, nullptr,
                                 SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, UserData{Op::accept, static_cast<uint32_t>(l), 0}.pack());
  accept_armed_[static_cast<int>(l)] = true;
}

void UringLoop::on_accept(Listener l, int res, uint32_t flags) {
  const int i = static_cast<int>(l);
  if (!(flags & IORING_CQE_F_MORE)) accept_armed_[i] = false;
  if (accept_stopped_[i]) {  // the last connection a cancelled accept brings; or its end
    if (res >= 0) accepted(l, res);
    if (!accept_armed_[i] && ack_pending_[i]) {
      ack_pending_[i] = false;
      config_.listeners_stopped[i].fetch_add(1, std::memory_order_release);
    }
    return;
  }
  if (res >= 0) {
    accept_backoff_[i] = 0;
    accepted(l, res);
  } else if (res != -ECANCELED && res != -ECONNABORTED && res != -EAGAIN && res != -EINTR) {
    // EMFILE, ENFILE, ENOMEM...: retrying at once would fail again at once. Rest, longer
    // each time in a row.
    if (accept_resume_at_[i] == 0) {
      accept_backoff_[i] = std::clamp(accept_backoff_[i] * 2, kAcceptBackoffMin, kAcceptBackoffMax);
      accept_resume_at_[i] = now_ + accept_backoff_[i];
      events_->on_accept_paused(l, -res);
    }
    if (accept_armed_[i]) {  // still armed: stop it until the rest is over
      io_uring_sqe* sqe = ring_.sqe();
      io_uring_prep_cancel64(sqe, UserData{Op::accept, static_cast<uint32_t>(l), 0}.pack(), 0);
      io_uring_sqe_set_data64(sqe, UserData{Op::cancel, 0, 0}.pack());
    }
    return;
  }
  if (!accept_armed_[i] && accept_resume_at_[i] == 0 && !accept_stopped_[i]) arm_accept(l);
}

void UringLoop::accepted(Listener l, int fd) {
  int one = 1;  // requests and responses are small and latency-bound: no Nagle
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  Slot s = alloc(fd);
  arm_recv(s);
  Accepted a{l == Listener::outbound ? outbound_destination(fd) : inbound_destination(fd),
             local_endpoint(fd)};
  events_->on_accepted(s, l, a);
}

void UringLoop::follow_listeners() {
  if (!config_.listening) return;
  for (int i = 0; i < 2; ++i) {
    if (accept_stopped_[i] || config_.listen_fd[i] < 0) continue;
    const Listening what = config_.listening[i].load(std::memory_order_acquire);
    if (what == Listening::accept) continue;
    accept_stopped_[i] = true;
    accept_resume_at_[i] = 0;
    if (accept_armed_[i]) {
      // Its last completion may still bring a connection (served): this loop stops
      // accepting, and says so, only once that completion is in (on_accept).
      io_uring_sqe* sqe = ring_.sqe();
      io_uring_prep_cancel64(sqe, UserData{Op::accept, static_cast<uint32_t>(i), 0}.pack(), 0);
      io_uring_sqe_set_data64(sqe, UserData{Op::cancel, 0, 0}.pack());
      ack_pending_[i] = true;
    }
    if (what == Listening::close) {
      // What the kernel queued would be reset with the socket: serve it. Non-blocking: the
      // cancelled accept may take the last one first (no other process holds a socket
      // being closed: a hand-over turns `close` into `stop`).
      const int lfd = config_.listen_fd[i];
      const int lflags = ::fcntl(lfd, F_GETFL);
      if (lflags >= 0) ::fcntl(lfd, F_SETFL, lflags | O_NONBLOCK);
      for (int fd; (fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;)
        accepted(static_cast<Listener>(i), fd);
      // The socket stops listening now, for everyone (its descriptor is closed later, by
      // its owner): a connect from here on is refused at once instead of waiting in a
      // queue nobody takes from.
      ::shutdown(lfd, SHUT_RD);
    }
    if (!ack_pending_[i]) config_.listeners_stopped[i].fetch_add(1, std::memory_order_release);
  }
}

void UringLoop::resume_listeners() {
  for (int i = 0; i < 2; ++i) {
    if (accept_resume_at_[i] == 0 || accept_resume_at_[i] > now_) continue;
    accept_resume_at_[i] = 0;
    if (!accept_armed_[i] && !accept_stopped_[i]) arm_accept(static_cast<Listener>(i));
  }
}

// ---- receiving ------------------------------------------------------------------------------

void UringLoop::arm_recv(Slot s) {
  Transport& k = t(s);
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_recv_multishot(sqe, k.fd, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = bufs_.bgid();
  io_uring_sqe_set_data64(sqe, ud(Op::recv, s));
  k.recv_armed = true;
  ++k.inflight;
}

void UringLoop::pause_reading(Slot s) {
  Transport& k = t(s);
  if (!k.open || !k.reading) return;
  k.reading = false;
  if (k.recv_armed && !k.cancelling) {
    cancel(Op::recv, s);
    k.cancelling = true;
  }
}

void UringLoop::resume_reading(Slot s) {
  Transport& k = t(s);
  if (!k.open || k.reading) return;
  k.reading = true;
  // With a cancel still on its way, the recv is re-armed when its last completion arrives.
  if (!k.recv_armed && !k.connecting && !k.eof) arm_recv(s);
}

void UringLoop::rearm_starving() {
  if (starving_.empty() || bufs_.available() == 0) return;
  std::vector<std::pair<Slot, uint32_t>> retry;
  retry.swap(starving_);
  for (auto [s, gen] : retry) {
    Transport& k = t(s);
    if (k.gen == gen && k.open && k.reading && !k.recv_armed && !k.connecting && !k.eof)
      arm_recv(s);
  }
}

void UringLoop::release(const RecvBuf& b) {
  bufs_.give_back(b.id);
}

void UringLoop::give_back(int32_t buf) {
  if (buf >= 0) bufs_.give_back(static_cast<uint16_t>(buf));
}

void UringLoop::on_recv(Slot s, int res, uint32_t flags) {
  Transport& k = t(s);
  if (!(flags & IORING_CQE_F_MORE)) {
    k.recv_armed = false;
    k.cancelling = false;
    --k.inflight;
  }
  if (res > 0) {
    bufs_.taken();
    RecvBuf b{nullptr, static_cast<uint32_t>(res),
              static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT)};
    b.data = bufs_.data(b.id);
    if (!k.open) {
      bufs_.give_back(b.id);
      return;
    }
    events_->on_data(s, b);
  } else if (res == -ENOBUFS) {
    starving_.emplace_back(s, k.gen);
    return;
  } else if (res == 0 || res != -ECANCELED) {
    if (!k.open) return;
    k.eof = true;
    if (res == 0)
      events_->on_eof(s);
    else
      events_->on_error(s, -res);
    return;
  }
  // The recv ended without an error (a cancel, an overflowing CQ) while data is wanted:
  // arm it again. This also covers a resume that came before a pause's -ECANCELED.
  Transport& k2 = t(s);
  if (k2.open && k2.reading && !k2.recv_armed && !k2.connecting && !k2.eof) arm_recv(s);
}

// ---- sending --------------------------------------------------------------------------------

std::string* UringLoop::take_string() {
  if (strings_.empty()) return new std::string();
  std::string* s = strings_.back();
  strings_.pop_back();
  s->clear();
  return s;
}

void UringLoop::return_string(std::string* s) {
  if (s->capacity() > 256 * 1024) {  // do not hoard the odd huge head
    delete s;
    return;
  }
  strings_.push_back(s);
}

bool UringLoop::append_to_tail(Transport& k, std::string_view bytes) {
  if (k.sendq.size() == k.sendq_head) return false;
  size_t tail = k.sendq.size() - 1;
  Chunk& c = k.sendq[tail];
  if (!c.owned || (k.send_inflight && tail < k.inflight_end) ||
      c.owned->size() + bytes.size() > kTailLimit)
    return false;
  c.owned->append(bytes);
  c.len += static_cast<uint32_t>(bytes.size());
  k.pending += bytes.size();
  return true;
}

void UringLoop::queue(Slot s, Chunk c) {
  Transport& k = t(s);
  k.sendq.push_back(c);
  k.pending += c.len;
  if (c.buf >= 0) ++k.buffers;
  want_flush(s);
}

void UringLoop::send(Slot s, const RecvBuf& b) {
  Transport& k = t(s);
  if (!k.open || b.len == 0) {
    bufs_.give_back(b.id);
    return;
  }
  if (b.len < kCopyBelow) {
    std::string_view bytes(b.data, b.len);
    if (!append_to_tail(k, bytes)) {
      std::string* copy = take_string();
      copy->assign(bytes);
      queue(s, Chunk{nullptr, b.len, -1, copy});
    } else {
      want_flush(s);
    }
    bufs_.give_back(b.id);
    return;
  }
  queue(s, Chunk{b.data, b.len, b.id, nullptr});
}

void UringLoop::send(Slot s, std::string_view bytes) {
  Transport& k = t(s);
  if (!k.open || bytes.empty()) return;
  if (append_to_tail(k, bytes)) {
    want_flush(s);
    return;
  }
  std::string* copy = take_string();
  copy->assign(bytes);
  queue(s, Chunk{nullptr, static_cast<uint32_t>(copy->size()), -1, copy});
}

void UringLoop::send(Slot s, std::string* owned) {
  Transport& k = t(s);
  if (!k.open || owned->empty()) {
    return_string(owned);
    return;
  }
  queue(s, Chunk{nullptr, static_cast<uint32_t>(owned->size()), -1, owned});
}

SendQueue UringLoop::queued(Slot s) const {
  const Transport& k = t(s);
  return {k.pending, k.buffers};
}

void UringLoop::shutdown_write(Slot s) {
  Transport& k = t(s);
  if (k.open && k.fd >= 0) ::shutdown(k.fd, SHUT_WR);
}

void UringLoop::want_flush(Slot s) {
  Transport& k = t(s);
  if (k.flush_wanted) return;
  k.flush_wanted = true;
  to_flush_.push_back(s);
}

void UringLoop::flush_round() {
  // A slot closed (or even reused) since it was listed is harmless: flush() sends only
  // what an open slot has queued.
  for (Slot s : to_flush_) {
    t(s).flush_wanted = false;
    flush(s);
  }
  to_flush_.clear();
}

void UringLoop::flush(Slot s) {
  Transport& k = t(s);
  if (k.send_inflight || k.sendq_head == k.sendq.size() || k.connecting || !k.open) return;
  int n = 0;
  size_t i = k.sendq_head;
  for (; i < k.sendq.size() && n < Transport::kIov; ++i, ++n) {
    const Chunk& c = k.sendq[i];
    uint32_t skip = i == k.sendq_head ? k.sent_in_front : 0;
    const char* base = c.owned ? c.owned->data() : c.data;
    k.iov[n].iov_base = const_cast<char*>(base + skip);
    k.iov[n].iov_len = c.len - skip;
  }
  k.inflight_end = i;
  io_uring_sqe* sqe = ring_.sqe();
  if (n == 1) {
    // One segment (most HTTP heads and small bodies, merged by append_to_tail): a plain
    // send spares the kernel importing a msghdr and an iovec.
    io_uring_prep_send(sqe, k.fd, k.iov[0].iov_base, k.iov[0].iov_len, MSG_NOSIGNAL);
  } else {
    k.msg = {};
    k.msg.msg_iov = k.iov;
    k.msg.msg_iovlen = static_cast<size_t>(n);
    io_uring_prep_sendmsg(sqe, k.fd, &k.msg, MSG_NOSIGNAL);
  }
  io_uring_sqe_set_data64(sqe, ud(Op::send, s));
  k.send_inflight = true;
  ++k.inflight;
}

void UringLoop::on_send(Slot s, int res) {
  Transport& k = t(s);
  --k.inflight;
  k.send_inflight = false;
  if (!k.open) {
    drop_sendq(k);
    return;
  }
  if (res < 0) {
    events_->on_error(s, -res);  // the peer is gone (EPIPE, ECONNRESET)
    return;
  }
  uint64_t left = static_cast<uint64_t>(res);
  k.pending -= left;
  while (left > 0 && k.sendq_head < k.sendq.size()) {
    Chunk& c = k.sendq[k.sendq_head];
    uint32_t rest = c.len - k.sent_in_front;
    if (left < rest) {
      k.sent_in_front += static_cast<uint32_t>(left);
      break;
    }
    left -= rest;
    if (c.buf >= 0) --k.buffers;
    give_back(c.buf);
    if (c.owned) return_string(c.owned);
    ++k.sendq_head;
    k.sent_in_front = 0;
  }
  if (k.sendq_head == k.sendq.size()) {
    k.sendq.clear();
    k.sendq_head = 0;
  }
  k.inflight_end = k.sendq_head;
  want_flush(s);
  events_->on_sent(s);
}

// ---- connecting -----------------------------------------------------------------------------

Slot UringLoop::connect(const Endpoint& target, const std::optional<IpAddr>& source, int* err) {
  auto sock = open_upstream(target, source);
  if (!sock) {
    *err = sock.error().code;
    return kNoSlot;
  }
  Slot s = alloc(sock->release());
  Transport& k = t(s);
  k.connecting = true;
  k.connect_addr = make_sockaddr(target.addr, target.port);
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_connect(sqe, k.fd, k.connect_addr.get(), k.connect_addr.len);
  io_uring_sqe_set_data64(sqe, ud(Op::connect, s));
  ++k.inflight;
  return s;
}

void UringLoop::on_connect(Slot s, int res) {
  Transport& k = t(s);
  --k.inflight;
  k.connecting = false;
  if (!k.open) return;
  if (res < 0) {
    events_->on_connect_failed(s, -res);
    return;
  }
  if (k.reading) arm_recv(s);
  want_flush(s);
  events_->on_connected(s);
}

// ---- timers ---------------------------------------------------------------------------------

void UringLoop::set_timer(Slot s, Nanos at) {
  timers_.set(s, at);
}

void UringLoop::cancel_timer(Slot s) {
  timers_.cancel(s);
}

}  // namespace sm::proxy
