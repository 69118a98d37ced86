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
  // A small send buffer: the writer on b sees its memory fill and free many times.
  int small = 65536;
  ::setsockopt(p.b.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  return p;
}

Status put(int map_fd, uint32_t key, int sock) {
  uint64_t v = static_cast<uint64_t>(sock);
  if (bpf_map_update_elem(map_fd, &key, &v, BPF_ANY) != 0)
    return errno_error("probe: add a socket to the probe sockhash");
  return {};
}

// The full-duplex pattern that breaks on tcp_bpf: a reader blocks in recv() on `b` while
// another thread writes 4 MiB to the same socket, which a third thread reads from `a`
// (through the redirect when the pair is in the probe's sockhash). The writer's socket
// memory freeing up wakes b's wait queue again and again. Plain TCP keeps the reader
// waiting until a's single byte arrives; the broken path returns EAGAIN at a wake-up.
// `release` runs before that byte is sent (it takes `a` out of the sockhash so the byte
// travels as plain TCP). Returns "" when the reader got the byte, else what it got.
std::string blocked_recv_outcome(const Pair& p, const std::function<void()>& release) {
  constexpr size_t kBytes = 4u << 20;
  std::atomic<ssize_t> got{-2};
  std::atomic<int> err{0};
  std::thread reader([&] {
    timeval tv{3, 0};
    ::setsockopt(p.b.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c;
    ssize_t n = ::recv(p.b.get(), &c, 1, 0);
    err = errno;
    got = n;
  });
  std::thread drainer([&] {
    std::vector<char> buf(65536);
    timeval tv{3, 0};
    ::setsockopt(p.a.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (size_t have = 0; have < kBytes;) {
      ssize_t n = ::recv(p.a.get(), buf.data(), buf.size(), 0);
      if (n <= 0) break;
      have += static_cast<size_t>(n);
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the reader is waiting
  std::vector<char> chunk(65536, 'x');
  timeval tv{3, 0};
  ::setsockopt(p.b.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  for (size_t sent = 0; sent < kBytes && got == -2;) {
    ssize_t n = ::send(p.b.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  drainer.join();
  release();
  if (got == -2) (void)!::send(p.a.get(), "!", 1, MSG_NOSIGNAL);
  reader.join();
  if (got == 1) return "";
  if (got < 0) return std::string("recv returned ") + strerrorname_np(err.load());
  return "recv returned " + std::to_string(got.load());
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
  uint32_t zero = 0, one = 1;

  // 1. The full-duplex blocking pattern, on plain TCP (the control) and spliced.
  auto plain = loopback_pair();
  if (!plain) return plain.error();
  std::string control = blocked_recv_outcome(*plain, [] {});
  auto spliced = loopback_pair();
  if (!spliced) return spliced.error();
  Status s = put(map, 0, spliced->a.get());
  if (s) s = put(map, 1, spliced->b.get());
  if (!s) return s.error();
  std::string in_map = blocked_recv_outcome(*spliced, [&] { bpf_map_delete_elem(map, &zero); });
  bpf_map_delete_elem(map, &one);
  r.blocking_recv_ok = control.empty() && in_map.empty();
  if (!control.empty())
    r.detail = "blocking recv on plain TCP: " + control + " (probe inconclusive); ";
  else if (!in_map.empty())
    r.detail = "blocking recv on a spliced socket: " + in_map + "; ";

  // 2. splice(2) from a socket whose bytes the sk_msg program redirected into it.
  auto sp = loopback_pair();
  if (!sp) return sp.error();
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) != 0) return errno_error("probe: pipe");
  UniqueFd pr(pipefd[0]), pw(pipefd[1]);
  s = put(map, 0, sp->a.get());
  if (s) s = put(map, 1, sp->b.get());
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
