#!/usr/bin/python3
"""Tables, chart and target check of the whole-mesh bench, from mesh.py's results.json.

  report.py RESULTS_JSON             writes results.md and chart.svg next to it, prints the
                                     table
  report.py --summary RESULTS_JSON   the compact tables README.md shows
  report.py --check RESULTS_JSON     completeness only (the QUICK smoke test): every
                                     scenario x workload x topology is there with sane,
                                     non-zero metrics; a skipped scenario must say why.
                                     Never a speed.
"""
import html
import json
import os
import sys

BASE = "ipt-haproxy"
OURS = "ebpf-splice"
COLORS = {
    "direct": "#7f7f7f", "ipt-haproxy": "#d62728", "ipt-haproxy-odst": "#ff9896",
    "ipt-nginx": "#9467bd", "ipt-sockmesh": "#ff7f0e", "ebpf-nosplice": "#2ca02c",
    "ebpf-splice": "#1f77b4", "ebpf-haproxy": "#8c564b",
}


def med(m):
    return None if m is None else m["median"]


def fmt_n(v):
    if v is None:
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def fmt_us(us):
    if us is None:
        return "-"
    return f"{us:.0f} µs" if us < 1000 else f"{us / 1000:.2f} ms"


def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "-"


def index(results):
    return {(r["scenario"], r["topology"], r["workload"]): r for r in results}


def primary(r):
    """The throughput figure of a row: connections/s for new-connection runs."""
    return med(r["conns_per_s"]) if r.get("conns_per_s") else med(r["rps"])


def table(meta, results):
    idx = index(results)
    scenarios = [s for s in meta["scenarios"] if s not in meta.get("skipped", {})]
    lines = []
    for topo, tdesc in meta["topologies"].items():
        lines.append(f"\n### Topology {topo}: {tdesc}\n")
        for wl, w in meta["workloads"].items():
            what = ("one new connection per request" if w["new_connection_per_request"]
                    else "keep-alive") + f", {w['connections']} connections, GET {w['path']}"
            lines.append(f"\n**{wl}** ({what})\n")
            lines.append("| scenario | req/s (spread) | x HAProxy | x direct | p50 | p99 | p99.9 | "
                         "CPU µs/req: sidecar(s) | server | client | sidecar RSS |")
            lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
            base = idx.get((BASE, topo, wl))
            direct = idx.get(("direct", topo, wl))
            for s in scenarios:
                r = idx.get((s, topo, wl))
                if not r:
                    continue
                rps = med(r["rps"])
                cpu = r["cpu_us_per_req"]
                rss = [med(v) for v in r["sidecar_rss_kb"].values() if v]
                extra = ""
                if r.get("conns_per_s"):
                    extra = " conn/s"
                side = "-" if not r["sidecar_rss_kb"] else (
                    f"{med(cpu['sidecars']):.1f}" + (
                        f" ({med(cpu['sidecar_out']):.1f}+{med(cpu['sidecar_in']):.1f})"
                        if "sidecar_in" in cpu else ""))
                lines.append(
                    f"| {r['label']} | {fmt_n(rps)}{extra} (±{r['rps']['spread_pct'] / 2:.0f}%) | "
                    f"{ratio(rps, med(base['rps']) if base else None)} | "
                    f"{ratio(rps, med(direct['rps']) if direct else None)} | "
                    f"{fmt_us(med(r['p50_us']))} | {fmt_us(med(r['p99_us']))} | "
                    f"{fmt_us(med(r['p999_us']))} | {side} | "
                    f"{med(cpu['server']):.1f} | {med(cpu['client']):.1f} | "
                    + (" + ".join(f"{v / 1024:.1f}" for v in rss) + " MiB" if rss else "-") + " |")
    return "\n".join(lines)


