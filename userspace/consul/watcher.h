// ConsulWatcher: a set of blocking queries against one Consul agent, driven by one thread
// with epoll. Each watch keeps its own keep-alive connection (one connection per watch, as
// Consul's own clients do: a blocking query occupies its connection until it answers) and
// follows blocking_query.h: index + wait, reset on a backwards index, jittered back-off on
// errors, a per-watch rate limit. A callback runs only when the index moved (or reset), never
// on a mere wait timeout; callers compare content to skip no-op changes.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "consul/address.h"
#include "consul/blocking_query.h"
#include "consul/http_response.h"
#include "sockmesh/unique_fd.h"

namespace sm::consul {

struct WatchOptions {
  Duration wait = std::chrono::seconds(60);  // `wait` of each blocking query
  // How long past wait + wait/16 (Consul's jitter) an answer may take before the query is
  // taken as hung and retried on a new connection.
  Duration answer_margin = std::chrono::seconds(5);
  Duration connect_timeout = std::chrono::seconds(2);
  Duration backoff_base = std::chrono::milliseconds(100);
  Duration backoff_max = std::chrono::seconds(5);
  double queries_per_second = 10;  // per watch, under churn
  double burst = 3;
};

class ConsulWatcher {
 public:
  // A successful answer whose index moved. `status` is 200, or 404 for a watch added with
  // not_found_ok (KV: no keys under the prefix; the body is then "").
  using Callback = std::function<void(const HttpResponse& response, TimePoint received)>;
  // A failed attempt (connect, timeout, non-2xx, malformed): the watch backs off and retries.
  using ErrorCallback = std::function<void(const std::string& path, const std::string& error)>;

  ConsulWatcher(ConsulAddress address, WatchOptions options);
  ~ConsulWatcher();
  ConsulWatcher(const ConsulWatcher&) = delete;
  ConsulWatcher& operator=(const ConsulWatcher&) = delete;

  void on_error(ErrorCallback cb) { on_error_ = std::move(cb); }
  // `path` is a request target without index/wait ("/v1/health/service/reviews?passing").
  uint64_t add(std::string path, bool not_found_ok, Callback cb);
  void remove(uint64_t id);
  // One round: waits up to `max_wait` for I/O or a timer, handles what is due, runs
  // callbacks (which may add and remove watches).
  void poll(Duration max_wait);

  size_t size() const { return watches_.size(); }
  // Watches whose last attempt failed (0: Consul answers every watch).
  size_t failing() const;
  // Watches that have had at least one successful answer.
  size_t answered() const;
  // Connections open now (one per watch that is connected).
  size_t connections() const;
  const ConsulAddress& address() const { return address_; }

 private:
  struct Watch;
  enum class Phase : uint8_t { waiting, connecting, sending, receiving };

  void start(Watch& w, TimePoint now);
  Status open_connection(Watch& w);
  void send_more(Watch& w, TimePoint now);
  void receive(Watch& w, TimePoint now);
  void complete(Watch& w, TimePoint now);
  void fail(Watch& w, const std::string& why, TimePoint now);
  void set_events(Watch& w, uint32_t events);
  void close_connection(Watch& w);
  std::string target(const Watch& w) const;

  ConsulAddress address_;
  WatchOptions options_;
  UniqueFd epoll_;
  std::map<uint64_t, std::unique_ptr<Watch>> watches_;
  uint64_t next_id_ = 1;
  std::mt19937_64 rng_;
  ErrorCallback on_error_;
};

}  // namespace sm::consul
