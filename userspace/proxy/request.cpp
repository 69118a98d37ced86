// The request side of an HTTP/1.1 exchange, in the order a request lives through it:
// head -> route (listener -> virtual host -> route -> cluster -> endpoint) -> the head as
// it goes upstream -> a pooled or new connection -> the body, streamed.
#include <algorithm>

#include "http/head_writer.h"
#include "proxy/session.h"

namespace sm::proxy {
namespace {

constexpr size_t kReplayLimit = 64 * 1024;  // requests up to this size can be retried

}  // namespace

// ---- exchange.h -------------------------------------------------------------------------------

void Exchange::reset() {
  state = ExchangeState::connecting;
  holds = 0;
  lease.reset();
  route = nullptr;
  cluster = nullptr;
  endpoint = 0;
  target = {};
  deadline_ns = 0;
  try_deadline_ns = 0;
  per_try_armed = false;
  fault = {};
  held_head = nullptr;  // returned to the pool by Session::release_exchange()
  if (traced) {
    trace = tracing::SpanContext();
    traced = false;
  }
  retries = 0;
  replay.clear();
  replayable = false;
  client_keep_alive = true;
  close_after = false;
  upgrade = false;
  client_minor = 1;
  method = http::Method::get;
  status = 0;
  flag = ResponseFlag::none;
  start_ns = upstream_start_ns = upstream_head_ns = 0;
  bytes_in = bytes_out = 0;
  request_id.clear();
  method_text.clear();
  path.clear();
  authority.clear();
  user_agent.clear();
}

std::string_view origin_path(const http::RequestHead& head, std::string& scratch) {
  if (head.target_form != http::TargetForm::absolute) return head.target;
  std::string_view t = head.target;
  size_t scheme = t.find("://");
  size_t end = t.find_first_of("/?#", scheme == std::string_view::npos ? 0 : scheme + 3);
  if (end == std::string_view::npos) return "/";
  if (t[end] == '/') return t.substr(end);
  scratch.assign("/").append(t.substr(end));  // a query with an empty path
  return scratch;
}

std::string_view upstream_host(const http::RequestHead& head) {
  return head.target_form == http::TargetForm::absolute ? head.authority : std::string_view();
}

// ---- the request head -------------------------------------------------------------------------

Exchange& Session::new_exchange(Slot s) {
  Stream& k = c(s);
  if (exchanges_.empty()) {
    k.ex = std::make_unique<Exchange>();
  } else {
    k.ex = std::move(exchanges_.back());
    exchanges_.pop_back();
  }
  ListenerStats& st = stats(k);
  st.inc(st.downstream_rq_total);
  st.downstream_rq_active++;
  k.ex->holds = kHoldActive;
  k.ex->start_ns = io_.now();
  k.state = StreamState::exchanging;
  return *k.ex;
}

void Session::downstream_data(Slot s, const RecvBuf& b) {
  Stream& k = c(s);
  if (k.state == StreamState::exchanging && !k.framer.done() &&
      k.ex->state != ExchangeState::delayed) {
    request_body(s, b);
    return;
  }
  // A head (or pipelined bytes waiting for their turn): gather them contiguously.
  if (!k.head) k.head = io_.take_string();
  k.head->append(b.data, b.len);
  io_.release(b);
  if (k.state == StreamState::reading_head) {
    if (k.timer == TimerKind::idle)
      set_timer(s, TimerKind::request_head, opts_.request_headers_timeout);
    parse_request(s);
  } else if (k.head->size() > opts_.limits.max_head_bytes) {
    pause(s, kPauseHeadFull);  // pipelining ahead of us: wait for the exchange to finish
  }
}

void Session::parse_request(Slot s) {
  Stream& k = c(s);
  if (k.state != StreamState::reading_head || !k.head || k.head->empty()) return;
  // Pipelining: the next request waits until the client reads what it was sent.
  if (over_limit(s)) {
    if (!(k.paused & kPauseRepliesUnread)) stats(k).inc(stats(k).downstream_rq_pipeline_paused);
    pause(s, kPauseRepliesUnread);
    return;
  }
  if (!k.req_parser) {
    k.req_parser = take_req_parser();
    k.req_parser->reset();
  }
  http::ParseResult r = k.req_parser->parse(*k.head);
  if (r.need_more()) return;
  clear_timer(s);
  if (r.failed()) {
    stats(k).inc(stats(k).downstream_rq_bad_request);
    release_parsers(k);
    new_exchange(s);
    reply(s, {r.error.status, r.error.reason, ResponseFlag::downstream_protocol_error}, true);
    return;
  }
  begin_exchange(s, k.req_parser->head());
}

void Session::begin_exchange(Slot s, const http::RequestHead& head) {
  Stream& k = c(s);
  Exchange& ex = new_exchange(s);
  std::string scratch;
  const std::string_view path = origin_path(head, scratch);
  record_request(ex, head, path);
  if (const tracing::Tracer* t = shared_.tracer.get()) {
    tracing::BeginInfo bi;
    bi.kind =
        k.listener == Listener::inbound ? tracing::SpanKind::server : tracing::SpanKind::client;
    bi.request_id = ex.request_id;
    bi.method = head.method_text;
    bi.authority = head.authority;
    bi.path = path;
    bi.user_agent = head.headers.value("user-agent");
    bi.downstream_cluster = head.headers.value("x-envoy-downstream-service-cluster");
    ex.trace = t->begin(head.headers, bi);
    ex.traced = true;
  }
  k.framer.reset(head.body);
  k.body_kind = head.body.kind;
  std::optional<LocalReply> reject = route_request(s, head, path);
  std::string* out = reject ? nullptr : build_upstream_head(ex, head, path);
  ex.bytes_in += head.head_size;
  consume_head(k, head.head_size);  // `head` points into k.head: it ends here
  if (reject) {
    reply(s, *reject, !k.framer.done());
    return;
  }
  ex.replayable = true;
  ex.replay.assign(*out);
  if (ex.fault.delayed()) {
    // As Envoy's fault filter, before the router: the head waits here, the body in the
    // socket; the route's timeout starts after the delay.
    ex.state = ExchangeState::delayed;
    ex.held_head = out;
    pause(s, kPauseFaultDelay);
    set_timer(s, TimerKind::fault_delay, ex.fault.delay);
    return;
  }
  send_upstream(s, out);
}

void Session::send_upstream(Slot s, std::string* head_out) {
  Exchange& ex = *c(s).ex;
  if (ex.route && ex.route->timeout().count() > 0)
    ex.deadline_ns = io_.now() + static_cast<Nanos>(ex.route->timeout().count());
  if (opts_.stream_idle_timeout.count() > 0)
    set_timer(s, TimerKind::stream_idle, opts_.stream_idle_timeout);
  dispatch_upstream(s, head_out);
  if (c(s).state == StreamState::exchanging && c(s).ex.get() == &ex) forward_body_start(s);
}

void Session::fault_delay_over(Slot s) {
  Stream& k = c(s);
  Exchange& ex = *k.ex;
  std::string* out = std::exchange(ex.held_head, nullptr);
  ex.state = ExchangeState::connecting;
  std::optional<LocalReply> reject = ex.fault.aborted() ? fault_abort(k) : take_endpoint(s);
  if (reject) {
    io_.return_string(out);
    reply(s, *reject, !k.framer.done());
  } else {
    send_upstream(s, out);
  }
  // The body (or pipelined requests) may flow again, wherever the exchange went.
  if (c(s).state != StreamState::free) resume(s, kPauseFaultDelay);
}

LocalReply Session::fault_abort(Stream& k) {
  Exchange& ex = *k.ex;
  stats(k).inc(stats(k).fault_aborts_injected);
  if (const route::RouteFaultStats* rs = ex.route->fault_stats())
    rs->aborts_injected.fetch_add(1, std::memory_order_relaxed);
  return LocalReply{ex.fault.abort_status, reply::kFaultAbort, ResponseFlag::fault_abort};
}

void Session::record_request(Exchange& ex, const http::RequestHead& head, std::string_view path) {
  ex.method = head.method;
  ex.client_minor = head.version_minor;
  ex.client_keep_alive = head.keep_alive;
  ex.upgrade = head.upgrade || head.is_connect();
  if (const http::Header* rid = head.headers.find("x-request-id"))
    ex.request_id.assign(rid->value);
  else
    make_request_id(ex.request_id);
  if (!shared_.access_log.enabled()) return;
  ex.method_text.assign(head.method_text);
  ex.path.assign(path);
  ex.authority.assign(head.authority);
  ex.user_agent.assign(head.headers.value("user-agent"));
}

std::optional<LocalReply> Session::route_request(Slot s, const http::RequestHead& head,
                                                 std::string_view path) {
  Stream& k = c(s);
  Exchange& ex = *k.ex;
  ListenerStats& st = stats(k);
  // Inbound: the workload's own port. Outbound: the route table, or the original
  // destination when no virtual host claims the authority.
  if (k.listener == Listener::inbound) {
    ex.target = inbound_target(k.dst).target;
    return std::nullopt;
  }
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
      return std::nullopt;
    case route::RouteOutcome::no_route:
      st.inc(st.downstream_rq_no_route);
      return LocalReply{404, "", ResponseFlag::no_route};
    case route::RouteOutcome::cluster:
      break;
  }
  ex.route = rr.route;
  ex.cluster = rr.cluster;
  // Fault injection decides before the router takes an endpoint or a circuit-breaker unit.
  if (const route::FaultConfig* f = ex.route->fault()) {
    ex.fault = route::decide_fault(*f, rng_());
    if (ex.fault.delayed()) {
      st.inc(st.fault_delays_injected);
      if (const route::RouteFaultStats* rs = ex.route->fault_stats())
        rs->delays_injected.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;  // the endpoint is taken when the delay is over
    }
    if (ex.fault.aborted()) return fault_abort(k);
  }
  return take_endpoint(s);
}

