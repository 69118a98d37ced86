#!/usr/bin/env python3
"""Where a sidecar's CPU time goes, from `perf script` call chains (perf record -g).

Every sample of the sidecar's process is put in exactly one bucket, by its call chain:

  user          the proxy's own code and its libraries (the leaf is in user space)
  peer_rx       the receiver's TCP/IP receive processing (softirq) that a send runs in the
                sender's context: on loopback and veth a send delivers the packet at once,
                so the sidecar pays for its peers' receive path (and their wake-up)
  own_tx        its own send path (TCP transmit, IP, the device), without the above
  recv          its receives: copying out, the TCP receive queue, the ACKs a read sends
                (and the receive processing those run, if any)
  wait          waiting for work and scheduling (io_uring wait, epoll_wait, schedule)
  io            other syscalls (open, stat, ...) and io_uring / syscall bookkeeping
  softirq       receive processing that interrupted something else (not under a send)
  setup         accept, connect, close
  other         any other kernel code

  perfsplit.py PERF_SCRIPT_OUTPUT      prints the buckets as shares of the samples
"""
import sys

SEND = ("tcp_sendmsg", "tcp_bpf_sendmsg", "tcp_sendmsg_locked", "____sys_sendmsg",
        "__sys_sendto", "sock_sendmsg", "sock_write_iter", "do_writev", "io_send", "io_sendmsg",
        "tcp_splice_read", "do_splice")
RECV = ("tcp_recvmsg", "tcp_bpf_recvmsg", "tcp_bpf_recvmsg_parser", "tcp_recvmsg_locked",
        "sock_recvmsg", "____sys_recvmsg", "__sys_recvfrom", "sock_read_iter", "io_recv",
        "io_recvmsg")
RX = ("net_rx_action", "process_backlog", "__netif_receive_skb_one_core")
WAIT = ("io_cqring_wait", "schedule", "__schedule", "finish_task_switch.isra.0",
        "finish_task_switch", "do_epoll_wait", "ep_poll", "schedule_hrtimeout_range",
        "schedule_hrtimeout_range_clock", "do_nanosleep", "futex_wait")
SETUP = ("inet_accept", "do_accept", "io_accept", "__sys_accept4", "tcp_v4_connect",
         "tcp_v6_connect", "inet_stream_connect", "__sys_connect", "io_connect", "tcp_close",
         "__fput", "io_close", "inet_release")
IO = ("__do_sys_io_uring_enter", "io_submit_sqes", "io_uring_enter", "do_syscall_64",
      "__x64_sys_epoll_ctl", "do_epoll_ctl")

BUCKETS = ("user", "peer_rx", "own_tx", "recv", "wait", "io", "softirq", "setup", "other")
LABELS = {
    "user": "its own code and libraries (user space)",
    "peer_rx": "its peers' TCP receive, run inside its sends (softirq)",
    "own_tx": "its own send path (TCP transmit, IP, device)",
    "recv": "its receives (copy out, receive queue, ACKs)",
    "wait": "waiting and scheduling",
    "io": "other syscalls, io_uring / syscall bookkeeping",
    "softirq": "receive processing that interrupted it (not under a send)",
    "setup": "accept, connect, close",
    "other": "other kernel code",
}


def classify(frames):
    """frames: (symbol, in_kernel) from the leaf outwards. Returns one of BUCKETS."""
    if not frames:
        return "other"
    if not frames[0][1]:
        return "user"
    syms = [s for s, k in frames if k]
    names = set(syms)
    in_send = bool(names.intersection(SEND))
    in_recv = bool(names.intersection(RECV))
    in_rx = bool(names.intersection(RX))
    if in_rx:
        # Which call ran the softirq: the innermost send or receive above it.
        rx_at = min(i for i, s in enumerate(syms) if s in RX)
        above = syms[rx_at + 1:]
        for s in above:
            if s in SEND:
                return "peer_rx"
            if s in RECV:
                return "recv"
        return "softirq"
    if in_send:
        return "own_tx"
    if in_recv:
        return "recv"
    if names.intersection(SETUP):
        return "setup"
    if names.intersection(WAIT):
        return "wait"
    if names.intersection(IO):
        return "io"
    return "other"


def parse(text, comm=None):
    """Samples of `perf script -F comm,tid,ip,sym,dso` output: a header line (comm tid),
    then one indented frame per line (`ip sym (dso)`), a blank line between samples.
    Yields (comm, frames)."""
    cur_comm, frames = None, []
    for line in text.splitlines():
        if not line.strip():
            if cur_comm is not None:
                yield cur_comm, frames
            cur_comm, frames = None, []
            continue
        if not line[0].isspace():
            if cur_comm is not None:
                yield cur_comm, frames
            cur_comm = line.split()[0] if line.split() else ""
            frames = []
            continue
        parts = line.strip().split(None, 1)
        if len(parts) < 2:
            continue
        rest = parts[1]
        dso = rest[rest.rfind("(") + 1:rest.rfind(")")] if rest.endswith(")") else ""
        sym = rest[:rest.rfind("(")].strip() if "(" in rest else rest
        sym = sym.split("+0x")[0]
        frames.append((sym, dso == "[kernel.kallsyms]" or dso.startswith("[kernel")))
    if cur_comm is not None:
        yield cur_comm, frames


def split(text, comm):
    """Shares (percent) of COMM's samples per bucket, and the sample count."""
    counts = dict.fromkeys(BUCKETS, 0)
    n = 0
    for c, frames in parse(text):
        if c != comm:
            continue
        counts[classify(frames)] += 1
        n += 1
    return {b: (100.0 * v / n if n else 0.0) for b, v in counts.items()}, n


def table(shares, n, comm):
    out = [f"# where {comm}'s time goes ({n} samples, perf record -g)", "",
           "| bucket | share |", "|---|---|"]
    for b in BUCKETS:
        out.append(f"| {LABELS[b]} | {shares[b]:.1f}% |")
    return "\n".join(out)


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], errors="replace") as f:
        shares, n = split(f.read(), argv[2])
    print(table(shares, n, argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
