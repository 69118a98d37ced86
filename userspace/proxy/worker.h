// One worker thread of sockmesh-proxy: an io_uring, a provided-buffer ring, its share of
// the listeners (SO_REUSEPORT), a slab of connections, a pool of upstream connections and
// a timer heap. Nothing here is shared with other workers except the route snapshot
// (read through a per-worker SnapshotReader), cluster state and stats (atomics).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <netinet/in.h>
#include <sys/socket.h>

#include "http/body_framer.h"
#include "http/head_writer.h"
#include "http/request_parser.h"
#include "http/response_parser.h"
#include "proxy/original_dst.h"
#include "proxy/shared.h"
#include "proxy/timer_heap.h"
#include "proxy/uring.h"
#include "route/load_balancer.h"
#include "route/route_table.h"
#include "route/snapshot.h"

namespace sm::proxy {

constexpr uint32_t kNone = 0xffffffff;

enum class Listener : uint8_t { outbound = 0, inbound = 1 };

// What a connection slot is doing. Downstream (client-side) and upstream (server-side)
// connections share the slab; `peer` links the two ends of an exchange or tunnel.
enum class Phase : uint8_t {
  free,
  // downstream
  sniffing,      // waiting for the client's first bytes
  request_head,  // reading a request head (bytes accumulate in `head`)
  exchange,      // a request is in flight (body streaming and/or response pending)
  // upstream
  connecting,
  idle,  // in the pool
  busy,  // serving the downstream `peer`
  // both
  tunnel,   // opaque bytes both ways
  closing,  // shut down; the slot is freed when no operation is in flight
};

enum class TimerKind : uint8_t {
  none,
  sniff,          // downstream: no first bytes yet -> server-first passthrough
  request_head,   // downstream: head incomplete -> 408
  idle,           // downstream: keep-alive with nothing in flight -> close
  retry,          // downstream: retry backoff over -> next attempt
  connect,        // upstream: connect timeout
  request,        // upstream: route timeout -> 504
  upstream_idle,  // upstream: idle in the pool -> close
};

// A chunk of bytes queued for sending: a slice of a provided buffer (given back once
// sent) or an owned string from the worker's pool (returned once sent).
struct SendItem {
  const char* data;
  uint32_t len;
  int32_t bid;         // provided buffer id, or -1
  std::string* owned;  // or nullptr
};

// Per-request state of a downstream connection, from the request head to the end of the
// response. Pooled by the worker.
struct Exchange {
  route::SnapshotReader<route::RouteTable>::Lease lease;  // keeps route/cluster alive
  const route::Route* route = nullptr;
  const route::Cluster* cluster = nullptr;  // null for passthrough and inbound
  uint32_t endpoint = 0;                    // index in cluster
  Endpoint target{};                        // where the upstream connection goes
  bool holds_request = false;               // cluster circuit breaker: Resource::request
  bool holds_pending = false;               // ... Resource::pending_request (while connecting)
  bool holds_retry = false;
  bool attempt_active = false;  // cluster->on_request_start() without its on_request_end()
  bool counted_active = false;  // counted in listener downstream_rq_active
  Nanos deadline_ns = 0;        // route timeout over the whole request (0: none)
  uint32_t retries = 0;
  std::string replay;       // the request as sent (head + body) while it can be retried
  bool replayable = false;  // replay holds the whole request
  bool request_done = false;
  bool response_started = false;  // response head sent downstream (no more error replies)
  bool response_done = false;
  bool client_keep_alive = true;
  bool close_after = false;  // close downstream when the response is done
  bool upgrade = false;      // Upgrade or CONNECT: a tunnel follows a 101/2xx
  uint8_t client_minor = 1;  // HTTP/1.x minor version of the client
  http::Method method = http::Method::get;
  uint16_t status = 0;
  Nanos start_ns = 0, upstream_start_ns = 0, upstream_head_ns = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
  // For the access log and errors: copies, since the receive buffer moves on.
  std::string method_text, path, authority, request_id, user_agent;
  const char* flags = "-";  // Envoy-style response flag: UF, UT, URX, UO, NR, UH, DC...

