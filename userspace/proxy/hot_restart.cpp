// Hot restart; see hot_restart.h. The conversation, one SOCK_SEQPACKET message each:
//   new -> old  "take <kHotRestartVersion>"
//   old -> new  "handover workers=W uptime_ms=U"
//   old -> new  "admin" + SCM_RIGHTS [admin socket]
//   old -> new  "worker I" + SCM_RIGHTS [outbound, inbound]      (I = 0 .. W-1)
//   new -> old  "drain"                                          (once the new one is LIVE)
//   old -> new  "counters\n<lines>" ...                          (as the old one exits)
#include "proxy/hot_restart.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstring>

#include "sockmesh/log.h"
#include "sockmesh/net.h"

namespace sm::proxy {
namespace {

constexpr uint32_t kMaxWorkers = 256;         // --workers' limit
constexpr int kTimeoutMs = 5'000;             // for each message of the hand-over
constexpr size_t kCountersChunk = 32 * 1024;  // a counters message (SEQPACKET: one send)

struct UnixAddr {
  sockaddr_un sa{};
  socklen_t len = 0;
};

UnixAddr abstract_addr(const std::string& name) {
  UnixAddr a;
  a.sa.sun_family = AF_UNIX;
  const size_t n = std::min(name.size(), sizeof a.sa.sun_path - 1);
  std::memcpy(a.sa.sun_path + 1, name.data(), n);  // sun_path[0] = 0: abstract
  a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
  return a;
}

// The other end runs as root or as `uid`: anyone else in the netns (the app) must not be
// able to take the sidecar's listeners, nor to pose as a proxy handing out its own.
Status check_peer(int fd, uid_t uid, const std::string& who) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return errno_error(who + ": SO_PEERCRED");
  if (cred.uid != 0 && cred.uid != uid)
    return plain_error(who + " runs as uid " + std::to_string(cred.uid) + " (pid " +
                       std::to_string(cred.pid) + "), neither root nor uid " + std::to_string(uid) +
                       ": refused");
  return {};
}

constexpr int kTakeTimeoutMs = 200;  // the new proxy says `take` as soon as it connected

bool wait_readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

Status send_msg(int fd, std::string_view text, const int* fds, size_t n_fds) {
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  if (n_fds) {
    m.msg_control = control;
    m.msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds, n_fds * sizeof(int));
  }
  pollfd p{fd, POLLOUT, 0};
  if (::poll(&p, 1, kTimeoutMs) != 1) return plain_error("hot restart: send timed out");
  if (::sendmsg(fd, &m, MSG_NOSIGNAL) != static_cast<ssize_t>(text.size()))
    return errno_error("hot restart: sendmsg");
  return {};
}

// One message and the descriptors it carries (at most 2).
Result<std::string> recv_msg(int fd, std::vector<UniqueFd>* fds, int timeout_ms = kTimeoutMs) {
  if (!wait_readable(fd, timeout_ms))
    return plain_error("no answer within " + std::to_string(timeout_ms) + " ms");
  char buf[256];
  iovec iov{buf, sizeof buf};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
  if (n < 0) return errno_error("recvmsg");
  if (n == 0) return plain_error("the other proxy closed the connection");
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; ++i) {
      int got = -1;
      std::memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
      if (fds)
        fds->emplace_back(got);
      else
        ::close(got);
    }
  }
  if (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) return plain_error("message truncated");
  return std::string(buf, static_cast<size_t>(n));
}

uint64_t netns_cookie(int fd) {
  uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  return ::getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) == 0 ? cookie : 0;
}

