// EpollLoop; see epoll_loop.h.
#include "proxy/epoll_loop.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "proxy/sockets.h"

namespace sm::proxy {
namespace {

// The same thresholds as UringLoop: segments below this size are copied and their buffer
// given back at once; small copies share the last queued string up to kTailLimit.
constexpr uint32_t kCopyBelow = 2048;
constexpr size_t kTailLimit = 64 * 1024;
constexpr Nanos kAcceptBackoffMin = 50'000'000;
constexpr Nanos kAcceptBackoffMax = 1'000'000'000;
// Fairness: a connection that keeps filling buffers yields after this many per round, and a
// listener after this many accepts (level-triggered: the rest wait for the next round).
constexpr int kReadsPerRound = 16;
constexpr int kAcceptsPerRound = 64;
constexpr int kIov = 64;
constexpr int kEventsPerWait = 256;

// epoll_event.data: a listener {1, index} or a connection {slot, generation}, so an event
// for a slot that was closed (and maybe reused) in the same batch is recognized.
constexpr uint64_t kListenerTag = uint64_t{1} << 63;
uint64_t pack(Slot s, uint32_t gen) {
  return (uint64_t{s & 0xffffff} << 32) | gen;
}

}  // namespace

EpollLoop::~EpollLoop() {
  for (Transport& k : slots_)
    if (k.fd >= 0) ::close(k.fd);
  for (std::string* s : strings_) delete s;
  if (buf_base_) ::munmap(buf_base_, buf_bytes_);
}

Status EpollLoop::init(IoEvents* events) {
  events_ = events;
  now_ = now_ns();
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) return errno_error("epoll_create1");
  // The pool has UringLoop's shape (a power of two, at most 32768: ids are 16 bits), so
  // --recv-buffers means the same on both backends.
  uint32_t n = 16;
  while (n < config_.recv_buffers) n <<= 1;
  if (n > 32768) return plain_error("receive buffer count must be a power of two up to 32768");
  buf_count_ = n;
  buf_bytes_ = static_cast<size_t>(n) * config_.recv_buffer_size;
  // Untouched pages cost no memory until a recv fills them.
  void* m = ::mmap(nullptr, buf_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return errno_error("mmap receive buffers");
  buf_base_ = static_cast<char*>(m);
  free_bufs_.reserve(n);
  for (uint32_t i = n; i > 0; --i) free_bufs_.push_back(static_cast<uint16_t>(i - 1));
  for (Listener l : {Listener::outbound, Listener::inbound}) {
    int fd = config_.listen_fd[static_cast<int>(l)];
    if (fd < 0) continue;
    // This worker's own listener (SO_REUSEPORT): accept must never block the loop.
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
      return errno_error("listener O_NONBLOCK");
    watch_listener(l, true);
    if (!accept_watched_[static_cast<int>(l)]) return errno_error("epoll_ctl listener");
  }
  return {};
}

void EpollLoop::run(const std::atomic<bool>& stop) {
  while (!stop.load(std::memory_order_relaxed)) run_once(200'000'000);
}

void EpollLoop::run_once(Nanos max_wait) {
  // What the last round queued goes out before waiting; its outcome is reported after it.
  flush_dirty();
  rearm_starving();
  now_ = now_ns();
  follow_listeners();
  resume_listeners();
  Nanos wait = max_wait;
  auto until = [&](Nanos at) {
    if (at) wait = at <= now_ ? 0 : std::min(wait, at - now_);
  };
  if (!done_.empty() || !ready_.empty()) wait = 0;
  if (!timers_.empty()) until(timers_.next_deadline());
  until(accept_resume_at_[0]);
  until(accept_resume_at_[1]);
  // Rounded up: waking before a deadline would only spin until it is due.
  const int wait_ms = static_cast<int>(std::min<Nanos>((wait + 999'999) / 1'000'000, 1'000'000));
  epoll_event evs[kEventsPerWait];
  int n = ::epoll_wait(epoll_.get(), evs, kEventsPerWait, wait_ms);
  now_ = now_ns();  // one clock read per batch of events
  for (int i = 0; i < n; ++i) on_ready(evs[i].data.u64, evs[i].events);
  done_now_.clear();
  done_now_.swap(done_);  // what the callbacks add is reported next round
  for (const Completion& c : done_now_) deliver(c);
  read_ready();
  timers_.expire(now_, [&](uint32_t s) {
    if (t(s).open) events_->on_timer(s);
  });
  events_->on_batch_end();
}

// ---- slots ----------------------------------------------------------------------------------

Slot EpollLoop::alloc(int fd) {
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
  k.open = true;
  k.connecting = false;
  k.reading = true;
  k.readable = k.writable = true;
  k.eof = k.in_ready = k.in_dirty = false;
  k.sendq.clear();
  k.sendq_head = 0;
  k.sent_in_front = 0;
  k.pending = 0;
  k.buffers = 0;
  return s;
}

Status EpollLoop::watch(Slot s) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = pack(s, t(s).gen);
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, t(s).fd, &ev) != 0) return errno_error("epoll_ctl");
  return {};
}

void EpollLoop::drop_sendq(Transport& k) {
  for (size_t i = k.sendq_head; i < k.sendq.size(); ++i) {
    give_back(k.sendq[i].buf);
    if (k.sendq[i].owned) return_string(k.sendq[i].owned);
  }
  k.sendq.clear();
  k.sendq_head = 0;
  k.sent_in_front = 0;
  k.pending = 0;
  k.buffers = 0;
}

void EpollLoop::close(Slot s, CloseHow how) {
  Transport& k = t(s);
  if (!k.open) return;
  k.open = false;
  k.reading = false;
  timers_.cancel(s);
  if (k.fd >= 0) {
    if (how == CloseHow::reset) {
      linger lg{1, 0};
      ::setsockopt(k.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    } else {
      ::shutdown(k.fd, SHUT_RDWR);  // as UringLoop does: the FIN goes out now
    }
    ::close(k.fd);  // also leaves the epoll set
    k.fd = -1;
  }
  drop_sendq(k);
  // Nothing of the kernel's refers to the slot any more: free it now. Events, reads and
  // completions still listed for it carry the old generation and are dropped.
  ++k.gen;
  free_.push_back(s);
}

Slot EpollLoop::adopt(int fd, Listener l, const Accepted& a) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  Slot s = alloc(fd);
  if (!watch(s)) {
    close(s, CloseHow::reset);
    return kNoSlot;
  }
  events_->on_accepted(s, l, a);
  mark_readable(s);
  return s;
}

// ---- readiness ------------------------------------------------------------------------------

void EpollLoop::on_ready(uint64_t data, uint32_t mask) {
  if (data & kListenerTag) return accept_from(static_cast<Listener>(data & 1));
  const Slot s = static_cast<Slot>((data >> 32) & 0xffffff);
  if (!current(s, static_cast<uint32_t>(data)) || !t(s).open) return;
  Transport& k = t(s);
  if (k.connecting) {
    if (!(mask & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(k.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0 && !(mask & EPOLLOUT)) err = ECONNRESET;
    connect_done(s, err);
    return;  // a connected socket is read after on_connected
  }
  if (mask & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) mark_readable(s);
  if (mask & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
    k.writable = true;
    write_some(s);
  }
}

// ---- accept ---------------------------------------------------------------------------------

void EpollLoop::watch_listener(Listener l, bool on) {
  const int i = static_cast<int>(l);
  if (accept_watched_[i] == on) return;
  epoll_event ev{};
  ev.events = EPOLLIN;  // level-triggered: what is left after a round fires again
  ev.data.u64 = kListenerTag | static_cast<uint64_t>(i);
  if (::epoll_ctl(epoll_.get(), on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, config_.listen_fd[i], &ev) == 0)
    accept_watched_[i] = on;
}

void EpollLoop::accept_from(Listener l) {
  const int i = static_cast<int>(l);
  // A listener being closed (follow_listeners) is emptied whole, no longer watched.
  const bool emptying = accept_stopped_[i];
  for (int n = 0; emptying || (n < kAcceptsPerRound && accept_watched_[i]); ++n) {
    int fd = ::accept4(config_.listen_fd[i], nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      if (err == ECONNABORTED || err == EINTR) continue;
      if (emptying) return;
      // EMFILE, ENFILE, ENOMEM...: retrying at once would fail again at once. Rest, longer
      // each time in a row (as UringLoop does).
      if (accept_resume_at_[i] == 0) {
        accept_backoff_[i] =
            std::clamp(accept_backoff_[i] * 2, kAcceptBackoffMin, kAcceptBackoffMax);
        accept_resume_at_[i] = now_ + accept_backoff_[i];
        events_->on_accept_paused(l, err);
      }
      watch_listener(l, false);
      return;
    }
    accept_backoff_[i] = 0;
    int one = 1;  // requests and responses are small and latency-bound: no Nagle
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Slot s = alloc(fd);
    if (!watch(s)) {  // no memory for the epoll entry: as if accept had failed
      close(s, CloseHow::reset);
      continue;
    }
    Accepted a{l == Listener::outbound ? outbound_destination(fd) : inbound_destination(fd),
               local_endpoint(fd)};
    events_->on_accepted(s, l, a);
    mark_readable(s);
  }
}

void EpollLoop::resume_listeners() {
  for (int i = 0; i < 2; ++i) {
    if (accept_resume_at_[i] == 0 || accept_resume_at_[i] > now_) continue;
    accept_resume_at_[i] = 0;
    if (!accept_stopped_[i]) watch_listener(static_cast<Listener>(i), true);
  }
}

void EpollLoop::follow_listeners() {
  if (!config_.listening) return;
  for (int i = 0; i < 2; ++i) {
    if (accept_stopped_[i] || config_.listen_fd[i] < 0) continue;
    const Listening what = config_.listening[i].load(std::memory_order_acquire);
    if (what == Listening::accept) continue;
    // Unwatched before anyone closes it: an epoll registration lives as long as the open
    // file, which a new process may hold on to.
    watch_listener(static_cast<Listener>(i), false);
    accept_stopped_[i] = true;
    accept_resume_at_[i] = 0;
    // What the kernel queued would be reset with the socket: serve it.
    if (what == Listening::close) {
      accept_from(static_cast<Listener>(i));
      // The socket stops listening now, for everyone (its descriptor is closed later, by
      // its owner): a connect from here on is refused at once.
      ::shutdown(config_.listen_fd[i], SHUT_RD);
    }
    config_.listeners_stopped[i].fetch_add(1, std::memory_order_release);
  }
}

// ---- receiving ------------------------------------------------------------------------------

void EpollLoop::mark_readable(Slot s) {
  Transport& k = t(s);
  if (!k.open) return;
  k.readable = true;
  if (k.in_ready) return;
  k.in_ready = true;
  ready_.emplace_back(s, k.gen);
}

void EpollLoop::read_ready() {
  ready_now_.clear();
  ready_now_.swap(ready_);  // what is marked meanwhile is read next round
  for (auto [s, gen] : ready_now_) {
    if (!current(s, gen)) continue;
    t(s).in_ready = false;
    read_some(s);
  }
}

void EpollLoop::read_some(Slot s) {
  Transport& k = t(s);  // a deque element: stays put while slots are added
  const uint32_t gen = k.gen;
  for (int n = 0; n < kReadsPerRound; ++n) {
    // Every event handler may have paused, closed or even reused this slot.
    if (k.gen != gen || !k.open || !k.reading || k.connecting || k.eof || !k.readable) return;
    if (free_bufs_.empty()) {
      starving_.emplace_back(s, gen);
      return;
    }
    const uint16_t id = free_bufs_.back();
    free_bufs_.pop_back();
    char* p = buf_base_ + static_cast<size_t>(id) * config_.recv_buffer_size;
    ssize_t got = ::recv(k.fd, p, config_.recv_buffer_size, 0);
    if (got > 0) {
      events_->on_data(s, RecvBuf{p, static_cast<uint32_t>(got), id});
      continue;
    }
    const int err = got < 0 ? errno : 0;
    free_bufs_.push_back(id);
    if (got < 0 && (err == EAGAIN || err == EWOULDBLOCK)) {
      k.readable = false;  // until the next edge
      return;
    }
    if (got < 0 && err == EINTR) continue;
    k.eof = true;
    if (got == 0)
      events_->on_eof(s);
    else
      events_->on_error(s, err);
    return;
  }
  // The round's share is spent and bytes may be waiting: go on in the next round.
  if (k.gen == gen) mark_readable(s);
}

void EpollLoop::pause_reading(Slot s) {
  Transport& k = t(s);
  if (k.open) k.reading = false;
}

void EpollLoop::resume_reading(Slot s) {
  Transport& k = t(s);
  if (!k.open || k.reading) return;
  k.reading = true;
  // Readiness was remembered: bytes that arrived while paused raised no new edge.
  if (k.readable && !k.eof && !k.connecting) mark_readable(s);
}

void EpollLoop::rearm_starving() {
  if (starving_.empty() || free_bufs_.empty()) return;
  std::vector<std::pair<Slot, uint32_t>> retry;
  retry.swap(starving_);
  for (auto [s, gen] : retry)
    if (current(s, gen)) mark_readable(s);
}

void EpollLoop::release(const RecvBuf& b) {
  free_bufs_.push_back(b.id);
}

void EpollLoop::give_back(int32_t buf) {
  if (buf >= 0) free_bufs_.push_back(static_cast<uint16_t>(buf));
}

// ---- sending --------------------------------------------------------------------------------

std::string* EpollLoop::take_string() {
  if (strings_.empty()) return new std::string();
  std::string* s = strings_.back();
  strings_.pop_back();
  s->clear();
  return s;
}

void EpollLoop::return_string(std::string* s) {
  if (s->capacity() > 256 * 1024) {  // do not hoard the odd huge head
    delete s;
    return;
  }
  strings_.push_back(s);
}

bool EpollLoop::append_to_tail(Transport& k, std::string_view bytes) {
  // Nothing is in the kernel's hands between writes: any queued string can grow.
  if (k.sendq.size() == k.sendq_head) return false;
  Chunk& c = k.sendq.back();
  if (!c.owned || c.owned->size() + bytes.size() > kTailLimit) return false;
  c.owned->append(bytes);
  c.len += static_cast<uint32_t>(bytes.size());
  k.pending += bytes.size();
  return true;
}

void EpollLoop::mark_dirty(Slot s) {
  Transport& k = t(s);
  if (k.in_dirty) return;
  k.in_dirty = true;
  dirty_.emplace_back(s, k.gen);
}

void EpollLoop::queue(Slot s, Chunk c) {
  Transport& k = t(s);
  k.sendq.push_back(c);
  k.pending += c.len;
  if (c.buf >= 0) ++k.buffers;
  mark_dirty(s);
}

void EpollLoop::send(Slot s, const RecvBuf& b) {
  Transport& k = t(s);
  if (!k.open || b.len == 0) {
    free_bufs_.push_back(b.id);
    return;
  }
  if (b.len < kCopyBelow) {
    std::string_view bytes(b.data, b.len);
    if (append_to_tail(k, bytes)) {
      mark_dirty(s);
    } else {
      std::string* copy = take_string();
      copy->assign(bytes);
      queue(s, Chunk{nullptr, b.len, -1, copy});
    }
    free_bufs_.push_back(b.id);
    return;
  }
  queue(s, Chunk{b.data, b.len, b.id, nullptr});
}

void EpollLoop::send(Slot s, std::string_view bytes) {
  Transport& k = t(s);
  if (!k.open || bytes.empty()) return;
  if (append_to_tail(k, bytes)) {
    mark_dirty(s);
    return;
  }
  std::string* copy = take_string();
  copy->assign(bytes);
  queue(s, Chunk{nullptr, static_cast<uint32_t>(copy->size()), -1, copy});
}

void EpollLoop::send(Slot s, std::string* owned) {
  Transport& k = t(s);
  if (!k.open || owned->empty()) {
    return_string(owned);
    return;
  }
  queue(s, Chunk{nullptr, static_cast<uint32_t>(owned->size()), -1, owned});
}

SendQueue EpollLoop::queued(Slot s) const {
  const Transport& k = t(s);
  return {k.pending, k.buffers};
}

void EpollLoop::shutdown_write(Slot s) {
  Transport& k = t(s);
  if (k.open && k.fd >= 0) ::shutdown(k.fd, SHUT_WR);
}

void EpollLoop::flush_dirty() {
  dirty_now_.clear();
  dirty_now_.swap(dirty_);
  for (auto [s, gen] : dirty_now_) {
    if (!current(s, gen)) continue;
    t(s).in_dirty = false;
    write_some(s);
  }
}

void EpollLoop::write_some(Slot s) {
  Transport& k = t(s);
  if (!k.open || k.connecting || !k.writable || k.sendq_head == k.sendq.size()) return;
  bool progressed = false;
  while (k.sendq_head < k.sendq.size()) {
    iovec iov[kIov];
    int n = 0;
    for (size_t i = k.sendq_head; i < k.sendq.size() && n < kIov; ++i, ++n) {
      const Chunk& c = k.sendq[i];
      const uint32_t skip = i == k.sendq_head ? k.sent_in_front : 0;
      const char* base = c.owned ? c.owned->data() : c.data;
      iov[n].iov_base = const_cast<char*>(base + skip);
      iov[n].iov_len = c.len - skip;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n);
    ssize_t sent = ::sendmsg(k.fd, &msg, MSG_NOSIGNAL);
    if (sent < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        k.writable = false;  // until the next edge
        break;
      }
      done_.push_back({s, k.gen, Done::send_failed, err});  // the peer is gone
      return;
    }
    progressed = true;
    uint64_t left = static_cast<uint64_t>(sent);
    k.pending -= left;
    while (left > 0 && k.sendq_head < k.sendq.size()) {
      Chunk& c = k.sendq[k.sendq_head];
      const uint32_t rest = c.len - k.sent_in_front;
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
  }
  if (k.sendq_head == k.sendq.size()) {
    k.sendq.clear();
    k.sendq_head = 0;
  }
  if (progressed) done_.push_back({s, k.gen, Done::sent, 0});
}

void EpollLoop::deliver(const Completion& c) {
  if (!current(c.slot, c.gen) || !t(c.slot).open) return;
  switch (c.what) {
    case Done::sent:
      return events_->on_sent(c.slot);
    case Done::send_failed:
      return events_->on_error(c.slot, c.err);
    case Done::connected:
      mark_readable(c.slot);  // read in this round's read phase, after on_connected
      return events_->on_connected(c.slot);
    case Done::connect_failed:
      return events_->on_connect_failed(c.slot, c.err);
  }
}

// ---- connecting -----------------------------------------------------------------------------

Slot EpollLoop::connect(const Endpoint& target, const std::optional<IpAddr>& source, int* err) {
  auto sock = open_upstream(target, source);  // non-blocking
  if (!sock) {
    *err = sock.error().code;
    return kNoSlot;
  }
  Slot s = alloc(sock->release());
  if (Status w = watch(s); !w) {
    *err = w.error().code;
    close(s, CloseHow::reset);
    return kNoSlot;
  }
  Transport& k = t(s);
  k.connecting = true;
  const SockAddr addr = make_sockaddr(target.addr, target.port);
  if (::connect(k.fd, addr.get(), addr.len) == 0)
    connect_done(s, 0);
  else if (errno != EINPROGRESS)
    connect_done(s, errno);  // reported after the next wait, as a completion would be
  return s;
}

void EpollLoop::connect_done(Slot s, int err) {
  Transport& k = t(s);
  k.connecting = false;
  if (err != 0) {
    k.eof = true;  // never read
    done_.push_back({s, k.gen, Done::connect_failed, err});
    return;
  }
  // As UringLoop: queued bytes go out now; reading starts when on_connected is reported.
  done_.push_back({s, k.gen, Done::connected, 0});
  k.writable = true;
  write_some(s);
}

// ---- timers ---------------------------------------------------------------------------------

void EpollLoop::set_timer(Slot s, Nanos at) {
  timers_.set(s, at);
}

void EpollLoop::cancel_timer(Slot s) {
  timers_.cancel(s);
}

}  // namespace sm::proxy
