// original_dst.h: addresses of both families as the kernel answers them, the inbound target
// rule, and what an accepted socket reports, on real loopback sockets (no root needed).
#include "proxy/original_dst.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "proxy/sockets.h"

namespace sm::proxy {
namespace {

Endpoint ep(const char* ip, uint16_t port) {
  return Endpoint{*parse_ip(ip, "test"), port};
}

TEST(OriginalDst, EndpointFromEitherSockaddrFamily) {
  sockaddr_storage ss{};
  sockaddr_in v4 = make_sockaddr(*parse_ipv4("198.18.0.7", "test"), 9080);
  std::memcpy(&ss, &v4, sizeof v4);
  EXPECT_EQ(endpoint_from(ss, sizeof v4), ep("198.18.0.7", 9080));

  SockAddr v6 = make_sockaddr(*parse_ip("2001:2::7", "test"), 443);
  std::memcpy(&ss, &v6.ss, sizeof ss);
  auto e6 = endpoint_from(ss, v6.len);
  ASSERT_TRUE(e6);
  EXPECT_EQ(e6->addr.family(), AF_INET6);
  EXPECT_EQ(e6->str(), "[2001:2::7]:443");

  // A v4-mapped sockaddr_in6 (what IP6T_SO_ORIGINAL_DST or getsockname on a dual-stack
  // socket answers for an IPv4 peer) is the same endpoint as its IPv4 form.
  SockAddr mapped = make_sockaddr(*parse_ip("198.18.0.7", "test"), 9080, AF_INET6);
  ASSERT_EQ(mapped.len, sizeof(sockaddr_in6));
  std::memcpy(&ss, &mapped.ss, sizeof ss);
  EXPECT_EQ(endpoint_from(ss, mapped.len), ep("198.18.0.7", 9080));
  EXPECT_EQ(endpoint_from(ss, mapped.len)->str(), "198.18.0.7:9080");

  sockaddr_storage unix_sa{};
  unix_sa.ss_family = AF_UNIX;
  EXPECT_EQ(endpoint_from(unix_sa, sizeof unix_sa), std::nullopt);
  // A truncated answer is not an address.
  std::memcpy(&ss, &v6.ss, sizeof ss);
  EXPECT_EQ(endpoint_from(ss, sizeof(sockaddr_in)), std::nullopt);
}

TEST(OriginalDst, InboundTargetKeepsIpv4AndTakesLoopbackForIpv6) {
  InboundTarget v4 = inbound_target(ep("198.18.0.7", 9080));
  EXPECT_EQ(v4.target, ep("198.18.0.7", 9080));
  ASSERT_TRUE(v4.source);
  EXPECT_EQ(v4.source->str(), "127.0.0.6");

  InboundTarget v6 = inbound_target(ep("2001:2::7", 9080));
  EXPECT_EQ(v6.target, ep("::1", 9080));
  EXPECT_FALSE(v6.source);
}

// An accepted connection on the dual-stack listener, from a client of `family`.
struct Accepted {
  UniqueFd client, server;
};
Accepted connect_to(int listen_fd, int family) {
  auto local = local_endpoint(listen_fd);
  EXPECT_TRUE(local);
  Endpoint to{family == AF_INET ? IpAddr::v4(htonl(INADDR_LOOPBACK)) : IpAddr::v6(in6addr_loopback),
              local ? local->port : uint16_t{0}};
  Accepted a;
  a.client.reset(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  SockAddr sa = make_sockaddr(to.addr, to.port);
  EXPECT_EQ(::connect(a.client.get(), sa.get(), sa.len), 0) << std::strerror(errno);
  a.server.reset(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_TRUE(a.server) << std::strerror(errno);
  return a;
}

TEST(OriginalDst, DualStackListenerAcceptsBothFamiliesAndReportsEach) {
  auto l = open_listener(0, "test");
  ASSERT_TRUE(l) << l.error().message();
  int domain = 0;
  socklen_t len = sizeof domain;
  ASSERT_EQ(::getsockopt(l->get(), SOL_SOCKET, SO_DOMAIN, &domain, &len), 0);
  EXPECT_EQ(domain, AF_INET6) << "this host has IPv6: the listener must be dual-stack";
  uint16_t port = local_endpoint(l->get())->port;

  Accepted v4 = connect_to(l->get(), AF_INET);
  ASSERT_TRUE(v4.server);
  // Not steered, not NATed: the inbound rule falls back to (or conntrack answers) the
  // local address, which is what the client dialed.
  EXPECT_EQ(local_endpoint(v4.server.get()), ep("127.0.0.1", port));
  EXPECT_EQ(inbound_destination(v4.server.get()), ep("127.0.0.1", port));

  Accepted v6 = connect_to(l->get(), AF_INET6);
  ASSERT_TRUE(v6.server);
  EXPECT_EQ(local_endpoint(v6.server.get()), ep("::1", port));
  EXPECT_EQ(inbound_destination(v6.server.get()), ep("::1", port));
}

TEST(OriginalDst, UpstreamSocketsTakeTheTargetsFamilyAndTheInboundSource) {
  for (const char* ip : {"198.18.0.7", "2001:2::7"}) {
    auto s = open_upstream(ep(ip, 80), std::nullopt);
    ASSERT_TRUE(s) << s.error().message();
    int domain = 0;
    socklen_t len = sizeof domain;
    ASSERT_EQ(::getsockopt(s->get(), SOL_SOCKET, SO_DOMAIN, &domain, &len), 0);
    EXPECT_EQ(domain, parse_ip(ip, "test")->family()) << ip;
    EXPECT_TRUE(::fcntl(s->get(), F_GETFL) & O_NONBLOCK) << ip;
  }
  auto s = open_upstream(ep("127.0.0.1", 80), inbound_target(ep("198.18.0.7", 80)).source);
  ASSERT_TRUE(s) << s.error().message();
  auto bound = local_endpoint(s->get());
  ASSERT_TRUE(bound);
  EXPECT_EQ(bound->addr.str(), "127.0.0.6");
}

}  // namespace
}  // namespace sm::proxy
