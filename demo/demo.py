#!/usr/bin/python3
"""`make demo`: brings up the bookinfo-on-Consul mesh (mesh.py), drives traffic through it
and prints a one-screen report, applies Istio's 50/50 v1/v3 traffic-shifting rule through
Consul KV while traffic flows, and tears everything down (also on Ctrl-C or failure).

usage: demo.py [--build-dir build] [--mode ebpf|iptables] [--keep] [--requests N]
               [--json FILE]
       demo.py down        stop a mesh left up by --keep (or by a crash)"""
import argparse
import json
import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mesh as m  # noqa: E402
from zipkin_collector import render_tree  # noqa: E402

SERVED_BY = re.compile(r"Reviews served by:</dt><dd><u>([^<]*)</u>")
STAR_COLOR = re.compile(r'data-color="(\w+)"')
RULE_50_V3 = os.path.join(m.BOOKINFO_RULES, "virtual-service-reviews-50-v3.yaml")


def reviews_version(resp):
    """'v1'|'v2'|'v3' from a productpage response (who served the reviews, checked against
    the stars: none for v1, black for v2, red for v3), else what went wrong."""
    if "error" in resp:
        return "error"
    if resp["status"] != 200:
        return "http{}".format(resp["status"])
    who = SERVED_BY.search(resp["body"])
    if not who:
        return "unavailable" if "reviews are currently unavailable" in resp["body"] else "?"
    version = who.group(1).rsplit("-", 1)[-1]
    colors = set(STAR_COLOR.findall(resp["body"]))
    expected = {"v1": set(), "v2": {"black"}, "v3": {"red"}}.get(version)
    if "Ratings service is currently unavailable" in resp["body"] and version != "v1":
        return version + "-noratings"
    return version if colors == expected else "{}?{}".format(version, ",".join(sorted(colors)))


def split(versions):
    n = len(versions)
    counts = {}
    for v in versions:
        counts[v] = counts.get(v, 0) + 1
    return n, counts


def split_line(versions):
    n, counts = split(versions)
    return "  ".join("{} {:3d} ({:3.0f}%)".format(v, c, 100.0 * c / n)
                     for v, c in sorted(counts.items())) + "   n={}".format(n)


def drive(mesh, n, concurrency=2, headers=None):
    reqs = [["/productpage", dict(headers or {})] for _ in range(n)]
    return [reviews_version(r) for r in mesh.user_concurrent(reqs, concurrency)]


class Report:
    def __init__(self, out):
        self.out = out
        self.data = {}

    def line(self, text=""):
        print(text, file=self.out, flush=True)


def loader_status_summary(mesh):
    out = m.sh([mesh.loader, "status", "--pin-dir", m.PIN_DIR], check=False)
    try:
        st = json.loads(m.sh([mesh.loader, "status", "--json", "--pin-dir", m.PIN_DIR], check=False))
    except ValueError:
        st = None
    return out, st


def map_dump(mesh):
    path = os.path.join(m.PIN_DIR, "maps", "sm_netns_v1")
    return path, m.sh(["bpftool", "map", "dump", "pinned", path], check=False)


def traces(mesh):
    r = mesh.http(m.PREFIX + "-zipkin", m.ZIPKIN_ADDR, 9411, "/api/v2/traces", {"Host": "zipkin"})
    try:
        return json.loads(r.get("body", "[]"))
    except ValueError:
        return []


