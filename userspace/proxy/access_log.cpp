// AccessLog; see shared.h.
#include <fcntl.h>
#include <unistd.h>

#include "proxy/shared.h"

namespace sm::proxy {

Status AccessLog::open(const std::string& path) {
  if (path.empty()) return {};
  if (path == "-") {
    fd_ = STDOUT_FILENO;
    return {};
  }
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) return errno_error("--access-log " + path);
  owned_ = true;
  return {};
}

void AccessLog::write_batch(const std::string& lines) {
  if (fd_ < 0 || lines.empty()) return;
  std::lock_guard lock(mu_);
  size_t off = 0;
  while (off < lines.size()) {
    ssize_t n = ::write(fd_, lines.data() + off, lines.size() - off);
    if (n <= 0) return;  // a full disk must not stop the proxy
    off += static_cast<size_t>(n);
  }
}

AccessLog::~AccessLog() {
  if (owned_) ::close(fd_);
}

}  // namespace sm::proxy
