#!/usr/bin/python3
"""A Consul API double for sockmesh's tests, demo and benchmarks (test infrastructure only).

Serves the parts of Consul's HTTP API that sockmesh and registrator use, with Consul's
documented semantics:

  GET  /v1/catalog/services                 {name: [tags]}            blocking
  GET  /v1/catalog/service/<name>           catalog entries           blocking
  GET  /v1/health/service/<name>[?passing]  [{Node, Service, Checks}] blocking
  PUT  /v1/catalog/register, /v1/catalog/deregister
  PUT  /v1/agent/service/register, /v1/agent/service/deregister/<id>   (as registrator)
  PUT  /v1/agent/check/pass|warn|fail/<check id>
  GET|PUT|DELETE /v1/kv/<key>[?recurse][?raw][?keys]                  blocking on GET
  GET  /v1/status/leader, /v1/agent/self

Blocking queries: `index` and `wait` (default 5m, at most 10m, plus up to wait/16 of random
jitter, as Consul adds). X-Consul-Index on every read. A query's index is the raft index of
the last write that touched what it reads (a service, the services table, a KV prefix).
With --token every request must carry it (X-Consul-Token header or ?token=), else 403.

Controls for tests, outside Consul's API (POST):
  /_double/reset_index    the raft index goes backwards (as after a snapshot restore, which
                          also wakes every blocked query: Consul closes its abandon channel)
  /_double/fail?status=500[&count=N]   answer API reads (GET) with that status (N times,
                          or until cleared); writes still land
  /_double/hang           hold API reads (GET) unanswered until cleared
  /_double/clear          end fail and hang
  /_double/bulk           JSON list of catalog registrations in one write (benchmarks)
  GET /_double/stats      request counts, blocked queries, the raft index, and how long a
                          write took to reach a blocked query (delivery_ms; ?reset clears)

usage: consul_double.py --port N [--addr A] [--token T] [--node-name N] [--node-address A]
"""
import argparse
import base64
import json
import random
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_WAIT_S = 600.0
DEFAULT_WAIT_S = 300.0


def parse_wait(text):
    """Consul's duration form: "10s", "5m", "100ms"; bare numbers are seconds."""
    if not text:
        return DEFAULT_WAIT_S
    units = (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0))
    for suffix, scale in units:
        if text.endswith(suffix) and not (suffix == "s" and text.endswith("ms")):
            return min(float(text[: -len(suffix)]) * scale, MAX_WAIT_S)
    return min(float(text), MAX_WAIT_S)


