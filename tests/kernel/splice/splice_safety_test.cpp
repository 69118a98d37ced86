// Splicing must never change what a syscall returns to an application. The programs in a
// mesh are unmodified: a client with a writer thread and a reader blocked in recv() (JDBC
// drivers, websocket clients, Java's blocking I/O), and sidecars that are not ours (the
// simplest SO_ORIGINAL_DST forwarder is two threads doing blocking recv/send). On this
// kernel a socket in a sockhash breaks them (a blocking recv returns EAGAIN), so by
// default only sockets whose owner declared them safe (sockmesh-proxy) are spliced, and
// only between sidecars; an app's own sockets only with enroll --splice-app.
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "harness.h"
#include "stream.h"

namespace sm::test {
namespace {

constexpr uid_t kProxyUid = 1337;
constexpr uid_t kAppUid = 1000;
const std::string kA = "198.18.7.2";
const std::string kB = "198.18.7.3";
constexpr uint64_t kMiB = 1 << 20;

// An echo server: one thread per connection, blocking, everything back until EOF.
int serve_echo(uint16_t port) {
  int l = tcp_listen("::", port, 128);
  if (l < 0) return 3;
  signal_ready();
  for (;;) {
    int c = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::thread([c] {
      std::vector<char> buf(65536);
      for (;;) {
        ssize_t n = ::recv(c, buf.data(), buf.size(), 0);
        if (n <= 0 || !write_all(c, buf.data(), static_cast<size_t>(n))) break;
      }
      ::shutdown(c, SHUT_WR);
      ::close(c);
    }).detach();
  }
}

// Copies one direction with blocking calls; on EOF half-closes the other side. Counts a
// recv() that fails with EAGAIN on a blocking socket (the tcp_bpf behaviour).
void copy(int from, int to, std::atomic<int>* eagain) {
  std::vector<char> buf(65536);
  for (;;) {
    ssize_t n = ::recv(from, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EAGAIN) ++*eagain;
    if (n <= 0 || !write_all(to, buf.data(), static_cast<size_t>(n))) break;
  }
  ::shutdown(to, SHUT_WR);
}

// The simplest SO_ORIGINAL_DST sidecar: accept, find the destination (outbound:
// SO_ORIGINAL_DST; inbound: that, else getsockname -> 127.0.0.1:port), connect as the
// proxy user, two blocking threads. Writes the number of EAGAINs it saw to `eagain_file`
// after every connection.
int serve_blocking_forwarder(uint16_t port, bool inbound, std::string eagain_file) {
  int l = tcp_listen("0.0.0.0", port, 128);
  if (l < 0) return 3;
  signal_ready();
  auto eagain = std::make_shared<std::atomic<int>>(0);
  for (;;) {
    int c = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::string dst = original_dst(c);
    if (inbound) dst = "127.0.0.1:" + local_addr(c).substr(local_addr(c).rfind(':') + 1);
    size_t colon = dst.rfind(':');
    int up = dst.rfind("ERR", 0) == 0
                 ? -1
                 : tcp_connect(dst.substr(0, colon),
                               static_cast<uint16_t>(std::stoi(dst.substr(colon + 1))));
    if (up < 0) {
      ::close(c);
      continue;
    }
    std::thread([c, up, eagain, eagain_file] {
      std::thread back([&] { copy(up, c, eagain.get()); });
      copy(c, up, eagain.get());
      back.join();
      ::close(up);
      ::close(c);
      std::string n = std::to_string(eagain->load());
      int fd = ::open(eagain_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
      if (fd >= 0) {
        write_all(fd, n.data(), n.size());
        ::close(fd);
      }
    }).detach();
  }
}

class SpliceSafety : public ::testing::Test {
 protected:
  void SetUp() override {
    SM_REQUIRE_ROOT();
    tmp_ = std::make_unique<TempDir>("safety");
    install_ = std::make_unique<Install>();  // the defaults a user gets
    net_ = std::make_unique<TestNet>();
    a_ = &net_->add_host("a", kA + "/24");
    b_ = &net_->add_host("b", kB + "/24");
  }

  void start_sockmesh_proxies() {
    for (Netns* ns : {a_, b_}) {
      std::string log = tmp_->file(ns->name() + ".log");
      procs_.push_back(
          spawn(install_->place(*ns),
                {build_dir() + "/bin/sockmesh-proxy", "--uid", "1337", "--workers", "1"}, log));
      ASSERT_TRUE(wait_port(install_->place(*ns, kProxyUid), "127.0.0.1", 15000)) << slurp(log);
    }
  }
  void start_blocking_forwarders() {
    for (Netns* ns : {a_, b_}) {
      std::string out = tmp_->file(ns->name() + "-out.eagain");
      std::string in = tmp_->file(ns->name() + "-in.eagain");
      procs_.push_back(serve(install_->place(*ns, kProxyUid),
                             [out] { return serve_blocking_forwarder(15001, false, out); }));
      procs_.push_back(serve(install_->place(*ns, kProxyUid),
                             [in] { return serve_blocking_forwarder(15006, true, in); }));
    }
  }
  uint64_t forwarder_eagains() {
    uint64_t n = 0;
    for (Netns* ns : {a_, b_})
      for (const char* dir : {"-out.eagain", "-in.eagain"})
        n += std::strtoull(slurp(tmp_->file(ns->name() + dir)).c_str(), nullptr, 10);
    return n;
  }

  // The blocking full-duplex client (writer thread + reader blocked in recv) in A, through
  // A's sidecar, B's sidecar, to the echo server in B: `runs` times 8 MiB each way.
  void expect_full_duplex_clients_unharmed(int runs) {
    procs_.push_back(serve(install_->place(*b_, kAppUid), [] { return serve_echo(9080); }));
    for (int run = 0; run < runs; ++run) {
      SendSpec send{8 * kMiB, static_cast<uint32_t>(run + 1), 1, 256 * 1024};
      std::string out = run_in(install_->place(*a_, kAppUid), [&](std::string& o) {
        int fd = tcp_connect(kB, 9080, 5000);
        if (fd < 0) {
          o = "connect " + std::to_string(fd);
          return;
        }
        o = pump(fd, send, {ReadApi::recv, 65536}).serialize();
        ::close(fd);
      });
      StreamResult r = StreamResult::parse(out);
      ASSERT_EQ(r.error, "") << "run " << run << ": " << out;
      EXPECT_EQ(r.spurious_eagain, 0u) << "run " << run << ": a blocking recv() saw EAGAIN";
      EXPECT_EQ(r.received, send.bytes) << "run " << run;
      EXPECT_EQ(r.received_sha, expected_sha(send)) << "run " << run;
    }
  }

  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<Install> install_;
  std::unique_ptr<TestNet> net_;
  Netns* a_ = nullptr;
  Netns* b_ = nullptr;
  std::vector<Proc> procs_;
};

TEST_F(SpliceSafety, BlockingFullDuplexClientsThroughSockmeshProxyAreUnharmed) {
  install_->enroll(*a_);
  install_->enroll(*b_);
  start_sockmesh_proxies();
  expect_full_duplex_clients_unharmed(20);
  // Splicing is on where it is safe: the sidecar <-> sidecar hop (sockmesh-proxy declares
  // its sockets), and off for the apps' own sockets.
  EXPECT_GE(install_->counter("splice_bytes"), 20 * 8 * kMiB);
  EXPECT_GE(install_->counter("sock_not_safe"), 20u);
}

TEST_F(SpliceSafety, BlockingForwardersAsSidecarsAreNeverSpliced) {
  install_->enroll(*a_);
  install_->enroll(*b_);
  start_blocking_forwarders();
  expect_full_duplex_clients_unharmed(20);
  EXPECT_EQ(forwarder_eagains(), 0u);
  // They did not declare their sockets: nothing of theirs went into the sockhash.
  EXPECT_EQ(install_->counter("sock_inserted"), 0u);
  EXPECT_EQ(install_->counter("splice_bytes"), 0u);
}

// A workload enrolled with --splice-app gets its own sockets spliced (its programs are
// known to use non-blocking I/O); a non-blocking client is byte-exact through it.
TEST_F(SpliceSafety, SpliceAppOptsAWorkloadsOwnSocketsIn) {
  install_->enroll(*a_, "--splice-app");
  install_->enroll(*b_);
  start_sockmesh_proxies();
  procs_.push_back(serve(install_->place(*b_, kAppUid), [] { return serve_echo(9080); }));
  SendSpec send{8 * kMiB, 7, 1, 256 * 1024};
  std::string out = run_in(install_->place(*a_, kAppUid), [&](std::string& o) {
    int fd = tcp_connect(kB, 9080, 5000);
    o = fd < 0 ? "connect" : pump(fd, send, {ReadApi::epoll, 65536}).serialize();
  });
  StreamResult r = StreamResult::parse(out);
  EXPECT_EQ(r.error, "") << out;
  EXPECT_EQ(r.received_sha, expected_sha(send));
  // Both hops spliced: app <-> sidecar A (both ways) and sidecar <-> sidecar.
  EXPECT_GE(install_->counter("splice_bytes"), 3 * 8 * kMiB);
  auto status = nlohmann::json::parse(install_->status_json());
  ASSERT_EQ(status["workloads"].size(), 2u);
  int opted_in = 0;
  for (const auto& w : status["workloads"]) opted_in += w["splice_app"].get<bool>();
  EXPECT_EQ(opted_in, 1);
}

// install probes the kernel: on kernels where a spliced socket changes what recv() or
// splice(2) return, the apps' own sockets are not spliced unless a workload opts in.
TEST_F(SpliceSafety, InstallReportsWhetherThisKernelIsSafeForAppSockets) {
  auto status = nlohmann::json::parse(install_->status_json());
  ASSERT_TRUE(status.contains("app_splice_safe"));
  // What the probe decided must agree with what a spliced socket does here: splice(2)
  // from a socket whose bytes were redirected (the same check the splice suite pins).
  std::string out;
  install_->loader("status", &out);
  EXPECT_NE(out.find(status["app_splice_safe"].get<bool>() ? "this kernel is safe"
                                                           : "spliced only with --splice-app"),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace sm::test
