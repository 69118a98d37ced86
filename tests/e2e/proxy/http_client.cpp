// The e2e HTTP client; see http_client.h.
#include "http_client.h"

#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>

#include "harness.h"

namespace sm::test {
namespace {

using Clock = std::chrono::steady_clock;

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

nlohmann::json to_json(const HttpResponse& r) {
  return {{"status", r.status}, {"error", r.error},     {"headers", r.headers},
          {"body", r.body},     {"chunked", r.chunked}, {"elapsed_ms", r.elapsed_ms}};
}

HttpResponse from_json(const nlohmann::json& j) {
  HttpResponse r;
  r.status = j.value("status", 0);
  r.error = j.value("error", "");
  r.headers = j.value("headers", decltype(r.headers){});
  r.body = j.value("body", "");
  r.chunked = j.value("chunked", false);
  r.elapsed_ms = j.value("elapsed_ms", 0);
  return r;
}

// Bodies may be binary: JSON strings must be valid UTF-8, so bytes travel as latin-1 code
// points (each byte one character) and come back the same.
std::string bytes_to_utf8(const std::string& b) {
  std::string o;
  o.reserve(b.size());
  for (unsigned char c : b) {
    if (c < 0x80) {
      o += static_cast<char>(c);
    } else {
      o += static_cast<char>(0xc0 | (c >> 6));
      o += static_cast<char>(0x80 | (c & 0x3f));
    }
  }
  return o;
}

std::string utf8_to_bytes(const std::string& u) {
  std::string o;
  o.reserve(u.size());
  for (size_t i = 0; i < u.size(); ++i) {
    auto c = static_cast<unsigned char>(u[i]);
    if (c < 0x80 || i + 1 == u.size()) {
      o += static_cast<char>(c);
    } else {
      o += static_cast<char>(((c & 0x03) << 6) | (static_cast<unsigned char>(u[++i]) & 0x3f));
    }
  }
  return o;
}

nlohmann::json wire(const HttpResponse& r) {
  nlohmann::json j = to_json(r);
  j["body"] = bytes_to_utf8(r.body);
  return j;
}

HttpResponse unwire(const nlohmann::json& j) {
  HttpResponse r = from_json(j);
  r.body = utf8_to_bytes(r.body);
  return r;
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return "";
}

bool HttpResponse::has(std::string_view name) const {
  return count(name) > 0;
}

size_t HttpResponse::count(std::string_view name) const {
  size_t n = 0;
  for (const auto& [k, v] : headers) n += k == name;
  return n;
}

std::string HttpResponse::serialize() const {
  return wire(*this).dump();
}

HttpResponse HttpResponse::parse(const std::string& s) {
  auto j = nlohmann::json::parse(s, nullptr, false);
  if (j.is_discarded()) {
    HttpResponse r;
    r.error = "client: " + s;
    return r;
  }
  return unwire(j);
}

std::string HttpResponse::serialize_list(const std::vector<HttpResponse>& list) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& r : list) j.push_back(wire(r));
  return j.dump();
}

std::vector<HttpResponse> HttpResponse::parse_list(const std::string& s) {
  auto j = nlohmann::json::parse(s, nullptr, false);
  std::vector<HttpResponse> out;
  if (!j.is_array()) {
    HttpResponse r;
    r.error = "client: " + s;
    out.push_back(r);
    return out;
  }
  for (const auto& e : j) out.push_back(unwire(e));
  return out;
}

std::ostream& operator<<(std::ostream& os, const HttpResponse& r) {
  os << "HTTP " << r.status;
  if (!r.error.empty()) os << " (error: " << r.error << ")";
  for (const auto& [k, v] : r.headers) os << "\n  " << k << ": " << v;
  os << "\n  [" << r.body.size() << " body bytes" << (r.chunked ? ", chunked" : "") << "] "
     << r.body.substr(0, 200);
  return os;
}

HttpConn::HttpConn(const std::string& addr, uint16_t port) {
  int fd = tcp_connect(addr, port, 2000);
  if (fd < 0) {
    err_ = -fd;
    return;
  }
  fd_ = fd;
}

HttpConn::~HttpConn() {
  close();
}

void HttpConn::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool HttpConn::send(std::string_view bytes) {
  return fd_ >= 0 && write_all(fd_, bytes.data(), bytes.size());
}

bool HttpConn::fill(int timeout_ms) {
  if (fd_ < 0) {
    error_ = "not connected";
    return false;
  }
  pollfd p{fd_, POLLIN, 0};
  int rc = ::poll(&p, 1, timeout_ms);
  if (rc == 0) {
    error_ = "timeout";
    return false;
  }
  char tmp[65536];
  ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
  if (n == 0) {
    error_ = "eof";
    return false;
  }
  if (n < 0) {
    error_ = errno == ECONNRESET ? "reset" : std::string("recv: ") + strerrorname_np(errno);
    return false;
  }
  buf_.append(tmp, static_cast<size_t>(n));
  return true;
}