def placement(meta, results):
    """Where each process ran: its samples' share per CPU, averaged over the cells."""
    lines = ["| scenario | topology | " + " | ".join(["client", "server", "sidecar out", "sidecar in"]) + " |",
             "|---|---|---|---|---|---|"]
    for first in results_in_order(meta, results):
        acc = {}
        lines_all = [line for r in results if (r["scenario"], r["topology"]) ==
                     (first["scenario"], first["topology"]) for line in r["placement"]]
        r = first
        for line in lines_all:
            for part in line.split():
                role, _, shares = part.partition(":")
                acc.setdefault(role, []).append([int(x) for x in shares.split("/")])
        cols = []
        for role in ("client", "server", "sidecar_out", "sidecar_in"):
            rows = [x for x in acc.get(role, []) if sum(x)]
            cols.append("/".join(f"{sum(c) / len(rows):.0f}" for c in zip(*rows)) + "%" if rows else "-")
        lines.append(f"| {r['label']} | {r['topology']} | " + " | ".join(cols) + " |")
    return "\n".join(lines)


def results_in_order(meta, results, workload=None):
    """One row per scenario x topology (the first workload's, or WORKLOAD's)."""
    idx = index(results)
    wl = workload or next(iter(meta["workloads"]))
    out = []
    for t in meta["topologies"]:
        for s in meta["scenarios"]:
            if (s, t, wl) in idx:
                out.append(idx[(s, t, wl)])
    return out


def bpf_counters(meta, results):
    """What the eBPF programs did per scenario block (every workload of one repetition)."""
    names = ["connect_redirected", "inbound_steered", "origdst_answered", "sock_inserted",
             "sock_not_safe", "sock_not_owner", "splice_msgs", "splice_bytes", "splice_miss"]
    lines = ["| scenario | topology | " + " | ".join(names) + " |",
             "|---|---|" + "---|" * len(names)]
    for r in results_in_order(meta, results):
        if "bpf_counters" not in r:
            continue
        c = r["bpf_counters"]
        lines.append(f"| {r['label']} | {r['topology']} | " +
                     " | ".join(f"{c.get(n, 0):,}" for n in names) + " |")
    return "\n".join(lines)


def targets(meta, results):
    """The issue's targets: scenario 6 against scenario 2."""
    idx = index(results)
    out = []

    def get(s, t, w):
        return idx.get((s, t, w))

    def line(name, value, goal, ok, how):
        out.append(f"| {name} | {value} | {goal} | {'met' if ok else 'missed'} ({how}) |")

    out.append("| target (scenario 6 vs scenario 2) | measured | goal | result |")
    out.append("|---|---|---|---|")
    a6, a2 = get(OURS, "A", "ka-c16"), get(BASE, "A", "ka-c16")
    if a6 and a2:
        r = med(a6["rps"]) / med(a2["rps"])
        line("A, keep-alive c16: req/s ratio", f"{r:.2f}x", ">= 1.6x", r >= 1.6,
             f"{100 * (r / 1.6 - 1):+.0f}% vs goal")
        p = med(a6["p99_us"]) / med(a2["p99_us"])
        line("A, keep-alive c16: p99 ratio", f"{p:.2f}x", "<= 0.6x", p <= 0.6,
             f"{100 * (p / 0.6 - 1):+.0f}% vs goal")
        c = med(a6["cpu_us_per_req"]["sidecars"])
        line("A, keep-alive c16: sidecar CPU/request", f"{c:.1f} µs", "<= 10 µs", c <= 10,
             f"{100 * (c / 10 - 1):+.0f}% vs goal")
    n6, n2 = get(OURS, "A", "newconn-c16"), get(BASE, "A", "newconn-c16")
    if n6 and n2:
        r = med(n6["conns_per_s"]) / med(n2["conns_per_s"])
        line("A, new connection per request: conn/s ratio", f"{r:.2f}x", ">= 1.3x", r >= 1.3,
             f"{100 * (r / 1.3 - 1):+.0f}% vs goal")
    b6, b2 = get(OURS, "B", "ka-c16"), get(BASE, "B", "ka-c16")
    if b6 and b2:
        r = med(b6["rps"]) / med(b2["rps"])
        line("B, keep-alive c16: req/s ratio", f"{r:.2f}x", ">= 1.8x", r >= 1.8,
             f"{100 * (r / 1.8 - 1):+.0f}% vs goal")
    extra = []
    for t in meta["topologies"]:
        x, base = get("ebpf-splice-app", t, "ka-c16"), get(BASE, t, "ka-c16")
        if x and base:
            extra.append(f"topology {t}: {med(x['rps']) / med(base['rps']):.2f}x the req/s, "
                         f"{med(x['p99_us']) / med(base['p99_us']):.2f}x the p99, "
                         f"{med(x['cpu_us_per_req']['sidecars']):.1f} µs sidecar CPU/request")
    if extra:
        out.append("\nWith the opt-in `enroll --splice-app` (app sockets spliced too; not the "
                   "default on this kernel), keep-alive c16 against iptables + HAProxy: " +
                   "; ".join(extra) + ".")
    return "\n".join(out)


