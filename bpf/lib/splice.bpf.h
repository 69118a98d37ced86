/* sk_msg: hand each send of a spliced socket straight to the peer socket's receive
 * queue when the peer lives on this host (it is in sm_sock_v1). The peer's key is our
 * tuple reversed; a miss is ordinary TCP. */
#ifndef SM_SPLICE_BPF_H
#define SM_SPLICE_BPF_H

#include "lib/common.bpf.h"

static __always_inline int splice_msg(struct sk_msg_md* msg) {
  if (!(config_flags() & SM_CFG_SPLICE)) return SK_PASS;
  struct sm_tuple peer;
  make_tuple(&peer, bpf_get_netns_cookie(msg), msg->remote_ip4,
             port_from_remote_port(msg->remote_port), msg->local_ip4, (__u16)msg->local_port);
  __u32 size = msg->size;
  if (bpf_msg_redirect_hash(msg, &sm_sock_v1, &peer, BPF_F_INGRESS) == SK_PASS) {
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

#endif /* SM_SPLICE_BPF_H */
