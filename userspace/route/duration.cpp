// Protobuf JSON durations; see duration.h.
#include "route/duration.h"

#include <charconv>
#include <cstdint>
#include <cstdio>

namespace sm::route {
namespace {

// Keeps seconds * 1e9 inside int64 nanoseconds (about 292 years).
constexpr uint64_t kMaxSeconds = 9'000'000'000ull;

Error duration_error(std::string_view field, std::string_view text) {
  std::string msg(field);
  msg += ": '";
  msg += text;
  msg += "': not a duration (want seconds with an 's' suffix, e.g. \"15s\" or \"0.5s\")";
  return plain_error(std::move(msg));
}

bool all_digits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return !s.empty();
}

}  // namespace

Result<Duration> parse_duration(std::string_view text, std::string_view field) {
  if (text.size() < 2 || text.back() != 's') return duration_error(field, text);
  std::string_view num = text.substr(0, text.size() - 1);
  std::string_view whole = num;
  std::string_view frac;
  if (size_t dot = num.find('.'); dot != std::string_view::npos) {
    whole = num.substr(0, dot);
    frac = num.substr(dot + 1);
    if (!all_digits(frac) || frac.size() > 9) return duration_error(field, text);
  }
  if (!all_digits(whole)) return duration_error(field, text);
  uint64_t secs = 0;
  auto [p, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), secs);
  if (ec != std::errc() || secs > kMaxSeconds) return duration_error(field, text);
  int64_t nanos = 0;
  for (size_t i = 0; i < 9; ++i) nanos = nanos * 10 + (i < frac.size() ? frac[i] - '0' : 0);
  return Duration(static_cast<int64_t>(secs) * 1'000'000'000 + nanos);
}

std::string format_duration(Duration d) {
  int64_t ns = d.count();
  int64_t secs = ns / 1'000'000'000;
  int64_t frac = ns % 1'000'000'000;
  std::string out = std::to_string(secs);
  char buf[16];
  if (frac == 0) {
    // whole seconds: no fraction
  } else if (frac % 1'000'000 == 0) {
    std::snprintf(buf, sizeof buf, ".%03lld", static_cast<long long>(frac / 1'000'000));
    out += buf;
  } else if (frac % 1'000 == 0) {
    std::snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(frac / 1'000));
    out += buf;
  } else {
    std::snprintf(buf, sizeof buf, ".%09lld", static_cast<long long>(frac));
    out += buf;
  }
  out += 's';
  return out;
}

}  // namespace sm::route
