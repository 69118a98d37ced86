// Interception behaviour, proven with real connects in sm-* namespaces: the eBPF mode and
// the iptables baseline (Istio's proxy_init rules) must behave the same way, so every
// behavioural test runs in both modes. eBPF-only properties (map hygiene, install
// lifecycle) are at the end.
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

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
  for (const char* hook :
       {"cgroup_inet4_connect ", "cgroup_inet6_connect ", "cgroup_getsockopt ",
        "cgroup_setsockopt ", "cgroup_inet4_getpeername ", "cgroup_inet6_getpeername ",
        "cgroup_sock_ops "}) {
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

INSTANTIATE_TEST_SUITE_P(Modes, EbpfIntercept, ::testing::Values(Mode::ebpf),
                         [](const auto&) { return std::string("ebpf"); });

}  // namespace
}  // namespace sm::test
