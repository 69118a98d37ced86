// AccessLog; see access_log.h.
#include "proxy/access_log.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

namespace sm::proxy {
namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

uint64_t lines_in(const std::string& s) {
  return static_cast<uint64_t>(std::count(s.begin(), s.end(), '\n'));
}

}  // namespace

Status AccessLog::open(const std::string& path) {
  if (path.empty()) return {};
  const std::string what = "--access-log " + path;
  if (path == "-") {
    fd_ = STDOUT_FILENO;
  } else {
    // O_NONBLOCK only for the open itself: a FIFO without a reader fails (ENXIO) instead
    // of hanging the start.
    int fd = ::open(path.c_str(),
                    O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
    if (fd < 0) {
      if (errno == ELOOP) return plain_error(what + ": is a symbolic link (refused)");
      if (errno == ENXIO) return plain_error(what + ": a FIFO with no reader");
      return errno_error(what);
    }
    struct stat sb {};
    if (::fstat(fd, &sb) != 0 ||
        !(S_ISREG(sb.st_mode) || S_ISFIFO(sb.st_mode) || S_ISCHR(sb.st_mode))) {
      ::close(fd);
      return plain_error(what + ": not a regular file, FIFO or character device");
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    fd_ = fd;
    owned_ = true;
  }
  struct stat sb {};
  chunked_ = ::fstat(fd_, &sb) != 0 || !S_ISREG(sb.st_mode);
  writer_ = std::thread([this] { write_loop(); });
  return {};
}

void AccessLog::submit(std::string& batch) {
  if (batch.empty()) return;
  if (fd_ < 0) {
    batch.clear();
    return;
  }
  std::string spare;
  {
    std::lock_guard lock(mu_);
    if (stopping_ || queued_bytes_ + batch.size() > kMaxQueuedBytes) {
      dropped_.fetch_add(lines_in(batch), std::memory_order_relaxed);
      batch.clear();
      return;
    }
    queued_bytes_ += batch.size();
    queue_.push_back(std::move(batch));
    if (!spare_.empty()) {
      spare = std::move(spare_.back());
      spare_.pop_back();
    }
  }
  cv_.notify_one();
  batch = std::move(spare);  // an emptied string with its capacity, or a new one
  batch.clear();
}

size_t AccessLog::write_all(const std::string& s) {
  size_t off = 0;
  int64_t stalled_since = 0;
  while (off < s.size()) {
    size_t n = s.size() - off;
    if (chunked_) {
      // A pipe accepts PIPE_BUF bytes without blocking once poll() says it is writable; a
      // chunk ends at a line's end, so what a stalled reader makes us drop is whole lines.
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, stalled_ ? 0 : 100) <= 0) {
        // Still stalled since the last batch was given up: this one goes the same way.
        if (stalled_) return off;
        int64_t now = now_ms();
        if (!stalled_since) stalled_since = now;
        std::lock_guard lock(mu_);
        stalled_ = now - stalled_since > kStallMs;
        if (stalled_ || (stopping_ && now > stop_deadline_ms_)) return off;
        continue;
      }
      stalled_ = false;
      n = std::min<size_t>(PIPE_BUF, n);
      size_t eol = s.rfind('\n', off + n - 1);
      if (eol != std::string::npos && eol >= off) n = eol + 1 - off;
    }
    ssize_t w = ::write(fd_, s.data() + off, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return off;  // a full disk or a gone reader must not stop the proxy
    off += static_cast<size_t>(w);
    stalled_since = 0;
  }
  return off;
}

void AccessLog::write_loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything is out
    std::string batch = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    size_t done = write_all(batch);
    uint64_t written = static_cast<uint64_t>(std::count(batch.begin(), batch.begin() + done, '\n'));
    written_.fetch_add(written, std::memory_order_relaxed);
    dropped_.fetch_add(lines_in(batch) - written, std::memory_order_relaxed);
    const bool ok = done == batch.size();
    lock.lock();
    queued_bytes_ -= batch.size();
    batch.clear();
    if (spare_.size() < 16) spare_.push_back(std::move(batch));
    if (!ok && stopping_) {  // gave up: what is left is dropped
      for (const std::string& s : queue_) dropped_.fetch_add(lines_in(s));
      queue_.clear();
      return;
    }
  }
}

void AccessLog::close(int timeout_ms) {
  if (!writer_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    stop_deadline_ms_ = now_ms() + timeout_ms;
  }
  cv_.notify_one();
  writer_.join();
}

AccessLog::~AccessLog() {
  close();
  if (owned_) ::close(fd_);
}

}  // namespace sm::proxy