// A listening TCP socket of this netns on `port`, or what it is instead.
Status check_listener(int fd, uint16_t port, const std::string& flag) {
  int v = 0;
  socklen_t len = sizeof v;
  UniqueFd here(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const uint64_t ours = here ? netns_cookie(here.get()) : 0;
  if (ours == 0 || netns_cookie(fd) != ours)
    return plain_error(flag + ": the socket handed over belongs to another network namespace");
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) != 0 || v != 1)
    return plain_error(flag + ": the descriptor handed over is not a listening socket");
  len = sizeof v;
  if (::getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) != 0 || v != IPPROTO_TCP)
    return plain_error(flag + ": the descriptor handed over is not a TCP socket");
  sockaddr_storage ss{};
  socklen_t sl = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl) != 0)
    return errno_error(flag + ": getsockname");
  const uint16_t got = ss.ss_family == AF_INET6
                           ? ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port)
                           : ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
  if (got != port)
    return plain_error(flag + " " + std::to_string(port) + ": the running proxy listens on " +
                       std::to_string(got) + " (start the new one with the same ports)");
  return {};
}

}  // namespace

std::string hot_restart_name(uint32_t base_id, uint32_t epoch) {
  return "sockmesh-proxy." + std::to_string(base_id) + "." + std::to_string(epoch);
}

Result<Handover> take_over(const Options& o, uint32_t peer_uid) {
  const std::string name = hot_restart_name(o.base_id, o.restart_epoch - 1);
  const std::string where = "--restart-epoch " + std::to_string(o.restart_epoch) + ": @" + name;
  Handover h;
  h.conn.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!h.conn) return errno_error(where + ": socket");
  UnixAddr a = abstract_addr(name);
  // Non-blocking: a full backlog (someone squatting the name) must not hang us; retried
  // until the hand-over's deadline.
  for (int waited_ms = 0;; waited_ms += 10) {
    if (::connect(h.conn.get(), reinterpret_cast<const sockaddr*>(&a.sa), a.len) == 0) break;
    if (errno != EAGAIN || waited_ms >= kTimeoutMs)
      return errno_error(where + ": no proxy of epoch " + std::to_string(o.restart_epoch - 1) +
                         " (--base-id " + std::to_string(o.base_id) + ") in this netns: connect");
    ::poll(nullptr, 0, 10);
  }
  if (Status s = check_peer(h.conn.get(), peer_uid, where + ": the proxy there"); !s)
    return s.error();
  if (Status s = send_msg(h.conn.get(), std::string("take ") + kHotRestartVersion, nullptr, 0); !s)
    return s.error();
  auto head = recv_msg(h.conn.get(), nullptr);
  if (!head) return plain_error(where + ": " + head.error().message());
  if (head->starts_with("refused")) return plain_error(where + ": " + *head);
  unsigned workers = 0;
  long long uptime = 0;
  if (std::sscanf(head->c_str(), "handover workers=%u uptime_ms=%lld", &workers, &uptime) != 2 ||
      workers == 0 || workers > kMaxWorkers)
    return plain_error(where + ": unexpected answer '" + *head + "'");
  h.uptime_ms = uptime;
  std::vector<UniqueFd> fds;
  auto admin = recv_msg(h.conn.get(), &fds);
  if (!admin || *admin != "admin" || fds.size() != 1)
    return plain_error(where + ": the admin socket did not come");
  if (Status s = check_listener(fds[0].get(), o.admin_port, "--admin-port"); !s) return s.error();
  h.admin = std::move(fds[0]);
  for (unsigned i = 0; i < workers; ++i) {
    fds.clear();
    auto w = recv_msg(h.conn.get(), &fds);
    if (!w || *w != "worker " + std::to_string(i) || fds.size() != 2)
      return plain_error(where + ": worker " + std::to_string(i) + "'s listeners did not come");
    if (Status s = check_listener(fds[0].get(), o.outbound_port, "--outbound-port"); !s)
      return s.error();
    if (Status s = check_listener(fds[1].get(), o.inbound_port, "--inbound-port"); !s)
      return s.error();
    h.outbound.push_back(std::move(fds[0]));
    h.inbound.push_back(std::move(fds[1]));
  }
  return h;
}

Status drain_parent(Handover& h) {
  Status s = send_msg(h.conn.get(), "drain", nullptr, 0);
  if (!s) h.conn.reset();
  return s;
}

