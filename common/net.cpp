// Strict parsers for user-typed network values; see sockmesh/net.h.
#include "sockmesh/net.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace sm {
namespace {

Error field_error(std::string_view field, std::string_view text, std::string_view why) {
  std::string msg(field);
  msg += ": '";
  msg += text;
  msg += "': ";
  msg += why;
  return plain_error(std::move(msg));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

template <typename F>
auto split_list(std::string_view text, F&& each) -> Status {
  text = trim(text);
  if (text.empty()) return {};
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view item = trim(text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (Status s = each(item); !s) return s;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return {};
}

}  // namespace

IpAddr IpAddr::v4(uint32_t addr_be) {
  IpAddr a;
  a.bytes[10] = a.bytes[11] = 0xff;
  std::memcpy(&a.bytes[12], &addr_be, 4);
  return a;
}

IpAddr IpAddr::v6(const in6_addr& in) {
  IpAddr a;
  std::memcpy(a.bytes.data(), &in, 16);
  return a;
}

bool IpAddr::is_v4() const {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(bytes.data(), kMapped, 12) == 0;
}

uint32_t IpAddr::v4_be() const {
  uint32_t v;
  std::memcpy(&v, &bytes[12], 4);
  return v;
}

in6_addr IpAddr::in6() const {
  in6_addr a;
  std::memcpy(&a, bytes.data(), 16);
  return a;
}

bool IpAddr::is_loopback() const {
  if (is_v4()) return bytes[12] == 127;
  return *this == IpAddr::v6(in6addr_loopback);
}

bool IpAddr::is_unspecified() const {
  if (is_v4()) return v4_be() == 0;
  return *this == IpAddr{};
}

std::string IpAddr::str() const {
  if (is_v4()) return ipv4_str(v4_be());
  char buf[INET6_ADDRSTRLEN] = {};
  in6_addr a = in6();
  inet_ntop(AF_INET6, &a, buf, sizeof buf);
  return buf;
}

namespace {
// Clears the bits after the first `bits` (counted from the most significant).
void keep_prefix(std::array<uint8_t, 16>& b, unsigned bits) {
  for (unsigned i = 0; i < 16; ++i) {
    unsigned have = bits > i * 8 ? bits - i * 8 : 0;
    if (have >= 8) continue;
    b[i] &= static_cast<uint8_t>(0xff00u >> have);
  }
}
}  // namespace

bool IpCidr::contains(const IpAddr& ip) const {
  if (ip.is_v4() != is_v4()) return false;
  IpAddr masked = ip;
  keep_prefix(masked.bytes, mapped_prefix());
  return masked == addr;
}

std::string IpCidr::str() const {
  return addr.str() + "/" + std::to_string(prefix);
}

Result<uint32_t> parse_u32(std::string_view text, std::string_view field) {
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size())
    return field_error(field, text, "not a number");
  return v;
}

Result<uint16_t> parse_port(std::string_view text, std::string_view field) {
  text = trim(text);
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec == std::errc::result_out_of_range)
    return field_error(field, text, "port must be 1..65535");
  if (ec != std::errc() || p != text.data() + text.size())
    return field_error(field, text, "not a port number");
  if (v < 1 || v > 65535) return field_error(field, text, "port must be 1..65535");
  return static_cast<uint16_t>(v);
}

