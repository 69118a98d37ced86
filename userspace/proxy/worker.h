// One worker thread of sockmesh-proxy: an event loop over its share of the listeners
// (SO_REUSEPORT) and the session that gives the bytes meaning. The loop is io_uring's or
// epoll's (Shared::event_loop); the session sees only Io. Nothing here is shared with other
// workers but what Shared holds (the route snapshot, cluster state, stats, the access log).
#pragma once

#include <cstdint>
#include <memory>

#include "proxy/epoll_loop.h"
#include "proxy/session.h"
#include "proxy/shared.h"
#include "proxy/uring_loop.h"

namespace sm::proxy {

class Worker {
 public:
  Worker(Shared& shared, uint32_t index, int outbound_fd, int inbound_fd);
  Status init();
  // Until Shared::stop.
  void run();

 private:
  Shared& shared_;
  // Exactly one of the two runs.
  std::unique_ptr<UringLoop> uring_;
  std::unique_ptr<EpollLoop> epoll_;
  Session session_;
};

}  // namespace sm::proxy
