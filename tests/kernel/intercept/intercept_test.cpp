// Interception behaviour, proven with real connects in sm-* namespaces: the eBPF mode and
// the iptables baseline (Istio's proxy_init rules) must behave the same way, so every
// behavioural test runs in both modes. eBPF-only properties (map hygiene, install
// lifecycle) are at the end.
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grp.h>
#include <poll.h>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace sm::test {
namespace {

enum class Mode { ebpf, iptables };

constexpr uid_t kProxyUid = 1337;
constexpr uid_t kAppUid = 1000;
const std::string kApp = "198.18.1.2";
const std::string kApp2 = "198.18.1.4";
const std::string kSrv = "198.18.1.3";

class Intercept : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    SM_REQUIRE_ROOT();
    install_ = std::make_unique<Install>();
    net_ = std::make_unique<TestNet>();
    app_ = &net_->add_host("app", kApp + "/24");
    srv_ = &net_->add_host("srv", kSrv + "/24");
    // A real destination: answers "DIRECT srv" on several ports.
    for (uint16_t port : {9080, 9090, 9999})
      servers_.push_back(
          serve(Place::in(*srv_), [port] { return serve_direct("0.0.0.0", port, "srv"); }));
  }

  bool ebpf() const { return GetParam() == Mode::ebpf; }

  void enroll(const Netns& ns, const std::string& flags = "") {
    if (ebpf())
      install_->enroll(ns, flags);
    else
      install_->loader_ok("enroll --mode iptables --netns " + ns.path() + " " + flags);
  }
  // The workload's sidecar, as the proxy user, inside the cgroup.
  void start_sidecar(const Netns& ns) {
    servers_.push_back(serve(install_->place(ns, kProxyUid), [] { return serve_origdst(15001); }));
    servers_.push_back(serve(install_->place(ns, kProxyUid), [] { return serve_origdst(15006); }));
  }
  Place app_place(std::optional<uid_t> uid = kAppUid, std::optional<gid_t> gid = {}) const {
    return install_->place(*app_, uid, gid);
  }
  std::string from_app(const std::string& addr, uint16_t port) {
    return connect_line(app_place(), addr, port);
  }

  std::unique_ptr<Install> install_;
  std::unique_ptr<TestNet> net_;
  Netns* app_ = nullptr;
  Netns* srv_ = nullptr;
  std::vector<Proc> servers_;
};

std::string redirected_to(const std::string& dst) {
  return "ORIG " + dst + " ";
}

TEST_P(Intercept, OutboundConnectIsRedirectedAndSoOriginalDstAnswers) {
  enroll(*app_);
  start_sidecar(*app_);
  std::string line = from_app(kSrv, 9080);
  EXPECT_EQ(line.rfind(redirected_to(kSrv + ":9080"), 0), 0u) << line;
  EXPECT_NE(line.find("LOCAL 127.0.0.1:15001"), std::string::npos) << line;
  if (ebpf()) {
    EXPECT_GE(install_->counter("connect_redirected"), 1u);
  }
}

TEST_P(Intercept, GetpeernameShowsTheOriginalDestination) {
  enroll(*app_);
  start_sidecar(*app_);
  std::string peer = run_in(app_place(), [&](std::string& out) {
    int fd = tcp_connect(kSrv, 9090);
    out = fd < 0 ? "ERR" : peer_addr(fd);
  });
  EXPECT_EQ(peer, kSrv + ":9090");
}

TEST_P(Intercept, ProxyUidAndGidBypass) {
  enroll(*app_);
  start_sidecar(*app_);
  EXPECT_EQ(connect_line(app_place(kProxyUid), kSrv, 9080), "DIRECT srv");
  EXPECT_EQ(connect_line(app_place(kAppUid, kProxyUid), kSrv, 9080), "DIRECT srv");
  // A custom proxy gid (different from the uid) is honoured too.
  enroll(*app_, "--proxy-gid 2000");
  EXPECT_EQ(connect_line(app_place(kAppUid, 2000), kSrv, 9080), "DIRECT srv");
  EXPECT_EQ(connect_line(app_place(kAppUid, kProxyUid), kSrv, 9080).rfind("ORIG", 0), 0u);
}