std::optional<LocalReply> Session::take_endpoint(Slot s) {
  Stream& k = c(s);
  Exchange& ex = *k.ex;
  ListenerStats& st = stats(k);
  if (!ex.cluster->try_acquire(route::Resource::request)) {
    st.inc(st.downstream_rq_overflow);
    return LocalReply{503, reply::kOverflow, ResponseFlag::upstream_overflow};
  }
  ex.holds |= kHoldRequest;
  auto ep = lb_.pick(*ex.cluster, route::Clock::now(), rng_());
  if (!ep) {
    st.inc(st.downstream_rq_no_healthy_upstream);
    return LocalReply{503, reply::kNoHealthyUpstream, ResponseFlag::no_healthy_upstream};
  }
  ex.endpoint = *ep;
  const auto& e = ex.cluster->endpoint(*ep);
  ex.target = Endpoint{e.address, e.port};
  return std::nullopt;
}

std::string* Session::build_upstream_head(const Exchange& ex, const http::RequestHead& head,
                                          std::string_view path) {
  // Hop-by-hop fields dropped; the Host routing used; Istio/Envoy's request headers added
  // when absent.
  std::string rewritten;
  if (ex.route && ex.route->config().action.prefix_rewrite)
    rewritten = ex.route->rewrite_path(path);
  http::Header set[7];  // host, and the trace's B3 fields
  size_t n_set = 0;
  if (ex.route && ex.route->host_rewrite())
    set[n_set++] = {"host", *ex.route->host_rewrite()};
  else if (std::string_view host = upstream_host(head); !host.empty())
    set[n_set++] = {"host", host};
  http::Header add[4];
  size_t n_add = 0;
  if (!head.headers.find("x-request-id")) add[n_add++] = {"x-request-id", ex.request_id};
  if (!head.headers.find("x-forwarded-proto")) add[n_add++] = {"x-forwarded-proto", "http"};
  if (head.upgrade) {
    add[n_add++] = {"connection", "upgrade"};
    add[n_add++] = {"upgrade", head.headers.value("upgrade")};
  }
  http::HeadEdits edits;
  if (ex.traced) {
    for (const http::Header& h : ex.trace.upstream_headers())
      if (n_set < std::size(set)) set[n_set++] = h;
    edits.remove = tracing::SpanContext::removed_headers();
  }
  edits.remove_hop_by_hop = true;
  edits.set = std::span<const http::Header>(set, n_set);
  edits.add = std::span<const http::Header>(add, n_add);
  if (!rewritten.empty())
    edits.target = rewritten;
  else if (head.target_form == http::TargetForm::absolute)
    edits.target = path;
  return write_head(head, edits);
}

