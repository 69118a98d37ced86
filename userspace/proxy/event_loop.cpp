// Event loop selection; see event_loop.h.
#include "proxy/event_loop.h"

#include <cerrno>
#include <fstream>

#include "proxy/uring.h"

namespace sm::proxy {
namespace {

// kernel.io_uring_disabled (6.6+): 0 allowed, 1 only for io_uring_group, 2 off. "" when the
// kernel has no such knob.
std::string io_uring_disabled_sysctl() {
  std::ifstream in("/proc/sys/kernel/io_uring_disabled");
  std::string v;
  if (!(in >> v)) return "";
  return v;
}

std::string explain(const Error& e) {
  std::string why = e.message();
  const std::string sysctl = io_uring_disabled_sysctl();
  if (!sysctl.empty() && sysctl != "0")
    why += " (kernel.io_uring_disabled = " + sysctl + ")";
  else if (e.code == EPERM)
    why += " (a seccomp profile refuses io_uring: Docker's and containerd's defaults do)";
  else if (e.code == ENOSYS)
    why +=
        " (a seccomp profile refuses io_uring, as podman's default does, or the kernel has "
        "none)";
  return why;
}

}  // namespace

const char* event_loop_name(EventLoop l) {
  switch (l) {
    case EventLoop::uring:
      return "uring";
    case EventLoop::epoll:
      return "epoll";
    case EventLoop::automatic:
      break;
  }
  return "auto";
}

Status probe_io_uring() {
  Ring ring;
  if (Status s = ring.init(8); !s) return s;
  BufferRing bufs;
  return bufs.init(ring, 0, 16, 4096);
}

Result<EventLoop> choose_event_loop(EventLoop requested, std::string* note) {
  note->clear();
  if (requested == EventLoop::epoll) return EventLoop::epoll;
  Status s = probe_io_uring();
  if (s) return EventLoop::uring;
  const Error& e = s.error();
  if (requested == EventLoop::uring)
    return plain_error("--event-loop uring: io_uring is not available here: " + explain(e) +
                       "; run with --event-loop epoll or auto");
  if (e.code != EPERM && e.code != ENOSYS)
    return plain_error(
        "--event-loop auto: io_uring failed for another reason than being "
        "blocked: " +
        e.message() + " (--event-loop epoll runs without it)");
  *note = "io_uring unavailable: " + explain(e);
  return EventLoop::epoll;
}

}  // namespace sm::proxy