TEST_P(Intercept, LoopbackDestinationsBypass) {
  enroll(*app_);
  start_sidecar(*app_);
  servers_.push_back(serve(Place::in(*app_), [] { return serve_direct("0.0.0.0", 9080, "app"); }));
  EXPECT_EQ(from_app("127.0.0.1", 9080), "DIRECT app");
  EXPECT_EQ(from_app("127.0.0.2", 9080), "DIRECT app");
}

TEST_P(Intercept, ExcludedOutboundPortsBypass) {
  enroll(*app_, "--exclude-outbound-ports 9999,9090");
  start_sidecar(*app_);
  EXPECT_EQ(from_app(kSrv, 9999), "DIRECT srv");
  EXPECT_EQ(from_app(kSrv, 9090), "DIRECT srv");
  EXPECT_EQ(from_app(kSrv, 9080).rfind(redirected_to(kSrv + ":9080"), 0), 0u);
}

TEST_P(Intercept, ExcludedCidrsBypass) {
  enroll(*app_, "--exclude-cidrs 198.18.1.3/32,198.19.0.0/16");
  start_sidecar(*app_);
  EXPECT_EQ(from_app(kSrv, 9080), "DIRECT srv");
  // Another address of the same /24 is still redirected (nothing listens there).
  EXPECT_EQ(from_app("198.18.1.77", 80).rfind(redirected_to("198.18.1.77:80"), 0), 0u);
}

TEST_P(Intercept, IncludeCidrsLimitWhatIsRedirected) {
  enroll(*app_, "--include-cidrs 198.18.9.0/24");
  start_sidecar(*app_);
  EXPECT_EQ(from_app(kSrv, 9080), "DIRECT srv");
  EXPECT_EQ(from_app("198.18.9.10", 80).rfind(redirected_to("198.18.9.10:80"), 0), 0u);
  // "*" means everything, as in Istio.
  enroll(*app_, "--include-cidrs '*'");
  EXPECT_EQ(from_app(kSrv, 9080).rfind(redirected_to(kSrv + ":9080"), 0), 0u);
}

