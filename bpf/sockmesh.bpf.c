/* sockmesh's BPF programs. Each SEC() entry point only adapts its context and calls the
 * core in lib/ that holds the logic. The cgroup programs are attached once (at the
 * cgroup v2 root in production); sm_inbound is loaded once per enrolled netns, and
 * sm_probe_msg only by install's probe of the kernel. */
#include "lib/common.bpf.h"
#include "lib/inbound.bpf.h"
#include "lib/outbound.bpf.h"
#include "lib/sockops.bpf.h"
#include "lib/splice.bpf.h"

/* Set by the loader before load, for the per-netns sk_lookup instance only. */
const volatile __u64 inbound_netns_cookie = 0;

SEC("cgroup/connect4")
int sm_connect4(struct bpf_sock_addr* ctx) {
  return outbound_connect4(ctx);
}

SEC("cgroup/connect6")
int sm_connect6(struct bpf_sock_addr* ctx) {
  return outbound_connect6(ctx);
}

SEC("cgroup/getsockopt")
int sm_getsockopt(struct bpf_sockopt* ctx) {
  return outbound_getsockopt(ctx);
}

SEC("cgroup/setsockopt")
int sm_setsockopt(struct bpf_sockopt* ctx) {
  return outbound_setsockopt(ctx);
}

SEC("cgroup/getpeername4")
int sm_getpeername4(struct bpf_sock_addr* ctx) {
  return outbound_getpeername(ctx, 0);
}

SEC("cgroup/getpeername6")
int sm_getpeername6(struct bpf_sock_addr* ctx) {
  return outbound_getpeername(ctx, 1);
}

SEC("sockops")
int sm_sockops(struct bpf_sock_ops* ctx) {
  return sockops(ctx);
}

SEC("sk_msg")
int sm_splice(struct sk_msg_md* msg) {
  return splice_msg(msg);
}

SEC("sk_msg")
int sm_probe_msg(struct sk_msg_md* msg) {
  return probe_msg(msg);
}

SEC("sk_lookup")
int sm_inbound(struct bpf_sk_lookup* ctx) {
  return inbound_lookup(ctx, inbound_netns_cookie);
}

char LICENSE[] SEC("license") = "GPL";
