// Parsing and formatting of the network values users type: ports, port lists, IPv4
// addresses and CIDRs. Errors name the field ("--exclude-cidrs: '198.18.0.0/33': prefix
// length must be 0..32") so a bad flag or config is found at once.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sockmesh/result.h"

namespace sm {

struct Ipv4Cidr {
  uint32_t addr_be = 0;  // network byte order, host bits cleared
  uint8_t prefix = 0;    // 0..32

  bool contains(uint32_t ip_be) const;
  std::string str() const;
  friend bool operator==(const Ipv4Cidr&, const Ipv4Cidr&) = default;
};

Result<uint16_t> parse_port(std::string_view text, std::string_view field);
// Comma separated ports ("9080,15020"); empty text gives an empty list; duplicates removed.
Result<std::vector<uint16_t>> parse_port_list(std::string_view text, std::string_view field);
Result<uint32_t> parse_ipv4(std::string_view text, std::string_view field);  // network order
// "198.18.0.0/15" or a bare address (a /32). Host bits are cleared, as iptables does.
Result<Ipv4Cidr> parse_cidr(std::string_view text, std::string_view field);
// Comma separated CIDRs; "*" stands for 0.0.0.0/0 (Istio's spelling of "everything").
Result<std::vector<Ipv4Cidr>> parse_cidr_list(std::string_view text, std::string_view field);
Result<uint32_t> parse_u32(std::string_view text, std::string_view field);

std::string ipv4_str(uint32_t addr_be);
std::string endpoint_str(uint32_t addr_be, uint16_t port);  // "198.18.0.12:9080"
sockaddr_in make_sockaddr(uint32_t addr_be, uint16_t port);

}  // namespace sm
