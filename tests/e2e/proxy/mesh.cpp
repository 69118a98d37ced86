// The e2e topology; see mesh.h.
#include "mesh.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace sm::test {

const std::string ProxyMesh::kApp = "198.18.2.2";
const std::string ProxyMesh::kSrv1 = "198.18.2.3";
const std::string ProxyMesh::kSrv2 = "198.18.2.4";

namespace {
constexpr const char* kPython = "/usr/bin/python3";  // not a pyenv shim: other uids use it
}  // namespace

void PrintTo(Mode m, std::ostream* os) {
  *os << (m == Mode::ebpf ? "ebpf" : "iptables");
}

std::string mode_name(const ::testing::TestParamInfo<Mode>& info) {
  return info.param == Mode::ebpf ? "ebpf" : "iptables";
}

std::string fixture_path(const std::string& name) {
  return std::string(SM_E2E_FIXTURE_DIR) + "/" + name;
}

std::string proxy_path() {
  return build_dir() + "/bin/sockmesh-proxy";
}

std::string no_io_uring_path() {
  return build_dir() + "/tests/sm-no-io-uring";
}

std::string render(std::string text, const std::map<std::string, std::string>& vars) {
  for (const auto& [key, value] : vars) {
    std::string token = "@" + key + "@";
    for (size_t pos; (pos = text.find(token)) != std::string::npos;)
      text.replace(pos, token.size(), value);
  }
  return text;
}

void ProxyMesh::SetUp() {
  SM_REQUIRE_ROOT();
  tmp_ = std::make_unique<TempDir>("e2e");
  install_ = std::make_unique<Install>();
  net_ = std::make_unique<TestNet>();
  app_ = &net_->add_host("app", kApp + "/24");
  srv1_ = &net_->add_host("srv", kSrv1 + "/24");
  srv2_ = &net_->add_host("srv", kSrv2 + "/24");
  // Servers only talk to their subnet. Without a default route a DNS lookup (python's
  // http.server looks its own name up when it binds) fails at once instead of timing out.
  for (Netns* srv : {srv1_, srv2_}) srv->ip("route del default");
  if (ebpf())
    install_->enroll(*app_);
  else
    install_->loader_ok("enroll --mode iptables --netns " + app_->path());
}

void ProxyMesh::TearDown() {
  if (!HasFailure()) return;
  for (const auto& [what, path] : logs_) {
    std::string text = slurp(path);
    if (text.size() > 8000) text = "...\n" + text.substr(text.size() - 8000);
    std::printf("----- %s (%s)\n%s\n", what.c_str(), path.c_str(), text.c_str());
  }
}

void ProxyMesh::keep_log(const std::string& what, const std::string& path) {
  logs_.emplace_back(what, path);
}

std::string ProxyMesh::start_nginx(const Netns& ns, const std::string& listen,
                                   const std::string& name, const Place* where) {
  std::string dir = tmp_->file("nginx-" + name + std::to_string(next_id_++));
  ::mkdir(dir.c_str(), 0755);
  ::mkdir((dir + "/files").c_str(), 0755);
  std::string conf = render(slurp(fixture_path("nginx.conf.in")),
                            {{"DIR", dir}, {"LISTEN", listen}, {"NAME", name}});
  std::ofstream(dir + "/nginx.conf") << conf;
  std::string log = dir + "/stderr.log";
  keep_log("nginx " + name + " stderr", log);
  keep_log("nginx " + name + " error.log", dir + "/error.log");
  Place p = where ? *where : Place::in(ns);
  servers_.push_back(spawn(
      p, {"/usr/sbin/nginx", "-p", dir, "-c", dir + "/nginx.conf", "-e", dir + "/error.log"}, log));
  std::string addr = listen.substr(0, listen.find(':'));
  uint16_t port = static_cast<uint16_t>(std::stoi(listen.substr(listen.find(':') + 1)));
  if (addr == "0.0.0.0") addr = "127.0.0.1";
  Place probe = Place::in(ns);
  EXPECT_TRUE(wait_port(probe, addr, port)) << "nginx " << name << " did not start:\n"
                                            << slurp(dir + "/error.log") << slurp(log);
  return dir;
}