TEST_P(Intercept, UdpIsNotRedirected) {
  enroll(*app_);
  start_sidecar(*app_);
  servers_.push_back(serve(Place::in(*srv_), [] {
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(5353);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return 3;
    signal_ready();
    for (;;) {
      char buf[64];
      sockaddr_in from{};
      socklen_t len = sizeof from;
      ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n > 0)
        ::sendto(fd, buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }));
  std::string out = run_in(app_place(), [&](std::string& o) {
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(5353);
    inet_pton(AF_INET, kSrv.c_str(), &sa.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return;
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)!::send(fd, "ping", 4, 0);
    char buf[8] = {};
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    o = peer_addr(fd) + " " + std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
  });
  EXPECT_EQ(out, kSrv + ":5353 ping");
}

TEST_P(Intercept, NamespacesThatAreNotEnrolledAreUntouched) {
  enroll(*app_);
  start_sidecar(*app_);
  Netns& other = net_->add_host("other", "198.18.1.5/24");
  start_sidecar(other);  // a listener on 15001 there must not receive anything
  EXPECT_EQ(connect_line(install_->place(other, kAppUid), kSrv, 9080), "DIRECT srv");
}

TEST_P(Intercept, SidecarDownFailsClosed) {
  enroll(*app_);
  EXPECT_EQ(from_app(kSrv, 9080), "ERR ECONNREFUSED");
  if (ebpf()) {
    EXPECT_EQ(install_->counter("fail_open"), 0u);
  }
}

// enroll --fail-open: while nothing listens on the sidecar's port the connect goes where
// the app asked (and is counted); once the sidecar listens it is redirected again. Istio's
// iptables REDIRECT has no such mode, so there the flag is refused.
TEST_P(Intercept, FailOpenGoesDirectWhileNoSidecarListens) {
  if (!ebpf()) {
    std::string out;
    EXPECT_NE(install_->loader("enroll --mode iptables --fail-open --netns " + app_->path(), &out),
              0);
    EXPECT_NE(out.find("--fail-open works only with --mode ebpf"), std::string::npos) << out;
    EXPECT_EQ(from_app(kSrv, 9080), "DIRECT srv");  // nothing was enrolled
    return;
  }
  enroll(*app_, "--fail-open");
  EXPECT_EQ(from_app(kSrv, 9080), "DIRECT srv");
  EXPECT_EQ(install_->counter("fail_open"), 1u);
  EXPECT_EQ(install_->counter("connect_redirected"), 0u);
  auto status = nlohmann::json::parse(install_->status_json());
  EXPECT_TRUE(status["workloads"][0]["fail_open"].get<bool>()) << status.dump();
  start_sidecar(*app_);
  std::string line = from_app(kSrv, 9080);
  EXPECT_EQ(line.rfind(redirected_to(kSrv + ":9080"), 0), 0u) << line;
  EXPECT_EQ(install_->counter("fail_open"), 1u);
  EXPECT_EQ(install_->counter("connect_redirected"), 1u);
}

TEST_P(Intercept, InboundConnectionsAreSteeredToTheSidecar) {
  enroll(*app_, "--exclude-inbound-ports 9090");
  start_sidecar(*app_);
  servers_.push_back(serve(Place::in(*app_), [] { return serve_direct("0.0.0.0", 9080, "app"); }));
  servers_.push_back(serve(Place::in(*app_), [] { return serve_direct("0.0.0.0", 9090, "app"); }));
  Place client = Place::in(*srv_, kAppUid);
  std::string line = connect_line(client, kApp, 9080);
  if (ebpf()) {
    // sk_lookup keeps the destination: the sidecar's getsockname() is the original.
    EXPECT_NE(line.find("LOCAL " + kApp + ":9080"), std::string::npos) << line;
  } else {
    // REDIRECT rewrites it: the original comes from conntrack.
    EXPECT_EQ(line.rfind(redirected_to(kApp + ":9080"), 0), 0u) << line;
  }
  EXPECT_NE(line.find("PEER " + kSrv + ":"), std::string::npos) << line;
  // A port with no app listening is steered as well (the sidecar decides).
  EXPECT_EQ(connect_line(client, kApp, 7000).rfind("ORIG", 0), 0u);
  // Excluded inbound ports reach the app directly.
  EXPECT_EQ(connect_line(client, kApp, 9090), "DIRECT app");
  if (ebpf()) {
    EXPECT_GE(install_->counter("inbound_steered"), 2u);
  }
}

TEST_P(Intercept, LoopbackAndSidecarPortsAreNeverSteeredInbound) {
  enroll(*app_);
  start_sidecar(*app_);
  servers_.push_back(serve(Place::in(*app_), [] { return serve_direct("0.0.0.0", 9080, "app"); }));
  // Inside the workload, 127.0.0.1 reaches the app itself (how the sidecar forwards).
  EXPECT_EQ(connect_line(app_place(kProxyUid), "127.0.0.1", 9080), "DIRECT app");
  // Connecting to the sidecar's own ports from outside is not looped back into it.
  Place client = Place::in(*srv_, kAppUid);
  std::string line = connect_line(client, kApp, 15006);
  // Not steered (ebpf) or not NATed (iptables: conntrack reports the unchanged tuple).
  std::string orig = ebpf() ? "ERR ENOENT" : kApp + ":15006";
  EXPECT_EQ(line.rfind("ORIG " + orig + " LOCAL " + kApp + ":15006 ", 0), 0u) << line;
}

TEST_P(Intercept, InboundWithoutSidecarIsRefused) {
  enroll(*app_);
  servers_.push_back(serve(Place::in(*app_), [] { return serve_direct("0.0.0.0", 9080, "app"); }));
  EXPECT_EQ(connect_line(Place::in(*srv_), kApp, 9080), "ERR ECONNREFUSED");
}

// Two namespaces make connections with identical loopback 4-tuples at the same time;
// each must get its own original destination back.
TEST_P(Intercept, IdenticalTuplesInTwoNamespacesNeverMix) {
  Netns& app2 = net_->add_host("app", kApp2 + "/24");
  enroll(*app_);
  enroll(app2);
  start_sidecar(*app_);
  start_sidecar(app2);
  constexpr int kConns = 150;
  auto results = run_concurrently(
      {app_place(), install_->place(app2, kAppUid)}, [&](size_t who, std::string& out) {
        int bad = 0, ok = 0;
        for (int i = 0; i < kConns; ++i) {
          uint16_t dport = static_cast<uint16_t>((who == 0 ? 1000 : 2000) + i);
          // Same source port in both namespaces: under eBPF the rewritten tuples
          // (127.0.0.1:40000+i -> 127.0.0.1:15001) are identical in both.
          int fd = tcp_connect(kSrv, dport, 2000, "0.0.0.0", static_cast<uint16_t>(40000 + i));
          if (fd < 0) {
            ++bad;
            continue;
          }
          std::string line = read_all(fd);
          ::close(fd);
          if (line.rfind(redirected_to(kSrv + ":" + std::to_string(dport)), 0) == 0)
            ++ok;
          else
            ++bad;
        }
        out = std::to_string(ok) + " ok " + std::to_string(bad) + " bad";
      });
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0], std::to_string(kConns) + " ok 0 bad");
  EXPECT_EQ(results[1], std::to_string(kConns) + " ok 0 bad");
}

