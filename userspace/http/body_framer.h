// BodyFramer: finds where a message body ends as its bytes stream past, so the proxy can
// forward exactly those bytes, unchanged, and knows where the next pipelined message starts.
// Chunked bodies are tracked, never de-chunked or copied (RFC 9112 7.1).
#pragma once

#include <cstdint>
#include <string_view>

#include "http/limits.h"
#include "http/message_head.h"
#include "http/parse_result.h"

namespace sm::http {

// Unlike the head parsers, feed() takes only the bytes not given before: body bytes are
// forwarded and dropped as they arrive. Usage, per recv after the head:
//   ParseResult r = framer.feed(bytes);
//   forward bytes[0, r.consumed);  complete -> bytes[r.consumed...] start the next message;
//   need_more -> every byte was body, recv again; error -> reset the connection (the head
//   went out already, so no status can be sent: errors carry 400, 431 for trailers).
class BodyFramer {
 public:
  explicit BodyFramer(const Limits& limits = {}) : limits_(limits) {}

  void reset(BodyFraming framing);
  ParseResult feed(std::string_view bytes);

  bool done() const { return state_ == State::done; }
  // Body bytes still expected: of the whole body for BodyKind::length, of the current
  // chunk's data for chunked.
  uint64_t remaining() const { return remaining_; }

 private:
  enum class State : uint8_t {
    done,
    raw,             // length, until_close, tunnel: no syntax to follow
    size_first,      // first hex digit of a chunk size
    size,            // more hex digits
    ext_name_first,  // after ';'
    ext_name,
    ext_value_first,
    ext_token,
    ext_quoted,
    ext_quoted_pair,
    ext_value_end,  // after a quoted value
    size_lf,        // LF ending the chunk-size line
    data,
    data_cr,  // CRLF after chunk data
    data_lf,
    trailer_first,  // start of a trailer field line, or CR of the final empty line
    trailer_name,
    trailer_value,
    trailer_lf,
    final_lf,
  };
  ParseResult fail(uint16_t status, std::string_view reason);
  // One byte of chunk framing syntax; false (with `error_` set) when it is invalid.
  bool step(char c);
  // Matches a trailer field name against the framing fields as its bytes arrive.
  void match_trailer_name(char c);
  bool trailer_is_framing_field() const;

  Limits limits_;
  BodyKind kind_ = BodyKind::none;
  State state_ = State::done;
  bool failed_ = false;
  uint64_t remaining_ = 0;
  uint32_t line_bytes_ = 0;     // of the current chunk-size line
  uint32_t trailer_bytes_ = 0;  // of the trailer section
  uint32_t name_pos_ = 0;       // bytes of the current trailer name
  uint8_t name_match_ = 0;      // bit i: the name so far is a prefix of kFramingFields[i]
  ParseError error_;
};

}  // namespace sm::http
