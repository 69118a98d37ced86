// Result<T>: the error type of every I/O and kernel path. An Error carries the errno
// and what was being done, so a failure reads "open /proc/42/ns/net: No such file".
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace sm {

struct Error {
  int code = 0;         // errno value (positive), 0 when not an OS error
  std::string context;  // what we were doing, e.g. "bpf_map_update_elem sm_netns_v1"

  std::string message() const {
    if (code == 0) return context;
    return context + ": " + std::strerror(code);
  }
};

// An Error from the current errno (or from a libbpf-style negative return value).
inline Error errno_error(std::string context, int code = errno) {
  return Error{code < 0 ? -code : code, std::move(context)};
}
inline Error plain_error(std::string context) {
  return Error{0, std::move(context)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error e) : v_(std::move(e)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : err_(std::move(e)), ok_(false) {}
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return err_; }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace sm