TEST_P(Intercept, SoOriginalDstOnAPlainConnectionFailsAsTheKernelDoes) {
  enroll(*app_);
  // The kernel's own answer, from a process outside the install's cgroup.
  auto probe = [&](const Place& where) {
    return run_in(where, [&](std::string& out) {
      int l = tcp_listen("127.0.0.1", 9500);
      int c = tcp_connect("127.0.0.1", 9500);
      int a = ::accept(l, nullptr, nullptr);
      out = original_dst(a) + " / short buffer: " + original_dst(a, 8);
      ::close(a);
      ::close(c);
      ::close(l);
    });
  };
  std::string kernel = probe(Place::in(*app_));
  // Without NAT rules in the netns nothing is tracked: ENOENT. With iptables, conntrack
  // tracks every connection and reports its unchanged destination.
  EXPECT_EQ(kernel, (ebpf() ? "ERR ENOENT" : "127.0.0.1:9500") +
                        std::string(" / short buffer: ERR EINVAL"));
  EXPECT_EQ(probe(app_place(kProxyUid)), kernel);
}

TEST_P(Intercept, OtherGetsockoptCallsAreUntouched) {
  enroll(*app_);
  // On a socket the sidecar accepted: TCP_INFO (larger than sockaddr_in), TCP_INFO with
  // a buffer larger than a page, and SO_TYPE come back exactly as the kernel answers.
  auto probe = [&](const Place& where, bool redirected) {
    return run_in(where, [&](std::string& out) {
      int l = tcp_listen("127.0.0.1", 15001);
      // As root (not the proxy uid), a connect to kSrv is redirected to our listener.
      int c = redirected ? tcp_connect(kSrv, 9080) : tcp_connect("127.0.0.1", 15001);
      int a = ::accept(l, nullptr, nullptr);
      tcp_info ti{};
      socklen_t len = sizeof ti;
      int rc1 = ::getsockopt(a, IPPROTO_TCP, TCP_INFO, &ti, &len);
      std::vector<char> big(3 * 4096);
      socklen_t blen = static_cast<socklen_t>(big.size());
      int rc2 = ::getsockopt(a, IPPROTO_TCP, TCP_INFO, big.data(), &blen);
      int type = 0;
      socklen_t tlen = sizeof type;
      int rc3 = ::getsockopt(a, SOL_SOCKET, SO_TYPE, &type, &tlen);
      out = std::to_string(rc1) + " " + std::to_string(len) + " state " +
            std::to_string(ti.tcpi_state) + " | " + std::to_string(rc2) + " " +
            std::to_string(blen) + " | " + std::to_string(rc3) + " " + std::to_string(type) +
            " | " + original_dst(a);
      ::close(a);
      ::close(c);
      ::close(l);
    });
  };
  std::string kernel = probe(Place::in(*app_), false);
  std::string ours = probe(install_->place(*app_), true);
  auto untouched = [](const std::string& s) { return s.substr(0, s.rfind(" | ")); };
  EXPECT_EQ(untouched(ours), untouched(kernel));
  EXPECT_EQ(kernel.rfind("0 " + std::to_string(sizeof(tcp_info)) + " state 1 | 0 ", 0), 0u)
      << kernel;
  EXPECT_EQ(ours.substr(ours.rfind(" | ") + 3), kSrv + ":9080");
}

