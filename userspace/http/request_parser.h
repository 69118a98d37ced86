// RequestParser: incremental, zero-copy parsing of an HTTP/1.1 request head (RFC 9112)
// with the smuggling checks of RFC 9112 6 and the semantics the proxy routes on.
#pragma once

#include <cstdint>
#include <string_view>

#include "http/head_parser.h"
#include "http/limits.h"
#include "http/message_head.h"
#include "http/parse_result.h"

namespace sm::http {

// Usage, once per recv on a connection:
//   ParseResult r = parser.parse(std::string_view(buf, filled));  // bytes since message start
//   need_more -> recv again (the same bytes, plus more, at the same or another address);
//   error     -> reply r.error.status and close; complete -> parser.head() is valid and the
//   body starts at r.consumed. reset() before the next message on the connection.
class RequestParser : private HeadParser {
 public:
  explicit RequestParser(const Limits& limits = {}) : HeadParser(limits) {}

  void reset() {
    reset_head();
    head_ = {};
  }
  // `buf` holds every byte of this message received so far, from its first byte. Earlier
  // bytes are not scanned again. Once complete or failed, returns the same result until
  // reset().
  ParseResult parse(std::string_view buf);
  // Valid after parse() returned complete, while the bytes of buf stay where they are.
  const RequestHead& head() const { return head_; }

 private:
  bool parse_request_line(std::string_view buf, std::string_view line);
  ParseResult finish(std::string_view buf);
  bool derive_authority(std::string_view host);

  RequestHead head_;
  // Start-line parts as offsets: the buffer may move before the head is complete.
  uint32_t method_off_ = 0, method_len_ = 0, target_off_ = 0, target_len_ = 0, version_off_ = 0;
};

}  // namespace sm::http
