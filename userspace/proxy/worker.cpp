// The worker's event loop and connection plumbing: completions, multishot accept and
// recv, gathered sends with backpressure, timers, the upstream connection pool and slot
// lifetime. What bytes mean is decided in session.cpp.
#include "proxy/worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "proxy/sockets.h"
#include "sockmesh/log.h"

namespace sm::proxy {

Nanos now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Nanos>(ts.tv_sec) * 1'000'000'000ull + static_cast<Nanos>(ts.tv_nsec);
}

void Exchange::reset() {
  lease.reset();
  route = nullptr;
  cluster = nullptr;
  endpoint = 0;
  target = {};
  holds_request = holds_pending = holds_retry = false;
  retries = 0;
  replay.clear();
  replayable = false;
  request_done = response_started = response_done = false;
  client_keep_alive = true;
  close_after = false;
  upgrade = false;
  client_minor = 1;
  method = http::Method::get;
  status = 0;
  start_ns = upstream_start_ns = upstream_head_ns = 0;
  bytes_in = bytes_out = 0;
  method_text.clear();
  path.clear();
  authority.clear();
  request_id.clear();
  user_agent.clear();
  flags = "-";
}

Worker::Worker(Shared& shared, uint32_t index, int outbound_fd, int inbound_fd)
    : shared_(shared),
      index_(index),
      listen_fd_{outbound_fd, inbound_fd},
      routes_(shared.routes),
      lb_(index + 1),
      rng_(now_ns() ^ (uint64_t{index} << 48)) {}

Worker::~Worker() {
  for (Conn& k : conns_) {
    if (k.fd >= 0) ::close(k.fd);
    k.ex.reset();
  }
  for (std::string* s : strings_) delete s;
}

Status Worker::init() {
  if (Status s = ring_.init(4096); !s) return s;
  uint32_t n = 16;
  while (n < shared_.opts.recv_buffers) n <<= 1;
  return bufs_.init(ring_, 0, n, shared_.opts.recv_buffer_size);
}

