"""The bookinfo-on-Consul mesh of the seed, on one machine: one sm-demo-* network namespace
per workload (198.18.0.0/15, joined by a bridge in its own namespace), Consul (the real
binary when on PATH, else the project's double), a Zipkin-compatible collector, the
sockmesh loader installed into the demo's own cgroup and pin dir, one sockmesh-proxy per
workload as uid 1337 and the unmodified bookinfo apps as uid 1000.

Names: every namespace, the cgroup, the pin dir, /etc/netns entries and the scratch dir
are sm-demo-*. What was started is written to STATE_FILE as it happens, so `down()` (and a
later run, or `demo.py down`) removes everything, killing only the processes it started
(pid + start time).

Name resolution: an /etc/hosts per namespace (`ip netns exec` bind-mounts
/etc/netns/<name>/hosts over /etc/hosts), listing every registered instance of a service
under <service>.service.consul, as Consul's DNS answers; a resolv.conf pointing at
127.0.0.1 makes any other name fail at once instead of timing out."""
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHON = "/usr/bin/python3"  # the distribution's: other uids run it too (not a pyenv shim)
PREFIX = "sm-demo"
STATE_FILE = "/run/sm-demo/state.json"
PIN_DIR = "/sys/fs/bpf/sm-demo"
PROXY_UID = 1337
APP_UID = 1000
SUBNET = "198.18.0.0/24"
CONSUL_ADDR = "198.18.0.2"
ZIPKIN_ADDR = "198.18.0.3"
USER_ADDR = "198.18.0.100"
RULES_KV = "sockmesh/rules"
BOOKINFO_RULES = os.path.join(ROOT, "tests", "istio", "bookinfo")

# (service, version, address): the seed's docker-compose workloads.
WORKLOADS = [
    ("productpage", "v1", "198.18.0.10"),
    ("details", "v1", "198.18.0.11"),
    ("reviews", "v1", "198.18.0.12"),
    ("reviews", "v2", "198.18.0.13"),
    ("reviews", "v3", "198.18.0.14"),
    ("ratings", "v1", "198.18.0.15"),
]

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def cgroup2_root():
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 2 and parts[2] == "cgroup2":
                return parts[1]
    return "/sys/fs/cgroup"


def sh(cmd, check=True, capture=True):
    r = subprocess.run(cmd, shell=isinstance(cmd, str), text=True,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.STDOUT if capture else None)
    if check and r.returncode != 0:
        raise RuntimeError("command failed ({}): {}\n{}".format(
            r.returncode, cmd if isinstance(cmd, str) else " ".join(cmd), r.stdout or ""))
    return r.stdout or ""


def start_time(pid):
    try:
        with open("/proc/{}/stat".format(pid)) as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None


def ns_name(service, version):
    return "{}-{}-{}".format(PREFIX, service, version)


