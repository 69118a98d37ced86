// What the bytes mean: sniffing, TCP passthrough, and the HTTP/1.1 exchange (request head
// -> route -> upstream -> response), in the order a request lives through them:
// listener -> virtual host -> route -> cluster -> endpoint -> pooled connection.
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <cstring>

#include "http/head_writer.h"
#include "proxy/sniff.h"
#include "proxy/worker.h"
#include "sockmesh/log.h"

namespace sm::proxy {
namespace {

constexpr size_t kReplayLimit = 64 * 1024;  // requests up to this size can be retried
constexpr std::string_view kOverflowBody =
    "upstream connect error or disconnect/reset before headers. reset reason: overflow";

const char* reason_phrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

// The path part of a request-target (origin-form as is; absolute-form without scheme and
// authority), which is what routes match and what goes upstream.
std::string_view origin_path(const http::RequestHead& h) {
  if (h.target_form != http::TargetForm::absolute) return h.target;
  std::string_view t = h.target;
  size_t scheme = t.find("://");
  size_t slash = t.find('/', scheme == std::string_view::npos ? 0 : scheme + 3);
  if (slash == std::string_view::npos) return "/";
  return t.substr(slash);
}

void json_escape(std::string& out, std::string_view s) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
}

}  // namespace

ListenerStats& Worker::stats(const Conn& conn) {
  return shared_.listener_stats[static_cast<int>(conn.listener)];
}

http::RequestParser* Worker::take_req_parser() {
  if (req_parsers_.empty()) return new http::RequestParser(shared_.opts.limits);
  http::RequestParser* p = req_parsers_.back().release();
  req_parsers_.pop_back();
  return p;
}

http::ResponseParser* Worker::take_resp_parser() {
  if (resp_parsers_.empty()) return new http::ResponseParser(shared_.opts.limits);
  http::ResponseParser* p = resp_parsers_.back().release();
  resp_parsers_.pop_back();
  return p;
}

void Worker::release_parsers(Conn& k) {
  if (k.req_parser) {
    req_parsers_.emplace_back(k.req_parser);
    k.req_parser = nullptr;
  }
  if (k.resp_parser) {
    resp_parsers_.emplace_back(k.resp_parser);
    k.resp_parser = nullptr;
  }
}

Exchange& Worker::new_exchange(uint32_t slot) {
  Conn& k = c(slot);
  if (exchanges_.empty()) {
    k.ex = std::make_unique<Exchange>();
  } else {
    k.ex = std::move(exchanges_.back());
    exchanges_.pop_back();
  }
  ListenerStats& st = stats(k);
  st.inc(st.downstream_rq_total);
  st.downstream_rq_active++;
  k.ex->counted_active = true;
  k.phase = Phase::exchange;
  k.ex->start_ns = now_;
  return *k.ex;
}

void Worker::start_attempt(Exchange& ex) {
  if (!ex.cluster) return;
  ex.cluster->on_request_start(ex.endpoint);
  ex.attempt_active = true;
}

void Worker::end_attempt(Exchange& ex, int status) {
  if (!ex.attempt_active) return;
  ex.cluster->on_request_end(ex.endpoint, status);
  ex.attempt_active = false;
}

void Worker::release_exchange(Conn& down) {
  if (!down.ex) return;
  Exchange& ex = *down.ex;
  end_attempt(ex, 0);
  if (ex.cluster) {
    if (ex.holds_request) ex.cluster->release(route::Resource::request);
    if (ex.holds_pending) ex.cluster->release(route::Resource::pending_request);
    if (ex.holds_retry) ex.cluster->release(route::Resource::retry);
  }
  ex.holds_request = ex.holds_pending = ex.holds_retry = false;
  if (ex.counted_active) {
    stats(down).downstream_rq_active--;
    ex.counted_active = false;
  }
}

void Worker::abort_exchange(uint32_t down, const char* flag) {
  Conn& k = c(down);
  if (k.peer != kNone) {
    c(k.peer).peer = kNone;
    close_conn(k.peer, true);
    k.peer = kNone;
  }
  if (k.ex && k.ex->counted_active) {
    k.ex->flags = flag;
    release_exchange(k);
    log_access(k);
  }
  close_conn(down, true);
}

void Worker::arm_upstream_timer(uint32_t up) {
  Conn& u = c(up);
  const Exchange* ex = u.peer != kNone && c(u.peer).ex ? c(u.peer).ex.get() : nullptr;
  Nanos now = now_;
  Nanos remaining = ex && ex->deadline_ns ? (ex->deadline_ns > now ? ex->deadline_ns - now : 1) : 0;
  if (u.phase == Phase::connecting) {
    std::chrono::nanoseconds ct = ex && ex->cluster
                                      ? ex->cluster->config().connect_timeout
                                      : std::chrono::nanoseconds(shared_.opts.connect_timeout);
    if (remaining && remaining < static_cast<Nanos>(ct.count()))
      set_timer(up, TimerKind::request, std::chrono::nanoseconds(remaining));
    else
      set_timer(up, TimerKind::connect, ct);
  } else if (remaining) {
    set_timer(up, TimerKind::request, std::chrono::nanoseconds(remaining));
  } else {
    clear_timer(up);
  }
}

