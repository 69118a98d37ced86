// What the bytes mean, for one worker: sniffing, TCP passthrough and HTTP/1.1 exchanges
// (request head -> route -> upstream -> response), driven by IoEvents and acting through
// Io. Nothing here knows io_uring: unit tests and the connection fuzzer run it on a
// scripted Io, without root.
//
// Every connection is a Stream in a named state. `peer` links the two ends of an exchange
// or a tunnel and is always symmetric; closing a stream unlinks it, so no stream ever
// points at a closed (and maybe reused) slot. A downstream that is being closed reads and
// drops what the client sends: nothing is parsed after the proxy decided to close.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/body_framer.h"
#include "http/head_writer.h"
#include "http/request_parser.h"
#include "http/response_parser.h"
#include "proxy/exchange.h"
#include "proxy/io.h"
#include "proxy/shared.h"
#include "route/load_balancer.h"
#include "route/snapshot.h"

namespace sm::proxy {

enum class StreamState : uint8_t {
  free,
  // downstream
  sniffing,      // waiting for the client's first bytes
  reading_head,  // a request head is arriving (or pipelined bytes wait for their turn)
  exchanging,    // a request is in flight: see Exchange::state
  draining,      // the last reply is being sent; the client's bytes are dropped unread
  lingering,     // ... sent, FIN sent: waiting for the client's FIN before closing
  // upstream
  connecting,  // for an exchange or a tunnel
  busy,        // serving the downstream peer's exchange
  idle,        // in the pool
  // both
  tunnel,  // opaque bytes both ways
};
const char* state_name(StreamState s);

// Why a stream does not read (bits; it reads again when none is left).
enum Pause : uint8_t {
  kPausePeerFull = 1,       // what it sends to its peer is not being taken fast enough
  kPauseRepliesUnread = 2,  // pipelining: its own replies wait to be read
  kPauseHeadFull = 4,       // pipelined bytes filled the head buffer during an exchange
  kPauseFaultDelay = 8,     // fault injection holds the request: its body waits in the socket
};

enum class TimerKind : uint8_t {
  none,
  sniff,          // downstream: no first bytes yet -> server-first passthrough
  request_head,   // downstream: head incomplete -> 408
  idle,           // downstream: keep-alive with nothing in flight -> close
  stream_idle,    // downstream: an exchange without bytes either way -> 408 or reset
  retry,          // downstream: retry backoff over -> next attempt
  fault_delay,    // downstream: an injected delay is over -> abort or go upstream
  delayed_close,  // downstream: closing, the client did not close in time -> close
  tunnel_idle,    // downstream side of a tunnel: no bytes either way -> close both
  connect,        // upstream: connect timeout
  request,        // upstream: route timeout -> 504
  upstream_idle,  // upstream: idle in the pool -> close
};

struct Stream {
  StreamState state = StreamState::free;
  Listener listener = Listener::outbound;
  bool upstream = false;
  uint8_t paused = 0;  // Pause bits
  bool eof = false;    // the remote end finished sending
  bool shut_wr = false;
  bool reused = false;        // upstream: served a request before (keep-alive race on EOF)
  bool no_reuse = false;      // upstream: must not go back to the pool
  bool from_inbound = false;  // upstream: made for the inbound listener
  Slot peer = kNoSlot;
  uint32_t epoch = 0;  // bumped at every open: deferred work names the stream it was for
  TimerKind timer = TimerKind::none;
  uint16_t interim = 0;         // upstream: interim (1xx) responses for the current request
  Endpoint dst{};               // downstream: original destination; upstream: target
  Nanos last_active = 0;        // idle timeouts compare against this lazily
  std::string* head = nullptr;  // bytes of a head being parsed (+ pipelined leftovers)
  // Downstream: the request body framer; upstream: the response body framer.
  http::BodyFramer framer;
  http::BodyKind body_kind = http::BodyKind::none;  // upstream: framing of the response
  std::unique_ptr<Exchange> ex;                     // downstream, while a request is in flight
  http::RequestParser* req_parser = nullptr;        // borrowed while parsing a head
  http::ResponseParser* resp_parser = nullptr;
  uint64_t requests = 0;  // served on this connection
};

class Session final : public IoEvents {
 public:
  Session(Shared& shared, Io& io, uint32_t index);
  ~Session() override;

