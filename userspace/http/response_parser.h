// ResponseParser: incremental, zero-copy parsing of an HTTP/1.1 response head, and its
// framing, which depends on the request it answers (RFC 9112 6.3).
#pragma once

#include <cstdint>
#include <string_view>

#include "http/head_parser.h"
#include "http/limits.h"
#include "http/message_head.h"
#include "http/method.h"
#include "http/parse_result.h"

namespace sm::http {

// Called like RequestParser. Every error carries 502: it is what the proxy answers its
// client when the upstream's response cannot be read.
class ResponseParser : private HeadParser {
 public:
  explicit ResponseParser(const Limits& limits = {}) : HeadParser(limits) {}

  // `request_method` is the method of the request this response answers: HEAD and
  // CONNECT change the framing.
  void reset(Method request_method = Method::get) {
    reset_head();
    head_ = {};
    request_method_ = request_method;
  }
  ParseResult parse(std::string_view buf);
  const ResponseHead& head() const { return head_; }

 private:
  bool parse_status_line(std::string_view buf, std::string_view line);
  ParseResult finish(std::string_view buf);
  ParseResult bad(std::string_view reason) { return fail(502, reason); }

  ResponseHead head_;
  Method request_method_ = Method::get;
  uint32_t line_off_ = 0;  // the status line, as an offset: the buffer may move
  uint32_t line_len_ = 0;
};

}  // namespace sm::http
