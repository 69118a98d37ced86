// Logger backing store: a process-wide threshold and a single formatted write per line.
#include "sockmesh/log.h"

#include <atomic>
#include <cstring>
#include <ctime>

namespace sm::log {
namespace {
std::atomic<Level> g_threshold{Level::info};
const char* name(Level l) {
  switch (l) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    case Level::error:
      return "error";
  }
  return "?";
}
}  // namespace

Level threshold() {
  return g_threshold.load(std::memory_order_relaxed);
}
void set_threshold(Level l) {
  g_threshold.store(l, std::memory_order_relaxed);
}

void write(Level l, const char* fmt, ...) {
  char line[2048];
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm tmv{};
  gmtime_r(&ts.tv_sec, &tmv);
  int n = std::snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %s ", tmv.tm_hour, tmv.tm_min,
                        tmv.tm_sec, ts.tv_nsec / 1000000, name(l));
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(line + n, sizeof line - static_cast<size_t>(n) - 1, fmt, ap);
  va_end(ap);
  size_t len = static_cast<size_t>(n) + (m < 0 ? 0 : static_cast<size_t>(m));
  if (len > sizeof line - 2) len = sizeof line - 2;
  line[len++] = '\n';
  fwrite(line, 1, len, stderr);
}

}  // namespace sm::log