Result<std::vector<uint16_t>> parse_port_list(std::string_view text, std::string_view field) {
  std::vector<uint16_t> out;
  Status s = split_list(text, [&](std::string_view item) -> Status {
    auto p = parse_port(item, field);
    if (!p) return p.error();
    out.push_back(*p);
    return {};
  });
  if (!s) return s.error();
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Result<uint32_t> parse_ipv4(std::string_view text, std::string_view field) {
  text = trim(text);
  // inet_pton is strict (no octal, no short forms), which is what we want.
  std::string buf(text);
  in_addr a{};
  if (buf.empty() || inet_pton(AF_INET, buf.c_str(), &a) != 1)
    return field_error(field, text, "not an IPv4 address");
  return a.s_addr;
}

Result<IpAddr> parse_ip(std::string_view text, std::string_view field) {
  text = trim(text);
  std::string buf(text);
  in_addr a4{};
  in6_addr a6{};
  if (!buf.empty() && inet_pton(AF_INET, buf.c_str(), &a4) == 1) return IpAddr::v4(a4.s_addr);
  if (!buf.empty() && inet_pton(AF_INET6, buf.c_str(), &a6) == 1) return IpAddr::v6(a6);
  return field_error(field, text, "not an IP address");
}

Result<IpCidr> parse_cidr(std::string_view text, std::string_view field) {
  text = trim(text);
  size_t slash = text.find('/');
  auto addr = parse_ip(text.substr(0, slash), field);
  if (!addr) return field_error(field, text, "not an IP address or CIDR");
  unsigned max = addr->is_v4() ? 32 : 128;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    std::string_view pl = text.substr(slash + 1);
    uint32_t v = 0;
    auto [p, ec] = std::from_chars(pl.data(), pl.data() + pl.size(), v);
    if (pl.empty() || ec != std::errc() || p != pl.data() + pl.size() || v > max)
      return field_error(field, text, "prefix length must be 0.." + std::to_string(max));
    prefix = v;
  }
  IpCidr c{*addr, static_cast<uint8_t>(prefix)};
  keep_prefix(c.addr.bytes, c.mapped_prefix());
  return c;
}

Result<std::vector<IpCidr>> parse_cidr_list(std::string_view text, std::string_view field) {
  std::vector<IpCidr> out;
  auto add = [&](const IpCidr& c) {
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  };
  Status s = split_list(text, [&](std::string_view item) -> Status {
    if (item == "*") {
      add(IpCidr{IpAddr::v4(0), 0});
      add(IpCidr{IpAddr{}, 0});
      return {};
    }
    auto c = parse_cidr(item, field);
    if (!c) return c.error();
    add(*c);
    return {};
  });
  if (!s) return s.error();
  return out;
}

std::string ipv4_str(uint32_t addr_be) {
  char buf[INET_ADDRSTRLEN] = {};
  in_addr a{addr_be};
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

std::string endpoint_str(uint32_t addr_be, uint16_t port) {
  return ipv4_str(addr_be) + ":" + std::to_string(port);
}

std::string endpoint_str(const IpAddr& a, uint16_t port) {
  if (a.is_v4()) return endpoint_str(a.v4_be(), port);
  return "[" + a.str() + "]:" + std::to_string(port);
}

sockaddr_in make_sockaddr(uint32_t addr_be, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = addr_be;
  sa.sin_port = htons(port);
  return sa;
}

SockAddr make_sockaddr(const IpAddr& a, uint16_t port, int family) {
  SockAddr out;
  if (a.is_v4() && family != AF_INET6) {
    sockaddr_in sa = make_sockaddr(a.v4_be(), port);
    std::memcpy(&out.ss, &sa, sizeof sa);
    out.len = sizeof sa;
    return out;
  }
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(port);
  sa.sin6_addr = a.in6();
  std::memcpy(&out.ss, &sa, sizeof sa);
  out.len = sizeof sa;
  return out;
}

bool from_sockaddr(const sockaddr* sa, socklen_t len, IpAddr* addr, uint16_t* port) {
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in in;
    std::memcpy(&in, sa, sizeof in);
    *addr = IpAddr::v4(in.sin_addr.s_addr);
    *port = ntohs(in.sin_port);
    return true;
  }
  if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 in6;
    std::memcpy(&in6, sa, sizeof in6);
    *addr = IpAddr::v6(in6.sin6_addr);
    *port = ntohs(in6.sin6_port);
    return true;
  }
  return false;
}

}  // namespace sm
