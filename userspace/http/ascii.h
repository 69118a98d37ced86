// Character classes of RFC 9110 5.6 / RFC 9112 and ASCII case-insensitive comparison: the
// vocabulary every HTTP/1.1 check is built from. Table-driven, one load per byte.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace sm::http::ascii {

enum : uint8_t {
  kTchar = 1 << 0,   // token character (method, field name, coding, chunk-ext name)
  kField = 1 << 1,   // field-vchar / SP / HTAB / obs-text: allowed inside a field value
  kTarget = 1 << 2,  // request-target byte: visible ASCII but '#', or obs-text (no SP, CTL)
  kHost = 1 << 3,    // uri-host / port bytes: unreserved, pct-encoded, sub-delims, ':', '[', ']'
};

inline constexpr std::array<uint8_t, 256> kClass = [] {
  std::array<uint8_t, 256> t{};
  auto add = [&t](std::string_view chars, uint8_t bit) {
    for (char c : chars) t[static_cast<unsigned char>(c)] |= bit;
  };
  for (int c = 0; c < 256; ++c) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool digit = c >= '0' && c <= '9';
    if (alpha || digit) t[c] |= kTchar | kHost;
    if ((c >= 0x21 && c <= 0x7e) || c >= 0x80) t[c] |= kField | kTarget;
  }
  add(" \t", kField);
  t['#'] &= static_cast<uint8_t>(~kTarget);  // a fragment never travels (RFC 9112 3.2)
  add("!#$%&'*+-.^_`|~", kTchar);
  add("-._~%!$&'()*+,;=:[]", kHost);
  return t;
}();

constexpr bool is(unsigned char c, uint8_t cls) {
  return (kClass[c] & cls) != 0;
}
constexpr bool is_tchar(char c) {
  return is(static_cast<unsigned char>(c), kTchar);
}
constexpr bool is_field_char(char c) {
  return is(static_cast<unsigned char>(c), kField);
}
constexpr bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
constexpr bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
constexpr bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

constexpr char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

// -1 when c is not a hex digit.
constexpr int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  const char l = lower(c);
  if (l >= 'a' && l <= 'f') return l - 'a' + 10;
  return -1;
}

// Field names, codings and connection options compare case-insensitively (RFC 9110 5.1).
constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// True when every byte of s is in class cls (and s is not empty).
constexpr bool all_of(std::string_view s, uint8_t cls) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is(static_cast<unsigned char>(c), cls)) return false;
  }
  return true;
}

constexpr std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace sm::http::ascii