HttpResponse HttpConn::read(int timeout_ms, bool head) {
  HttpResponse r;
  auto start = Clock::now();
  auto deadline = start + std::chrono::milliseconds(timeout_ms);
  auto fail = [&](const std::string& why) {
    r.status = 0;
    r.error = why;
    r.elapsed_ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
    return r;
  };
  // The head.
  size_t end;
  while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(ms_left(deadline))) return fail(buf_.empty() ? error_ : error_ + " in head");
  }
  std::string head_text = buf_.substr(0, end + 2);
  buf_.erase(0, end + 4);
  size_t line_end = head_text.find("\r\n");
  std::string status_line = head_text.substr(0, line_end);
  if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12)
    return fail("malformed: status line '" + status_line + "'");
  r.status = std::atoi(status_line.c_str() + 9);
  for (size_t pos = line_end + 2; pos < head_text.size();) {
    size_t e = head_text.find("\r\n", pos);
    std::string line = head_text.substr(pos, e - pos);
    pos = e + 2;
    size_t colon = line.find(':');
    if (colon == std::string::npos) return fail("malformed: header line '" + line + "'");
    r.headers.emplace_back(lower(line.substr(0, colon)), trim(line.substr(colon + 1)));
  }
  int status = r.status;
  auto done = [&] {
    r.elapsed_ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
    return r;
  };
  if (head || status / 100 == 1 || status == 204 || status == 304) return done();
  // The body, framed as the head says.
  if (lower(r.header("transfer-encoding")).find("chunked") != std::string::npos) {
    r.chunked = true;
    for (;;) {
      size_t le;
      while ((le = buf_.find("\r\n")) == std::string::npos)
        if (!fill(ms_left(deadline))) return fail(error_ + " in chunk size");
      size_t size = std::stoul(buf_.substr(0, le), nullptr, 16);
      buf_.erase(0, le + 2);
      if (size == 0) {
        // Trailer fields, then the empty line.
        for (;;) {
          while ((le = buf_.find("\r\n")) == std::string::npos)
            if (!fill(ms_left(deadline))) return fail(error_ + " in trailer");
          bool last = le == 0;
          buf_.erase(0, le + 2);
          if (last) return done();
        }
      }
      while (buf_.size() < size + 2)
        if (!fill(ms_left(deadline))) return fail(error_ + " in chunk data");
      if (buf_.compare(size, 2, "\r\n") != 0) return fail("malformed: chunk without CRLF");
      r.body.append(buf_, 0, size);
      buf_.erase(0, size + 2);
    }
  }
  if (r.has("content-length")) {
    size_t n = std::stoul(r.header("content-length"));
    while (buf_.size() < n)
      if (!fill(ms_left(deadline))) return fail(error_ + " in body");
    r.body = buf_.substr(0, n);
    buf_.erase(0, n);
    return done();
  }
  // Until close.
  while (fill(ms_left(deadline))) {
  }
  if (error_ != "eof") return fail(error_ + " in body until close");
  r.body = std::move(buf_);
  buf_.clear();
  return done();
}

std::string HttpConn::read_raw(size_t want, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (buf_.size() < want && fill(ms_left(deadline))) {
  }
  std::string out = buf_.substr(0, want);
  buf_.erase(0, out.size());
  return out;
}

std::string HttpConn::wait_closed(int timeout_ms) {
  if (!buf_.empty()) return "data";
  if (fill(timeout_ms)) return "data";
  return error_ == "timeout" ? "open" : error_;
}

std::string get(const std::string& host, const std::string& path, const std::string& extra) {
  return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" + extra + "\r\n";
}

std::string post(const std::string& host, const std::string& path, std::string_view body,
                 const std::string& extra) {
  return "POST " + path + " HTTP/1.1\r\nHost: " + host +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra + "\r\n" +
         std::string(body);
}

std::string random_bytes(size_t n, uint32_t seed) {
  std::string out(n, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ull ^ seed;
  for (size_t i = 0; i < n; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    for (size_t k = 0; k < 8 && i + k < n; ++k) out[i + k] = static_cast<char>(x >> (8 * k));
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(data.data(), data.size(), d, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[d[i] >> 4];
    out += hex[d[i] & 15];
  }
  return out;
}

std::string sha256_file(const std::string& path) {
  return sha256_hex(slurp(path));
}

}  // namespace sm::test
