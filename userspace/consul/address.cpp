// Consul address parsing and request building; see address.h.
#include "consul/address.h"

#include "sockmesh/net.h"

namespace sm::consul {

std::string ConsulAddress::authority() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

Result<ConsulAddress> parse_consul_address(std::string_view text, std::string_view field) {
  const std::string f(field);
  auto bad = [&](std::string_view why) {
    return plain_error(f + ": '" + std::string(text) + "': " + std::string(why));
  };
  std::string_view rest = text;
  if (size_t scheme = rest.find("://"); scheme != std::string_view::npos) {
    std::string_view s = rest.substr(0, scheme);
    if (s == "https")
      return bad(
          "https is not supported: sockmesh speaks plain http to Consul (use a local agent)");
    if (s != "http") return bad("scheme must be http");
    rest.remove_prefix(scheme + 3);
  }
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    if (rest.substr(slash) != "/") return bad("a path is not supported");
    rest = rest.substr(0, slash);
  }
  if (rest.empty()) return bad("needs a host");
  ConsulAddress a;
  std::string_view port;
  if (rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return bad("unterminated '['");
    a.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("expected ':' after ']'");
      port = rest.substr(1);
    }
    if (!parse_ip(a.host, f)) return bad("not an IPv6 address in brackets");
  } else if (rest.find(':') != rest.rfind(':')) {
    a.host = std::string(rest);  // a bare IPv6 address
    if (!parse_ip(a.host, f)) return bad("not an address");
  } else {
    size_t colon = rest.find(':');
    a.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) port = rest.substr(colon + 1);
  }
  if (a.host.empty()) return bad("needs a host");
  for (char c : a.host)
    if (static_cast<unsigned char>(c) <= ' ' || c == '@') return bad("invalid host");
  if (!port.empty()) {
    auto p = parse_port(port, f);
    if (!p) return bad("port must be 1..65535");
    a.port = *p;
  }
  return a;
}

std::string build_get(const ConsulAddress& addr, std::string_view path_and_query) {
  std::string r;
  r.reserve(160 + path_and_query.size() + addr.token.size());
  r += "GET ";
  r += path_and_query;
  r += " HTTP/1.1\r\nHost: ";
  r += addr.authority();
  r += "\r\nUser-Agent: sockmesh-proxy\r\nAccept: application/json\r\n";
  if (!addr.token.empty()) {
    r += "X-Consul-Token: ";
    r += addr.token;
    r += "\r\n";
  }
  r += "\r\n";
  return r;
}

std::string escape_path(std::string_view segment) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : segment) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.' || c == '~' || c == '/';
    if (plain) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace sm::consul
