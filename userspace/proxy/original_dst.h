// Where an intercepted connection was going. One code path for both interception modes:
// SO_ORIGINAL_DST (answered by conntrack under iptables, by sockmesh's cgroup/getsockopt
// program under eBPF) and, for inbound connections steered by sk_lookup, getsockname().
// Both families: IPv4 (also v4-mapped on a dual-stack socket) and native IPv6.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>

#include "sockmesh/net.h"

namespace sm::proxy {

struct Endpoint {
  IpAddr addr;                                                  // IPv4 held v4-mapped
  uint16_t port = 0;                                            // host order
  std::string str() const { return endpoint_str(addr, port); }  // "a.b.c.d:p", "[v6]:p"
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// The endpoint in a socket address answered by the kernel (sockaddr_in or sockaddr_in6),
// or nullopt for any other family.
std::optional<Endpoint> endpoint_from(const sockaddr_storage& sa, socklen_t len);

// The original destination, as conntrack answers it: (SOL_IP, SO_ORIGINAL_DST) first, which
// answers IPv4 and v4-mapped connections, then (SOL_IPV6, IP6T_SO_ORIGINAL_DST) for native
// IPv6. nullopt when neither knows the connection (it was not redirected).
std::optional<Endpoint> so_original_dst(int fd);
std::optional<Endpoint> local_endpoint(int fd);

// Outbound listener: the destination the app dialed, or nullopt when unknown.
std::optional<Endpoint> outbound_destination(int fd);
// Inbound listener: the workload port the peer dialed (SO_ORIGINAL_DST under REDIRECT,
// else the local address, which sk_lookup leaves untouched).
std::optional<Endpoint> inbound_destination(int fd);

// Where the inbound listener forwards a connection for `dst`, and from which source.
// IPv4: the original destination itself from 127.0.0.6 (as Istio 1.10+ does): sk_lookup
// never steers a loopback peer and REDIRECT never sees local traffic, so it is not looped
// back, and services the workload binds to 127.0.0.1 only stay private. IPv6 has no
// loopback network to take a second source from: [::1]:port, which sk_lookup and the
// ip6tables rules leave alone as loopback.
struct InboundTarget {
  Endpoint target;
  std::optional<IpAddr> source;
};
InboundTarget inbound_target(const Endpoint& dst);

}  // namespace sm::proxy
