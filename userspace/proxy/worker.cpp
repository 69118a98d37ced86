// Worker; see worker.h.
#include "proxy/worker.h"

namespace sm::proxy {
namespace {

LoopConfig loop_config(Shared& shared, int outbound_fd, int inbound_fd) {
  const Options& o = shared.opts;
  LoopConfig c;
  c.listening = shared.listening;
  c.listeners_stopped = shared.listeners_stopped;
  c.listen_fd[0] = outbound_fd;
  c.listen_fd[1] = inbound_fd;
  c.recv_buffers = o.recv_buffers;
  c.recv_buffer_size = o.recv_buffer_size;
  return c;
}

template <typename Loop>
std::unique_ptr<Loop> make_if(bool wanted, const LoopConfig& c) {
  return wanted ? std::make_unique<Loop>(c) : nullptr;
}

}  // namespace

Worker::Worker(Shared& shared, uint32_t index, int outbound_fd, int inbound_fd)
    : shared_(shared),
      uring_(make_if<UringLoop>(shared.event_loop != EventLoop::epoll,
                                loop_config(shared, outbound_fd, inbound_fd))),
      epoll_(make_if<EpollLoop>(shared.event_loop == EventLoop::epoll,
                                loop_config(shared, outbound_fd, inbound_fd))),
      session_(shared, uring_ ? static_cast<Io&>(*uring_) : static_cast<Io&>(*epoll_), index) {}

Status Worker::init() {
  return uring_ ? uring_->init(&session_) : epoll_->init(&session_);
}

void Worker::run() {
  shared_.workers_running.fetch_add(1);
  if (uring_)
    uring_->run(shared_.stop);
  else
    epoll_->run(shared_.stop);
  shared_.workers_running.fetch_sub(1);
}

}  // namespace sm::proxy
