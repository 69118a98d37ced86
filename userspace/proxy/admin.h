// The admin API on 127.0.0.1:<admin-port>, Envoy's endpoints and shapes: GET /config_dump,
// /clusters, /stats, /stats/prometheus, /server_info, /listeners, /ready, /healthz; POST
// /reset_counters, /logging (mutations are POST only, 405 otherwise). Its own thread, serving many
// clients at once with non-blocking sockets: a slow or stalled client (a byte every few seconds, a
// response never read) delays neither /ready nor shutdown, and is dropped at its deadline. It
// serves operators and scrapers, never the data path, and reads only shared state.
#pragma once

#include <map>
#include <string>
#include <thread>
#include <vector>

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
  // Binds address:port (before privileges are dropped) and starts serving.
  Status start(const IpAddr& address, uint16_t port);
  // Serves on a listening socket taken over from the proxy of the previous epoch.
  Status start(UniqueFd listening);
  // Stops serving and closes this process's copy of the socket (a hot restart's parent:
  // the new proxy serves on the same socket).
  void stop();
  int listen_fd() const { return listen_.get(); }
  // One request, by method and target (path and query): the whole API, testable without
  // sockets. Query values are percent-decoded; a parameter without '=' has value "".
  AdminResponse handle(std::string_view method, std::string_view target) const;
  // The whole HTTP response to a request head (which ends in an empty line).
  std::string respond(std::string_view request) const;

  // Clients served at once (more wait in the backlog), the longest request head, and how
  // long a client may take to send its request and to read the response.
  static constexpr size_t kMaxClients = 32;
  static constexpr size_t kMaxRequest = 16 * 1024;
  static constexpr int kRequestTimeoutMs = 5'000;
  static constexpr int kResponseTimeoutMs = 10'000;

 private:
  struct Client {
    UniqueFd fd;
    std::string in, out;
    size_t sent = 0;
    int64_t deadline_ms = 0;
  };
  void serve();
  void accept_clients();
  // Reads, answers and writes what the socket allows; false once the client is done.
  bool step(Client& c, int64_t now_ms);
  using Query = std::map<std::string, std::string>;
  enum class ServerState { live = 0, draining = 1, pre_initializing = 2 };  // Envoy's values
  ServerState server_state() const;
  AdminResponse config_dump(const Query& q) const;
  std::string native_config_dump() const;
  std::string clusters() const;
  AdminResponse stats(const Query& q) const;
  std::string prometheus() const;
  std::string server_info() const;
  std::string listeners(const Query& q) const;
  AdminResponse logging(const Query& q) const;
  AdminResponse drain_listeners(const Query& q) const;
  std::string reset_counters() const;

  Shared& shared_;
  UniqueFd listen_;
  UniqueFd wake_;  // eventfd: stop() wakes the loop
  std::thread thread_;
  std::vector<Client> clients_;  // the serving thread's only
};

}  // namespace sm::proxy