template <typename Head>
std::string* Worker::write_head(const Head& head, const http::HeadEdits& edits) {
  std::string* out = take_string();
  // Room for the head plus the fields we add; a larger head takes a second pass.
  out->resize(std::max<size_t>(out->capacity(), head.head_size + 512));
  size_t need = http::write_head(head, edits, std::span<char>(out->data(), out->size()));
  if (need > out->size()) {
    out->resize(need);
    http::write_head(head, edits, std::span<char>(out->data(), out->size()));
  }
  out->resize(need);
  return out;
}

void Worker::make_request_id(std::string& out) {
  // A version 4 UUID, as Envoy generates for x-request-id: 8-4-4-4-12 hex digits.
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t a = rng_(), b = rng_();
  a = (a & 0xffffffffffff0fffull) | 0x0000000000004000ull;  // version 4
  b = (b & 0x3fffffffffffffffull) | 0x8000000000000000ull;  // RFC 4122 variant
  char buf[36];
  int n = 0;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) buf[n++] = '-';
    uint64_t word = i < 16 ? a : b;
    buf[n++] = kHex[(word >> (60 - 4 * (i % 16))) & 0xf];
  }
  out.assign(buf, sizeof buf);
}

// ---- accept and sniff ---------------------------------------------------------------------

void Worker::on_accepted(Listener l, int fd) {
  ListenerStats& st = shared_.listener_stats[static_cast<int>(l)];
  st.inc(st.downstream_cx_total);
  st.downstream_cx_active++;
  uint32_t slot = alloc_conn(fd, false, l, Phase::sniffing);
  Conn& k = c(slot);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  std::optional<Endpoint> dst =
      l == Listener::outbound ? outbound_destination(fd) : inbound_destination(fd);
  if (!dst) {
    st.inc(st.downstream_cx_no_destination);
    close_conn(slot, true);
    return;
  }
  // A connect straight to one of our own ports would come back to us forever, and the
  // admin API must not be reachable through the inbound listener.
  const Options& o = shared_.opts;
  bool own_port =
      dst->port == o.outbound_port || dst->port == o.inbound_port || dst->port == o.admin_port;
  auto local = local_endpoint(fd);
  bool to_us =
      l == Listener::inbound || dst->addr.is_loopback() || (local && local->addr == dst->addr);
  if (own_port && to_us) {
    st.inc(st.downstream_cx_loop);
    close_conn(slot, true);
    return;
  }
  k.dst = *dst;
  arm_recv(slot);
  set_timer(slot, TimerKind::sniff, shared_.opts.sniff_timeout);
}

void Worker::on_sniff_data(uint32_t slot, uint16_t bid, const char* data, uint32_t len) {
  Conn& k = c(slot);
  std::string_view bytes(data, len);
  if (k.head && !k.head->empty()) {  // an earlier recv left too few bytes to decide
    k.head->append(data, len);
    give_back(bid);
    bytes = *k.head;
    bid = 0xffff;
  }
  Sniff s = sniff(bytes);
  if (s == Sniff::need_more) {
    if (!k.head) k.head = take_string();
    if (k.head->empty()) {
      k.head->assign(data, len);
      give_back(bid);
    }
    return;
  }
  clear_timer(slot);
  ListenerStats& st = stats(k);
  if (s == Sniff::opaque) {
    st.inc(st.downstream_cx_tcp);
    bool buffered = bid == 0xffff;
    start_tunnel(slot, buffered ? nullptr : data, buffered ? 0 : len, buffered ? -1 : bid);
    return;
  }
  st.inc(st.downstream_cx_http1);
  k.phase = Phase::request_head;
  set_timer(slot, TimerKind::request_head, shared_.opts.request_headers_timeout);
  if (bid == 0xffff) {
    parse_request(slot);
  } else {
    downstream_data(slot, bid, data, len);
  }
}

// ---- TCP passthrough ----------------------------------------------------------------------

void Worker::start_tunnel(uint32_t down, const char* first, uint32_t len, int32_t bid) {
  Conn& k = c(down);
  k.phase = Phase::tunnel;
  int err = 0;
  bool inbound = k.listener == Listener::inbound;
  uint32_t up = start_connect(inbound ? inbound_target(k.dst).target : k.dst, down, &err, inbound);
  if (up == kNone) {
    give_back(bid);
    ListenerStats& st = stats(k);
    st.inc(st.tcp_upstream_connect_fail);
    close_conn(down, true);
    return;
  }
  Conn& u = c(up);
  u.phase = Phase::connecting;
  c(down).peer = up;
  // Bytes already read (sniffed) go first; the queue is sent once connected.
  ListenerStats& st = stats(c(down));
  if (c(down).head && !c(down).head->empty()) {
    std::string* h = c(down).head;
    c(down).head = nullptr;
    st.inc(st.tcp_bytes_sent, h->size());
    queue_string(up, h);
  }
  if (bid >= 0) {
    st.inc(st.tcp_bytes_sent, len);
    queue_buffer(up, static_cast<uint16_t>(bid), first, len);
  }
  set_timer(up, TimerKind::connect, shared_.opts.connect_timeout);
}

void Worker::tunnel_data(uint32_t slot, uint16_t bid, const char* data, uint32_t len) {
  Conn& k = c(slot);
  if (k.peer == kNone) {
    give_back(bid);
    return;
  }
  ListenerStats& st = stats(k);
  st.inc(k.upstream ? st.tcp_bytes_received : st.tcp_bytes_sent, len);
  queue_buffer(k.peer, bid, data, len);
  if (c(k.peer).pending > shared_.opts.buffer_limit) pause_reading(slot);
}

