// The collector's HTTP client; see http_post.h.
#include "tracing/http_post.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>

#include "sockmesh/unique_fd.h"

namespace sm::tracing {
namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(left.count());
}

// Waits for `events` on fd until the deadline: 0, or an errno (ETIMEDOUT).
int wait_fd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    int ms = remaining_ms(deadline);
    if (ms == 0) return ETIMEDOUT;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, ms);
    if (n > 0) return 0;
    if (n == 0) return ETIMEDOUT;
    if (errno != EINTR) return errno;
  }
}

Result<UniqueFd> connect_to(const HostPort& to, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(to.port);
  if (int rc = ::getaddrinfo(to.host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return plain_error("resolve " + to.host + ": " + gai_strerror(rc));
  Error last = plain_error("resolve " + to.host + ": no address");
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
      last = errno_error("socket");
      continue;
    }
    int rc = ::connect(fd.get(), ai->ai_addr, ai->ai_addrlen);
    int err = rc == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      err = wait_fd(fd.get(), POLLOUT, deadline);
      if (err == 0) {
        socklen_t len = sizeof err;
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      }
    }
    if (err == 0) {
      ::freeaddrinfo(res);
      return fd;
    }
    last = errno_error("connect " + to.host + ":" + port, err);
  }
  ::freeaddrinfo(res);
  return last;
}

// The status code of a complete response in `in`, 0 while more is needed, -1 when it is
// not HTTP. The body is complete per Content-Length (0 when absent: a 202 has none) or
// once the peer closed (`closed`).
int response_status(const std::string& in, bool closed) {
  size_t end = in.find("\r\n\r\n");
  if (end == std::string::npos) return closed ? -1 : 0;
  if (in.compare(0, 7, "HTTP/1.") != 0 || in.size() < 12) return -1;
  int status = 0;
  if (std::from_chars(in.data() + 9, in.data() + 12, status).ec != std::errc()) return -1;
  size_t length = 0;
  for (size_t pos = in.find("\r\n"); pos < end;) {
    size_t next = in.find("\r\n", pos + 2);
    std::string_view line(in.data() + pos + 2, next - pos - 2);
    constexpr std::string_view kName = "content-length:";
    if (line.size() > kName.size()) {
      bool match = true;
      for (size_t i = 0; i < kName.size() && match; ++i)
        match = static_cast<char>(std::tolower(static_cast<unsigned char>(line[i]))) == kName[i];
      if (match) {
        std::string_view v = line.substr(kName.size());
        while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
        std::from_chars(v.data(), v.data() + v.size(), length);
      }
    }
    pos = next;
  }
  if (in.size() - (end + 4) >= length || closed) return status;
  return 0;
}

}  // namespace

Result<HostPort> parse_host_port(std::string_view s) {
  HostPort hp;
  size_t colon;
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':')
      return plain_error("'" + std::string(s) + "': expected [address]:port");
    hp.host = std::string(s.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = s.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
      return plain_error("'" + std::string(s) + "': expected host:port");
    hp.host = std::string(s.substr(0, colon));
    if (hp.host.find(':') != std::string::npos)
      return plain_error("'" + std::string(s) + "': an IPv6 address goes in brackets");
  }
  std::string_view port = s.substr(colon + 1);
  unsigned p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535)
    return plain_error("'" + std::string(s) + "': port must be 1..65535");
  hp.port = static_cast<uint16_t>(p);
  return hp;
}

Result<int> http_post(const HostPort& to, std::string_view path, std::string_view body,
                      const PostTimeouts& t) {
  const auto start = Clock::now();
  const auto deadline = start + t.total;
  auto fd = connect_to(to, std::min(deadline, start + t.connect));
  if (!fd) return fd.error();
  std::string req;
  req.reserve(body.size() + 256);
  req.append("POST ").append(path).append(" HTTP/1.1\r\nHost: ").append(to.host);
  req.append(":").append(std::to_string(to.port));
  req.append("\r\nContent-Type: application/json\r\nContent-Length: ");
  req.append(std::to_string(body.size())).append("\r\nConnection: close\r\n\r\n");
  req.append(body);
  for (size_t sent = 0; sent < req.size();) {
    ssize_t n = ::send(fd->get(), req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) return errno_error("send to collector");
    if (int err = wait_fd(fd->get(), POLLOUT, deadline))
      return errno_error("send to collector", err);
  }
  std::string in;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd->get(), buf, sizeof buf, 0);
    if (n > 0) {
      in.append(buf, static_cast<size_t>(n));
      if (in.size() > (1u << 20)) return plain_error("collector response too large");
      if (int st = response_status(in, false); st != 0) {
        if (st < 0) return plain_error("collector answered something other than HTTP");
        return st;
      }
      continue;
    }
    if (n == 0) {
      int st = response_status(in, true);
      if (st <= 0) return plain_error("collector closed the connection without a response");
      return st;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return errno_error("recv from collector");
    if (int err = wait_fd(fd->get(), POLLIN, deadline))
      return errno_error("collector response", err);
  }
}

}  // namespace sm::tracing
