// Socket splicing (sockops + sk_msg + sm_sock_v2), proven byte-exact on real sockets:
// app <-> sidecar in one netns and sidecar <-> sidecar across two, with every read API the
// proxy uses, half-close, resets, many connections, slow readers and the counters.
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/ioctl.h>
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
const std::string kA = "198.18.2.2";
const std::string kB = "198.18.2.3";
constexpr uint64_t MiB = 1 << 20;

enum class Hop { app_sidecar, sidecar_sidecar };
std::string name(Hop h) {
  return h == Hop::app_sidecar ? "app_sidecar" : "sidecar_sidecar";
}

int connect_retry(const std::string& addr, uint16_t port) {
  for (int i = 0; i < 300; ++i) {
    int fd = tcp_connect(addr, port);
    if (fd != -ECONNREFUSED) return fd;
    usleep(10000);  // the listener starts at the same moment
  }
  return -ECONNREFUSED;
}

class SpliceBase : public ::testing::Test {
 public:
  struct Ends {
    StreamResult server, client;
  };

 protected:
  void start(const std::string& install_flags) {
    install_ = std::make_unique<Install>(install_flags);
    net_ = std::make_unique<TestNet>();
    a_ = &net_->add_host("a", kA + "/24");
    b_ = &net_->add_host("b", kB + "/24");
    // These tests prove the splicing mechanics with test programs as both ends, which
    // take every socket they are given: --splice-app lets every socket of the workloads
    // be spliced (splice_safety_test.cpp covers who is spliced by default).
    install_->enroll(*a_, "--splice-app");
    install_->enroll(*b_, "--splice-app");
  }

  // Where each end of a hop lives and how the client reaches the server.
  struct HopSetup {
    Place server, client;
    uint16_t listen_port;
    std::string dst;
    uint16_t dst_port;
  };
  HopSetup setup(Hop hop) const {
    if (hop == Hop::app_sidecar)  // the app's connect is redirected to its sidecar
      return {install_->place(*a_, kProxyUid), install_->place(*a_, kAppUid), 15001, "198.18.9.9",
              9080};
    // sidecar A -> B's pod address; B's sk_lookup steers it to B's sidecar
    return {install_->place(*b_, kProxyUid), install_->place(*a_, kProxyUid), 15006, kB, 9080};
  }

  // Accepts `conns` connections on the server end and makes them from the client end at
  // the same time; fn runs per connection (per thread) on each end.
  Ends exchange(Hop hop, std::function<StreamResult(int fd)> server_fn,
                std::function<StreamResult(int fd)> client_fn, int conns = 1) {
    HopSetup h = setup(hop);
    auto out = run_concurrently({h.server, h.client}, [&](size_t who, std::string& o) {
      std::vector<StreamResult> results(static_cast<size_t>(conns));
      std::vector<std::thread> threads;
      int l = who == 0 ? tcp_listen("0.0.0.0", h.listen_port, 1024) : -1;
      for (int i = 0; i < conns; ++i) {
        int fd = who == 0 ? ::accept(l, nullptr, nullptr) : connect_retry(h.dst, h.dst_port);
        if (fd < 0) {
          results[static_cast<size_t>(i)].error = "connect/accept:" + std::to_string(fd);
          continue;
        }
        threads.emplace_back([&, i, fd] {
          results[static_cast<size_t>(i)] = (who == 0 ? server_fn : client_fn)(fd);
          ::close(fd);
        });
      }
      for (auto& t : threads) t.join();
      // Aggregate: totals, and the first non-empty error; hashes of connection 0.
      StreamResult all = results[0];
      for (size_t i = 1; i < results.size(); ++i) {
        all.sent += results[i].sent;
        all.received += results[i].received;
        all.spurious_eagain += results[i].spurious_eagain;
        if (all.error.empty()) all.error = results[i].error;
      }
      o = all.serialize();
    });
    return {StreamResult::parse(out.at(0)), StreamResult::parse(out.at(1))};
  }

