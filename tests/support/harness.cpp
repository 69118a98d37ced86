// Test harness implementation; see harness.h.
#include "harness.h"

#include "sockmesh_abi.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace sm::test {
namespace {

constexpr int kSoOriginalDst = 80;

std::string read_file(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool pid_alive(pid_t pid) {
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

// The pid in "sm-k<pid>-..." or 0.
pid_t owner_pid(const std::string& name) {
  if (name.rfind("sm-k", 0) != 0) return 0;
  return static_cast<pid_t>(std::atol(name.c_str() + 4));
}

std::vector<std::string> dir_entries(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d))
      if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) out.push_back(e->d_name);
    ::closedir(d);
  }
  return out;
}

void kill_cgroup_procs(const std::string& cg) {
  for (int round = 0; round < 50; ++round) {
    std::istringstream procs(read_file(cg + "/cgroup.procs"));
    bool any = false;
    for (pid_t pid; procs >> pid;) {
      ::kill(pid, SIGKILL);
      any = true;
    }
    if (!any) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void remove_cgroup(const std::string& cg) {
  kill_cgroup_procs(cg);
  for (int i = 0; i < 100 && ::rmdir(cg.c_str()) != 0 && errno == EBUSY; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

// Removes what test processes that are no longer running left behind.
void sweep_stale() {
  if (!is_root()) return;
  for (const auto& name : dir_entries("/sys/fs/bpf")) {
    pid_t pid = owner_pid(name);
    if (pid && !pid_alive(pid)) sh("rm -rf /sys/fs/bpf/" + name);
  }
  std::string cg2 = cgroup2_root();
  for (const auto& name : dir_entries(cg2)) {
    pid_t pid = owner_pid(name);
    if (pid && !pid_alive(pid)) remove_cgroup(cg2 + "/" + name);
  }
  for (const auto& name : dir_entries("/run/netns")) {
    pid_t pid = owner_pid(name);
    if (pid && !pid_alive(pid)) sh("ip netns del " + name);
  }
  for (const auto& name : dir_entries("/tmp")) {
    pid_t pid = owner_pid(name);
    if (pid && !pid_alive(pid)) sh("rm -rf /tmp/" + name);
  }
}

class SweepEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { sweep_stale(); }
};
[[maybe_unused]] auto* const g_sweep = ::testing::AddGlobalTestEnvironment(new SweepEnvironment);

// IPv6 when the text has a ':'.
socklen_t make_addr(const std::string& addr, uint16_t port, sockaddr_storage* ss) {
  *ss = {};
  if (addr.find(':') != std::string::npos) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(port);
    inet_pton(AF_INET6, addr.c_str(), &sa->sin6_addr);
    return sizeof *sa;
  }
  auto* sa = reinterpret_cast<sockaddr_in*>(ss);
  sa->sin_family = AF_INET;
  sa->sin_port = htons(port);
  inet_pton(AF_INET, addr.c_str(), &sa->sin_addr);
  return sizeof *sa;
}

}  // namespace

namespace {
void (*g_fail_hook)(const std::string&) = nullptr;
}  // namespace

void set_failure_hook(void (*hook)(const std::string&)) {
  g_fail_hook = hook;
}

void fail(const std::string& what) {
  if (g_fail_hook)
    g_fail_hook(what);
  else
    ADD_FAILURE() << what;
}

bool is_root() {
  return ::geteuid() == 0;
}

std::string unique_name(const std::string& tag) {
  static int n = 0;
  return "sm-k" + std::to_string(::getpid()) + "-" + tag + std::to_string(n++);
}

std::string build_dir() {
  if (const char* b = std::getenv("SM_BUILD_DIR")) return b;
  // Test binaries live in <build>/tests/ (benchmarks in <build>/bin/).
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return "build";
  std::string p(exe, static_cast<size_t>(n));
  p = p.substr(0, p.rfind('/'));
  return p.substr(0, p.rfind('/'));
}

std::string loader_path() {
  return build_dir() + "/bin/sockmesh-loader";
}

std::string cgroup2_root() {
  std::istringstream in(read_file("/proc/mounts"));
  std::string dev, dir, type, rest;
  while (in >> dev >> dir >> type && std::getline(in, rest))
    if (type == "cgroup2") return dir;
  return "/sys/fs/cgroup";
}

int sh(const std::string& cmd, std::string* out) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  std::string o;
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) o.append(buf, n);
  int st = ::pclose(p);
  if (out) *out = o;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string sh_ok(const std::string& cmd) {
  std::string out;
  int rc = sh(cmd, &out);
  if (rc != 0) fail("command failed (" + std::to_string(rc) + "): " + cmd + "\n" + out);
  return out;
}