void Worker::run() {
  arm_accept(Listener::outbound);
  arm_accept(Listener::inbound);
  shared_.workers_running.fetch_add(1);
  io_uring* ring = ring_.get();
  while (!shared_.stop.load(std::memory_order_relaxed)) {
    // Buffers given back during the last batch become visible to the kernel; recvs that
    // ran dry are re-armed.
    bufs_.publish();
    if (!starving_.empty() && bufs_.available() > 0) {
      std::vector<uint32_t> retry;
      retry.swap(starving_);
      for (uint32_t slot : retry) {
        Conn& k = c(slot);
        if (k.phase != Phase::closing && k.phase != Phase::free && !k.recv_armed && !k.eof &&
            !k.read_paused)
          arm_recv(slot);
      }
    }
    // Wait for completions, at most until the next deadline (and 200 ms, to see `stop`).
    Nanos now = now_ = now_ns();
    Nanos wait = 200'000'000;
    if (!timers_.empty()) {
      Nanos next = timers_.next_deadline();
      wait = next <= now ? 0 : std::min<Nanos>(wait, next - now);
    }
    __kernel_timespec ts{static_cast<long long>(wait / 1'000'000'000),
                         static_cast<long long>(wait % 1'000'000'000)};
    io_uring_cqe* cqe = nullptr;
    int rc = io_uring_submit_and_wait_timeout(ring, &cqe, wait ? 1 : 0, &ts, nullptr);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
      SM_WARN("worker %u: io_uring wait: %s", index_, std::strerror(-rc));
    now_ = now_ns();  // one clock read per batch of completions
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(ring, head, cqe) {
      handle(cqe);
      ++seen;
    }
    io_uring_cq_advance(ring, seen);
    while (!ready_.empty()) {  // pipelined requests, parsed outside any handler
      std::vector<std::pair<uint32_t, uint32_t>> ready;
      ready.swap(ready_);
      for (auto [slot, gen] : ready)
        if (c(slot).gen == gen && c(slot).phase == Phase::request_head) parse_request(slot);
    }
    now_ = now_ns();
    timers_.expire(now_, [&](uint32_t slot) {
      if (c(slot).timer_kind != TimerKind::none) on_timer(slot);
      release_if_done(slot);
    });
    if (!log_buf_.empty()) {
      shared_.access_log.write_batch(log_buf_);
      log_buf_.clear();
    }
  }
  shared_.access_log.write_batch(log_buf_);
  log_buf_.clear();
  shared_.workers_running.fetch_sub(1);
}

void Worker::handle(io_uring_cqe* cqe) {
  UserData u = UserData::unpack(cqe->user_data);
  if (u.op == Op::accept) return on_accept(static_cast<Listener>(u.slot), cqe->res, cqe->flags);
  if (u.op == Op::cancel) return;
  if (u.slot >= conns_.size() || conns_[u.slot].gen != u.gen) {
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

// ---- slots -------------------------------------------------------------------------------

uint32_t Worker::alloc_conn(int fd, bool upstream, Listener listener, Phase phase) {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(conns_.size());
    conns_.emplace_back();
  }
  Conn& k = c(slot);
  k.fd = fd;
  k.upstream = upstream;
  k.listener = listener;
  k.phase = phase;
  k.peer = kNone;
  k.inflight = 0;
  k.recv_armed = k.read_paused = k.eof = k.shut_wr = k.close_when_sent = k.reused = false;
  k.no_reuse = k.from_inbound = false;
  k.body_kind = http::BodyKind::none;
  k.sendq.clear();
  k.sendq_head = 0;
  k.sent_in_front = 0;
  k.pending = 0;
  k.send_inflight = false;
  k.timer_kind = TimerKind::none;
  k.requests = 0;
  k.dst = {};
  return slot;
}

void Worker::drop_sendq(Conn& k) {
  for (size_t i = k.sendq_head; i < k.sendq.size(); ++i) {
    give_back(k.sendq[i].bid);
    if (k.sendq[i].owned) return_string(k.sendq[i].owned);
  }
  k.sendq.clear();
  k.sendq_head = 0;
  k.pending = 0;
}

void Worker::release_if_done(uint32_t slot) {
  Conn& k = c(slot);
  if (k.phase != Phase::closing || k.inflight > 0) return;
  drop_sendq(k);
  if (k.head) {
    return_string(k.head);
    k.head = nullptr;
  }
  release_parsers(k);
  if (k.ex) {
    release_exchange(k);  // no-op unless a path forgot: counts must never leak
    k.ex->reset();
    exchanges_.push_back(std::move(k.ex));
  }
  k.phase = Phase::free;
  ++k.gen;  // completions still addressed to the old generation are dropped
  free_slots_.push_back(slot);
}

void Worker::close_conn(uint32_t slot, bool reset) {
  Conn& k = c(slot);
  if (k.phase == Phase::closing || k.phase == Phase::free) return;
  if (k.upstream && k.phase == Phase::idle) pool_forget(slot);
  if (!k.upstream) shared_.listener_stats[static_cast<int>(k.listener)].downstream_cx_active--;
  clear_timer(slot);
  bool connecting = k.phase == Phase::connecting;
  k.phase = Phase::closing;
  if (connecting) {  // a pending connect holds the socket until it gives up: cancel it
    io_uring_sqe* sqe = ring_.sqe();
    io_uring_prep_cancel64(sqe, ud(Op::connect, slot), 0);
    io_uring_sqe_set_data64(sqe, UserData{Op::cancel, slot, k.gen}.pack());
  }
  if (k.fd >= 0) {
    if (reset) {
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
  if (k.recv_armed) {
    io_uring_sqe* sqe = ring_.sqe();
    io_uring_prep_cancel64(sqe, ud(Op::recv, slot), 0);
    io_uring_sqe_set_data64(sqe, UserData{Op::cancel, slot, k.gen}.pack());
  }
  if (!k.send_inflight) drop_sendq(k);  // else on_send() is still to see it
  release_if_done(slot);
}

// ---- accept and recv ----------------------------------------------------------------------

void Worker::arm_accept(Listener l) {
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_multishot_accept(sqe, listen_fd_[static_cast<int>(l)], nullptr, nullptr,
                                 SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, UserData{Op::accept, static_cast<uint32_t>(l), 0}.pack());
}

void Worker::on_accept(Listener l, int res, uint32_t flags) {
  if (res >= 0) {
    on_accepted(l, res);
  } else if (res != -ECANCELED && res != -EAGAIN) {
    SM_WARN("worker %u: accept: %s", index_, std::strerror(-res));
  }
  if (!(flags & IORING_CQE_F_MORE) && !shared_.stop.load()) arm_accept(l);
}

void Worker::arm_recv(uint32_t slot) {
  Conn& k = c(slot);
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_recv_multishot(sqe, k.fd, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = bufs_.bgid();
  io_uring_sqe_set_data64(sqe, ud(Op::recv, slot));
  k.recv_armed = true;
  ++k.inflight;
}

void Worker::pause_reading(uint32_t slot) {
  Conn& k = c(slot);
  if (k.read_paused) return;
  k.read_paused = true;
  if (k.recv_armed) {
    io_uring_sqe* sqe = ring_.sqe();
    io_uring_prep_cancel64(sqe, ud(Op::recv, slot), 0);
    io_uring_sqe_set_data64(sqe, UserData{Op::cancel, slot, k.gen}.pack());
  }
}

void Worker::resume_reading(uint32_t slot) {
  Conn& k = c(slot);
  if (!k.read_paused) return;
  k.read_paused = false;
  if (!k.recv_armed && !k.eof && k.phase != Phase::closing && k.phase != Phase::free &&
      k.phase != Phase::connecting)
    arm_recv(slot);
}

void Worker::give_back(int32_t bid) {
  if (bid >= 0) bufs_.give_back(static_cast<uint16_t>(bid));
}

void Worker::on_recv(uint32_t slot, int res, uint32_t flags) {
  Conn& k = c(slot);
  if (!(flags & IORING_CQE_F_MORE)) {
    k.recv_armed = false;
    --k.inflight;
  }
  if (res > 0) {
    bufs_.taken();
    uint16_t bid = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    const char* data = bufs_.data(bid);
    uint32_t len = static_cast<uint32_t>(res);
    switch (k.phase) {
      case Phase::sniffing:
        on_sniff_data(slot, bid, data, len);
        break;
      case Phase::request_head:
      case Phase::exchange:
        downstream_data(slot, bid, data, len);
        break;
      case Phase::tunnel:
        tunnel_data(slot, bid, data, len);
        break;
      case Phase::busy:
        upstream_data(slot, bid, data, len);
        break;
      case Phase::idle:  // an idle upstream must not speak: drop the connection
        give_back(bid);
        close_conn(slot);
        break;
      default:
        give_back(bid);
        break;
    }
  } else if (res == 0 || (res < 0 && res != -ENOBUFS && res != -ECANCELED)) {
    bool error = res < 0;
    if (k.phase == Phase::closing || k.phase == Phase::free) return;
    k.eof = true;
    switch (k.phase) {
      case Phase::sniffing:
      case Phase::request_head:
      case Phase::exchange:
        error ? downstream_reset(slot) : downstream_eof(slot);
        break;
      case Phase::tunnel:
        if (error) {
          if (k.peer != kNone) close_conn(k.peer, true);
          close_conn(slot, true);
        } else {
          tunnel_eof(slot);
        }
        break;
      case Phase::busy:
        upstream_eof(slot, error ? -res : 0);
        break;
      default:
        close_conn(slot);
        break;
    }
    return;
  } else if (res == -ENOBUFS) {
    starving_.push_back(slot);
    return;
  }
  // A multishot recv can also end without an error (e.g. the CQ overflowed): re-arm.
  Conn& k2 = c(slot);
  if (!k2.recv_armed && !k2.read_paused && !k2.eof && res != -ECANCELED &&
      (k2.phase == Phase::sniffing || k2.phase == Phase::request_head ||
       k2.phase == Phase::exchange || k2.phase == Phase::tunnel || k2.phase == Phase::busy ||
       k2.phase == Phase::idle))
    arm_recv(slot);
}

// ---- sending ------------------------------------------------------------------------------

std::string* Worker::take_string() {
  if (strings_.empty()) return new std::string();
  std::string* s = strings_.back();
  strings_.pop_back();
  s->clear();
  return s;
}

void Worker::return_string(std::string* s) {
  if (s->capacity() > 256 * 1024) {  // do not hoard the odd huge head
    delete s;
    return;
  }
  strings_.push_back(s);
}

void Worker::queue_buffer(uint32_t slot, uint16_t bid, const char* data, uint32_t len) {
  Conn& k = c(slot);
  if (len == 0 || k.phase == Phase::closing) {
    give_back(bid);
    return;
  }
  k.sendq.push_back({data, len, bid, nullptr});
  k.pending += len;
  flush(slot);
}

void Worker::queue_string(uint32_t slot, std::string* s) {
  Conn& k = c(slot);
  if (s->empty() || k.phase == Phase::closing) {
    return_string(s);
    return;
  }
  k.sendq.push_back({s->data(), static_cast<uint32_t>(s->size()), -1, s});
  k.pending += s->size();
  flush(slot);
}

void Worker::queue_copy(uint32_t slot, std::string_view bytes) {
  if (bytes.empty()) return;
  std::string* s = take_string();
  s->assign(bytes);
  queue_string(slot, s);
}

void Worker::flush(uint32_t slot) {
  Conn& k = c(slot);
  if (k.send_inflight || k.sendq_head == k.sendq.size() || k.phase == Phase::connecting ||
      k.phase == Phase::closing || k.fd < 0)
    return;
  int n = 0;
  for (size_t i = k.sendq_head; i < k.sendq.size() && n < Conn::kIov; ++i, ++n) {
    uint32_t skip = i == k.sendq_head ? k.sent_in_front : 0;
    k.iov[n].iov_base = const_cast<char*>(k.sendq[i].data + skip);
    k.iov[n].iov_len = k.sendq[i].len - skip;
  }
  k.msg = {};
  k.msg.msg_iov = k.iov;
  k.msg.msg_iovlen = static_cast<size_t>(n);
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_sendmsg(sqe, k.fd, &k.msg, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, ud(Op::send, slot));
  k.send_inflight = true;
  ++k.inflight;
}

void Worker::on_send(uint32_t slot, int res) {
  Conn& k = c(slot);
  --k.inflight;
  k.send_inflight = false;
  if (k.phase == Phase::closing) return;  // release_if_done frees the queue
  if (res < 0) {
    // The peer is gone (EPIPE, ECONNRESET): the session decides what that means.
    k.eof = true;
    if (k.upstream)
      upstream_eof(slot, -res);
    else if (k.phase == Phase::tunnel) {
      if (k.peer != kNone) close_conn(k.peer, true);
      close_conn(slot, true);
    } else {
      downstream_reset(slot);  // the client is gone
    }
    return;
  }
  uint64_t left = static_cast<uint64_t>(res);
  k.pending -= left;
  while (left > 0 && k.sendq_head < k.sendq.size()) {
    SendItem& it = k.sendq[k.sendq_head];
    uint32_t rest = it.len - k.sent_in_front;
    if (left >= rest) {
      left -= rest;
      give_back(it.bid);
      if (it.owned) return_string(it.owned);
      ++k.sendq_head;
      k.sent_in_front = 0;
    } else {
      k.sent_in_front += static_cast<uint32_t>(left);
      left = 0;
    }
  }
  if (k.sendq_head == k.sendq.size()) {
    k.sendq.clear();
    k.sendq_head = 0;
  }
  // Backpressure: the side feeding us may read again once we drained below half.
  if (k.peer != kNone && k.pending < shared_.opts.buffer_limit / 2) resume_reading(k.peer);
  if (k.sendq_head < k.sendq.size())
    flush(slot);
  else
    after_drain(slot);
}

void Worker::after_drain(uint32_t slot) {
  Conn& k = c(slot);
  bool drained = k.sendq_head == k.sendq.size() && !k.send_inflight;
  if (!drained) return;  // called again when the queue empties
  if (k.close_when_sent) {
    close_conn(slot);
    return;
  }
  if (k.phase == Phase::tunnel && k.peer != kNone) {
    uint32_t peer = k.peer;
    Conn& p = c(peer);
    // Half-close travels: the other side finished sending and everything it sent is out.
    if (p.eof && !k.shut_wr && k.fd >= 0) {
      ::shutdown(k.fd, SHUT_WR);
      k.shut_wr = true;
    }
    bool peer_drained = p.sendq_head == p.sendq.size() && !p.send_inflight;
    if (k.eof && p.eof && peer_drained && k.shut_wr && p.shut_wr) {
      close_conn(slot);
      close_conn(peer);
    }
  }
}

// ---- upstream connections -----------------------------------------------------------------

size_t Worker::PoolKeyHash::operator()(const PoolKey& k) const {
  uint64_t a, b;
  std::memcpy(&a, k.target.addr.bytes.data(), 8);
  std::memcpy(&b, k.target.addr.bytes.data() + 8, 8);
  uint64_t h = (a * 0x9e3779b97f4a7c15ull) ^ b ^ (uint64_t{k.target.port} << 1) ^ k.from_inbound;
  return static_cast<size_t>(h * 0xff51afd7ed558ccdull);
}

uint32_t Worker::pool_take(const Endpoint& target, bool from_inbound) {
  auto it = pool_.find(PoolKey{target, from_inbound});
  if (it == pool_.end()) return kNone;
  while (!it->second.empty()) {
    uint32_t up = it->second.back();
    it->second.pop_back();
    Conn& u = c(up);
    if (u.phase != Phase::idle || u.eof) continue;
    clear_timer(up);
    u.phase = Phase::busy;
    u.reused = true;
    return up;
  }
  return kNone;
}

void Worker::pool_put(uint32_t up) {
  Conn& u = c(up);
  u.phase = Phase::idle;
  u.peer = kNone;
  set_timer(up, TimerKind::upstream_idle, shared_.opts.upstream_idle_timeout);
  pool_[PoolKey{u.dst, u.from_inbound}].push_back(up);
  resume_reading(up);
}

void Worker::pool_forget(uint32_t up) {
  auto it = pool_.find(PoolKey{c(up).dst, c(up).from_inbound});
  if (it == pool_.end()) return;
  std::erase(it->second, up);
}

uint32_t Worker::start_connect(const Endpoint& target, uint32_t downstream, int* err,
                               bool from_inbound) {
  std::optional<IpAddr> source;
  if (from_inbound) source = inbound_target(target).source;
  auto sock = open_upstream(target, source);
  if (!sock) {
    *err = sock.error().code;
    return kNone;
  }
  int fd = sock->release();
  uint32_t up = alloc_conn(fd, true, c(downstream).listener, Phase::connecting);
  Conn& u = c(up);
  u.from_inbound = from_inbound;
  u.dst = target;
  u.peer = downstream;
  u.connect_addr = make_sockaddr(target.addr, target.port);
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_connect(sqe, fd, u.connect_addr.get(), u.connect_addr.len);
  io_uring_sqe_set_data64(sqe, ud(Op::connect, up));
  ++u.inflight;
  return up;
}

void Worker::on_connect(uint32_t slot, int res) {
  Conn& k = c(slot);
  --k.inflight;
  if (k.phase != Phase::connecting) return;  // timed out meanwhile
  if (k.timer_kind == TimerKind::connect) clear_timer(slot);
  if (res < 0) {
    upstream_failed(slot, -res, false);
    return;
  }
  upstream_connected(slot);
}

// ---- timers -------------------------------------------------------------------------------

void Worker::set_timer(uint32_t slot, TimerKind kind, std::chrono::nanoseconds after) {
  c(slot).timer_kind = kind;
  timers_.set(slot, now_ + static_cast<Nanos>(after.count()));
}

void Worker::clear_timer(uint32_t slot) {
  c(slot).timer_kind = TimerKind::none;
  timers_.cancel(slot);
}

}  // namespace sm::proxy
