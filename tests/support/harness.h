// Kernel and e2e test harness: real cgroups, network namespaces, veths and bridges,
// sockmesh installs and processes placed in them. Everything is named sm-k<pid>-*,
// owned by an RAII object and removed on destruction (also when a test fails); what a
// crashed run left (its pid is dead) is swept when the next test binary starts.
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace sm::test {

bool is_root();
// Reports a setup failure: ADD_FAILURE in tests; programs outside GoogleTest (benchmarks)
// install their own hook.
void fail(const std::string& what);
void set_failure_hook(void (*hook)(const std::string&));
#define SM_REQUIRE_ROOT()                                                             \
  do {                                                                                \
    if (!::sm::test::is_root())                                                       \
      GTEST_SKIP() << "needs root: loads BPF programs and creates cgroups and netns"; \
  } while (0)

// "sm-k<pid>-<tag><n>": unique per process, recognizably ours, within IFNAMSIZ-free
// namespaces (netns names, cgroup and pin directory names).
std::string unique_name(const std::string& tag);
// The build tree: $SM_BUILD_DIR (set by CTest), else derived from this binary's path.
std::string build_dir();
std::string loader_path();
std::string cgroup2_root();

// Runs a shell command; returns its exit status, output into *out when given.
int sh(const std::string& cmd, std::string* out = nullptr);
// Same, but fails the current test (ADD_FAILURE) on a non-zero exit.
std::string sh_ok(const std::string& cmd);

class Cgroup {
 public:
  explicit Cgroup(const std::string& name);
  ~Cgroup();
  Cgroup(const Cgroup&) = delete;
  Cgroup& operator=(const Cgroup&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class Netns {
 public:
  explicit Netns(const std::string& name);
  ~Netns();
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;
  const std::string& name() const { return name_; }
  std::string path() const { return "/run/netns/" + name_; }
  // `ip -n <name> <args>`
  void ip(const std::string& args) const;

 private:
  std::string name_;
};

// A switch (a bridge in its own netns) and hosts (netns) plugged into it, each with one
// address from 198.18.0.0/15 on eth0.
class TestNet {
 public:
  TestNet();
  // cidr6 (optional): an IPv6 address from 2001:2::/48, the IPv6 benchmarking range.
  Netns& add_host(const std::string& tag, const std::string& cidr, const std::string& cidr6 = "");

 private:
  Netns sw_;
  std::vector<std::unique_ptr<Netns>> hosts_;
  int next_port_ = 0;
};

class Netns;

// Where a child process runs: cgroup (optional), netns (optional), credentials.
struct Place {
  std::string cgroup;
  std::string netns;  // path
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;

  Place() = default;
  static Place in(const Netns& ns, std::optional<uid_t> uid = {}, std::optional<gid_t> gid = {});
  static Place as(uid_t uid, gid_t gid);
};

// A child process running fn() in a Place; killed (by pid) and reaped on destruction.
// The constructor returns once the child is placed or, with Ready::signalled, once fn
// called signal_ready() (servers: after listen()) or exited.
class Proc {
 public:
  enum class Ready { placed, signalled };
  Proc() = default;
  Proc(const Place& where, std::function<int()> fn, Ready ready = Ready::placed);
  Proc(Proc&& o) noexcept : pid_(o.pid_) { o.pid_ = -1; }
  Proc& operator=(Proc&& o) noexcept;
  ~Proc();
  pid_t pid() const { return pid_; }
  int wait();  // exit status
  // The exit status once the child exited within timeout_ms (reaped), else nullopt (still
  // running, still ours).
  std::optional<int> wait_for(int timeout_ms);

 private:
  pid_t pid_ = -1;
};

// Called by a child started with Ready::signalled once it is ready (e.g. listening).
void signal_ready();
// A server child: fn must call signal_ready() once it accepts connections.
Proc serve(const Place& where, std::function<int()> fn);

// Runs fn in a child at `where` and returns what it wrote to `out` (a pipe).
std::string run_in(const Place& where, std::function<void(std::string& out)> fn);

// Forks one child per Place, starts them all at once (so their work overlaps), and
// returns what each wrote.
std::vector<std::string> run_concurrently(const std::vector<Place>& where,
                                          std::function<void(size_t index, std::string& out)> fn);

// Connects from `where` to addr:port and returns the first line the server sent, or
// "ERR <errno name>" when the connect fails.
std::string connect_line(const Place& where, const std::string& addr, uint16_t port);

// Execs argv (argv[0] is the program's path) at `where`, its stdout and stderr appended to
// `log` (print it when a test fails). Killed by pid on destruction, like any Proc.
Proc spawn(const Place& where, const std::vector<std::string>& argv, const std::string& log);
// Polls from `where` until addr:port accepts a TCP connection; false after timeout_ms.
bool wait_port(const Place& where, const std::string& addr, uint16_t port, int timeout_ms = 5000);
// sh() at a Place: the shell and what it starts run in that cgroup/netns/identity.
int sh_in(const Place& where, const std::string& cmd, std::string* out = nullptr);

// A scratch directory /tmp/sm-k<pid>-<tag><n>, writable by every uid (servers and the
// proxy run as other users and log there); removed on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "tmp");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Writes `contents` to file(name), world-readable; returns the file's path.
  std::string write(const std::string& name, const std::string& contents) const;

 private:
  std::string path_;
};

// A whole file ("" when it cannot be read).
std::string slurp(const std::string& path);

// A sockmesh install in its own cgroup and pin dir, removed on destruction.
class Install {
 public:
  explicit Install(const std::string& extra_flags = "");
  ~Install();
  Install(const Install&) = delete;
  Install& operator=(const Install&) = delete;
  const std::string& pin_dir() const { return pin_dir_; }
  const std::string& cgroup() const { return cg_.path(); }
  // Runs sockmesh-loader <args> --pin-dir <ours>; returns exit status, output in *out.
  int loader(const std::string& args, std::string* out = nullptr) const;
  void loader_ok(const std::string& args) const;
  void enroll(const Netns& ns, const std::string& flags = "") const;
  std::string status_json() const;
  // Entries of a pinned map; a map status cannot count fails the test (and gives -1).
  long map_entries(const std::string& map) const;
  // A counter of `status --json`; a missing one (renamed, removed) fails the test.
  uint64_t counter(const std::string& name) const;
  Place place(const Netns& ns, std::optional<uid_t> uid = {}, std::optional<gid_t> gid = {}) const {
    Place p = Place::in(ns, uid, gid);
    p.cgroup = cgroup();
    return p;
  }

 private:
  Cgroup cg_;
  std::string pin_dir_;
};

// Sockets. An address with a ':' is IPv6 (AF_INET6 socket; "::" listens dual-stack),
// else IPv4.
int tcp_listen(const std::string& addr, uint16_t port, int backlog = 128);
// Connected fd, or -errno (connect timeout: -ETIMEDOUT).
int tcp_connect(const std::string& addr, uint16_t port, int timeout_ms = 2000,
                const std::string& bind_addr = "", uint16_t bind_port = 0);
std::string read_all(int fd, int timeout_ms = 2000);
bool write_all(int fd, const void* buf, size_t n);
std::string addr_str(const sockaddr_in& sa);
// "198.18.0.1:80" or "[2001:2::1]:80" (a v4-mapped address prints as [::ffff:a.b.c.d]).
std::string addr_str(const sockaddr_storage& sa);
std::string local_addr(int fd);
std::string peer_addr(int fd);
// getsockopt(SOL_IP, SO_ORIGINAL_DST): "ip:port" or "ERR <errno name>".
std::string original_dst(int fd, socklen_t optlen = sizeof(sockaddr_in));
// Declares the socket safe to splice, as sockmesh-proxy does (SM_SO_SPLICE_SAFE).
void declare_splice_safe(int fd);
// getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST): "[ip]:port" or "ERR <errno name>".
std::string original_dst6(int fd);

// A fake sidecar: accepts on `port` and answers each connection with one line,
// "ORIG <SO_ORIGINAL_DST or ERR x> LOCAL <getsockname> PEER <getpeername>", then closes.
int serve_origdst(uint16_t port);
// The same on a dual-stack [::] listener, as an IPv6-capable sidecar: "ORIG <SOL_IP answer>
// ORIG6 <SOL_IPV6 answer> LOCAL <getsockname> PEER <getpeername>".
int serve_origdst_dual(uint16_t port);
// A plain server answering "DIRECT <name>" to each connection.
int serve_direct(const std::string& addr, uint16_t port, const std::string& name);

}  // namespace sm::test
