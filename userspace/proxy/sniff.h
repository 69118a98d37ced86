// Protocol sniffing on a client's first bytes: HTTP/1.x goes to the HTTP path, anything
// else (TLS, Redis, HTTP/2 prior knowledge) is passed through byte for byte.
#pragma once

#include <string_view>

namespace sm::proxy {

enum class Sniff { need_more, http1, opaque };

// Decides as soon as the bytes allow: an HTTP/1.x request starts with a method token
// followed by a space (RFC 9110 9.1, tokens up to 20 characters here) and is not the
// HTTP/2 connection preface.
Sniff sniff(std::string_view first_bytes);

}  // namespace sm::proxy