void ProxyMesh::start_py(const Netns& ns, const std::string& mode, const std::string& addr,
                         uint16_t port) {
  std::string log = tmp_->file("py-" + mode + std::to_string(next_id_++) + ".log");
  keep_log("servers.py " + mode, log);
  servers_.push_back(spawn(
      Place::in(ns), {kPython, fixture_path("servers.py"), mode, addr, std::to_string(port)}, log));
  EXPECT_TRUE(wait_port(Place::in(ns), addr, port)) << "servers.py " << mode << ":\n" << slurp(log);
}

void ProxyMesh::start_py_http(const Netns& ns, const std::string& addr, uint16_t port,
                              const std::string& name) {
  std::string log = tmp_->file("py-http" + std::to_string(next_id_++) + ".log");
  keep_log("servers.py http " + name, log);
  servers_.push_back(
      spawn(Place::in(ns),
            {kPython, fixture_path("servers.py"), "http", name, addr, std::to_string(port)}, log));
  EXPECT_TRUE(wait_port(Place::in(ns), addr, port)) << "servers.py http:\n" << slurp(log);
}

void ProxyMesh::start_http_server_module(const Netns& ns, const std::string& addr, uint16_t port,
                                         const std::string& dir) {
  std::string log = tmp_->file("http.server" + std::to_string(next_id_++) + ".log");
  keep_log("python3 -m http.server", log);
  servers_.push_back(spawn(
      Place::in(ns),
      {kPython, "-m", "http.server", "--bind", addr, "--directory", dir, std::to_string(port)},
      log));
  EXPECT_TRUE(wait_port(Place::in(ns), addr, port)) << "http.server:\n" << slurp(log);
}

void ProxyMesh::start_redis(const Netns& ns, const std::string& addr, uint16_t port) {
  std::string log = tmp_->file("redis" + std::to_string(next_id_++) + ".log");
  keep_log("redis-server", log);
  servers_.push_back(
      spawn(Place::in(ns),
            {"/usr/bin/redis-server", "--bind", addr, "--port", std::to_string(port),
             "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", tmp_->path()},
            log));
  EXPECT_TRUE(wait_port(Place::in(ns), addr, port)) << "redis-server:\n" << slurp(log);
}

std::string ProxyMesh::routes_path() {
  std::string p = tmp_->file("routes.json");
  if (::access(p.c_str(), R_OK) != 0)
    tmp_->write("routes.json",
                render(slurp(fixture_path("routes.json.in")), {{"SRV1", kSrv1}, {"SRV2", kSrv2}}));
  return p;
}

