// HeaderList: a read-only view of a parsed head's fields, in received order, with the
// case-insensitive look-ups the proxy and router need. The parser owns the storage.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "http/ascii.h"
#include "http/header.h"
#include "http/list_reader.h"

namespace sm::http {

class HeaderList {
 public:
  HeaderList() = default;
  explicit HeaderList(std::span<const Header> fields) : fields_(fields) {}

  size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }
  const Header& operator[](size_t i) const { return fields_[i]; }
  auto begin() const { return fields_.begin(); }
  auto end() const { return fields_.end(); }

  // First field named `name` (any case), or nullptr.
  const Header* find(std::string_view name) const {
    for (const Header& h : fields_) {
      if (ascii::iequals(h.name, name)) return &h;
    }
    return nullptr;
  }

  // Value of the first field named `name`; empty when absent (use find() to tell apart).
  std::string_view value(std::string_view name) const {
    const Header* h = find(name);
    return h ? h->value : std::string_view{};
  }

  size_t count(std::string_view name) const {
    size_t n = 0;
    for (const Header& h : fields_) n += ascii::iequals(h.name, name) ? 1 : 0;
    return n;
  }

  // True when a list-valued field (Connection, Upgrade, ...) carries `token` in any of its
  // lines: "Connection: keep-alive, Upgrade" has the token "upgrade".
  bool has_token(std::string_view name, std::string_view token) const {
    for (const Header& h : fields_) {
      if (ascii::iequals(h.name, name) && list_contains(h.value, token)) return true;
    }
    return false;
  }

 private:
  std::span<const Header> fields_;
};

}  // namespace sm::http
