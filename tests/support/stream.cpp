// Stream pump implementation; see stream.h.
#include "stream.h"

#include <liburing.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

namespace sm::test {
namespace {

// splitmix64: fast, deterministic bytes and sizes for a given seed.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  void fill(unsigned char* p, size_t n) {
    while (n >= 8) {
      uint64_t v = next();
      std::memcpy(p, &v, 8);
      p += 8;
      n -= 8;
    }
    if (n) {
      uint64_t v = next();
      std::memcpy(p, &v, n);
    }
  }
};

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr);
  }
  void update(const void* p, size_t n) { EVP_DigestUpdate(ctx_.get(), p, n); }
  std::string hex() {
    unsigned char d[32];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx_.get(), d, &len);
    static const char* x = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
      out += x[d[i] >> 4];
      out += x[d[i] & 15];
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

// The stream: a generator of (write size, bytes) pairs shared by sender and checker.
template <typename F>
void generate(const SendSpec& s, F&& each_write) {
  Rng data{s.seed}, sizes{s.seed * 2654435761u + 7};
  std::vector<unsigned char> buf(s.max_write);
  uint64_t left = s.bytes;
  while (left > 0) {
    uint32_t span = s.max_write - s.min_write + 1;
    uint64_t n = s.min_write + sizes.next() % span;
    if (n > left) n = left;
    data.fill(buf.data(), n);
    if (!each_write(buf.data(), static_cast<size_t>(n))) return;
    left -= n;
  }
}

std::string errno_name(int e) {
  return strerrorname_np(e) ? strerrorname_np(e) : std::to_string(e);
}

void do_send(int fd, const SendSpec& s, StreamResult& r) {
  Sha256 sha;
  generate(s, [&](const unsigned char* p, size_t n) {
    size_t off = 0;
    while (off < n) {
      ssize_t w = ::send(fd, p + off, n - off, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        r.error += "send:" + errno_name(errno) + ";";
        return false;
      }
      sha.update(p + off, static_cast<size_t>(w));
      off += static_cast<size_t>(w);
      r.sent += static_cast<uint64_t>(w);
    }
    return true;
  });
  r.sent_sha = sha.hex();
  if (s.shutdown_after) ::shutdown(fd, SHUT_WR);
}

// One read with the chosen API; returns bytes, 0 at EOF, -errno on error.
class Reader {
 public:
  Reader(int fd, ReadApi api) : fd_(fd), api_(api) {
    if (api == ReadApi::io_uring) ok_ = io_uring_queue_init(4, &ring_, 0) == 0;
    if (api == ReadApi::epoll) {
      ep_ = epoll_create1(EPOLL_CLOEXEC);
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.fd = fd;
      ok_ = epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) == 0;
    }
  }
  ~Reader() {
    if (api_ == ReadApi::io_uring && ok_) io_uring_queue_exit(&ring_);
    if (ep_ >= 0) ::close(ep_);
  }
  bool ok() const { return ok_; }

  uint64_t spurious_eagain = 0;

  ssize_t read(unsigned char* buf, size_t n) {
    switch (api_) {
      case ReadApi::recv:
        return blocking([&] { return ::recv(fd_, buf, n, 0); });
      case ReadApi::readv: {
        // Two iovecs, so the scatter path is used, not just a single buffer.
        iovec iov[2] = {{buf, n / 2}, {buf + n / 2, n - n / 2}};
        return blocking([&] { return ::readv(fd_, iov, 2); });
      }
      case ReadApi::io_uring: {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        io_uring_prep_recv(sqe, fd_, buf, n, 0);
        io_uring_submit(&ring_);
        io_uring_cqe* cqe = nullptr;
        int rc = io_uring_wait_cqe(&ring_, &cqe);
        if (rc < 0) return rc;
        int res = cqe->res;
        io_uring_cqe_seen(&ring_, cqe);
        return res;
      }
      case ReadApi::epoll:
        for (;;) {
          ssize_t got = ::recv(fd_, buf, n, MSG_DONTWAIT);
          if (got >= 0) return got;
          if (errno != EAGAIN) return -errno;
          epoll_event ev{};
          // Readiness must come: a lost wake-up shows as a timeout, not a hang.
          int w = epoll_wait(ep_, &ev, 1, 10000);
          if (w == 0) return -ETIME;
          if (w < 0 && errno != EINTR) return -errno;
        }
      case ReadApi::poll:
        for (;;) {
          ssize_t got = ::recv(fd_, buf, n, MSG_DONTWAIT);
          if (got >= 0) return got;
          if (errno != EAGAIN) return -errno;
          pollfd p{fd_, POLLIN, 0};
          int w = ::poll(&p, 1, 10000);
          if (w == 0) return -ETIME;
          if (w < 0 && errno != EINTR) return -errno;
        }
    }
    return -EINVAL;
  }

 private:
  // A blocking call. EAGAIN before SO_RCVTIMEO (if any) ran out is the sockmap quirk
  // (the receive wait ends on any wake-up of the socket): count it and retry.
  template <typename F>
  ssize_t blocking(F&& f) {
    timeval tv{};
    socklen_t len = sizeof tv;
    ::getsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, &len);
    auto timeout = std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
    auto start = std::chrono::steady_clock::now();
    for (;;) {
      ssize_t r = f();
      if (r >= 0) return r;
      if (errno == EINTR) continue;
      bool timed_out = timeout.count() > 0 && std::chrono::steady_clock::now() - start >= timeout;
      if (errno == EAGAIN && !timed_out) {
        ++spurious_eagain;
        continue;
      }
      return -errno;
    }
  }
  int fd_;
  ReadApi api_;
  bool ok_ = true;
  io_uring ring_{};
  int ep_ = -1;
};

