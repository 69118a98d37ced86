// A scripted Io for driving a Session without sockets or root (unit tests and the
// connection fuzzer). The test plays the world: clients connecting and sending, upstream
// connects succeeding or failing, peers reading (or not), time passing. It keeps the rules
// the real loop keeps, and checks the session keeps its side: every lent buffer comes back
// exactly once, no call names a closed slot, slot numbers are reused (most recently freed
// first, as the real loop does).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "proxy/io.h"

namespace sm::test {

using proxy::Slot;

class ScriptedIo final : public proxy::Io {
 public:
  ScriptedIo();
  ~ScriptedIo() override;
  void attach(proxy::IoEvents* events) { events_ = events; }

  // --- the world ---------------------------------------------------------------------------
  // A client connects to a listener; its original destination is `dst`.
  Slot accept(proxy::Listener l, std::optional<proxy::Endpoint> dst,
              std::optional<proxy::Endpoint> local = std::nullopt);
  // The peer of `s` sends bytes (one receive buffer per `piece` bytes; 0: one buffer).
  // Data is not delivered while the session paused reading `s` (it waits, like the
  // kernel's socket buffer) unless `ignore_pause`: completions the kernel posted before a
  // pause took effect, delivered all the same.
  void peer_sends(Slot s, std::string_view bytes, size_t piece = 0, bool ignore_pause = false);
  void peer_closes(Slot s);          // FIN
  void peer_fails(Slot s, int err);  // RST: recv or send fails
  void connect_succeeds(Slot s);
  void connect_fails(Slot s, int err);
  // The peer of `s` reads up to `max` bytes of what the session queued; returns them.
  std::string peer_reads(Slot s, size_t max = SIZE_MAX);
  // Time passes; due timers fire (earliest first).
  void advance(std::chrono::nanoseconds dt);
  // Ends a batch of events (pipelined requests are parsed then). Every world call above
  // ends its own batch unless `batching` is on.
  void end_batch();
  bool batching = false;

  // --- what the session did ------------------------------------------------------------------
  bool open(Slot s) const { return s < conns_.size() && conns_[s].open; }
  bool is_upstream(Slot s) const { return conns_.at(s).upstream; }
  bool connecting(Slot s) const { return conns_.at(s).connecting; }
  size_t slots() const { return conns_.size(); }
  bool reading(Slot s) const { return conns_.at(s).reading; }
  bool fin_sent(Slot s) const { return conns_.at(s).fin; }
  std::optional<proxy::CloseHow> closed_how(Slot s) const { return conns_.at(s).closed; }
  size_t queued_bytes(Slot s) const;
  const proxy::Endpoint& target(Slot s) const { return conns_.at(s).target; }
  const std::optional<IpAddr>& source(Slot s) const { return conns_.at(s).source; }
  // Upstream connections made, in order.
  const std::vector<Slot>& connects() const { return connect_order_; }
  Slot last_connect() const {
    return connect_order_.empty() ? proxy::kNoSlot : connect_order_.back();
  }
  uint32_t buffers_lent() const { return lent_; }
  uint32_t strings_out() const { return strings_out_; }
  // Protocol violations by the session (a call on a closed slot, a buffer given back twice),
  // or "" when none.
  const std::string& violations() const { return violations_; }
  // Pending data waiting because the session paused the slot.
  size_t waiting_bytes(Slot s) const { return conns_.at(s).waiting.size(); }

  // --- proxy::Io ---------------------------------------------------------------------------
  proxy::Nanos now() const override { return now_; }
  void pause_reading(Slot s) override;
  void resume_reading(Slot s) override;
  void release(const proxy::RecvBuf& b) override;
  void send(Slot s, const proxy::RecvBuf& b) override;
  void send(Slot s, std::string_view bytes) override;
  void send(Slot s, std::string* owned) override;
  std::string* take_string() override;
  void return_string(std::string* s) override;
  proxy::SendQueue queued(Slot s) const override;
  void shutdown_write(Slot s) override;
  Slot connect(const proxy::Endpoint& target, const std::optional<IpAddr>& source,
               int* err) override;
  void close(Slot s, proxy::CloseHow how) override;
  void set_timer(Slot s, proxy::Nanos at) override;
  void cancel_timer(Slot s) override;

  // Makes the next connect() fail at once with this errno (0: succeed).
  int fail_next_connect = 0;

 private:
  struct Chunk {
    std::string bytes;
    int32_t buf;  // lent buffer id held by this chunk, or -1
  };
  struct Conn {
    bool open = false;
    bool upstream = false;
    bool connecting = false;
    bool reading = true;
    bool eof = false;       // the peer sent FIN or RST
    bool eof_told = false;  // ... and the session heard of it
    bool fin = false;
    std::optional<proxy::CloseHow> closed;
    std::deque<Chunk> sendq;
    std::string waiting;  // sent by the peer while paused
    proxy::Endpoint target;
    std::optional<IpAddr> source;
    std::optional<proxy::Nanos> timer;
  };
  Conn& live(Slot s, const char* what);
  Slot alloc(bool upstream);
  void deliver(Slot s, std::string_view bytes, size_t piece, bool ignore_pause);
  void deliver_resumed();
  void done();  // a world call ended: end the batch unless batching
  void violation(const std::string& what);

  proxy::IoEvents* events_ = nullptr;
  std::deque<Conn> conns_;  // stable references: events may open connections
  std::vector<Slot> free_;
  std::vector<Slot> connect_order_;
  // Resumed with bytes (or a FIN) waiting: delivered after the current event, as the real
  // loop's next recv completion would bring them, never from inside resume_reading().
  std::vector<Slot> resumed_;
  std::map<uint16_t, std::string> buffers_;  // lent buffer id -> bytes
  uint16_t next_buf_ = 0;
  uint32_t lent_ = 0;
  uint32_t strings_out_ = 0;
  proxy::Nanos now_ = 1'000'000'000;
  std::string violations_;
};

}  // namespace sm::test