def budget(meta, results):
    """CPU time per request of every process at keep-alive c16, and the throughput that
    CPU time allows on this machine (all CPUs busy): a closed-loop load on a small machine
    is bounded by the sum, so a sidecar's share of it decides the ratio it can reach."""
    idx = index(results)
    out = ["| scenario | topo | client | sidecar(s) | server | all | ceiling: CPUs / all | measured req/s |",
           "|---|---|---|---|---|---|---|---|"]
    for t in meta["topologies"]:
        for s in meta["scenarios"]:
            r = idx.get((s, t, "ka-c16"))
            if not r:
                continue
            cpu = r["cpu_us_per_req"]
            side = med(cpu["sidecars"]) if r["sidecar_rss_kb"] else None
            total = med(cpu["all"])
            out.append(f"| {SHORT.get(s, s)} | {t} | {med(cpu['client']):.1f} | "
                       + (f"{side:.1f}" if side else "-") +
                       f" | {med(cpu['server']):.1f} | {total:.1f} | "
                       f"{fmt_n(meta['cpus'] * 1e6 / total)} | {fmt_n(med(r['rps']))} |")
    b = idx.get((BASE, "A", "ka-c16"))
    if b:
        cpu = b["cpu_us_per_req"]
        need = med(cpu["all"]) / 1.6
        app = med(cpu["client"]) + med(cpu["server"])
        out.append(f"\nTopology A's 1.6x target needs all processes together at about "
                   f"{need:.1f} µs per request (scenario 2 uses {med(cpu['all']):.1f}); the client and "
                   f"the server alone use {app:.1f} under scenario 2, which leaves the sidecar "
                   f"about {max(need - app, 0):.1f} µs.")
    return "\n".join(out)


def where_time_goes(data):
    """perfsplit.py's buckets per profiled scenario (bench --profile)."""
    prof = data.get("profile") or {}
    if not prof:
        return ""
    cols = []
    for key, p in prof.items():
        if not p:
            continue
        for comm, sp in p["split"].items():
            scn, topo = key.split("/")
            cols.append((f"{SHORT.get(scn, scn).split()[0]} ({topo}): {comm}", sp))
    if not cols:
        return ""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import perfsplit
    out = ["| bucket | " + " | ".join(c for c, _ in cols) + " |",
           "|---|" + "---|" * len(cols)]
    for b in perfsplit.BUCKETS:
        out.append(f"| {perfsplit.LABELS[b]} | " +
                   " | ".join(f"{sp['shares_pct'][b]:.1f}%" for _, sp in cols) + " |")
    out.append("| samples | " + " | ".join(str(sp["samples"]) for _, sp in cols) + " |")
    return "\n".join(out)