class Mesh:
    def __init__(self, build_dir, mode="ebpf", consul=None, sampling=100, log=None):
        self.build_dir = os.path.abspath(build_dir)
        self.mode = mode
        self.loader = os.path.join(self.build_dir, "bin", "sockmesh-loader")
        self.proxy = os.path.join(self.build_dir, "bin", "sockmesh-proxy")
        self.consul_bin = consul if consul is not None else (
            os.environ.get("SM_CONSUL") or shutil.which("consul") or "")
        self.sampling = sampling
        self.log = log or (lambda msg: print(msg, flush=True))
        self.cgroup = os.path.join(cgroup2_root(), PREFIX)
        self.state = {"pids": [], "netns": [], "etc_netns": [], "cgroup": self.cgroup,
                      "pin_dir": PIN_DIR, "workdir": None, "mode": mode}
        self.procs = {}  # name -> Popen
        self.workdir = None
        self.hosts = {}  # service.consul name -> [addresses]
        self.zipkin = False

    # ---- state, so that a Ctrl-C, a crash or `demo.py down` removes everything
    def _save(self):
        os.makedirs(os.path.dirname(STATE_FILE), exist_ok=True)
        tmp = STATE_FILE + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.state, f)
        os.replace(tmp, STATE_FILE)

    # ---- network
    def _netns(self, name):
        sh(["ip", "netns", "add", name])
        self.state["netns"].append(name)
        self._save()
        sh(["ip", "-n", name, "link", "set", "lo", "up"])

    def _host(self, name, addr):
        self._netns(name)
        port = "p{}".format(len(self.state["netns"]))
        sw = PREFIX + "-sw"
        sh(["ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0",
            "netns", name])
        sh(["ip", "-n", sw, "link", "set", port, "master", "br0", "up"])
        sh(["ip", "-n", name, "addr", "add", addr + "/24", "dev", "eth0"])
        sh(["ip", "-n", name, "link", "set", "eth0", "up"])
        # Like a pod: a default route (iptables REDIRECT happens after the route lookup);
        # the bridge has no uplink, so nothing leaves the machine.
        sh(["ip", "-n", name, "route", "add", "default", "dev", "eth0"])
        etc = "/etc/netns/" + name
        os.makedirs(etc, exist_ok=True)
        self.state["etc_netns"].append(etc)
        self._save()
        with open(etc + "/resolv.conf", "w") as f:
            f.write("# sockmesh demo: names come from /etc/hosts (Consul's view)\n"
                    "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        self._write_hosts(name)

    def _write_hosts(self, name):
        lines = ["127.0.0.1 localhost", "::1 localhost"]
        lines += ["{} consul.service.consul".format(CONSUL_ADDR),
                  "{} zipkin.service.consul".format(ZIPKIN_ADDR)]
        for host, addrs in sorted(self.hosts.items()):
            lines += ["{} {}".format(a, host) for a in addrs]
        with open("/etc/netns/{}/hosts".format(name), "w") as f:
            f.write("\n".join(lines) + "\n")

    def _refresh_hosts(self):
        """Every namespace's /etc/hosts from the catalog, as Consul's DNS would answer."""
        self.hosts = {}
        for service, _, addr in WORKLOADS:
            self.hosts.setdefault(service + ".service.consul", []).append(addr)
        for etc in self.state["etc_netns"]:
            self._write_hosts(os.path.basename(etc))

    # ---- processes
    def _join_cgroup(self):
        with open(self.cgroup + "/cgroup.procs", "w") as f:
            f.write("0")

    def spawn(self, name, ns, argv, uid=None, cgroup=True, env=None):
        """Starts argv in netns `ns` (via `ip netns exec`, which also mounts its /etc/hosts)
        as `uid`, inside the demo's cgroup; output to <workdir>/<name>.log."""
        cmd = ["ip", "netns", "exec", ns]
        if uid is not None:
            cmd += ["setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups", "--"]
        cmd += argv
        log = open(os.path.join(self.workdir, name + ".log"), "ab")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             preexec_fn=self._join_cgroup if cgroup else None,
                             start_new_session=True, env=env)
        log.close()
        self.procs[name] = p
        self.state["pids"].append([p.pid, start_time(p.pid), name])
        self._save()
        return p

    def stop(self, name):
        p = self.procs.pop(name, None)
        if p and p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def logfile(self, name):
        return os.path.join(self.workdir, name + ".log")

    def run_in(self, ns, fn, uid=None, cgroup=False):
        """Runs fn() in a child in netns `ns` (optionally as uid, in the demo's cgroup) and
        returns what it returns (JSON-serializable)."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(r)
                if cgroup:
                    self._join_cgroup()
                fd = os.open("/run/netns/" + ns, os.O_RDONLY)
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns " + ns)
                os.close(fd)
                if uid is not None:
                    os.setgroups([])
                    os.setgid(uid)
                    os.setuid(uid)
                out = json.dumps({"ok": fn()})
            except BaseException as e:  # reported to the parent
                out = json.dumps({"error": "{}: {}".format(type(e).__name__, e)})
                code = 1
            with os.fdopen(w, "w") as f:
                f.write(out)
            os._exit(code)
        os.close(w)
        try:
            with os.fdopen(r) as f:
                data = f.read()
        except BaseException:  # Ctrl-C: the child goes too (it may hold the cgroup)
            os.kill(pid, signal.SIGKILL)
            raise
        finally:
            os.waitpid(pid, 0)
        res = json.loads(data) if data else {"error": "child died"}
        if "error" in res:
            raise RuntimeError("in {}: {}".format(ns, res["error"]))
        return res["ok"]

    def http(self, ns, addr, port, path, headers=None, uid=None, cgroup=False, timeout=20,
             method="GET", body=None):
        """One HTTP request from inside `ns`: {status, headers, body, ms} or {error, ms}."""
        return self.run_in(ns, lambda: http_request(addr, port, path, headers, timeout, method,
                                                    body), uid=uid, cgroup=cgroup)

    def app_http(self, service, version, host, path, headers=None, timeout=20):
        """A request made by a workload's app (uid 1000, intercepted): to host:9080, whose
        address comes from the hosts file, as the app would resolve it."""
        addr = self.hosts[host][0]
        hdrs = {"Host": host + ":9080"}
        hdrs.update(headers or {})
        return self.http(ns_name(service, version), addr, 9080, path, hdrs, uid=APP_UID,
                         cgroup=True, timeout=timeout)

    def admin(self, service, version, path):
        r = self.http(ns_name(service, version), "127.0.0.1", 15000, path)
        return r

    def user_get(self, path="/productpage", headers=None, timeout=20):
        """The browser: a request from the (not enrolled) user namespace to productpage."""
        hdrs = {"Host": "productpage.service.consul:9080"}
        hdrs.update(headers or {})
        return self.http(PREFIX + "-user", self.hosts["productpage.service.consul"][0], 9080,
                         path, hdrs, timeout=timeout)

    def user_concurrent(self, requests, concurrency, timeout=20):
        """Many requests from the user namespace, `concurrency` at a time, one connection
        each: a list of {status, body, ms} in request order."""
        addr = self.hosts["productpage.service.consul"][0]

        def run():
            return parallel_requests(addr, 9080, requests, concurrency, timeout)
        return self.run_in(PREFIX + "-user", run)

    # ---- Consul
    def consul(self, method, path, body=None):
        data = body.encode() if isinstance(body, str) else body
        r = self.http(PREFIX + "-consul", CONSUL_ADDR, 8500, path, {"Host": "consul"},
                      method=method, body=data)
        if "error" in r:
            raise RuntimeError("consul {} {}: {}".format(method, path, r["error"]))
        return r

    def register(self, service, version, addr):
        """As registrator did: the agent's service register with name, port, tags
        `version|v1` and Meta version."""
        doc = {"ID": "{}-{}-{}".format(PREFIX, service, version), "Name": service,
               "Address": addr, "Port": 9080, "Tags": ["version|" + version],
               "Meta": {"version": version}}
        r = self.consul("PUT", "/v1/agent/service/register", json.dumps(doc))
        if r["status"] != 200:
            raise RuntimeError("register {}: {}".format(service, r))

    def put_rules(self, key, text):
        """Istio rules into Consul KV under RULES_KV (every sidecar watches it)."""
        r = self.consul("PUT", "/v1/kv/{}/{}".format(RULES_KV, key), text)
        if r["status"] != 200:
            raise RuntimeError("kv put {}: {}".format(key, r))

    def delete_rules(self, key):
        self.consul("DELETE", "/v1/kv/{}/{}".format(RULES_KV, key))

    def put_rule_file(self, key, path):
        with open(path) as f:
            self.put_rules(key, f.read())

    # ---- up and down
    def up(self):
        if os.geteuid() != 0:
            raise RuntimeError("the demo needs root (network namespaces, BPF, cgroups)")
        for b in (self.loader, self.proxy):
            if not os.access(b, os.X_OK):
                raise RuntimeError("{} is missing: build first (make build)".format(b))
        down(quiet=True)  # what an earlier run left behind
        self.workdir = tempfile.mkdtemp(prefix=PREFIX + "-", dir="/tmp")
        os.chmod(self.workdir, 0o777)  # sidecars (uid 1337) write their state dirs here
        self.state["workdir"] = self.workdir
        self._save()
        self._refresh_hosts()

        t0 = time.monotonic()
        sw = PREFIX + "-sw"
        self._netns(sw)
        sh(["ip", "-n", sw, "link", "add", "br0", "type", "bridge"])
        sh(["ip", "-n", sw, "link", "set", "br0", "up"])
        self._host(PREFIX + "-consul", CONSUL_ADDR)
        self._host(PREFIX + "-zipkin", ZIPKIN_ADDR)
        self._host(PREFIX + "-user", USER_ADDR)
        for service, version, addr in WORKLOADS:
            self._host(ns_name(service, version), addr)

        os.makedirs(self.cgroup, exist_ok=True)
        sh([self.loader, "install", "--cgroup", self.cgroup, "--pin-dir", PIN_DIR])

        self._start_consul()
        self.spawn("zipkin", PREFIX + "-zipkin",
                   [PYTHON, os.path.join(HERE, "zipkin_collector.py"), "--addr", ZIPKIN_ADDR,
                    "--port", "9411"])
        self._wait_port(PREFIX + "-zipkin", ZIPKIN_ADDR, 9411, "zipkin collector")
        self.put_rule_file("destination-rule-all", os.path.join(BOOKINFO_RULES,
                                                                "destination-rule-all.yaml"))
        self.zipkin = "--zipkin-address" in sh([self.proxy, "--help"], check=False)

        for service, version, addr in WORKLOADS:
            self.enroll(service, version)
            self.start_sidecar(service, version)
            self.start_app(service, version)
            self.register(service, version, addr)
        self.wait_endpoints()
        self.up_seconds = time.monotonic() - t0

    def enroll(self, service, version):
        sh([self.loader, "enroll", "--mode", self.mode, "--netns",
            "/run/netns/" + ns_name(service, version), "--pin-dir", PIN_DIR])

    def unenroll(self, service, version):
        sh([self.loader, "unenroll", "--mode", self.mode, "--netns",
            "/run/netns/" + ns_name(service, version), "--pin-dir", PIN_DIR])

    def _start_consul(self):
        ns = PREFIX + "-consul"
        if self.consul_bin:
            argv = [self.consul_bin, "agent", "-dev", "-bind", CONSUL_ADDR, "-client", CONSUL_ADDR,
                    "-dns-port", "-1", "-node", PREFIX]
            self.consul_kind = "consul ({})".format(self.consul_bin)
        else:
            argv = [PYTHON, os.path.join(ROOT, "tests", "consul", "consul_double.py"), "--addr",
                    CONSUL_ADDR, "--port", "8500", "--node-name", PREFIX, "--node-address",
                    CONSUL_ADDR]
            self.consul_kind = "the project's Consul double (no consul on PATH)"
        self.spawn("consul", ns, argv)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = self.http(ns, CONSUL_ADDR, 8500, "/v1/status/leader", timeout=2)
            if r.get("status") == 200 and ":" in r.get("body", ""):
                return
            time.sleep(0.1)
        raise RuntimeError("Consul did not start:\n" + tail(self.logfile("consul")))

    def sidecar_argv(self, service, version, extra=()):
        state = os.path.join(self.workdir, "state-{}-{}".format(service, version))
        os.makedirs(state, exist_ok=True)
        os.chmod(state, 0o777)
        argv = [self.proxy, "--workers", "1", "--consul", "http://{}:8500".format(CONSUL_ADDR),
                "--service-cluster", "{}-{}".format(service, version), "--rules-kv", RULES_KV,
                "--state-dir", state, "--consul-wait-s", "30", "--access-log",
                os.path.join(self.workdir, "access-{}-{}.log".format(service, version))]
        if self.zipkin:
            argv += ["--zipkin-address", "{}:9411".format(ZIPKIN_ADDR), "--trace-sampling",
                     str(self.sampling)]
        return argv + list(extra)

    def start_sidecar(self, service, version, extra=()):
        name = "sidecar-{}-{}".format(service, version)
        self.spawn(name, ns_name(service, version), self.sidecar_argv(service, version, extra),
                   uid=PROXY_UID)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            r = self.admin(service, version, "/ready")
            if r.get("status") == 200:
                return
            if self.procs[name].poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("{} did not become ready:\n{}".format(name, tail(self.logfile(name))))

    def stop_sidecar(self, service, version):
        self.stop("sidecar-{}-{}".format(service, version))

    def start_app(self, service, version):
        name = "{}-{}".format(service, version)
        argv = [PYTHON, os.path.join(HERE, "apps", service + ".py")]
        if service == "reviews":
            argv.append(version)
        env = {"PATH": "/usr/bin:/bin", "HOSTNAME": name, "PYTHONUNBUFFERED": "1",
               "PYTHONDONTWRITEBYTECODE": "1",
               "SERVICES_DOMAIN": "service.consul"}
        self.spawn(name, ns_name(service, version), argv, uid=APP_UID, env=env)
        self._wait_port(ns_name(service, version), "127.0.0.1", 9080, name)

    def _wait_port(self, ns, addr, port, what, timeout=10):
        def probe():
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                try:
                    socket.create_connection((addr, port), timeout=1).close()
                    return True
                except OSError:
                    time.sleep(0.05)
            return False
        if not self.run_in(ns, probe):
            raise RuntimeError("{} did not listen on {}:{}:\n{}".format(
                what, addr, port, tail(self.logfile(what if what != "zipkin collector" else "zipkin"))))

    def wait_endpoints(self, timeout=20):
        """Until productpage's sidecar knows every instance (Consul -> its table)."""
        want = {addr + ":9080" for _, _, addr in WORKLOADS if not addr.endswith(".10")}
        deadline = time.monotonic() + timeout
        body = ""
        while time.monotonic() < deadline:
            r = self.admin("productpage", "v1", "/clusters")
            body = r.get("body", "")
            if all(w in body for w in want):
                return
            time.sleep(0.1)
        raise RuntimeError("productpage's sidecar did not learn every endpoint from Consul:\n" +
                           body[:2000])

    def close(self):
        down(quiet=True)


def tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log {})".format(path)


def http_request(addr, port, path, headers=None, timeout=20, method="GET", body=None):
    import http.client
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(addr, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        data = res.read().decode("utf-8", "replace")
        return {"status": res.status, "headers": [[k.lower(), v] for k, v in res.getheaders()],
                "body": data, "ms": round((time.monotonic() - t0) * 1000, 1)}
    except (OSError, http.client.HTTPException) as e:
        return {"error": "{}: {}".format(type(e).__name__, e),
                "ms": round((time.monotonic() - t0) * 1000, 1)}
    finally:
        conn.close()


def parallel_requests(addr, port, requests, concurrency, timeout):
    import threading
    out = [None] * len(requests)
    lock = threading.Lock()
    nxt = [0]

    def worker():
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(requests):
                return
            path, headers = requests[i]
            out[i] = http_request(addr, port, path, headers, timeout)
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def header(resp, name):
    for k, v in resp.get("headers", []):
        if k == name:
            return v
    return None


def remove_cgroup(cg):
    """The demo's cgroup holds only processes the demo started (and their children)."""
    for _ in range(50):
        try:
            os.rmdir(cg)
            return
        except OSError:
            try:
                with open(cg + "/cgroup.procs") as f:
                    for pid in f.read().split():
                        os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
            time.sleep(0.1)


def down(quiet=False):
    """Removes what STATE_FILE lists: processes (only ours: pid and start time match),
    the loader's install, pins, namespaces, /etc/netns entries, the cgroup, the scratch dir."""
    try:
        with open(STATE_FILE) as f:
            state = json.load(f)
    except (OSError, ValueError):
        state = None
    say = (lambda m: None) if quiet else (lambda m: print(m, flush=True))
    if state is None:
        cg = os.path.join(cgroup2_root(), PREFIX)
        if os.path.isdir(cg):
            remove_cgroup(cg)
        say("sm-demo: nothing to stop")
        return
    live = [(pid, name) for pid, st, name in state.get("pids", [])
            if st is not None and start_time(pid) == st]
    for pid, _ in live:
        try:
            os.killpg(pid, signal.SIGTERM) if os.getpgid(pid) == pid else os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(start_time(p) for p, _ in live):
        time.sleep(0.05)
    for pid, _ in live:
        if start_time(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    loader = None
    pin_dir = state.get("pin_dir", PIN_DIR)
    for cand in ("build-demo", "build"):
        p = os.path.join(ROOT, cand, "bin", "sockmesh-loader")
        if os.access(p, os.X_OK):
            loader = p
            break
    if loader and os.path.isdir(pin_dir):
        sh([loader, "uninstall", "--pin-dir", pin_dir], check=False)
    if os.path.isdir(pin_dir):
        shutil.rmtree(pin_dir, ignore_errors=True)
    for ns in reversed(state.get("netns", [])):
        sh(["ip", "netns", "del", ns], check=False)
    for etc in state.get("etc_netns", []):
        if os.path.basename(etc).startswith(PREFIX):
            shutil.rmtree(etc, ignore_errors=True)
    cg = state.get("cgroup")
    if cg and os.path.basename(cg).startswith(PREFIX) and os.path.isdir(cg):
        remove_cgroup(cg)
    wd = state.get("workdir")
    if wd and os.path.basename(wd).startswith(PREFIX) and os.environ.get("SM_DEMO_KEEP_LOGS") != "1":
        shutil.rmtree(wd, ignore_errors=True)
    os.unlink(STATE_FILE)
    say("sm-demo: stopped ({} processes, {} namespaces, pins {}, cgroup {})".format(
        len(live), len(state.get("netns", [])), pin_dir, cg))


def leftovers():
    """What a demo would have left: sm-demo namespaces, pins, cgroup, /etc/netns entries."""
    found = []
    out = sh(["ip", "netns", "list"], check=False)
    found += [l.split()[0] for l in out.splitlines() if l.startswith(PREFIX)]
    if os.path.exists(PIN_DIR):
        found.append(PIN_DIR)
    if os.path.exists(os.path.join(cgroup2_root(), PREFIX)):
        found.append(os.path.join(cgroup2_root(), PREFIX))
    if os.path.isdir("/etc/netns"):
        found += ["/etc/netns/" + d for d in os.listdir("/etc/netns") if d.startswith(PREFIX)]
    return found
