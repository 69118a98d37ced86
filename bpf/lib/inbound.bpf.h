/* sk_lookup: steer inbound TCP connections for a workload's ports to its sidecar's
 * inbound listener (Istio's nat PREROUTING -> 15006), IPv4 and IPv6. sk_lookup cannot
 * learn which netns it runs in, so the loader loads one instance per enrolled netns with
 * the cookie set. */
#ifndef SM_INBOUND_BPF_H
#define SM_INBOUND_BPF_H

#include "lib/common.bpf.h"

static __always_inline struct bpf_sock* inbound_listener(__u64 netns_cookie, __u32 family) {
  struct sm_listen_key k;
  __builtin_memset(&k, 0, sizeof(k));
  k.netns_cookie = netns_cookie;
  k.family = family;
  struct bpf_sock* sk = bpf_map_lookup_elem(&sm_listen_v2, &k);
  if (sk || family != AF_INET) return sk;
  /* A dual-stack AF_INET6 listener serves IPv4 connections too. */
  k.family = AF_INET6;
  return bpf_map_lookup_elem(&sm_listen_v2, &k);
}

static __always_inline int inbound_lookup(struct bpf_sk_lookup* ctx, __u64 netns_cookie) {
  if (ctx->protocol != IPPROTO_TCP) return SK_PASS;
  struct sm_addr local, remote;
  if (ctx->family == AF_INET) {
    addr_from_v4(&local, ctx->local_ip4);
    addr_from_v4(&remote, ctx->remote_ip4);
  } else if (ctx->family == AF_INET6) {
    local.be32[0] = ctx->local_ip6[0];
    local.be32[1] = ctx->local_ip6[1];
    local.be32[2] = ctx->local_ip6[2];
    local.be32[3] = ctx->local_ip6[3];
    remote.be32[0] = ctx->remote_ip6[0];
    remote.be32[1] = ctx->remote_ip6[1];
    remote.be32[2] = ctx->remote_ip6[2];
    remote.be32[3] = ctx->remote_ip6[3];
  } else {
    return SK_PASS;
  }
  if (addr_is_loopback(&local) || addr_is_loopback(&remote)) return SK_PASS;
  struct sm_workload* wl = workload(netns_cookie);
  if (!wl) return SK_PASS;
  __u16 port = (__u16)ctx->local_port;
  if (port == wl->inbound_port || port == wl->outbound_port) return SK_PASS;
  if (port_excluded(netns_cookie, port, SM_DIR_INBOUND)) return SK_PASS;
  struct bpf_sock* listener = inbound_listener(netns_cookie, ctx->family);
  if (!listener) {
    /* Fail closed, as Istio's REDIRECT does: no sidecar, no connection (RST). */
    SM_COUNT(inbound_no_listener, 1);
    return SK_DROP;
  }
  long err = bpf_sk_assign(ctx, listener, 0);
  bpf_sk_release(listener);
  if (err) {
    /* e.g. an IPv6 connection and only an IPv4 listener: still fail closed. */
    SM_COUNT(inbound_no_listener, 1);
    return SK_DROP;
  }
  SM_COUNT(inbound_steered, 1);
  return SK_PASS;
}

#endif /* SM_INBOUND_BPF_H */
