// Callbacks that collect llhttp's spans into views of the caller's buffer, pausing at the
// end of the head and at the end of the message to learn where each ends.
#include "http/llhttp_request_parser.h"

#include "http/ascii.h"

namespace sm::http {

LlhttpRequestParser::LlhttpRequestParser() {
  llhttp_settings_init(&settings_);
  settings_.on_method = [](llhttp_t* p, const char* at, size_t n) {
    extend(self(p).head_.method, at, n);
    return 0;
  };
  settings_.on_url = [](llhttp_t* p, const char* at, size_t n) {
    extend(self(p).head_.target, at, n);
    return 0;
  };
  settings_.on_header_field = [](llhttp_t* p, const char* at, size_t n) {
    extend(self(p).name_, at, n);
    return 0;
  };
  settings_.on_header_value = [](llhttp_t* p, const char* at, size_t n) {
    extend(self(p).value_, at, n);
    return 0;
  };
  settings_.on_header_value_complete = [](llhttp_t* p) {
    LlhttpRequestParser& s = self(p);
    s.head_.headers.push_back({s.name_, ascii::trim_ows(s.value_)});
    s.name_ = s.value_ = {};
    return 0;
  };
  settings_.on_headers_complete = [](llhttp_t* p) {
    LlhttpRequestParser& s = self(p);
    s.head_done_ = true;
    s.head_.version_major = p->http_major;
    s.head_.version_minor = p->http_minor;
    s.head_.flags = p->flags;
    s.head_.content_length = p->content_length;
    s.head_.keep_alive = llhttp_should_keep_alive(p) != 0;
    s.head_.upgrade = p->upgrade != 0;
    return static_cast<int>(HPE_PAUSED);
  };
  settings_.on_message_complete = [](llhttp_t* p) {
    self(p).message_done_ = true;
    return static_cast<int>(HPE_PAUSED);
  };
  llhttp_init(&parser_, HTTP_REQUEST, &settings_);
  parser_.data = this;
  head_.headers.reserve(128);
}

void LlhttpRequestParser::reset() {
  llhttp_init(&parser_, HTTP_REQUEST, &settings_);
  parser_.data = this;
  head_.method = head_.target = {};
  head_.headers.clear();
  head_.head_size = 0;
  name_ = value_ = {};
  fed_ = 0;
  head_done_ = message_done_ = false;
}

// llhttp reports a span in several calls when it arrives in several pieces; the pieces are
// adjacent in the caller's buffer, except for obs-fold continuations, which span the CRLF.
void LlhttpRequestParser::extend(std::string_view& span, const char* at, size_t n) {
  if (span.data() == nullptr) {
    span = {at, n};
  } else {
    span = {span.data(), static_cast<size_t>(at + n - span.data())};
  }
}

ParseStatus LlhttpRequestParser::parse_head(std::string_view buf) {
  if (head_done_) return ParseStatus::complete;
  if (llhttp_get_errno(&parser_) != HPE_OK) return ParseStatus::error;
  if (buf.size() == fed_) return ParseStatus::need_more;  // llhttp does p + 0 on a null p
  const llhttp_errno_t e = llhttp_execute(&parser_, buf.data() + fed_, buf.size() - fed_);
  fed_ = buf.size();
  if (e == HPE_PAUSED && head_done_) {
    head_.head_size = static_cast<size_t>(llhttp_get_error_pos(&parser_) - buf.data());
    llhttp_resume(&parser_);
    return ParseStatus::complete;
  }
  return e == HPE_OK ? ParseStatus::need_more : ParseStatus::error;
}

ParseResult LlhttpRequestParser::feed_body(std::string_view bytes) {
  if (message_done_) return ParseResult::done(0);
  // A message without a body completes on an execute of 0 bytes, but llhttp computes
  // p + 0, which a null p makes undefined.
  static constexpr char kNothing = 0;
  const char* data = bytes.data() != nullptr ? bytes.data() : &kNothing;
  const llhttp_errno_t e = llhttp_execute(&parser_, data, bytes.size());
  if (e == HPE_PAUSED && message_done_) {
    return ParseResult::done(static_cast<size_t>(llhttp_get_error_pos(&parser_) - data));
  }
  if (e == HPE_OK) return ParseResult::more(bytes.size());
  if (e == HPE_PAUSED_UPGRADE) return ParseResult::done(0);
  body_error_offset_ = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
  return ParseResult::fail(400, llhttp_get_error_reason(&parser_));
}

}  // namespace sm::http
