/* Outbound interception: which connects go to the sidecar (Istio's nat OUTPUT rules,
 * decided per connect, for AF_INET and AF_INET6 sockets alike), and the answers an
 * application or proxy later asks for: SO_ORIGINAL_DST on the sidecar's accepted socket,
 * getpeername() on the app's socket. Also the cgroup sockopt hooks' duty to leave every
 * other call exactly as the kernel answered it. */
#ifndef SM_OUTBOUND_BPF_H
#define SM_OUTBOUND_BPF_H

#include "lib/common.bpf.h"

/* Returns the workload if this connect must be redirected, NULL to leave it alone.
 * Anything undecidable (not enrolled, map miss) leaves the connect unchanged. */
static __always_inline struct sm_workload* outbound_should_redirect(__u64 netns_cookie,
                                                                    const struct sm_addr* dst,
                                                                    __u16 dst_port, __u64 uid_gid) {
  struct sm_workload* wl = workload(netns_cookie);
  if (!wl) return NULL;
  /* 127.0.0.0/8 and ::1 (and 0.0.0.0/::, which the kernel sends to loopback) stay local. */
  if (addr_is_loopback(dst) || addr_is_unspecified(dst)) return NULL;
  if ((__u32)uid_gid == wl->proxy_uid || (__u32)(uid_gid >> 32) == wl->proxy_gid) return NULL;
  if (port_excluded(netns_cookie, dst_port, SM_DIR_OUTBOUND)) return NULL;
  if (cidr_match(netns_cookie, SM_CIDR_EXCLUDE, dst)) return NULL;
  if ((wl->flags & SM_WL_INCLUDE_CIDRS) && !cidr_match(netns_cookie, SM_CIDR_INCLUDE, dst))
    return NULL;
  return wl;
}

/* Whether the workload's sidecar listens on its outbound port in the caller's netns: on
 * 127.0.0.1 for IPv4 connects (a dual-stack [::] listener answers that too), on [::1] for
 * native IPv6 ones, as the rewritten connect would reach it. Only asked for --fail-open
 * workloads: a lookup per connect costs a hash walk. */
