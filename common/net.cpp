// Strict parsers for user-typed network values; see sockmesh/net.h.
#include "sockmesh/net.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

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

bool Ipv4Cidr::contains(uint32_t ip_be) const {
  if (prefix == 0) return true;
  uint32_t mask = prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix);
  return (ntohl(ip_be) & mask) == ntohl(addr_be);
}

std::string Ipv4Cidr::str() const {
  return ipv4_str(addr_be) + "/" + std::to_string(prefix);
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

Result<Ipv4Cidr> parse_cidr(std::string_view text, std::string_view field) {
  text = trim(text);
  if (text == "*") return Ipv4Cidr{0, 0};
  size_t slash = text.find('/');
  auto addr = parse_ipv4(text.substr(0, slash), field);
  if (!addr) return field_error(field, text, "not an IPv4 address or CIDR");
  uint8_t prefix = 32;
  if (slash != std::string_view::npos) {
    std::string_view pl = text.substr(slash + 1);
    uint32_t v = 0;
    auto [p, ec] = std::from_chars(pl.data(), pl.data() + pl.size(), v);
    if (pl.empty() || ec != std::errc() || p != pl.data() + pl.size() || v > 32)
      return field_error(field, text, "prefix length must be 0..32");
    prefix = static_cast<uint8_t>(v);
  }
  Ipv4Cidr c{*addr, prefix};
  uint32_t mask = prefix == 0 ? 0 : (prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix));
  c.addr_be = htonl(ntohl(c.addr_be) & mask);
  return c;
}

Result<std::vector<Ipv4Cidr>> parse_cidr_list(std::string_view text, std::string_view field) {
  std::vector<Ipv4Cidr> out;
  Status s = split_list(text, [&](std::string_view item) -> Status {
    auto c = parse_cidr(item, field);
    if (!c) return c.error();
    if (std::find(out.begin(), out.end(), *c) == out.end()) out.push_back(*c);
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

sockaddr_in make_sockaddr(uint32_t addr_be, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = addr_be;
  sa.sin_port = htons(port);
  return sa;
}

}  // namespace sm
