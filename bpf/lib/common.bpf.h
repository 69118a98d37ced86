/* Small helpers every program core uses: byte-order conversions per context (the one
 * place they live), counters, and the lookups of enrollment settings. */
#ifndef SM_COMMON_BPF_H
#define SM_COMMON_BPF_H

/* vmlinux.h must come before libbpf's headers, which use its types. */
#include "vmlinux.h"
/* (separate block so clang-format keeps the order) */
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "maps.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define IPPROTO_TCP 6

/* Port byte order differs per context; each conversion is named after its source.
 * - bpf_sock_addr.user_port: network order in the low 16 bits of a u32.
 * - bpf_sock_ops/sk_msg_md.remote_port: network order shifted into the upper 16 bits
 *   on little-endian (the kernel loads skc_dport and shifts it left by 16).
 * - bpf_sock_ops/sk_msg_md.local_port, bpf_sk_lookup.local_port: host order.
 * - bpf_sk_lookup.remote_port: network order (__be16). */
static __always_inline __u16 port_from_user_port(__u32 user_port) {
  return bpf_ntohs((__u16)user_port);
}
static __always_inline __u32 user_port_from_port(__u16 port) {
  return bpf_htons(port);
}
static __always_inline __u16 port_from_remote_port(__u32 remote_port) {
  return (__u16)bpf_ntohl(remote_port);
}

/* Addresses: every core works on struct sm_addr, IPv4 held v4-mapped. */
static __always_inline void addr_from_v4(struct sm_addr* a, __u32 ip4_be) {
  a->be32[0] = 0;
  a->be32[1] = 0;
  a->be32[2] = bpf_htonl(0xffff);
  a->be32[3] = ip4_be;
}
static __always_inline int addr_is_v4(const struct sm_addr* a) {
  return a->be32[0] == 0 && a->be32[1] == 0 && a->be32[2] == bpf_htonl(0xffff);
}
static __always_inline int addr_is_loopback(const struct sm_addr* a) {
  if (addr_is_v4(a)) return (bpf_ntohl(a->be32[3]) >> 24) == SM_LOOPBACK_NET;
  return a->be32[0] == 0 && a->be32[1] == 0 && a->be32[2] == 0 && a->be32[3] == bpf_htonl(1);
}
/* 0.0.0.0 and ::: a connect there reaches this host's loopback. */
static __always_inline int addr_is_unspecified(const struct sm_addr* a) {
  if (addr_is_v4(a)) return a->be32[3] == 0;
  return (a->be32[0] | a->be32[1] | a->be32[2] | a->be32[3]) == 0;
}
/* A socket context's addresses (bpf_sock_ops, sk_msg_md): AF_INET sockets have them in
 * the *_ip4 fields; AF_INET6 sockets in *_ip6, already v4-mapped for IPv4 peers. Every
 * field is read (volatile, 32 bits at a time) before choosing: the verifier refuses a ctx
 * load through a pointer the compiler merged from two branches. */
#define SM_CTX_ADDR(a, ctx, which)                         \
  do {                                                     \
    __u32 __v4 = *(volatile __u32*)&(ctx)->which##_ip4;    \
    __u32 __w0 = *(volatile __u32*)&(ctx)->which##_ip6[0]; \
    __u32 __w1 = *(volatile __u32*)&(ctx)->which##_ip6[1]; \
    __u32 __w2 = *(volatile __u32*)&(ctx)->which##_ip6[2]; \
    __u32 __w3 = *(volatile __u32*)&(ctx)->which##_ip6[3]; \
    if ((ctx)->family == AF_INET) {                        \
      addr_from_v4((a), __v4);                             \
    } else {                                               \
      (a)->be32[0] = __w0;                                 \
      (a)->be32[1] = __w1;                                 \
      (a)->be32[2] = __w2;                                 \
      (a)->be32[3] = __w3;                                 \
    }                                                      \
  } while (0)

static __always_inline struct sm_stats* stats(void) {
  __u32 zero = 0;
  return bpf_map_lookup_elem(&sm_stats_v3, &zero);
}
#define SM_COUNT(field, n)          \
  do {                              \
    struct sm_stats* __s = stats(); \
    if (__s) __s->field += (n);     \
  } while (0)

static __always_inline __u32 config_flags(void) {
  __u32 zero = 0;
  struct sm_config* c = bpf_map_lookup_elem(&sm_config_v1, &zero);
  return c ? c->flags : 0;
}

static __always_inline struct sm_workload* workload(__u64 netns_cookie) {
  return bpf_map_lookup_elem(&sm_netns_v1, &netns_cookie);
}

static __always_inline int port_excluded(__u64 netns_cookie, __u16 port, __u8 direction) {
  struct sm_port_key k;
  __builtin_memset(&k, 0, sizeof(k)); /* padding is part of the key */
  k.netns_cookie = netns_cookie;
  k.port = port;
  k.direction = direction;
  return bpf_map_lookup_elem(&sm_port_v1, &k) != NULL;
}

static __always_inline int cidr_match(__u64 netns_cookie, __u32 kind, const struct sm_addr* a) {
  struct sm_cidr_key k;
  __builtin_memset(&k, 0, sizeof(k));
  k.prefixlen = SM_CIDR_FIXED_BITS + 128;
  k.kind = kind;
  k.netns_cookie = netns_cookie;
  k.addr = *a;
  return bpf_map_lookup_elem(&sm_cidr_v2, &k) != NULL;
}

/* The key of a connection as one socket sees it (see struct sm_tuple). */
static __always_inline void make_tuple(struct sm_tuple* t, __u64 netns_cookie,
                                       const struct sm_addr* local, __u16 local_port,
                                       const struct sm_addr* remote, __u16 remote_port) {
  __builtin_memset(t, 0, sizeof(*t));
  t->netns_cookie = addr_is_loopback(local) || addr_is_loopback(remote) ? netns_cookie : 0;
  t->local = *local;
  t->remote = *remote;
  t->local_port = local_port;
  t->remote_port = remote_port;
}

#endif /* SM_COMMON_BPF_H */