void Worker::tunnel_eof(uint32_t slot) {
  Conn& k = c(slot);
  if (k.peer == kNone) {
    close_conn(slot);
    return;
  }
  if (c(k.peer).phase == Phase::connecting) return;  // upstream_connected() follows up
  uint32_t peer = k.peer;
  after_drain(peer);  // passes the half-close on once the peer's queue is out
  if (c(slot).phase == Phase::tunnel) after_drain(slot);
}

// ---- upstream connection events ------------------------------------------------------------

void Worker::upstream_connected(uint32_t up) {
  Conn& u = c(up);
  uint32_t down = u.peer;
  bool tunnel = down != kNone && c(down).phase == Phase::tunnel;
  u.phase = tunnel ? Phase::tunnel : Phase::busy;
  arm_recv(up);
  if (!tunnel && down != kNone && c(down).ex) {
    Exchange& ex = *c(down).ex;
    if (ex.cluster) {
      ex.cluster->on_connect_success(ex.endpoint);
      if (ex.holds_pending) {
        ex.cluster->release(route::Resource::pending_request);
        ex.holds_pending = false;
      }
    }
    arm_upstream_timer(up);  // the request's remaining time, if the route has a timeout
  } else {
    clear_timer(up);
  }
  flush(up);
  if (tunnel) after_drain(up);  // the client may have finished sending already
}

void Worker::upstream_failed(uint32_t up, int err, bool timeout) {
  Conn& u = c(up);
  uint32_t down = u.peer;
  u.peer = kNone;
  close_conn(up, true);
  if (down == kNone) return;
  Conn& k = c(down);
  k.peer = kNone;
  ListenerStats& st = stats(k);
  if (k.phase == Phase::tunnel) {
    st.inc(st.tcp_upstream_connect_fail);
    close_conn(down, true);
    return;
  }
  if (!k.ex) return;
  Exchange& ex = *k.ex;
  if (ex.cluster) {
    ex.cluster->on_connect_failure(ex.endpoint, route::Clock::now());
    if (timeout) ex.cluster->stats().upstream_cx_connect_timeout.inc();
  }
  end_attempt(ex, 0);
  SM_DEBUG("upstream connect to %s failed: %s", ex.target.str().c_str(), std::strerror(err));
  if (try_retry(down, {route::FailureKind::connect_failure, 0})) return;
  st.inc(st.downstream_rq_upstream_connect_fail);
  error_reply(down, 503,
              "upstream connect error or disconnect/reset before headers. reset reason: "
              "connection failure",
              "UF", false);
}

// ---- HTTP: requests ------------------------------------------------------------------------

void Worker::downstream_data(uint32_t slot, uint16_t bid, const char* data, uint32_t len) {
  Conn& k = c(slot);
  if (k.phase == Phase::exchange && k.ex && !k.ex->request_done) {
    forward_request_body(slot, bid, data, len);
    return;
  }
  // A head (or pipelined bytes waiting for their turn): gather them contiguously.
  if (!k.head) k.head = take_string();
  k.head->append(data, len);
  give_back(bid);
  if (k.phase == Phase::request_head) {
    if (k.timer_kind == TimerKind::idle)
      set_timer(slot, TimerKind::request_head, shared_.opts.request_headers_timeout);
    parse_request(slot);
  } else if (k.head->size() > shared_.opts.limits.max_head_bytes) {
    pause_reading(slot);  // pipelining ahead of us: wait for the exchange to finish
  }
}

void Worker::forward_request_body(uint32_t slot, uint16_t bid, const char* data, uint32_t len) {
  Conn& k = c(slot);
  Exchange& ex = *k.ex;
  http::ParseResult r = k.framer.feed(std::string_view(data, len));
  if (r.failed()) {
    // The head went upstream already: a status can still go to the client, not upstream.
    ListenerStats& st = stats(k);
    st.inc(st.downstream_rq_bad_request);
    give_back(bid);
    error_reply(slot, r.error.status, r.error.reason, "DPE", true);
    return;
  }
  uint32_t body = static_cast<uint32_t>(r.consumed);
  ex.bytes_in += body;
  if (ex.replayable) {
    if (ex.replay.size() + body <= kReplayLimit) {
      ex.replay.append(data, body);
    } else {
      ex.replayable = false;
      ex.replay.clear();
    }
  }
  if (r.complete()) ex.request_done = true;
  // Pipelined bytes after the body wait in `head` for their turn.
  if (body < len) {
    if (!k.head) k.head = take_string();
    k.head->append(data + body, len - body);
  }
  uint32_t up = k.peer;
  bool buffer_used = false;
  if (up != kNone && body > 0) {
    if (body < len) {
      queue_copy(up, std::string_view(data, body));
    } else {
      queue_buffer(up, bid, data, body);  // zero copy: the buffer goes back once sent
      buffer_used = true;
    }
    if (c(up).pending > shared_.opts.buffer_limit) pause_reading(slot);
  }
  if (!buffer_used) give_back(bid);
  if (ex.request_done && ex.response_done) finish_exchange(slot);
}

