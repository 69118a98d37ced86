/* The ABI between sockmesh's BPF programs and its C++ side: every map key and value,
 * and the constants both sides agree on. Only fixed-width types, fixed arrays and explicit
 * padding; fields in network byte order end in _be, ports without _be are host order.
 * The C++ side static_asserts the layout (loader/abi_check.cpp); a layout change bumps
 * the _vN suffix of the map that holds it, so an old pin is never reused.
 */
#ifndef SOCKMESH_ABI_H
#define SOCKMESH_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Map names (pinned as <pin-dir>/maps/<name>); at most 15 characters. */
#define SM_MAP_NETNS "sm_netns_v1"     /* netns cookie -> struct sm_workload */
#define SM_MAP_PORT "sm_port_v1"       /* struct sm_port_key -> __u8 (excluded ports) */
#define SM_MAP_CIDR "sm_cidr_v2"       /* LPM struct sm_cidr_key -> __u8 (CIDR rules) */
#define SM_MAP_ADDR "sm_addr_v1"       /* struct sm_addr -> netns cookie (who owns an address) */
#define SM_MAP_ORIGDST "sm_origdst_v2" /* struct sm_tuple -> struct sm_origdst (in flight) */
#define SM_MAP_SK "sm_sk_v2"           /* socket storage: struct sm_sk_state */
#define SM_MAP_LISTEN "sm_listen_v2"   /* sockhash: struct sm_listen_key -> inbound listener */
#define SM_MAP_SOCK "sm_sock_v2"       /* sockhash: struct sm_tuple -> socket (splice) */
#define SM_MAP_STATS "sm_stats_v3"     /* per-CPU array[1] of struct sm_stats */
#define SM_MAP_CONFIG "sm_config_v1"   /* array[1] of struct sm_config */

#define SM_SOL_IP 0
#define SM_SO_ORIGINAL_DST 80 /* linux/netfilter_ipv4.h */
#define SM_SOL_IPV6 41
#define SM_IP6T_SO_ORIGINAL_DST 80 /* linux/netfilter_ipv6/ip6_tables.h */

/* A socket's owner declares it safe to splice (it uses non-blocking I/O and never
 * splice(2), so tcp_bpf's receive path cannot surprise it):
 *   int one = 1; setsockopt(fd, SM_SOL_SOCKMESH, SM_SO_SPLICE_SAFE, &one, sizeof one);
 * The cgroup/setsockopt program records it in the socket's storage; a listener passes it
 * on to every socket it accepts. sockmesh-proxy declares its listeners and upstream
 * sockets. Without sockmesh the call fails with ENOPROTOOPT, which callers ignore. */
#define SM_SOL_SOCKMESH 0x534d /* "SM": a level no protocol uses */
#define SM_SO_SPLICE_SAFE 1
#define SM_LOOPBACK_NET 127 /* first octet of 127.0.0.0/8 */

/* Limits of the maps (max_entries). */
#define SM_MAX_WORKLOADS 4096
#define SM_MAX_PORT_RULES 16384
#define SM_MAX_CIDR_RULES 16384
#define SM_MAX_INFLIGHT 65536
#define SM_MAX_SPLICED 131072
#define SM_MAX_ADDRS 16384

/* struct sm_workload.flags */
#define SM_WL_INCLUDE_CIDRS 0x1 /* only destinations inside an include CIDR are redirected */
#define SM_WL_SPLICE_APP 0x2    /* enroll --splice-app: the app's own sockets may be spliced */
/* enroll --fail-open: when nothing listens on the sidecar's outbound port (127.0.0.1 or
 * [::1] of the workload's netns), a connect goes to its original destination instead of
 * being refused. Without it a workload fails closed, as Istio's iptables REDIRECT. */
#define SM_WL_FAIL_OPEN 0x4

/* Settings of one enrolled network namespace (a pod). */
struct sm_workload {
  __u16 outbound_port; /* the sidecar's outbound listener, e.g. 15001 */
  __u16 inbound_port;  /* the sidecar's inbound listener, e.g. 15006 */
  __u32 proxy_uid;     /* connects by this uid or gid are never redirected */
  __u32 proxy_gid;
  __u32 flags;     /* SM_WL_* */
  __u64 netns_ino; /* nsfs inode, for humans (`ls -lL /proc/PID/ns/net`); unused by BPF */
};

#define SM_DIR_OUTBOUND 1
#define SM_DIR_INBOUND 2

/* An excluded port of one workload in one direction. */
struct sm_port_key {
  __u64 netns_cookie;
  __u16 port;
  __u8 direction; /* SM_DIR_* */
  __u8 pad[5];
};

