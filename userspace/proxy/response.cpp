// The response side of an HTTP/1.1 exchange and its ends: the upstream connects (or
// fails), the response head is parsed (interim responses passed on, retriable statuses
// retried), rewritten and sent, the body streamed; then the exchange finishes, or ends in a
// local reply or an abort. Every failure branch has a counter and a response flag.
#include <charconv>
#include <cstring>

#include "http/head_writer.h"
#include "proxy/session.h"
#include "sockmesh/log.h"

namespace sm::proxy {
namespace {

// Interim (1xx) responses passed on for one request; more is an upstream protocol error.
constexpr uint16_t kMaxInterim = 16;

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

// ---- attempts and what an exchange holds --------------------------------------------------------

void Session::start_attempt(Exchange& ex) {
  if (!ex.cluster) return;
  const route::RetryPolicy* p = ex.route ? ex.route->retry_policy() : nullptr;
  ex.try_deadline_ns =
      p && p->per_try_timeout.count() > 0
          ? io_.now() + static_cast<Nanos>(
                            std::chrono::duration_cast<std::chrono::nanoseconds>(p->per_try_timeout)
                                .count())
          : 0;
  ex.cluster->on_request_start(ex.endpoint);
  ex.holds |= kHoldAttempt;
}

void Session::end_attempt(Exchange& ex, int status) {
  if (!ex.has(kHoldAttempt)) return;
  ex.cluster->on_request_end(ex.endpoint, status);
  ex.holds &= static_cast<uint8_t>(~kHoldAttempt);
}

void Session::release_exchange(Stream& down) {
  if (!down.ex) return;
  Exchange& ex = *down.ex;
  end_attempt(ex, 0);
  if (ex.cluster) {
    if (ex.has(kHoldRequest)) ex.cluster->release(route::Resource::request);
    if (ex.has(kHoldPending)) ex.cluster->release(route::Resource::pending_request);
    if (ex.has(kHoldRetry)) ex.cluster->release(route::Resource::retry);
  }
  if (ex.has(kHoldActive)) stats(down).downstream_rq_active--;
  ex.holds = 0;
  if (ex.held_head) io_.return_string(std::exchange(ex.held_head, nullptr));
}

void Session::arm_upstream_timer(Slot up) {
  Stream& u = c(up);
  Exchange* ex = u.peer != kNoSlot && c(u.peer).ex ? c(u.peer).ex.get() : nullptr;
  const Nanos now = io_.now();
  // The earlier of the route's deadline and this attempt's per-try deadline.
  Nanos deadline = ex ? ex->deadline_ns : 0;
  if (ex) {
    ex->per_try_armed = ex->try_deadline_ns && (!deadline || ex->try_deadline_ns < deadline);
    if (ex->per_try_armed) deadline = ex->try_deadline_ns;
  }
  Nanos remaining = deadline ? (deadline > now ? deadline - now : 1) : 0;
  if (u.state == StreamState::connecting) {
    std::chrono::nanoseconds ct = ex && ex->cluster
                                      ? ex->cluster->config().connect_timeout
                                      : std::chrono::nanoseconds(opts_.connect_timeout);
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

// ---- the upstream connection
// ----------------------------------------------------------------------

void Session::upstream_connected(Slot up) {
  Stream& u = c(up);
  const Slot down = u.peer;
  if (down == kNoSlot) {  // cannot happen: closing a downstream closes what it connects
    close(up, CloseHow::reset);
    return;
  }
  Stream& k = c(down);
  if (k.state == StreamState::tunnel) {
    u.state = StreamState::tunnel;
    clear_timer(up);
    if (k.eof) tunnel_eof(down);  // the client may have finished sending already
    return;
  }
  u.state = StreamState::busy;
  Exchange& ex = *k.ex;
  if (ex.state == ExchangeState::connecting) ex.state = ExchangeState::waiting;
  if (ex.cluster) {
    ex.cluster->on_connect_success(ex.endpoint);
    if (ex.has(kHoldPending)) {
      ex.cluster->release(route::Resource::pending_request);
      ex.holds &= static_cast<uint8_t>(~kHoldPending);
    }
  }
  arm_upstream_timer(up);  // the request's remaining time, if the route has a timeout
}

void Session::upstream_failed(Slot up, int err, bool timeout) {
  const Slot down = c(up).peer;
  close(up, CloseHow::reset);
  if (down == kNoSlot) return;
  Stream& k = c(down);
  ListenerStats& st = stats(k);
  if (k.state == StreamState::tunnel) {
    st.inc(st.tcp_upstream_connect_fail);
    close(down, CloseHow::reset);
    return;
  }
  Exchange& ex = *k.ex;
  if (ex.cluster) {
    ex.cluster->on_connect_failure(ex.endpoint, route::Clock::now());
    if (timeout) ex.cluster->stats().upstream_cx_connect_timeout.inc();
  }
  end_attempt(ex, 0);
  SM_DEBUG("upstream connect to %s failed: %s", ex.target.str().c_str(), std::strerror(err));
  if (try_retry(down, {route::FailureKind::connect_failure, 0})) return;
  st.inc(st.downstream_rq_upstream_connect_fail);
  reply(down, {503, reply::kConnectFailure, ResponseFlag::upstream_connect_failure}, false);
}

void Session::upstream_eof(Slot up, int err) {
  Stream& u = c(up);
  const Slot down = u.peer;
  if (down == kNoSlot || !c(down).ex) {
    close(up, CloseHow::reset);
    return;
  }
  Stream& k = c(down);
  Exchange& ex = *k.ex;
  ListenerStats& st = stats(k);
  if (ex.state == ExchangeState::responding) {
    // A body delimited by the server's close is complete now; any other was cut short.
    if (err == 0 && u.body_kind == http::BodyKind::until_close && !u.resp_parser) {
      response_done(up);
      return;
    }
    st.inc(st.downstream_rq_upstream_reset);
    abort_exchange(down, ResponseFlag::upstream_reset);
    return;
  }
  // Nothing reached the client yet: retry, or answer with an error.
  const bool reused = u.reused;
  const bool got_bytes = u.resp_parser != nullptr || (u.head && !u.head->empty());
  close(up, CloseHow::reset);
  end_attempt(ex, 0);
  // A pooled connection the server closed just as we reused it: the request never reached
  // the application, so one more try on a fresh connection is safe.
  if (reused && !got_bytes && ex.replayable && k.framer.done() && ex.retries == 0) {
    ex.retries = 1;
    ex.upstream_start_ns = io_.now();
    int e = 0;
    Slot fresh = start_connect(ex.target, down, k.listener == Listener::inbound, &e);
    if (fresh != kNoSlot) {
      ex.state = ExchangeState::connecting;
      start_attempt(ex);
      arm_upstream_timer(fresh);
      io_.send(fresh, std::string_view(ex.replay));
      return;
    }
  }
  if (try_retry(down, {route::FailureKind::reset, 0})) return;
  st.inc(st.downstream_rq_upstream_reset);
  reply(down, {502, reply::kTermination, ResponseFlag::upstream_connection_termination},
        !k.framer.done());
}

void Session::per_try_timeout(Slot down, Slot up) {
  // Envoy resets the attempt; the request may go again if its retry policy covers resets.
  Stream& k = c(down);
  Exchange& ex = *k.ex;
  ListenerStats& st = stats(k);
  if (ex.cluster) ex.cluster->stats().upstream_rq_per_try_timeout.inc();
  close(up, CloseHow::reset);
  end_attempt(ex, 0);
  ex.try_deadline_ns = 0;
  ex.per_try_armed = false;
  if (try_retry(down, {route::FailureKind::per_try_timeout, 0})) return;
  st.inc(st.downstream_rq_upstream_timeout);
  reply(down, {504, reply::kUpstreamTimeout, ResponseFlag::upstream_request_timeout}, false);
}

// ---- the response head ------------------------------------------------------------------------

void Session::upstream_data(Slot up, const RecvBuf& b) {
  Stream& u = c(up);
  const Slot down = u.peer;
  if (down == kNoSlot || !c(down).ex) {  // the exchange is gone: nothing to deliver to
    io_.release(b);
    close(up, CloseHow::reset);
    return;
  }
  Exchange& ex = *c(down).ex;
  if (ex.state != ExchangeState::responding || u.resp_parser) {
    if (!u.head) u.head = io_.take_string();
    u.head->append(b.data, b.len);
    io_.release(b);
    parse_response(up);
    return;
  }
  response_body(down, up, std::string_view(b.data, b.len), &b);
}

void Session::parse_response(Slot up) {
  Stream& u = c(up);
  const Slot down = u.peer;
  Exchange& ex = *c(down).ex;
  ListenerStats& st = stats(c(down));
  for (;;) {
    if (!u.resp_parser) {
      u.resp_parser = take_resp_parser();
      u.resp_parser->reset(ex.method);
    }
    http::ParseResult r = u.resp_parser->parse(*u.head);
    if (r.need_more()) return;
    if (r.failed()) {
      st.inc(st.downstream_rq_upstream_bad_response);
      reply(down, {502, reply::kBadResponse, ResponseFlag::upstream_protocol_error},
            !c(down).framer.done());
      return;
    }
    const http::ResponseHead& head = u.resp_parser->head();
    if (!head.interim()) {
      if (!retry_on_status(down, up, head.status)) forward_response_head(down, up, head);
      return;
    }
    // 100 Continue and friends go to the client as they are; the final response follows.
    if (++u.interim > kMaxInterim) {
      st.inc(st.downstream_rq_upstream_too_many_1xx);
      reply(down, {502, reply::kTooMany1xx, ResponseFlag::upstream_protocol_error},
            !c(down).framer.done());
      return;
    }
    forward_copy(up, down, std::string_view(*u.head).substr(0, head.head_size));
    u.head->erase(0, head.head_size);
    u.resp_parser->reset(ex.method);
    if (u.head->empty()) return;
  }
}

bool Session::retry_on_status(Slot down, Slot up, uint16_t status) {
  // A retriable status (503, 5xx per policy) is retried before anything reaches the client;
  // with no retry left, the client gets this response, as Envoy does.
  Exchange& ex = *c(down).ex;
  if (!ex.route || !ex.route->retry_policy() || !ex.replayable || !c(down).framer.done())
    return false;
  route::RetryReason reason = route::RetryReason::response(status);
  if (!ex.route->retry_policy()->retriable(reason) || !try_retry(down, reason)) return false;
  end_attempt(ex, status);
  close(up, CloseHow::graceful);  // this response goes with its connection
  return true;
}

void Session::forward_response_head(Slot down, Slot up, const http::ResponseHead& head) {
  Stream& u = c(up);
  Stream& k = c(down);
  Exchange& ex = *k.ex;
  ListenerStats& st = stats(k);
  const Nanos now = io_.now();
  ex.status = head.status;
  ex.upstream_head_ns = now;
  ex.state = ExchangeState::responding;
  if (u.timer == TimerKind::request) clear_timer(up);
  st.upstream_rq_time.record_us((now - ex.upstream_start_ns) / 1000);

  const bool tunnel = (head.status == 101 && ex.upgrade) ||
                      (ex.method == http::Method::connect && head.status / 100 == 2);
  const bool until_close = head.body.kind == http::BodyKind::until_close;
  // A response before the request body ended (a 413, say) leaves bytes that must not be
  // taken for a request: the connection closes after it.
  const bool early = !k.framer.done();
  if (!ex.close_after && !tunnel && drain_close(k)) {
    ex.close_after = true;
    st.inc(st.downstream_cx_drain_close);
  }
  ex.close_after = ex.close_after || !ex.client_keep_alive || until_close || !head.keep_alive ||
                   (early && !tunnel);
  if (!head.keep_alive || until_close) u.no_reuse = true;

  char service_ms[24];
  auto [end, ec] = std::to_chars(service_ms, service_ms + sizeof service_ms,
                                 (now - ex.upstream_start_ns) / 1'000'000);
  (void)ec;  // a 64-bit number always fits
  http::Header set[1] = {{"server", "sockmesh"}};
  http::Header add[4];
  size_t n_add = 0;
  add[n_add++] = {"x-sockmesh-upstream-service-time",
                  std::string_view(service_ms, static_cast<size_t>(end - service_ms))};
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
  io_.send(down, write_head(head, edits));
  ex.bytes_out += head.head_size;
  st.record_status(head.status);  // the cluster counts it in end_attempt()

  const size_t head_size = head.head_size;
  const http::BodyFraming framing = head.body;
  u.resp_parser->reset();
  release_parsers(u);  // `head` ends here
  std::string* rest = std::exchange(u.head, nullptr);
  std::string_view after(rest->data() + head_size, rest->size() - head_size);
  if (tunnel) {
    become_tunnel(down, up, after);
  } else {
    u.framer.reset(framing);
    u.body_kind = framing.kind;
    if (framing.kind == http::BodyKind::none) {
      if (!after.empty()) u.no_reuse = true;
      response_done(up);
    } else if (!after.empty()) {
      response_body(down, up, after, nullptr);
    }
  }
  io_.return_string(rest);
}

void Session::become_tunnel(Slot down, Slot up, std::string_view after) {
  // Upgrade or CONNECT: both sides become opaque byte streams.
  Stream& k = c(down);
  Exchange& ex = *k.ex;
  k.state = StreamState::tunnel;
  c(up).state = StreamState::tunnel;
  clear_timer(up);
  forward_copy(up, down, after);
  if (k.head && !k.head->empty()) io_.send(up, std::exchange(k.head, nullptr));  // sent early
  log_access(k);
  end_attempt(ex, ex.status);
  release_exchange(k);  // the tunnel is no longer a request in flight
  ex.reset();
  exchanges_.push_back(std::move(k.ex));
  resume(down, kPauseHeadFull);
  if (opts_.tunnel_idle_timeout.count() > 0)
    set_timer(down, TimerKind::tunnel_idle, opts_.tunnel_idle_timeout);
  else
    clear_timer(down);
}

// ---- the response body and the end of an exchange
// ------------------------------------------------

void Session::response_body(Slot down, Slot up, std::string_view bytes, const RecvBuf* b) {
  Stream& u = c(up);
  Exchange& ex = *c(down).ex;
  http::ParseResult r = u.framer.feed(bytes);
  if (r.failed()) {
    if (b) io_.release(*b);
    stats(c(down)).inc(stats(c(down)).downstream_rq_upstream_bad_response);
    abort_exchange(down, ResponseFlag::upstream_protocol_error);
    return;
  }
  ex.bytes_out += r.consumed;
  if (b && r.consumed == bytes.size()) {
    forward(up, down, *b);  // zero copy: the buffer goes back once sent
  } else {
    forward_copy(up, down, bytes.substr(0, r.consumed));
    if (b) io_.release(*b);
  }
  if (r.complete()) {
    if (r.consumed < bytes.size()) u.no_reuse = true;  // junk after the response
    response_done(up);
  }
}

void Session::response_done(Slot up) {
  Stream& u = c(up);
  const Slot down = u.peer;
  Exchange& ex = *c(down).ex;
  if (u.timer == TimerKind::request) clear_timer(up);
  end_attempt(ex, ex.status);
  if (!c(down).framer.done()) {
    // The server answered before the request body ended (a 413, say): the rest of the body
    // has nowhere to go, so neither connection can carry another request.
    ex.close_after = true;
    u.no_reuse = true;
  }
  finish_exchange(down);
}

void Session::end_exchange_upstream(Slot down, bool reusable) {
  Stream& k = c(down);
  const Slot up = k.peer;
  if (up == kNoSlot) return;
  unlink(down);
  Stream& u = c(up);
  if (u.state != StreamState::busy) {
    close(up, CloseHow::reset);
    return;
  }
  ++u.requests;
  uint32_t max = k.ex && k.ex->cluster ? k.ex->cluster->config().max_requests_per_connection : 0;
  bool over = max > 0 && u.requests >= max;
  if (reusable && !u.eof && !u.no_reuse && !over && io_.queued(up).bytes == 0) {
    pool_put(up);
  } else {
    if (over && k.ex && k.ex->cluster) k.ex->cluster->stats().upstream_cx_max_requests.inc();
    close(up, reusable ? CloseHow::graceful : CloseHow::reset);
  }
}

void Session::finish_exchange(Slot down) {
  Stream& k = c(down);
  Exchange& ex = *k.ex;
  ListenerStats& st = stats(k);
  st.downstream_rq_time.record_us((io_.now() - ex.start_ns) / 1000);
  log_access(k);
  end_exchange_upstream(down, true);
  release_exchange(k);
  const bool closing = ex.close_after || k.eof;
  ex.reset();
  exchanges_.push_back(std::move(k.ex));
  ++k.requests;
  if (closing) {
    begin_close(down);
    return;
  }
  k.state = StreamState::reading_head;
  resume(down, kPauseHeadFull);
  if (k.head && !k.head->empty()) {
    // A pipelined request is waiting: parse it after this batch of events.
    set_timer(down, TimerKind::request_head, opts_.request_headers_timeout);
    ready_.emplace_back(down, k.epoch);
  } else {
    set_timer(down, TimerKind::idle, idle_timeout(k));
  }
}

// ---- retries ------------------------------------------------------------------------------------

bool Session::try_retry(Slot down, route::RetryReason reason) {
  Stream& k = c(down);
  Exchange& ex = *k.ex;
  if (ex.state == ExchangeState::responding || !ex.replayable || !k.framer.done()) return false;
  if (!ex.route || !ex.route->retry_policy() || !ex.cluster) return false;
  if (ex.has(kHoldRetry)) ex.cluster->release(route::Resource::retry);
  if (ex.has(kHoldPending)) ex.cluster->release(route::Resource::pending_request);
  ex.holds &= static_cast<uint8_t>(~(kHoldRetry | kHoldPending));
  const route::RetryPolicy& p = *ex.route->retry_policy();
  if (ex.cluster->decide_retry(p, reason, ex.retries) != route::RetryDecision::retry) return false;
  ex.holds |= kHoldRetry;
  ++ex.retries;
  ex.state = ExchangeState::backoff;
  stats(k).inc(stats(k).downstream_rq_retry);
  set_timer(down, TimerKind::retry, p.backoff(ex.retries - 1, rng_()));
  return true;
}

void Session::next_attempt(Slot down) {
  Stream& k = c(down);
  Exchange& ex = *k.ex;
  ListenerStats& st = stats(k);
  auto ep = lb_.pick(*ex.cluster, route::Clock::now(), rng_());
  if (!ep) {
    st.inc(st.downstream_rq_no_healthy_upstream);
    reply(down, {503, reply::kNoHealthyUpstream, ResponseFlag::no_healthy_upstream}, false);
    return;
  }
  ex.endpoint = *ep;
  const auto& e = ex.cluster->endpoint(*ep);
  ex.target = Endpoint{e.address, e.port};
  ex.upstream_start_ns = io_.now();
  if (opts_.stream_idle_timeout.count() > 0)
    set_timer(down, TimerKind::stream_idle, opts_.stream_idle_timeout);
  Slot up = pool_take(ex.target, false);
  if (up != kNoSlot) {
    link(up, down);
    ex.state = ExchangeState::waiting;
  } else {
    int err = 0;
    up = start_connect(ex.target, down, false, &err);
    if (up == kNoSlot) {
      st.inc(st.downstream_rq_upstream_connect_fail);
      reply(down, {503, reply::kLocalError, ResponseFlag::upstream_connect_failure}, false);
      return;
    }
    ex.state = ExchangeState::connecting;
  }
  start_attempt(ex);
  arm_upstream_timer(up);
  io_.send(up, std::string_view(ex.replay));
}

// ---- local replies, aborts, the client going away ---------------------------------------------

void Session::reply(Slot down, const LocalReply& r, bool close_after) {
  Stream& k = c(down);
  if (!k.ex || k.ex->state == ExchangeState::responding) {
    // Too late for a status line: the client sees the connection end instead.
    abort_exchange(down, r.flag);
    return;
  }
  Exchange& ex = *k.ex;
  if (k.peer != kNoSlot) close(k.peer, CloseHow::reset);  // the upstream attempt ends here
  end_attempt(ex, 0);
  ex.status = r.status;
  ex.flag = r.flag;
  ex.state = ExchangeState::responding;
  // Unread request body bytes would be taken for the next request: close instead.
  if (!ex.close_after && !close_after && drain_close(k)) {
    ex.close_after = true;
    stats(k).inc(stats(k).downstream_cx_drain_close);
  }
  ex.close_after = ex.close_after || close_after || !k.framer.done();
  std::string* out = io_.take_string();
  write_local_reply(*out, r, ex.request_id, ex.close_after);
  ex.bytes_out += out->size();
  io_.send(down, out);
  stats(k).record_status(r.status);
  finish_exchange(down);
}

void Session::abort_exchange(Slot down, ResponseFlag flag) {
  Stream& k = c(down);
  if (k.ex && k.ex->has(kHoldActive)) {
    k.ex->flag = flag;
    release_exchange(k);
    log_access(k);
  }
  close(down, CloseHow::reset);  // and the upstream it had
}

void Session::downstream_eof(Slot s) {
  Stream& k = c(s);
  if (k.framer.done() && !k.shut_wr) {
    k.ex->close_after = true;  // half-close: the response still goes out, then we close
    return;
  }
  // The client left mid-request: release the upstream side.
  stats(k).inc(stats(k).downstream_rq_client_gone);
  abort_exchange(s, ResponseFlag::downstream_connection_termination);
}

void Session::downstream_reset(Slot s) {
  Stream& k = c(s);
  ListenerStats& st = stats(k);
  st.inc(st.downstream_cx_destroy_remote);
  if (k.ex && k.ex->has(kHoldActive)) st.inc(st.downstream_rq_client_gone);
  abort_exchange(s, ResponseFlag::downstream_connection_termination);
}

void Session::stream_idle(Slot down) {
  if (!idle_expired(down, opts_.stream_idle_timeout, TimerKind::stream_idle)) return;
  Stream& k = c(down);
  stats(k).inc(stats(k).downstream_rq_idle_timeout);
  reply(down, {408, reply::kStreamTimeout, ResponseFlag::stream_idle_timeout}, true);
}

// ---- the access log
// -------------------------------------------------------------------------------

void Session::log_access(Stream& down) {
  // Where an exchange ends: its span closes here too (one per request, retries inside).
  if (down.ex && down.ex->traced) {
    Exchange& t = *down.ex;
    tracing::FinishInfo fi;
    fi.status = t.status;
    fi.response_flags = flag_name(t.flag);
    if (t.cluster) fi.upstream_cluster = t.cluster->name();
    shared_.tracer->finish(t.trace, fi);
  }
  if (!shared_.access_log.enabled() || !down.ex) return;
  const Exchange& ex = *down.ex;
  const Nanos now = io_.now();
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
  if (ex.fault.delayed()) o += ex.flag == ResponseFlag::none ? "DI" : "DI,";
  if (!ex.fault.delayed() || ex.flag != ResponseFlag::none) o += flag_name(ex.flag);
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
  if (o.size() > 64 * 1024) shared_.access_log.submit(o);
}

}  // namespace sm::proxy