void PrintTo(Mode m, std::ostream* os) {
  *os << (m == Mode::ebpf ? "ebpf" : "iptables");
}

INSTANTIATE_TEST_SUITE_P(Modes, Intercept, ::testing::Values(Mode::ebpf, Mode::iptables),
                         [](const auto& p) {
                           return p.param == Mode::ebpf ? std::string("ebpf")
                                                        : std::string("iptables");
                         });

// ---- eBPF-only properties ----------------------------------------------------------

class EbpfIntercept : public Intercept {};

TEST_P(EbpfIntercept, ThousandsOfShortConnectionsLeaveNoBookkeeping) {
  enroll(*app_);
  start_sidecar(*app_);
  constexpr int kConns = 3000;
  std::string out = run_in(app_place(), [&](std::string& o) {
    int ok = 0;
    for (int i = 0; i < kConns; ++i) {
      int fd = tcp_connect(kSrv, 9080);
      if (fd < 0) continue;
      // Half read the answer, half close at once (before the sidecar answers).
      if (i % 2 == 0 && read_all(fd).rfind("ORIG " + kSrv, 0) == 0) ++ok;
      if (i % 2 == 1) ++ok;
      ::close(fd);
    }
    o = std::to_string(ok);
  });
  EXPECT_EQ(out, std::to_string(kConns));
  EXPECT_EQ(install_->map_entries("sm_origdst_v2"), 0);
  EXPECT_EQ(install_->counter("connect_redirected"), static_cast<uint64_t>(kConns));
  EXPECT_EQ(install_->counter("origdst_recorded"), static_cast<uint64_t>(kConns));
  EXPECT_EQ(install_->counter("origdst_missing"), 0u);
  EXPECT_EQ(install_->counter("inflight_full"), 0u);
}

TEST_P(EbpfIntercept, InstallTwiceIsANoOpAndUninstallRemovesEverything) {
  enroll(*app_);
  std::string out;
  ASSERT_EQ(install_->loader("install --cgroup " + install_->cgroup(), &out), 0) << out;
  EXPECT_EQ(out.find("attached"), std::string::npos) << out;
  EXPECT_EQ(out.find("upgraded"), std::string::npos) << out;
  // Exactly one program per hook on the cgroup.
  std::string progs = sh_ok("bpftool cgroup show " + install_->cgroup());
  for (const char* hook : {"cgroup_inet4_connect ", "cgroup_inet6_connect ", "cgroup_getsockopt ",
                           "cgroup_setsockopt ", "cgroup_inet4_getpeername ",
                           "cgroup_inet6_getpeername ", "cgroup_sock_ops "}) {
    size_t n = 0;
    for (size_t p = progs.find(hook); p != std::string::npos; p = progs.find(hook, p + 1)) ++n;
    EXPECT_EQ(n, 1u) << hook << " in\n" << progs;
  }
  std::vector<std::string> prog_ids;
  auto status = nlohmann::json::parse(install_->status_json());
  for (const auto& l : status["links"])
    prog_ids.push_back(std::to_string(l["prog"]["id"].get<int>()));
  ASSERT_EQ(prog_ids.size(), 9u);  // 7 cgroup programs, sk_msg, one netns sk_lookup

  ASSERT_EQ(install_->loader("uninstall", &out), 0) << out;
  EXPECT_FALSE(std::ifstream(install_->pin_dir()).good());
  EXPECT_EQ(sh("bpftool cgroup show " + install_->cgroup() + " | grep -c sm_"), 1);
  for (const auto& id : prog_ids) EXPECT_NE(sh("bpftool prog show id " + id), 0) << "prog " << id;

  // And again from scratch: it works as before.
  ASSERT_EQ(install_->loader("install --cgroup " + install_->cgroup(), &out), 0) << out;
  enroll(*app_);
  start_sidecar(*app_);
  EXPECT_EQ(from_app(kSrv, 9080).rfind(redirected_to(kSrv + ":9080"), 0), 0u);
}

