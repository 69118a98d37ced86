#!/usr/bin/python3
"""unit.MeshBench.PerfSplit: bench/mesh/perfsplit.py puts each perf sample in the bucket its
call chain says, and parses `perf script -F comm,tid,ip,sym,dso` output."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                "bench", "mesh"))
import perfsplit as P  # noqa: E402


def k(*syms):
    return [(s, True) for s in syms]


SCRIPT = """sockmesh-proxy  2075 
\tffffffff8207d082 tcp_ack ([kernel.kallsyms])
\tffffffff82080d74 tcp_rcv_established ([kernel.kallsyms])
\tffffffff81eba2ce net_rx_action ([kernel.kallsyms])
\tffffffff81369a94 __local_bh_enable_ip ([kernel.kallsyms])
\tffffffff8206e6e0 tcp_sendmsg_locked ([kernel.kallsyms])
\tffffffff8206f1ab tcp_sendmsg ([kernel.kallsyms])
\tffffffff81ba397d io_sendmsg ([kernel.kallsyms])
\tffffffff8225bc41 do_syscall_64 ([kernel.kallsyms])
\t            29f7 [unknown] (/usr/lib/x86_64-linux-gnu/liburing.so.2.3)

sockmesh-proxy  2074 
\t          118aea sm::http::HeadParser::note_connection (/tmp/sm-m1/sockmesh-proxy)
\t6d61657274736e77 [unknown] ([unknown])

nginx  2001 
\tffffffff820700b1 tcp_recvmsg_locked ([kernel.kallsyms])
\tffffffff82071a3f tcp_recvmsg ([kernel.kallsyms])

sockmesh-proxy  2074 
\tffffffff81b8678c io_cqring_wait ([kernel.kallsyms])
\tffffffff81b88681 __do_sys_io_uring_enter ([kernel.kallsyms])
"""


class PerfSplit(unittest.TestCase):
    def test_user_space_leaf_is_its_own_code(self):
        self.assertEqual(P.classify([("main", False)] + k("do_syscall_64")), "user")

    def test_receive_processing_under_a_send_is_the_peers(self):
        self.assertEqual(P.classify(k("tcp_v4_rcv", "net_rx_action", "__local_bh_enable_ip",
                                      "tcp_sendmsg", "io_sendmsg")), "peer_rx")

    def test_receive_processing_under_a_recv_is_its_receive(self):
        self.assertEqual(P.classify(k("tcp_v4_rcv", "net_rx_action", "tcp_cleanup_rbuf",
                                      "tcp_recvmsg", "io_recv")), "recv")

    def test_the_innermost_call_above_the_softirq_decides(self):
        # A send issued from inside a receive's task work: the send ran the softirq.
        self.assertEqual(P.classify(k("tcp_v4_rcv", "net_rx_action", "tcp_sendmsg",
                                      "io_sendmsg", "io_recv")), "peer_rx")

    def test_a_send_without_softirq_is_its_own_transmit(self):
        self.assertEqual(P.classify(k("tcp_write_xmit", "tcp_sendmsg_locked", "tcp_sendmsg")),
                         "own_tx")
        self.assertEqual(P.classify(k("sk_msg_alloc", "tcp_bpf_sendmsg")), "own_tx")

    def test_softirq_that_interrupted_something_else(self):
        self.assertEqual(P.classify(k("tcp_v4_rcv", "net_rx_action", "irq_exit_rcu")), "softirq")

    def test_wait_setup_io_other(self):
        self.assertEqual(P.classify(k("finish_task_switch.isra.0", "schedule", "io_cqring_wait")),
                         "wait")
        self.assertEqual(P.classify(k("inet_csk_accept", "inet_accept", "do_accept")), "setup")
        self.assertEqual(P.classify(k("fget", "io_submit_sqes", "__do_sys_io_uring_enter")), "io")
        self.assertEqual(P.classify(k("memcpy")), "other")
        self.assertEqual(P.classify([]), "other")

    def test_parse_and_split(self):
        samples = list(P.parse(SCRIPT))
        self.assertEqual([c for c, _ in samples], ["sockmesh-proxy"] * 2 + ["nginx", "sockmesh-proxy"])
        self.assertEqual(samples[0][1][0], ("tcp_ack", True))
        self.assertEqual(samples[0][1][-1], ("[unknown]", False))
        self.assertEqual(samples[1][1][0], ("sm::http::HeadParser::note_connection", False))
        shares, n = P.split(SCRIPT, "sockmesh-proxy")
        self.assertEqual(n, 3)
        self.assertAlmostEqual(shares["peer_rx"], 100 / 3)
        self.assertAlmostEqual(shares["user"], 100 / 3)
        self.assertAlmostEqual(shares["wait"], 100 / 3)
        self.assertAlmostEqual(sum(shares.values()), 100)
        self.assertEqual(P.split(SCRIPT, "wrk"), (dict.fromkeys(P.BUCKETS, 0.0), 0))
        self.assertIn("| its peers' TCP receive, run inside its sends (softirq) | 33.3% |",
                      P.table(shares, n, "sockmesh-proxy"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
