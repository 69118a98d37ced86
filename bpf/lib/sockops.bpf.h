/* sockops: the bookkeeping of established sockets (AF_INET and AF_INET6).
 * - carries a redirected connect's original destination from the client socket to the
 *   socket the sidecar accepts (through sm_origdst_v2, keyed by the 4-tuple + netns);
 * - registers each workload's inbound listener for sk_lookup (sm_listen_v2);
 * - puts established sockets into sm_sock_v2 for splicing where that is safe (below). */
#ifndef SM_SOCKOPS_BPF_H
#define SM_SOCKOPS_BPF_H

#include "lib/common.bpf.h"

#define SM_TCP_CLOSE 7 /* BPF_TCP_CLOSE */

/* The connection as this socket sees it. */
static __always_inline void own_tuple(struct sm_tuple* k, __u64 netns_cookie,
                                      struct bpf_sock_ops* ctx) {
  struct sm_addr local, remote;
  SM_CTX_ADDR(&local, ctx, local);
  SM_CTX_ADDR(&remote, ctx, remote);
  make_tuple(k, netns_cookie, &local, (__u16)ctx->local_port, &remote,
             port_from_remote_port(ctx->remote_port));
}

/* The client-oriented key of a redirected connection, from the sidecar's accepted end. */
static __always_inline void client_tuple_from_server(struct sm_tuple* k, __u64 netns_cookie,
                                                     struct bpf_sock_ops* ctx) {
  struct sm_addr local, remote;
  SM_CTX_ADDR(&local, ctx, local);
  SM_CTX_ADDR(&remote, ctx, remote);
  make_tuple(k, netns_cookie, &remote, port_from_remote_port(ctx->remote_port), &local,
             (__u16)ctx->local_port);
}

/* Whether this socket may get a psock. Any socket in a sockhash has its receive path
 * replaced by tcp_bpf's: on this kernel a blocking recv() there can return EAGAIN and
 * splice(2) does not see redirected bytes (docs/ARCHITECTURE.md). So a socket is spliced
 * only where nothing can notice:
 * - a loopback connection (an app and its own sidecar, or two apps of one pod) only when
 *   the workload's app sockets may be spliced: enrolled with --splice-app, or install's
 *   probe found this kernel safe (SM_CFG_APP_SPLICE_SAFE);
 * - any other connection when its owner declared the socket splice-safe (sockmesh-proxy
 *   does; a listener's declaration passes to what it accepts) or the app sockets may be
 *   spliced, and only if this netns owns the local address (an address another netns
 *   owns, or nobody, would let a namespace that adds it pose as that pod) and an enrolled
 *   netns owns the remote one (else the peer can never be spliced). */
static __always_inline int splice_allowed(struct bpf_sock_ops* ctx, struct sm_workload* wl,
                                          __u64 netns_cookie, const struct sm_tuple* k) {
  __u32 cfg = config_flags();
  int app_ok = (wl->flags & SM_WL_SPLICE_APP) || (cfg & SM_CFG_APP_SPLICE_SAFE);
  if (addr_is_loopback(&k->local) || addr_is_loopback(&k->remote)) {
    if (app_ok) return 1;
    SM_COUNT(sock_not_safe, 1);
    return 0;
  }
  if (!app_ok) {
    struct bpf_sock* sk = ctx->sk;
    struct sm_sk_state* st = sk ? bpf_sk_storage_get(&sm_sk_v2, sk, 0, 0) : NULL;
    if (!st || !(st->flags & SM_SK_SPLICE_SAFE)) {
      SM_COUNT(sock_not_safe, 1);
      return 0;
    }
  }
  __u64* owner = bpf_map_lookup_elem(&sm_addr_v1, &k->local);
  if (!owner || *owner != netns_cookie) {
    SM_COUNT(sock_not_owner, 1);
    return 0;
  }
  /* The peer can only be in the sockhash if an enrolled netns owns its address (the rule
   * above, on its side). Otherwise (a server outside the mesh, an external service) a
   * psock would only cost: the sk_msg program on every send and tcp_bpf's receive path. */
  if (!bpf_map_lookup_elem(&sm_addr_v1, &k->remote)) {
    SM_COUNT(sock_not_owner, 1);
    return 0;
  }
  return 1;
}

