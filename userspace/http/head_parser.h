// HeadParser: what request and response head parsing share. It finds lines in a growing
// buffer without rescanning earlier bytes, checks limits, validates and records header
// fields as offsets (the buffer may move between calls), and gathers the framing facts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "http/ascii.h"
#include "http/header.h"
#include "http/header_list.h"
#include "http/limits.h"
#include "http/parse_result.h"

namespace sm::http {

// Field facts that framing and connection handling depend on, gathered while the fields
// are read so that the head is walked once.
struct FieldFacts {
  bool content_length_seen = false;
  uint64_t content_length = 0;
  bool transfer_encoding_seen = false;
  bool chunked_last = false;  // the final transfer coding (over all TE lines) is chunked
  uint32_t chunked_count = 0;
  bool other_coding = false;  // a coding other than chunked appeared
  bool close = false;         // Connection options
  bool keep_alive = false;
  bool connection_upgrade = false;
  bool expect_continue = false;
  uint32_t host_count = 0;
  int32_t host_index = -1;  // first Host field, index into the field list
  int32_t upgrade_index = -1;
};

class HeadParser {
 protected:
  explicit HeadParser(const Limits& limits);
  void reset_head();

  enum class Step : uint8_t { more, line, error };
  // Delivers the start line (without CRLF) once complete, skipping empty lines before it
  // (RFC 9112 2.2). Checks run in byte order, so feeding a head in pieces gives the same
  // error as feeding it whole: for a request the method is checked as it arrives, then the
  // line limit (414) applies, then the head limit (431), then the CRLF.
  Step take_start_line(std::string_view buf, bool is_request, std::string_view& line);
  bool in_fields() const { return in_fields_; }
  // Reads field lines up to the empty line that ends the head. `complete` when it is found.
  ParseResult take_fields(std::string_view buf);
  // The fields as views into `buf`, once the head is complete.
  HeaderList fields(std::string_view buf);

  ParseResult fail(uint16_t status, std::string_view reason) {
    result_ = ParseResult::fail(status, reason);
    return result_;
  }
  size_t head_end() const { return line_start_; }
  const FieldFacts& facts() const { return facts_; }
  // "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 2.3). False when malformed.
  static bool parse_version(std::string_view text, uint8_t& major, uint8_t& minor) {
    if (text.size() != 8 || text.substr(0, 5) != "HTTP/" || text[6] != '.' ||
        !ascii::is_digit(text[5]) || !ascii::is_digit(text[7])) {
      return false;
    }
    major = static_cast<uint8_t>(text[5] - '0');
    minor = static_cast<uint8_t>(text[7] - '0');
    return true;
  }
  // Offset of a view into the current buffer, for views kept across calls.
  static uint32_t offset_in(std::string_view buf, std::string_view part) {
    return static_cast<uint32_t>(part.data() - buf.data());
  }

  ParseResult result_;  // sticky once complete or failed

 private:
  struct FieldSpan {
    uint32_t name_off, name_len, value_off, value_len;
  };
  std::string_view within_limit(std::string_view buf) const;
  const char* find_lf(std::string_view buf);
  bool scan_method_prefix(std::string_view content);
  bool add_field(std::string_view buf, std::string_view line);
  bool note_field(std::string_view name, std::string_view value);
  bool note_content_length(std::string_view value);
  bool note_transfer_encoding(std::string_view value);
  void note_connection(std::string_view value);

  Limits limits_;
  bool in_fields_ = false;
  size_t line_start_ = 0;      // first byte of the line being read
  size_t scan_ = 0;            // bytes already searched for LF
  size_t method_scanned_ = 0;  // bytes of the start line checked by scan_method_prefix
  bool method_done_ = false;   // the SP after the method was seen
  FieldFacts facts_;
  std::vector<FieldSpan> spans_;  // capacity reserved once: no allocation per message
  std::vector<Header> fields_;
};

}  // namespace sm::http