TEST_P(EbpfIntercept, UnenrollStopsInterceptionAndRemovesItsEntries) {
  enroll(*app_, "--exclude-outbound-ports 1,2,3 --exclude-cidrs 198.19.0.0/16");
  start_sidecar(*app_);
  EXPECT_EQ(from_app(kSrv, 9080).rfind("ORIG", 0), 0u);
  install_->loader_ok("unenroll --netns " + app_->path());
  EXPECT_EQ(from_app(kSrv, 9080), "DIRECT srv");
  EXPECT_EQ(install_->map_entries("sm_netns_v1"), 0);
  EXPECT_EQ(install_->map_entries("sm_port_v1"), 0);
  EXPECT_EQ(install_->map_entries("sm_cidr_v2"), 0);
  auto status = nlohmann::json::parse(install_->status_json());
  for (const auto& l : status["links"])
    EXPECT_EQ(l["name"].get<std::string>().rfind("inbound_", 0), std::string::npos);
  // Inbound is no longer steered either.
  servers_.push_back(serve(Place::in(*app_), [] { return serve_direct("0.0.0.0", 9080, "app"); }));
  EXPECT_EQ(connect_line(Place::in(*srv_), kApp, 9080), "DIRECT app");
}

TEST_P(EbpfIntercept, ReenrollReplacesTheRules) {
  enroll(*app_, "--exclude-outbound-ports 9080");
  start_sidecar(*app_);
  EXPECT_EQ(from_app(kSrv, 9080), "DIRECT srv");
  enroll(*app_, "--exclude-outbound-ports 9999");
  EXPECT_EQ(from_app(kSrv, 9080).rfind("ORIG", 0), 0u);
  EXPECT_EQ(from_app(kSrv, 9999), "DIRECT srv");
  EXPECT_EQ(install_->map_entries("sm_port_v1"), 1);
}

TEST_P(EbpfIntercept, AGoneNamespaceIsCollected) {
  auto gone = std::make_unique<Netns>(unique_name("gone"));
  enroll(*gone);
  EXPECT_EQ(install_->map_entries("sm_netns_v1"), 1);
  gone.reset();  // ip netns del: the sk_lookup link goes defunct
  // Deleting a netns is asynchronous in the kernel; wait for its link to go defunct.
  for (int i = 0; i < 100; ++i) {
    auto st = nlohmann::json::parse(install_->status_json());
    bool dead = false;
    for (const auto& l : st["links"])
      if (l.contains("netns_alive") && !l["netns_alive"].get<bool>()) dead = true;
    if (dead) break;
    usleep(20000);
  }
  enroll(*app_);
  auto status = nlohmann::json::parse(install_->status_json());
  ASSERT_EQ(status["workloads"].size(), 1u);
  EXPECT_EQ(install_->map_entries("sm_netns_v1"), 1);
}

TEST_P(EbpfIntercept, RerunningInstallKeepsSpliceOff) {
  install_->loader_ok("splice off");
  install_->loader_ok("install --cgroup " + install_->cgroup());
  auto status = nlohmann::json::parse(install_->status_json());
  EXPECT_FALSE(status["splice"].get<bool>());
  // An explicit --no-splice on a rerun still applies, and `splice on` undoes it.
  install_->loader_ok("splice on");
  install_->loader_ok("install --cgroup " + install_->cgroup());
  EXPECT_TRUE(nlohmann::json::parse(install_->status_json())["splice"].get<bool>());
  install_->loader_ok("install --no-splice --cgroup " + install_->cgroup());
  EXPECT_FALSE(nlohmann::json::parse(install_->status_json())["splice"].get<bool>());
}

TEST_P(EbpfIntercept, ANetnsEnrolledAfterItsSidecarListensIsSteered) {
  start_sidecar(*app_);  // listening before the netns is enrolled: no TCP_LISTEN_CB for it
  servers_.push_back(serve(Place::in(*app_), [] { return serve_direct("0.0.0.0", 9080, "app"); }));
  enroll(*app_);
  std::string line = connect_line(Place::in(*srv_, kAppUid), kApp, 9080);
  EXPECT_NE(line.find("LOCAL " + kApp + ":9080"), std::string::npos) << line;
}