void Worker::parse_request(uint32_t slot) {
  Conn& k = c(slot);
  if (!k.head || k.head->empty()) return;
  if (!k.req_parser) {
    k.req_parser = take_req_parser();
    k.req_parser->reset();
  }
  http::ParseResult r = k.req_parser->parse(*k.head);
  if (r.need_more()) return;
  clear_timer(slot);
  if (r.failed()) {
    ListenerStats& st = stats(k);
    st.inc(st.downstream_rq_bad_request);
    release_parsers(k);
    new_exchange(slot).request_done = true;
    error_reply(slot, r.error.status, r.error.reason, "DPE", true);
    return;
  }
  begin_exchange(slot, k.req_parser->head());
}

void Worker::begin_exchange(uint32_t slot, const http::RequestHead& head) {
  Conn& k = c(slot);
  ListenerStats& st = stats(k);
  Exchange& ex = new_exchange(slot);
  ex.method = head.method;
  ex.method_text.assign(head.method_text);
  std::string_view path = origin_path(head);
  ex.path.assign(path);
  ex.authority.assign(head.authority);
  ex.user_agent.assign(head.headers.value("user-agent"));
  ex.client_minor = head.version_minor;
  ex.client_keep_alive = head.keep_alive;
  ex.upgrade = head.upgrade || head.is_connect();
  const http::Header* rid = head.headers.find("x-request-id");
  if (rid)
    ex.request_id.assign(rid->value);
  else
    make_request_id(ex.request_id);
  k.framer.reset(head.body);
  ex.request_done = head.body.kind == http::BodyKind::none;

  // Where it goes: inbound -> the workload's own port; outbound -> the route table, or the
  // original destination when no virtual host claims the authority.
  int reject_status = 0;
  std::string_view reject_body;
  const char* reject_flag = "-";
  std::string rewritten;
  if (k.listener == Listener::inbound) {
    ex.target = inbound_target(k.dst).target;
  } else {
    ex.lease = routes_.lease();
    route::RouteResult rr;
    if (ex.lease) {
      route::RequestView view{
          head.authority, path, head.method_text,
          std::span<const http::Header>(head.headers.begin(), head.headers.end())};
      rr = ex.lease->route(view, rng_());
    }
    switch (rr.outcome) {
      case route::RouteOutcome::passthrough:
        st.inc(st.downstream_rq_passthrough);
        ex.target = k.dst;
        break;
      case route::RouteOutcome::no_route:
        st.inc(st.downstream_rq_no_route);
        reject_status = 404;
        reject_flag = "NR";
        break;
      case route::RouteOutcome::cluster: {
        ex.route = rr.route;
        ex.cluster = rr.cluster;
        if (!ex.cluster->try_acquire(route::Resource::request)) {
          st.inc(st.downstream_rq_overflow);
          reject_status = 503;
          reject_body = kOverflowBody;
          reject_flag = "UO";
          break;
        }
        ex.holds_request = true;
        auto ep = lb_.pick(*ex.cluster, route::Clock::now(), rng_());
        if (!ep) {
          st.inc(st.downstream_rq_no_healthy_upstream);
          reject_status = 503;
          reject_body = "no healthy upstream";
          reject_flag = "UH";
          break;
        }
        ex.endpoint = *ep;
        const auto& e = ex.cluster->endpoint(*ep);
        ex.target = Endpoint{e.address, e.port};
        if (ex.route->config().action.prefix_rewrite) rewritten = ex.route->rewrite_path(path);
        break;
      }
    }
  }

  // The head as it goes upstream: hop-by-hop fields dropped, Istio/Envoy's request
  // headers added when absent.
  std::string* out = nullptr;
  if (!reject_status) {
    http::Header set[1];
    size_t n_set = 0;
    if (ex.route && ex.route->host_rewrite()) set[n_set++] = {"host", *ex.route->host_rewrite()};
    http::Header add[4];
    size_t n_add = 0;
    if (!rid) add[n_add++] = {"x-request-id", ex.request_id};
    if (!head.headers.find("x-forwarded-proto")) add[n_add++] = {"x-forwarded-proto", "http"};
    if (head.upgrade) {
      add[n_add++] = {"connection", "upgrade"};
      add[n_add++] = {"upgrade", head.headers.value("upgrade")};
    }
    http::HeadEdits edits;
    edits.remove_hop_by_hop = true;
    edits.set = std::span<const http::Header>(set, n_set);
    edits.add = std::span<const http::Header>(add, n_add);
    if (!rewritten.empty())
      edits.target = rewritten;
    else if (head.target_form == http::TargetForm::absolute)
      edits.target = path;
    out = write_head(head, edits);
    ex.replayable = true;
    ex.replay.assign(*out);
  }
  ex.bytes_in += head.head_size;
  http::BodyKind body_kind = head.body.kind;

  // Consume the head: the views into k.head end here. What stays in k.head is the body's
  // start and any pipelined requests.
  k.head->erase(0, head.head_size);
  k.req_parser->reset();
  release_parsers(k);

  if (reject_status) {
    error_reply(slot, reject_status, reject_body, reject_flag, !ex.request_done);
    return;
  }
  if (ex.route && ex.route->timeout().count() > 0)
    ex.deadline_ns = now_ + static_cast<Nanos>(ex.route->timeout().count());
  ex.upstream_start_ns = now_;
  bool from_inbound = k.listener == Listener::inbound;
  uint32_t up = pool_take(ex.target, from_inbound);
  if (up == kNone) {
    // Waiting for a new connection is Envoy's "pending request".
    if (ex.cluster && !ex.cluster->try_acquire(route::Resource::pending_request)) {
      return_string(out);
      st.inc(st.downstream_rq_overflow);
      error_reply(slot, 503, kOverflowBody, "UO", !ex.request_done);
      return;
    }
    ex.holds_pending = ex.cluster != nullptr;
    int err = 0;
    up = start_connect(ex.target, slot, &err, from_inbound);
  }
  if (up == kNone) {
    return_string(out);
    st.inc(st.downstream_rq_upstream_connect_fail);
    error_reply(slot, 503,
                "upstream connect error or disconnect/reset before headers. "
                "reset reason: local error",
                "UF", !ex.request_done);
    return;
  }
  c(up).peer = slot;
  k.peer = up;
  start_attempt(ex);
  arm_upstream_timer(up);
  queue_string(up, out);

  // The body's first bytes may have come with the head.
  if (!ex.request_done && k.head && !k.head->empty()) {
    std::string_view after(*k.head);
    http::ParseResult r = k.framer.feed(after);
    if (r.failed()) {
      st.inc(st.downstream_rq_bad_request);
      error_reply(slot, r.error.status, r.error.reason, "DPE", true);
      return;
    }
    queue_copy(up, after.substr(0, r.consumed));
    ex.bytes_in += r.consumed;
    if (ex.replay.size() + r.consumed <= kReplayLimit) {
      ex.replay.append(after.substr(0, r.consumed));
    } else {
      ex.replayable = false;
      ex.replay.clear();
    }
    if (r.complete()) ex.request_done = true;
    k.head->erase(0, r.consumed);
  }
  if (k.head && k.head->empty()) {
    return_string(k.head);
    k.head = nullptr;
  }
  if (!ex.request_done && body_kind == http::BodyKind::length && ex.replayable &&
      k.framer.remaining() > kReplayLimit) {
    ex.replayable = false;  // known too large up front
    ex.replay.clear();
  }
}