class State:
    """The catalog, health checks and KV store, with raft-like indexes."""

    def __init__(self, node_name, node_address):
        self.cv = threading.Condition()  # the state's lock; blocked queries wait on per-key
        self.waiters = {}  # key ("services", "service:<name>", "kv") -> Condition on that lock
        self.touched = set()  # keys written since the last wake()
        self.index = 10  # the raft index; every write bumps it
        self.epoch = 0  # bumped by reset_index: wakes every blocked query
        self.write_times = {}  # raft index -> when it was written (for delivery delays)
        self.delivery = []  # write -> blocked query answered with it, seconds
        self.agent_node = node_name
        self.nodes = {}  # name -> node dict
        self.services = {}  # (node, service id) -> service dict
        self.by_name = {}  # service name -> {(node, service id)}
        self.checks = {}  # (node, check id) -> check dict
        self.services_index = 1  # the services table
        self.service_index = {}  # service name -> last index touching it
        self.kv = {}  # key -> entry dict
        self.kv_deleted = {}  # key -> index of its deletion (Consul's tombstones)
        self.kv_index = 1
        self.add_node(node_name, node_address)

    # ---- writes (caller holds cv) ----
    def bump(self):
        self.index += 1
        self.write_times[self.index] = time.monotonic()
        if len(self.write_times) > 100000:
            for k in sorted(self.write_times)[:50000]:
                del self.write_times[k]
        return self.index

    def add_node(self, name, address, meta=None, tagged=None):
        idx = self.bump()
        node = self.nodes.get(name)
        if node is None:
            node = {
                "ID": "%08x-0000-4000-8000-%012x" % (abs(hash(name)) & 0xFFFFFFFF, len(self.nodes)),
                "Node": name,
                "Address": address,
                "Datacenter": "dc1",
                "TaggedAddresses": tagged or {"lan": address, "wan": address},
                "Meta": meta or {"consul-network-segment": ""},
                "CreateIndex": idx,
                "ModifyIndex": idx,
            }
            self.nodes[name] = node
        else:
            node["Address"] = address
            node["ModifyIndex"] = idx
        return node

    def touch_service(self, name, idx):
        self.service_index[name] = idx
        self.services_index = idx
        self.touched.update(("services", "service:" + name))

    def condition(self, key):
        c = self.waiters.get(key)
        if c is None:
            c = self.waiters[key] = threading.Condition(self.cv)
        return c

    def wake(self, everyone=False):
        """Wakes the queries blocked on what was written (Consul's watch sets), not all of
        them: a write to one service does not wake a thousand watchers of others."""
        keys = list(self.waiters) if everyone else self.touched
        for k in keys:
            if k in self.waiters:
                self.waiters[k].notify_all()
        self.touched = set()

    def register_service(self, node, svc, checks):
        idx = self.bump()
        sid = svc.get("ID") or svc.get("Service") or svc.get("Name")
        name = svc.get("Service") or svc.get("Name")
        if not sid or not name:
            raise ValueError("Service name missing")
        old = self.services.get((node, sid))
        if old and old["Service"] != name:
            self.touch_service(old["Service"], idx)
        weights = svc.get("Weights") or {"Passing": 1, "Warning": 1}
        entry = {
            "ID": sid,
            "Service": name,
            "Tags": list(svc.get("Tags") or []),
            "Address": svc.get("Address", ""),
            "TaggedAddresses": svc.get("TaggedAddresses") or {},
            "Meta": dict(svc.get("Meta") or {}),
            "Port": int(svc.get("Port", 0)),
            "Weights": {"Passing": int(weights.get("Passing", 1)), "Warning": int(weights.get("Warning", 1))},
            "EnableTagOverride": bool(svc.get("EnableTagOverride", False)),
            "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
            "Connect": {},
            "PeerName": "",
            "CreateIndex": old["CreateIndex"] if old else idx,
            "ModifyIndex": idx,
        }
        if old and old["Service"] != name:
            self.by_name.get(old["Service"], set()).discard((node, sid))
        self.services[(node, sid)] = entry
        self.by_name.setdefault(name, set()).add((node, sid))
        for c in checks:
            cid = c.get("CheckID") or c.get("ID") or ("service:" + sid)
            status = c.get("Status") or ("critical" if c.get("TTL") else "passing")
            self.checks[(node, cid)] = {
                "Node": node,
                "CheckID": cid,
                "Name": c.get("Name") or ("Service '%s' check" % name),
                "Status": status,
                "Notes": c.get("Notes", ""),
                "Output": "",
                "ServiceID": sid,
                "ServiceName": name,
                "ServiceTags": entry["Tags"],
                "Type": "ttl" if c.get("TTL") else "",
                "Definition": {},
                "CreateIndex": idx,
                "ModifyIndex": idx,
            }
        self.touch_service(name, idx)

    def deregister_service(self, node, sid):
        svc = self.services.pop((node, sid), None)
        if svc is None:
            return False
        self.by_name.get(svc["Service"], set()).discard((node, sid))
        idx = self.bump()
        for key in [k for k, c in self.checks.items() if k[0] == node and c["ServiceID"] == sid]:
            del self.checks[key]
        self.touch_service(svc["Service"], idx)
        return True

    def deregister_node(self, node):
        for (n, sid) in [k for k in self.services if k[0] == node]:
            self.deregister_service(n, sid)
        for key in [k for k in self.checks if k[0] == node]:
            del self.checks[key]
        if node != self.agent_node:
            self.nodes.pop(node, None)
        self.bump()

    def set_check(self, node, cid, status):
        c = self.checks.get((node, cid))
        if c is None:
            return False
        idx = self.bump()
        c["Status"] = status
        c["ModifyIndex"] = idx
        if c["ServiceName"]:
            self.touch_service(c["ServiceName"], idx)
        return True

    def kv_put(self, key, value, flags):
        idx = self.bump()
        old = self.kv.get(key)
        self.kv[key] = {
            "LockIndex": 0,
            "Key": key,
            "Flags": flags,
            "Value": value,
            "CreateIndex": old["CreateIndex"] if old else idx,
            "ModifyIndex": idx,
        }
        self.kv_deleted.pop(key, None)
        self.kv_index = idx
        self.touched.add("kv")

    def kv_delete(self, key, recurse):
        keys = [k for k in self.kv if k.startswith(key)] if recurse else [key]
        idx = self.bump()
        for k in keys:
            if self.kv.pop(k, None) is not None:
                self.kv_deleted[k] = idx
        self.kv_index = idx
        self.touched.add("kv")

    def reset_index(self):
        """What a snapshot restore looks like to clients: every index is lower than before."""
        self.index = 2
        self.services_index = 2
        self.service_index = {k: 2 for k in self.service_index}
        self.kv_index = 2
        for e in self.kv.values():
            e["CreateIndex"] = e["ModifyIndex"] = 2
        self.kv_deleted = {k: 2 for k in self.kv_deleted}
        for table in (self.nodes, self.services, self.checks):
            for e in table.values():
                e["CreateIndex"] = e["ModifyIndex"] = 2
        self.epoch += 1

    # ---- reads (caller holds cv): (index, body or None for 404) ----
    def read_services(self):
        out = {}
        for svc in self.services.values():
            tags = out.setdefault(svc["Service"], [])
            for t in svc["Tags"]:
                if t not in tags:
                    tags.append(t)
        return max(self.services_index, 1), out

    def passing(self, node, sid):
        for c in self.checks.values():
            if c["Node"] == node and c["ServiceID"] in ("", sid) and c["Status"] != "passing":
                return False
        return True

    def index_of_service(self, name):
        return max(self.service_index.get(name, self.services_index), 1)

    def read_health(self, name, only_passing):
        out = []
        for (node, sid) in sorted(self.by_name.get(name, ())):
            svc = self.services[(node, sid)]
            if only_passing and not self.passing(node, sid):
                continue
            checks = [c for c in self.checks.values() if c["Node"] == node and c["ServiceID"] in ("", sid)]
            out.append({"Node": self.nodes[node], "Service": svc, "Checks": checks})
        return max(self.service_index.get(name, self.services_index), 1), out

    def read_catalog_service(self, name):
        out = []
        for (node, sid) in sorted(self.by_name.get(name, ())):
            svc = self.services[(node, sid)]
            n = self.nodes[node]
            out.append({
                "ID": n["ID"], "Node": node, "Address": n["Address"], "Datacenter": "dc1",
                "TaggedAddresses": n["TaggedAddresses"], "NodeMeta": n["Meta"],
                "ServiceKind": "", "ServiceID": sid, "ServiceName": name,
                "ServiceTags": svc["Tags"], "ServiceAddress": svc["Address"],
                "ServiceWeights": svc["Weights"], "ServiceMeta": svc["Meta"],
                "ServicePort": svc["Port"], "ServiceEnableTagOverride": svc["EnableTagOverride"],
                "ServiceProxy": svc["Proxy"], "ServiceConnect": {},
                "CreateIndex": svc["CreateIndex"], "ModifyIndex": svc["ModifyIndex"],
            })
        return max(self.service_index.get(name, self.services_index), 1), out

    def read_kv(self, key, recurse):
        if recurse:
            entries = [self.kv[k] for k in sorted(self.kv) if k.startswith(key)]
            idx = max([e["ModifyIndex"] for e in entries] +
                      [i for k, i in self.kv_deleted.items() if k.startswith(key)] + [0])
        else:
            entries = [self.kv[key]] if key in self.kv else []
            idx = entries[0]["ModifyIndex"] if entries else self.kv_deleted.get(key, 0)
        if idx == 0:
            idx = self.kv_index
        return max(idx, 1), entries


