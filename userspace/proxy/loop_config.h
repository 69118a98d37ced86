// What a worker's event loop is given, whichever backend runs it (UringLoop, EpollLoop):
// its listeners and its pool of receive buffers.
#pragma once

#include <cstdint>

namespace sm::proxy {

struct LoopConfig {
  int listen_fd[2] = {-1, -1};   // outbound, inbound; -1: none
  uint32_t recv_buffers = 1024;  // rounded up to a power of two
  uint32_t recv_buffer_size = 16 * 1024;
  unsigned ring_entries = 4096;  // io_uring only
};

}  // namespace sm::proxy