static __always_inline int sidecar_listening(struct bpf_sock_addr* ctx, __u16 port, int v4) {
  struct bpf_sock_tuple t;
  __builtin_memset(&t, 0, sizeof(t));
  struct bpf_sock* sk;
  if (v4) {
    t.ipv4.daddr = bpf_htonl(0x7f000001);
    t.ipv4.dport = bpf_htons(port);
    sk = bpf_sk_lookup_tcp(ctx, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
  } else {
    t.ipv6.daddr[3] = bpf_htonl(1);
    t.ipv6.dport = bpf_htons(port);
    sk = bpf_sk_lookup_tcp(ctx, &t, sizeof(t.ipv6), BPF_F_CURRENT_NETNS, 0);
  }
  if (!sk) return 0;
  bpf_sk_release(sk);
  return 1;
}

/* The decision for one connect of a TCP socket: records the original destination in the
 * socket's storage and returns the workload when the connect must go to the sidecar. A
 * socket connects more than once after a failed connect: a connect that is not
 * redirected clears an earlier record, so getpeername() and SO_ORIGINAL_DST never show a
 * destination the socket is not connected to. */
static __always_inline struct sm_workload* outbound_connect(struct bpf_sock_addr* ctx,
                                                            const struct sm_addr* dst,
                                                            __u16 dst_port) {
  if (ctx->type != SOCK_STREAM || ctx->protocol != IPPROTO_TCP) return NULL;
  struct bpf_sock* sk = ctx->sk;
  if (!sk) return NULL;
  struct sm_workload* wl =
      outbound_should_redirect(bpf_get_netns_cookie(ctx), dst, dst_port, bpf_get_current_uid_gid());
  if (wl && (wl->flags & SM_WL_FAIL_OPEN) &&
      !sidecar_listening(ctx, wl->outbound_port, addr_is_v4(dst))) {
    SM_COUNT(fail_open, 1);
    wl = NULL; /* fail open: the connect goes where the application asked */
  }
  if (!wl) {
    struct sm_sk_state* old = bpf_sk_storage_get(&sm_sk_v2, sk, 0, 0);
    if (old) old->flags &= ~SM_SK_REDIRECTED;
    return NULL;
  }
  struct sm_sk_state* st = bpf_sk_storage_get(&sm_sk_v2, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (!st) return NULL; /* cannot remember the destination: do not redirect */
  st->dst.addr = *dst;
  st->dst.port_be = bpf_htons(dst_port);
  st->flags |= SM_SK_REDIRECTED;
  SM_COUNT(connect_redirected, 1);
  return wl;
}

static __always_inline int outbound_connect4(struct bpf_sock_addr* ctx) {
  struct sm_addr dst;
  addr_from_v4(&dst, ctx->user_ip4);
  struct sm_workload* wl = outbound_connect(ctx, &dst, port_from_user_port(ctx->user_port));
  if (!wl) return 1;
  ctx->user_ip4 = bpf_htonl(0x7f000001); /* 127.0.0.1 of the workload's own netns */
  ctx->user_port = user_port_from_port(wl->outbound_port);
  return 1;
}

/* AF_INET6 sockets: a v4-mapped destination (::ffff:a.b.c.d) is an IPv4 connection and is
 * treated exactly like one (it goes to ::ffff:127.0.0.1); a native IPv6 destination goes
 * to the sidecar on [::1]. */
static __always_inline int outbound_connect6(struct bpf_sock_addr* ctx) {
  struct sm_addr dst;
  dst.be32[0] = ctx->user_ip6[0];
  dst.be32[1] = ctx->user_ip6[1];
  dst.be32[2] = ctx->user_ip6[2];
  dst.be32[3] = ctx->user_ip6[3];
  struct sm_workload* wl = outbound_connect(ctx, &dst, port_from_user_port(ctx->user_port));
  if (!wl) return 1;
  int v4 = addr_is_v4(&dst);
  if (!v4) SM_COUNT(origdst_v6, 1);
  /* Computed first, stored unconditionally: the verifier refuses stores through a ctx
   * pointer the compiler adjusted in one branch. */
  __u32 w2 = v4 ? bpf_htonl(0xffff) : 0;
  __u32 w3 = v4 ? bpf_htonl(0x7f000001) : bpf_htonl(1);
  ctx->user_ip6[0] = 0;
  ctx->user_ip6[1] = 0;
  ctx->user_ip6[2] = w2;
  ctx->user_ip6[3] = w3;
  ctx->user_port = user_port_from_port(wl->outbound_port);
  return 1;
}

/* A cgroup sockopt program sees at most a page of the option buffer. When the option is
 * longer, optlen = 0 says "keep what the kernel (or the caller) had": kernels before 6.5
 * turn an untouched out-of-bounds optlen into EFAULT, 6.5+ ignore it. Either way the
 * caller then sees exactly what it would see without sockmesh. */
static __always_inline void sockopt_keep_as_is(struct bpf_sockopt* ctx) {
  int len = ctx->optlen;
  if (len <= 0) return;
  if (len > 0xffff || ctx->optval + len > ctx->optval_end) ctx->optlen = 0;
}

struct sm_sockaddr_in {
  __u16 sin_family;
  __u16 sin_port;
  __u32 sin_addr;
  __u8 sin_zero[8];
};
struct sm_sockaddr_in6 {
  __u16 sin6_family;
  __u16 sin6_port;
  __u32 sin6_flowinfo;
  __u32 sin6_addr[4];
  __u32 sin6_scope_id;
};

/* getsockopt on a socket the sidecar accepted, answered like conntrack: (SOL_IP,
 * SO_ORIGINAL_DST) for IPv4 connections (AF_INET sockets and v4-mapped AF_INET6 ones)
 * gives a sockaddr_in; (SOL_IPV6, IP6T_SO_ORIGINAL_DST) for native IPv6 connections a
 * sockaddr_in6. Every other call keeps exactly what the kernel answered. */
static __always_inline int outbound_getsockopt(struct bpf_sockopt* ctx) {
  int v4 = ctx->level == SM_SOL_IP && ctx->optname == SM_SO_ORIGINAL_DST;
  int v6 = ctx->level == SM_SOL_IPV6 && ctx->optname == SM_IP6T_SO_ORIGINAL_DST;
  if (!v4 && !v6) {
    sockopt_keep_as_is(ctx);
    return 1;
  }
  struct bpf_sock* sk = ctx->sk;
  if (!sk) return 1;
  struct sm_sk_state* st = bpf_sk_storage_get(&sm_sk_v2, sk, 0, 0);
  if (!st || !(st->flags & SM_SK_ORIGDST) || v4 != addr_is_v4(&st->dst.addr)) {
    sockopt_keep_as_is(ctx);
    return 1;
  }
  if (v4) {
    struct sm_sockaddr_in* sa = ctx->optval;
    if ((void*)(sa + 1) > ctx->optval_end) {
      ctx->retval = -22; /* -EINVAL: conntrack's answer to a short buffer */
      return 1;
    }
    sa->sin_family = AF_INET;
    sa->sin_port = st->dst.port_be;
    sa->sin_addr = st->dst.addr.be32[3];
    __builtin_memset(sa->sin_zero, 0, sizeof(sa->sin_zero));
    ctx->optlen = sizeof(*sa);
  } else {
    struct sm_sockaddr_in6* sa = ctx->optval;
    if ((void*)(sa + 1) > ctx->optval_end) {
      ctx->retval = -22;
      return 1;
    }
    sa->sin6_family = AF_INET6;
    sa->sin6_port = st->dst.port_be;
    sa->sin6_flowinfo = 0;
    sa->sin6_addr[0] = st->dst.addr.be32[0];
    sa->sin6_addr[1] = st->dst.addr.be32[1];
    sa->sin6_addr[2] = st->dst.addr.be32[2];
    sa->sin6_addr[3] = st->dst.addr.be32[3];
    sa->sin6_scope_id = 0;
    ctx->optlen = sizeof(*sa);
  }
  ctx->retval = 0;
  SM_COUNT(origdst_answered, 1);
  return 1;
}

/* setsockopt: only sockmesh's own (SM_SOL_SOCKMESH, SM_SO_SPLICE_SAFE) is handled here
 * (and never reaches the kernel, which would not know it); everything else is passed on
 * untouched. */
static __always_inline int outbound_setsockopt(struct bpf_sockopt* ctx) {
  if (ctx->level != SM_SOL_SOCKMESH || ctx->optname != SM_SO_SPLICE_SAFE) {
    sockopt_keep_as_is(ctx);
    return 1;
  }
  __u32* on = ctx->optval;
  struct bpf_sock* sk = ctx->sk;
  if ((void*)(on + 1) > ctx->optval_end || !sk) return 1; /* the kernel says ENOPROTOOPT */
  struct sm_sk_state* st = bpf_sk_storage_get(&sm_sk_v2, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (!st) return 1;
  if (*on)
    st->flags |= SM_SK_SPLICE_SAFE;
  else
    st->flags &= ~SM_SK_SPLICE_SAFE;
  ctx->optlen = -1; /* handled: skip the kernel's handler, setsockopt returns 0 */
  return 1;
}

/* getpeername() on a redirected client socket shows the original peer, not the sidecar. */
static __always_inline int outbound_getpeername(struct bpf_sock_addr* ctx, int v6) {
  struct bpf_sock* sk = ctx->sk;
  if (!sk) return 1;
  struct sm_sk_state* st = bpf_sk_storage_get(&sm_sk_v2, sk, 0, 0);
  if (!st || !(st->flags & SM_SK_REDIRECTED)) return 1;
  if (v6) {
    ctx->user_ip6[0] = st->dst.addr.be32[0];
    ctx->user_ip6[1] = st->dst.addr.be32[1];
    ctx->user_ip6[2] = st->dst.addr.be32[2];
    ctx->user_ip6[3] = st->dst.addr.be32[3];
  } else {
    ctx->user_ip4 = st->dst.addr.be32[3];
  }
  ctx->user_port = st->dst.port_be;
  return 1;
}

#endif /* SM_OUTBOUND_BPF_H */