  void reset();
};

struct Conn {
  uint32_t gen = 0;
  int fd = -1;
  Phase phase = Phase::free;
  Listener listener = Listener::outbound;
  bool upstream = false;
  uint32_t peer = kNone;
  uint16_t inflight = 0;  // operations in the kernel that reference this slot
  bool recv_armed = false;
  bool read_paused = false;  // backpressure from the peer's send queue
  bool eof = false;          // the remote end shut down its sending side
  bool shut_wr = false;      // we shut down our sending side
  bool close_when_sent = false;
  bool reused = false;          // upstream: served a request before (keep-alive race on EOF)
  bool no_reuse = false;        // upstream: must not go back to the pool (close-delimited...)
  bool from_inbound = false;    // upstream: made for the inbound listener (source 127.0.0.6)
  Endpoint dst{};               // downstream: original destination; upstream: target
  SockAddr connect_addr{};      // upstream: stable storage for the connect operation
  std::string* head = nullptr;  // bytes of a head being parsed (+ pipelined leftovers)
  // Downstream: the request body framer; upstream: the response body framer.
  http::BodyFramer framer;
  http::BodyKind body_kind = http::BodyKind::none;  // upstream: framing of the response
  std::unique_ptr<Exchange> ex;                     // downstream, while a request is in flight
  http::RequestParser* req_parser = nullptr;        // borrowed while parsing a head
  http::ResponseParser* resp_parser = nullptr;      // borrowed while parsing a head
  // Send side: one sendmsg in flight at a time, gathering up to kIov queued items.
  std::vector<SendItem> sendq;
  size_t sendq_head = 0;
  uint32_t sent_in_front = 0;  // bytes of sendq[sendq_head] already sent
  uint64_t pending = 0;        // queued, unsent bytes
  bool send_inflight = false;
  static constexpr int kIov = 8;
  iovec iov[kIov];
  msghdr msg{};
  // Timer: one per connection (in the worker's TimerHeap), its meaning given by timer_kind.
  TimerKind timer_kind = TimerKind::none;
  uint64_t requests = 0;  // served on this connection
};

class Worker {
 public:
  Worker(Shared& shared, uint32_t index, int outbound_fd, int inbound_fd);
  ~Worker();
  Status init();
  void run();

 private:
  // --- event loop plumbing (worker.cpp)
  void handle(io_uring_cqe* cqe);
  void on_accept(Listener l, int res, uint32_t flags);
  void on_recv(uint32_t slot, int res, uint32_t flags);
  void on_send(uint32_t slot, int res);
  void on_connect(uint32_t slot, int res);
  void arm_accept(Listener l);
  void arm_recv(uint32_t slot);
  void pause_reading(uint32_t slot);
  void resume_reading(uint32_t slot);
  // A fresh slot for socket `fd`, every per-connection field reset.
  uint32_t alloc_conn(int fd, bool upstream, Listener listener, Phase phase);
  void release_if_done(uint32_t slot);
  // Gives back every queued chunk (the connection is closing; no send references them).
  void drop_sendq(Conn& k);
  Conn& c(uint32_t slot) { return conns_[slot]; }
  uint64_t ud(Op op, uint32_t slot) { return UserData{op, slot, conns_[slot].gen}.pack(); }
  void close_conn(uint32_t slot, bool reset = false);
  void set_timer(uint32_t slot, TimerKind kind, std::chrono::nanoseconds after);
  void clear_timer(uint32_t slot);
  void on_timer(uint32_t slot);
  void give_back(int32_t bid);

  // Sending: queue bytes for `slot`; send() takes ownership of the buffer/string.
  void queue_buffer(uint32_t slot, uint16_t bid, const char* data, uint32_t len);
  void queue_string(uint32_t slot, std::string* s);
  void queue_copy(uint32_t slot, std::string_view bytes);
  void flush(uint32_t slot);
  void after_drain(uint32_t slot);
  std::string* take_string();
  // A pooled string holding `head` as written with `edits`.
  template <typename Head>
  std::string* write_head(const Head& head, const http::HeadEdits& edits);
  void return_string(std::string* s);

  // --- connections to upstreams (worker.cpp)
  // Opens (or reuses from the pool) a connection to `target`; returns its slot or kNone.
  // Inbound connections to the workload come from 127.0.0.6 (as Istio does): never steered
  // back to us by sk_lookup, never looped through REDIRECT, and loopback-only services of
  // the workload stay unreachable from other hosts.
  uint32_t start_connect(const Endpoint& target, uint32_t downstream, int* err, bool from_inbound);
  uint32_t pool_take(const Endpoint& target, bool from_inbound);
  void pool_put(uint32_t up);
  void pool_forget(uint32_t up);

