// libFuzzer target over whole connections: a Session on a ScriptedIo, driven by a byte
// program. Clients connect (routed, passthrough, inbound, to the proxy itself) and send
// byte streams of several requests in pieces; a scripted upstream connects or fails and
// answers with bytes from the input; peers read some or nothing; time passes. After every
// step the session's invariants (peers symmetric and open, states and exchanges agreeing,
// the pool holding idle connections only) and the Io's rules (no call on a closed slot,
// every lent buffer given back once) must hold; at the end, with every peer gone, nothing
// may stay open, lent, counted active or unreturned. A broken rule aborts, so libFuzzer
// keeps the input.
//
// Input: one config byte (bit 0: a 2 KiB buffer limit, 1: 50 ms stream idle timeout,
// 2: 80 ms tunnel idle timeout, 3: at most 3 connections, 4-5: receive buffers 64/32/256/
// 1024), then operations (see run()).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/session.h"
#include "route/config_json.h"
#include "scripted_io.h"

namespace sm::proxy {
namespace {

[[noreturn]] void broken(const std::string& what) {
  std::fprintf(stderr, "CONNECTION FUZZER: %s\n", what.c_str());
  std::abort();
}

class Input {
 public:
  Input(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool empty() const { return p_ == end_; }
  uint8_t byte() { return p_ == end_ ? 0 : *p_++; }
  uint16_t u16() { return static_cast<uint16_t>(byte() | (byte() << 8)); }
  std::string_view bytes(size_t n) {
    n = std::min<size_t>(n, static_cast<size_t>(end_ - p_));
    std::string_view v(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return v;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

Endpoint ep(const char* ip, uint16_t port) {
  return Endpoint{*parse_ip(ip, "fuzz"), port};
}

const route::RouteConfig& routes() {
  static const route::RouteConfig config = [] {
    auto c = route::load_route_config(std::string(SM_PROXY_FIXTURES) + "/session_routes.json");
    if (!c) broken("routes: " + c.error().message());
    return *c;
  }();
  return config;
}

// The n-th open slot of the wanted kind (wrapping), or kNoSlot.
Slot pick(const test::ScriptedIo& io, uint8_t n, bool upstream) {
  size_t open = 0;
  for (Slot s = 0; s < io.slots(); ++s) open += io.open(s) && io.is_upstream(s) == upstream;
  if (open == 0) return kNoSlot;
  size_t want = n % open;
  for (Slot s = 0; s < io.slots(); ++s)
    if (io.open(s) && io.is_upstream(s) == upstream && want-- == 0) return s;
  return kNoSlot;
}

void check(const Session& session, const test::ScriptedIo& io, const char* after) {
  std::string bad = session.check_invariants();
  if (!bad.empty()) broken(std::string("invariant after ") + after + ":\n" + bad);
  if (!io.violations().empty())
    broken(std::string("Io rule after ") + after + ":\n" + io.violations());
}

void run(Input& in) {
  Options opts;
  uint8_t cfg = in.byte();
  opts.workers = 1;
  if (cfg & 1) opts.buffer_limit = 2048;
  opts.stream_idle_timeout = std::chrono::milliseconds(cfg & 2 ? 50 : 0);
  opts.tunnel_idle_timeout = std::chrono::milliseconds(cfg & 4 ? 80 : 0);
  opts.max_connections = cfg & 8 ? 3 : 1000;
  static constexpr uint32_t kBuffers[4] = {64, 32, 256, 1024};
  opts.recv_buffers = kBuffers[(cfg >> 4) & 3];
  opts.request_headers_timeout = std::chrono::milliseconds(200);
  opts.sniff_timeout = std::chrono::milliseconds(20);
  opts.connect_timeout = std::chrono::milliseconds(300);
  opts.limits.max_head_bytes = 4096;
  opts.limits.max_start_line = 1024;
  Shared shared(opts);
  auto table = route::RouteTable::build(routes(), shared.cluster_states);
  if (!table) broken("build: " + table.error().message());
  shared.routes.publish(*table);

  test::ScriptedIo io;
  auto session = std::make_unique<Session>(shared, io, 0);
  io.attach(session.get());
  for (int steps = 0; !in.empty() && steps < 2000; ++steps) {
    uint8_t op = in.byte();
    switch (op % 12) {
      case 0: {  // a client connects
        static const char* kDst[] = {"198.18.0.100", "198.18.0.30", "198.18.0.5", "2001:2::5"};
        uint8_t which = in.byte() % 6;
        Listener l = which >= 2 && which <= 3 ? Listener::inbound : Listener::outbound;
        std::optional<Endpoint> dst;
        if (which < 4) dst = ep(kDst[which], which == 0 ? 80 : 8080);
        if (which == 4) dst = ep("127.0.0.1", 15001);  // a loop
        io.accept(l, dst, ep("198.18.0.2", 40000));
        break;
      }
      case 1:
      case 2: {  // a client sends (requests, in pieces)
        Slot s = pick(io, in.byte(), false);
        size_t len = in.u16() % 4096;
        size_t piece = in.byte();
        std::string_view data = in.bytes(len);
        if (s != kNoSlot) io.peer_sends(s, data, piece, piece & 1);
        break;
      }
      case 3:
      case 4: {  // a client closes or resets
        Slot s = pick(io, in.byte(), false);
        if (s != kNoSlot) op % 12 == 3 ? io.peer_closes(s) : io.peer_fails(s, ECONNRESET);
        break;
      }
      case 5: {  // an upstream connect completes
        Slot s = pick(io, in.byte(), true);
        uint8_t how = in.byte();
        if (s != kNoSlot && io.connecting(s))
          how & 1 ? io.connect_fails(s, ECONNREFUSED) : io.connect_succeeds(s);
        break;
      }
      case 6:
      case 7: {  // an upstream answers
        Slot s = pick(io, in.byte(), true);
        size_t len = in.u16() % 4096;
        size_t piece = in.byte();
        std::string_view data = in.bytes(len);
        if (s != kNoSlot && !io.connecting(s)) io.peer_sends(s, data, piece, piece & 1);
        break;
      }
      case 8: {  // an upstream closes or resets
        Slot s = pick(io, in.byte(), true);
        uint8_t how = in.byte();
        if (s != kNoSlot && !io.connecting(s))
          how & 1 ? io.peer_fails(s, EPIPE) : io.peer_closes(s);
        break;
      }
      case 9: {  // a peer reads
        uint8_t which = in.byte();
        Slot s = pick(io, which >> 1, which & 1);
        size_t max = (in.byte() + 1) * 64u;
        if (s != kNoSlot) io.peer_reads(s, max);
        break;
      }
      case 10:  // time passes
        io.advance(std::chrono::milliseconds(in.byte() * 5));
        break;
      case 11:  // events in one batch, or the batch ends
        io.batching = !io.batching;
        if (!io.batching) io.end_batch();
        break;
    }
    check(*session, io, "a step");
  }
  io.batching = false;
  io.end_batch();
  check(*session, io, "the program");
  // Every peer goes away: nothing may stay.
  for (Slot s = 0; s < io.slots(); ++s)
    if (io.open(s)) io.peer_fails(s, ECONNRESET);
  check(*session, io, "every peer left");
  if (session->open_streams() != 0) broken("streams left open");
  if (io.buffers_lent() != 0) broken(std::to_string(io.buffers_lent()) + " buffers not given back");
  for (const ListenerStats& st : shared.listener_stats) {
    if (st.downstream_rq_active.load() != 0)
      broken("downstream_rq_active left at " + std::to_string(st.downstream_rq_active.load()));
    if (st.downstream_cx_active.load() != 0) broken("downstream_cx_active left");
  }
  if (shared.downstream_connections.load() != 0) broken("connection count left");
  for (const auto& cl : (*table)->clusters()) {
    for (uint32_t i = 0; i < cl.endpoint_count(); ++i)
      if (cl.endpoint_state(i).active_requests() != 0) broken("endpoint active requests left");
    for (route::Resource r :
         {route::Resource::pending_request, route::Resource::request, route::Resource::retry})
      if (cl.circuit_breaker().count(r) != 0) broken(cl.name() + ": circuit breaker count left");
  }
  session.reset();
  if (io.strings_out() != 0) broken(std::to_string(io.strings_out()) + " strings not returned");
}

}  // namespace
}  // namespace sm::proxy

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sm::proxy::Input in(data, size);
  sm::proxy::run(in);
  return 0;
}