void ProxyMesh::launch_proxy(const ProxyFlags& f) {
  std::vector<std::string> argv = f.wrapper;
  // The whole suite runs on either event loop (issue 12): SM_EVENT_LOOP=uring|epoll|auto
  // passes --event-loop; SM_PROXY_SECCOMP=no-io-uring starts the proxy under a seccomp
  // filter that blocks io_uring, as Docker's default profile does, where auto must fall
  // back to epoll.
  const char* env_loop = std::getenv("SM_EVENT_LOOP");
  const char* env_seccomp = std::getenv("SM_PROXY_SECCOMP");
  const bool seccomp = env_seccomp && std::string(env_seccomp) == "no-io-uring";
  if (seccomp) {
    argv.push_back(no_io_uring_path());
    argv.push_back("--");
  }
  std::vector<std::string> own = {proxy_path(),
                                  "--workers",
                                  "2",
                                  "--admin-port",
                                  std::to_string(f.admin_port),
                                  "--outbound-port",
                                  std::to_string(f.outbound_port),
                                  "--inbound-port",
                                  std::to_string(f.inbound_port)};
  argv.insert(argv.end(), own.begin(), own.end());
  if (f.routes) {
    argv.push_back("--config");
    argv.push_back(routes_path());
  }
  if (!f.config.empty()) {
    argv.push_back("--config");
    argv.push_back(f.config);
  }
  if (env_loop && *env_loop) {
    argv.push_back("--event-loop");
    argv.push_back(env_loop);
  }
  std::istringstream extra(f.extra);
  for (std::string w; extra >> w;) argv.push_back(w);
  std::string log = proxy_log();
  if (std::none_of(logs_.begin(), logs_.end(), [&](const auto& l) { return l.second == log; }))
    keep_log("sockmesh-proxy", log);
  auto p = std::make_unique<Proc>(spawn(install_->place(*app_, kProxyUid, kProxyUid), argv, log));
  // Ready: the admin API answers LIVE once every worker runs (listeners are bound before).
  bool live = false;
  for (int i = 0; i < 100 && !live; ++i) {
    live = admin("/ready", f.admin_port).body == "LIVE\n";
    if (!live) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(live) << "sockmesh-proxy did not become ready:\n" << slurp(log);
  const bool epoll_expected = seccomp || (env_loop && std::string(env_loop) == "epoll");
  if (live && (epoll_expected || (env_loop && std::string(env_loop) == "uring"))) {
    const char* want = epoll_expected ? "server.event_loop.epoll" : "server.event_loop.uring";
    EXPECT_EQ(stat(want, f.admin_port), 1u) << "the proxy does not run the loop this run wants";
  }
  if (f.admin_port == 15000)
    proxy_ = std::move(p);
  else
    servers_.push_back(std::move(*p));
}

void ProxyMesh::stop_proxy() {
  proxy_.reset();
  wait_sidecar_ports_free();
}

void ProxyMesh::wait_sidecar_ports_free() {
  const std::string cmd = "ip netns exec " + app_->name() +
                          " ss -Htln '( sport = :15000 or sport = :15001 or sport = :15006 )'";
  for (int i = 0; i < 100; ++i) {
    std::string out;
    if (sh(cmd, &out) == 0 && out.find_first_not_of(" \n") == std::string::npos) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

HttpResponse ProxyMesh::admin(const std::string& path, uint16_t port) {
  return admin_request(get("127.0.0.1", path), port);
}

HttpResponse ProxyMesh::admin_post(const std::string& path, uint16_t port) {
  return admin_request("POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n",
                       port);
}

HttpResponse ProxyMesh::admin_request(const std::string& request, uint16_t port) {
  // From the app netns as root, outside the cgroup: loopback is never intercepted.
  return HttpResponse::parse(run_in(Place::in(*app_), [&](std::string& out) {
    HttpConn c("127.0.0.1", port);
    if (!c.ok()) {
      HttpResponse r;
      r.error = std::string("connect: ") + strerrorname_np(c.connect_error());
      out = r.serialize();
      return;
    }
    c.send(request);
    out = c.read(3000).serialize();
  }));
}

std::map<std::string, uint64_t> ProxyMesh::stats(uint16_t port) {
  std::map<std::string, uint64_t> out;
  HttpResponse r = admin("/stats", port);
  EXPECT_EQ(r.status, 200) << r;
  std::istringstream in(r.body);
  for (std::string line; std::getline(in, line);) {
    size_t sep = line.rfind(": ");
    if (sep == std::string::npos) continue;
    std::string value = line.substr(sep + 2);
    if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos) continue;
    out[line.substr(0, sep)] = std::stoull(value);
  }
  return out;
}

uint64_t ProxyMesh::stat(const std::string& name, uint16_t port) {
  auto all = stats(port);
  auto it = all.find(name);
  if (it == all.end()) {
    ADD_FAILURE() << "no stat " << name;
    return ~0ull;
  }
  return it->second;
}

HttpResponse ProxyMesh::http(const std::string& addr, uint16_t port, const std::string& request,
                             int timeout_ms) {
  auto list = http_seq(addr, port, {request}, timeout_ms);
  return list.empty() ? HttpResponse{} : list.front();
}

std::vector<HttpResponse> ProxyMesh::http_seq(const std::string& addr, uint16_t port,
                                              const std::vector<std::string>& requests,
                                              int timeout_ms) {
  return HttpResponse::parse_list(run_in(client(), [&](std::string& out) {
    std::vector<HttpResponse> list;
    HttpConn c(addr, port);
    for (const auto& req : requests) {
      if (!c.ok()) {
        HttpResponse r;
        r.error = std::string("connect: ") + strerrorname_np(c.connect_error());
        list.push_back(r);
        break;
      }
      bool head = req.rfind("HEAD ", 0) == 0;
      c.send(req);
      list.push_back(c.read(timeout_ms, head));
      while (list.back().status / 100 == 1 && list.back().status != 101)
        list.back() = c.read(timeout_ms, head);  // interim responses: the final one counts
      if (list.back().status == 0) break;
    }
    out = HttpResponse::serialize_list(list);
  }));
}

}  // namespace sm::test
