#!/usr/bin/python3
"""The whole-mesh bench (issue 11): interception x sidecar, side by side, in one run.

  bench/mesh/mesh.py [--build DIR] [--out DIR] [--quick] [--reps N] [--seconds S]
                     [--scenarios a,b] [--topologies A,B] [--workloads a,b] [--pin]
                     [--profile]

Root only. Everything it creates is named sm-m<pid>-* (netns, veths, a cgroup v2 group,
a bpffs pin dir, /tmp scratch) and uses 198.18.0.0/15; all of it, and every process it
started (by pid), goes again on exit, an error, SIGINT or SIGTERM.

Network: five namespace pairs, each an app netns (the client: wrk, uid 1000; an outbound
sidecar, uid 1337) and a server netns (nginx, one worker, 100-byte body and a 1 MiB file;
in topology B an inbound sidecar, uid 1337) joined by one veth:
  direct        nothing enrolled                          (scenario direct, both topologies)
  ipt-A, ipt-B  sockmesh-loader enroll --mode iptables    (Istio proxy_init rules)
  ebpf-A/B      sockmesh-loader install (own cgroup and pin dir) + enroll
In A only the app netns is enrolled; in B both are, and the server's inbound sidecar gets
the connections (iptables PREROUTING REDIRECT / sk_lookup) and forwards them from
127.0.0.6 as Istio does. eBPF scenarios run every process in the install's cgroup; the
others in a plain sibling cgroup. Splicing is switched per scenario with `splice on|off`.

Per cell (scenario x topology x workload x repetition) wrk runs with latency.lua (p50, p99
and p99.9 from wrk's per-request histogram); /proc gives the CPU time of the client (wait4
rusage), the server and each sidecar (utime+stime over every thread and child process),
the sidecars' RSS, and the whole machine's busy time (what other work on the host used).
Repetitions rotate the scenario order so drifting load falls on every scenario alike.
Writes OUT/results.json; report.py turns it into results.md and chart.svg.
"""
import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perfsplit  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CLIENT_UID = 1000
PROXY_UID = 1337
CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count()

# name: (interception, outbound/inbound sidecar kind, splice, label)
SCENARIOS = {
    "direct": ("none", None, False, "direct (no mesh)"),
    "ipt-haproxy": ("iptables", "haproxy", False, "iptables + HAProxy"),
    "ipt-nginx": ("iptables", "nginx", False, "iptables + nginx"),
    "ipt-sockmesh": ("iptables", "sockmesh", False, "iptables + sockmesh-proxy"),
    "ebpf-nosplice": ("ebpf", "sockmesh", False, "eBPF, no splice + sockmesh-proxy"),
    "ebpf-splice": ("ebpf", "sockmesh", True, "eBPF + splice (default) + sockmesh-proxy"),
    "ebpf-haproxy": ("ebpf", "haproxy-odst", True, "eBPF + splice + HAProxy (orig. dst)"),
}
# Not in the default run: scenario 2 with scenario 7's HAProxy config, for an
# apples-to-apples look at what the original-destination server costs HAProxy.
EXTRA_SCENARIOS = {
    "ipt-haproxy-odst": ("iptables", "haproxy-odst", False, "iptables + HAProxy (orig. dst)"),
    # The opt-in that splices the app's own sockets too (enroll --splice-app): safe for wrk
    # and nginx (non-blocking, no splice(2)), not the default on this kernel.
    "ebpf-splice-app": ("ebpf-app", "sockmesh", True, "eBPF + splice incl. app sockets (opt-in)"),
    # Scenario 6 with the sidecar on its epoll loop (--event-loop epoll) instead of io_uring.
    "ebpf-splice-epoll": ("ebpf", "sockmesh-epoll", True, "eBPF + splice + sockmesh-proxy (epoll loop)"),
}
# name: (wrk connections, path, one connection per request)
WORKLOADS = {
    "ka-c1": (1, "/", False),
    "ka-c16": (16, "/", False),
    "ka-c256": (256, "/", False),
    "newconn-c16": (16, "/", True),
    "1mib-c4": (4, "/1m", False),
}
TOPOLOGIES = {"A": "client-side sidecar only", "B": "sidecars on both sides"}
BODY = b"x" * 99 + b"\n"  # the 100-byte body
BIG = 1 << 20


class Failure(Exception):
    pass