TEST_P(EbpfIntercept, ASocketThatReconnectsToAnExemptDestinationForgetsTheRedirect) {
  enroll(*app_);  // no sidecar: the redirected connect is refused
  servers_.push_back(serve(Place::in(*app_), [] { return serve_direct("0.0.0.0", 9080, "app"); }));
  std::string out = run_in(app_place(), [&](std::string& o) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in srv{}, lo{};
    srv.sin_family = lo.sin_family = AF_INET;
    srv.sin_port = lo.sin_port = htons(9080);
    inet_pton(AF_INET, kSrv.c_str(), &srv.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &lo.sin_addr);
    int first = ::connect(fd, reinterpret_cast<sockaddr*>(&srv), sizeof srv);
    o = std::string(first == 0 ? "connected" : strerrorname_np(errno)) + " then ";
    int second = ::connect(fd, reinterpret_cast<sockaddr*>(&lo), sizeof lo);
    o += std::string(second == 0 ? "connected" : strerrorname_np(errno)) + " peer " +
         peer_addr(fd) + " says " + read_all(fd);
  });
  EXPECT_EQ(out, "ECONNREFUSED then connected peer 127.0.0.1:9080 says DIRECT app\n");
}

// The cgroup sockopt hooks see at most a page of the buffer; longer options must come
// back exactly as without sockmesh (older kernels turn an unhandled one into EFAULT).
TEST_P(EbpfIntercept, SockoptsLongerThanAPageAreUntouched) {
  enroll(*app_);
  auto probe = [&](const Place& where) {
    return run_in(where, [&](std::string& o) {
      // SO_PEERGROUPS answers 4 bytes per supplementary group: 1100 groups > 4 KiB.
      std::vector<gid_t> groups(1100);
      for (size_t i = 0; i < groups.size(); ++i) groups[i] = static_cast<gid_t>(5000 + i);
      if (::setgroups(groups.size(), groups.data()) != 0) {
        o = "setgroups failed";
        return;
      }
      int sv[2];
      ::socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
      std::vector<char> buf(8192);
      socklen_t len = static_cast<socklen_t>(buf.size());
      int rc = ::getsockopt(sv[0], SOL_SOCKET, SO_PEERGROUPS, buf.data(), &len);
      gid_t last = 0;
      std::memcpy(&last, buf.data() + (groups.size() - 1) * sizeof(gid_t), sizeof last);
      o = "get " + std::to_string(rc) + " len " + std::to_string(len) + " last " +
          std::to_string(last);
      // setsockopt with an 8 KiB buffer whose first int is the value.
      int tcp = ::socket(AF_INET, SOCK_STREAM, 0);
      std::vector<char> big(8192, 0);
      int want = 65536;
      std::memcpy(big.data(), &want, sizeof want);
      rc = ::setsockopt(tcp, SOL_SOCKET, SO_RCVBUF, big.data(), static_cast<socklen_t>(big.size()));
      int have = 0;
      socklen_t hl = sizeof have;
      ::getsockopt(tcp, SOL_SOCKET, SO_RCVBUF, &have, &hl);
      o += " set " + std::to_string(rc) + " rcvbuf " + std::to_string(have);
    });
  };
  std::string kernel = probe(Place::in(*app_));
  EXPECT_EQ(kernel, "get 0 len 4400 last 6099 set 0 rcvbuf 131072");
  EXPECT_EQ(probe(app_place(std::nullopt)), kernel);
}

TEST_P(EbpfIntercept, InstallAfterAnEnrolledNetnsDiedSucceedsAndCollectsIt) {
  auto gone = std::make_unique<Netns>(unique_name("gone"));
  enroll(*gone);
  enroll(*app_);
  gone.reset();
  for (int i = 0; i < 100; ++i) {  // netns teardown is asynchronous
    bool dead = false;
    for (const auto& l : nlohmann::json::parse(install_->status_json())["links"])
      if (l.contains("netns_alive") && !l["netns_alive"].get<bool>()) dead = true;
    if (dead) break;
    usleep(20000);
  }
  std::string out;
  ASSERT_EQ(install_->loader("install --cgroup " + install_->cgroup(), &out), 0) << out;
  EXPECT_EQ(nlohmann::json::parse(install_->status_json())["workloads"].size(), 1u);
  start_sidecar(*app_);
  EXPECT_EQ(from_app(kSrv, 9080).rfind(redirected_to(kSrv + ":9080"), 0), 0u);
}