Cgroup::Cgroup(const std::string& name) : path_(cgroup2_root() + "/" + name) {
  if (::mkdir(path_.c_str(), 0755) != 0) fail("mkdir " + path_ + ": " + strerror(errno));
}
Cgroup::~Cgroup() {
  remove_cgroup(path_);
}

Netns::Netns(const std::string& name) : name_(name) {
  sh_ok("ip netns add " + name_);
  ip("link set lo up");
}
Netns::~Netns() {
  sh("ip netns del " + name_);
}
void Netns::ip(const std::string& args) const {
  sh_ok("ip -n " + name_ + " " + args);
}

TestNet::TestNet() : sw_(unique_name("sw")) {
  sw_.ip("link add br0 type bridge");
  sw_.ip("link set br0 up");
}

Netns& TestNet::add_host(const std::string& tag, const std::string& cidr,
                         const std::string& cidr6) {
  auto ns = std::make_unique<Netns>(unique_name(tag));
  std::string port = "p" + std::to_string(next_port_++);
  sw_.ip("link add " + port + " type veth peer name eth0 netns " + ns->name());
  sw_.ip("link set " + port + " master br0 up");
  ns->ip("addr add " + cidr + " dev eth0");
  ns->ip("link set eth0 up");
  // Like a pod: a default route, so any destination is routable (iptables REDIRECT
  // happens after the route lookup).
  ns->ip("route add default dev eth0");
  if (!cidr6.empty()) {
    ns->ip("addr add " + cidr6 + " dev eth0 nodad");  // usable at once: no DAD wait
    ns->ip("-6 route add default dev eth0");
  }
  hosts_.push_back(std::move(ns));
  return *hosts_.back();
}

Place Place::in(const Netns& ns, std::optional<uid_t> uid, std::optional<gid_t> gid) {
  Place p;
  p.netns = ns.path();
  p.uid = uid;
  p.gid = gid;
  return p;
}

Place Place::as(uid_t uid, gid_t gid) {
  Place p;
  p.uid = uid;
  p.gid = gid;
  return p;
}

namespace {
int g_ready_fd = -1;  // in a child: where signal_ready() reports
}  // namespace

void signal_ready() {
  if (g_ready_fd < 0) return;
  (void)!::write(g_ready_fd, "x", 1);
  ::close(g_ready_fd);
  g_ready_fd = -1;
}

Proc serve(const Place& where, std::function<int()> fn) {
  return Proc(where, std::move(fn), Proc::Ready::signalled);
}