def log(msg):
    print(f"  [{time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


T0 = time.monotonic()


def run(argv, check=True, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise Failure(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip() or r.stdout.strip()}")
    return r


def cgroup2_root():
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if parts[2] == "cgroup2":
                return parts[1]
    raise Failure("no cgroup v2 mount in /proc/mounts")


# ---- /proc --------------------------------------------------------------------------------
def tree(pid):
    """pid and every descendant (nginx master and workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def cpu_ticks(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total


def rss_kb(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def busy_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---- the bench ----------------------------------------------------------------------------
class Mesh:
    def __init__(self, args):
        self.args = args
        self.tag = f"sm-m{os.getpid()}"
        self.build = os.path.realpath(args.build)
        self.loader = os.path.join(self.build, "bin", "sockmesh-loader")
        self.procs = {}  # pid -> Popen, everything we started and have not reaped
        self.netns = []
        self.cgroups = []
        self.pin_dir = None
        self.tmp = None
        self.pairs = {}
        self.skipped = {}

    # ---- processes --------------------------------------------------------------------------
    def spawn(self, ns, argv, uid=None, cgroup=None, cpus=None, out=None, env=None):
        pre = ["ip", "netns", "exec", ns]
        if uid is not None:
            pre += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]

        def child():
            if cgroup:
                with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
            if cpus is not None:
                os.sched_setaffinity(0, cpus)

        f = open(out, "ab") if out else subprocess.DEVNULL
        try:
            p = subprocess.Popen(pre + argv, stdout=f, stderr=subprocess.STDOUT if out else subprocess.DEVNULL,
                                 stdin=subprocess.DEVNULL, preexec_fn=child, start_new_session=True,
                                 env=env)
        finally:
            if out:
                f.close()
        self.procs[p.pid] = p
        return p

    def reap(self, p):
        """wait4 (rusage) and forget."""
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        self.procs.pop(p.pid, None)
        return p.returncode, ru

    def stop(self, p, grace=3.0):
        if p.pid not in self.procs:
            return
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        except ProcessLookupError:
            p.wait()
        self.procs.pop(p.pid, None)

    def in_ns(self, ns, argv, uid=None, cgroup=None, timeout=10):
        p = self.spawn(ns, argv, uid=uid, cgroup=cgroup, out=os.path.join(self.tmp, "cmd.out"))
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop(p)
            return 124, ""
        self.procs.pop(p.pid, None)
        with open(os.path.join(self.tmp, "cmd.out")) as f:
            text = f.read()
        os.unlink(os.path.join(self.tmp, "cmd.out"))
        return p.returncode, text

    # ---- setup --------------------------------------------------------------------------------
    def setup(self):
        self.tmp = tempfile.mkdtemp(prefix=self.tag + "-")
        os.chmod(self.tmp, 0o755)
        for d in ("logs", "conf", "www"):
            os.makedirs(os.path.join(self.tmp, d))
        os.chmod(os.path.join(self.tmp, "logs"), 0o777)
        shutil.copy(os.path.join(REPO, "bench", "proxy", "conns.py"), self.tmp)
        shutil.copy(os.path.join(HERE, "latency.lua"), self.tmp)
        # One binary for the whole run, whatever rebuilds the shared build dir meanwhile.
        self.proxy = os.path.join(self.tmp, "sockmesh-proxy")
        shutil.copy(os.path.join(self.build, "bin", "sockmesh-proxy"), self.proxy)
        with open(os.path.join(self.tmp, "www", "index.html"), "wb") as f:
            f.write(BODY)
        with open(os.path.join(self.tmp, "www", "1m"), "wb") as f:
            f.write(os.urandom(BIG))
        for p in ("index.html", "1m"):
            os.chmod(os.path.join(self.tmp, "www", p), 0o644)
        os.chmod(os.path.join(self.tmp, "www"), 0o755)

        cg2 = cgroup2_root()
        self.cg_plain = os.path.join(cg2, self.tag + "-plain")
        self.cg_ebpf = os.path.join(cg2, self.tag + "-ebpf")
        for cg in (self.cg_plain, self.cg_ebpf):
            os.mkdir(cg)
            self.cgroups.append(cg)
        self.pin_dir = f"/sys/fs/bpf/{self.tag}"
        run([self.loader, "install", "--cgroup", self.cg_ebpf, "--pin-dir", self.pin_dir])

        names = ["direct", "ipt-A", "ipt-B", "ebpf-A", "ebpf-B", "ebpfapp-A", "ebpfapp-B"]
        for k, name in enumerate(names):
            app, srv = f"{self.tag}-{name}-app", f"{self.tag}-{name}-srv"
            app_ip, srv_ip = f"198.18.0.{4 * k + 1}", f"198.18.0.{4 * k + 2}"
            for ns in (app, srv):
                run(["ip", "netns", "add", ns])
                self.netns.append(ns)
                run(["ip", "-n", ns, "link", "set", "lo", "up"])
                # Many short connections: no port or TIME_WAIT exhaustion in any netns. The
                # range starts above the sidecar ports (15000-15006) and 8080: an ephemeral
                # port 15006 taken by a connection made the next sidecar's bind fail.
                run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w",
                     "net.ipv4.ip_local_port_range=16000 65000", "net.ipv4.tcp_tw_reuse=1"])
            va, vs = f"sm-m{os.getpid() % 100000}{k}a", f"sm-m{os.getpid() % 100000}{k}s"
            run(["ip", "link", "add", va, "type", "veth", "peer", "name", vs])
            run(["ip", "link", "set", va, "netns", app])
            run(["ip", "link", "set", vs, "netns", srv])
            run(["ip", "-n", app, "addr", "add", f"{app_ip}/30", "dev", va])
            run(["ip", "-n", srv, "addr", "add", f"{srv_ip}/30", "dev", vs])
            run(["ip", "-n", app, "link", "set", va, "up"])
            run(["ip", "-n", srv, "link", "set", vs, "up"])
            mode = name.split("-")[0]
            topo = name.split("-")[1] if "-" in name else None
            enrolled = [app] + ([srv] if topo == "B" else [])
            for ns in enrolled:
                if mode == "ipt":
                    run([self.loader, "enroll", "--mode", "iptables", "--netns", f"/run/netns/{ns}",
                         "--proxy-uid", str(PROXY_UID)])
                elif mode in ("ebpf", "ebpfapp"):
                    run([self.loader, "enroll", "--netns", f"/run/netns/{ns}", "--pin-dir",
                         self.pin_dir, "--proxy-uid", str(PROXY_UID)] +
                        (["--splice-app"] if mode == "ebpfapp" else []))
            if mode == "ipt":
                # conntrack's TIME_WAIT entries (120 s) of new-connection runs would pile up
                # in the global table; a per-netns setting.
                for ns in enrolled + [srv]:
                    run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w",
                         "net.netfilter.nf_conntrack_tcp_timeout_time_wait=1"], check=False)
            pair = {"name": name, "app": app, "srv": srv, "app_ip": app_ip, "srv_ip": srv_ip,
                    "cgroup": self.cg_ebpf if mode.startswith("ebpf") else self.cg_plain}
            self.pairs[name] = pair
            self.write_configs(pair)
            self.start_backend(pair)

    def write_configs(self, pair):
        d = os.path.join(self.tmp, "conf", pair["name"])
        os.makedirs(d)
        os.chmod(d, 0o755)
        srv_ip = pair["srv_ip"]
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        temps = "".join(f"  {t}_temp_path {self.tmp}/logs/{pair['name']}-{{who}}-{t};\n"
                        for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        with open(os.path.join(d, "backend.conf"), "w") as f:
            f.write(f"""daemon off;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {self.tmp}/logs/{pair['name']}-backend.pid;
error_log {self.tmp}/logs/{pair['name']}-backend.error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 1000000000;
  keepalive_timeout 600s;
{temps.format(who="backend")}
  server {{
    listen {srv_ip}:8080 backlog=4096;
    root {self.tmp}/www;
    location = / {{ default_type text/plain; try_files /index.html =404; }}
    location = /1m {{ default_type application/octet-stream; }}
  }}
}}
""")
        with open(os.path.join(d, "routes.json"), "w") as f:
            json.dump({"virtual_hosts": [{"name": "backend", "domains": [srv_ip, f"{srv_ip}:8080"],
                                          "routes": [{"match": {"prefix": "/"},
                                                      "route": {"cluster": "backend"}}]}],
                       "clusters": [{"name": "backend",
                                     "endpoints": [{"address": srv_ip, "port": 8080}]}]}, f)
        for side, port, variant in (("out", 15001, ""), ("out", 15001, "-odst"), ("in", 15006, "")):
            # Outbound: the backend's address, as bench/proxy configures HAProxy (its best
            # case, the baseline), or (-odst) the original destination: HAProxy reads
            # SO_ORIGINAL_DST for a server at 0.0.0.0:0, what a transparent mesh sidecar
            # needs. Inbound: from 127.0.0.6 to the workload, as Istio's sidecar does
            # (sk_lookup and PREROUTING leave loopback-sourced connections alone).
            if side == "in":
                server = f"{srv_ip}:8080 source 127.0.0.6"
            elif variant:
                server = "0.0.0.0:0"
            else:
                server = f"{srv_ip}:8080"
            with open(os.path.join(d, f"haproxy{variant}-{side}.cfg"), "w") as f:
                f.write(f"""global
  nbthread 2
  maxconn 4000
  no strict-limits
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 600s
  timeout server 600s
  timeout http-keep-alive 600s
