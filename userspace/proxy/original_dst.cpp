// Original-destination lookups; see original_dst.h.
#include "original_dst.h"

#include <arpa/inet.h>
#include <sys/socket.h>

namespace sm::proxy {
namespace {
constexpr int kSoOriginalDst = 80;  // linux/netfilter_ipv4.h

std::optional<Endpoint> from(const sockaddr_in& sa) {
  if (sa.sin_family != AF_INET) return std::nullopt;
  return Endpoint{sa.sin_addr.s_addr, ntohs(sa.sin_port)};
}
}  // namespace

std::optional<Endpoint> so_original_dst(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  if (::getsockopt(fd, SOL_IP, kSoOriginalDst, &sa, &len) != 0) return std::nullopt;
  return from(sa);
}

std::optional<Endpoint> local_endpoint(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return std::nullopt;
  return from(sa);
}

std::optional<Endpoint> outbound_destination(int fd) {
  return so_original_dst(fd);
}

std::optional<Endpoint> inbound_destination(int fd) {
  // Under conntrack every connection has an original tuple; when nothing was NATed it
  // equals the local address, which is also what sk_lookup steering leaves us.
  if (auto d = so_original_dst(fd)) return d;
  return local_endpoint(fd);
}

sockaddr_in to_sockaddr(const Endpoint& e) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = e.addr_be;
  sa.sin_port = htons(e.port);
  return sa;
}

}  // namespace sm::proxy