  // IoEvents
  void on_accepted(Slot s, Listener l, const Accepted& a) override;
  void on_accept_paused(Listener l, int err) override;
  void on_connected(Slot s) override;
  void on_connect_failed(Slot s, int err) override;
  void on_data(Slot s, const RecvBuf& b) override;
  void on_eof(Slot s) override;
  void on_error(Slot s, int err) override;
  void on_sent(Slot s) override;
  void on_timer(Slot s) override;
  void on_batch_end() override;

  // For tests and the fuzzer: the state of a slot, and a check of every invariant (peers
  // symmetric and open, pooled streams idle, nothing held by a free stream). Returns ""
  // when all hold, else what broke.
  StreamState state(Slot s) const;
  std::string check_invariants() const;
  size_t open_streams() const;

 private:
  Stream& c(Slot s) { return streams_[s]; }
  const Stream& c(Slot s) const { return streams_[s]; }
  ListenerStats& stats(const Stream& k) {
    return shared_.listener_stats[static_cast<int>(k.listener)];
  }
  Stream& open_stream(Slot s, bool upstream, Listener l, StreamState state);
  void link(Slot a, Slot b);
  void unlink(Slot s);
  // Closes the stream, its exchange released, its peer link cleared (the peer stays open).
  void close(Slot s, CloseHow how);
  void close_both(Slot s, CloseHow how);
  void set_timer(Slot s, TimerKind kind, std::chrono::nanoseconds after);
  void clear_timer(Slot s);
  void pause(Slot s, Pause why);
  void resume(Slot s, Pause why);
  // Sends to `to` what `from` received, and pauses `from` while `to` is over its limits.
  void forward(Slot from, Slot to, const RecvBuf& b);
  void forward_copy(Slot from, Slot to, std::string_view bytes);
  bool over_limit(Slot to) const;
  bool under_resume_mark(Slot to) const;
  void drained(Slot s);
  // A drain or a failed health check: responses on this connection say `connection: close`.
  bool drain_close(const Stream& k) const;
  // Once per listener, when its drain starts: idle keep-alive connections close soon.
  void start_drain(Listener l);
  // How long a keep-alive connection may stay idle: --idle-timeout-ms, or once its
  // listener drains, half the drain time (a response whose head went out before the drain
  // began said nothing of closing).
  std::chrono::nanoseconds idle_timeout(const Stream& k) const;

  // --- sniffing and tunnels (session.cpp)
  void on_sniff_data(Slot s, const RecvBuf& b);
  void start_tunnel(Slot down, const RecvBuf* first);
  void tunnel_data(Slot s, const RecvBuf& b);
  void tunnel_eof(Slot s);
  void tunnel_idle(Slot down);
  // True when neither end of `down` moved bytes for `timeout`; else re-arms `kind` for the
  // rest of the time.
  bool idle_expired(Slot down, Millis timeout, TimerKind kind);
  // Closes a downstream politely: what is queued goes out, then FIN, then the client's FIN
  // (or the delayed-close timeout). Bytes from the client meanwhile are dropped.
  void begin_close(Slot down);

  // --- the request side of an exchange (request.cpp)
  void downstream_data(Slot s, const RecvBuf& b);
  void parse_request(Slot s);
  void begin_exchange(Slot s, const http::RequestHead& head);
  void record_request(Exchange& ex, const http::RequestHead& head, std::string_view path);
  // Sets ex.target (and route, cluster, endpoint), or returns the local reply to send.
  std::optional<LocalReply> route_request(Slot s, const http::RequestHead& head,
                                          std::string_view path);
  std::string* build_upstream_head(const Exchange& ex, const http::RequestHead& head,
                                   std::string_view path);
  // The endpoint for a routed request, under the cluster's request circuit breaker; or the
  // local reply (overflow, no healthy upstream).
  std::optional<LocalReply> take_endpoint(Slot s);
  LocalReply fault_abort(Stream& k);
  void fault_delay_over(Slot s);
  // The route's timeout starts, the head goes upstream, the body follows.
  void send_upstream(Slot s, std::string* head_out);
  void consume_head(Stream& k, size_t head_size);
  void dispatch_upstream(Slot s, std::string* head_out);
  void forward_body_start(Slot s);
  void request_body(Slot s, const RecvBuf& b);
  void keep_for_replay(Exchange& ex, std::string_view bytes);
  Exchange& new_exchange(Slot s);

