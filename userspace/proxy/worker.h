// One worker thread of sockmesh-proxy: an io_uring event loop over its share of the
// listeners (SO_REUSEPORT) and the session that gives the bytes meaning. Nothing here is
// shared with other workers but what Shared holds (the route snapshot, cluster state,
// stats, the access log).
#pragma once

#include <cstdint>
#include <memory>

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
  UringLoop loop_;
  Session session_;
};

}  // namespace sm::proxy
