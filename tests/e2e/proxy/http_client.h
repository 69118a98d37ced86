// A deliberately small HTTP/1.1 client for the e2e tier: raw bytes out, responses parsed
// strictly enough to notice a proxy that frames them wrong (Content-Length, chunked,
// until close, 1xx), on one connection that keeps whatever was read ahead (pipelining).
// Responses serialize to JSON, so a client in a child process can hand them back.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sm::test {

struct HttpResponse {
  int status = 0;     // 0: no (complete) response, see error
  std::string error;  // "", or "timeout", "eof", "reset", "malformed: ..."
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  std::string body;                                          // decoded (chunked framing removed)
  bool chunked = false;
  int elapsed_ms = 0;  // from the request's last byte sent to the response's last byte

  // The first value of `name` (lower case), or "" when absent.
  std::string header(std::string_view name) const;
  bool has(std::string_view name) const;
  size_t count(std::string_view name) const;
  std::string serialize() const;
  static HttpResponse parse(const std::string& s);
  static std::string serialize_list(const std::vector<HttpResponse>& list);
  static std::vector<HttpResponse> parse_list(const std::string& s);
};

// Prints status, error and headers: what a failed assertion should show.
std::ostream& operator<<(std::ostream& os, const HttpResponse& r);

class HttpConn {
 public:
  // Connects (timeout 2 s); ok() says whether it did.
  HttpConn(const std::string& addr, uint16_t port);
  ~HttpConn();
  HttpConn(const HttpConn&) = delete;
  HttpConn& operator=(const HttpConn&) = delete;
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  int connect_error() const { return err_; }

  bool send(std::string_view bytes);
  // Reads one response (a 1xx is returned on its own). `head` for a HEAD request.
  HttpResponse read(int timeout_ms = 5000, bool head = false);
  // Raw bytes: whatever arrives within timeout_ms, up to `max` bytes, at least `want`
  // (stops early once `want` bytes are in).
  std::string read_raw(size_t want, int timeout_ms = 5000);
  // What the peer did with the connection within timeout_ms: "eof" (FIN), "reset",
  // "open" (nothing happened) or "data" (bytes arrived; they stay buffered).
  std::string wait_closed(int timeout_ms);
  void close();

 private:
  // Reads more into buf_; false on EOF/error/timeout (error_ says which).
  bool fill(int timeout_ms);

  int fd_ = -1;
  int err_ = 0;
  std::string buf_;
  std::string error_;
};

// "GET <path> HTTP/1.1\r\nHost: <host>\r\n<extra>\r\n": extra lines end in \r\n.
std::string get(const std::string& host, const std::string& path, const std::string& extra = "");
// A POST with Content-Length.
std::string post(const std::string& host, const std::string& path, std::string_view body,
                 const std::string& extra = "");

// Deterministic pseudo-random bytes (xorshift), the same for the same seed.
std::string random_bytes(size_t n, uint32_t seed);
std::string sha256_hex(std::string_view data);
std::string sha256_file(const std::string& path);

}  // namespace sm::test
