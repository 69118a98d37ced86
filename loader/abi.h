// The C++ view of bpf/sockmesh_abi.h. It is included, never mirrored; the asserts below
// pin the layout the BPF programs were compiled against (a mismatch fails the build).
#pragma once

#include <cstddef>
#include <type_traits>

extern "C" {
#include "sockmesh_abi.h"
}

namespace sm::abi {

template <typename T>
constexpr bool plain = std::is_trivially_copyable_v<T>&& std::is_standard_layout_v<T>;

static_assert(plain<sm_workload> && sizeof(sm_workload) == 24);
static_assert(offsetof(sm_workload, outbound_port) == 0 &&
              offsetof(sm_workload, inbound_port) == 2);
static_assert(offsetof(sm_workload, proxy_uid) == 4 && offsetof(sm_workload, proxy_gid) == 8);
static_assert(offsetof(sm_workload, flags) == 12 && offsetof(sm_workload, netns_ino) == 16);

static_assert(plain<sm_port_key> && sizeof(sm_port_key) == 16);
static_assert(offsetof(sm_port_key, port) == 8 && offsetof(sm_port_key, direction) == 10);

static_assert(plain<sm_addr> && sizeof(sm_addr) == 16);

static_assert(plain<sm_cidr_key> && sizeof(sm_cidr_key) == 32);
static_assert(offsetof(sm_cidr_key, kind) == 4 && offsetof(sm_cidr_key, netns_cookie) == 8);
static_assert(offsetof(sm_cidr_key, addr) == 16);
// The fixed part of the LPM key (kind + cookie) is exactly SM_CIDR_FIXED_BITS long.
static_assert((offsetof(sm_cidr_key, addr) - offsetof(sm_cidr_key, kind)) * 8 ==
              SM_CIDR_FIXED_BITS);

static_assert(plain<sm_tuple> && sizeof(sm_tuple) == 48);
static_assert(offsetof(sm_tuple, local) == 8 && offsetof(sm_tuple, remote) == 24);
static_assert(offsetof(sm_tuple, local_port) == 40 && offsetof(sm_tuple, remote_port) == 42);

static_assert(plain<sm_origdst> && sizeof(sm_origdst) == 20);
static_assert(plain<sm_sk_state> && sizeof(sm_sk_state) == 24);
static_assert(plain<sm_listen_key> && sizeof(sm_listen_key) == 16);
static_assert(offsetof(sm_listen_key, family) == 8);
static_assert(plain<sm_stats> && sizeof(sm_stats) == 16 * 8);
static_assert(offsetof(sm_stats, fail_open) == 15 * 8);  // added last: sm_stats_v3
// Workload flags are bits of one field: distinct, and what the BPF side tests.
static_assert((SM_WL_INCLUDE_CIDRS | SM_WL_SPLICE_APP | SM_WL_FAIL_OPEN) == 0x7);
static_assert(plain<sm_config> && sizeof(sm_config) == 8);

}  // namespace sm::abi
