// Limits: how much a peer may make the parsers hold or scan before it gets an error
// status. Defaults follow Envoy (60 KiB of headers, 100 fields).
#pragma once

#include <cstdint>

namespace sm::http {

struct Limits {
  // Request line (or status line) without its CRLF; longer -> 414 URI Too Long.
  uint32_t max_start_line = 16 * 1024;
  // Whole head: start line, fields, every CRLF -> 431 when exceeded. The proxy's receive
  // buffer must hold at least this much, since a head is parsed in place.
  uint32_t max_head_bytes = 60 * 1024;
  // Header fields in one head -> 431 when exceeded.
  uint32_t max_headers = 100;
  // One chunk-size line with its extensions, without CRLF -> 400. Chunk extensions are
  // unbounded in the RFC; bounding them keeps a slow drip of extension bytes from pinning
  // a connection forever.
  uint32_t max_chunk_line = 4096;
  // The trailer section of a chunked body, every CRLF included -> 431.
  uint32_t max_trailer_bytes = 60 * 1024;
};

}  // namespace sm::http