static __always_inline void splice_insert(struct bpf_sock_ops* ctx, struct sm_workload* wl,
                                          __u64 netns_cookie) {
  if (!(config_flags() & SM_CFG_SPLICE)) return;
  struct sm_tuple k;
  own_tuple(&k, netns_cookie, ctx);
  if (!splice_allowed(ctx, wl, netns_cookie, &k)) return;
  if (bpf_sock_hash_update(ctx, &sm_sock_v2, &k, BPF_NOEXIST) == 0)
    SM_COUNT(sock_inserted, 1);
  else
    SM_COUNT(sock_insert_fail, 1);
}

static __always_inline void on_active_established(struct bpf_sock_ops* ctx, struct sm_workload* wl,
                                                  __u64 netns_cookie) {
  struct bpf_sock* sk = ctx->sk;
  if (sk) {
    struct sm_sk_state* st = bpf_sk_storage_get(&sm_sk_v2, sk, 0, 0);
    if (st && (st->flags & SM_SK_REDIRECTED)) {
      struct sm_tuple k;
      own_tuple(&k, netns_cookie, ctx);
      if (bpf_map_update_elem(&sm_origdst_v2, &k, &st->dst, BPF_ANY) == 0)
        /* Remove a leftover if the sidecar never completes the accept. */
        bpf_sock_ops_cb_flags_set(ctx, ctx->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
      else
        SM_COUNT(inflight_full, 1);
    }
  }
  splice_insert(ctx, wl, netns_cookie);
}

static __always_inline void on_passive_established(struct bpf_sock_ops* ctx, struct sm_workload* wl,
                                                   __u64 netns_cookie) {
  struct bpf_sock* sk = ctx->sk;
  struct sm_tuple k;
  client_tuple_from_server(&k, netns_cookie, ctx);
  if (sk && ctx->local_port == wl->outbound_port && addr_is_loopback(&k.remote)) {
    struct sm_origdst* dst = bpf_map_lookup_elem(&sm_origdst_v2, &k);
    if (dst) {
      struct sm_sk_state* st = bpf_sk_storage_get(&sm_sk_v2, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
      if (st) {
        st->dst = *dst;
        st->flags |= SM_SK_ORIGDST;
        SM_COUNT(origdst_recorded, 1);
      }
      bpf_map_delete_elem(&sm_origdst_v2, &k);
    } else {
      /* No record: the connect was not redirected (a plain connect to the sidecar port,
       * e.g. a health check) or its record was lost; SO_ORIGINAL_DST answers ENOENT. */
      SM_COUNT(origdst_missing, 1);
    }
  }
  splice_insert(ctx, wl, netns_cookie);
}

static __always_inline void on_listen(struct bpf_sock_ops* ctx, struct sm_workload* wl,
                                      __u64 netns_cookie) {
  if (ctx->local_port != wl->inbound_port) return;
  struct sm_listen_key k;
  __builtin_memset(&k, 0, sizeof(k));
  k.netns_cookie = netns_cookie;
  k.family = ctx->family;
  bpf_sock_hash_update(ctx, &sm_listen_v2, &k, BPF_ANY);
}

static __always_inline void on_state_change(struct bpf_sock_ops* ctx, __u64 netns_cookie) {
  if (ctx->args[1] != SM_TCP_CLOSE) return;
  struct sm_tuple k;
  own_tuple(&k, netns_cookie, ctx);
  bpf_map_delete_elem(&sm_origdst_v2, &k);
}

static __always_inline int sockops(struct bpf_sock_ops* ctx) {
  if (ctx->family != AF_INET && ctx->family != AF_INET6) return 1;
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
      on_active_established(ctx, wl, netns_cookie);
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
