// Where Consul's HTTP API is and how to authenticate: --consul URL (else CONSUL_HTTP_ADDR, as
// Consul's own CLI reads it) and CONSUL_HTTP_TOKEN, sent as X-Consul-Token. Plain http only:
// an https:// address is refused rather than silently spoken to in clear text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sockmesh/result.h"

namespace sm::consul {

struct ConsulAddress {
  std::string host;  // a name, an IPv4 address or an IPv6 address (without brackets)
  uint16_t port = 8500;
  std::string token;  // "" sends no X-Consul-Token

  // host:port as a Host header and in logs ("[2001:2::1]:8500" for IPv6).
  std::string authority() const;
  std::string url() const { return "http://" + authority(); }
};

// "http://127.0.0.1:8500", "127.0.0.1:8500", "consul", "[2001:2::1]:8500". The default port
// is Consul's 8500. Errors name `field`.
Result<ConsulAddress> parse_consul_address(std::string_view text, std::string_view field);

// A GET request for `path_and_query` on a keep-alive connection, with the token if any.
std::string build_get(const ConsulAddress& addr, std::string_view path_and_query);

// Percent-encodes a path segment (a service name or KV key part) for a request target.
std::string escape_path(std::string_view segment);

}  // namespace sm::consul
