/* sk_lookup: steer inbound TCP connections for a workload's ports to its sidecar's
 * inbound listener (Istio's nat PREROUTING -> 15006). sk_lookup cannot learn which netns
 * it runs in, so the loader loads one instance per enrolled netns with the cookie set. */
#ifndef SM_INBOUND_BPF_H
#define SM_INBOUND_BPF_H

#include "lib/common.bpf.h"

static __always_inline int inbound_lookup(struct bpf_sk_lookup* ctx, __u64 netns_cookie) {
  if (ctx->family != AF_INET || ctx->protocol != IPPROTO_TCP) return SK_PASS;
  if (is_loopback(ctx->local_ip4) || is_loopback(ctx->remote_ip4)) return SK_PASS;
  struct sm_workload* wl = workload(netns_cookie);
  if (!wl) return SK_PASS;
  __u16 port = (__u16)ctx->local_port;
  if (port == wl->inbound_port || port == wl->outbound_port) return SK_PASS;
  if (port_excluded(netns_cookie, port, SM_DIR_INBOUND)) return SK_PASS;
  struct bpf_sock* listener = bpf_map_lookup_elem(&sm_listen_v1, &netns_cookie);
  if (!listener) {
    /* Fail closed, as Istio's REDIRECT does: no sidecar, no connection (RST). */
    SM_COUNT(inbound_no_listener, 1);
    return SK_DROP;
  }
  long err = bpf_sk_assign(ctx, listener, 0);
  bpf_sk_release(listener);
  if (err) return SK_PASS;
  SM_COUNT(inbound_steered, 1);
  return SK_PASS;
}

#endif /* SM_INBOUND_BPF_H */