  // --- protocol handling (session.cpp)
  void on_accepted(Listener l, int fd);
  void on_sniff_data(uint32_t slot, uint16_t bid, const char* data, uint32_t len);
  void start_tunnel(uint32_t down, const char* first, uint32_t len, int32_t bid);
  void tunnel_data(uint32_t slot, uint16_t bid, const char* data, uint32_t len);
  void tunnel_eof(uint32_t slot);
  void downstream_data(uint32_t slot, uint16_t bid, const char* data, uint32_t len);
  void downstream_eof(uint32_t slot);    // the client finished sending (FIN)
  void downstream_reset(uint32_t slot);  // the client is gone (RST, send error)
  void upstream_data(uint32_t up, uint16_t bid, const char* data, uint32_t len);
  void upstream_eof(uint32_t up, int err);
  void parse_request(uint32_t slot);
  void begin_exchange(uint32_t slot, const http::RequestHead& head);
  void send_request_upstream(uint32_t slot);
  void upstream_connected(uint32_t up);
  void upstream_failed(uint32_t up, int err, bool timeout);
  void forward_request_body(uint32_t slot, uint16_t bid, const char* data, uint32_t len);
  void parse_response(uint32_t up);
  bool try_retry(uint32_t down, route::RetryReason reason);
  void next_attempt(uint32_t down);
  void response_done(uint32_t up);
  void finish_exchange(uint32_t down);
  void error_reply(uint32_t down, int status, std::string_view body, const char* flag, bool close);
  void end_exchange_upstream(uint32_t down, bool reusable);
  void log_access(const Conn& down);
  http::RequestParser* take_req_parser();
  http::ResponseParser* take_resp_parser();
  void release_parsers(Conn& conn);
  ListenerStats& stats(const Conn& conn);
  void make_request_id(std::string& out);
  // Takes a pooled Exchange for the next request on `slot` (counts it as a request).
  Exchange& new_exchange(uint32_t slot);
  // Cluster bookkeeping of one upstream attempt.
  void start_attempt(Exchange& ex);
  void end_attempt(Exchange& ex, int status);
  // Gives back, exactly once, what the exchange holds: attempt, circuit-breaker resources,
  // the active-request gauge.
  void release_exchange(Conn& down);
  // The client is gone or broke the protocol: drop the exchange and both connections.
  void abort_exchange(uint32_t down, const char* flag);
  // Connect timeout or the request's remaining time, whichever comes first.
  void arm_upstream_timer(uint32_t up);

  Shared& shared_;
  uint32_t index_;
  int listen_fd_[2];
  Ring ring_;
  BufferRing bufs_;
  std::deque<Conn> conns_;  // stable addresses: sendmsg headers live in them
  std::vector<uint32_t> free_slots_;
  std::vector<uint32_t> starving_;  // recv stopped for lack of buffers: re-arm when possible
  // Downstream connections with a pipelined request waiting, parsed after the current
  // batch of completions (not recursively, however many requests a client pipelines).
  std::vector<std::pair<uint32_t, uint32_t>> ready_;  // slot, generation
  TimerHeap timers_;
  // Idle upstream connections by target (and whether they came from the inbound source).
  struct PoolKey {
    Endpoint target;
    bool from_inbound;
    friend bool operator==(const PoolKey&, const PoolKey&) = default;
  };
  struct PoolKeyHash {
    size_t operator()(const PoolKey& k) const;
  };
  std::unordered_map<PoolKey, std::vector<uint32_t>, PoolKeyHash> pool_;
  std::vector<std::string*> strings_;
  std::vector<std::unique_ptr<Exchange>> exchanges_;
  std::vector<std::unique_ptr<http::RequestParser>> req_parsers_;
  std::vector<std::unique_ptr<http::ResponseParser>> resp_parsers_;
  route::SnapshotReader<route::RouteTable> routes_;
  route::WorkerLoadBalancer lb_;
  std::mt19937_64 rng_;
  Nanos now_ = 0;  // CLOCK_MONOTONIC, read once per batch of completions (and per timer run)
  std::string log_buf_;
};

}  // namespace sm::proxy