  std::unique_ptr<Install> install_;
  std::unique_ptr<TestNet> net_;
  Netns* a_ = nullptr;
  Netns* b_ = nullptr;
};

class Splice : public SpliceBase, public ::testing::WithParamInterface<Hop> {
 protected:
  void SetUp() override {
    SM_REQUIRE_ROOT();
    start("");
  }
};

// Default install (splicing on), a and b enrolled with --splice-app.
class SpliceOutside : public SpliceBase {
 protected:
  void SetUp() override {
    SM_REQUIRE_ROOT();
    start("");
  }
};

void expect_exact(const SpliceBase::Ends& e, const SendSpec& from_server,
                  const SendSpec& from_client) {
  EXPECT_EQ(e.server.error, "");
  EXPECT_EQ(e.client.error, "");
  EXPECT_EQ(e.client.sent, from_client.bytes);
  EXPECT_EQ(e.server.sent, from_server.bytes);
  EXPECT_EQ(e.server.received, from_client.bytes);
  EXPECT_EQ(e.client.received, from_server.bytes);
  EXPECT_EQ(e.server.received_sha, expected_sha(from_client));
  EXPECT_EQ(e.client.received_sha, expected_sha(from_server));
}

TEST_P(Splice, SixtyFourMebibytesEachWayAtOnceAreByteExact) {
  SendSpec s2c{64 * MiB, 11, 1, 1 << 20}, c2s{64 * MiB, 22, 1, 1 << 20};
  auto e = exchange(
      GetParam(), [&](int fd) { return pump(fd, s2c, {}); },
      [&](int fd) { return pump(fd, c2s, {}); });
  expect_exact(e, s2c, c2s);
  // The bytes went through the sockhash, not the TCP stack.
  EXPECT_GE(install_->counter("splice_bytes"), 128 * MiB);
  EXPECT_GE(install_->counter("sock_inserted"), 2u);
}

TEST_P(Splice, ManySmallWritesAreByteExact) {
  SendSpec s2c{2 * MiB, 3, 1, 64}, c2s{2 * MiB, 4, 1, 17};
  auto e = exchange(
      GetParam(),
      [&](int fd) {
        return pump(fd, s2c, {ReadApi::recv, 7});
      },
      [&](int fd) {
        return pump(fd, c2s, {ReadApi::recv, 1500});
      });
  expect_exact(e, s2c, c2s);
  EXPECT_GE(install_->counter("splice_msgs"), 2u * MiB / 64);
}

TEST_P(Splice, EveryReadApiTheProxyUsesSeesEveryByte) {
  for (ReadApi api :
       {ReadApi::recv, ReadApi::readv, ReadApi::io_uring, ReadApi::epoll, ReadApi::poll}) {
    SCOPED_TRACE(to_string(api));
    uint64_t before = install_->counter("splice_bytes");
    SendSpec s2c{8 * MiB, 5, 1, 256 * 1024}, c2s{8 * MiB, 6, 1, 256 * 1024};
    auto e = exchange(
        GetParam(),
        [&](int fd) {
          return pump(fd, s2c, {api, 16 * 1024});
        },
        [&](int fd) {
          return pump(fd, c2s, {api, 100 * 1000});
        });
    expect_exact(e, s2c, c2s);
    EXPECT_GE(install_->counter("splice_bytes") - before, 16 * MiB);
  }
}

TEST_P(Splice, HalfCloseDeliversEverythingThenEof) {
  SendSpec request{5 * MiB, 8, 1, 300 * 1000}, response{MiB, 9, 1, 4096};
  auto e = exchange(
      GetParam(),
      [&](int fd) {
        // Read the whole request first (EOF = the client's SHUT_WR), then answer.
        SendSpec nothing;
        nothing.shutdown_after = false;
        StreamResult in = pump(fd, nothing, {});
        StreamResult out = pump(fd, response, {});
        in.sent = out.sent;
        in.sent_sha = out.sent_sha;
        in.error += out.error;
        return in;
      },
      [&](int fd) { return pump(fd, request, {}); });
  expect_exact(e, response, request);
}

