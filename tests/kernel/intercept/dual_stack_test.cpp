// Interception of AF_INET6 sockets, in both modes: a v4-mapped destination is an IPv4
// connection and is treated exactly like one; a native IPv6 destination goes to the
// sidecar on [::1]; exemptions, SO_ORIGINAL_DST (v4 and v6 forms), getpeername and inbound
// steering hold for IPv6 as for IPv4. IPv6 addresses come from 2001:2::/48 (the IPv6
// benchmarking range, RFC 5180), IPv4 ones from 198.18.0.0/15.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

namespace sm::test {
namespace {

enum class Mode { ebpf, iptables };

constexpr uid_t kProxyUid = 1337;
constexpr uid_t kAppUid = 1000;
const std::string kApp = "198.18.6.2";
const std::string kSrv = "198.18.6.3";
const std::string kApp6 = "2001:2:0:6::2";
const std::string kSrv6 = "2001:2:0:6::3";

class DualStack : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    SM_REQUIRE_ROOT();
    install_ = std::make_unique<Install>();
    net_ = std::make_unique<TestNet>();
    app_ = &net_->add_host("app", kApp + "/24", kApp6 + "/64");
    srv_ = &net_->add_host("srv", kSrv + "/24", kSrv6 + "/64");
    for (uint16_t port : {9080, 9090})  // dual-stack servers: IPv4 and IPv6 clients
      servers_.push_back(
          serve(Place::in(*srv_), [port] { return serve_direct("::", port, "srv"); }));
  }
  bool ebpf() const { return GetParam() == Mode::ebpf; }
  void enroll(const std::string& flags = "") {
    if (ebpf())
      install_->enroll(*app_, flags);
    else
      install_->loader_ok("enroll --mode iptables --netns " + app_->path() + " " + flags);
  }
  // An IPv6-capable sidecar: dual-stack listeners on both ports, as the proxy user.
  void start_sidecar(Netns& ns) {
    for (uint16_t port : {15001, 15006})
      servers_.push_back(
          serve(install_->place(ns, kProxyUid), [port] { return serve_origdst_dual(port); }));
  }
  Place app(std::optional<uid_t> uid = kAppUid) const { return install_->place(*app_, uid); }
  std::string from_app(const std::string& addr, uint16_t port) {
    return connect_line(app(), addr, port);
  }

  std::unique_ptr<Install> install_;
  std::unique_ptr<TestNet> net_;
  Netns* app_ = nullptr;
  Netns* srv_ = nullptr;
  std::vector<Proc> servers_;
};