frontend {side}bound
  bind :{port}
  http-response set-header x-sidecar-{side} haproxy
  default_backend app
backend app
  server app {server}
""")
            if variant:
                continue
            bind = "  proxy_bind 127.0.0.6;\n" if side == "in" else ""
            with open(os.path.join(d, f"nginx-{side}.conf"), "w") as f:
                f.write(f"""daemon off;
worker_processes 2;
worker_rlimit_nofile {nofile};
pid {self.tmp}/logs/{pair['name']}-nginx-{side}.pid;
error_log {self.tmp}/logs/{pair['name']}-nginx-{side}.error.log warn;
events {{ worker_connections 4000; }}
http {{
  access_log off;
  keepalive_requests 1000000000;
  keepalive_timeout 600s;
{temps.format(who="nginx-" + side)}
  upstream app {{
    server {srv_ip}:8080;
    keepalive 64;
    keepalive_requests 1000000000;
    keepalive_timeout 600s;
  }}
  server {{
    listen {port} backlog=4096;
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection $http_connection;
{bind}      add_header x-sidecar-{side} nginx always;
    }}
  }}
}}
""")

    def start_backend(self, pair):
        conf = os.path.join(self.tmp, "conf", pair["name"], "backend.conf")
        p = self.spawn(pair["srv"], ["nginx", "-e", f"{self.tmp}/logs/{pair['name']}-backend.error.log",
                                     "-p", self.tmp, "-c", conf], cgroup=pair["cgroup"],
                       out=os.path.join(self.tmp, "logs", f"{pair['name']}-backend.log"))
        pair["backend"] = p
        # Listening is enough: a request from the app netns of a B pair would be steered to
        # an inbound sidecar that is not there yet.
        for _ in range(50):
            r = run(["ip", "netns", "exec", pair["srv"], "ss", "-Htln", "( sport = :8080 )"])
            if r.stdout.strip():
                return
            if p.poll() is not None:
                break
            time.sleep(0.1)
        raise Failure(f"backend in {pair['srv']} did not come up")

    # ---- sidecars ---------------------------------------------------------------------------
    def port_free(self, ns, port):
        for _ in range(50):
            r = run(["ip", "netns", "exec", ns, "ss", "-Htln", f"( sport = :{port} )"])
            if not r.stdout.strip():
                return
            time.sleep(0.1)
        raise Failure(f"port {port} in {ns} still taken")

    def start_sidecar(self, pair, kind, side, cpus):
        ns = pair["app"] if side == "out" else pair["srv"]
        port = 15001 if side == "out" else 15006
        self.port_free(ns, port)
        d = os.path.join(self.tmp, "conf", pair["name"])
        if kind.startswith("sockmesh"):
            self.port_free(ns, 15001 if side == "in" else 15006)
            argv = [self.proxy, "--workers", "2", "--config", f"{d}/routes.json"]
            if kind == "sockmesh-epoll":
                argv += ["--event-loop", "epoll"]
        elif kind in ("haproxy", "haproxy-odst"):
            cfg = f"{d}/{kind}-{side}.cfg" if side == "out" else f"{d}/haproxy-in.cfg"
            argv = ["haproxy", "-db", "-f", cfg]
        elif kind == "nginx":
            argv = ["nginx", "-e", f"{self.tmp}/logs/{pair['name']}-nginx-{side}.error.log",
                    "-p", self.tmp, "-c", f"{d}/nginx-{side}.conf"]
        else:
            raise Failure(f"unknown sidecar {kind}")
        logf = os.path.join(self.tmp, "logs", f"{pair['name']}-{kind}-{side}.log")
        p = self.spawn(ns, argv, uid=PROXY_UID, cgroup=pair["cgroup"], cpus=cpus, out=logf)
        for _ in range(50):
            r = run(["ip", "netns", "exec", ns, "ss", "-Htln", f"( sport = :{port} )"])
            if r.stdout.strip():
                return p
            if p.poll() is not None:
                break
            time.sleep(0.1)
        with open(logf, errors="replace") as f:
            tail = f.read()[-600:]
        self.stop(p)
        raise Failure(f"{kind} ({side}bound in {ns}) did not listen: {tail}")

    def sockmesh_stats(self, ns):
        rc, text = self.in_ns(ns, [sys.executable, f"{self.tmp}/conns.py", "get",
                                   "http://127.0.0.1:15000/stats"])
        out = {}
        if rc == 0:
            for line in text.splitlines():
                k, _, v = line.partition(":")
                try:
                    out[k.strip()] = int(v.strip())
                except ValueError:
                    pass
        return out

    def loader_counters(self):
        r = run([self.loader, "status", "--json", "--pin-dir", self.pin_dir], check=False)
        try:
            return json.loads(r.stdout).get("counters", {})
        except ValueError:
            return {}

    def verify(self, scn, topo, pair, kind):
        """One request through the path; the headers prove who answered."""
        url = f"http://{pair['srv_ip']}:8080/"
        head = ""
        for _ in range(30):
            rc, head = self.in_ns(pair["app"], [sys.executable, f"{self.tmp}/conns.py", "probe", url],
                                  uid=CLIENT_UID, cgroup=pair["cgroup"])
            if rc == 0:
                break
            time.sleep(0.1)
        else:
            raise Failure(f"{scn}/{topo}: no 2xx through the mesh: {head.strip()[-300:]}")
        lines = head.lower().splitlines()
        # nginx's own header, or sockmesh-proxy's in its place; the body is the backend's.
        server = "server: sockmesh" if kind and kind.startswith("sockmesh") else "server: nginx"
        if not any(line.startswith(server) for line in lines) or "content-length: 100" not in lines:
            raise Failure(f"{scn}/{topo}: not the backend's answer through {kind or 'no sidecar'}: {head}")
        want = []
        if kind in ("haproxy", "haproxy-odst", "nginx"):
            name = kind.split("-")[0]
            want.append(f"x-sidecar-out: {name}")
            if topo == "B":
                want.append(f"x-sidecar-in: {name}")
        for w in want:
            if w not in lines:
                raise Failure(f"{scn}/{topo}: response lacks '{w}': {head}")
        if kind is None and any(line.startswith("x-sidecar") for line in lines):
            raise Failure(f"{scn}/{topo}: the direct path went through a sidecar: {head}")

    # ---- one cell -----------------------------------------------------------------------------
    def cell(self, scn, topo, wl, rep, pair, sidecars):
        conns, path, close = WORKLOADS[wl]
        secs = self.args.seconds
        url = f"http://{pair['srv_ip']}:8080{path}"
        argv = ["wrk", "-t1", f"-c{conns}", f"-d{secs}s", "--timeout", "5s", "-s", f"{self.tmp}/latency.lua"]
        if close:
            argv += ["-H", "Connection: close"]
        argv.append(url)
        roles = {"server": tree(pair["backend"].pid)}
        for side, p in sidecars.items():
            roles[f"sidecar_{side}"] = tree(p.pid)
        t0 = {r: cpu_ticks(pids) for r, pids in roles.items()}
        y0 = busy_ticks()
        w0 = time.monotonic()
        out = os.path.join(self.tmp, "logs", "wrk.out")
        if os.path.exists(out):
            os.unlink(out)
        wrk = self.spawn(pair["app"], argv, uid=CLIENT_UID, cgroup=pair["cgroup"],
                         cpus=self.cpus("client"), out=out)
        place_out = os.path.join(self.tmp, "logs", "place.txt")
        place = subprocess.Popen(
            [sys.executable, os.path.join(REPO, "bench", "proxy", "placement.py"), place_out,
             f"client={wrk.pid}"] + [f"{r}={','.join(map(str, pids))}" for r, pids in roles.items()],
            start_new_session=True)
        self.procs[place.pid] = place
        rc, ru = self.reap(wrk)
        wall = time.monotonic() - w0
        t1 = {r: cpu_ticks(pids) for r, pids in roles.items()}
        y1 = busy_ticks()
        self.stop(place)
        placement = ""
        try:
            with open(place_out) as f:
                placement = f.read().strip()
        except OSError:
            pass
        with open(out, errors="replace") as f:
            text = f.read()
        res = None
        for line in text.splitlines():
            if line.startswith("SM_WRK "):
                res = json.loads(line[len("SM_WRK "):])
        if rc != 0 or res is None:
            raise Failure(f"{scn}/{topo}/{wl}: wrk exited {rc}: {text.strip()[-400:]}")
        n = res["requests"]
        dur = res["duration_us"] / 1e6
        cpu_us = {r: (t1[r] - t0[r]) * 1e6 / CLK_TCK / n if n else None for r in roles}
        cpu_us["client"] = (ru.ru_utime + ru.ru_stime) * 1e6 / n if n else None
        ours = sum(t1[r] - t0[r] for r in roles) + (ru.ru_utime + ru.ru_stime) * CLK_TCK
        busy = y1 - y0
        c = {
            "scenario": scn, "topology": topo, "workload": wl, "rep": rep,
            "requests": n, "seconds": dur,
            "rps": n / dur if dur else 0.0,
            "conns_per_s": n / dur if close and dur else None,
            "mbytes_per_s": res["bytes"] / dur / 1e6 if dur else 0.0,
            "p50_us": res["p50_us"], "p99_us": res["p99_us"], "p999_us": res["p999_us"],
            "max_us": res["max_us"],
            "errors": res["connect_errors"] + res["read_errors"] + res["write_errors"] +
            res["status_errors"] + res["timeouts"],
            "cpu_us_per_req": cpu_us,
            "sidecar_rss_kb": {side: rss_kb(tree(p.pid)) for side, p in sidecars.items()},
            "machine_busy_pct": 100.0 * busy / (CLK_TCK * NCPU * wall),
            "others_busy_pct": max(0.0, 100.0 * (busy - ours) / (CLK_TCK * NCPU * wall)),
            "placement": placement,
        }
        for side, p in sidecars.items():
            if p.poll() is not None:
                raise Failure(f"{scn}/{topo}/{wl}: the {side}bound sidecar died (exit {p.returncode})")
        return c

    def cpus(self, role):
        if not self.args.pin:
            return None
        return {0} if role == "client" else {1}

    def pair_for(self, mode, topo):
        if mode == "none":
            return self.pairs["direct"]
        return self.pairs[{"iptables": "ipt", "ebpf": "ebpf", "ebpf-app": "ebpfapp"}[mode] + "-" + topo]

    # ---- one scenario block: start sidecars, verify, warm up, run every workload ---------------
    def block(self, scn, topo, rep, workloads):
        mode, kind, splice, _ = SCENARIOS[scn]
        pair = self.pair_for(mode, topo)
        if mode.startswith("ebpf"):
            run([self.loader, "splice", "on" if splice else "off", "--pin-dir", self.pin_dir])
        sidecars = {}
        cells = []
        try:
            if kind:
                sidecars["out"] = self.start_sidecar(pair, kind, "out", self.cpus("sidecar"))
                if topo == "B":
                    sidecars["in"] = self.start_sidecar(pair, kind, "in", self.cpus("sidecar"))
            self.verify(scn, topo, pair, kind)
            k0 = self.loader_counters() if mode.startswith("ebpf") else {}
            if not self.args.quick:
                self.warm(pair)
            for wl in workloads:
                c = self.cell(scn, topo, wl, rep, pair, sidecars)
                cells.append(c)
                log(f"{scn:14} {topo} {wl:12} #{rep}: {c['rps']:9.0f} req/s p99 {c['p99_us']} us"
                    f"{'' if not c['errors'] else ' errors ' + str(c['errors'])}")
            if mode.startswith("ebpf"):
                k1 = self.loader_counters()
                delta = {k: k1.get(k, 0) - k0.get(k, 0) for k in k1
                         if isinstance(k1.get(k), int) and k1.get(k, 0) != k0.get(k, 0)}
                for c in cells:
                    c["bpf_counters"] = delta
            if kind and kind.startswith("sockmesh"):
                for side in sidecars:
                    st = self.sockmesh_stats(pair["app"] if side == "out" else pair["srv"])
                    keep = {k: v for k, v in st.items()
                            if k.endswith(("downstream_rq_total", "downstream_rq_passthrough",
                                           "upstream_cx_total", "downstream_cx_total"))}
                    for c in cells:
                        c.setdefault("sidecar_stats", {})[side] = keep
        finally:
            for p in sidecars.values():
                self.stop(p)
        return cells

    def warm(self, pair):
        url = f"http://{pair['srv_ip']}:8080/"
        p = self.spawn(pair["app"], ["wrk", "-t1", "-c16", "-d1s", url], uid=CLIENT_UID,
                       cgroup=pair["cgroup"])
        self.reap(p)

    def check_haproxy_original_dst(self):
        """Scenario ebpf-haproxy needs HAProxy to connect to the original destination it
        reads with SO_ORIGINAL_DST (its server is 0.0.0.0:0); under eBPF the accepted
        socket's own address is 127.0.0.1:15001, so a HAProxy that did not ask would loop
        to itself and never reach the backend."""
        pair = self.pairs["ebpf-A"]
        try:
            p = self.start_sidecar(pair, "haproxy-odst", "out", None)
        except Failure as e:
            return str(e)
        try:
            self.verify("ebpf-haproxy", "A", pair, "haproxy-odst")
        except Failure as e:
            return f"HAProxy behind eBPF interception did not reach the original destination: {e}"
        finally:
            self.stop(p)
        return None

    # ---- teardown -----------------------------------------------------------------------------
    def teardown(self):
        for p in list(self.procs.values()):
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 3
        for p in list(self.procs.values()):
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            self.procs.pop(p.pid, None)
        if self.pin_dir and os.path.exists(self.pin_dir):
            run([self.loader, "uninstall", "--pin-dir", self.pin_dir], check=False)
            shutil.rmtree(self.pin_dir, ignore_errors=True)
        for ns in self.netns:
            run(["ip", "netns", "del", ns], check=False)
        for cg in self.cgroups:
            # Whatever is left in our cgroups was started by us (a child of a sidecar whose
            # parent was killed, say): by pid, never by name.
            try:
                with open(os.path.join(cg, "cgroup.procs")) as f:
                    for pid in f.read().split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except ProcessLookupError:
                            pass
            except OSError:
                pass
            for _ in range(30):
                try:
                    os.rmdir(cg)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)  # the last processes are still leaving
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- profile --------------------------------------------------------------------------------
    def profile(self, scn, topo, outdir):
        """perf record -a -g during scenario SCN, topology TOPO, keep-alive c16: the share of
        samples per process and kernel vs user space (the whole machine: other work on the
        host shows up too), the sidecars' hottest symbols, and where each process's time
        goes by call chain (perfsplit.py: its own code, its sends, its peers' receive run
        inside its sends, its receives, waiting). Returns the split per process."""
        mode, kind, splice, _ = SCENARIOS[scn]
        pair = self.pair_for(mode, topo)
        if mode.startswith("ebpf"):
            run([self.loader, "splice", "on" if splice else "off", "--pin-dir", self.pin_dir])
        sides = [self.start_sidecar(pair, kind, "out", None)]
        try:
            if topo == "B":
                sides.append(self.start_sidecar(pair, kind, "in", None))
            self.verify(scn, topo, pair, kind)
            wrk = self.spawn(pair["app"], ["wrk", "-t1", "-c16", "-d8s", f"http://{pair['srv_ip']}:8080/"],
                             uid=CLIENT_UID, cgroup=pair["cgroup"])
            time.sleep(1.5)
            data = os.path.join(self.tmp, f"perf-{scn}-{topo}.data")
            run(["perf", "record", "-q", "-g", "-a", "-F", "999", "-o", data, "--", "sleep", "5"],
                check=False)
            self.reap(wrk)
            r = run(["perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none",
                     "--sort", "comm,dso", "--percent-limit", "0.5"], check=False)
            comm = {"sockmesh": "sockmesh-proxy", "sockmesh-epoll": "sockmesh-proxy",
                    "haproxy": "haproxy", "haproxy-odst": "haproxy", "nginx": "nginx"}[kind]
            r2 = run(["perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none",
                      "--comms", comm, "--sort", "dso,sym", "--percentage", "relative",
                      "--percent-limit", "1"], check=False)
            r3 = run(["perf", "script", "-i", data, "-F", "comm,tid,ip,sym,dso"], check=False)
            split = {}
            tables = []
            for c in dict.fromkeys([comm, "nginx", "wrk"]):
                shares, n = perfsplit.split(r3.stdout, c)
                if n:
                    split[c] = {"samples": n, "shares_pct": shares}
                    tables.append(perfsplit.table(shares, n, c))
            with open(os.path.join(outdir, f"perf-{scn}-{topo}.txt"), "w") as f:
                f.write(r.stdout + "\n\n# the sidecar's symbols\n" + r2.stdout + "\n\n" +
                        "\n\n".join(tables) + "\n")
            return {"sidecar": comm, "split": split}
        finally:
            for p in sides:
                self.stop(p)


def median_spread(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    m = statistics.median(vals)
    return {"median": m, "min": min(vals), "max": max(vals),
            "spread_pct": 100.0 * (max(vals) - min(vals)) / m if m else 0.0, "n": len(vals)}


def aggregate(cells):
    groups = {}
    for c in cells:
        groups.setdefault((c["scenario"], c["topology"], c["workload"]), []).append(c)
    out = []
    for (scn, topo, wl), cs in groups.items():
        r = {"scenario": scn, "label": SCENARIOS[scn][3], "topology": topo, "workload": wl,
             "reps": len(cs), "errors": sum(c["errors"] for c in cs)}
        for m in ("rps", "conns_per_s", "mbytes_per_s", "p50_us", "p99_us", "p999_us"):
            r[m] = median_spread([c[m] for c in cs])
        r["cpu_us_per_req"] = {role: median_spread([c["cpu_us_per_req"].get(role) for c in cs])
                               for role in cs[0]["cpu_us_per_req"]}
        sc = [sum(v for v in c["cpu_us_per_req"].values() if v is not None and True) for c in cs]
        side = [sum(v for k, v in c["cpu_us_per_req"].items() if k.startswith("sidecar") and v is not None)
                for c in cs]
        r["cpu_us_per_req"]["all"] = median_spread(sc)
        r["cpu_us_per_req"]["sidecars"] = median_spread(side)
        r["sidecar_rss_kb"] = {s: median_spread([c["sidecar_rss_kb"].get(s) for c in cs])
                               for s in cs[0]["sidecar_rss_kb"]}
        r["others_busy_pct"] = median_spread([c["others_busy_pct"] for c in cs])
        r["placement"] = [c["placement"] for c in cs]
        if "bpf_counters" in cs[0]:
            r["bpf_counters"] = cs[0]["bpf_counters"]
        out.append(r)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("SM_BUILD_DIR", os.path.join(REPO, "build")))
    ap.add_argument("--out", default=None, help="default BUILD/bench")
    ap.add_argument("--quick", action="store_true", help="every scenario briefly (1 s cells, 1 rep)")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--seconds", type=int, default=None)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--topologies", default="A,B")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--pin", action="store_true", help="client on CPU 0, sidecars on CPU 1")
    ap.add_argument("--source-commit", default=None,
                    help="what the binaries were built from, when not this tree (a clean export)")
    ap.add_argument("--profile", action="store_true",
                    help="after the run, perf record -a -g under ebpf-splice and ipt-haproxy (A, B) "
                         "and ebpf-splice-app (A), keep-alive c16")
    args = ap.parse_args()
    if args.reps is None:
        args.reps = 1 if args.quick else 3
    if args.seconds is None:
        args.seconds = 1 if args.quick else 5
    args.out = args.out or os.path.join(os.path.realpath(args.build), "bench")
    scenarios = [s for s in args.scenarios.split(",") if s]
    topologies = [t for t in args.topologies.split(",") if t]
    workloads = [w for w in args.workloads.split(",") if w]
    SCENARIOS.update({s: EXTRA_SCENARIOS[s] for s in scenarios if s in EXTRA_SCENARIOS})
    for s in scenarios:
        if s not in SCENARIOS:
            sys.exit(f"mesh bench: --scenarios: unknown scenario {s!r} "
                     f"(known: {', '.join(list(SCENARIOS) + list(EXTRA_SCENARIOS))})")
    for t in topologies:
        if t not in TOPOLOGIES:
            sys.exit(f"mesh bench: --topologies: unknown topology {t!r} (A or B)")
    for w in workloads:
        if w not in WORKLOADS:
            sys.exit(f"mesh bench: --workloads: unknown workload {w!r} (known: {', '.join(WORKLOADS)})")
    if os.geteuid() != 0:
        sys.exit("mesh bench: needs root (netns, cgroups, BPF, iptables)")
    for tool in ("wrk", "haproxy", "nginx", "setpriv", "ip", "ss", "iptables-restore"):
        if not shutil.which(tool):
            sys.exit(f"mesh bench: {tool} not found (make deps)")
    for b in ("sockmesh-proxy", "sockmesh-loader"):
        if not os.access(os.path.join(args.build, "bin", b), os.X_OK):
            sys.exit(f"mesh bench: {args.build}/bin/{b} missing (make build)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    mesh = Mesh(args)

    def on_signal(signum, _):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    meta = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kernel": os.uname().release, "cpus": NCPU,
        "cpu_model": next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                           if line.startswith("model name")), "?"),
        "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "loadavg_before": loadavg(),
        "quick": args.quick, "reps": args.reps, "seconds_per_cell": args.seconds,
        "pinned": args.pin,
        "load_generator": "wrk -t1 with latency.lua (per-request latency histogram: p50/p99/p99.9)",
        "haproxy": run(["haproxy", "-v"]).stdout.splitlines()[0],
        "nginx": run(["nginx", "-v"]).stderr.strip(),
        "wrk": run(["wrk", "-v"], check=False).stdout.splitlines()[0],
        "haproxy_outbound_server": "ipt-haproxy: the backend's address (HAProxy's best case); "
                                   "ebpf-haproxy: 0.0.0.0:0, the original destination "
                                   "(SO_ORIGINAL_DST)",
        "commit": args.source_commit or run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                            check=False).stdout.strip() + (
            "+uncommitted changes in userspace/loader/bpf" if run(
                ["git", "-C", REPO, "status", "--porcelain", "--", "userspace", "loader", "bpf", "common"],
                check=False).stdout.strip() else ""),
        "binaries_built": {b: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(
            os.path.join(args.build, "bin", b)))) for b in ("sockmesh-proxy", "sockmesh-loader")},
        "workloads": {w: {"connections": WORKLOADS[w][0], "path": WORKLOADS[w][1],
                          "new_connection_per_request": WORKLOADS[w][2]} for w in workloads},
        "scenarios": {s: SCENARIOS[s][3] for s in scenarios},
        "topologies": {t: TOPOLOGIES[t] for t in topologies},
    }
    cells = []
    profiles = {}
    rc = 0
    try:
        log(f"setup {mesh.tag} (load average {meta['loadavg_before']})")
        mesh.setup()
        if "ebpf-haproxy" in scenarios:
            why = mesh.check_haproxy_original_dst()
            if why:
                mesh.skipped["ebpf-haproxy"] = why
                scenarios.remove("ebpf-haproxy")
                log(f"skipping ebpf-haproxy: {why}")
        meta["bpf_status_install"] = mesh.loader_counters()
        y0, t0 = busy_ticks(), time.monotonic()
        for rep in range(1, args.reps + 1):
            k = (rep - 1) % len(scenarios)
            order = scenarios[k:] + scenarios[:k]
            if rep % 2 == 0:
                order.reverse()
            for topo in (topologies if rep % 2 else list(reversed(topologies))):
                for scn in order:
                    cells += mesh.block(scn, topo, rep, workloads)
        meta["machine_busy_pct_during_run"] = round(
            100.0 * (busy_ticks() - y0) / (CLK_TCK * NCPU * (time.monotonic() - t0)), 1)
        if args.profile:
            for scn, topo in (("ebpf-splice", "A"), ("ebpf-splice", "B"), ("ipt-haproxy", "A"),
                              ("ipt-haproxy", "B"), ("ebpf-splice-app", "A")):
                if scn in scenarios and topo in topologies:
                    os.makedirs(args.out, exist_ok=True)
                    profiles[f"{scn}/{topo}"] = mesh.profile(scn, topo, args.out)
    except KeyboardInterrupt as e:
        print(f"mesh bench: interrupted ({str(e) or 'SIGINT'}), cleaning up", file=sys.stderr)
        rc = 130
    except Failure as e:
        print(f"mesh bench: {e}", file=sys.stderr)
        rc = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        mesh.teardown()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    if rc:
        return rc
    meta["loadavg_after"] = loadavg()
    meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    meta["skipped"] = mesh.skipped
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "results.json")
    with open(path + ".tmp", "w") as f:
        json.dump({"meta": meta, "results": aggregate(cells), "cells": cells,
                   "profile": profiles}, f, indent=1)
    os.replace(path + ".tmp", path)
    log(f"wrote {path} (load average {meta['loadavg_before']} before, {meta['loadavg_after']} after)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
