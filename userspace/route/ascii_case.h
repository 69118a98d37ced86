// The two case-folding helpers routing needs on top of http/ascii.h (HTTP's ASCII-only
// case-insensitivity, shared with the parser): host names, header names and paths.
#pragma once

#include <string>
#include <string_view>

#include "http/ascii.h"

namespace sm::route {

constexpr bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && http::ascii::iequals(s.substr(0, prefix.size()), prefix);
}

// Build time only (allocates): domains and header names are stored lowercased.
inline std::string lower_copy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = http::ascii::lower(c);
  return out;
}

}  // namespace sm::route