TEST_P(Splice, ResetMidStreamIsAnErrorNotAHang) {
  auto e = exchange(
      GetParam(),
      [&](int fd) {
        std::vector<char> buf(MiB);
        size_t got = 0;
        while (got < MiB) {
          ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
          if (n <= 0) break;
          got += static_cast<size_t>(n);
        }
        linger lg{1, 0};  // close with RST
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        StreamResult r;
        r.received = got;
        return r;
      },
      [&](int fd) {
        timeval tv{10, 0};  // a hang shows up as EAGAIN after 10 s
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        return pump(fd, SendSpec{256 * MiB, 1, 64 * 1024, 64 * 1024}, {});
      });
  EXPECT_GE(e.server.received, MiB);
  EXPECT_LT(e.client.sent, 256 * MiB);
  // The writer learns of the reset (EPIPE or ECONNRESET), never a timeout.
  EXPECT_TRUE(e.client.error.find("send:EPIPE") != std::string::npos ||
              e.client.error.find("send:ECONNRESET") != std::string::npos)
      << e.client.error;
  EXPECT_EQ(e.client.error.find("EAGAIN"), std::string::npos) << e.client.error;
}

TEST_P(Splice, TwoHundredConcurrentConnections) {
  SendSpec s2c{256 * 1024, 31, 1, 32 * 1024}, c2s{256 * 1024, 32, 1, 32 * 1024};
  constexpr int kConns = 200;
  auto e = exchange(
      GetParam(),
      [&](int fd) {
        StreamResult r = pump(fd, s2c, {});
        if (r.received_sha != expected_sha(c2s)) r.error += "bad-request-hash;";
        return r;
      },
      [&](int fd) {
        StreamResult r = pump(fd, c2s, {});
        if (r.received_sha != expected_sha(s2c)) r.error += "bad-response-hash;";
        return r;
      },
      kConns);
  EXPECT_EQ(e.server.error, "");
  EXPECT_EQ(e.client.error, "");
  EXPECT_EQ(e.server.received, kConns * c2s.bytes);
  EXPECT_EQ(e.client.received, kConns * s2c.bytes);
  EXPECT_GE(install_->counter("sock_inserted"), 2u * kConns);
}

TEST_P(Splice, SlowReaderGetsEveryByte) {
  SendSpec c2s{32 * MiB, 41, 64 * 1024, 1 << 20};
  auto e = exchange(
      GetParam(),
      [&](int fd) {
        return pump(fd, SendSpec{0}, {ReadApi::recv, 64 * 1024, 2000});
      },
      [&](int fd) { return pump(fd, c2s, {}); });
  expect_exact(e, SendSpec{0}, c2s);
}

TEST_P(Splice, TenThousandShortConnectionsLeaveTheSockhashEmpty) {
  constexpr int kConns = 10000;
  HopSetup h = setup(GetParam());
  auto out = run_concurrently({h.server, h.client}, [&](size_t who, std::string& o) {
    int ok = 0;
    if (who == 0) {
      int l = tcp_listen("0.0.0.0", h.listen_port, 1024);
      for (int i = 0; i < kConns; ++i) {
        int c = ::accept(l, nullptr, nullptr);
        char buf[64];
        ssize_t n = ::recv(c, buf, sizeof buf, MSG_WAITALL);
        if (n == 64 && write_all(c, buf, 64)) ++ok;
        ::close(c);
      }
    } else {
      for (int i = 0; i < kConns; ++i) {
        int fd = connect_retry(h.dst, h.dst_port);
        if (fd < 0) continue;
        char buf[64];
        std::memset(buf, i & 0xff, sizeof buf);
        char back[64] = {};
        if (write_all(fd, buf, 64) && ::recv(fd, back, 64, MSG_WAITALL) == 64 &&
            !std::memcmp(buf, back, 64))
          ++ok;
        ::close(fd);
      }
    }
    o = std::to_string(ok);
  });
  EXPECT_EQ(out, (std::vector<std::string>{std::to_string(kConns), std::to_string(kConns)}));
  EXPECT_GE(install_->counter("sock_inserted"), 2u * kConns);
  EXPECT_GE(install_->counter("splice_msgs"), 2u * kConns);
  EXPECT_EQ(install_->map_entries("sm_sock_v2"), 0);
  EXPECT_EQ(install_->map_entries("sm_origdst_v2"), 0);
}

