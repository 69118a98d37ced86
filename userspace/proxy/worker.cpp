// Worker; see worker.h.
#include "proxy/worker.h"

namespace sm::proxy {
namespace {

LoopConfig loop_config(const Options& o, int outbound_fd, int inbound_fd) {
  LoopConfig c;
  c.listen_fd[0] = outbound_fd;
  c.listen_fd[1] = inbound_fd;
  c.recv_buffers = o.recv_buffers;
  c.recv_buffer_size = o.recv_buffer_size;
  return c;
}

}  // namespace

Worker::Worker(Shared& shared, uint32_t index, int outbound_fd, int inbound_fd)
    : shared_(shared),
      loop_(loop_config(shared.opts, outbound_fd, inbound_fd)),
      session_(shared, loop_, index) {}

Status Worker::init() {
  return loop_.init(&session_);
}

void Worker::run() {
  shared_.workers_running.fetch_add(1);
  loop_.run(shared_.stop);
  shared_.workers_running.fetch_sub(1);
}

}  // namespace sm::proxy