void Session::consume_head(Stream& k, size_t head_size) {
  // What stays in k.head is the body's start and any pipelined requests.
  k.head->erase(0, head_size);
  k.req_parser->reset();
  release_parsers(k);
}

void Session::dispatch_upstream(Slot s, std::string* head_out) {
  Stream& k = c(s);
  Exchange& ex = *k.ex;
  ListenerStats& st = stats(k);
  ex.upstream_start_ns = io_.now();
  const bool from_inbound = k.listener == Listener::inbound;
  Slot up = pool_take(ex.target, from_inbound);
  if (up != kNoSlot) {
    link(up, s);
    ex.state = ExchangeState::waiting;
  } else {
    // Waiting for a new connection is Envoy's "pending request".
    if (ex.cluster && !ex.cluster->try_acquire(route::Resource::pending_request)) {
      io_.return_string(head_out);
      st.inc(st.downstream_rq_overflow);
      reply(s, {503, reply::kOverflow, ResponseFlag::upstream_overflow}, !k.framer.done());
      return;
    }
    if (ex.cluster) ex.holds |= kHoldPending;
    int err = 0;
    up = start_connect(ex.target, s, from_inbound, &err);
    if (up == kNoSlot) {
      io_.return_string(head_out);
      st.inc(st.downstream_rq_upstream_connect_fail);
      reply(s, {503, reply::kLocalError, ResponseFlag::upstream_connect_failure}, !k.framer.done());
      return;
    }
    ex.state = ExchangeState::connecting;
  }
  start_attempt(ex);
  arm_upstream_timer(up);
  io_.send(up, head_out);
}

