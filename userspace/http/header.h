// The one header-field view shared by the HTTP parser and the router: both sides see
// names and values as slices of the connection's receive buffer (no copies).
#pragma once

#include <string_view>

namespace sm::http {

struct Header {
  std::string_view name;   // as received (case preserved); compare case-insensitively
  std::string_view value;  // leading/trailing whitespace already stripped
};

}  // namespace sm::http
