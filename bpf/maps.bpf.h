/* Every map sockmesh uses, defined once. All are pinned by name under <pin-dir>/maps,
 * so the cgroup programs and every per-netns sk_lookup instance share them, and an
 * upgrade reuses them. Key/value types come from sockmesh_abi.h (BTF shows the fields).
 */
#ifndef SM_MAPS_BPF_H
#define SM_MAPS_BPF_H

#include "sockmesh_abi.h"

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SM_MAX_WORKLOADS);
  __type(key, __u64); /* netns cookie */
  __type(value, struct sm_workload);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} sm_netns_v1 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SM_MAX_PORT_RULES);
  __type(key, struct sm_port_key);
  __type(value, __u8);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} sm_port_v1 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, SM_MAX_CIDR_RULES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct sm_cidr_key);
  __type(value, __u8);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} sm_cidr_v2 SEC(".maps");

/* Which netns owns each pod address (written by enroll): only the owner may insert a
 * splice key with that address as its local address. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SM_MAX_ADDRS);
  __type(key, struct sm_addr);
  __type(value, __u64); /* netns cookie */
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} sm_addr_v1 SEC(".maps");

/* Original destinations between the client's ACTIVE_ESTABLISHED and the sidecar's
 * PASSIVE_ESTABLISHED (microseconds); a client close removes a leftover. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SM_MAX_INFLIGHT);
  __type(key, struct sm_tuple);
  __type(value, struct sm_origdst);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} sm_origdst_v2 SEC(".maps");

/* BPF_F_CLONE: a listener's storage (its splice-safe declaration) is copied into every
 * socket it accepts. */
struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
  __type(key, int);
  __type(value, struct sm_sk_state);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} sm_sk_v2 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_SOCKHASH);
  __uint(max_entries, 2 * SM_MAX_WORKLOADS);
  __type(key, struct sm_listen_key);
  __type(value, __u64);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} sm_listen_v2 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_SOCKHASH);
  __uint(max_entries, SM_MAX_SPLICED);
  __type(key, struct sm_tuple);
  __type(value, __u64);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} sm_sock_v2 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct sm_stats);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} sm_stats_v3 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct sm_config);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} sm_config_v1 SEC(".maps");

/* Private to the install-time probe of this kernel's sockhash behaviour (loader/probe.*):
 * not pinned, a fresh map per load. */
struct {
  __uint(type, BPF_MAP_TYPE_SOCKHASH);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, __u64);
} sm_probe SEC(".maps");

#endif /* SM_MAPS_BPF_H */