bool starts(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

TEST_P(DualStack, AV4MappedDestinationIsAnIpv4Connection) {
  enroll();
  start_sidecar(*app_);
  // AF_INET6 socket, IPv4 peer: the sidecar's SOL_IP answer is the IPv4 original, as
  // conntrack gives it for this socket family; SOL_IPV6 has none.
  std::string line = from_app("::ffff:" + kSrv, 9080);
  EXPECT_TRUE(starts(line, "ORIG " + kSrv + ":9080 ORIG6 ERR ")) << line;
  EXPECT_NE(line.find("LOCAL [::ffff:127.0.0.1]:15001"), std::string::npos) << line;
  std::string peer = run_in(app(), [&](std::string& out) {
    int fd = tcp_connect("::ffff:" + kSrv, 9090);
    out = fd < 0 ? "ERR" : peer_addr(fd);
  });
  EXPECT_EQ(peer, "[::ffff:" + kSrv + "]:9090");
}

TEST_P(DualStack, ANativeIpv6DestinationGoesToTheSidecarOnIpv6Loopback) {
  enroll();
  start_sidecar(*app_);
  std::string line = from_app(kSrv6, 9080);
  EXPECT_TRUE(starts(line, "ORIG ERR ")) << line;
  // (The peer differs by mode as for IPv4: REDIRECT keeps the pod's source address.)
  EXPECT_NE(line.find(" ORIG6 [" + kSrv6 + "]:9080 LOCAL [::1]:15001 PEER "), std::string::npos)
      << line;
  // The app sees the peer it dialed.
  std::string peer = run_in(app(), [&](std::string& out) {
    int fd = tcp_connect(kSrv6, 9090);
    out = fd < 0 ? "ERR" : peer_addr(fd);
  });
  EXPECT_EQ(peer, "[" + kSrv6 + "]:9090");
  if (ebpf()) {
    EXPECT_GE(install_->counter("origdst_v6"), 2u);
  }
}

TEST_P(DualStack, ExemptionsHoldForIpv6) {
  enroll("--exclude-outbound-ports 9090 --exclude-cidrs 2001:2:0:7::/64");
  start_sidecar(*app_);
  servers_.push_back(serve(Place::in(*app_), [] { return serve_direct("::", 9080, "app"); }));
  EXPECT_EQ(from_app("::1", 9080), "DIRECT app");                      // IPv6 loopback stays local
  EXPECT_EQ(connect_line(app(kProxyUid), kSrv6, 9080), "DIRECT srv");  // the proxy itself
  EXPECT_EQ(from_app(kSrv6, 9090), "DIRECT srv");                      // excluded port
  EXPECT_TRUE(starts(from_app(kSrv6, 9080), "ORIG ERR "));
  // An excluded IPv6 CIDR: nothing listens there, so the connect fails instead of being
  // answered by the sidecar.
  EXPECT_TRUE(starts(from_app("2001:2:0:7::9", 80), "ERR ")) << from_app("2001:2:0:7::9", 80);
  EXPECT_TRUE(starts(from_app("2001:2:0:8::9", 80), "ORIG ERR "));
}

TEST_P(DualStack, IncludeCidrsOfOneFamilyLeaveTheOtherAlone) {
  enroll("--include-cidrs 2001:2:0:6::/64");
  start_sidecar(*app_);
  EXPECT_TRUE(starts(from_app(kSrv6, 9080), "ORIG ERR "));
  EXPECT_EQ(from_app(kSrv, 9080), "DIRECT srv");
  EXPECT_EQ(from_app("::ffff:" + kSrv, 9080), "DIRECT srv");
}

TEST_P(DualStack, InboundIpv6IsSteeredToTheSidecar) {
  enroll();
  start_sidecar(*app_);
  servers_.push_back(serve(Place::in(*app_), [] { return serve_direct("::", 9080, "app"); }));
  std::string line = connect_line(Place::in(*srv_, kAppUid), kApp6, 9080);
  if (ebpf()) {  // sk_lookup keeps the destination: getsockname() is the original
    EXPECT_NE(line.find("LOCAL [" + kApp6 + "]:9080 PEER [" + kSrv6 + "]:"), std::string::npos)
        << line;
  } else {  // REDIRECT rewrote it: the original comes from conntrack
    EXPECT_NE(line.find("ORIG6 [" + kApp6 + "]:9080 "), std::string::npos) << line;
  }
  // IPv4 clients reach the same dual-stack listener.
  EXPECT_TRUE(starts(connect_line(Place::in(*srv_, kAppUid), kApp, 9080), "ORIG "));
}

TEST_P(DualStack, SidecarDownFailsClosedForIpv6) {
  enroll();
  EXPECT_EQ(from_app(kSrv6, 9080), "ERR ECONNREFUSED");
}

// --fail-open looks for the listener where the rewritten connect would go: [::1] for a
// native IPv6 destination, 127.0.0.1 for a v4-mapped one (a dual-stack sidecar is both).
TEST_P(DualStack, FailOpenChecksTheSidecarOfEachFamily) {
  if (!ebpf()) GTEST_SKIP() << "--fail-open is eBPF only (intercept_test checks the refusal)";
  enroll("--fail-open");
  EXPECT_EQ(from_app(kSrv6, 9080), "DIRECT srv");
  EXPECT_EQ(from_app("::ffff:" + kSrv, 9080), "DIRECT srv");
  EXPECT_EQ(install_->counter("fail_open"), 2u);
  start_sidecar(*app_);
  std::string v6 = from_app(kSrv6, 9080);
  EXPECT_NE(v6.find(" ORIG6 [" + kSrv6 + "]:9080 LOCAL [::1]:15001 "), std::string::npos) << v6;
  std::string v4 = from_app("::ffff:" + kSrv, 9080);
  EXPECT_TRUE(starts(v4, "ORIG " + kSrv + ":9080 ")) << v4;
  EXPECT_EQ(install_->counter("fail_open"), 2u);
}

INSTANTIATE_TEST_SUITE_P(Modes, DualStack, ::testing::Values(Mode::ebpf, Mode::iptables),
                         [](const auto& p) {
                           return p.param == Mode::ebpf ? std::string("ebpf")
                                                        : std::string("iptables");
                         });

}  // namespace
}  // namespace sm::test