def chart(meta, results, path):
    """Per topology and workload, each scenario's throughput as a share of direct."""
    idx = index(results)
    scenarios = [s for s in meta["scenarios"] if s not in meta.get("skipped", {})]
    workloads = list(meta["workloads"])
    topos = list(meta["topologies"])
    bar_h, gap, left, width = 11, 10, 170, 420
    group_h = len(scenarios) * bar_h + gap
    panel_w = left + width + 70
    height = 70 + len(workloads) * group_h + 20 + 16 * ((len(scenarios) + 1) // 2 + 1)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{panel_w * len(topos)}" '
           f'height="{height}" font-family="sans-serif" font-size="10">',
           f'<rect width="100%" height="100%" fill="white"/>',
           f'<text x="10" y="16" font-size="13" font-weight="bold">sockmesh whole-mesh bench: '
           f'throughput as % of direct (no mesh); label: req/s (conn/s for newconn)</text>']
    for ti, topo in enumerate(topos):
        x0 = ti * panel_w
        svg.append(f'<text x="{x0 + left}" y="38" font-size="12" font-weight="bold">Topology {topo}: '
                   f'{html.escape(meta["topologies"][topo])}</text>')
        for gx in (0, 25, 50, 75, 100):
            x = x0 + left + width * gx / 100
            svg.append(f'<line x1="{x}" y1="46" x2="{x}" y2="{50 + len(workloads) * group_h}" '
                       f'stroke="#ddd"/><text x="{x}" y="{60 + len(workloads) * group_h}" '
                       f'text-anchor="middle" fill="#666">{gx}%</text>')
        for wi, wl in enumerate(workloads):
            y = 50 + wi * group_h
            svg.append(f'<text x="{x0 + left - 8}" y="{y + group_h / 2}" text-anchor="end" '
                       f'font-weight="bold">{html.escape(wl)}</text>')
            d = idx.get(("direct", topo, wl))
            dv = primary(d) if d else None
            for si, s in enumerate(scenarios):
                r = idx.get((s, topo, wl))
                if not r or not dv:
                    continue
                v = primary(r)
                frac = min(v / dv, 1.25)
                by = y + si * bar_h
                svg.append(f'<rect x="{x0 + left}" y="{by}" width="{width * frac:.1f}" '
                           f'height="{bar_h - 2}" fill="{COLORS.get(s, "#333")}"/>')
                svg.append(f'<text x="{x0 + left + width * frac + 3:.1f}" y="{by + bar_h - 3}" '
                           f'fill="#333">{fmt_n(v)}</text>')
    ly = 70 + len(workloads) * group_h
    for si, s in enumerate(scenarios):
        lx = 10 + (si % 2) * 330
        yy = ly + (si // 2) * 16
        svg.append(f'<rect x="{lx}" y="{yy}" width="12" height="10" fill="{COLORS.get(s, "#333")}"/>'
                   f'<text x="{lx + 16}" y="{yy + 9}">{si + 1}. {html.escape(meta["scenarios"][s])}'
                   f'</text>')
    svg.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(svg) + "\n")