/* An IPv4 or IPv6 address, network order. IPv4 is held v4-mapped (::ffff:a.b.c.d), as
 * the kernel shows it to AF_INET6 sockets, so both families share every key. */
struct sm_addr {
  __u32 be32[4];
};

#define SM_CIDR_EXCLUDE 1
#define SM_CIDR_INCLUDE 2
/* LPM trie key: kind and netns cookie are always matched in full (96 bits), so
 * prefixlen = SM_CIDR_FIXED_BITS + the CIDR's prefix length in the 128-bit v4-mapped
 * form (an IPv4 /24 is 96 + 96 + 24). */
#define SM_CIDR_FIXED_BITS 96
struct sm_cidr_key {
  __u32 prefixlen;
  __u32 kind; /* SM_CIDR_* */
  __u64 netns_cookie;
  struct sm_addr addr;
};

/* A TCP connection as seen from one of its sockets. netns_cookie is set only for
 * loopback tuples (127.0.0.0/8, ::1), which repeat in every network namespace; other
 * addresses are unique on the host (sm_addr_v1 says which netns owns each, and only the
 * owner may insert a key with it as the local address), so sockets in two namespaces can
 * find each other and no namespace can pose as another. */
struct sm_tuple {
  __u64 netns_cookie;
  struct sm_addr local;
  struct sm_addr remote;
  __u16 local_port;
  __u16 remote_port;
  __u32 pad;
};

struct sm_origdst {
  struct sm_addr addr;
  __u16 port_be;
  __u16 pad;
};

/* struct sm_sk_state.flags */
#define SM_SK_REDIRECTED 0x1 /* client socket whose connect was rewritten to the sidecar */
#define SM_SK_ORIGDST 0x2    /* socket accepted by the sidecar: answers SO_ORIGINAL_DST */
#define SM_SK_SPLICE_SAFE                                        \
  0x4 /* its owner declared it (SM_SO_SPLICE_SAFE); a listener's \
       * declaration is cloned into the sockets it accepts */

/* Per-socket storage (dies with the socket, so nothing to clean up). */
struct sm_sk_state {
  struct sm_origdst dst;
  __u32 flags;
};

/* The inbound listener of a workload, per address family (a dual-stack listener is
 * registered as AF_INET6 and also serves IPv4 connections). */
struct sm_listen_key {
  __u64 netns_cookie;
  __u32 family; /* SM_AF_INET, SM_AF_INET6 */
  __u32 pad;
};

/* Counters, one struct per CPU; readers sum over CPUs. */
struct sm_stats {
  __u64 connect_redirected;  /* connects rewritten to the sidecar */
  __u64 origdst_recorded;    /* accepted sockets given their original destination */
  __u64 origdst_answered;    /* SO_ORIGINAL_DST answered from sockmesh */
  __u64 origdst_missing;     /* sidecar accepted on its outbound port with no record */
  __u64 inflight_full;       /* sm_origdst_v1 full: a connect went unrecorded */
  __u64 inbound_steered;     /* sk_lookup assigned the inbound listener */
  __u64 inbound_no_listener; /* steering wanted, no listener: refused (fail closed) */
  __u64 splice_msgs;         /* sk_msg sends redirected into the peer socket */
  __u64 splice_bytes;
  __u64 splice_miss;   /* sends with no local peer: normal TCP */
  __u64 sock_inserted; /* established sockets put in sm_sock_v2 */
  __u64 sock_insert_fail;
  __u64 sock_not_safe;  /* established sockets left out: splicing them is not safe */
  __u64 sock_not_owner; /* left out: the local address belongs to another netns, or the
                         * remote one to no enrolled netns (a peer outside the mesh) */
  __u64 origdst_v6;     /* connects to native IPv6 destinations rewritten to [::1] */
  __u64 fail_open;      /* --fail-open workloads: connects left direct, no sidecar listening */
};

/* struct sm_config.flags */
#define SM_CFG_SPLICE 0x1 /* sockops inserts into sm_sock_v2, sk_msg redirects */
/* install found this kernel safe for app sockets (a blocking recv() on a socket in a
 * sockhash waits like plain TCP, and splice(2) sees redirected bytes): every workload's
 * app sockets are spliced, not only those enrolled with --splice-app. */
#define SM_CFG_APP_SPLICE_SAFE 0x2

struct sm_config {
  __u32 flags;
  __u32 pad;
};

#endif /* SOCKMESH_ABI_H */
