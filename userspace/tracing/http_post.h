// The collector's HTTP/1.1 client: one POST per call on a fresh connection, every step
// bounded by a deadline. It runs on the reporter's thread only, never on the data path.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "sockmesh/result.h"

namespace sm::tracing {

struct PostTimeouts {
  std::chrono::milliseconds connect{1000};
  std::chrono::milliseconds total{2000};  // connect + send + the whole response
};

// "host:port", "[v6]:port"; the host may be a name (resolved at each call).
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
Result<HostPort> parse_host_port(std::string_view s);

// POSTs `body` (application/json) to http://host:port<path>; the response's status code.
Result<int> http_post(const HostPort& to, std::string_view path, std::string_view body,
                      const PostTimeouts& t);

}  // namespace sm::tracing
