// RequestHead and ResponseHead: a parsed head plus the message semantics derived from it
// (RFC 9112 6.3 framing, keep-alive, upgrade, authority). Every view points into the
// caller's receive buffer; a head is valid until its parser is reset or the bytes move.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/header_list.h"
#include "http/method.h"

namespace sm::http {

// How the bytes after a head are delimited.
enum class BodyKind : uint8_t {
  none,         // no body: the next message starts right after the head
  length,       // Content-Length bytes (never 0: Content-Length: 0 is `none`)
  chunked,      // chunked transfer coding, forwarded as received, up to the last chunk + trailers
  until_close,  // a response delimited by the server closing the connection
  tunnel,       // a 2xx to CONNECT or a 101: bytes are no longer HTTP, splice both ways
};

struct BodyFraming {
  BodyKind kind = BodyKind::none;
  uint64_t length = 0;  // for BodyKind::length
  friend bool operator==(const BodyFraming&, const BodyFraming&) = default;
};

// RFC 9112 3.2: which of the four request-target forms was received.
enum class TargetForm : uint8_t { origin, absolute, authority, asterisk };

struct RequestHead {
  std::string_view method_text;  // as received, e.g. "GET" or an extension method
  Method method = Method::other;
  std::string_view target;  // as received
  TargetForm target_form = TargetForm::origin;
  std::string_view version;   // "HTTP/1.1" as received
  uint8_t version_minor = 1;  // 0 or 1 (other versions are refused with 505)
  HeaderList headers;

  // The routing key: the authority of an absolute-form or authority-form (CONNECT) target,
  // else the Host field, as Envoy derives :authority. Empty when the request names none.
  std::string_view authority;
  BodyFraming body;
  bool keep_alive = true;        // the connection may carry another request after this one
  bool expect_continue = false;  // "Expect: 100-continue" on an HTTP/1.1 request
  bool upgrade = false;          // Upgrade offered and listed in Connection (HTTP/1.1)
  size_t head_size = 0;          // bytes from the buffer start to the body

  bool is_connect() const { return method == Method::connect; }
};

struct ResponseHead {
  std::string_view version;
  uint8_t version_minor = 1;
  uint16_t status = 0;
  std::string_view reason;
  HeaderList headers;
  BodyFraming body;
  bool keep_alive = true;
  size_t head_size = 0;

  // 1xx other than 101: a final response for the same request follows (RFC 9110 15.2).
  bool interim() const { return status >= 100 && status < 200 && status != 101; }
};

}  // namespace sm::http
