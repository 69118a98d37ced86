// The proxy e2e topology (mesh.h) plus a Consul in the app netns on 127.0.0.1:8500: the real
// `consul agent -dev` when `consul` is on PATH (or SM_CONSUL names a binary), else the
// project's Consul double. The sidecar is started with --consul and a --state-dir of its own.
#pragma once

#include <memory>
#include <string>

#include "mesh.h"

namespace sm::test {

class ControlMesh : public ProxyMesh {
 protected:
  static constexpr uint16_t kConsulPort = 8500;

  void TearDown() override;

  // ---- Consul
  void start_consul();
  void kill_consul() { consul_.reset(); }
  bool real_consul() const { return real_; }
  // The Consul HTTP API from the app netns: PUT `body` to `path`; the response body.
  std::string consul_put(const std::string& path, const std::string& body);
  std::string consul_get(const std::string& path);
  std::string consul_post(const std::string& path);
  // An instance registered with the agent, as registrator does.
  void register_instance(const std::string& id, const std::string& service, const std::string& addr,
                         uint16_t port, const std::string& version);
  void deregister(const std::string& id);

  // ---- the sidecar, fed by Consul
  // Starts it with --consul and --state-dir (kept across restarts in one test) plus `extra`,
  // and waits until /ready answers 200 (its body may say what is degraded).
  void start_control_proxy(const std::string& extra = "");
  void stop_control_proxy() {
    sidecar_.reset();
    wait_sidecar_ports_free();
  }
  std::string state_dir() const { return tmp_->file("state"); }

  // Polls /clusters until `pred(body)` or timeout; returns the time it took (or -1).
  template <typename Pred>
  int wait_clusters(Pred pred, int timeout_ms = 3000);
  // GET / with Host `host`, dialling `addr:port` (intercepted): the body's first line.
  std::string who(const std::string& addr, uint16_t port, const std::string& host,
                  const std::string& extra_headers = "");

 private:
  std::string curl(const std::string& args);

  std::unique_ptr<Proc> consul_;
  std::unique_ptr<Proc> sidecar_;
  bool real_ = false;
  int next_ = 0;
};

template <typename Pred>
int ControlMesh::wait_clusters(Pred pred, int timeout_ms) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const int elapsed = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::steady_clock::now() - start)
                                             .count());
    if (pred(admin("/clusters").body)) return elapsed;
    if (elapsed > timeout_ms) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace sm::test
