// Parsing of user-typed ports, port lists, addresses and CIDRs (common/net.cpp).
#include "sockmesh/net.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

namespace sm {
namespace {

TEST(Net, PortsAreStrict) {
  EXPECT_EQ(*parse_port("9080", "--p"), 9080);
  EXPECT_EQ(*parse_port(" 1 ", "--p"), 1);
  EXPECT_EQ(*parse_port("65535", "--p"), 65535);
  for (const char* bad : {"0", "65536", "99999999999", "-1", "80a", "", "0x50", "8 0"}) {
    auto r = parse_port(bad, "--p");
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().message().rfind("--p: '", 0), 0u) << r.error().message();
  }
}

TEST(Net, PortListsAreSortedAndDeduplicated) {
  auto r = parse_port_list("9080, 15020,9080,1", "--x");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (std::vector<uint16_t>{1, 9080, 15020}));
  EXPECT_TRUE(parse_port_list("", "--x")->empty());
  auto bad = parse_port_list("80,,81", "--x");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "--x: '': port must be 1..65535");
}

TEST(Net, CidrsClearHostBitsAndAcceptBareAddresses) {
  auto c = parse_cidr("198.18.3.7/15", "--c");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->str(), "198.18.0.0/15");
  EXPECT_EQ(parse_cidr("198.18.0.12", "--c")->str(), "198.18.0.12/32");
  EXPECT_EQ(parse_cidr("0.0.0.0/0", "--c")->prefix, 0);
  EXPECT_EQ(parse_cidr("2001:2:0:ff::7/60", "--c")->str(), "2001:2:0:f0::/60");
  EXPECT_EQ(parse_cidr("::1", "--c")->str(), "::1/128");
  // A v4-mapped address is IPv4: the kernel shows IPv4 peers of AF_INET6 sockets that way.
  EXPECT_EQ(parse_cidr("::ffff:198.18.0.9", "--c")->str(), "198.18.0.9/32");
  for (const char* bad : {"198.18.0.0/33", "198.18.0/16", "198.18.0.0/", "300.1.1.1", "abc",
                          "198.18.0.0/1x", "::1/129", "01.2.3.4", "*", "2001:2::/"}) {
    auto r = parse_cidr(bad, "--c");
    EXPECT_FALSE(r) << bad;
  }
}

TEST(Net, CidrContainment) {
  auto c = *parse_cidr("198.18.0.0/15", "--c");
  auto ip = [](const char* t) { return *parse_ip(t, "ip"); };
  EXPECT_TRUE(c.contains(ip("198.19.255.255")));
  EXPECT_FALSE(c.contains(ip("198.20.0.0")));
  EXPECT_TRUE(parse_cidr("0.0.0.0/0", "--c")->contains(ip("198.20.0.0")));
  // Families never match each other, not even ::/0 and an IPv4 address.
  EXPECT_FALSE(parse_cidr("::/0", "--c")->contains(ip("198.20.0.0")));
  EXPECT_FALSE(parse_cidr("0.0.0.0/0", "--c")->contains(ip("2001:2::1")));
  auto v6 = *parse_cidr("2001:2::/48", "--c");
  EXPECT_TRUE(v6.contains(ip("2001:2:0:ffff::1")));
  EXPECT_FALSE(v6.contains(ip("2001:3::1")));
}

TEST(Net, AddressesOfBothFamilies) {
  auto a = *parse_ip("198.18.0.7", "a");
  EXPECT_TRUE(a.is_v4());
  EXPECT_EQ(a.family(), AF_INET);
  EXPECT_EQ(a.str(), "198.18.0.7");
  EXPECT_EQ(a, *parse_ip("::ffff:198.18.0.7", "a"));
  auto b = *parse_ip("2001:2::7", "a");
  EXPECT_FALSE(b.is_v4());
  EXPECT_EQ(b.str(), "2001:2::7");
  EXPECT_TRUE(parse_ip("127.0.0.9", "a")->is_loopback());
  EXPECT_TRUE(parse_ip("::1", "a")->is_loopback());
  EXPECT_FALSE(parse_ip("::2", "a")->is_loopback());
  EXPECT_TRUE(parse_ip("0.0.0.0", "a")->is_unspecified());
  EXPECT_TRUE(parse_ip("::", "a")->is_unspecified());
  EXPECT_EQ(endpoint_str(b, 80), "[2001:2::7]:80");
  EXPECT_EQ(endpoint_str(a, 80), "198.18.0.7:80");
  auto r = parse_ip("2001:2::g", "--x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "--x: '2001:2::g': not an IP address");
}

TEST(Net, SockaddrsRoundTripInBothFamilies) {
  for (const char* t : {"198.18.0.7", "2001:2::7"}) {
    IpAddr in = *parse_ip(t, "a"), out;
    uint16_t port = 0;
    SockAddr sa = make_sockaddr(in, 9080);
    ASSERT_TRUE(from_sockaddr(sa.get(), sa.len, &out, &port));
    EXPECT_EQ(out, in);
    EXPECT_EQ(port, 9080);
    EXPECT_EQ(sa.get()->sa_family, in.family());
  }
  // For a dual-stack socket an IPv4 address is given v4-mapped.
  SockAddr m = make_sockaddr(*parse_ip("198.18.0.7", "a"), 1, AF_INET6);
  EXPECT_EQ(m.get()->sa_family, AF_INET6);
  EXPECT_EQ(m.len, sizeof(sockaddr_in6));
}

TEST(Net, CidrListsKeepOrderAndDropDuplicates) {
  auto r =
      parse_cidr_list("198.19.0.0/16, 198.18.0.1,198.19.0.0/16,2001:2::/48", "--exclude-cidrs");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].str(), "198.19.0.0/16");
  EXPECT_EQ((*r)[1].str(), "198.18.0.1/32");
  EXPECT_EQ((*r)[2].str(), "2001:2::/48");
  // "*" is everything, in both families.
  auto all = parse_cidr_list("*", "--include-cidrs");
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].str(), "0.0.0.0/0");
  EXPECT_EQ((*all)[1].str(), "::/0");
  auto bad = parse_cidr_list("198.19.0.0/16,nope", "--exclude-cidrs");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "--exclude-cidrs: 'nope': not an IP address or CIDR");
}

TEST(Net, Formatting) {
  EXPECT_EQ(endpoint_str(*parse_ipv4("198.18.0.12", "a"), 9080), "198.18.0.12:9080");
  auto sa = make_sockaddr(*parse_ipv4("198.18.0.12", "a"), 9080);
  EXPECT_EQ(ntohs(sa.sin_port), 9080);
}

}  // namespace
}  // namespace sm
