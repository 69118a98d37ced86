// What a worker's event loop is given, whichever backend runs it (UringLoop, EpollLoop):
// its listeners and its pool of receive buffers.
#pragma once

#include <atomic>
#include <cstdint>

namespace sm::proxy {

// What a worker does with a listener: accept; stop accepting (the socket was handed to a
// new process, which accepts what is queued); or take what is queued and stop, the socket
// being closed next (new connects are refused).
enum class Listening : uint8_t { accept, stop, close };

struct LoopConfig {
  int listen_fd[2] = {-1, -1};   // outbound, inbound; -1: none
  uint32_t recv_buffers = 1024;  // rounded up to a power of two
  uint32_t recv_buffer_size = 16 * 1024;
  unsigned ring_entries = 4096;  // io_uring only
  // Watched every round (null: always accept), per listener: what to do with it, and the
  // count to bump once this loop no longer accepts on it (Shared::listening).
  const std::atomic<Listening>* listening = nullptr;
  std::atomic<uint32_t>* listeners_stopped = nullptr;
};

}  // namespace sm::proxy
