// Encoding of WorkloadSettings into sockmesh_abi.h structs; see workload.h.
#include "workload.h"

#include <algorithm>
#include <cstring>

namespace sm {

bool WorkloadSettings::restricts_includes() const {
  if (include_cidrs.empty()) return false;
  return std::none_of(include_cidrs.begin(), include_cidrs.end(),
                      [](const IpCidr& c) { return c.prefix == 0; });
}

Status WorkloadSettings::validate() const {
  if (outbound_port == inbound_port)
    return plain_error("--outbound-port and --inbound-port must differ (both " +
                       std::to_string(outbound_port) + ")");
  return {};
}

sm_port_key make_port_key(uint64_t netns_cookie, uint16_t port, uint8_t direction) {
  sm_port_key k;
  std::memset(&k, 0, sizeof k);  // padding is part of the key
  k.netns_cookie = netns_cookie;
  k.port = port;
  k.direction = direction;
  return k;
}

sm_addr to_sm_addr(const IpAddr& a) {
  sm_addr out;
  std::memcpy(&out, a.bytes.data(), sizeof out);
  return out;
}

IpAddr from_sm_addr(const sm_addr& a) {
  IpAddr out;
  std::memcpy(out.bytes.data(), &a, sizeof a);
  return out;
}

sm_cidr_key make_cidr_key(uint64_t netns_cookie, uint32_t kind, const IpCidr& c) {
  sm_cidr_key k;
  std::memset(&k, 0, sizeof k);
  k.prefixlen = SM_CIDR_FIXED_BITS + c.mapped_prefix();
  k.kind = kind;
  k.netns_cookie = netns_cookie;
  k.addr = to_sm_addr(c.addr);
  return k;
}

EncodedWorkload encode_workload(uint64_t netns_cookie, uint64_t netns_inode,
                                const WorkloadSettings& s) {
  EncodedWorkload e;
  e.value.outbound_port = s.outbound_port;
  e.value.inbound_port = s.inbound_port;
  e.value.proxy_uid = s.proxy_uid;
  e.value.proxy_gid = s.gid();
  e.value.flags = (s.restricts_includes() ? SM_WL_INCLUDE_CIDRS : 0) |
                  (s.splice_app ? SM_WL_SPLICE_APP : 0) | (s.fail_open ? SM_WL_FAIL_OPEN : 0);
  e.value.netns_ino = netns_inode;
  for (uint16_t p : s.exclude_outbound_ports)
    e.ports.push_back(make_port_key(netns_cookie, p, SM_DIR_OUTBOUND));
  for (uint16_t p : s.exclude_inbound_ports)
    e.ports.push_back(make_port_key(netns_cookie, p, SM_DIR_INBOUND));
  for (const IpCidr& c : s.exclude_cidrs)
    e.cidrs.push_back(make_cidr_key(netns_cookie, SM_CIDR_EXCLUDE, c));
  if (s.restricts_includes())
    for (const IpCidr& c : s.include_cidrs)
      e.cidrs.push_back(make_cidr_key(netns_cookie, SM_CIDR_INCLUDE, c));
  return e;
}

WorkloadSettings decode_workload(uint64_t netns_cookie, const sm_workload& value,
                                 const std::vector<sm_port_key>& ports,
                                 const std::vector<sm_cidr_key>& cidrs) {
  WorkloadSettings s;
  s.outbound_port = value.outbound_port;
  s.inbound_port = value.inbound_port;
  s.proxy_uid = value.proxy_uid;
  s.proxy_gid = value.proxy_gid;
  s.splice_app = (value.flags & SM_WL_SPLICE_APP) != 0;
  s.fail_open = (value.flags & SM_WL_FAIL_OPEN) != 0;
  for (const sm_port_key& k : ports) {
    if (k.netns_cookie != netns_cookie) continue;
    (k.direction == SM_DIR_OUTBOUND ? s.exclude_outbound_ports : s.exclude_inbound_ports)
        .push_back(k.port);
  }
  for (const sm_cidr_key& k : cidrs) {
    if (k.netns_cookie != netns_cookie) continue;
    IpCidr c{from_sm_addr(k.addr), static_cast<uint8_t>(k.prefixlen - SM_CIDR_FIXED_BITS)};
    if (c.is_v4()) c.prefix = static_cast<uint8_t>(c.prefix - 96);
    (k.kind == SM_CIDR_EXCLUDE ? s.exclude_cidrs : s.include_cidrs).push_back(c);
  }
  std::sort(s.exclude_outbound_ports.begin(), s.exclude_outbound_ports.end());
  std::sort(s.exclude_inbound_ports.begin(), s.exclude_inbound_ports.end());
  return s;
}

}  // namespace sm
