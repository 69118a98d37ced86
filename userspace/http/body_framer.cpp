// Chunked-body syntax (RFC 9112 7.1) as a byte-level state machine, with chunk data skipped
// in bulk; fixed-length bodies are just counted.
#include "http/body_framer.h"

#include <algorithm>
#include <iterator>

#include "http/ascii.h"

namespace sm::http {

namespace {
// RFC 9110 6.5.1: fields that frame the message must not appear as trailers. A recipient
// that merges trailers into the header section (some do) would reframe the message.
constexpr std::string_view kFramingFields[] = {"content-length", "transfer-encoding"};
}  // namespace

void BodyFramer::match_trailer_name(char c) {
  for (size_t i = 0; i < std::size(kFramingFields); ++i) {
    const std::string_view name = kFramingFields[i];
    if (name_pos_ >= name.size() || ascii::lower(c) != name[name_pos_]) {
      name_match_ &= static_cast<uint8_t>(~(1u << i));
    }
  }
  ++name_pos_;
}

bool BodyFramer::trailer_is_framing_field() const {
  for (size_t i = 0; i < std::size(kFramingFields); ++i) {
    if ((name_match_ & (1u << i)) && name_pos_ == kFramingFields[i].size()) return true;
  }
  return false;
}

void BodyFramer::reset(BodyFraming framing) {
  kind_ = framing.kind;
  failed_ = false;
  error_ = {};
  remaining_ = 0;
  line_bytes_ = 0;
  trailer_bytes_ = 0;
  switch (framing.kind) {
    case BodyKind::none:
      state_ = State::done;
      break;
    case BodyKind::length:
      remaining_ = framing.length;
      state_ = remaining_ == 0 ? State::done : State::raw;
      break;
    case BodyKind::chunked:
      state_ = State::size_first;
      break;
    case BodyKind::until_close:
    case BodyKind::tunnel:
      state_ = State::raw;
      break;
  }
}

ParseResult BodyFramer::fail(uint16_t status, std::string_view reason) {
  failed_ = true;
  error_ = {status, reason};
  return {ParseStatus::error, 0, error_};
}

ParseResult BodyFramer::feed(std::string_view bytes) {
  if (failed_) return {ParseStatus::error, 0, error_};
  if (state_ == State::done) return ParseResult::done(0);
  if (state_ == State::raw) {
    if (kind_ != BodyKind::length) return ParseResult::more(bytes.size());  // ends at EOF
    const auto n = static_cast<size_t>(std::min<uint64_t>(remaining_, bytes.size()));
    remaining_ -= n;
    if (remaining_ > 0) return ParseResult::more(n);
    state_ = State::done;
    return ParseResult::done(n);
  }
  size_t i = 0;
  while (i < bytes.size()) {
    if (state_ == State::data) {
      const auto n = static_cast<size_t>(std::min<uint64_t>(remaining_, bytes.size() - i));
      i += n;
      remaining_ -= n;
      if (remaining_ == 0) state_ = State::data_cr;
      continue;
    }
    if (!step(bytes[i++])) return {ParseStatus::error, 0, error_};
    if (state_ == State::done) return ParseResult::done(i);
  }
  return ParseResult::more(i);
}

bool BodyFramer::step(char c) {
  using ascii::is_tchar;
  auto bad = [this](uint16_t status, std::string_view reason) {
    fail(status, reason);
    return false;
  };
  // Counts the chunk-size line without its CRLF (State order: size .. ext_value_end).
  if (state_ >= State::size && state_ < State::size_lf && c != '\r' &&
      ++line_bytes_ > limits_.max_chunk_line) {
    return bad(400, "chunk size line too long");
  }
  if (state_ >= State::trailer_first && ++trailer_bytes_ > limits_.max_trailer_bytes) {
    return bad(431, "trailer section too large");
  }
  switch (state_) {
    case State::size_first: {
      const int h = ascii::hex_value(c);
      if (h < 0) return bad(400, "invalid chunk size");
      remaining_ = static_cast<uint64_t>(h);
      line_bytes_ = 1;
      state_ = State::size;
      return true;
    }
    case State::size: {
      const int h = ascii::hex_value(c);
      if (h >= 0) {
        if (remaining_ > (UINT64_MAX >> 4)) return bad(400, "chunk size too large");
        remaining_ = (remaining_ << 4) | static_cast<uint64_t>(h);
      } else if (c == ';') {
        state_ = State::ext_name_first;
      } else if (c == '\r') {
        state_ = State::size_lf;
      } else {
        return bad(400, "invalid chunk size");
      }
      return true;
    }
    // chunk-ext = *( ";" name [ "=" ( token / quoted-string ) ] ). RFC 9112 7.1.1 also
    // allows BWS around ';' and '=', but the bytes go to a server we do not know, and
    // parsers disagree on it (llhttp refuses it): the strict subset is what all agree on.
    case State::ext_name_first:
      if (!is_tchar(c)) return bad(400, "invalid chunk extension");
      state_ = State::ext_name;
      return true;
    case State::ext_name:
      if (c == '=') {
        state_ = State::ext_value_first;
      } else if (c == ';') {
        state_ = State::ext_name_first;
      } else if (c == '\r') {
        state_ = State::size_lf;
      } else if (!is_tchar(c)) {
        return bad(400, "invalid chunk extension");
      }
      return true;
    case State::ext_value_first:
      if (c == '"') {
        state_ = State::ext_quoted;
      } else if (is_tchar(c)) {
        state_ = State::ext_token;
      } else {
        return bad(400, "invalid chunk extension");
      }
      return true;
    case State::ext_token:
      if (is_tchar(c)) return true;
      [[fallthrough]];
    case State::ext_value_end:
      if (c == ';') {
        state_ = State::ext_name_first;
      } else if (c == '\r') {
        state_ = State::size_lf;
      } else {
        return bad(400, "invalid chunk extension");
      }
      return true;
    case State::ext_quoted: {
      // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
      const auto u = static_cast<unsigned char>(c);
      if (c == '"') {
        state_ = State::ext_value_end;
      } else if (c == '\\') {
        state_ = State::ext_quoted_pair;
      } else if (!(c == '\t' || (u >= 0x20 && u != 0x7f))) {
        return bad(400, "invalid chunk extension");
      }
      return true;
    }
    case State::ext_quoted_pair: {
      const auto u = static_cast<unsigned char>(c);
      if (!(c == '\t' || (u >= 0x20 && u != 0x7f))) return bad(400, "invalid chunk extension");
      state_ = State::ext_quoted;
      return true;
    }
    case State::size_lf:
      if (c != '\n') return bad(400, "chunk size line not terminated by CRLF");
      line_bytes_ = 0;
      state_ = remaining_ == 0 ? State::trailer_first : State::data;
      return true;
    case State::data_cr:
      if (c != '\r') return bad(400, "chunk data not followed by CRLF");
      state_ = State::data_lf;
      return true;
    case State::data_lf:
      if (c != '\n') return bad(400, "chunk data not followed by CRLF");
      state_ = State::size_first;
      return true;
    // trailer-section = *( field-line CRLF ), then the CRLF that ends the message. Field
    // lines get the head's checks: no obs-fold, no whitespace before ':', no CTLs.
    case State::trailer_first:
      if (c == '\r') {
        state_ = State::final_lf;
      } else if (is_tchar(c)) {
        state_ = State::trailer_name;
        name_pos_ = 0;
        name_match_ = (1u << std::size(kFramingFields)) - 1;
        match_trailer_name(c);
      } else {
        return bad(400, "invalid trailer field");
      }
      return true;
    case State::trailer_name:
      if (c == ':') {
        if (trailer_is_framing_field()) return bad(400, "framing field in trailer section");
        state_ = State::trailer_value;
      } else if (is_tchar(c)) {
        match_trailer_name(c);
      } else {
        return bad(400, "invalid trailer field");
      }
      return true;
    case State::trailer_value:
      if (c == '\r') {
        state_ = State::trailer_lf;
      } else if (!ascii::is_field_char(c)) {
        return bad(400, "invalid trailer field");
      }
      return true;
    case State::trailer_lf:
    case State::final_lf:
      if (c != '\n') return bad(400, "trailer line not terminated by CRLF");
      state_ = state_ == State::final_lf ? State::done : State::trailer_first;
      return true;
    case State::done:
    case State::raw:
    case State::data:
      break;
  }
  return bad(400, "internal framing state");
}

}  // namespace sm::http