// ---- HTTP: responses -----------------------------------------------------------------------

void Worker::upstream_data(uint32_t up, uint16_t bid, const char* data, uint32_t len) {
  Conn& u = c(up);
  uint32_t down = u.peer;
  if (down == kNone || !c(down).ex) {  // the exchange is gone: nothing to deliver to
    give_back(bid);
    close_conn(up);
    return;
  }
  Exchange& ex = *c(down).ex;
  if (!ex.response_started || u.resp_parser) {
    if (!u.head) u.head = take_string();
    u.head->append(data, len);
    give_back(bid);
    parse_response(up);
    return;
  }
  if (ex.response_done) {  // bytes after a complete response: the connection is unusable
    give_back(bid);
    return;
  }
  http::ParseResult r = u.framer.feed(std::string_view(data, len));
  if (r.failed()) {
    give_back(bid);
    stats(c(down)).inc(stats(c(down)).downstream_rq_upstream_bad_response);
    abort_exchange(down, "UPE");
    return;
  }
  ex.bytes_out += r.consumed;
  if (r.consumed > 0)
    queue_buffer(down, bid, data, static_cast<uint32_t>(r.consumed));
  else
    give_back(bid);
  if (c(down).pending > shared_.opts.buffer_limit) pause_reading(up);
  if (r.complete()) {
    if (r.consumed < len) u.no_reuse = true;  // junk after the response
    response_done(up);
  }
}