  // --- the response side (response.cpp)
  void upstream_connected(Slot up);
  void upstream_failed(Slot up, int err, bool timeout);
  void upstream_data(Slot up, const RecvBuf& b);
  void upstream_eof(Slot up, int err);
  void parse_response(Slot up);
  bool retry_on_status(Slot down, Slot up, uint16_t status);
  void forward_response_head(Slot down, Slot up, const http::ResponseHead& head);
  void become_tunnel(Slot down, Slot up, std::string_view after);
  void response_body(Slot down, Slot up, std::string_view bytes, const RecvBuf* b);
  void response_done(Slot up);
  void finish_exchange(Slot down);
  void end_exchange_upstream(Slot down, bool reusable);
  bool try_retry(Slot down, route::RetryReason reason);
  void next_attempt(Slot down);
  // The one way a local reply goes out (then the exchange finishes; closing when asked,
  // or when request bytes are left unread). Mid-response it becomes an abort.
  void reply(Slot down, const LocalReply& r, bool close_after);
  void abort_exchange(Slot down, ResponseFlag flag);
  void downstream_eof(Slot s);
  void downstream_reset(Slot s);
  void stream_idle(Slot down);
  void arm_upstream_timer(Slot up);
  void per_try_timeout(Slot down, Slot up);
  void start_attempt(Exchange& ex);
  void end_attempt(Exchange& ex, int status);
  void release_exchange(Stream& down);
  void log_access(Stream& down);  // and the trace's span

  // --- upstream connections (session.cpp)
  Slot start_connect(const Endpoint& target, Slot down, bool from_inbound, int* err);
  Slot pool_take(const Endpoint& target, bool from_inbound);
  void pool_put(Slot up);
  void pool_forget(Slot up);

  template <typename Head>
  std::string* write_head(const Head& head, const http::HeadEdits& edits);
  void make_request_id(std::string& out);
  http::RequestParser* take_req_parser();
  http::ResponseParser* take_resp_parser();
  void release_parsers(Stream& k);
  void return_head(Stream& k);

  Shared& shared_;
  Io& io_;
  uint32_t index_;
  const Options& opts_;
  std::deque<Stream> streams_;  // indexed by slot; stable addresses
  // Downstreams with a pipelined request waiting, parsed at the end of the batch (not
  // recursively, however many requests a client pipelines).
  std::vector<std::pair<Slot, uint32_t>> ready_;  // slot, epoch
  struct PoolKey {
    Endpoint target;
    bool from_inbound;
    friend bool operator==(const PoolKey&, const PoolKey&) = default;
  };
  struct PoolKeyHash {
    size_t operator()(const PoolKey& k) const;
  };
  std::unordered_map<PoolKey, std::vector<Slot>, PoolKeyHash> pool_;
  std::vector<std::unique_ptr<Exchange>> exchanges_;
  std::vector<std::unique_ptr<http::RequestParser>> req_parsers_;
  std::vector<std::unique_ptr<http::ResponseParser>> resp_parsers_;
  route::SnapshotReader<route::RouteTable> routes_;
  route::WorkerLoadBalancer lb_;
  std::mt19937_64 rng_;
  uint32_t max_buffers_;  // lent receive buffers one connection may have queued
  Nanos last_accept_warn_ = 0;
  bool drain_started_[2] = {false, false};
  std::string log_buf_;
};

}  // namespace sm::proxy