def run(args, rep):
    mesh = m.Mesh(args.build_dir, args.mode, sampling=100)
    rep.mesh = mesh
    mesh.up()
    d = rep.data
    d["mode"] = args.mode
    d["consul"] = mesh.consul_kind
    d["up_seconds"] = round(mesh.up_seconds, 1)
    rep.line("=" * 100)
    rep.line("sockmesh demo: Istio's bookinfo on Consul, {} interception (mesh up in {:.1f} s)".format(
        args.mode, mesh.up_seconds))
    rep.line("Consul: {} at {}:8500; names: /etc/netns/sm-demo-*/hosts; spans: {}:9411".format(
        mesh.consul_kind, m.CONSUL_ADDR, m.ZIPKIN_ADDR))
    rep.line("workloads (netns sm-demo-<name>, app uid {}, sockmesh-proxy uid {}): {}".format(
        m.APP_UID, m.PROXY_UID, ", ".join("{}-{} {}".format(s, v, a) for s, v, a in m.WORKLOADS)))

    # 1. no VirtualService for reviews: its three versions take turns
    versions = drive(mesh, args.requests)
    d["before"] = versions
    rep.line()
    rep.line("[1] {} x GET http://productpage.service.consul:9080/productpage from sm-demo-user "
             "(destination-rule-all only)".format(args.requests))
    rep.line("    reviews per request: " + " ".join(versions))
    rep.line("    split: " + split_line(versions))

    # 2. what the sidecars add, seen by productpage's app calling reviews
    resp = mesh.app_http("productpage", "v1", "reviews.service.consul", "/reviews/0",
                         {"x-b3-sampled": "1"})
    d["headers"] = resp.get("headers", [])
    rep.line()
    rep.line("[2] productpage's app -> GET http://reviews.service.consul:9080/reviews/0: HTTP {}".format(
        resp.get("status", resp.get("error"))))
    shown = [(k, v) for k, v in resp.get("headers", [])
             if k in ("server", "x-sockmesh-upstream-service-time", "x-request-id",
                      "x-envoy-upstream-service-time") or k.startswith("x-b3")]
    rep.line("    " + "   ".join("{}: {}".format(k, v) for k, v in shown))

    # 3. one request's trace
    rep.line()
    time.sleep(1.5)  # the sidecars batch spans for up to a second
    all_traces = traces(mesh)
    full = [t for t in all_traces
            if any((s.get("localEndpoint") or {}).get("serviceName", "").startswith("productpage")
                   for s in t)]
    full.sort(key=len, reverse=True)
    d["traces"] = len(all_traces)
    if full:
        t = full[0]
        d["trace_spans"] = len(t)
        d["trace_services"] = sorted({(s.get("localEndpoint") or {}).get("serviceName", "?")
                                      for s in t})
        rep.line("[3] one request's trace ({} spans, trace id {}; {} traces received):".format(
            len(t), t[0].get("traceId"), len(all_traces)))
        for ln in render_tree(t)[:12]:
            rep.line("    " + ln)
    else:
        d["trace_spans"] = 0
        rep.line("[3] trace: no spans received at {}:9411 ({})".format(
            m.ZIPKIN_ADDR, "sidecars run with --zipkin-address --trace-sampling 100" if mesh.zipkin
            else "this sockmesh-proxy has no --zipkin-address"))

    # 4. the loader's view, and one interception map
    out, st = loader_status_summary(mesh)
    rep.line()
    if st:
        workloads = st.get("workloads", [])
        counters = [(k, v) for k, v in st.get("counters", {}).items() if v]
        rep.line("[4] sockmesh-loader status: {}, {} links, {} maps, {} workloads in sm_netns_v1, "
                 "splice {}".format("installed" if st.get("installed") else "NOT installed",
                                    len(st.get("links", [])), len(st.get("maps", [])),
                                    len(workloads), "on" if st.get("splice") else "off"))
        text = ", ".join("{} {}".format(k, v) for k, v in counters)
        while text:
            cut = text.rfind(", ", 0, 92) if len(text) > 92 else len(text)
            rep.line("    " + text[:cut])
            text = text[cut + 2:]
        d["loader_workloads"] = len(workloads)
    else:
        rep.line("[4] sockmesh-loader status:")
        for ln in out.splitlines()[:8]:
            rep.line("    " + ln)
    if args.mode == "ebpf":
        path, dump = map_dump(mesh)
        entries = [ln for ln in dump.splitlines()]
        rep.line("    bpftool map dump pinned {} ({} lines; first entry):".format(path, len(entries)))
        first = dump.split("},{")[0] if dump.startswith("[") else dump
        for ln in first.splitlines()[:10]:
            rep.line("      " + ln)
        d["map_dump"] = dump
    else:
        nat = m.sh(["ip", "netns", "exec", m.ns_name("productpage", "v1"), "iptables-save", "-t",
                    "nat"], check=False)
        rules = [ln for ln in nat.splitlines() if ln.startswith("-A")]
        rep.line("    iptables mode: nat rules in sm-demo-productpage-v1 ({}):".format(len(rules)))
        for ln in rules[:8]:
            rep.line("      " + ln)
        d["map_dump"] = nat

    # 5. traffic shifting through Consul KV, live
    rep.line()
    rep.line("[5] PUT Consul KV {}/reviews <- {} (50% v1, 50% v3) while traffic flows:".format(
        m.RULES_KV, os.path.basename(RULE_50_V3)))
    live = []
    t0 = time.monotonic()
    for i in range(6):
        if i == 2:
            mesh.put_rule_file("reviews", RULE_50_V3)
            t_put = time.monotonic()
            rep.line("    t={:4.1f}s  rule written to Consul".format(t_put - t0))
        batch = drive(mesh, 10)
        live.append(batch)
        rep.line("    t={:4.1f}s  {}".format(time.monotonic() - t0, " ".join(batch)))
    after = drive(mesh, args.requests_after)
    d["after"] = after
    rep.line("    then {} requests: split: {}".format(len(after), split_line(after)))
    if args.keep:
        return mesh
    return None


