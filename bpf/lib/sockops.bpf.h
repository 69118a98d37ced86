/* sockops: the bookkeeping of established sockets.
 * - carries a redirected connect's original destination from the client socket to the
 *   socket the sidecar accepts (through sm_origdst_v1, keyed by the 4-tuple + netns);
 * - registers each workload's inbound listener for sk_lookup (sm_listen_v1);
 * - puts established sockets of enrolled namespaces into sm_sock_v1 for splicing. */
#ifndef SM_SOCKOPS_BPF_H
#define SM_SOCKOPS_BPF_H

#include "lib/common.bpf.h"

#define SM_TCP_CLOSE 7 /* BPF_TCP_CLOSE */

/* The client-oriented key of a redirected connection, from either end. */
static __always_inline void origdst_key(struct sm_tuple* k, __u64 netns_cookie,
                                        struct bpf_sock_ops* ctx, int client_side) {
  __u16 lport = (__u16)ctx->local_port, rport = port_from_remote_port(ctx->remote_port);
  if (client_side)
    make_tuple(k, netns_cookie, ctx->local_ip4, lport, ctx->remote_ip4, rport);
  else
    make_tuple(k, netns_cookie, ctx->remote_ip4, rport, ctx->local_ip4, lport);
}

static __always_inline void splice_insert(struct bpf_sock_ops* ctx, __u64 netns_cookie) {
  if (!(config_flags() & SM_CFG_SPLICE)) return;
  struct sm_tuple k;
  make_tuple(&k, netns_cookie, ctx->local_ip4, (__u16)ctx->local_port, ctx->remote_ip4,
             port_from_remote_port(ctx->remote_port));
  if (bpf_sock_hash_update(ctx, &sm_sock_v1, &k, BPF_ANY) == 0)
    SM_COUNT(sock_inserted, 1);
  else
    SM_COUNT(sock_insert_fail, 1);
}

static __always_inline void on_active_established(struct bpf_sock_ops* ctx, __u64 netns_cookie) {
  struct bpf_sock* sk = ctx->sk;
  if (sk) {
    struct sm_sk_state* st = bpf_sk_storage_get(&sm_sk_v1, sk, 0, 0);
    if (st && (st->flags & SM_SK_REDIRECTED)) {
      struct sm_tuple k;
      origdst_key(&k, netns_cookie, ctx, 1);
      if (bpf_map_update_elem(&sm_origdst_v1, &k, &st->dst, BPF_ANY) == 0)
        /* Remove a leftover if the sidecar never completes the accept. */
        bpf_sock_ops_cb_flags_set(ctx, ctx->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
      else
        SM_COUNT(inflight_full, 1);
    }
  }
  splice_insert(ctx, netns_cookie);
}

static __always_inline void on_passive_established(struct bpf_sock_ops* ctx, struct sm_workload* wl,
                                                   __u64 netns_cookie) {
  struct bpf_sock* sk = ctx->sk;
  if (sk && ctx->local_port == wl->outbound_port && is_loopback(ctx->local_ip4)) {
    struct sm_tuple k;
    origdst_key(&k, netns_cookie, ctx, 0);
    struct sm_origdst* dst = bpf_map_lookup_elem(&sm_origdst_v1, &k);
    if (dst) {
      struct sm_sk_state* st = bpf_sk_storage_get(&sm_sk_v1, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
      if (st) {
        st->dst = *dst;
        st->flags = SM_SK_ORIGDST;
        SM_COUNT(origdst_recorded, 1);
      }
      bpf_map_delete_elem(&sm_origdst_v1, &k);
    } else {
      /* No record: the connect was not redirected (a plain connect to the sidecar port,
       * e.g. a health check) or its record was lost; SO_ORIGINAL_DST answers ENOENT. */
      SM_COUNT(origdst_missing, 1);
    }
  }
  splice_insert(ctx, netns_cookie);
}

static __always_inline void on_listen(struct bpf_sock_ops* ctx, struct sm_workload* wl,
                                      __u64 netns_cookie) {
  if (ctx->local_port != wl->inbound_port) return;
  bpf_sock_hash_update(ctx, &sm_listen_v1, &netns_cookie, BPF_ANY);
}

static __always_inline void on_state_change(struct bpf_sock_ops* ctx, __u64 netns_cookie) {
  if (ctx->args[1] != SM_TCP_CLOSE) return;
  struct sm_tuple k;
  origdst_key(&k, netns_cookie, ctx, 1);
  bpf_map_delete_elem(&sm_origdst_v1, &k);
}

static __always_inline int sockops(struct bpf_sock_ops* ctx) {
  if (ctx->family != AF_INET) return 1;
  __u32 op = ctx->op;
  if (op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB && op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB &&
      op != BPF_SOCK_OPS_TCP_LISTEN_CB && op != BPF_SOCK_OPS_STATE_CB)
    return 1;
  __u64 netns_cookie = bpf_get_netns_cookie(ctx);
  if (op == BPF_SOCK_OPS_STATE_CB) {
    on_state_change(ctx, netns_cookie);
    return 1;
  }
  struct sm_workload* wl = workload(netns_cookie);
  if (!wl) return 1;
  switch (op) {
    case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
      on_active_established(ctx, netns_cookie);
      break;
    case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
      on_passive_established(ctx, wl, netns_cookie);
      break;
    case BPF_SOCK_OPS_TCP_LISTEN_CB:
      on_listen(ctx, wl, netns_cookie);
      break;
  }
  return 1;
}

#endif /* SM_SOCKOPS_BPF_H */
