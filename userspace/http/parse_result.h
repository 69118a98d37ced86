// ParseResult: what every parser step returns. Errors carry the HTTP status the proxy
// should answer with and a short static reason; nothing on this path throws or allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sm::http {

enum class ParseStatus : uint8_t { need_more, complete, error };

struct ParseError {
  uint16_t status = 0;      // 400, 414, 431, 501, 505 for requests; 502 for responses
  std::string_view reason;  // static text, e.g. "Content-Length with Transfer-Encoding"
};

struct ParseResult {
  ParseStatus status = ParseStatus::need_more;
  // Head parsers: bytes of the head once complete (0 before). Body framer: bytes of this
  // call's input that belong to the body, also while need_more.
  size_t consumed = 0;
  ParseError error;

  bool complete() const { return status == ParseStatus::complete; }
  bool need_more() const { return status == ParseStatus::need_more; }
  bool failed() const { return status == ParseStatus::error; }

  static ParseResult more(size_t consumed = 0) { return {ParseStatus::need_more, consumed, {}}; }
  static ParseResult done(size_t consumed) { return {ParseStatus::complete, consumed, {}}; }
  static ParseResult fail(uint16_t status, std::string_view reason) {
    return {ParseStatus::error, 0, {status, reason}};
  }
};

}  // namespace sm::http