void Worker::parse_response(uint32_t up) {
  Conn& u = c(up);
  uint32_t down = u.peer;
  Exchange& ex = *c(down).ex;
  for (;;) {
    if (!u.resp_parser) {
      u.resp_parser = take_resp_parser();
      u.resp_parser->reset(ex.method);
    }
    http::ParseResult r = u.resp_parser->parse(*u.head);
    if (r.need_more()) return;
    ListenerStats& st = stats(c(down));
    if (r.failed()) {
      st.inc(st.downstream_rq_upstream_bad_response);
      error_reply(down, 502, "upstream sent an invalid response", "UPE", !ex.request_done);
      return;
    }
    const http::ResponseHead& head = u.resp_parser->head();
    Nanos now = now_;
    if (head.interim()) {
      // 100 Continue and friends go to the client as they are; the final response follows.
      queue_copy(down, std::string_view(*u.head).substr(0, head.head_size));
      u.head->erase(0, head.head_size);
      u.resp_parser->reset(ex.method);
      if (u.head->empty()) return;
      continue;
    }
    // A retriable status (503, 5xx per policy) is retried before anything reaches the client.
    if (!ex.response_started && ex.route && ex.route->retry_policy() && ex.replayable &&
        ex.request_done) {
      route::RetryReason reason = route::RetryReason::response(head.status);
      // With no retry left, the client gets this response, as Envoy does.
      if (ex.route->retry_policy()->retriable(reason) && try_retry(down, reason)) {
        // This response is dropped with its connection; the retry starts after backoff.
        end_attempt(ex, head.status);
        u.peer = kNone;
        c(down).peer = kNone;
        close_conn(up);
        return;
      }
    }
    ex.status = head.status;
    ex.upstream_head_ns = now;
    ex.response_started = true;
    if (u.timer_kind == TimerKind::request) clear_timer(up);
    st.upstream_rq_time.record_us((now - ex.upstream_start_ns) / 1000);

    bool tunnel = (head.status == 101 && ex.upgrade) ||
                  (ex.method == http::Method::connect && head.status / 100 == 2);
    bool until_close = head.body.kind == http::BodyKind::until_close;
    ex.close_after = ex.close_after || !ex.client_keep_alive || until_close || !head.keep_alive;
    if (!head.keep_alive || until_close) u.no_reuse = true;

    char service_ms[24];
    auto [end, ec] = std::to_chars(service_ms, service_ms + sizeof service_ms,
                                   (now - ex.upstream_start_ns) / 1'000'000);
    (void)ec;  // a 64-bit number always fits
    http::Header set[1] = {{"server", "sockmesh"}};
    http::Header add[4];
    size_t n_add = 0;
    add[n_add++] = {"x-sockmesh-upstream-service-time",
                    std::string_view(service_ms, end - service_ms)};
    if (tunnel && head.status == 101) {
      add[n_add++] = {"connection", "upgrade"};
      add[n_add++] = {"upgrade", head.headers.value("upgrade")};
    } else if (ex.close_after && !tunnel) {
      add[n_add++] = {"connection", "close"};
    } else if (ex.client_minor == 0) {
      add[n_add++] = {"connection", "keep-alive"};
    }
    http::HeadEdits edits;
    edits.remove_hop_by_hop = true;
    edits.set = set;
    edits.add = std::span<const http::Header>(add, n_add);
    queue_string(down, write_head(head, edits));
    ex.bytes_out += head.head_size;
    st.record_status(head.status);  // the cluster counts it in end_attempt()

    size_t head_size = head.head_size;
    http::BodyFraming framing = head.body;
    u.resp_parser->reset();
    release_parsers(u);
    std::string* rest = u.head;
    u.head = nullptr;
    std::string_view after(rest->data() + head_size, rest->size() - head_size);

    if (tunnel) {
      // Both sides become opaque byte streams.
      ex.response_done = true;
      ex.request_done = true;
      c(down).phase = Phase::tunnel;
      u.phase = Phase::tunnel;
      queue_copy(down, after);
      if (c(down).head && !c(down).head->empty()) {
        std::string* early = c(down).head;
        c(down).head = nullptr;
        queue_string(up, early);
      }
      return_string(rest);
      log_access(c(down));
      end_attempt(ex, ex.status);
      release_exchange(c(down));  // the tunnel is no longer a request in flight
      resume_reading(down);
      return;
    }
    u.framer.reset(framing);
    u.body_kind = framing.kind;
    if (framing.kind == http::BodyKind::none) {
      if (!after.empty()) u.no_reuse = true;
      return_string(rest);
      response_done(up);
      return;
    }
    if (!after.empty()) {
      http::ParseResult b = u.framer.feed(after);
      if (b.failed()) {
        return_string(rest);
        st.inc(st.downstream_rq_upstream_bad_response);
        abort_exchange(down, "UPE");
        return;
      }
      queue_copy(down, after.substr(0, b.consumed));
      ex.bytes_out += b.consumed;
      return_string(rest);
      if (b.complete()) {
        if (b.consumed < after.size()) u.no_reuse = true;
        response_done(up);
      }
      return;
    }
    return_string(rest);
    return;
  }
}

void Worker::response_done(uint32_t up) {
  Conn& u = c(up);
  uint32_t down = u.peer;
  Exchange& ex = *c(down).ex;
  ex.response_done = true;
  if (u.timer_kind == TimerKind::request) clear_timer(up);
  end_attempt(ex, ex.status);
  if (!ex.request_done) {
    // The server answered before the request body ended (a 413, say): the rest of the body
    // has nowhere to go, so neither connection can carry another request.
    ex.close_after = true;
    ex.request_done = true;
    u.no_reuse = true;
  }
  finish_exchange(down);
}

void Worker::end_exchange_upstream(uint32_t down, bool reusable) {
  Conn& k = c(down);
  uint32_t up = k.peer;
  k.peer = kNone;
  if (up == kNone) return;
  Conn& u = c(up);
  u.peer = kNone;
  if (u.phase != Phase::busy) {
    close_conn(up, true);
    return;
  }
  ++u.requests;
  uint32_t max = k.ex && k.ex->cluster ? k.ex->cluster->config().max_requests_per_connection : 0;
  bool over = max > 0 && u.requests >= max;
  if (reusable && !u.eof && !u.no_reuse && !over && u.pending == 0 &&
      u.sendq_head == u.sendq.size()) {
    pool_put(up);
  } else {
    if (over && k.ex && k.ex->cluster) k.ex->cluster->stats().upstream_cx_max_requests.inc();
    close_conn(up, !reusable);
  }
}

void Worker::finish_exchange(uint32_t down) {
  Conn& k = c(down);
  Exchange& ex = *k.ex;
  ListenerStats& st = stats(k);
  st.downstream_rq_time.record_us((now_ - ex.start_ns) / 1000);
  log_access(k);
  end_exchange_upstream(down, true);
  release_exchange(k);
  bool close = ex.close_after || k.eof;
  ex.reset();
  exchanges_.push_back(std::move(k.ex));
  ++k.requests;
  k.phase = Phase::request_head;
  if (close) {
    k.close_when_sent = true;
    if (k.sendq_head == k.sendq.size() && !k.send_inflight) close_conn(down);
    return;
  }
  resume_reading(down);
  if (k.head && !k.head->empty()) {
    // A pipelined request is waiting: parse it after this batch of completions.
    set_timer(down, TimerKind::request_head, shared_.opts.request_headers_timeout);
    ready_.emplace_back(down, k.gen);
  } else {
    set_timer(down, TimerKind::idle, shared_.opts.idle_timeout);
  }
}

