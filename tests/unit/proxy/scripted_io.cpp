// ScriptedIo; see scripted_io.h.
#include "scripted_io.h"

#include <algorithm>

namespace sm::test {

using proxy::CloseHow;
using proxy::Endpoint;
using proxy::Nanos;
using proxy::RecvBuf;
using proxy::SendQueue;

ScriptedIo::ScriptedIo() = default;

ScriptedIo::~ScriptedIo() = default;

void ScriptedIo::violation(const std::string& what) {
  violations_ += what + "\n";
}

ScriptedIo::Conn& ScriptedIo::live(Slot s, const char* what) {
  static Conn dead;
  if (s >= conns_.size() || !conns_[s].open) {
    violation(std::string(what) + " on closed slot " + std::to_string(s));
    dead = Conn{};
    return dead;
  }
  return conns_[s];
}

Slot ScriptedIo::alloc(bool upstream) {
  Slot s;
  if (!free_.empty()) {
    s = free_.back();
    free_.pop_back();
  } else {
    s = static_cast<Slot>(conns_.size());
    conns_.emplace_back();
  }
  conns_[s] = Conn{};
  conns_[s].open = true;
  conns_[s].upstream = upstream;
  return s;
}

void ScriptedIo::done() {
  deliver_resumed();
  if (!batching) end_batch();
}

void ScriptedIo::deliver_resumed() {
  while (!resumed_.empty()) {
    Slot s = resumed_.front();
    resumed_.erase(resumed_.begin());
    Conn& k = conns_[s];
    if (!k.open || !k.reading) continue;
    std::string waiting = std::exchange(k.waiting, {});
    deliver(s, waiting, 0, false);
    Conn& after = conns_[s];
    if (after.open && after.reading && after.eof && !after.eof_told && after.waiting.empty()) {
      after.eof_told = true;
      events_->on_eof(s);
    }
  }
}

void ScriptedIo::end_batch() {
  events_->on_batch_end();
}

// ---- the world ----------------------------------------------------------------------------

Slot ScriptedIo::accept(proxy::Listener l, std::optional<Endpoint> dst,
                        std::optional<Endpoint> local) {
  Slot s = alloc(false);
  events_->on_accepted(s, l, proxy::Accepted{dst, local});
  done();
  return s;
}

void ScriptedIo::deliver(Slot s, std::string_view bytes, size_t piece, bool ignore_pause) {
  if (piece == 0) piece = bytes.size();
  while (!bytes.empty()) {
    Conn& k = conns_[s];
    if (!k.open) return;
    if (!k.reading && !ignore_pause) {  // paused meanwhile: the rest waits in the socket
      k.waiting.append(bytes);
      return;
    }
    size_t n = std::min(piece, bytes.size());
    uint16_t id = next_buf_++;
    std::string& stored = buffers_[id];
    stored.assign(bytes.substr(0, n));
    ++lent_;
    bytes.remove_prefix(n);
    events_->on_data(s, RecvBuf{stored.data(), static_cast<uint32_t>(n), id});
  }
}

void ScriptedIo::peer_sends(Slot s, std::string_view bytes, size_t piece, bool ignore_pause) {
  Conn& k = live(s, "peer_sends");
  if (!k.open || k.eof) return;
  if (!k.reading && !ignore_pause)
    k.waiting.append(bytes);
  else  // with ignore_pause: completions posted before the pause took effect
    deliver(s, bytes, piece, ignore_pause);
  done();
}

void ScriptedIo::peer_closes(Slot s) {
  Conn& k = live(s, "peer_closes");
  if (!k.open || k.eof) return;
  k.eof = true;
  if (k.reading && k.waiting.empty()) {
    k.eof_told = true;
    events_->on_eof(s);
  }
  // else: told after the data that waits, once reading resumes
  done();
}

void ScriptedIo::peer_fails(Slot s, int err) {
  Conn& k = live(s, "peer_fails");
  if (!k.open) return;
  k.eof = k.eof_told = true;
  events_->on_error(s, err);
  done();
}

void ScriptedIo::connect_succeeds(Slot s) {
  Conn& k = live(s, "connect_succeeds");
  if (!k.open || !k.connecting) return;
  k.connecting = false;
  events_->on_connected(s);
  done();
}

void ScriptedIo::connect_fails(Slot s, int err) {
  Conn& k = live(s, "connect_fails");
  if (!k.open || !k.connecting) return;
  events_->on_connect_failed(s, err);
  done();
}

std::string ScriptedIo::peer_reads(Slot s, size_t max) {
  Conn& k = live(s, "peer_reads");
  std::string out;
  if (!k.open || k.connecting) return out;
  while (!k.sendq.empty() && out.size() < max) {
    Chunk& c = k.sendq.front();
    size_t n = std::min(max - out.size(), c.bytes.size());
    out.append(c.bytes, 0, n);
    c.bytes.erase(0, n);
    if (!c.bytes.empty()) break;
    if (c.buf >= 0) {
      buffers_.erase(static_cast<uint16_t>(c.buf));
      --lent_;
    }
    k.sendq.pop_front();
  }
  if (!out.empty()) {
    events_->on_sent(s);
    done();
  }
  return out;
}

void ScriptedIo::advance(std::chrono::nanoseconds dt) {
  const Nanos until = now_ + static_cast<Nanos>(dt.count());
  for (;;) {
    Slot due = proxy::kNoSlot;
    Nanos at = until;
    for (Slot s = 0; s < conns_.size(); ++s)
      if (conns_[s].open && conns_[s].timer && *conns_[s].timer <= at) {
        at = *conns_[s].timer;
        due = s;
      }
    if (due == proxy::kNoSlot) break;
    now_ = std::max(now_, at);
    conns_[due].timer.reset();
    events_->on_timer(due);
    done();
  }
  now_ = until;
}

size_t ScriptedIo::queued_bytes(Slot s) const {
  size_t n = 0;
  for (const Chunk& c : conns_.at(s).sendq) n += c.bytes.size();
  return n;
}

// ---- proxy::Io ----------------------------------------------------------------------------

void ScriptedIo::pause_reading(Slot s) {
  live(s, "pause_reading").reading = false;
}

void ScriptedIo::resume_reading(Slot s) {
  Conn& k = live(s, "resume_reading");
  if (!k.open || k.reading) return;
  k.reading = true;
  if (!k.waiting.empty() || (k.eof && !k.eof_told)) resumed_.push_back(s);
}

void ScriptedIo::release(const RecvBuf& b) {
  if (buffers_.erase(b.id) != 1) {
    violation("buffer " + std::to_string(b.id) + " given back twice (or never lent)");
    return;
  }
  --lent_;
}

void ScriptedIo::send(Slot s, const RecvBuf& b) {
  Conn& k = live(s, "send(buffer)");
  if (!buffers_.count(b.id)) violation("sending buffer " + std::to_string(b.id) + " not lent");
  if (!k.open || b.len == 0) {
    release(b);
    return;
  }
  k.sendq.push_back({std::string(b.data, b.len), b.id});
}

void ScriptedIo::send(Slot s, std::string_view bytes) {
  Conn& k = live(s, "send(bytes)");
  if (!k.open || bytes.empty()) return;
  k.sendq.push_back({std::string(bytes), -1});
}

void ScriptedIo::send(Slot s, std::string* owned) {
  Conn& k = live(s, "send(string)");
  if (k.open && !owned->empty()) k.sendq.push_back({*owned, -1});
  return_string(owned);
}

std::string* ScriptedIo::take_string() {
  ++strings_out_;
  return new std::string();
}

void ScriptedIo::return_string(std::string* s) {
  --strings_out_;
  delete s;
}

SendQueue ScriptedIo::queued(Slot s) const {
  SendQueue q;
  if (s >= conns_.size() || !conns_[s].open) return q;
  for (const Chunk& c : conns_[s].sendq) {
    q.bytes += c.bytes.size();
    q.buffers += c.buf >= 0;
  }
  return q;
}

void ScriptedIo::shutdown_write(Slot s) {
  live(s, "shutdown_write").fin = true;
}

Slot ScriptedIo::connect(const Endpoint& target, const std::optional<IpAddr>& source, int* err) {
  if (fail_next_connect) {
    *err = std::exchange(fail_next_connect, 0);
    return proxy::kNoSlot;
  }
  Slot s = alloc(true);
  conns_[s].connecting = true;
  conns_[s].target = target;
  conns_[s].source = source;
  connect_order_.push_back(s);
  return s;
}

void ScriptedIo::close(Slot s, CloseHow how) {
  Conn& k = live(s, "close");
  if (!k.open) return;
  for (const Chunk& c : k.sendq)
    if (c.buf >= 0) {
      buffers_.erase(static_cast<uint16_t>(c.buf));
      --lent_;
    }
  k.sendq.clear();
  k.open = false;
  k.closed = how;
  k.timer.reset();
  free_.push_back(s);  // reused first, like the real loop
}

void ScriptedIo::set_timer(Slot s, Nanos at) {
  live(s, "set_timer").timer = at;
}

void ScriptedIo::cancel_timer(Slot s) {
  live(s, "cancel_timer").timer.reset();
}

}  // namespace sm::test
