// Original-destination lookups; see original_dst.h.
#include "proxy/original_dst.h"

#include <arpa/inet.h>

#include "sockmesh_abi.h"

namespace sm::proxy {
namespace {

std::optional<Endpoint> ask(int fd, int level, int name) {
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  if (::getsockopt(fd, level, name, &sa, &len) != 0) return std::nullopt;
  return endpoint_from(sa, len);
}

}  // namespace

std::optional<Endpoint> endpoint_from(const sockaddr_storage& sa, socklen_t len) {
  Endpoint e;
  if (!from_sockaddr(reinterpret_cast<const sockaddr*>(&sa), len, &e.addr, &e.port))
    return std::nullopt;
  return e;
}

std::optional<Endpoint> so_original_dst(int fd) {
  if (auto d = ask(fd, SM_SOL_IP, SM_SO_ORIGINAL_DST)) return d;
  return ask(fd, SM_SOL_IPV6, SM_IP6T_SO_ORIGINAL_DST);
}

std::optional<Endpoint> local_endpoint(int fd) {
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return std::nullopt;
  return endpoint_from(sa, len);
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

InboundTarget inbound_target(const Endpoint& dst) {
  if (dst.addr.is_v4()) return {dst, IpAddr::v4(htonl(0x7f000006))};  // 127.0.0.6
  return {Endpoint{IpAddr::v6(in6addr_loopback), dst.port}, std::nullopt};
}

}  // namespace sm::proxy
