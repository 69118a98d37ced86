// Status line and response framing (RFC 9112 4, 6.3).
#include "http/response_parser.h"

#include "http/ascii.h"

namespace sm::http {

ParseResult ResponseParser::parse(std::string_view buf) {
  if (!result_.need_more()) return result_;
  if (!in_fields()) {
    std::string_view line;
    if (take_start_line(buf, /*is_request=*/false, line) != Step::line) {
      if (result_.failed()) result_.error.status = 502;
      return result_;
    }
    if (!parse_status_line(buf, line)) return result_;
  }
  const ParseResult r = take_fields(buf);
  if (r.failed()) return bad(r.error.reason);
  if (!r.complete()) return r;
  return finish(buf);
}

bool ResponseParser::parse_status_line(std::string_view buf, std::string_view line) {
  // status-line = HTTP-version SP 3DIGIT SP [reason-phrase]. A missing SP after the code
  // is common enough (and harmless) to accept.
  uint8_t major = 0, minor = 0;
  if (line.size() < 12 || !parse_version(line.substr(0, 8), major, minor) || line[8] != ' ' ||
      !ascii::is_digit(line[9]) || !ascii::is_digit(line[10]) || !ascii::is_digit(line[11]) ||
      (line.size() > 12 && line[12] != ' ')) {
    bad("malformed status line");
    return false;
  }
  if (major != 1) {
    bad("unsupported HTTP version in response");
    return false;
  }
  const auto status =
      static_cast<uint16_t>((line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0'));
  if (status < 100) {
    bad("malformed status line");
    return false;
  }
  const std::string_view reason = line.size() > 12 ? line.substr(13) : std::string_view{};
  for (char c : reason) {
    if (!ascii::is_field_char(c)) {
      bad("invalid character in reason phrase");
      return false;
    }
  }
  head_.version_minor = minor == 0 ? 0 : 1;
  head_.status = status;
  line_off_ = offset_in(buf, line);
  line_len_ = static_cast<uint32_t>(line.size());
  return true;
}

ParseResult ResponseParser::finish(std::string_view buf) {
  const FieldFacts& f = facts();
  const std::string_view line = buf.substr(line_off_, line_len_);
  head_.version = line.substr(0, 8);
  head_.reason = line.size() > 12 ? line.substr(13) : std::string_view{};
  head_.headers = fields(buf);
  head_.head_size = head_end();
  const bool http11 = head_.version_minor == 1;
  const uint16_t s = head_.status;

  // RFC 9112 6.3, in its order: the request and the status decide before any field does.
  if (s == 101) {
    head_.body = {BodyKind::tunnel, 0};
  } else if (s < 200) {
    head_.body = {BodyKind::none, 0};
  } else if (request_method_ == Method::connect && s < 300) {
    head_.body = {BodyKind::tunnel, 0};
  } else if (request_method_ == Method::head || s == 204 || s == 304) {
    head_.body = {BodyKind::none, 0};
  } else if (f.transfer_encoding_seen) {
    // TE would override Content-Length (RFC 9112 6.3 rule 3), but a response carrying
    // both is refused, as Envoy does: the next hop might pick the other one.
    if (!http11) return bad("Transfer-Encoding in an HTTP/1.0 response");
    if (f.content_length_seen) return bad("Content-Length with Transfer-Encoding");
    if (f.chunked_count > 1) return bad("chunked applied more than once");
    head_.body =
        f.chunked_last ? BodyFraming{BodyKind::chunked, 0} : BodyFraming{BodyKind::until_close, 0};
  } else if (f.content_length_seen) {
    head_.body = f.content_length > 0 ? BodyFraming{BodyKind::length, f.content_length}
                                      : BodyFraming{BodyKind::none, 0};
  } else {
    head_.body = {BodyKind::until_close, 0};
  }

  head_.keep_alive = (http11 ? !f.close : (f.keep_alive && !f.close)) &&
                     head_.body.kind != BodyKind::until_close &&
                     head_.body.kind != BodyKind::tunnel;
  result_ = ParseResult::done(head_.head_size);
  return result_;
}

}  // namespace sm::http
