// The control-plane e2e topology; see control_mesh.h.
#include "control_mesh.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <thread>

namespace sm::test {
namespace {

// The real Consul when there is one: $SM_CONSUL, else `consul` on PATH.
std::string consul_binary() {
  if (const char* b = std::getenv("SM_CONSUL"); b && *b) return b;
  std::string out;
  if (sh("command -v consul", &out) == 0) {
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
  }
  return "";
}

}  // namespace

void ControlMesh::TearDown() {
  sidecar_.reset();
  consul_.reset();
  ProxyMesh::TearDown();
}

std::string ControlMesh::curl(const std::string& args) {
  std::string out;
  sh_in(Place::in(*app_), "curl -s -m 5 " + args, &out);
  return out;
}

void ControlMesh::start_consul() {
  const std::string bin = consul_binary();
  const std::string log = tmp_->file("consul.log");
  keep_log("consul", log);
  real_ = !bin.empty();
  std::vector<std::string> argv;
  if (real_) {
    // A dev agent: in memory, server + client, on loopback of the app netns only.
    argv = {bin,
            "agent",
            "-dev",
            "-bind=127.0.0.1",
            "-client=127.0.0.1",
            "-http-port=" + std::to_string(kConsulPort),
            "-dns-port=-1",
            "-node=sm-e2e"};
  } else {
    argv = {"/usr/bin/python3", std::string(SM_CONSUL_DIR) + "/consul_double.py", "--port",
            std::to_string(kConsulPort)};
  }
  consul_ = std::make_unique<Proc>(spawn(Place::in(*app_), argv, log));
  // Ready: a leader is known (a real agent takes a moment to elect itself).
  for (int i = 0; i < 300; ++i) {
    if (curl("http://127.0.0.1:8500/v1/status/leader").find(':') != std::string::npos) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << (real_ ? bin : "the Consul double") << " did not start:\n" << slurp(log);
}

std::string ControlMesh::consul_put(const std::string& path, const std::string& body) {
  const std::string file = tmp_->write("put" + std::to_string(next_++), body);
  return curl("-X PUT --data-binary @" + file + " 'http://127.0.0.1:8500" + path + "'");
}

std::string ControlMesh::consul_get(const std::string& path) {
  return curl("'http://127.0.0.1:8500" + path + "'");
}

std::string ControlMesh::consul_post(const std::string& path) {
  return curl("-X POST 'http://127.0.0.1:8500" + path + "'");
}

void ControlMesh::register_instance(const std::string& id, const std::string& service,
                                    const std::string& addr, uint16_t port,
                                    const std::string& version) {
  consul_put("/v1/agent/service/register", R"({"ID": ")" + id + R"(", "Name": ")" + service +
                                               R"(", "Address": ")" + addr + R"(", "Port": )" +
                                               std::to_string(port) + R"(, "Meta": {"version": ")" +
                                               version + R"("}})");
}

void ControlMesh::deregister(const std::string& id) {
  consul_put("/v1/agent/service/deregister/" + id, "");
}

void ControlMesh::start_control_proxy(const std::string& extra) {
  ::mkdir(state_dir().c_str(), 0777);
  ::chmod(state_dir().c_str(), 0777);  // the sidecar runs as uid 1337
  std::vector<std::string> argv = {
      proxy_path(), "--workers",       "2", "--consul", "http://127.0.0.1:8500", "--state-dir",
      state_dir(),  "--consul-wait-s", "10"};
  std::istringstream words(extra);
  for (std::string w; words >> w;) argv.push_back(w);
  const std::string log = proxy_log();
  keep_log("sockmesh-proxy", log);
  sidecar_ = std::make_unique<Proc>(spawn(install_->place(*app_, kProxyUid, kProxyUid), argv, log));
  bool ready = false;
  for (int i = 0; i < 200 && !ready; ++i) {
    ready = admin("/ready").status == 200;
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(ready) << "sockmesh-proxy did not become ready:\n"
                     << admin("/ready") << "\n"
                     << slurp(log);
}

std::string ControlMesh::who(const std::string& addr, uint16_t port, const std::string& host,
                             const std::string& extra_headers) {
  HttpResponse r = http(
      addr, port,
      "GET / HTTP/1.1\r\nHost: " + host + "\r\n" + extra_headers + "Connection: close\r\n\r\n");
  if (r.status != 200) return "status " + std::to_string(r.status) + " " + r.error;
  return r.body.substr(0, r.body.find('\n'));
}

}  // namespace sm::test
