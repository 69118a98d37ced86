// Byte-exact stream checks for spliced sockets: a pump that sends a deterministic
// pseudo-random stream with varying write sizes while reading the other direction with a
// chosen API, hashing both with SHA-256. Used by the splice tests and the e2e tier.
#pragma once

#include <cstdint>
#include <string>

namespace sm::test {

enum class ReadApi { recv, readv, io_uring, epoll, poll };
const char* to_string(ReadApi a);

struct SendSpec {
  uint64_t bytes = 0;
  uint32_t seed = 1;
  uint32_t min_write = 1;         // each write's size is drawn from [min, max]
  uint32_t max_write = 1u << 20;  // 1 MiB
  bool shutdown_after = true;     // SHUT_WR when done (the peer sees EOF)
};

struct RecvSpec {
  ReadApi api = ReadApi::recv;
  uint32_t chunk = 64 * 1024;
  uint32_t pause_us_per_chunk = 0;  // a slow reader
};

struct StreamResult {
  uint64_t sent = 0, received = 0;
  std::string sent_sha, received_sha;
  std::string error;  // empty, or what failed (send/recv errno)
  // Blocking recv()/readv() that returned EAGAIN anyway (a sockmap quirk: a wake-up for
  // write space ends the receive wait early); the pump retries them.
  uint64_t spurious_eagain = 0;

  std::string serialize() const;
  static StreamResult parse(const std::string& s);
};

// Sends `send` and receives until EOF, concurrently, on one connected socket.
StreamResult pump(int fd, const SendSpec& send, const RecvSpec& recv);

// SHA-256 (hex) of the stream that SendSpec describes, without sending it.
std::string expected_sha(const SendSpec& send);

}  // namespace sm::test