// ---- the request body -----------------------------------------------------------------------

void Session::keep_for_replay(Exchange& ex, std::string_view bytes) {
  if (!ex.replayable) return;
  if (ex.replay.size() + bytes.size() <= kReplayLimit) {
    ex.replay.append(bytes);
  } else {
    ex.replayable = false;
    ex.replay.clear();
  }
}

void Session::forward_body_start(Slot s) {
  // The body's first bytes may have come with the head.
  Stream& k = c(s);
  Exchange& ex = *k.ex;
  if (!k.framer.done() && k.head && !k.head->empty()) {
    http::ParseResult r = k.framer.feed(*k.head);
    if (r.failed()) {
      stats(k).inc(stats(k).downstream_rq_bad_request);
      reply(s, {r.error.status, r.error.reason, ResponseFlag::downstream_protocol_error}, true);
      return;
    }
    std::string_view body(k.head->data(), r.consumed);
    ex.bytes_in += body.size();
    keep_for_replay(ex, body);
    forward_copy(s, k.peer, body);
    k.head->erase(0, r.consumed);
  }
  if (k.head && k.head->empty()) return_head(k);
  if (!k.framer.done() && k.body_kind == http::BodyKind::length && ex.replayable &&
      k.framer.remaining() > kReplayLimit) {
    ex.replayable = false;  // known too large up front
    ex.replay.clear();
  }
}

void Session::request_body(Slot s, const RecvBuf& b) {
  Stream& k = c(s);
  Exchange& ex = *k.ex;
  http::ParseResult r = k.framer.feed(std::string_view(b.data, b.len));
  if (r.failed()) {
    // The head went upstream already: a status can still go to the client, not upstream.
    io_.release(b);
    stats(k).inc(stats(k).downstream_rq_bad_request);
    reply(s, {r.error.status, r.error.reason, ResponseFlag::downstream_protocol_error}, true);
    return;
  }
  const uint32_t body = static_cast<uint32_t>(r.consumed);
  ex.bytes_in += body;
  keep_for_replay(ex, std::string_view(b.data, body));
  if (body < b.len) {  // pipelined bytes after the body wait in `head` for their turn
    if (!k.head) k.head = io_.take_string();
    k.head->append(b.data + body, b.len - body);
  }
  if (k.peer == kNoSlot || body == 0) {
    io_.release(b);
  } else if (body < b.len) {
    forward_copy(s, k.peer, std::string_view(b.data, body));
    io_.release(b);
  } else {
    forward(s, k.peer, b);  // zero copy: the buffer goes back once sent
  }
}

// ---- helpers ----------------------------------------------------------------------------------

template <typename Head>
std::string* Session::write_head(const Head& head, const http::HeadEdits& edits) {
  std::string* out = io_.take_string();
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
template std::string* Session::write_head(const http::RequestHead&, const http::HeadEdits&);
template std::string* Session::write_head(const http::ResponseHead&, const http::HeadEdits&);

void Session::make_request_id(std::string& out) {
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

}  // namespace sm::proxy
