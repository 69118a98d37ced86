// Where an intercepted connection was going. One code path for both interception modes:
// SO_ORIGINAL_DST (answered by conntrack under iptables, by sockmesh's cgroup/getsockopt
// program under eBPF) and, for inbound connections steered by sk_lookup, getsockname().
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <optional>

namespace sm::proxy {

struct Endpoint {
  uint32_t addr_be = 0;
  uint16_t port = 0;  // host order
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// SO_ORIGINAL_DST, or nullopt (ENOENT: the connection was not redirected).
std::optional<Endpoint> so_original_dst(int fd);
std::optional<Endpoint> local_endpoint(int fd);

// Outbound listener: the destination the app dialed, or nullopt when unknown.
std::optional<Endpoint> outbound_destination(int fd);
// Inbound listener: the workload port the peer dialed (SO_ORIGINAL_DST under REDIRECT,
// else the local address, which sk_lookup leaves untouched).
std::optional<Endpoint> inbound_destination(int fd);

sockaddr_in to_sockaddr(const Endpoint& e);

}  // namespace sm::proxy
