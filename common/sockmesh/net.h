// Parsing and formatting of the network values users type: ports, port lists, IPv4 and
// IPv6 addresses and CIDRs. Errors name the field ("--exclude-cidrs: '198.18.0.0/33':
// prefix length must be 0..32") so a bad flag or config is found at once.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sockmesh/result.h"

namespace sm {

// An IPv4 or IPv6 address. IPv4 is held v4-mapped (::ffff:a.b.c.d), the form the kernel
// shows an AF_INET6 socket, so one type, one comparison and one map key serve both
// families (the BPF side keys its maps the same way).
struct IpAddr {
  std::array<uint8_t, 16> bytes{};

  static IpAddr v4(uint32_t addr_be);
  static IpAddr v6(const in6_addr& a);
  bool is_v4() const;      // v4-mapped
  uint32_t v4_be() const;  // the IPv4 address (network order) when is_v4()
  in6_addr in6() const;
  int family() const { return is_v4() ? AF_INET : AF_INET6; }
  bool is_loopback() const;     // 127.0.0.0/8 or ::1
  bool is_unspecified() const;  // 0.0.0.0 or ::
  std::string str() const;      // "198.18.0.1", "2001:2::1"
  friend auto operator<=>(const IpAddr&, const IpAddr&) = default;
};

// A CIDR of either family. `prefix` counts bits of the address's own family (0..32 for
// IPv4, 0..128 for IPv6); mapped_prefix() counts them in the 128-bit v4-mapped form.
struct IpCidr {
  IpAddr addr;  // host bits cleared
  uint8_t prefix = 0;

  bool is_v4() const { return addr.is_v4(); }
  uint8_t mapped_prefix() const { return is_v4() ? uint8_t(prefix + 96) : prefix; }
  bool contains(const IpAddr& ip) const;  // false across families
  std::string str() const;
  friend bool operator==(const IpCidr&, const IpCidr&) = default;
};

Result<uint16_t> parse_port(std::string_view text, std::string_view field);
// Comma separated ports ("9080,15020"); empty text gives an empty list; duplicates removed.
Result<std::vector<uint16_t>> parse_port_list(std::string_view text, std::string_view field);
Result<uint32_t> parse_ipv4(std::string_view text, std::string_view field);  // network order
// An IPv4 or IPv6 address ("198.18.0.1", "2001:2::1", "::ffff:198.18.0.1" is IPv4).
Result<IpAddr> parse_ip(std::string_view text, std::string_view field);
// "198.18.0.0/15", "2001:2::/48" or a bare address (a /32 or /128). Host bits are
// cleared, as iptables does.
Result<IpCidr> parse_cidr(std::string_view text, std::string_view field);
// Comma separated CIDRs of both families; "*" stands for everything (0.0.0.0/0 and ::/0,
// Istio's spelling).
Result<std::vector<IpCidr>> parse_cidr_list(std::string_view text, std::string_view field);
Result<uint32_t> parse_u32(std::string_view text, std::string_view field);

std::string ipv4_str(uint32_t addr_be);
std::string endpoint_str(uint32_t addr_be, uint16_t port);  // "198.18.0.12:9080"
std::string endpoint_str(const IpAddr& a, uint16_t port);   // "198.18.0.12:9080", "[2001:2::1]:80"
sockaddr_in make_sockaddr(uint32_t addr_be, uint16_t port);

// A socket address of either family, sized for the syscalls that take one. An IPv4
// address becomes a sockaddr_in unless `family` asks for AF_INET6 (then v4-mapped, for
// dual-stack sockets).
struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&ss); }
};
SockAddr make_sockaddr(const IpAddr& a, uint16_t port, int family = 0);
// The address and port in a sockaddr_in/sockaddr_in6; false for other families.
bool from_sockaddr(const sockaddr* sa, socklen_t len, IpAddr* addr, uint16_t* port);

}  // namespace sm
