#!/usr/bin/python3
"""Control-plane scale measurement (a benchmark, not a test): sockmesh-proxy fed by the
project's Consul double with N services x M instances, on loopback only.

Measures: time to the first complete table, rebuild time per change, propagation under a
steady rate of catalog changes, proxy RSS, and what one connection per watch costs.
Propagation is reported in two parts, which add up to "write in Consul -> table in use":
  delivery  Consul write -> the blocked query carrying it answered (measured in the double)
  proxy     that answer received -> the table built from it published (the proxy's own
            consul_propagation_ms, per change, from its debug log)

usage: bench/control/run.py [--build-dir build] [--services 1000] [--instances 10]
                            [--rate 10] [--duration 30]
Instance addresses are data only (198.18.0.0/15, never dialled).
"""
import argparse
import http.client
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def address(i):
    return "198.%d.%d.%d" % (18 + i // 62500, (i // 250) % 250, i % 250 + 1)


def quantile(values, q):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class Http:
    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(self, method, path, body=None):
        for _ in range(2):
            try:
                self.conn.request(method, path, body=body)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (ConnectionError, http.client.HTTPException):
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        raise RuntimeError("%s %s failed" % (method, path))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--instances", type=int, default=10)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--perf", metavar="FILE", help="perf record -g the proxy during the churn")
    args = ap.parse_args()
    proxy_bin = os.path.join(os.path.abspath(args.build_dir), "bin", "sockmesh-proxy")
    tmp = tempfile.mkdtemp(prefix="sm-bench-control-")
    procs = []

    def cleanup(*_):
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        subprocess.call(["rm", "-rf", tmp])

    signal.signal(signal.SIGTERM, lambda *a: (cleanup(), sys.exit(1)))
    try:
        consul_port = free_port()
        dbl = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests/consul/consul_double.py"),
                                "--port", str(consul_port)],
                               stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "double.log"), "w"))
        procs.append(dbl)
        consul = Http(consul_port)
        for _ in range(200):
            try:
                if consul.request("GET", "/v1/status/leader")[0] == 200:
                    break
            except Exception:
                time.sleep(0.05)
        # The catalog: N services x M instances, each instance on its own node.
        regs, i = [], 0
        for s in range(args.services):
            for m in range(args.instances):
                a = address(i)
                regs.append({"Node": "node-%d" % i, "Address": a,
                             "Service": {"ID": "svc%d-%d" % (s, m), "Service": "svc%d" % s, "Address": a,
                                         "Port": 9080, "Meta": {"version": "v%d" % (m % 3 + 1)}}})
                i += 1
        for k in range(0, len(regs), 2000):
            consul.request("POST", "/_double/bulk", json.dumps(regs[k:k + 2000]))

        admin = free_port()
        log_path = os.path.join(tmp, "proxy.log")
        t0 = time.monotonic()
        proxy = subprocess.Popen([proxy_bin, "--workers", "1", "--admin-port", str(admin),
                                  "--outbound-port", str(free_port()), "--inbound-port", str(free_port()),
                                  "--consul", "http://127.0.0.1:%d" % consul_port, "-v"],
                                 stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))
        procs.append(proxy)
        first_ms, first_line = None, ""
        while time.monotonic() - t0 < 120:
            with open(log_path) as f:
                for line in f:
                    if "first table from Consul" in line:
                        first_line = line.strip()
            if first_line:
                first_ms = (time.monotonic() - t0) * 1000
                break
            time.sleep(0.01)
        if not first_line:
            print("no first table within 120 s; proxy log:\n" + open(log_path).read()[-3000:])
            return 1
        time.sleep(1.0)
        rss_first = rss_mib(proxy.pid)
        adm = Http(admin)
        status, _ = adm.request("GET", "/ready")

        # Churn: a steady rate of changes, each adding or removing an extra instance of a
        # random service (both are one catalog write, one blocking query answered).
        consul.request("GET", "/_double/stats?reset")
        log_mark = os.path.getsize(log_path)
        if args.perf:
            procs.append(subprocess.Popen(["perf", "record", "-g", "-o", args.perf, "-p", str(proxy.pid),
                                           "--", "sleep", str(args.duration)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        extra = set()
        changes, period = 0, 1.0 / args.rate
        start = time.monotonic()
        rng = random.Random(7)
        while time.monotonic() - start < args.duration:
            s = rng.randrange(args.services)
            if s in extra:
                consul.request("PUT", "/v1/catalog/deregister",
                               json.dumps({"Node": "extra-%d" % s, "ServiceID": "svc%d-extra" % s}))
                extra.discard(s)
            else:
                a = address(args.services * args.instances + s)
                consul.request("PUT", "/v1/catalog/register", json.dumps(
                    {"Node": "extra-%d" % s, "Address": a,
                     "Service": {"ID": "svc%d-extra" % s, "Service": "svc%d" % s, "Address": a, "Port": 9080,
                                 "Meta": {"version": "v1"}}}))
                extra.add(s)
            changes += 1
            next_at = start + changes * period
            time.sleep(max(0.0, next_at - time.monotonic()))
        time.sleep(2.0)
        rss_end = rss_mib(proxy.pid)
        _, dstats = consul.request("GET", "/_double/stats")
        dstats = json.loads(dstats)
        fds = len(os.listdir("/proc/%d/fd" % proxy.pid))
        conns = subprocess.run(["ss", "-Htn", "state", "established", "dst", "127.0.0.1:%d" % consul_port],
                               capture_output=True, text=True).stdout.count("\n")
        _, stats = adm.request("GET", "/stats")
        stats = stats.decode()

        rebuild_us, waits_us, publishes = [], [], 0
        with open(log_path) as f:
            f.seek(log_mark)
            for line in f:
                m = re.search(r"built in (\d+) us; changes waited ([\d,-]+) us", line)
                if not m:
                    continue
                publishes += 1
                rebuild_us.append(int(m.group(1)))
                if m.group(2) != "-":
                    waits_us += [int(x) for x in m.group(2).split(",")]
        proxy_stats = [l for l in stats.splitlines() if l.startswith("control_plane.")]

        cpu = open("/proc/cpuinfo").read().count("processor\t:")
        print("== control plane scale: %d services x %d instances (%d endpoints), %d CPUs"
              % (args.services, args.instances, args.services * args.instances, cpu))
        print("first table: %.0f ms after the proxy started (external; /ready %d)" % (first_ms, status))
        print("  proxy's own line: %s" % first_line.split(" info ", 1)[-1])
        print("churn: %d changes in %.0f s (%.1f/s): %d tables published"
              % (changes, args.duration, changes / args.duration, publishes))
        print("rebuild (translate + build + publish) per new table: p50 %.1f ms, p99 %.1f ms, max %.1f ms"
              % (quantile(rebuild_us, 0.5) / 1000, quantile(rebuild_us, 0.99) / 1000, max(rebuild_us or [0]) / 1000))
        d = dstats["delivery_ms"]
        print("propagation, Consul write -> blocked query answered (double): p50 %s ms, p99 %s ms, max %s ms (n=%d)"
              % (d["p50"], d["p99"], d["max"], d["count"]))
        print("propagation, answer received -> table published (proxy): p50 %.1f ms, p99 %.1f ms, max %.1f ms (n=%d)"
              % (quantile(waits_us, 0.5) / 1000, quantile(waits_us, 0.99) / 1000, max(waits_us or [0]) / 1000,
                 len(waits_us)))
        print("propagation end to end (sum of the two p99s, an upper bound): %.1f ms"
              % ((d["p99"] or 0) + quantile(waits_us, 0.99) / 1000))
        print("proxy RSS: %.1f MiB after the first table, %.1f MiB after the churn" % (rss_first, rss_end))
        print("one connection per watch: %d watches -> %d established connections to Consul, %d proxy fds; "
              "the double held up to %d blocked queries (one thread each)"
              % (args.services + 1, conns, fds, dstats["max_blocked"]))
        for l in proxy_stats:
            print("  " + l)
        return 0
    finally:
        cleanup()


if __name__ == "__main__":
    sys.exit(main())
