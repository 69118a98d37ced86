/* Outbound interception: which connects go to the sidecar (Istio's nat OUTPUT rules,
 * decided per connect), and the answers an application or proxy later asks for:
 * SO_ORIGINAL_DST on the sidecar's accepted socket, getpeername() on the app's socket. */
#ifndef SM_OUTBOUND_BPF_H
#define SM_OUTBOUND_BPF_H

#include "lib/common.bpf.h"

/* Returns the workload if this connect must be redirected, NULL to leave it alone.
 * Anything undecidable (not enrolled, map miss) leaves the connect unchanged. */
static __always_inline struct sm_workload* outbound_should_redirect(__u64 netns_cookie,
                                                                    __u32 dst_be, __u16 dst_port,
                                                                    __u64 uid_gid) {
  struct sm_workload* wl = workload(netns_cookie);
  if (!wl) return NULL;
  if (is_loopback(dst_be)) return NULL;
  if ((__u32)uid_gid == wl->proxy_uid || (__u32)(uid_gid >> 32) == wl->proxy_gid) return NULL;
  if (port_excluded(netns_cookie, dst_port, SM_DIR_OUTBOUND)) return NULL;
  if (cidr_match(netns_cookie, SM_CIDR_EXCLUDE, dst_be)) return NULL;
  if ((wl->flags & SM_WL_INCLUDE_CIDRS) && !cidr_match(netns_cookie, SM_CIDR_INCLUDE, dst_be))
    return NULL;
  return wl;
}

static __always_inline int outbound_connect4(struct bpf_sock_addr* ctx) {
  if (ctx->type != SOCK_STREAM || ctx->protocol != IPPROTO_TCP) return 1;
  __u64 netns_cookie = bpf_get_netns_cookie(ctx);
  __u32 dst_be = ctx->user_ip4;
  __u16 dst_port = port_from_user_port(ctx->user_port);
  struct sm_workload* wl =
      outbound_should_redirect(netns_cookie, dst_be, dst_port, bpf_get_current_uid_gid());
  if (!wl) return 1;
  struct bpf_sock* sk = ctx->sk;
  if (!sk) return 1;
  struct sm_sk_state* st = bpf_sk_storage_get(&sm_sk_v1, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (!st) return 1; /* cannot remember the destination: do not redirect */
  st->dst.addr_be = dst_be;
  st->dst.port_be = bpf_htons(dst_port);
  st->flags = SM_SK_REDIRECTED;
  ctx->user_ip4 = bpf_htonl(0x7f000001); /* 127.0.0.1 of the workload's own netns */
  ctx->user_port = user_port_from_port(wl->outbound_port);
  SM_COUNT(connect_redirected, 1);
  return 1;
}

struct sm_sockaddr_in {
  __u16 sin_family;
  __u16 sin_port;
  __u32 sin_addr;
  __u8 sin_zero[8];
};

/* getsockopt(SOL_IP, SO_ORIGINAL_DST) on a socket the sidecar accepted: answer like
 * conntrack does. Every other call keeps exactly what the kernel answered. */
static __always_inline int outbound_getsockopt(struct bpf_sockopt* ctx) {
  if (ctx->level != SM_SOL_IP || ctx->optname != SM_SO_ORIGINAL_DST) return 1;
  struct bpf_sock* sk = ctx->sk;
  if (!sk) return 1;
  struct sm_sk_state* st = bpf_sk_storage_get(&sm_sk_v1, sk, 0, 0);
  if (!st || !(st->flags & SM_SK_ORIGDST)) return 1;
  struct sm_sockaddr_in* sa = ctx->optval;
  if ((void*)(sa + 1) > ctx->optval_end) {
    ctx->retval = -22; /* -EINVAL: conntrack's answer to a short buffer */
    return 1;
  }
  sa->sin_family = AF_INET;
  sa->sin_port = st->dst.port_be;
  sa->sin_addr = st->dst.addr_be;
  __builtin_memset(sa->sin_zero, 0, sizeof(sa->sin_zero));
  ctx->optlen = sizeof(*sa);
  ctx->retval = 0;
  SM_COUNT(origdst_answered, 1);
  return 1;
}

/* getpeername() on a redirected client socket shows the original peer, not the sidecar. */
static __always_inline int outbound_getpeername4(struct bpf_sock_addr* ctx) {
  struct bpf_sock* sk = ctx->sk;
  if (!sk) return 1;
  struct sm_sk_state* st = bpf_sk_storage_get(&sm_sk_v1, sk, 0, 0);
  if (!st || !(st->flags & SM_SK_REDIRECTED)) return 1;
  ctx->user_ip4 = st->dst.addr_be;
  ctx->user_port = st->dst.port_be;
  return 1;
}

#endif /* SM_OUTBOUND_BPF_H */
