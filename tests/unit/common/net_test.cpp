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
  EXPECT_EQ(parse_cidr("*", "--c")->str(), "0.0.0.0/0");
  EXPECT_EQ(parse_cidr("0.0.0.0/0", "--c")->prefix, 0);
  for (const char* bad : {"198.18.0.0/33", "198.18.0/16", "198.18.0.0/", "300.1.1.1", "abc",
                          "198.18.0.0/1x", "::1/128", "01.2.3.4"}) {
    auto r = parse_cidr(bad, "--c");
    EXPECT_FALSE(r) << bad;
  }
}

TEST(Net, CidrContainment) {
  auto c = *parse_cidr("198.18.0.0/15", "--c");
  uint32_t in, out;
  inet_pton(AF_INET, "198.19.255.255", &in);
  inet_pton(AF_INET, "198.20.0.0", &out);
  EXPECT_TRUE(c.contains(in));
  EXPECT_FALSE(c.contains(out));
  EXPECT_TRUE(parse_cidr("*", "--c")->contains(out));
}

TEST(Net, CidrListsKeepOrderAndDropDuplicates) {
  auto r = parse_cidr_list("198.19.0.0/16, 198.18.0.1,198.19.0.0/16", "--exclude-cidrs");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].str(), "198.19.0.0/16");
  EXPECT_EQ((*r)[1].str(), "198.18.0.1/32");
  auto bad = parse_cidr_list("198.19.0.0/16,nope", "--exclude-cidrs");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "--exclude-cidrs: 'nope': not an IPv4 address or CIDR");
}

TEST(Net, Formatting) {
  EXPECT_EQ(endpoint_str(*parse_ipv4("198.18.0.12", "a"), 9080), "198.18.0.12:9080");
  auto sa = make_sockaddr(*parse_ipv4("198.18.0.12", "a"), 9080);
  EXPECT_EQ(ntohs(sa.sin_port), 9080);
}

}  // namespace
}  // namespace sm
