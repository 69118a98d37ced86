// Line finding, limits, field validation and framing facts shared by both head parsers.
#include "http/head_parser.h"

#include <algorithm>
#include <cstring>

#include "http/ascii.h"
#include "http/list_reader.h"

namespace sm::http {

HeadParser::HeadParser(const Limits& limits) : limits_(limits) {
  spans_.reserve(limits_.max_headers);
  fields_.reserve(limits_.max_headers);
}

void HeadParser::reset_head() {
  result_ = {};
  in_fields_ = false;
  line_start_ = 0;
  scan_ = 0;
  method_scanned_ = 0;
  method_done_ = false;
  facts_ = {};
  spans_.clear();
  fields_.clear();
}

// Resumes the LF search where the previous call stopped: each byte is searched once, so a
// head arriving in n pieces costs O(head), not O(n * head).
const char* HeadParser::find_lf(std::string_view buf) {
  if (scan_ >= buf.size()) return nullptr;
  const void* lf = std::memchr(buf.data() + scan_, '\n', buf.size() - scan_);
  if (lf == nullptr) {
    scan_ = buf.size();
    return nullptr;
  }
  scan_ = static_cast<size_t>(static_cast<const char*>(lf) - buf.data()) + 1;
  return static_cast<const char*>(lf);
}

// Checks the method bytes as they arrive, so bytes that are not HTTP (a TLS ClientHello, a
// binary protocol) are rejected after the first few bytes instead of after a timeout. Only
// the first max_start_line bytes are looked at: beyond that the line is over its limit
// anyway, whether it arrives whole or in pieces.
bool HeadParser::scan_method_prefix(std::string_view content) {
  const size_t end = std::min<size_t>(content.size(), limits_.max_start_line);
  for (; !method_done_ && method_scanned_ < end; ++method_scanned_) {
    const char c = content[method_scanned_];
    if (c == ' ') {
      method_done_ = true;
    } else if (!ascii::is_tchar(c)) {
      fail(400, "invalid character in method");
      return false;
    }
  }
  return true;
}

// Only the first max_head_bytes of `buf` are ever looked at: a head must end within them.
// So a byte past the limit can never decide an error, and the result is the same however
// the bytes were split into calls.
std::string_view HeadParser::within_limit(std::string_view buf) const {
  return buf.substr(0, std::min<size_t>(buf.size(), limits_.max_head_bytes));
}

HeadParser::Step HeadParser::take_start_line(std::string_view buf, bool is_request,
                                             std::string_view& line) {
  const std::string_view head = within_limit(buf);
  for (;;) {
    const char* lf = find_lf(head);
    const size_t end = lf ? static_cast<size_t>(lf - head.data()) : head.size();
    std::string_view content = head.substr(line_start_, end - line_start_);
    // A CR is the line's terminator when an LF follows it, or may become one when it is
    // the last byte seen so far.
    const bool cr = !content.empty() && content.back() == '\r';
    if (cr) content.remove_suffix(1);
    if (lf && cr && content.empty()) {  // an empty line before the start line: skip it
      line_start_ = scan_;
      continue;
    }
    if (is_request && !scan_method_prefix(content)) return Step::error;
    if (content.size() > limits_.max_start_line) {
      fail(414, is_request ? "request line too long" : "status line too long");
      return Step::error;
    }
    if (!lf) {
      if (buf.size() <= limits_.max_head_bytes) return Step::more;
      fail(431, "header section too large");
      return Step::error;
    }
    if (!cr) {
      fail(400, "line not terminated by CRLF");
      return Step::error;
    }
    line = content;
    line_start_ = scan_;
    in_fields_ = true;
    return Step::line;
  }
}

ParseResult HeadParser::take_fields(std::string_view buf) {
  const std::string_view head = within_limit(buf);
  for (;;) {
    const char* lf = find_lf(head);
    if (!lf) {
      if (buf.size() <= limits_.max_head_bytes) return ParseResult::more();
      return fail(431, "header section too large");
    }
    std::string_view line =
        head.substr(line_start_, static_cast<size_t>(lf - head.data()) - line_start_);
    if (line.empty() || line.back() != '\r') return fail(400, "line not terminated by CRLF");
    line.remove_suffix(1);
    line_start_ = scan_;
    if (line.empty()) return ParseResult::done(line_start_);
    if (!add_field(buf, line)) return result_;
  }
}

bool HeadParser::add_field(std::string_view buf, std::string_view line) {
  if (ascii::is_ows(line.front())) {
    // RFC 9112 5.2: obs-fold is rejected, and so is whitespace before the first field
    // (2.2), which some parsers would glue to the start line.
    fail(400, spans_.empty() ? "whitespace before first header field" : "obsolete line folding");
    return false;
  }
  if (spans_.size() >= limits_.max_headers) {
    fail(431, "too many header fields");
    return false;
  }
  size_t colon = 0;
  while (colon < line.size() && ascii::is_tchar(line[colon])) ++colon;
  if (colon == line.size()) {
    fail(400, "header field without colon");
    return false;
  }
  if (line[colon] != ':') {
    // RFC 9112 5.1: "Content-Length : 5" must be rejected, never read as another field.
    fail(400, ascii::is_ows(line[colon]) ? "whitespace before colon"
                                         : "invalid character in header name");
    return false;
  }
  if (colon == 0) {
    fail(400, "empty header name");
    return false;
  }
  const std::string_view name = line.substr(0, colon);
  std::string_view value = line.substr(colon + 1);
  for (char c : value) {
    // CTLs (bare CR, NUL, DEL...) are refused rather than replaced: a field we forward
    // must mean the same to every hop.
    if (!ascii::is_field_char(c)) {
      fail(400, "invalid character in header value");
      return false;
    }
  }
  value = ascii::trim_ows(value);
  if (!note_field(name, value)) return false;
  spans_.push_back({offset_in(buf, name), static_cast<uint32_t>(name.size()), offset_in(buf, value),
                    static_cast<uint32_t>(value.size())});
  return true;
}

// Dispatch on length first: most fields are none of these and cost one switch.
bool HeadParser::note_field(std::string_view name, std::string_view value) {
  const auto index = static_cast<int32_t>(spans_.size());
  switch (name.size()) {
    case 4:
      if (ascii::iequals(name, "host")) {
        if (facts_.host_count++ == 0) facts_.host_index = index;
      }
      break;
    case 6:
      if (ascii::iequals(name, "expect") && list_contains(value, "100-continue")) {
        facts_.expect_continue = true;
      }
      break;
    case 7:
      if (ascii::iequals(name, "upgrade") && facts_.upgrade_index < 0) facts_.upgrade_index = index;
      break;
    case 10:
      if (ascii::iequals(name, "connection")) note_connection(value);
      break;
    case 14:
      if (ascii::iequals(name, "content-length")) return note_content_length(value);
      break;
    case 17:
      if (ascii::iequals(name, "transfer-encoding")) return note_transfer_encoding(value);
      break;
    default:
      break;
  }
  return true;
}

// RFC 9110 8.6: 1*DIGIT. A list of identical values ("5, 5", or the same field twice) is
// one length and accepted; differing values are a smuggling attempt. Empty elements are
// refused here, unlike in other lists: "5," is not something a client sends by mistake.
bool HeadParser::note_content_length(std::string_view value) {
  ListReader list(value);
  std::string_view item;
  bool any = false;
  while (list.next(item)) {
    uint64_t n = 0;
    for (char c : item) {
      if (!ascii::is_digit(c)) {
        fail(400, "invalid Content-Length");
        return false;
      }
      const auto d = static_cast<uint64_t>(c - '0');
      if (n > (UINT64_MAX - d) / 10) {
        fail(400, "Content-Length too large");
        return false;
      }
      n = n * 10 + d;
    }
    if (facts_.content_length_seen && n != facts_.content_length) {
      fail(400, "conflicting Content-Length values");
      return false;
    }
    facts_.content_length_seen = true;
    facts_.content_length = n;
    any = true;
  }
  if (!any || list.had_empty()) {
    fail(400, "invalid Content-Length");
    return false;
  }
  return true;
}

// Only the order of codings matters here: whether chunked is final and alone decides the
// framing; what to do with other codings is the request/response parser's call. Empty
// elements are refused: a server that reads "chunked," as ending in an empty coding would
// not see chunked as final, and frame the body differently.
bool HeadParser::note_transfer_encoding(std::string_view value) {
  ListReader list(value);
  std::string_view item;
  bool any = false;
  while (list.next(item)) {
    const size_t semi = item.find(';');
    const std::string_view coding = ascii::trim_ows(item.substr(0, semi));
    if (!ascii::all_of(coding, ascii::kTchar)) {
      fail(400, "invalid Transfer-Encoding");
      return false;
    }
    if (ascii::iequals(coding, "chunked")) {
      if (semi != std::string_view::npos) {  // chunked takes no parameters
        fail(400, "invalid Transfer-Encoding");
        return false;
      }
      ++facts_.chunked_count;
      facts_.chunked_last = true;
    } else {
      facts_.other_coding = true;
      facts_.chunked_last = false;
    }
    any = true;
  }
  if (!any || list.had_empty()) {
    fail(400, "invalid Transfer-Encoding");
    return false;
  }
  facts_.transfer_encoding_seen = true;
  return true;
}

void HeadParser::note_connection(std::string_view value) {
  ListReader list(value);
  std::string_view item;
  while (list.next(item)) {
    if (ascii::iequals(item, "close")) facts_.close = true;
    if (ascii::iequals(item, "keep-alive")) facts_.keep_alive = true;
    if (ascii::iequals(item, "upgrade")) facts_.connection_upgrade = true;
  }
}

HeaderList HeadParser::fields(std::string_view buf) {
  fields_.clear();
  for (const FieldSpan& s : spans_) {
    fields_.push_back({buf.substr(s.name_off, s.name_len), buf.substr(s.value_off, s.value_len)});
  }
  return HeaderList(fields_);
}

}  // namespace sm::http
