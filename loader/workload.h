// A workload's interception settings (the enroll flags) and their encoding into the BPF
// maps' keys and values. Pure logic: unit tested without a kernel.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "abi.h"
#include "sockmesh/net.h"

namespace sm {

struct WorkloadSettings {
  uint16_t outbound_port = 15001;
  uint16_t inbound_port = 15006;
  uint32_t proxy_uid = 1337;
  std::optional<uint32_t> proxy_gid;  // defaults to proxy_uid, as Istio's proxy_init does
  std::vector<uint16_t> exclude_outbound_ports;
  std::vector<uint16_t> exclude_inbound_ports;
  std::vector<IpCidr> exclude_cidrs;
  std::vector<IpCidr> include_cidrs;  // empty or containing a /0: everything (both families)
  bool splice_app = false;            // --splice-app: the app's own sockets may be spliced
  bool fail_open = false;  // --fail-open: connect direct while no sidecar listens (ebpf only)

  uint32_t gid() const { return proxy_gid.value_or(proxy_uid); }
  // Include CIDRs that actually restrict something (a /0 of either family means "all").
  bool restricts_includes() const;
  Status validate() const;
};

struct EncodedWorkload {
  sm_workload value{};
  std::vector<sm_port_key> ports;
  std::vector<sm_cidr_key> cidrs;
};

EncodedWorkload encode_workload(uint64_t netns_cookie, uint64_t netns_inode,
                                const WorkloadSettings& s);
sm_addr to_sm_addr(const IpAddr& a);
IpAddr from_sm_addr(const sm_addr& a);

// The reverse, for status: what the maps say about one workload.
WorkloadSettings decode_workload(uint64_t netns_cookie, const sm_workload& value,
                                 const std::vector<sm_port_key>& ports,
                                 const std::vector<sm_cidr_key>& cidrs);

sm_port_key make_port_key(uint64_t netns_cookie, uint16_t port, uint8_t direction);
sm_cidr_key make_cidr_key(uint64_t netns_cookie, uint32_t kind, const IpCidr& c);

}  // namespace sm