// A socket whose peer lives outside the mesh (a netns nobody enrolled: the server of an
// outbound call, an external service) can never be spliced: only a netns that owns an
// address inserts keys with it. So it stays out of the sockhash and keeps the plain TCP
// path: no sk_msg program on each send, no tcp_bpf receive path.
TEST_F(SpliceOutside, PeersOutsideTheMeshAreNeverInserted) {
  Netns& outside = net_->add_host("c", "198.18.2.4/24");
  uint64_t inserted = install_->counter("sock_inserted");
  uint64_t not_owner = install_->counter("sock_not_owner");
  auto out =
      run_concurrently({install_->place(outside, kAppUid), install_->place(*a_, kProxyUid)},
                       [&](size_t who, std::string& o) {
                         if (who == 0) {
                           int l = tcp_listen("0.0.0.0", 9090);
                           int fd = ::accept(l, nullptr, nullptr);
                           o = read_all(fd, 3000);
                           (void)!::write(fd, "pong", 4);
                           ::close(fd);
                           ::close(l);
                           return;
                         }
                         // The sidecar's upstream socket: declared splice-safe, as sockmesh-proxy
                         // does.
                         int fd = -1;
                         for (int i = 0; i < 300 && fd < 0; ++i) {
                           fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                           declare_splice_safe(fd);
                           sockaddr_in sa{};
                           sa.sin_family = AF_INET;
                           sa.sin_port = htons(9090);
                           inet_pton(AF_INET, "198.18.2.4", &sa.sin_addr);
                           if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
                             ::close(fd);
                             fd = -1;
                             usleep(10000);  // the listener starts at the same moment
                           }
                         }
                         if (fd < 0) {
                           o = "connect failed";
                           return;
                         }
                         (void)!::write(fd, "ping", 4);
                         ::shutdown(fd, SHUT_WR);
                         o = read_all(fd, 3000);
                         ::close(fd);
                       });
  EXPECT_EQ(out, (std::vector<std::string>{"ping", "pong"}));
  EXPECT_EQ(install_->counter("sock_inserted"), inserted);
  EXPECT_GE(install_->counter("sock_not_owner"), not_owner + 1);
  EXPECT_EQ(install_->counter("splice_miss"), 0u);  // no sk_msg program ran on its sends
}

INSTANTIATE_TEST_SUITE_P(Hops, Splice, ::testing::Values(Hop::app_sidecar, Hop::sidecar_sidecar),
                         [](const auto& p) { return name(p.param); });

// ---- with splicing off -----------------------------------------------------------

class NoSplice : public SpliceBase {
 protected:
  void SetUp() override {
    SM_REQUIRE_ROOT();
    start("--no-splice");
  }
};