def render(data, out_dir):
    meta, results = data["meta"], data["results"]
    m = meta
    head = [
        f"# sockmesh whole-mesh bench ({'QUICK, not figures' if m['quick'] else 'full run'})",
        "",
        f"{m['started']} .. {m.get('finished', '?')}, commit {m['commit']}; Linux {m['kernel']}, "
        f"{m['cpus']} CPUs ({m['cpu_model']}), {m['mem_gb']} GiB. Load average before "
        f"{m['loadavg_before']}, after {m.get('loadavg_after', '?')}; the whole machine was "
        f"{m.get('machine_busy_pct_during_run', '?')}% busy during the run, our processes "
        "included.",
        "",
        f"Each cell: {m['load_generator']}, {m['seconds_per_cell']} s, median of {m['reps']} "
        f"rotated repetitions (spread: ± half of max-min, as % of the median); "
        f"{'client on CPU 0, sidecars on CPU 1' if m['pinned'] else 'unpinned (placement sampled per cell in results.json)'}. "
        f"Server: {m['nginx']}, 1 worker, 100-byte body; sidecars {m['haproxy']} (nbthread 2), "
        f"nginx (2 workers), sockmesh-proxy (--workers 2, routed by Host). HAProxy's upstream: "
        f"{m['haproxy_outbound_server']}. CPU µs/request from /proc (utime+stime of every "
        "thread and child; the client's from wait4); new-connection rows count "
        "connections/s (= req/s).",
    ]
    for s, why in m.get("skipped", {}).items():
        head.append(f"\nSkipped **{s}**: {why}")
    others = [med(r["others_busy_pct"]) for r in results if r.get("others_busy_pct")]
    if others:
        head.append(f"\nOther work on the host used a median {sorted(others)[len(others) // 2]:.0f}% "
                    "of the machine during the cells (see `others_busy_pct`): figures are lower "
                    "and noisier than on an idle machine.")
    md = "\n".join(head) + "\n" + table(meta, results) + "\n\n## Targets (issue 11)\n\n" + \
        targets(meta, results) + "\n\n![chart](chart.svg)\n" + \
        "\n## What the eBPF programs did (counter deltas per scenario block, all workloads)\n\n" + \
        bpf_counters(meta, results) + \
        "\n\n## Where processes ran (share of busy samples on CPU0/CPU1, mean of every cell of the scenario)\n\n" + \
        placement(meta, results) + "\n" + \
        "\n## CPU time per request, keep-alive c16 (µs, /proc)\n\n" + budget(meta, results) + "\n"
    wt = where_time_goes(data)
    if wt:
        md += ("\n## Where the time goes (perf record -a -g, keep-alive c16; each process's samples "
               "by call chain, bench/mesh/perfsplit.py)\n\n" + wt + "\n")
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(md)
    chart(meta, results, os.path.join(out_dir, "chart.svg"))
    return md


