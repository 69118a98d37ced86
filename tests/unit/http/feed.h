// Test helpers: feed a message to a head parser whole, or byte by byte from a buffer that
// moves on every call (as a growing receive buffer may), and print heads for comparison.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "http/body_framer.h"
#include "http/message_head.h"
#include "http/parse_result.h"

namespace sm::http::test {

// Byte by byte; each call sees a fresh copy of the prefix at a new address. `storage`
// keeps the last copy, which the parsed head points into.
template <class Parser>
ParseResult feed_bytewise(Parser& parser, std::string_view msg, std::unique_ptr<char[]>& storage) {
  ParseResult r;
  for (size_t n = 1; n <= msg.size(); ++n) {
    auto copy = std::make_unique<char[]>(n);
    msg.copy(copy.get(), n);
    r = parser.parse(std::string_view(copy.get(), n));
    storage = std::move(copy);
    if (!r.need_more()) break;
  }
  return r;
}

// Everything a head means, on one line, so two parses compare with one EXPECT_EQ.
inline std::string describe(const RequestHead& h) {
  std::string s =
      std::string(h.method_text) + " " + std::string(h.target) + " " + std::string(h.version) +
      " form=" + std::to_string(int(h.target_form)) + " authority=" + std::string(h.authority) +
      " body=" + std::to_string(int(h.body.kind)) + ":" + std::to_string(h.body.length) +
      " ka=" + std::to_string(h.keep_alive) + " expect=" + std::to_string(h.expect_continue) +
      " upgrade=" + std::to_string(h.upgrade) + " size=" + std::to_string(h.head_size);
  for (const Header& f : h.headers)
    s += " [" + std::string(f.name) + ": " + std::string(f.value) + "]";
  return s;
}

inline std::string describe(const ResponseHead& h) {
  std::string s = std::string(h.version) + " " + std::to_string(h.status) + " " +
                  std::string(h.reason) + " body=" + std::to_string(int(h.body.kind)) + ":" +
                  std::to_string(h.body.length) + " ka=" + std::to_string(h.keep_alive) +
                  " size=" + std::to_string(h.head_size);
  for (const Header& f : h.headers)
    s += " [" + std::string(f.name) + ": " + std::string(f.value) + "]";
  return s;
}

inline std::string describe(const ParseResult& r) {
  switch (r.status) {
    case ParseStatus::need_more:
      return "need_more " + std::to_string(r.consumed);
    case ParseStatus::complete:
      return "complete " + std::to_string(r.consumed);
    case ParseStatus::error:
      return "error " + std::to_string(r.error.status) + " " + std::string(r.error.reason);
  }
  return "?";
}

// Feeds `body` to a framer in pieces of `piece` bytes; returns the total consumed and the
// final result's status text.
inline std::string frame_in_pieces(BodyFraming framing, std::string_view body, size_t piece,
                                   const Limits& limits = {}) {
  BodyFramer framer(limits);
  framer.reset(framing);
  size_t total = 0;
  ParseResult r;
  for (size_t off = 0; off < body.size() || off == 0; off += piece) {
    r = framer.feed(body.substr(off, piece));
    total += r.consumed;
    if (!r.need_more()) break;
  }
  if (r.failed()) return describe(r);
  return (r.complete() ? "complete " : "need_more ") + std::to_string(total);
}

}  // namespace sm::http::test