TEST_F(NoSplice, SameBytesNoRedirects) {
  for (Hop hop : {Hop::app_sidecar, Hop::sidecar_sidecar}) {
    SCOPED_TRACE(name(hop));
    SendSpec s2c{16 * MiB, 51, 1, 1 << 20}, c2s{16 * MiB, 52, 1, 1 << 20};
    auto e = exchange(
        hop, [&](int fd) { return pump(fd, s2c, {}); }, [&](int fd) { return pump(fd, c2s, {}); });
    expect_exact(e, s2c, c2s);
  }
  EXPECT_EQ(install_->counter("splice_msgs"), 0u);
  EXPECT_EQ(install_->counter("splice_bytes"), 0u);
  EXPECT_EQ(install_->counter("sock_inserted"), 0u);
  EXPECT_GE(install_->counter("connect_redirected"), 1u);  // interception still on
}

TEST_F(NoSplice, SplicingCanBeSwitchedOnAndOffWhileRunning) {
  SendSpec spec{4 * MiB, 61, 1, 65536};
  auto run = [&] {
    return exchange(
        Hop::app_sidecar, [&](int fd) { return pump(fd, spec, {}); },
        [&](int fd) { return pump(fd, spec, {}); });
  };
  expect_exact(run(), spec, spec);
  EXPECT_EQ(install_->counter("splice_bytes"), 0u);
  install_->loader_ok("splice on");
  expect_exact(run(), spec, spec);
  uint64_t on_bytes = install_->counter("splice_bytes");
  EXPECT_GE(on_bytes, 8 * MiB);
  install_->loader_ok("splice off");
  expect_exact(run(), spec, spec);
  EXPECT_EQ(install_->counter("splice_bytes"), on_bytes);
  auto st = nlohmann::json::parse(install_->status_json());
  EXPECT_FALSE(st["splice"].get<bool>());
}

// ---- what the kernel does with APIs outside the proxy's set -----------------------

class SpliceKernelEdges : public SpliceBase {
 protected:
  void SetUp() override {
    SM_REQUIRE_ROOT();
    start("");
  }
};

// Characterizes FIONREAD and splice(2) on a spliced socket holding 1000 redirected
// bytes. The proxy uses neither (see docs/ARCHITECTURE.md); this test pins what this
// kernel does so a change shows up.
TEST_F(SpliceKernelEdges, FionreadAndSpliceToAPipe) {
  auto e = exchange(
      Hop::app_sidecar,
      [&](int fd) {
        StreamResult r;
        usleep(200 * 1000);  // the client's 1000 bytes are queued by now
        int avail = -1;
        int rc = ::ioctl(fd, FIONREAD, &avail);
        int p[2];
        (void)!::pipe(p);
        ::fcntl(fd, F_SETFL, O_NONBLOCK);
        ssize_t spliced = ::splice(fd, nullptr, p[1], nullptr, 4096, SPLICE_F_NONBLOCK);
        int splice_errno = spliced < 0 ? errno : 0;
        char buf[2000];
        ssize_t got = ::recv(fd, buf, sizeof buf, 0);
        r.error = "fionread=" + std::to_string(rc == 0 ? avail : -errno) +
                  ",splice=" + std::to_string(spliced < 0 ? -splice_errno : spliced) +
                  ",recv_after=" + std::to_string(got);
        return r;
      },
      [&](int fd) {
        char buf[1000];
        std::memset(buf, 'x', sizeof buf);
        write_all(fd, buf, sizeof buf);
        usleep(400 * 1000);
        return StreamResult{};
      });
  ASSERT_GE(install_->counter("splice_msgs"), 1u);
  RecordProperty("observed", e.server.error);
  std::printf("observed on this kernel: %s\n", e.server.error.c_str());
  // FIONREAD counts bytes on the psock's ingress queue on this kernel.
  EXPECT_NE(e.server.error.find("fionread=1000"), std::string::npos) << e.server.error;
  // splice(2) reads only the TCP receive queue: redirected bytes are invisible to it
  // (EAGAIN), and stay readable with recv() afterwards.
  EXPECT_NE(e.server.error.find("splice=-11"), std::string::npos) << e.server.error;
  EXPECT_NE(e.server.error.find("recv_after=1000"), std::string::npos) << e.server.error;
}

}  // namespace
}  // namespace sm::test
