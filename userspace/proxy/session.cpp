// Session: streams and their states, events from the loop, sniffing, TCP tunnels, the
// upstream pool, timers and the invariants. The HTTP exchange lives in request.cpp and
// response.cpp.
#include "proxy/session.h"

#include <cstring>

#include "proxy/sniff.h"
#include "sockmesh/log.h"

namespace sm::proxy {
namespace {

// Envoy's delayed_close_timeout: how long a closing downstream may take to close its side.
constexpr std::chrono::nanoseconds kDelayedClose = std::chrono::seconds(1);
// Accept warnings: one per this long, however often the listener has to rest.
constexpr Nanos kAcceptWarnEvery = 10'000'000'000;

}  // namespace

const char* state_name(StreamState s) {
  switch (s) {
    case StreamState::free:
      return "free";
    case StreamState::sniffing:
      return "sniffing";
    case StreamState::reading_head:
      return "reading_head";
    case StreamState::exchanging:
      return "exchanging";
    case StreamState::draining:
      return "draining";
    case StreamState::lingering:
      return "lingering";
    case StreamState::connecting:
      return "connecting";
    case StreamState::busy:
      return "busy";
    case StreamState::idle:
      return "idle";
    case StreamState::tunnel:
      return "tunnel";
  }
  return "?";
}

Session::Session(Shared& shared, Io& io, uint32_t index)
    : shared_(shared),
      io_(io),
      index_(index),
      opts_(shared.opts),
      routes_(shared.routes),
      lb_(index + 1),
      rng_(io.now() ^ (uint64_t{index} << 48)),
      max_buffers_(std::max<uint32_t>(2, shared.opts.recv_buffers / 16)) {}

Session::~Session() {
  for (Stream& k : streams_) {
    return_head(k);
    release_parsers(k);
  }
}

// ---- streams --------------------------------------------------------------------------------

Stream& Session::open_stream(Slot s, bool upstream, Listener l, StreamState state) {
  if (s >= streams_.size()) streams_.resize(s + 1);
  Stream& k = streams_[s];
  k.state = state;
  k.listener = l;
  k.upstream = upstream;
  k.paused = 0;
  k.eof = k.shut_wr = k.reused = k.no_reuse = k.from_inbound = false;
  k.peer = kNoSlot;
  ++k.epoch;
  k.timer = TimerKind::none;
  k.interim = 0;
  k.dst = {};
  k.last_active = io_.now();
  k.body_kind = http::BodyKind::none;
  k.requests = 0;
  return k;
}

void Session::link(Slot a, Slot b) {
  c(a).peer = b;
  c(b).peer = a;
}

void Session::unlink(Slot s) {
  Stream& k = c(s);
  if (k.peer == kNoSlot) return;
  const Slot peer = std::exchange(k.peer, kNoSlot);
  if (c(peer).peer == s) c(peer).peer = kNoSlot;
  // Waiting for the other one to take bytes is over once it is not the other one any more.
  resume(s, kPausePeerFull);
  resume(peer, kPausePeerFull);
}

void Session::close(Slot s, CloseHow how) {
  Stream& k = c(s);
  if (k.state == StreamState::free) return;
  const Slot peer = k.peer;
  k.paused = 0;  // no resume for a stream about to close
  unlink(s);
  if (k.upstream && k.state == StreamState::idle) pool_forget(s);
  if (!k.upstream) {
    stats(k).downstream_cx_active--;
    shared_.downstream_connections.fetch_sub(1, std::memory_order_relaxed);
  }
  if (k.ex) {
    release_exchange(k);  // a no-op unless a path forgot: counts must never leak
    k.ex->reset();
    exchanges_.push_back(std::move(k.ex));
  }
  return_head(k);
  release_parsers(k);
  const bool downstream = !k.upstream;
  k.state = StreamState::free;
  k.timer = TimerKind::none;
  io_.close(s, how);
  // An upstream that was connecting or serving this client has nothing left to do.
  if (downstream && peer != kNoSlot) {
    StreamState ps = c(peer).state;
    if (ps == StreamState::connecting || ps == StreamState::busy || ps == StreamState::tunnel)
      close(peer, CloseHow::reset);
  }
}

void Session::close_both(Slot s, CloseHow how) {
  Slot peer = c(s).peer;
  // The upstream first: closing a downstream would reset the upstream it still has.
  if (peer != kNoSlot) close(c(s).upstream ? s : peer, how);
  close(s, how);
  if (peer != kNoSlot) close(peer, how);
}

void Session::set_timer(Slot s, TimerKind kind, std::chrono::nanoseconds after) {
  c(s).timer = kind;
  io_.set_timer(s, io_.now() + static_cast<Nanos>(after.count()));
}

void Session::clear_timer(Slot s) {
  if (c(s).timer == TimerKind::none) return;
  c(s).timer = TimerKind::none;
  io_.cancel_timer(s);
}

void Session::pause(Slot s, Pause why) {
  Stream& k = c(s);
  uint8_t was = k.paused;
  k.paused |= why;
  if (was) return;
  stats(k).inc(stats(k).flow_control_paused_reading_total);
  io_.pause_reading(s);
}

void Session::resume(Slot s, Pause why) {
  Stream& k = c(s);
  if (!(k.paused & why)) return;
  k.paused &= static_cast<uint8_t>(~why);
  if (k.paused) return;
  stats(k).inc(stats(k).flow_control_resumed_reading_total);
  io_.resume_reading(s);
}

bool Session::over_limit(Slot to) const {
  SendQueue q = io_.queued(to);
  return q.bytes > opts_.buffer_limit || q.buffers >= max_buffers_;
}

bool Session::under_resume_mark(Slot to) const {
  SendQueue q = io_.queued(to);
  return q.bytes <= opts_.buffer_limit / 2 && q.buffers <= max_buffers_ / 2;
}

void Session::forward(Slot from, Slot to, const RecvBuf& b) {
  // A pause takes effect late: completions already on their way still bring buffers. Past
  // its share a connection's bytes are copied, so no connection pins more receive buffers
  // than its share, however much the kernel had received for it.
  if (io_.queued(to).buffers >= max_buffers_) {
    io_.send(to, std::string_view(b.data, b.len));
    io_.release(b);
  } else {
    io_.send(to, b);
  }
  if (over_limit(to)) pause(from, kPausePeerFull);
}

void Session::forward_copy(Slot from, Slot to, std::string_view bytes) {
  if (bytes.empty()) return;
  io_.send(to, bytes);
  if (over_limit(to)) pause(from, kPausePeerFull);
}

// ---- events ---------------------------------------------------------------------------------

void Session::on_accepted(Slot s, Listener l, const Accepted& a) {
  ListenerStats& st = shared_.listener_stats[static_cast<int>(l)];
  st.inc(st.downstream_cx_total);
  st.downstream_cx_active++;
  int64_t open = shared_.downstream_connections.fetch_add(1, std::memory_order_relaxed) + 1;
  Stream& k = open_stream(s, false, l, StreamState::sniffing);
  if (shared_.max_connections && static_cast<uint64_t>(open) > shared_.max_connections) {
    st.inc(st.downstream_cx_overflow);
    close(s, CloseHow::reset);
    return;
  }
  if (!a.dst) {
    st.inc(st.downstream_cx_no_destination);
    close(s, CloseHow::reset);
    return;
  }
  // A connect straight to one of our own ports would come back to us forever, and the
  // admin API must not be reachable through the inbound listener.
  const Endpoint& dst = *a.dst;
  bool own_port = dst.port == opts_.outbound_port || dst.port == opts_.inbound_port ||
                  dst.port == opts_.admin_port;
  bool to_us =
      l == Listener::inbound || dst.addr.is_loopback() || (a.local && a.local->addr == dst.addr);
  if (own_port && to_us) {
    st.inc(st.downstream_cx_loop);
    close(s, CloseHow::reset);
    return;
  }
  k.dst = dst;
  set_timer(s, TimerKind::sniff, opts_.sniff_timeout);
}

void Session::on_accept_paused(Listener l, int err) {
  ListenerStats& st = shared_.listener_stats[static_cast<int>(l)];
  st.inc(st.downstream_cx_accept_backoff);
  Nanos now = io_.now();
  if (last_accept_warn_ && now - last_accept_warn_ < kAcceptWarnEvery) return;
  last_accept_warn_ = now;
  SM_WARN("worker %u: %s listener: accept: %s; not accepting for a moment", index_, st.name.c_str(),
          std::strerror(err));
}

void Session::on_connected(Slot s) {
  upstream_connected(s);
}

void Session::on_connect_failed(Slot s, int err) {
  upstream_failed(s, err, false);
}

void Session::on_data(Slot s, const RecvBuf& b) {
  Stream& k = c(s);
  k.last_active = io_.now();
  switch (k.state) {
    case StreamState::sniffing:
      on_sniff_data(s, b);
      break;
    case StreamState::reading_head:
    case StreamState::exchanging:
      downstream_data(s, b);
      break;
    case StreamState::tunnel:
      tunnel_data(s, b);
      break;
    case StreamState::busy:
      upstream_data(s, b);
      break;
    case StreamState::idle:  // an idle upstream must not speak: drop the connection
      io_.release(b);
      close(s, CloseHow::reset);
      break;
    case StreamState::draining:   // the proxy decided to close: nothing more is read
    case StreamState::lingering:  // into a request; the bytes are dropped
    case StreamState::connecting:
    case StreamState::free:
      io_.release(b);
      break;
  }
}

void Session::on_eof(Slot s) {
  Stream& k = c(s);
  k.eof = true;
  switch (k.state) {
    case StreamState::exchanging:
      downstream_eof(s);
      break;
    case StreamState::tunnel:
      tunnel_eof(s);
      break;
    case StreamState::busy:
      upstream_eof(s, 0);
      break;
    case StreamState::draining:  // closed once the reply is out (drained())
      break;
    case StreamState::sniffing:      // a client closing a connection it never used, or
    case StreamState::reading_head:  // its idle keep-alive connection
    case StreamState::lingering:
    case StreamState::idle:
    case StreamState::connecting:
      close(s, CloseHow::graceful);
      break;
    case StreamState::free:
      break;
  }
}

void Session::on_error(Slot s, int err) {
  Stream& k = c(s);
  k.eof = true;
  switch (k.state) {
    case StreamState::tunnel:  // either side: the tunnel is over for both
      close_both(s, CloseHow::reset);
      break;
    case StreamState::busy:
      upstream_eof(s, err);
      break;
    case StreamState::idle:
    case StreamState::connecting:
      close(s, CloseHow::reset);
      break;
    case StreamState::sniffing:
    case StreamState::reading_head:
    case StreamState::exchanging:
    case StreamState::draining:
    case StreamState::lingering:
      downstream_reset(s);
      break;
    case StreamState::free:
      break;
  }
}

void Session::on_sent(Slot s) {
  Stream& k = c(s);
  if (k.state == StreamState::free) return;
  if (k.peer != kNoSlot && (c(k.peer).paused & kPausePeerFull) && under_resume_mark(s))
    resume(k.peer, kPausePeerFull);
  if ((k.paused & kPauseRepliesUnread) && under_resume_mark(s)) {
    resume(s, kPauseRepliesUnread);
    ready_.emplace_back(s, k.epoch);
  }
  if (io_.queued(s).bytes == 0) drained(s);
}

void Session::drained(Slot s) {
  Stream& k = c(s);
  if (k.state == StreamState::draining) {
    io_.shutdown_write(s);
    k.shut_wr = true;
    k.state = StreamState::lingering;
    if (k.eof) close(s, CloseHow::graceful);
    return;
  }
  if (k.state != StreamState::tunnel || k.peer == kNoSlot) return;
  Stream& p = c(k.peer);
  if (p.state == StreamState::connecting) return;
  // Half-close travels: the other side finished sending and everything it sent is out.
  if (p.eof && !k.shut_wr) {
    io_.shutdown_write(s);
    k.shut_wr = true;
  }
  if (k.eof && p.eof && k.shut_wr && p.shut_wr && io_.queued(k.peer).bytes == 0)
    close_both(s, CloseHow::graceful);
}

void Session::on_timer(Slot s) {
  Stream& k = c(s);
  TimerKind kind = k.timer;
  k.timer = TimerKind::none;
  ListenerStats& st = stats(k);
  switch (kind) {
    case TimerKind::sniff:
      // Nothing decisive from the client: a server-first protocol (or a few opaque bytes).
      st.inc(k.head && !k.head->empty() ? st.downstream_cx_tcp : st.downstream_cx_server_first);
      start_tunnel(s, nullptr);
      break;
    case TimerKind::request_head:
      st.inc(st.downstream_rq_header_timeout);
      release_parsers(k);
      new_exchange(s);
      reply(s, {408, reply::kRequestTimeout, ResponseFlag::downstream_request_timeout}, true);
      break;
    case TimerKind::idle:
      st.inc(drain_started_[static_cast<int>(k.listener)] ? st.downstream_cx_drain_close
                                                          : st.downstream_cx_idle_timeout);
      close(s, CloseHow::graceful);
      break;
    case TimerKind::stream_idle:
      stream_idle(s);
      break;
    case TimerKind::retry:
      next_attempt(s);
      break;
    case TimerKind::fault_delay:
      fault_delay_over(s);
      break;
    case TimerKind::delayed_close:
      st.inc(st.downstream_cx_delayed_close_timeout);
      close(s, io_.queued(s).bytes ? CloseHow::reset : CloseHow::graceful);
      break;
    case TimerKind::tunnel_idle:
      tunnel_idle(s);
      break;
    case TimerKind::connect:
      upstream_failed(s, ETIMEDOUT, true);
      break;
    case TimerKind::request: {
      Slot down = k.peer;
      if (down == kNoSlot || !c(down).ex) {
        close(s, CloseHow::reset);
        break;
      }
      Exchange& ex = *c(down).ex;
      if (ex.per_try_armed) {
        per_try_timeout(down, s);
        break;
      }
      if (ex.cluster) ex.cluster->stats().upstream_rq_timeout.inc();
      st.inc(st.downstream_rq_upstream_timeout);
      // reply() closes the upstream (or, mid-response, resets both).
      reply(down, {504, reply::kUpstreamTimeout, ResponseFlag::upstream_request_timeout}, false);
      break;
    }
    case TimerKind::upstream_idle:
      close(s, CloseHow::graceful);
      break;
    case TimerKind::none:
      break;
  }
}

void Session::on_batch_end() {
  while (!ready_.empty()) {  // pipelined requests, parsed outside any handler
    std::vector<std::pair<Slot, uint32_t>> ready;
    ready.swap(ready_);
    for (auto [s, epoch] : ready)
      if (s < streams_.size() && c(s).epoch == epoch && c(s).state == StreamState::reading_head)
        parse_request(s);
  }
  if (!log_buf_.empty()) shared_.access_log.submit(log_buf_);
  for (Listener l : {Listener::outbound, Listener::inbound})
    if (!drain_started_[static_cast<int>(l)] &&
        shared_.drain_close[static_cast<int>(l)].load(std::memory_order_relaxed))
      start_drain(l);
}

bool Session::drain_close(const Stream& k) const {
  return shared_.health_failed.load(std::memory_order_relaxed) ||
         shared_.drain_close[static_cast<int>(k.listener)].load(std::memory_order_relaxed);
}

// Busy connections close after their response (drain_close()). An idle one closes once it
// has been idle for half the drain time (at most the idle timeout): closing it at once would
// race a client that is about to reuse it (its request would meet the FIN), and a client
// idle that long is not in the middle of sending.
void Session::start_drain(Listener l) {
  drain_started_[static_cast<int>(l)] = true;
  for (Slot s = 0; s < streams_.size(); ++s) {
    Stream& k = c(s);
    if (k.upstream || k.listener != l || k.timer != TimerKind::idle) continue;
    if (k.state != StreamState::reading_head || (k.head && !k.head->empty())) continue;
    set_timer(s, TimerKind::idle, idle_timeout(k));
  }
}

std::chrono::nanoseconds Session::idle_timeout(const Stream& k) const {
  if (!drain_started_[static_cast<int>(k.listener)]) return opts_.idle_timeout;
  return std::min<std::chrono::nanoseconds>(
      opts_.idle_timeout,
      std::chrono::duration_cast<std::chrono::nanoseconds>(opts_.drain_time) / 2);
}

// ---- sniffing, tunnels, closing ---------------------------------------------------------------

void Session::on_sniff_data(Slot s, const RecvBuf& b) {
  Stream& k = c(s);
  std::string_view bytes(b.data, b.len);
  bool gathered = false;
  if (k.head && !k.head->empty()) {  // an earlier recv left too few bytes to decide
    k.head->append(bytes);
    io_.release(b);
    bytes = *k.head;
    gathered = true;
  }
  Sniff verdict = sniff(bytes);
  if (verdict == Sniff::need_more) {
    if (!gathered) {
      if (!k.head) k.head = io_.take_string();
      k.head->assign(bytes);
      io_.release(b);
    }
    return;
  }
  clear_timer(s);
  ListenerStats& st = stats(k);
  if (verdict == Sniff::opaque) {
    st.inc(st.downstream_cx_tcp);
    start_tunnel(s, gathered ? nullptr : &b);
    return;
  }
  st.inc(st.downstream_cx_http1);
  k.state = StreamState::reading_head;
  set_timer(s, TimerKind::request_head, opts_.request_headers_timeout);
  if (gathered)
    parse_request(s);
  else
    downstream_data(s, b);
}

void Session::start_tunnel(Slot down, const RecvBuf* first) {
  Stream& k = c(down);
  k.state = StreamState::tunnel;
  ListenerStats& st = stats(k);
  const bool inbound = k.listener == Listener::inbound;
  int err = 0;
  Slot up = start_connect(inbound ? inbound_target(k.dst).target : k.dst, down, inbound, &err);
  if (up == kNoSlot) {
    if (first) io_.release(*first);
    st.inc(st.tcp_upstream_connect_fail);
    close(down, CloseHow::reset);
    return;
  }
  // Bytes already read (sniffed) go first; the queue is sent once connected.
  if (k.head && !k.head->empty()) {
    st.inc(st.tcp_bytes_sent, k.head->size());
    io_.send(up, std::exchange(k.head, nullptr));
  }
  if (first) {
    st.inc(st.tcp_bytes_sent, first->len);
    forward(down, up, *first);
  }
  set_timer(up, TimerKind::connect, opts_.connect_timeout);
  if (opts_.tunnel_idle_timeout.count() > 0)
    set_timer(down, TimerKind::tunnel_idle, opts_.tunnel_idle_timeout);
}

void Session::tunnel_data(Slot s, const RecvBuf& b) {
  Stream& k = c(s);
  if (k.peer == kNoSlot) {  // a tunnel's two streams close together; defensive
    io_.release(b);
    return;
  }
  ListenerStats& st = stats(k);
  st.inc(k.upstream ? st.tcp_bytes_received : st.tcp_bytes_sent, b.len);
  forward(s, k.peer, b);
}

void Session::tunnel_eof(Slot s) {
  Stream& k = c(s);
  if (k.peer == kNoSlot) {
    close(s, CloseHow::graceful);
    return;
  }
  Slot peer = k.peer;
  if (c(peer).state == StreamState::connecting) return;  // upstream_connected() follows up
  // Passes the half-close on once the peer's queue is out, and closes both when done.
  if (io_.queued(peer).bytes == 0) drained(peer);
  if (c(s).state == StreamState::tunnel && io_.queued(s).bytes == 0) drained(s);
}

bool Session::idle_expired(Slot down, Millis timeout, TimerKind kind) {
  Stream& k = c(down);
  Nanos last = k.last_active;
  if (k.peer != kNoSlot) last = std::max(last, c(k.peer).last_active);
  const Nanos limit =
      static_cast<Nanos>(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count());
  if (io_.now() - last >= limit) return true;
  k.timer = kind;  // bytes moved meanwhile: wait for the rest of the time
  io_.set_timer(down, last + limit);
  return false;
}

void Session::tunnel_idle(Slot down) {
  if (!idle_expired(down, opts_.tunnel_idle_timeout, TimerKind::tunnel_idle)) return;
  Stream& k = c(down);
  stats(k).inc(stats(k).tcp_idle_timeout);
  close_both(down, CloseHow::graceful);
}

void Session::begin_close(Slot down) {
  Stream& k = c(down);
  k.state = StreamState::draining;
  return_head(k);  // nothing more will be parsed
  release_parsers(k);
  if (k.paused) {  // keep reading: to drop what the client sends and to see its FIN
    k.paused = 0;
    io_.resume_reading(down);
  }
  set_timer(down, TimerKind::delayed_close, kDelayedClose);
  if (io_.queued(down).bytes == 0) drained(down);
}

// ---- upstream connections -------------------------------------------------------------------

Slot Session::start_connect(const Endpoint& target, Slot down, bool from_inbound, int* err) {
  std::optional<IpAddr> source;
  if (from_inbound) source = inbound_target(target).source;
  Slot up = io_.connect(target, source, err);
  if (up == kNoSlot) return kNoSlot;
  Stream& u = open_stream(up, true, c(down).listener, StreamState::connecting);
  u.from_inbound = from_inbound;
  u.dst = target;
  link(up, down);
  return up;
}

size_t Session::PoolKeyHash::operator()(const PoolKey& k) const {
  uint64_t a, b;
  std::memcpy(&a, k.target.addr.bytes.data(), 8);
  std::memcpy(&b, k.target.addr.bytes.data() + 8, 8);
  uint64_t h = (a * 0x9e3779b97f4a7c15ull) ^ b ^ (uint64_t{k.target.port} << 1) ^ k.from_inbound;
  return static_cast<size_t>(h * 0xff51afd7ed558ccdull);
}

Slot Session::pool_take(const Endpoint& target, bool from_inbound) {
  auto it = pool_.find(PoolKey{target, from_inbound});
  if (it == pool_.end()) return kNoSlot;
  while (!it->second.empty()) {
    Slot up = it->second.back();
    it->second.pop_back();
    Stream& u = c(up);
    if (u.state != StreamState::idle || u.eof) continue;
    clear_timer(up);
    u.state = StreamState::busy;
    u.reused = true;
    u.interim = 0;
    return up;
  }
  return kNoSlot;
}

void Session::pool_put(Slot up) {
  Stream& u = c(up);
  u.state = StreamState::idle;
  if (u.paused) {  // an idle connection reads, to notice the server closing it
    u.paused = 0;
    io_.resume_reading(up);
  }
  set_timer(up, TimerKind::upstream_idle, opts_.upstream_idle_timeout);
  pool_[PoolKey{u.dst, u.from_inbound}].push_back(up);
}

void Session::pool_forget(Slot up) {
  auto it = pool_.find(PoolKey{c(up).dst, c(up).from_inbound});
  if (it == pool_.end()) return;
  std::erase(it->second, up);
}

// ---- pooled helpers -------------------------------------------------------------------------

http::RequestParser* Session::take_req_parser() {
  if (req_parsers_.empty()) return new http::RequestParser(opts_.limits);
  http::RequestParser* p = req_parsers_.back().release();
  req_parsers_.pop_back();
  return p;
}

http::ResponseParser* Session::take_resp_parser() {
  if (resp_parsers_.empty()) return new http::ResponseParser(opts_.limits);
  http::ResponseParser* p = resp_parsers_.back().release();
  resp_parsers_.pop_back();
  return p;
}

void Session::release_parsers(Stream& k) {
  if (k.req_parser) req_parsers_.emplace_back(std::exchange(k.req_parser, nullptr));
  if (k.resp_parser) resp_parsers_.emplace_back(std::exchange(k.resp_parser, nullptr));
}

void Session::return_head(Stream& k) {
  if (k.head) io_.return_string(std::exchange(k.head, nullptr));
}

// ---- for tests and the fuzzer -----------------------------------------------------------------

StreamState Session::state(Slot s) const {
  return s < streams_.size() ? c(s).state : StreamState::free;
}

size_t Session::open_streams() const {
  size_t n = 0;
  for (const Stream& k : streams_) n += k.state != StreamState::free;
  return n;
}

std::string Session::check_invariants() const {
  std::string out;
  auto bad = [&](Slot s, const std::string& what) {
    out += "slot " + std::to_string(s) + " (" + state_name(c(s).state) + "): " + what + "\n";
  };
  for (Slot s = 0; s < streams_.size(); ++s) {
    const Stream& k = c(s);
    if (k.state == StreamState::free) {
      if (k.peer != kNoSlot || k.ex || k.head || k.req_parser || k.resp_parser)
        bad(s, "a free stream holds something");
      continue;
    }
    if (k.peer != kNoSlot) {
      if (k.peer >= streams_.size() || c(k.peer).state == StreamState::free)
        bad(s, "peer " + std::to_string(k.peer) + " is closed");
      else if (c(k.peer).peer != s)
        bad(s, "peer " + std::to_string(k.peer) + " does not point back");
    }
    const bool needs_peer = k.state == StreamState::busy || k.state == StreamState::connecting ||
                            k.state == StreamState::tunnel;
    if (needs_peer && k.peer == kNoSlot) bad(s, "no peer");
    if (k.state == StreamState::idle && k.peer != kNoSlot) bad(s, "pooled with a peer");
    if (!k.upstream && (k.state == StreamState::exchanging) != static_cast<bool>(k.ex))
      bad(s, "exchange and state disagree");
    if (k.upstream && k.state == StreamState::busy && !c(k.peer).ex)
      bad(s, "busy for a downstream without an exchange");
  }
  for (const auto& [key, slots] : pool_)
    for (Slot up : slots)
      if (up >= streams_.size() || c(up).state != StreamState::idle)
        out += "slot " + std::to_string(up) + ": in the pool but not idle\n";
  return out;
}

}  // namespace sm::proxy
