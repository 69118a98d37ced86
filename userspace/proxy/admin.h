// The admin API on 127.0.0.1:<admin-port>: /config_dump, /clusters, /stats,
// /stats/prometheus, /ready, /healthz. Its own thread and a blocking loop: it serves
// operators and scrapers, never the data path, and reads only shared state.
#pragma once

#include <string>
#include <thread>

#include "proxy/shared.h"
#include "sockmesh/unique_fd.h"

namespace sm::proxy {

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
};

class Admin {
 public:
  explicit Admin(Shared& shared) : shared_(shared) {}
  ~Admin();
  // Binds 127.0.0.1:port (before privileges are dropped) and starts serving.
  Status start(uint16_t port);
  void stop();
  // One request, by method and path: the whole API, testable without sockets.
  AdminResponse handle(std::string_view method, std::string_view path) const;

 private:
  void serve();
  std::string config_dump() const;
  std::string clusters() const;
  std::string stats() const;
  std::string prometheus() const;

  Shared& shared_;
  UniqueFd listen_;
  UniqueFd wake_;  // eventfd: stop() wakes the loop
  std::thread thread_;
};

}  // namespace sm::proxy
