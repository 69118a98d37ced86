/* sk_msg: hand each send of a spliced socket straight to the peer socket's receive
 * queue when the peer lives on this host (it is in sm_sock_v2). The peer's key is our
 * tuple reversed; a miss is ordinary TCP. */
#ifndef SM_SPLICE_BPF_H
#define SM_SPLICE_BPF_H

#include "lib/common.bpf.h"

static __always_inline int splice_msg(struct sk_msg_md* msg) {
  if (!(config_flags() & SM_CFG_SPLICE)) return SK_PASS;
  struct sm_addr local, remote;
  SM_CTX_ADDR(&local, msg, local);
  SM_CTX_ADDR(&remote, msg, remote);
  struct sm_tuple peer;
  make_tuple(&peer, bpf_get_netns_cookie(msg), &remote, port_from_remote_port(msg->remote_port),
             &local, (__u16)msg->local_port);
  __u32 size = msg->size;
  if (bpf_msg_redirect_hash(msg, &sm_sock_v2, &peer, BPF_F_INGRESS) == SK_PASS) {
    struct sm_stats* s = stats();
    if (s) {
      s->splice_msgs += 1;
      s->splice_bytes += size;
    }
  } else {
    SM_COUNT(splice_miss, 1);
  }
  return SK_PASS;
}

/* install's probe of this kernel (loader/probe.cpp): the probe's private sockhash holds
 * the two ends of one loopback connection keyed by their local port; every send goes
 * into the peer's receive queue, as sm_splice does for a pair. */
static __always_inline int probe_msg(struct sk_msg_md* msg) {
  __u32 peer_port = port_from_remote_port(msg->remote_port);
  return bpf_msg_redirect_hash(msg, &sm_probe, &peer_port, BPF_F_INGRESS);
}

#endif /* SM_SPLICE_BPF_H */
