// Identifier parsing, encoding and generation; see ids.h.
#include "tracing/ids.h"

#include <random>

namespace sm::tracing {
namespace {

constexpr char kHex[] = "0123456789abcdef";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<uint64_t> parse_hex(std::string_view s) {
  uint64_t v = 0;
  for (char c : s) {
    int d = hex_value(c);
    if (d < 0) return std::nullopt;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return v;
}

std::mt19937_64& rng() {
  thread_local std::mt19937_64 gen{[] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }()};
  return gen;
}

}  // namespace

void hex64(uint64_t v, char out[16]) {
  for (int i = 0; i < 16; ++i) out[i] = kHex[(v >> (60 - 4 * i)) & 0xf];
}

std::string hex64(uint64_t v) {
  std::string s(16, '0');
  hex64(v, s.data());
  return s;
}

std::string TraceId::hex() const {
  return wide ? hex64(high) + hex64(low) : hex64(low);
}

std::optional<uint64_t> parse_span_id(std::string_view s) {
  if (s.size() != 16) return std::nullopt;
  auto v = parse_hex(s);
  if (!v || *v == 0) return std::nullopt;
  return v;
}

std::optional<TraceId> parse_trace_id(std::string_view s) {
  TraceId id;
  if (s.size() == 32) {
    auto hi = parse_hex(s.substr(0, 16)), lo = parse_hex(s.substr(16));
    if (!hi || !lo) return std::nullopt;
    id = TraceId{*hi, *lo, true};
  } else if (s.size() == 16) {
    auto lo = parse_hex(s);
    if (!lo) return std::nullopt;
    id = TraceId{0, *lo, false};
  } else {
    return std::nullopt;
  }
  if (!id.valid()) return std::nullopt;
  return id;
}

uint64_t random_id() {
  for (;;) {
    if (uint64_t v = rng()(); v != 0) return v;
  }
}

TraceId random_trace_id(bool wide) {
  return wide ? TraceId{random_id(), random_id(), true} : TraceId{0, random_id(), false};
}

std::string random_request_id() {
  uint64_t a = rng()(), b = rng()();
  a = (a & 0xffffffffffff0fffull) | 0x0000000000004000ull;  // version 4
  b = (b & 0x3fffffffffffffffull) | 0x8000000000000000ull;  // RFC 4122 variant
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) out.push_back('-');
    uint64_t word = i < 16 ? a : b;
    out.push_back(kHex[(word >> (60 - 4 * (i % 16))) & 0xf]);
  }
  return out;
}

}  // namespace sm::tracing