Proc::Proc(const Place& where, std::function<int()> fn, Ready ready) {
  int ready_pipe[2];
  if (::pipe2(ready_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork");
  if (pid_ == 0) {
    ::close(ready_pipe[0]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    auto die = [&](const char* what) {
      std::fprintf(stderr, "child: %s: %s\n", what, strerror(errno));
      _exit(121);
    };
    if (!where.cgroup.empty()) {
      int fd = ::open((where.cgroup + "/cgroup.procs").c_str(), O_WRONLY);
      if (fd < 0 || ::write(fd, "0", 1) != 1) die("join cgroup");
      ::close(fd);
    }
    if (!where.netns.empty()) {
      int fd = ::open(where.netns.c_str(), O_RDONLY);
      if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) die("setns");
      ::close(fd);
    }
    if (where.gid || where.uid) {
      if (::setgroups(0, nullptr) != 0) die("setgroups");
      if (::setgid(where.gid.value_or(where.uid.value_or(0))) != 0) die("setgid");
      if (where.uid && ::setuid(*where.uid) != 0) die("setuid");
      // Changing credentials clears the parent-death signal: arm it again.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() == 1) _exit(121);  // the parent died in between
    }
    g_ready_fd = ready_pipe[1];
    if (ready == Ready::placed) signal_ready();
    _exit(fn());
  }
  ::close(ready_pipe[1]);
  char c;
  (void)!::read(ready_pipe[0], &c, 1);
  ::close(ready_pipe[0]);
}

Proc& Proc::operator=(Proc&& o) noexcept {
  if (this != &o) {
    this->~Proc();
    pid_ = o.pid_;
    o.pid_ = -1;
  }
  return *this;
}

Proc::~Proc() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

int Proc::wait() {
  int st = 0;
  if (pid_ > 0) ::waitpid(pid_, &st, 0);
  pid_ = -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

std::optional<int> Proc::wait_for(int timeout_ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (pid_ > 0) {
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    if (std::chrono::steady_clock::now() >= end) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return std::nullopt;
}

std::string run_in(const Place& where, std::function<void(std::string& out)> fn) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return "ERR pipe";
  Proc child(where, [&] {
    ::close(p[0]);
    std::string out;
    fn(out);
    write_all(p[1], out.data(), out.size());
    return 0;
  });
  ::close(p[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(p[0]);
  int rc = child.wait();
  if (rc != 0) out += "[child exit " + std::to_string(rc) + "]";
  return out;
}

std::vector<std::string> run_concurrently(const std::vector<Place>& where,
                                          std::function<void(size_t, std::string&)> fn) {
  int go[2];
  if (::pipe2(go, O_CLOEXEC) != 0) return {};
  std::vector<Proc> procs;
  std::vector<int> outs;
  for (size_t i = 0; i < where.size(); ++i) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) break;
    procs.emplace_back(where[i], [&, i, p] {
      ::close(p[0]);
      ::close(go[1]);
      char c;
      (void)!::read(go[0], &c, 1);  // EOF when the parent closes its end: go
      std::string out;
      fn(i, out);
      write_all(p[1], out.data(), out.size());
      return 0;
    });
    ::close(p[1]);
    outs.push_back(p[0]);
  }
  ::close(go[0]);
  ::close(go[1]);
  std::vector<std::string> results;
  for (int fd : outs) {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    ::close(fd);
    results.push_back(out);
  }
  for (auto& p : procs) p.wait();
  return results;
}

std::string connect_line(const Place& where, const std::string& addr, uint16_t port) {
  return run_in(where, [&](std::string& out) {
    int fd = tcp_connect(addr, port);
    if (fd < 0) {
      out = std::string("ERR ") + strerrorname_np(-fd);
      return;
    }
    out = read_all(fd);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    ::close(fd);
  });
}

Proc spawn(const Place& where, const std::vector<std::string>& argv, const std::string& log) {
  pid_t parent = ::getpid();
  return Proc(where, [argv, log, parent] {
    // Changing uid (Place::uid) cleared the parent-death signal: set it again, so a test
    // killed mid-run does not leave its proxy behind (it survives exec).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) return 126;
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
    return 127;
  });
}

bool wait_port(const Place& where, const std::string& addr, uint16_t port, int timeout_ms) {
  std::string r = run_in(where, [&](std::string& out) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    do {
      int fd = tcp_connect(addr, port, 200);
      if (fd >= 0) {
        ::close(fd);
        out = "ok";
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    } while (std::chrono::steady_clock::now() < deadline);
  });
  return r == "ok";
}

int sh_in(const Place& where, const std::string& cmd, std::string* out) {
  std::string r = run_in(where, [&](std::string& o) {
    std::string text;
    int rc = sh(cmd, &text);
    o = std::to_string(rc) + "\n" + text;
  });
  size_t nl = r.find('\n');
  if (nl == std::string::npos) {
    if (out) *out = r;
    return -1;
  }
  if (out) *out = r.substr(nl + 1);
  return std::atoi(r.c_str());
}

TempDir::TempDir(const std::string& tag) : path_("/tmp/" + unique_name(tag)) {
  if (::mkdir(path_.c_str(), 0777) != 0 || ::chmod(path_.c_str(), 0777) != 0)
    fail("mkdir " + path_ + ": " + strerror(errno));
}

TempDir::~TempDir() {
  sh("rm -rf " + path_);
}

std::string TempDir::write(const std::string& name, const std::string& contents) const {
  std::string p = file(name);
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  if (!f) fail("write " + p);
  f.close();
  ::chmod(p.c_str(), 0644);
  return p;
}

std::string slurp(const std::string& path) {
  return read_file(path);
}

Install::Install(const std::string& extra_flags)
    : cg_(unique_name("cg")), pin_dir_("/sys/fs/bpf/" + unique_name("pin")) {
  std::string out;
  int rc = sh(loader_path() + " install --cgroup " + cg_.path() + " --pin-dir " + pin_dir_ + " " +
                  extra_flags,
              &out);
  if (rc != 0) fail("install failed: " + out);
}

Install::~Install() {
  sh(loader_path() + " uninstall --pin-dir " + pin_dir_);
  sh("rm -rf " + pin_dir_);
}

int Install::loader(const std::string& args, std::string* out) const {
  return sh(loader_path() + " " + args + " --pin-dir " + pin_dir_, out);
}

void Install::loader_ok(const std::string& args) const {
  std::string out;
  int rc = loader(args, &out);
  if (rc != 0) fail("sockmesh-loader " + args + " failed (" + std::to_string(rc) + "): " + out);
}

void Install::enroll(const Netns& ns, const std::string& flags) const {
  loader_ok("enroll --netns " + ns.path() + " " + flags);
}

std::string Install::status_json() const {
  std::string out;
  loader("status --json", &out);
  return out;
}

long Install::map_entries(const std::string& map) const {
  auto j = nlohmann::json::parse(status_json(), nullptr, false);
  if (!j.is_discarded())
    for (const auto& m : j["maps"])
      if (m["name"] == map && m["entries"].is_number()) return m["entries"].get<long>();
  fail("status --json counts no entries of map " + map);
  return -1;
}

uint64_t Install::counter(const std::string& name) const {
  auto j = nlohmann::json::parse(status_json(), nullptr, false);
  if (!j.is_discarded() && j.contains("counters") && j["counters"].contains(name))
    return j["counters"][name].get<uint64_t>();
  fail("status --json has no counter " + name);
  return 0;
}

int tcp_listen(const std::string& addr, uint16_t port, int backlog) {
  sockaddr_storage sa;
  socklen_t sl = make_addr(addr, port, &sa);
  int fd = ::socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1, zero = 0;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (sa.ss_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sl) != 0 || ::listen(fd, backlog) != 0) {
    int e = errno;
    ::close(fd);
    return -e;
  }
  return fd;
}

int tcp_connect(const std::string& addr, uint16_t port, int timeout_ms,
                const std::string& bind_addr, uint16_t bind_port) {
  sockaddr_storage sa;
  socklen_t sl = make_addr(addr, port, &sa);
  int fd = ::socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  if (!bind_addr.empty()) {
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_storage b;
    socklen_t bl = make_addr(bind_addr, bind_port, &b);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&b), bl) != 0) {
      int e = errno;
      ::close(fd);
      return -e;
    }
  }
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sl);
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, timeout_ms) != 1) {
      ::close(fd);
      return -ETIMEDOUT;
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    rc = err ? -1 : 0;
    errno = err;
  }
  if (rc != 0) {
    int e = errno;
    ::close(fd);
    return -e;
  }
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

