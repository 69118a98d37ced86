// LlhttpRequestParser: Node.js's llhttp (Debian's node-llhttp sources) behind the calling
// convention of RequestParser and BodyFramer. Not on the proxy's data path: it is the
// reference that the differential fuzzer and the benchmark compare sm_http against.
#pragma once

#include <llhttp.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "http/header.h"
#include "http/parse_result.h"

namespace sm::http {

class LlhttpRequestParser {
 public:
  struct Head {
    std::string_view method;
    std::string_view target;
    uint8_t version_major = 0;
    uint8_t version_minor = 0;
    std::vector<Header> headers;  // values OWS-trimmed, like RequestParser's
    uint16_t flags = 0;           // llhttp_flags: F_CHUNKED, F_CONTENT_LENGTH...
    uint64_t content_length = 0;
    bool keep_alive = false;
    bool upgrade = false;  // CONNECT or Upgrade (llhttp's notion)
    size_t head_size = 0;
  };

  LlhttpRequestParser();
  LlhttpRequestParser(const LlhttpRequestParser&) = delete;  // llhttp keeps a pointer to us
  LlhttpRequestParser& operator=(const LlhttpRequestParser&) = delete;

  void reset();
  // Like RequestParser::parse: `buf` is the message so far, from its first byte, and must
  // not move between calls (llhttp hands out pointers into earlier pieces).
  ParseStatus parse_head(std::string_view buf);
  // Like BodyFramer::feed: the bytes after those given so far.
  ParseResult feed_body(std::string_view bytes);

  const Head& head() const { return head_; }
  llhttp_errno_t error() const { return llhttp_get_errno(&parser_); }
  const char* reason() const { return llhttp_get_error_reason(&parser_); }
  // Where in the bytes of the last feed_body() call llhttp failed.
  size_t body_error_offset() const { return body_error_offset_; }

 private:
  static LlhttpRequestParser& self(llhttp_t* p) {
    return *static_cast<LlhttpRequestParser*>(p->data);
  }
  static void extend(std::string_view& span, const char* at, size_t n);

  llhttp_settings_t settings_{};
  llhttp_t parser_{};
  Head head_;
  std::string_view name_, value_;  // the field being read
  size_t fed_ = 0;                 // bytes of the head buffer given to llhttp
  size_t body_error_offset_ = 0;
  bool head_done_ = false;
  bool message_done_ = false;
};

}  // namespace sm::http