def summary(data):
    """Compact tables for README.md: throughput per workload (ratio to iptables + HAProxy),
    then latency, CPU and memory at keep-alive c16, per topology."""
    meta, results = data["meta"], data["results"]
    idx = index(results)
    scenarios = [s for s in meta["scenarios"] if s not in meta.get("skipped", {})]
    wls = list(meta["workloads"])
    out = []
    for t in meta["topologies"]:
        out.append(f"\nTopology {t} ({meta['topologies'][t]}): req/s (conn/s for newconn, "
                   "MB/s for 1mib), x iptables + HAProxy in brackets\n")
        out.append("| scenario | " + " | ".join(wls) + " |")
        out.append("|---|" + "---|" * len(wls))
        for s in scenarios:
            cells = []
            for w in wls:
                r, b = idx.get((s, t, w)), idx.get((BASE, t, w))
                if not r:
                    cells.append("-")
                    continue
                v = med(r["mbytes_per_s"]) if w.startswith("1mib") else primary(r)
                bv = (med(b["mbytes_per_s"]) if w.startswith("1mib") else primary(b)) if b else None
                cells.append(f"{fmt_n(v)} ({v / bv:.2f}x)" if bv else fmt_n(v))
            out.append(f"| {SHORT.get(s, s)} | " + " | ".join(cells) + " |")
    w = "ka-c16"
    out.append(f"\nKeep-alive c16: latency (wrk), CPU per request (/proc) and sidecar RSS\n")
    out.append("| scenario | topo | p50 | p99 | p99.9 | CPU µs/req sidecar(s) | server | client | RSS |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for t in meta["topologies"]:
        for s in scenarios:
            r = idx.get((s, t, w))
            if not r:
                continue
            cpu = r["cpu_us_per_req"]
            rss = [med(v) for v in r["sidecar_rss_kb"].values() if v]
            out.append(f"| {SHORT.get(s, s)} | {t} | {fmt_us(med(r['p50_us']))} | {fmt_us(med(r['p99_us']))} | "
                       f"{fmt_us(med(r['p999_us']))} | "
                       + (f"{med(cpu['sidecars']):.1f}" if r["sidecar_rss_kb"] else "-") +
                       f" | {med(cpu['server']):.1f} | {med(cpu['client']):.1f} | "
                       + ((" + ".join(f"{v / 1024:.1f}" for v in rss) + " MiB") if rss else "-") + " |")
    return "\n".join(out)


SHORT = {
    "direct": "1 direct", "ipt-haproxy": "2 iptables + HAProxy", "ipt-nginx": "3 iptables + nginx",
    "ipt-sockmesh": "4 iptables + sockmesh-proxy", "ebpf-nosplice": "5 eBPF, no splice + sockmesh-proxy",
    "ebpf-splice": "6 eBPF + splice (default) + sockmesh-proxy", "ebpf-haproxy": "7 eBPF + splice + HAProxy",
    "ebpf-splice-app": "6+ as 6, app sockets spliced too (opt-in)",
    "ipt-haproxy-odst": "2+ iptables + HAProxy (orig. dst)",
}


def check(data):
    """Every scenario x workload x topology present with sane non-zero metrics."""
    meta, results = data["meta"], data["results"]
    idx = index(results)
    problems = []
    skipped = meta.get("skipped", {})
    for s, why in skipped.items():
        if not why:
            problems.append(f"{s}: skipped without a reason")
    for s in meta["scenarios"]:
        if s in skipped:
            continue
        for t in meta["topologies"]:
            for w, wd in meta["workloads"].items():
                r = idx.get((s, t, w))
                cell = f"{s}/{t}/{w}"
                if not r:
                    problems.append(f"{cell}: missing")
                    continue
                if not med(r["rps"]) or med(r["rps"]) <= 0:
                    problems.append(f"{cell}: no requests/s")
                p50, p99, p999 = med(r["p50_us"]), med(r["p99_us"]), med(r["p999_us"])
                if not (p50 and p99 and p999 and 0 < p50 <= p99 <= p999):
                    problems.append(f"{cell}: latency percentiles not ordered: {p50} {p99} {p999}")
                cpu = r["cpu_us_per_req"]
                for role in ("client", "server"):
                    if not med(cpu.get(role)) or med(cpu[role]) <= 0:
                        problems.append(f"{cell}: no {role} CPU")
                want = ([] if s == "direct" else ["out"]) + (["in"] if s != "direct" and t == "B" else [])
                if sorted(r["sidecar_rss_kb"]) != sorted(want):
                    problems.append(f"{cell}: sidecars {sorted(r['sidecar_rss_kb'])}, want {want}")
                for side in want:
                    if not med(r["sidecar_rss_kb"].get(side)) or not med(cpu.get(f"sidecar_{side}")):
                        problems.append(f"{cell}: sidecar {side} without RSS or CPU")
                if wd["new_connection_per_request"] and not med(r.get("conns_per_s")):
                    problems.append(f"{cell}: no connections/s")
                reqs = med(r["rps"]) * meta["seconds_per_cell"]
                if r["errors"] > 0.01 * reqs * r["reps"]:
                    problems.append(f"{cell}: {r['errors']} errors")
    for p in problems:
        print(f"mesh bench check: {p}", file=sys.stderr)
    n = len(meta["scenarios"]) * len(meta["topologies"]) * len(meta["workloads"])
    print(f"mesh bench check: {n} cells expected, {len(results)} present, "
          f"{len(skipped)} scenario(s) skipped, {len(problems)} problem(s)")
    return 1 if problems else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--check":
        with open(argv[2]) as f:
            return check(json.load(f))
    if len(argv) == 3 and argv[1] == "--summary":
        with open(argv[2]) as f:
            print(summary(json.load(f)))
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        data = json.load(f)
    print(render(data, os.path.dirname(os.path.abspath(argv[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