// A workload with CAP_NET_ADMIN can add another pod's addresses to its own interfaces and
// build a connection with exactly the tuple of a real one between two pods. Splice keys
// of non-loopback tuples carry no netns (sidecars in two namespaces must find each
// other), so only the netns that owns an address may insert a key with it as the local
// side: the copy is never inserted and the real connection's bytes never reach it.
TEST_P(EbpfIntercept, AnotherNetnsCannotTakeOverASplicedConnection) {
  Netns& b = net_->add_host("b", "198.18.1.6/24");
  Netns& x = net_->add_host("x", "198.18.1.7/24");
  enroll(*app_);
  enroll(b, "--exclude-inbound-ports 9400");  // a direct connection, no sidecar in between
  enroll(x, "--exclude-inbound-ports 9400");
  const std::string kB = "198.18.1.6";
  // The real connection: app -> b, both ends declared splice-safe (as sidecars are).
  int lsn[2], cli[2];
  ASSERT_EQ(::pipe(lsn), 0);
  ASSERT_EQ(::pipe(cli), 0);
  Proc server = serve(install_->place(b, kProxyUid), [&] {
    int l = tcp_listen("0.0.0.0", 9400);
    declare_splice_safe(l);
    signal_ready();
    int c = ::accept(l, nullptr, nullptr);
    char go;
    (void)!::read(lsn[0], &go, 1);  // the attacker is in place
    write_all(c, "secret", 6);
    ::sleep(5);
    return 0;
  });
  std::string port_seen;
  Proc client(install_->place(*app_, kProxyUid), [&] {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    declare_splice_safe(fd);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(9400);
    inet_pton(AF_INET, kB.c_str(), &sa.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return 2;
    std::string me = local_addr(fd) + "\n";
    write_all(cli[1], me.data(), me.size());
    std::string got = read_all(fd, 3000);
    write_all(cli[1], got.data(), got.size());
    return 0;
  });
  char buf[64] = {};
  pollfd pf{cli[0], POLLIN, 0};
  ASSERT_EQ(::poll(&pf, 1, 5000), 1) << "the client did not connect";
  ASSERT_GT(::read(cli[0], buf, sizeof buf - 1), 0);
  std::string me(buf);
  me = me.substr(0, me.find('\n'));
  uint16_t port = static_cast<uint16_t>(std::stoi(me.substr(me.rfind(':') + 1)));
  // The attacker copies the tuple inside its own netns.
  x.ip("addr add " + kApp + "/32 dev lo");
  x.ip("addr add " + kB + "/32 dev lo");
  std::string stolen = run_in(install_->place(x, kProxyUid), [&](std::string& o) {
    int l = tcp_listen(kB, 9400);
    // Only the copy of the app's end asks to be spliced: it would take the app's key
    // while the real peer stays in the sockhash, so the peer's sends would reach it.
    int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    declare_splice_safe(c);
    int one = 1;
    ::setsockopt(c, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in from{}, to{};
    from.sin_family = to.sin_family = AF_INET;
    from.sin_port = htons(port);
    to.sin_port = htons(9400);
    inet_pton(AF_INET, kApp.c_str(), &from.sin_addr);
    inet_pton(AF_INET, kB.c_str(), &to.sin_addr);
    if (::bind(c, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
        ::connect(c, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0)
      c = -errno;
    if (c < 0) {
      o = "attacker connect " + std::to_string(c);
      (void)!::write(lsn[1], "g", 1);
      return;
    }
    int a = ::accept(l, nullptr, nullptr);
    (void)!::write(lsn[1], "g", 1);
    o = read_all(c, 1000) + read_all(a, 200);
  });
  EXPECT_EQ(stolen, "");
  std::string rest(buf + me.size() + 1);
  char more[64] = {};
  pf = {cli[0], POLLIN, 0};
  if (rest.size() < 6 && ::poll(&pf, 1, 5000) == 1) {
    ssize_t n = ::read(cli[0], more, sizeof more - 1);
    if (n > 0) rest += std::string(more, static_cast<size_t>(n));
  }
  EXPECT_EQ(rest, "secret");
  EXPECT_GE(install_->counter("sock_not_owner"), 1u);
  client.wait();
}

INSTANTIATE_TEST_SUITE_P(Modes, EbpfIntercept, ::testing::Values(Mode::ebpf),
                         [](const auto&) { return std::string("ebpf"); });

}  // namespace
}  // namespace sm::test
