// Listener and upstream sockets; see sockets.h.
#include "proxy/sockets.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <string>

#include "sockmesh_abi.h"

namespace sm::proxy {

void declare_splice_safe(int fd) {
  int one = 1;
  (void)::setsockopt(fd, SM_SOL_SOCKMESH, SM_SO_SPLICE_SAFE, &one, sizeof one);
}

namespace {

// An AF_INET6 socket that also takes IPv4 (v4-mapped), or an invalid fd when the host has
// no IPv6 (module absent, or IPV6_V6ONLY cannot be cleared).
UniqueFd dual_stack_socket() {
  UniqueFd s(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return s;
  int zero = 0;
  if (::setsockopt(s.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) != 0) s.reset();
  return s;
}

}  // namespace

Result<UniqueFd> open_listener(uint16_t port, std::string_view what) {
  const std::string where = std::string(what) + " " + std::to_string(port);
  UniqueFd s = dual_stack_socket();
  int family = AF_INET6;
  if (!s) {
    family = AF_INET;
    s.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s) return errno_error(where + ": socket");
  }
  int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  declare_splice_safe(s.get());  // accepted sockets inherit it
  SockAddr any = family == AF_INET6 ? make_sockaddr(IpAddr{}, port, AF_INET6)
                                    : make_sockaddr(IpAddr::v4(INADDR_ANY), port);
  if (::bind(s.get(), any.get(), any.len) != 0) return errno_error(where + ": bind");
  if (::listen(s.get(), 4096) != 0) return errno_error(where + ": listen");
  return s;
}

Result<UniqueFd> open_upstream(const Endpoint& target, const std::optional<IpAddr>& source) {
  const int family = target.addr.family();
  UniqueFd s(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!s) return errno_error("socket");
  int one = 1;
  ::setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  declare_splice_safe(s.get());
  if (source) {
    ::setsockopt(s.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    SockAddr src = make_sockaddr(*source, 0, family);
    if (::bind(s.get(), src.get(), src.len) != 0) return errno_error("bind " + source->str());
  }
  return s;
}

}  // namespace sm::proxy