def keep_message(mesh):
    pp = mesh.hosts["productpage.service.consul"][0]
    return "\n".join([
        "",
        "The mesh stays up (KEEP=1). Try:",
        "  ip netns exec sm-demo-user curl -s http://productpage.service.consul:9080/productpage "
        "| grep -A1 'served by'",
        "  ip netns exec sm-demo-user curl -s -b user=jason http://{}:9080/productpage".format(pp),
        "  watch -n1 'ip netns exec sm-demo-reviews-v1 curl -s 127.0.0.1:15000/stats | grep -v \" 0$\"'",
        "  ip netns exec sm-demo-productpage-v1 curl -s '127.0.0.1:15000/config_dump?format=sockmesh' | less",
        "  ip netns exec sm-demo-consul curl -X PUT --data-binary "
        "@tests/istio/bookinfo/virtual-service-reviews-v3.yaml "
        "http://{}:8500/v1/kv/{}/reviews   # all reviews to v3".format(m.CONSUL_ADDR, m.RULES_KV),
        "  ip netns exec sm-demo-zipkin curl -s http://{}:9411/api/v2/traces   # spans".format(
            m.ZIPKIN_ADDR),
        "  logs and access logs: {}".format(mesh.workdir),
        "Stop it: make demo-down   (or: python3 demo/demo.py down)",
    ])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("command", nargs="?", default="up", choices=["up", "down"])
    ap.add_argument("--build-dir", default=os.path.join(m.ROOT, "build"))
    ap.add_argument("--mode", default="ebpf", choices=["ebpf", "iptables"])
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--requests-after", type=int, default=100)
    ap.add_argument("--json", help="write the report's data here")
    args = ap.parse_args()
    if args.command == "down":
        m.down()
        return 0
    if os.geteuid() != 0:
        print("make demo: run as root (network namespaces, BPF programs, cgroups)", file=sys.stderr)
        return 1

    def on_signal(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    rep = Report(sys.stdout)
    rep.mesh = None
    kept = None
    code = 0
    try:
        kept = run(args, rep)
    except KeyboardInterrupt:
        print("\ninterrupted: tearing down", file=sys.stderr)
        code = 130
    except Exception as e:  # report, then tear down
        print("\nmake demo failed: {}".format(e), file=sys.stderr)
        if rep.mesh and rep.mesh.workdir:
            os.environ["SM_DEMO_KEEP_LOGS"] = "1"
            print("logs kept in {}".format(rep.mesh.workdir), file=sys.stderr)
        code = 1
    finally:
        if kept is None:
            m.down(quiet=True)
            left = m.leftovers()
            rep.data["leftovers"] = left
            rep.line("teardown: {}".format("nothing left (no sm-demo netns, pins or cgroup)"
                                           if not left else "LEFT BEHIND: " + ", ".join(left)))
        else:
            rep.line(keep_message(kept))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rep.data, f, indent=1)
    return code


if __name__ == "__main__":
    sys.exit(main())
