// The seam between what bytes mean (Session) and how they move (the event loop). The
// session sees connections by slot, received bytes in buffers the loop lends it, ordered
// send queues, connects and one timer per slot; the loop sees none of HTTP. io_uring
// implements Io (UringLoop); unit tests and the connection fuzzer drive a scripted one, and
// an epoll loop would implement the same interface.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/original_dst.h"
#include "proxy/timer_heap.h"

namespace sm::proxy {

using Slot = uint32_t;
constexpr Slot kNoSlot = 0xffffffff;

enum class Listener : uint8_t { outbound = 0, inbound = 1 };

// Received bytes in a buffer lent by the loop. The session hands every one back exactly
// once: forwarded (Io::send, given back once sent) or released (Io::release).
struct RecvBuf {
  const char* data;
  uint32_t len;
  uint16_t id;
};

// What is queued towards a connection and not yet sent (in flight included).
struct SendQueue {
  uint64_t bytes = 0;
  uint32_t buffers = 0;  // lent receive buffers among them
};

// An accepted connection: where it was going (nullopt: not intercepted) and the local
// address it arrived on.
struct Accepted {
  std::optional<Endpoint> dst;
  std::optional<Endpoint> local;
};

enum class CloseHow : uint8_t {
  graceful,  // FIN; anything still queued is dropped
  reset,     // RST (SO_LINGER 0)
};

class Io {
 public:
  virtual ~Io() = default;
  // CLOCK_MONOTONIC, read once per batch of events.
  virtual Nanos now() const = 0;

  // Receiving starts when a connection is accepted or connected and goes on until paused
  // or closed. A pause takes effect soon, not at once: data already received is still
  // delivered.
  virtual void pause_reading(Slot s) = 0;
  virtual void resume_reading(Slot s) = 0;
  virtual void release(const RecvBuf& b) = 0;

  // Sending, in order; bytes queued before a connect completes go out after it.
  virtual void send(Slot s, const RecvBuf& b) = 0;        // takes the buffer
  virtual void send(Slot s, std::string_view bytes) = 0;  // copies
  virtual void send(Slot s, std::string* owned) = 0;      // takes a string from take_string()
  virtual std::string* take_string() = 0;
  virtual void return_string(std::string* s) = 0;
  virtual SendQueue queued(Slot s) const = 0;
  // FIN now; call it once queued(s) is empty.
  virtual void shutdown_write(Slot s) = 0;

  // A new connection to `target` (from `source` when given): on_connected or
  // on_connect_failed follows. kNoSlot (errno in *err) when no socket could be made.
  virtual Slot connect(const Endpoint& target, const std::optional<IpAddr>& source, int* err) = 0;
  // No event for `s` follows; the slot number may be reused by a later connection.
  virtual void close(Slot s, CloseHow how) = 0;

  // One timer per slot; setting it again moves it.
  virtual void set_timer(Slot s, Nanos at) = 0;
  virtual void cancel_timer(Slot s) = 0;
};

// What the loop reports. Events for a slot stop at Io::close().
class IoEvents {
 public:
  virtual ~IoEvents() = default;
  virtual void on_accepted(Slot s, Listener l, const Accepted& a) = 0;
  // accept failed in a way that would repeat at once (no descriptors, no memory): the
  // listener rests, longer each time in a row, then accepts again.
  virtual void on_accept_paused(Listener l, int err) = 0;
  virtual void on_connected(Slot s) = 0;
  virtual void on_connect_failed(Slot s, int err) = 0;
  virtual void on_data(Slot s, const RecvBuf& b) = 0;
  virtual void on_eof(Slot s) = 0;             // the peer finished sending (FIN)
  virtual void on_error(Slot s, int err) = 0;  // a recv or send failed: the peer is gone
  virtual void on_sent(Slot s) = 0;            // a send completed; see Io::queued()
  virtual void on_timer(Slot s) = 0;
  virtual void on_batch_end() = 0;  // after each batch of events
};

}  // namespace sm::proxy