// ---- failures ------------------------------------------------------------------------------

bool Worker::try_retry(uint32_t down, route::RetryReason reason) {
  Conn& k = c(down);
  if (!k.ex) return false;
  Exchange& ex = *k.ex;
  if (ex.response_started || !ex.replayable || !ex.request_done) return false;
  if (!ex.route || !ex.route->retry_policy() || !ex.cluster) return false;
  if (ex.holds_retry) {
    ex.cluster->release(route::Resource::retry);
    ex.holds_retry = false;
  }
  if (ex.holds_pending) {
    ex.cluster->release(route::Resource::pending_request);
    ex.holds_pending = false;
  }
  const route::RetryPolicy& p = *ex.route->retry_policy();
  if (ex.cluster->decide_retry(p, reason, ex.retries) != route::RetryDecision::retry) return false;
  ex.holds_retry = true;
  ++ex.retries;
  ListenerStats& st = stats(k);
  st.inc(st.downstream_rq_retry);
  set_timer(down, TimerKind::retry, p.backoff(ex.retries - 1, rng_()));
  return true;
}

void Worker::next_attempt(uint32_t down) {
  Conn& k = c(down);
  Exchange& ex = *k.ex;
  ListenerStats& st = stats(k);
  auto ep = lb_.pick(*ex.cluster, route::Clock::now(), rng_());
  if (!ep) {
    st.inc(st.downstream_rq_no_healthy_upstream);
    error_reply(down, 503, "no healthy upstream", "UH", false);
    return;
  }
  ex.endpoint = *ep;
  const auto& e = ex.cluster->endpoint(*ep);
  ex.target = Endpoint{e.address, e.port};
  ex.upstream_start_ns = now_;
  int err = 0;
  uint32_t up = pool_take(ex.target, false);
  if (up == kNone) up = start_connect(ex.target, down, &err, false);
  if (up == kNone) {
    st.inc(st.downstream_rq_upstream_connect_fail);
    error_reply(down, 503,
                "upstream connect error or disconnect/reset before headers. "
                "reset reason: local error",
                "UF", false);
    return;
  }
  c(up).peer = down;
  k.peer = up;
  start_attempt(ex);
  arm_upstream_timer(up);
  queue_copy(up, ex.replay);
}

void Worker::upstream_eof(uint32_t up, int err) {
  Conn& u = c(up);
  uint32_t down = u.peer;
  if (u.phase == Phase::idle || down == kNone || !c(down).ex) {
    close_conn(up);
    return;
  }
  Conn& k = c(down);
  Exchange& ex = *k.ex;
  ListenerStats& st = stats(k);
  if (ex.response_started) {
    // A body delimited by the server's close is complete now; any other was cut short.
    if (err == 0 && u.body_kind == http::BodyKind::until_close && !u.resp_parser) {
      response_done(up);
      return;
    }
    st.inc(st.downstream_rq_upstream_reset);
    abort_exchange(down, "UR");
    return;
  }
  // Nothing reached the client yet: retry, or answer with an error.
  u.peer = kNone;
  k.peer = kNone;
  bool reused = u.reused;
  bool got_bytes = u.resp_parser != nullptr || (u.head && !u.head->empty());
  close_conn(up, true);
  end_attempt(ex, 0);
  // A pooled connection the server closed just as we reused it: the request never reached
  // the application, so one more try on a fresh connection is safe.
  if (reused && !got_bytes && ex.replayable && ex.request_done && ex.retries == 0) {
    ex.retries = 1;
    ex.upstream_start_ns = now_;
    int e = 0;
    uint32_t fresh = start_connect(ex.target, down, &e, k.listener == Listener::inbound);
    if (fresh != kNone) {
      start_attempt(ex);
      k.peer = fresh;
      arm_upstream_timer(fresh);
      queue_copy(fresh, ex.replay);
      return;
    }
  }
  if (try_retry(down, {route::FailureKind::reset, 0})) return;
  st.inc(st.downstream_rq_upstream_reset);
  error_reply(down, 502,
              "upstream connect error or disconnect/reset before headers. reset reason: "
              "connection termination",
              "UC", !ex.request_done);
}

void Worker::error_reply(uint32_t down, int status, std::string_view body, const char* flag,
                         bool close) {
  Conn& k = c(down);
  if (!k.ex || k.ex->response_started) {
    // Too late for a status line: the client sees the connection end instead.
    abort_exchange(down, flag);
    return;
  }
  Exchange& ex = *k.ex;
  if (k.peer != kNone) {
    c(k.peer).peer = kNone;
    close_conn(k.peer, true);
    k.peer = kNone;
  }
  end_attempt(ex, 0);
  ex.status = static_cast<uint16_t>(status);
  ex.flags = flag;
  ex.response_started = true;
  ex.response_done = true;
  // Unread request body bytes would be taken for the next request: close instead.
  ex.close_after = ex.close_after || close || !ex.request_done;
  ex.request_done = true;
  std::string* out = take_string();
  char line[160];
  std::snprintf(line, sizeof line,
                "HTTP/1.1 %d %s\r\ncontent-length: %zu\r\ncontent-type: text/plain\r\n"
                "server: sockmesh\r\n",
                status, reason_phrase(status), body.size());
  out->append(line);
  if (!ex.request_id.empty()) out->append("x-request-id: ").append(ex.request_id).append("\r\n");
  if (ex.close_after) out->append("connection: close\r\n");
  out->append("\r\n").append(body);
  ex.bytes_out += out->size();
  queue_string(down, out);
  stats(k).record_status(status);
  finish_exchange(down);
}

