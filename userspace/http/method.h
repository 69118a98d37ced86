// The request methods whose semantics change framing or routing (RFC 9110 9.3). Any other
// token is a valid extension method and is forwarded as `other`.
#pragma once

#include <cstdint>
#include <string_view>

namespace sm::http {

enum class Method : uint8_t {
  other,
  get,
  head,
  post,
  put,
  delete_,
  connect,
  options,
  trace,
  patch
};

// Methods are case-sensitive (RFC 9110 9.1): "get" is an extension method, not GET.
constexpr Method method_from(std::string_view text) {
  switch (text.size()) {
    case 3:
      if (text == "GET") return Method::get;
      if (text == "PUT") return Method::put;
      break;
    case 4:
      if (text == "POST") return Method::post;
      if (text == "HEAD") return Method::head;
      break;
    case 5:
      if (text == "PATCH") return Method::patch;
      if (text == "TRACE") return Method::trace;
      break;
    case 6:
      if (text == "DELETE") return Method::delete_;
      break;
    case 7:
      if (text == "CONNECT") return Method::connect;
      if (text == "OPTIONS") return Method::options;
      break;
    default:
      break;
  }
  return Method::other;
}

}  // namespace sm::http