class Controls:
    def __init__(self):
        self.lock = threading.Lock()
        self.fail_status = 0
        self.fail_count = -1  # -1: until cleared
        self.hang = threading.Event()  # set: requests are held
        self.counts = {}
        self.blocked = 0
        self.max_blocked = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None
    controls = None
    token = ""
    quiet = True

    def log_message(self, fmt, *args):
        if not self.quiet:
            sys.stderr.write("%s\n" % (fmt % args))

    # ---- plumbing ----
    def send(self, status, body, index=None, content_type="application/json"):
        if isinstance(body, (dict, list, bool)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Vary", "Accept-Encoding")
        if index is not None:
            self.send_header("X-Consul-Index", str(index))
            self.send_header("X-Consul-Knownleader", "true")
            self.send_header("X-Consul-Lastcontact", "0")
            self.send_header("X-Consul-Effective-Consistency", "leader")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def json_body(self):
        raw = self.body()
        return json.loads(raw) if raw else {}

    def count(self, kind):
        with self.controls.lock:
            self.controls.counts[kind] = self.controls.counts.get(kind, 0) + 1

    def blocking(self, query, read, index_of=None, key="kv"):
        """Runs read() under the state lock; with index > 0 waits until its index moves past it.
        index_of() is the query's index without the work of reading (a write wakes every
        blocked query; most only need to look at their index and sleep again)."""
        st = self.state
        index = int(query.get("index", ["0"])[0] or 0)
        wait = parse_wait(query.get("wait", [""])[0])
        wait += random.uniform(0, wait / 16.0)  # Consul's jitter
        deadline = time.monotonic() + wait
        with st.cv:
            epoch = st.epoch
            if index_of is not None and index > 0 and index_of() <= index:
                idx, result = index_of(), None
            else:
                idx, result = read()
            if index > 0 and idx <= index:
                with self.controls.lock:
                    self.controls.blocked += 1
                    self.controls.max_blocked = max(self.controls.max_blocked, self.controls.blocked)
                try:
                    while idx <= index and st.epoch == epoch:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        st.condition(key).wait(left)
                        idx = index_of() if index_of is not None else read()[0]
                    idx, result = read()
                    if idx > index and idx in st.write_times and len(st.delivery) < 1000000:
                        st.delivery.append(time.monotonic() - st.write_times[idx])
                finally:
                    with self.controls.lock:
                        self.controls.blocked -= 1
        return idx, result

    # ---- dispatch ----
    def do_GET(self):
        self.dispatch("GET")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        try:
            if path.startswith("/_double/"):
                return self.control(method, path[len("/_double/"):], query)
            c = self.controls
            while c.hang.is_set() and method == "GET":
                time.sleep(0.05)
            with c.lock:
                # Reads fail; writes (registrations, KV puts) still land, so a test can change
                # the catalog while its watcher sees errors.
                status = c.fail_status if method == "GET" else 0
                if status and c.fail_count > 0:
                    c.fail_count -= 1
                    if c.fail_count == 0:
                        c.fail_status = 0
            if status:
                self.count("failed")
                self.body()
                return self.send(status, "Unexpected response code: %d (double: injected)" % status,
                                 content_type="text/plain")
            if self.token:
                got = self.headers.get("X-Consul-Token") or query.get("token", [""])[0]
                if got != self.token:
                    self.count("denied")
                    self.body()
                    return self.send(403, "ACL not found", content_type="text/plain")
            return self.api(method, path, query)
        except (ValueError, KeyError, json.JSONDecodeError) as e:
            return self.send(400, "Bad request: %s" % e, content_type="text/plain")

    def api(self, method, path, query):
        st = self.state
        if method == "GET" and path == "/v1/catalog/services":
            self.count("catalog_services")
            idx, body = self.blocking(query, st.read_services, lambda: max(st.services_index, 1),
                                      "services")
            return self.send(200, body, idx)
        if method == "GET" and path.startswith("/v1/catalog/service/"):
            name = path[len("/v1/catalog/service/"):]
            self.count("catalog_service")
            idx, body = self.blocking(query, lambda: st.read_catalog_service(name),
                                      lambda: st.index_of_service(name), "service:" + name)
            return self.send(200, body, idx)
        if method == "GET" and path.startswith("/v1/health/service/"):
            name = path[len("/v1/health/service/"):]
            self.count("health_service")
            only = "passing" in query and query["passing"][0].lower() not in ("false", "0")
            idx, body = self.blocking(query, lambda: st.read_health(name, only),
                                      lambda: st.index_of_service(name), "service:" + name)
            return self.send(200, body, idx)
        if path.startswith("/v1/kv/"):
            return self.kv(method, path[len("/v1/kv/"):], query)
        if method == "PUT" and path == "/v1/agent/service/register":
            svc = self.json_body()
            checks = list(svc.get("Checks") or []) + ([svc["Check"]] if svc.get("Check") else [])
            with st.cv:
                st.register_service(st.agent_node, svc, checks)
                st.wake()
            self.count("register")
            return self.send(200, "", content_type="text/plain")
        if method == "PUT" and path.startswith("/v1/agent/service/deregister/"):
            sid = path[len("/v1/agent/service/deregister/"):]
            self.body()
            with st.cv:
                found = st.deregister_service(st.agent_node, sid)
                st.wake()
            self.count("deregister")
            if not found:
                return self.send(404, 'Unknown service ID "%s". Ensure that the service ID is passed, '
                                 "not the service name." % sid, content_type="text/plain")
            return self.send(200, "", content_type="text/plain")
        if method == "PUT" and path.startswith("/v1/agent/check/"):
            verb, _, cid = path[len("/v1/agent/check/"):].partition("/")
            status = {"pass": "passing", "warn": "warning", "fail": "critical"}.get(verb)
            self.body()
            if status is None:
                return self.send(404, "", content_type="text/plain")
            with st.cv:
                ok = st.set_check(st.agent_node, cid, status)
                st.wake()
            return self.send(200 if ok else 404, "" if ok else "Unknown check ID", content_type="text/plain")
        if method == "PUT" and path == "/v1/catalog/register":
            self.catalog_register([self.json_body()])
            return self.send(200, True)
        if method == "PUT" and path == "/v1/catalog/deregister":
            req = self.json_body()
            with st.cv:
                if req.get("ServiceID"):
                    st.deregister_service(req["Node"], req["ServiceID"])
                else:
                    st.deregister_node(req["Node"])
                st.wake()
            self.count("deregister")
            return self.send(200, True)
        if method == "GET" and path == "/v1/status/leader":
            return self.send(200, '"127.0.0.1:8300"')
        if method == "GET" and path == "/v1/agent/self":
            return self.send(200, {"Config": {"Datacenter": "dc1", "NodeName": st.agent_node,
                                              "Version": "1.16.0-double"}})
        self.body()
        return self.send(404, "", content_type="text/plain")

    def catalog_register(self, regs):
        st = self.state
        with st.cv:
            for req in regs:
                node = req["Node"]
                st.add_node(node, req.get("Address", ""), req.get("NodeMeta"), req.get("TaggedAddresses"))
                checks = list(req.get("Checks") or []) + ([req["Check"]] if req.get("Check") else [])
                if req.get("Service"):
                    st.register_service(node, req["Service"], checks)
            st.wake()
        self.count("register")

    def kv(self, method, key, query):
        st = self.state
        recurse = "recurse" in query
        if method == "GET":
            self.count("kv")
            idx, entries = self.blocking(query, lambda: st.read_kv(key, recurse))
            if not entries:
                return self.send(404, "", idx, content_type="text/plain")
            if "raw" in query:
                return self.send(200, entries[0]["Value"], idx, content_type="text/plain")
            if "keys" in query:
                return self.send(200, [e["Key"] for e in entries], idx)
            out = [dict(e, Value=base64.b64encode(e["Value"]).decode() if e["Value"] else None)
                   for e in entries]
            return self.send(200, out, idx)
        if method == "PUT":
            data = self.body()
            with st.cv:
                st.kv_put(key, data, int(query.get("flags", ["0"])[0] or 0))
                st.wake()
            return self.send(200, True)
        if method == "DELETE":
            self.body()
            with st.cv:
                st.kv_delete(key, recurse)
                st.wake()
            return self.send(200, True)
        return self.send(405, "", content_type="text/plain")

    def control(self, method, what, query):
        st, c = self.state, self.controls
        if what == "stats":
            with st.cv, c.lock:
                d = sorted(st.delivery)
                q = (lambda f: round(d[min(len(d) - 1, int(f * len(d)))] * 1000, 3) if d else None)
                body = {"index": st.index, "counts": dict(c.counts), "blocked": c.blocked,
                        "max_blocked": c.max_blocked,
                        "delivery_ms": {"count": len(d), "p50": q(0.5), "p99": q(0.99),
                                        "max": q(1.0)}}
                if "reset" in query:
                    st.delivery = []
            return self.send(200, body)
        if method != "POST":
            return self.send(405, "use POST", content_type="text/plain")
        if what == "reset_index":
            self.body()
            with st.cv:
                st.reset_index()
                st.wake(everyone=True)
            return self.send(200, {"index": st.index})
        if what == "fail":
            self.body()
            with c.lock:
                c.fail_status = int(query.get("status", ["500"])[0])
                c.fail_count = int(query.get("count", ["-1"])[0])
            return self.send(200, True)
        if what == "hang":
            self.body()
            c.hang.set()
            return self.send(200, True)
        if what == "clear":
            self.body()
            with c.lock:
                c.fail_status = 0
                c.fail_count = -1
            c.hang.clear()
            return self.send(200, True)
        if what == "bulk":
            self.catalog_register(self.json_body())
            return self.send(200, {"index": st.index})
        self.body()
        return self.send(404, "", content_type="text/plain")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 4096

    def handle_error(self, request, client_address):
        # A client that went away (a watcher giving up on a hung query) is not an error.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def server_bind(self):
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        super().server_bind()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--addr", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8500)
    ap.add_argument("--token", default="")
    ap.add_argument("--node-name", default="sm-double")
    ap.add_argument("--node-address", default="127.0.0.1")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    Handler.state = State(args.node_name, args.node_address)
    Handler.controls = Controls()
    Handler.token = args.token
    Handler.quiet = not args.verbose
    family = socket.AF_INET6 if ":" in args.addr else socket.AF_INET
    Server.address_family = family
    srv = Server((args.addr, args.port), Handler)
    sys.stderr.write("consul double on %s:%d\n" % (args.addr, args.port))
    sys.stderr.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
