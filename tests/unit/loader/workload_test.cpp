// Encoding of enrollment settings into the BPF maps' keys and values (loader/workload.cpp).
#include "workload.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstring>

namespace sm {
namespace {

WorkloadSettings sample() {
  WorkloadSettings s;
  s.proxy_uid = 1337;
  s.exclude_outbound_ports = {3306};
  s.exclude_inbound_ports = {15020, 15090};
  s.exclude_cidrs = {*parse_cidr("198.19.0.0/16", "x")};
  s.include_cidrs = {*parse_cidr("198.18.0.0/15", "x")};
  return s;
}

TEST(Workload, EncodesValueAndRuleKeys) {
  EncodedWorkload e = encode_workload(4242, 77, sample());
  EXPECT_EQ(e.value.outbound_port, 15001);
  EXPECT_EQ(e.value.inbound_port, 15006);
  EXPECT_EQ(e.value.proxy_uid, 1337u);
  EXPECT_EQ(e.value.proxy_gid, 1337u);  // defaults to the uid
  EXPECT_EQ(e.value.flags, static_cast<uint32_t>(SM_WL_INCLUDE_CIDRS));
  EXPECT_EQ(e.value.netns_ino, 77u);
  ASSERT_EQ(e.ports.size(), 3u);
  EXPECT_EQ(e.ports[0].direction, SM_DIR_OUTBOUND);
  EXPECT_EQ(e.ports[0].port, 3306);
  EXPECT_EQ(e.ports[1].direction, SM_DIR_INBOUND);
  ASSERT_EQ(e.cidrs.size(), 2u);
  EXPECT_EQ(e.cidrs[0].kind, static_cast<uint32_t>(SM_CIDR_EXCLUDE));
  // IPv4 prefixes count in the 128-bit v4-mapped form: 96 + 16.
  EXPECT_EQ(e.cidrs[0].prefixlen, SM_CIDR_FIXED_BITS + 96u + 16u);
  EXPECT_EQ(e.cidrs[0].addr.be32[2], htonl(0xffff));
  EXPECT_EQ(e.cidrs[0].netns_cookie, 4242u);
  EXPECT_EQ(e.cidrs[1].kind, static_cast<uint32_t>(SM_CIDR_INCLUDE));
}

TEST(Workload, KeyPaddingIsZero) {
  // Padding bytes are part of a BPF hash key: they must be zero on both sides.
  sm_port_key k = make_port_key(1, 2, SM_DIR_INBOUND);
  for (unsigned char b : k.pad) EXPECT_EQ(b, 0);
  sm_cidr_key c = make_cidr_key(1, SM_CIDR_EXCLUDE, *parse_cidr("198.18.0.0/15", "x"));
  EXPECT_EQ(c.addr.be32[0] | c.addr.be32[1], 0u);
}

TEST(Workload, Ipv6CidrsAndSpliceAppAreEncodedAndDecoded) {
  WorkloadSettings s;
  s.exclude_cidrs = {*parse_cidr("2001:2:0:7::/64", "x"), *parse_cidr("198.19.0.0/16", "x")};
  s.include_cidrs = {*parse_cidr("2001:2::/48", "x")};
  s.splice_app = true;
  EncodedWorkload e = encode_workload(5, 1, s);
  EXPECT_EQ(e.value.flags, static_cast<uint32_t>(SM_WL_INCLUDE_CIDRS | SM_WL_SPLICE_APP));
  ASSERT_EQ(e.cidrs.size(), 3u);
  EXPECT_EQ(e.cidrs[0].prefixlen, SM_CIDR_FIXED_BITS + 64u);
  EXPECT_EQ(ntohl(e.cidrs[0].addr.be32[0]), 0x20010002u);
  WorkloadSettings d = decode_workload(5, e.value, e.ports, e.cidrs);
  EXPECT_TRUE(d.splice_app);
  EXPECT_FALSE(d.fail_open);
  s.fail_open = true;
  EXPECT_EQ(encode_workload(5, 1, s).value.flags,
            static_cast<uint32_t>(SM_WL_INCLUDE_CIDRS | SM_WL_SPLICE_APP | SM_WL_FAIL_OPEN));
  EXPECT_TRUE(decode_workload(5, encode_workload(5, 1, s).value, {}, {}).fail_open);
  ASSERT_EQ(d.exclude_cidrs.size(), 2u);
  EXPECT_EQ(d.exclude_cidrs[0].str(), "2001:2:0:7::/64");
  EXPECT_EQ(d.exclude_cidrs[1].str(), "198.19.0.0/16");
  ASSERT_EQ(d.include_cidrs.size(), 1u);
  EXPECT_EQ(d.include_cidrs[0].str(), "2001:2::/48");
}

TEST(Workload, IncludeEverythingMeansNoIncludeFilter) {
  WorkloadSettings s;
  s.include_cidrs = {*parse_cidr("0.0.0.0/0", "x"), *parse_cidr("198.18.0.0/15", "x")};
  EncodedWorkload e = encode_workload(1, 1, s);
  EXPECT_EQ(e.value.flags, 0u);
  EXPECT_TRUE(e.cidrs.empty());
}

TEST(Workload, DecodeIsTheInverseForOneCookie) {
  WorkloadSettings s = sample();
  s.proxy_gid = 2000;
  EncodedWorkload e = encode_workload(9, 1, s);
  EncodedWorkload other = encode_workload(10, 1, WorkloadSettings{});
  auto ports = e.ports;
  ports.insert(ports.end(), other.ports.begin(), other.ports.end());
  WorkloadSettings d = decode_workload(9, e.value, ports, e.cidrs);
  EXPECT_EQ(d.outbound_port, s.outbound_port);
  EXPECT_EQ(d.gid(), 2000u);
  EXPECT_EQ(d.exclude_outbound_ports, s.exclude_outbound_ports);
  EXPECT_EQ(d.exclude_inbound_ports, s.exclude_inbound_ports);
  EXPECT_EQ(d.exclude_cidrs, s.exclude_cidrs);
  EXPECT_EQ(d.include_cidrs, s.include_cidrs);
}

}  // namespace
}  // namespace sm