bool read_parent(int conn, std::string* lines) {
  for (;;) {
    static thread_local std::string buf(kCountersChunk + 64, '\0');
    const ssize_t n = ::recv(conn, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    if (n == 0) return false;
    std::string_view m(buf.data(), static_cast<size_t>(n));
    if (m.starts_with("counters\n")) lines->append(m.substr(9));
  }
}

Status HotRestartServer::start(uint32_t base_id, uint32_t epoch) {
  name_ = hot_restart_name(base_id, epoch);
  listen_.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listen_) return errno_error("hot restart socket");
  UnixAddr a = abstract_addr(name_);
  if (::bind(listen_.get(), reinterpret_cast<const sockaddr*>(&a.sa), a.len) != 0)
    return errno_error("hot restart: bind @" + name_ +
                       " (another proxy of this epoch and --base-id in this netns?)");
  if (::listen(listen_.get(), 4) != 0) return errno_error("hot restart: listen");
  return {};
}

HotRestartServer::Event HotRestartServer::poll(const Sockets& s, int64_t uptime_ms, bool willing) {
  if (!listen_) return Event::none;
  if (!conn_) {
    UniqueFd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) return Event::none;
    if (Status ok = check_peer(c.get(), ::geteuid(), "a process asking for the listeners"); !ok) {
      SM_WARN("hot restart @%s: %s", name_.c_str(), ok.error().message().c_str());
      return Event::none;
    }
    auto take = recv_msg(c.get(), nullptr, kTakeTimeoutMs);
    if (!take) return Event::none;
    if (!willing) {
      (void)send_msg(c.get(), "refused: the running proxy is draining", nullptr, 0);
      return Event::none;
    }
    if (*take != std::string("take ") + kHotRestartVersion) {
      // The new proxy sees its connection closed: "the other proxy closed the connection".
      SM_WARN("hot restart @%s: refused '%s': this proxy speaks %s", name_.c_str(), take->c_str(),
              kHotRestartVersion);
      return Event::none;
    }
    Status st = send_msg(c.get(),
                         "handover workers=" + std::to_string(s.outbound.size()) +
                             " uptime_ms=" + std::to_string(uptime_ms),
                         nullptr, 0);
    if (st) st = send_msg(c.get(), "admin", &s.admin, 1);
    for (size_t i = 0; st && i < s.outbound.size(); ++i) {
      const int pair[2] = {s.outbound[i], s.inbound[i]};
      st = send_msg(c.get(), "worker " + std::to_string(i), pair, 2);
    }
    if (!st) {
      SM_WARN("hot restart @%s: %s", name_.c_str(), st.error().message().c_str());
      return Event::none;
    }
    SM_INFO("hot restart: listeners handed over to a new proxy; this one drains when it is LIVE");
    conn_ = std::move(c);
    return Event::handed_over;
  }
  if (drained_) return Event::none;
  char buf[16];
  const ssize_t n = ::recv(conn_.get(), buf, sizeof buf, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return Event::none;
  if (n == 5 && std::string_view(buf, 5) == "drain") {
    listen_.reset();  // a draining proxy hands nothing over again
    drained_ = true;  // conn_ stays, for the counters
    return Event::drain;
  }
  conn_.reset();
  SM_WARN("hot restart: the new proxy went away before taking over; this one carries on");
  return Event::gone;
}

void HotRestartServer::send_counters(const std::string& lines) {
  if (!drained_ || !conn_) return;
  size_t at = 0;
  while (at < lines.size()) {
    size_t end = std::min(lines.size(), at + kCountersChunk);
    if (end < lines.size()) end = lines.rfind('\n', end - 1) + 1;  // whole lines only
    if (end <= at) break;  // a line longer than a chunk: nothing sane to send
    if (Status s = send_msg(conn_.get(), "counters\n" + lines.substr(at, end - at), nullptr, 0);
        !s) {
      SM_WARN("hot restart: the counters did not reach the new proxy: %s",
              s.error().message().c_str());
      break;
    }
    at = end;
  }
  conn_.reset();
}

}  // namespace sm::proxy
