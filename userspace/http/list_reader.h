// Walks the elements of a comma-separated field value (RFC 9110 5.6.1 "#rule"), as used by
// Connection, Transfer-Encoding and Content-Length. Empty elements are skipped, as the RFC
// asks, but remembered: the framing fields refuse them.
#pragma once

#include <string_view>

#include "http/ascii.h"

namespace sm::http {

class ListReader {
 public:
  explicit ListReader(std::string_view value) : rest_(value) {}

  // Stores the next non-empty element (OWS trimmed) in `element`; false at the end.
  bool next(std::string_view& element) {
    while (!done_) {
      const size_t comma = rest_.find(',');
      const std::string_view item = ascii::trim_ows(rest_.substr(0, comma));
      if (comma == std::string_view::npos) {
        done_ = true;
      } else {
        rest_.remove_prefix(comma + 1);  // "a," leaves an empty last element to visit
      }
      if (!item.empty()) {
        element = item;
        return true;
      }
      had_empty_ = true;
    }
    return false;
  }

  // An empty element was skipped ("chunked," or ", 5").
  bool had_empty() const { return had_empty_; }

 private:
  std::string_view rest_;
  bool done_ = false;
  bool had_empty_ = false;
};

// True when the list `value` has `token` as an element, in any case ("Keep-Alive, Upgrade"
// has "upgrade").
inline bool list_contains(std::string_view value, std::string_view token) {
  ListReader list(value);
  std::string_view item;
  while (list.next(item)) {
    if (ascii::iequals(item, token)) return true;
  }
  return false;
}

}  // namespace sm::http
