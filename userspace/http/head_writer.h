// write_head: serializes a parsed head for forwarding with the proxy's edits applied in the
// same pass (fields dropped, overwritten, appended). Field bytes are copied as received.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "http/header.h"
#include "http/message_head.h"

namespace sm::http {

struct HeadEdits {
  std::span<const std::string_view> remove = {};  // field names, any case
  // RFC 9110 7.6.1: drop Connection, the fields it names, Keep-Alive, Proxy-Connection, TE
  // and Upgrade (an upgrade is re-offered through `add`). Content-Length, Transfer-Encoding
  // and Host are never dropped because Connection names them: bodies are forwarded as
  // received, so their framing must travel with them.
  bool remove_hop_by_hop = false;
  std::span<const Header> set = {};  // replaces every field of that name: {"server", "sockmesh"}
  std::span<const Header> add = {};  // appended as given: x-request-id, x-forwarded-proto...
  std::string_view target = {};      // requests only: replaces the request-target when not empty
};

// Writes the head (start line, fields, final CRLF) into `out` and returns its size. When
// that exceeds out.size(), `out` holds a truncated head: grow it to the returned size and
// call again.
size_t write_head(const RequestHead& head, const HeadEdits& edits, std::span<char> out);
size_t write_head(const ResponseHead& head, const HeadEdits& edits, std::span<char> out);

}  // namespace sm::http
