// Reads one HTTP/1.1 response from Consul off a byte stream: the head with sm_http's
// ResponseParser, then the body by Content-Length, chunked coding (Go's net/http chunks any
// response it did not size) or until close. The body is kept whole: Consul's answers are
// JSON documents the caller parses at once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/response_parser.h"

namespace sm::consul {

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  bool keep_alive = true;

  // The first header called `lname` (lowercase), or "".
  std::string_view header(std::string_view lname) const;
};

class ResponseReader {
 public:
  enum class State : uint8_t { need_more, complete, error };

  explicit ResponseReader(size_t max_body = 64u << 20) : max_body_(max_body) {}
  void reset();
  // Appends received bytes. Bytes past a complete response are an error (Consul never
  // pipelines; we send one request at a time).
  State feed(std::string_view bytes);
  // The peer closed: completes a body delimited by the close, else an error.
  State on_close();

  State state() const { return state_; }
  const std::string& error() const { return error_; }
  HttpResponse& response() { return response_; }

 private:
  State fail(std::string why);
  State parse_body();
  // Decodes whole chunks from raw_[pos_...]; false on malformed framing.
  bool dechunk();

  size_t max_body_;
  State state_ = State::need_more;
  http::ResponseParser parser_;
  bool have_head_ = false;
  http::BodyKind kind_ = http::BodyKind::none;
  uint64_t length_ = 0;
  std::string raw_;          // bytes received, head included
  size_t pos_ = 0;           // first raw_ byte not yet decoded into the body
  bool last_chunk_ = false;  // the zero-size chunk was read; trailers follow
  bool body_done_ = false;
  HttpResponse response_;
  std::string error_;
};

}  // namespace sm::consul