std::string read_all(int fd, int timeout_ms) {
  std::string out;
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

bool write_all(int fd, const void* buf, size_t n) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == ENOTSOCK) w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

std::string addr_str(const sockaddr_in& sa) {
  char ip[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(sa.sin_port));
}

std::string addr_str(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) return addr_str(reinterpret_cast<const sockaddr_in&>(ss));
  const auto& sa = reinterpret_cast<const sockaddr_in6&>(ss);
  char ip[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, &sa.sin6_addr, ip, sizeof ip);
  return "[" + std::string(ip) + "]:" + std::to_string(ntohs(sa.sin6_port));
}

std::string local_addr(int fd) {
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    return std::string("ERR ") + strerrorname_np(errno);
  return addr_str(sa);
}

std::string peer_addr(int fd) {
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    return std::string("ERR ") + strerrorname_np(errno);
  return addr_str(sa);
}

std::string original_dst(int fd, socklen_t optlen) {
  unsigned char buf[64] = {};
  socklen_t len = optlen;
  if (::getsockopt(fd, SOL_IP, kSoOriginalDst, buf, &len) != 0)
    return std::string("ERR ") + strerrorname_np(errno);
  sockaddr_in sa;
  std::memcpy(&sa, buf, sizeof sa);
  return addr_str(sa);
}

int serve_origdst(uint16_t port) {
  int lfd = tcp_listen("0.0.0.0", port, 1024);
  if (lfd < 0) return 3;
  signal_ready();
  for (;;) {
    int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::string line =
        "ORIG " + original_dst(c) + " LOCAL " + local_addr(c) + " PEER " + peer_addr(c) + "\n";
    write_all(c, line.data(), line.size());
    ::close(c);
  }
}

void declare_splice_safe(int fd) {
  int one = 1;
  if (::setsockopt(fd, SM_SOL_SOCKMESH, SM_SO_SPLICE_SAFE, &one, sizeof one) != 0)
    fail(std::string("declare splice-safe: ") + strerrorname_np(errno));
}

std::string original_dst6(int fd) {
  sockaddr_storage sa{};
  socklen_t len = sizeof(sockaddr_in6);
  if (::getsockopt(fd, SOL_IPV6, kSoOriginalDst, &sa, &len) != 0)
    return std::string("ERR ") + strerrorname_np(errno);
  return addr_str(sa);
}

int serve_origdst_dual(uint16_t port) {
  int lfd = tcp_listen("::", port, 1024);
  if (lfd < 0) return 3;
  signal_ready();
  for (;;) {
    int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::string line = "ORIG " + original_dst(c) + " ORIG6 " + original_dst6(c) + " LOCAL " +
                       local_addr(c) + " PEER " + peer_addr(c) + "\n";
    write_all(c, line.data(), line.size());
    ::close(c);
  }
}

int serve_direct(const std::string& addr, uint16_t port, const std::string& name) {
  int lfd = tcp_listen(addr, port, 1024);
  if (lfd < 0) return 3;
  signal_ready();
  for (;;) {
    int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::string line = "DIRECT " + name + "\n";
    write_all(c, line.data(), line.size());
    ::close(c);
  }
}

}  // namespace sm::test
