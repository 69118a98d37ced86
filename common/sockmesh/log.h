// Minimal leveled logger to stderr. One line per event; no allocation when disabled.
#pragma once

#include <cstdarg>
#include <cstdio>

namespace sm::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

Level threshold();
void set_threshold(Level l);
void write(Level l, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace sm::log

#define SM_LOG(level, ...)                                    \
  do {                                                        \
    if (::sm::log::Level::level >= ::sm::log::threshold())    \
      ::sm::log::write(::sm::log::Level::level, __VA_ARGS__); \
  } while (0)
#define SM_DEBUG(...) SM_LOG(debug, __VA_ARGS__)
#define SM_INFO(...) SM_LOG(info, __VA_ARGS__)
#define SM_WARN(...) SM_LOG(warn, __VA_ARGS__)
#define SM_ERROR(...) SM_LOG(error, __VA_ARGS__)
