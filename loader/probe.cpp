// The install-time probe; see probe.h.
#include "probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include <bpf/bpf.h>

#include "skeleton.h"
#include "sockmesh/unique_fd.h"

namespace sm {
namespace {

struct Pair {
  UniqueFd a, b;  // a connected, b accepted
};

Result<Pair> loopback_pair() {
  UniqueFd l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (l.get() < 0) return errno_error("probe: socket");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (::bind(l.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::listen(l.get(), 1) != 0 || ::getsockname(l.get(), reinterpret_cast<sockaddr*>(&sa), &len))
    return errno_error("probe: listen on 127.0.0.1");
  Pair p;
  p.a = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(p.a.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    return errno_error("probe: connect");
  p.b = UniqueFd(::accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (p.b.get() < 0) return errno_error("probe: accept");
  return p;
}

Status put(int map_fd, uint32_t key, int sock) {
  uint64_t v = static_cast<uint64_t>(sock);
  if (bpf_map_update_elem(map_fd, &key, &v, BPF_ANY) != 0)
    return errno_error("probe: add a socket to the probe sockhash");
  return {};
}

uint16_t local_port(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return ntohs(sa.sin_port);
}

// The full-duplex pattern that breaks on tcp_bpf, as an application does it: on `b` a
// writer thread sends 8 MiB while the reader blocks in recv(); `a` echoes everything. Plain
// TCP never returns EAGAIN from a blocking recv before its timeout; tcp_bpf does when a
// wake-up (write space freed by the writer) finds no data queued. Returns "" when every
// recv behaved, else what was seen.
std::string full_duplex_outcome(const Pair& p) {
  constexpr size_t kBytes = 8u << 20;
  timeval tv{3, 0};
  for (int fd : {p.a.get(), p.b.get()}) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  std::thread echo([&] {
    std::vector<char> buf(65536);
    for (;;) {
      ssize_t n = ::recv(p.a.get(), buf.data(), buf.size(), 0);
      if (n < 0 && errno == EAGAIN) continue;  // the echo side is not what is measured
      if (n <= 0 || ::send(p.a.get(), buf.data(), static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
    }
    ::shutdown(p.a.get(), SHUT_WR);
  });
  std::thread writer([&] {
    std::vector<char> chunk(65536, 'x');
    for (size_t sent = 0; sent < kBytes;) {
      ssize_t n = ::send(p.b.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    ::shutdown(p.b.get(), SHUT_WR);
  });
  size_t got = 0;
  int eagain = 0;
  std::vector<char> buf(65536);
  for (;;) {
    auto t0 = std::chrono::steady_clock::now();
    ssize_t n = ::recv(p.b.get(), buf.data(), buf.size(), 0);
    if (n < 0 && errno == EAGAIN &&
        std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2)) {
      ++eagain;  // before SO_RCVTIMEO ran out: not a timeout
      continue;
    }
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  writer.join();
  echo.join();
  if (eagain) return "a blocking recv() returned EAGAIN " + std::to_string(eagain) + " times";
  if (got != kBytes)
    return "echoed " + std::to_string(got) + " of " + std::to_string(kBytes) + " bytes";
  return "";
}

}  // namespace

Result<SpliceProbe> probe_app_splice(const std::string& maps_dir) {
  auto skel = bpf::load_skeleton(maps_dir, bpf::LoadFor{bpf::LoadFor::probe, 0});
  if (!skel) return skel.error();
  int map = bpf_map__fd((*skel)->maps.sm_probe);
  SpliceProbe r;

  int prog = bpf_program__fd((*skel)->progs.sm_probe_msg);
  if (bpf_prog_attach(prog, map, BPF_SK_MSG_VERDICT, 0) != 0)
    return errno_error("probe: attach sk_msg to the probe sockhash");
  struct Detach {
    int prog, map;
    ~Detach() { bpf_prog_detach2(prog, map, BPF_SK_MSG_VERDICT); }
  } detach{prog, map};

  // 1. The full-duplex blocking pattern, on plain TCP (the control) and spliced.
  auto plain = loopback_pair();
  if (!plain) return plain.error();
  std::string control = full_duplex_outcome(*plain);
  std::string in_map;
  for (int round = 0; round < 3 && in_map.empty(); ++round) {
    auto spliced = loopback_pair();
    if (!spliced) return spliced.error();
    Status s = put(map, local_port(spliced->a.get()), spliced->a.get());
    if (s) s = put(map, local_port(spliced->b.get()), spliced->b.get());
    if (!s) return s.error();
    in_map = full_duplex_outcome(*spliced);
  }
  r.blocking_recv_ok = control.empty() && in_map.empty();
  if (!control.empty())
    r.detail = "plain TCP: " + control + " (probe inconclusive); ";
  else if (!in_map.empty())
    r.detail = "spliced socket: " + in_map + "; ";

  // 2. splice(2) from a socket whose bytes the sk_msg program redirected into it.
  auto sp = loopback_pair();
  if (!sp) return sp.error();
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) != 0) return errno_error("probe: pipe");
  UniqueFd pr(pipefd[0]), pw(pipefd[1]);
  Status s = put(map, local_port(sp->a.get()), sp->a.get());
  if (s) s = put(map, local_port(sp->b.get()), sp->b.get());
  if (!s) return s.error();
  // SPLICE_F_NONBLOCK concerns the pipe only; the socket must not block either.
  ::fcntl(sp->a.get(), F_SETFL, ::fcntl(sp->a.get(), F_GETFL) | O_NONBLOCK);
  ssize_t sent = ::send(sp->b.get(), "probe", 5, MSG_NOSIGNAL);
  ssize_t got = -1;
  int serr = 0;
  for (int i = 0; i < 50 && sent == 5; ++i) {  // the redirect is synchronous; be patient
    got = ::splice(sp->a.get(), nullptr, pw.get(), nullptr, 5, SPLICE_F_NONBLOCK);
    serr = errno;
    if (got > 0 || serr != EAGAIN) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  r.splice_ok = got == 5;
  if (!r.splice_ok)
    r.detail += "splice(2) of redirected bytes: " +
                (got < 0 ? std::string(strerrorname_np(serr)) : "returned " + std::to_string(got)) +
                "; ";
  if (r.detail.empty())
    r.detail = "blocking recv and splice(2) behave like plain TCP";
  else
    r.detail.erase(r.detail.size() - 2);
  return r;
}

}  // namespace sm