// ---- timers and logging --------------------------------------------------------------------

void Worker::on_timer(uint32_t slot) {
  Conn& k = c(slot);
  TimerKind kind = k.timer_kind;
  k.timer_kind = TimerKind::none;
  ListenerStats& st = stats(k);
  switch (kind) {
    case TimerKind::sniff:
      // Nothing decisive from the client: a server-first protocol (or a few opaque bytes).
      st.inc(k.head && !k.head->empty() ? st.downstream_cx_tcp : st.downstream_cx_server_first);
      start_tunnel(slot, nullptr, 0, -1);
      break;
    case TimerKind::request_head:
      st.inc(st.downstream_rq_header_timeout);
      release_parsers(k);
      new_exchange(slot).request_done = true;
      error_reply(slot, 408, "request timeout", "DRT", true);
      break;
    case TimerKind::idle:
      st.inc(st.downstream_cx_idle_timeout);
      close_conn(slot);
      break;
    case TimerKind::retry:
      next_attempt(slot);
      break;
    case TimerKind::connect:
      upstream_failed(slot, ETIMEDOUT, true);
      break;
    case TimerKind::request: {
      uint32_t down = k.peer;
      if (down == kNone || !c(down).ex) {
        close_conn(slot, true);
        break;
      }
      Exchange& ex = *c(down).ex;
      if (ex.cluster) ex.cluster->stats().upstream_rq_timeout.inc();
      st.inc(st.downstream_rq_upstream_timeout);
      // error_reply closes the upstream side (or, mid-response, resets both).
      error_reply(down, 504, "upstream request timeout", "UT", !ex.request_done);
      break;
    }
    case TimerKind::upstream_idle:
      close_conn(slot);
      break;
    case TimerKind::none:
      break;
  }
}

void Worker::downstream_reset(uint32_t slot) {
  Conn& k = c(slot);
  ListenerStats& st = stats(k);
  st.inc(st.downstream_cx_destroy_remote);
  if (k.ex && k.ex->counted_active) st.inc(st.downstream_rq_client_gone);
  abort_exchange(slot, "DC");  // closes the upstream side too
}

void Worker::downstream_eof(uint32_t slot) {
  Conn& k = c(slot);
  if (k.phase == Phase::sniffing || k.phase == Phase::request_head || !k.ex) {
    close_conn(slot);  // a client closing its idle keep-alive connection
    return;
  }
  Exchange& ex = *k.ex;
  if (ex.request_done && !ex.response_done && !k.shut_wr) {
    ex.close_after = true;  // half-close: the response still goes out, then we close
    return;
  }
  // The client left mid-request or mid-response: release the upstream side.
  ListenerStats& st = stats(k);
  st.inc(st.downstream_rq_client_gone);
  abort_exchange(slot, "DC");
}

void Worker::log_access(const Conn& down) {
  if (!shared_.access_log.enabled() || !down.ex) return;
  const Exchange& ex = *down.ex;
  Nanos now = now_;
  timespec wall{};
  clock_gettime(CLOCK_REALTIME, &wall);
  tm t{};
  gmtime_r(&wall.tv_sec, &t);
  char ts[96];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, wall.tv_nsec / 1'000'000);
  std::string& o = log_buf_;
  o += "{\"time\":\"";
  o += ts;
  o += "\",\"listener\":\"";
  o += down.listener == Listener::outbound ? "outbound" : "inbound";
  o += "\",\"method\":\"";
  json_escape(o, ex.method_text);
  o += "\",\"path\":\"";
  json_escape(o, ex.path);
  o += "\",\"authority\":\"";
  json_escape(o, ex.authority);
  o += "\",\"protocol\":\"HTTP/1.";
  o += static_cast<char>('0' + ex.client_minor);
  o += "\",\"response_code\":" + std::to_string(ex.status);
  o += ",\"response_flags\":\"";
  o += ex.flags;
  o += "\",\"bytes_received\":" + std::to_string(ex.bytes_in);
  o += ",\"bytes_sent\":" + std::to_string(ex.bytes_out);
  o += ",\"duration_ms\":" + std::to_string((now - ex.start_ns) / 1'000'000);
  o += ",\"upstream_service_time_ms\":";
  o += ex.upstream_head_ns
           ? std::to_string((ex.upstream_head_ns - ex.upstream_start_ns) / 1'000'000)
           : std::string("null");
  o += ",\"upstream_cluster\":\"";
  if (ex.cluster)
    json_escape(o, ex.cluster->name());
  else
    o += down.listener == Listener::inbound ? "inbound" : "PassthroughCluster";
  o += "\",\"upstream_host\":\"";
  o += ex.target.str();
  o += "\",\"x_request_id\":\"";
  json_escape(o, ex.request_id);
  o += "\",\"user_agent\":\"";
  json_escape(o, ex.user_agent);
  o += "\"}\n";
  if (o.size() > 64 * 1024) {
    shared_.access_log.write_batch(o);
    o.clear();
  }
}

}  // namespace sm::proxy
