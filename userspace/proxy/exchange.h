// One HTTP request/response exchange on a downstream connection, as a state machine: where
// the request goes (route, cluster, endpoint), what it holds (circuit-breaker resources, the
// active gauge), the replay copy for retries and what the access log reports.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http/message_head.h"
#include "proxy/local_reply.h"
#include "proxy/original_dst.h"
#include "proxy/timer_heap.h"
#include "route/fault.h"
#include "route/route_table.h"
#include "route/snapshot.h"
#include "tracing/tracer.h"

namespace sm::proxy {

// Where an exchange is. The request side needs no state of its own: its body is complete
// when the downstream's framer is done.
enum class ExchangeState : uint8_t {
  connecting,  // waiting for a new upstream connection (Envoy's "pending request")
  waiting,     // the request goes (went) upstream; no response head yet
  backoff,     // an attempt failed; the next starts when the retry timer fires
  delayed,     // fault injection holds the request (route matched, no endpoint taken yet)
  responding,  // the response head went downstream; its body follows
};

// What an exchange holds and must give back exactly once (release_exchange()).
enum Hold : uint8_t {
  kHoldRequest = 1,  // cluster circuit breaker: Resource::request
  kHoldPending = 2,  // ... Resource::pending_request, while connecting
  kHoldRetry = 4,    // ... Resource::retry
  kHoldAttempt = 8,  // cluster->on_request_start() without its on_request_end()
  kHoldActive = 16,  // counted in the listener's downstream_rq_active
};

struct Exchange {
  ExchangeState state = ExchangeState::connecting;
  uint8_t holds = 0;                                      // Hold bits
  route::SnapshotReader<route::RouteTable>::Lease lease;  // keeps route/cluster alive
  const route::Route* route = nullptr;
  const route::Cluster* cluster = nullptr;  // null for passthrough and inbound
  uint32_t endpoint = 0;                    // index in cluster
  Endpoint target{};                        // where the upstream connection goes
  Nanos deadline_ns = 0;                    // route timeout over the whole request (0: none)
  Nanos try_deadline_ns = 0;                // this attempt's per-try timeout (0: none)
  bool per_try_armed = false;               // the upstream's request timer is the per-try one
  route::FaultDecision fault;               // what fault injection decided for this request
  std::string* held_head = nullptr;         // the upstream head while a fault delay holds it
  tracing::SpanContext trace;               // open span, when a tracer is configured
  bool traced = false;                      // begin() made `trace`: finish it, then reset it
  uint32_t retries = 0;
  std::string replay;       // the request as sent (head + body) while it can be retried
  bool replayable = false;  // replay holds every byte sent so far
  // Facts about the request that decide the connection's fate.
  bool client_keep_alive = true;
  bool close_after = false;  // close the downstream once the response is out
  bool upgrade = false;      // Upgrade or CONNECT: a tunnel follows a 101/2xx
  uint8_t client_minor = 1;  // HTTP/1.x minor version of the client
  http::Method method = http::Method::get;
  uint16_t status = 0;
  ResponseFlag flag = ResponseFlag::none;
  Nanos start_ns = 0, upstream_start_ns = 0, upstream_head_ns = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
  std::string request_id;
  // For the access log only (copied when it is on): the receive buffer moves on.
  std::string method_text, path, authority, user_agent;

  bool has(Hold h) const { return (holds & h) != 0; }
  void reset();
};

// The path (and query) of a request-target, which routes match and which goes upstream:
// origin-form as is; absolute-form without scheme and authority, "/" when it has no path
// ("http://h?x=/y" -> "/?x=/y", built in `scratch`).
std::string_view origin_path(const http::RequestHead& head, std::string& scratch);

// The Host the upstream must see when no route rewrites it: the authority routing used.
// Absolute-form: the URI's authority replaces Host (RFC 9112 3.2.2); otherwise the Host
// field stays as received (empty: nothing to set).
std::string_view upstream_host(const http::RequestHead& head);

}  // namespace sm::proxy