void do_recv(int fd, const RecvSpec& s, StreamResult& r) {
  Reader reader(fd, s.api);
  Sha256 sha;
  if (!reader.ok()) {
    r.error += std::string("reader-setup:") + to_string(s.api) + ";";
    return;
  }
  std::vector<unsigned char> buf(s.chunk);
  for (;;) {
    ssize_t n = reader.read(buf.data(), buf.size());
    if (n == 0) break;
    if (n < 0) {
      r.error += "recv:" + errno_name(static_cast<int>(-n)) + ";";
      break;
    }
    sha.update(buf.data(), static_cast<size_t>(n));
    r.received += static_cast<uint64_t>(n);
    if (s.pause_us_per_chunk) ::usleep(s.pause_us_per_chunk);
  }
  r.received_sha = sha.hex();
  r.spurious_eagain = reader.spurious_eagain;
}

}  // namespace

const char* to_string(ReadApi a) {
  switch (a) {
    case ReadApi::recv:
      return "recv";
    case ReadApi::readv:
      return "readv";
    case ReadApi::io_uring:
      return "io_uring";
    case ReadApi::epoll:
      return "epoll";
    case ReadApi::poll:
      return "poll";
  }
  return "?";
}

std::string StreamResult::serialize() const {
  std::ostringstream o;
  o << sent << ' ' << (sent_sha.empty() ? "-" : sent_sha) << ' ' << received << ' '
    << (received_sha.empty() ? "-" : received_sha) << ' ' << (error.empty() ? "-" : error) << ' '
    << spurious_eagain;
  return o.str();
}

StreamResult StreamResult::parse(const std::string& s) {
  StreamResult r;
  std::istringstream in(s);
  if (!(in >> r.sent >> r.sent_sha >> r.received >> r.received_sha >> r.error >>
        r.spurious_eagain)) {
    r.error = "unparsable result: " + s;
    return r;
  }
  if (r.error == "-") r.error.clear();
  return r;
}

StreamResult pump(int fd, const SendSpec& send, const RecvSpec& recv) {
  StreamResult r;
  StreamResult rr;
  std::thread reader([&] { do_recv(fd, recv, rr); });
  do_send(fd, send, r);
  reader.join();
  r.received = rr.received;
  r.received_sha = rr.received_sha;
  r.error += rr.error;
  r.spurious_eagain = rr.spurious_eagain;
  return r;
}

std::string expected_sha(const SendSpec& send) {
  Sha256 sha;
  generate(send, [&](const unsigned char* p, size_t n) {
    sha.update(p, n);
    return true;
  });
  return sha.hex();
}

}  // namespace sm::test
