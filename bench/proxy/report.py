#!/usr/bin/python3
"""The sidecar bench's tables, from the raw results run.sh wrote: `report.py OUT_DIR`.

Per cell (variant, sidecar, wrk -c N) the median of the repetitions; the variant whose
requests/s spread least between repetitions is shown first, as the headline.
"""
import os
import re
import statistics
import sys

NAMES = {
    "none": "no sidecar (direct)",
    "sockmesh": "sockmesh-proxy routed",
    "sockmesh-passthrough": "sockmesh-proxy passthru",
    "sockmesh-epoll": "routed, epoll",
    "sockmesh-epoll-passthrough": "passthru, epoll",
    "before": "routed, before",
    "before-passthrough": "passthru, before",
    "haproxy": "haproxy 2.6",
    "nginx": "nginx 1.22",
}
UNITS_US = {"us": 1.0, "ms": 1000.0, "s": 1e6}


def read_kv(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            out[k] = v
    return out


def read_tsv(path):
    with open(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    return [dict(zip(rows[0], r)) for r in rows[1:]]


def parse_wrk(path):
    text = open(path).read()
    r = {"rps": None, "requests": 0, "non2xx": 0, "sockerr": 0, "p50": None, "p99": None}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        r["rps"] = float(m.group(1))
    if m := re.search(r"(\d+) requests in", text):
        r["requests"] = int(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        r["non2xx"] = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        r["sockerr"] = sum(int(x) for x in m.groups())
    for pct in ("50", "99"):
        if m := re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
            r["p" + pct] = float(m.group(1)) * UNITS_US[m.group(2)]
    if "wrk exited" in text or r["rps"] is None:
        r["sockerr"] += 1
    return r


def fmt_us(us):
    if us is None:
        return "-"
    return f"{us:.0f}us" if us < 1000 else f"{us / 1000:.2f}ms"


def spread(values):
    m = statistics.median(values)
    return (max(values) - min(values)) / m if m else 0.0


def placement_summary(lines):
    """Average of the per-cell 'role:p0/p1' shares."""
    acc = {}
    for line in lines:
        for part in line.split():
            role, _, shares = part.partition(":")
            acc.setdefault(role, []).append([int(x) for x in shares.split("/")])
    out = []
    for role, rows in acc.items():
        if not any(sum(r) for r in rows):
            continue
        avg = [round(statistics.mean(col)) for col in zip(*rows)]
        out.append(f"{role} " + "/".join(f"{x}%" for x in avg))
    return ", ".join(out)


def main(out):
    meta = read_kv(os.path.join(out, "meta.txt"))
    clk = int(meta["clk_tck"])
    cells = {}
    for row in read_tsv(os.path.join(out, "raw.tsv")):
        cell = f"{row['variant']}.{row['sidecar']}.c{row['conns']}.r{row['rep']}"
        w = parse_wrk(os.path.join(out, "wrk", cell + ".txt"))
        n = w["requests"] or 1
        w["proxy_us"] = int(row["sidecar_ticks"]) * 1e6 / clk / n if row["sidecar"] != "none" else None
        w["path_us"] = ((int(row["sidecar_ticks"]) + int(row["backend_ticks"])) * 1e6 / clk
                        + int(row["wrk_ms"]) * 1e3) / n
        w["backend_us"] = int(row["backend_ticks"]) * 1e6 / clk / n
        w["wrk_us"] = int(row["wrk_ms"]) * 1e3 / n
        w["sleeps"] = int(row["sidecar_sleeps"]) / n if row["sidecar"] != "none" else None
        ours = (int(row["sidecar_ticks"]) + int(row["backend_ticks"])) / clk + int(row["wrk_ms"]) / 1e3
        capacity = float(meta["seconds"]) * int(meta["cpus"])
        w["other"] = max(0.0, int(row["busy_ticks"]) / clk - ours) / capacity * 100
        w["placement"] = row.get("placement", "")
        w["rep"] = row["rep"]
        cells.setdefault((row["variant"], row["sidecar"], int(row["conns"])), []).append(w)

    def med(reps, key):
        vals = [r[key] for r in reps if r[key] is not None]
        return statistics.median(vals) if vals else None

    groups = {}
    for (variant, sidecar, conns), reps in cells.items():
        groups[(variant, sidecar, conns)] = {
            **{k: med(reps, k) for k in ("rps", "p50", "p99", "proxy_us", "path_us", "backend_us",
                                                 "wrk_us", "other", "sleeps")},
            "spread": spread([r["rps"] or 0 for r in reps]),
            "errors": sum(r["non2xx"] + r["sockerr"] for r in reps),
            "placement": [r["placement"] for r in reps],
            "reps": len(reps),
        }
    variants = list(dict.fromkeys(k[0] for k in groups))
    stability = {v: statistics.mean(g["spread"] for k, g in groups.items() if k[0] == v)
                 for v in variants}
    order = sorted(variants, key=lambda v: stability[v])

    print(f"# {meta['kernel']}, {meta['cpus']} CPUs; {meta['wrk']}; {meta['haproxy']}; "
          f"{meta['nginx']}")
    print(f"# sockmesh-proxy {meta['proxy']} (built {meta['proxy_built']}, sha256 "
          f"{meta['proxy_sha256']})")
    print(f"# wrk -t{meta['wrk_threads']} -c{{{meta['conns'].replace(' ', ',')}}} "
          f"-d{meta['seconds']}s --latency, keep-alive; median of {meta['reps']} runs per cell")
    print("# proxy us/req = utime+stime of the sidecar's processes / requests (loopback softirq "
          "work done in its context included); path us/req = the same for wrk + sidecar + backend;")
    print("# sleeps/req = the sidecar's voluntary context switches (blocking waits, each ended "
          "by a wake-up) per request")
    print("# other = CPU used by processes not in the bench (other work on the host), % of all "
          f"CPUs; before the run the host was {meta.get('busy_before_pct', '?')}% busy")
    for i, variant in enumerate(order):
        others = ", ".join(f"{v} {stability[v] * 100:.1f}%" for v in order if v != variant)
        label = ("the only variant run" if len(order) == 1 else
                 "headline: the more stable variant" if i == 0 else "for comparison")
        print()
        print(f"== {variant} ({label}; mean req/s spread between runs "
              f"{stability[variant] * 100:.1f}%{'; ' + others if others else ''}) ==")
        header = (f"{'sidecar':<25}{'conns':>6}{'req/s':>9}{'p50':>9}{'p99':>9}"
                  f"{'proxy us/req':>14}{'path us/req':>13}{'req/s vs HAP':>14}"
                  f"{'us/req vs HAP':>15}{'sleeps/req':>12}{'spread':>8}{'other':>7}{'errors':>8}")
        print(header)
        print("-" * len(header))
        conns_levels = sorted({k[2] for k in groups if k[0] == variant})
        for conns in conns_levels:
            hap = groups.get((variant, "haproxy", conns))
            for sidecar in NAMES:
                g = groups.get((variant, sidecar, conns))
                if not g:
                    continue
                rps_ratio = f"{g['rps'] / hap['rps']:.2f}x" if hap and hap["rps"] and g["rps"] else "-"
                cpu_ratio = (f"{g['proxy_us'] / hap['proxy_us']:.2f}x"
                             if hap and hap["proxy_us"] and g["proxy_us"] is not None else "-")
                proxy_us = f"{g['proxy_us']:.1f}" if g["proxy_us"] is not None else "-"
                sleeps = f"{g['sleeps']:.2f}" if g["sleeps"] is not None else "-"
                print(f"{NAMES[sidecar]:<25}{conns:>6}{g['rps'] or 0:>9.0f}{fmt_us(g['p50']):>9}"
                      f"{fmt_us(g['p99']):>9}{proxy_us:>14}{g['path_us']:>13.1f}{rps_ratio:>14}"
                      f"{cpu_ratio:>15}{sleeps:>12}{g['spread'] * 100:>7.1f}%{g['other']:>6.0f}%{g['errors']:>8}")
        print("where threads ran (share of busy samples on cpu0/cpu1, all cells):")
        for sidecar in NAMES:
            lines = [p for k, g in groups.items() if k[0] == variant and k[1] == sidecar
                     for p in g["placement"]]
            if lines:
                print(f"  {NAMES[sidecar]:<25}{placement_summary(lines)}")

    # Cell by cell (same run, interleaved): this build against SM_PROXY_BENCH_BEFORE, and
    # the epoll event loop against io_uring.
    def ratios(title, pairs):
        if not any(k[1] == b for k in groups for _, b in pairs) or \
                not any(k[1] == a for k in groups for a, _ in pairs):
            return
        print()
        print(f"== {title}: ratios of the medians ==")
        header = (f"{'variant':<10}{'sidecar':<25}{'conns':>6}{'req/s':>9}{'p50':>8}{'p99':>8}"
                  f"{'proxy us/req':>14}")
        print(header)
        print("-" * len(header))
        for variant in order:
            for now, then in pairs:
                for conns in sorted({k[2] for k in groups if k[0] == variant}):
                    a, b = groups.get((variant, now, conns)), groups.get((variant, then, conns))
                    if not a or not b:
                        continue
                    ratio = lambda k: (f"{a[k] / b[k]:.3f}" if a[k] and b[k] else "-")
                    print(f"{variant:<10}{NAMES[now]:<25}{conns:>6}{ratio('rps'):>9}"
                          f"{ratio('p50'):>8}{ratio('p99'):>8}{ratio('proxy_us'):>14}")
        print("(req/s above 1 is faster; p50, p99 and proxy us/req below 1 are better)")

    ratios(f"this build / before ({meta.get('before', '?')})",
           [("sockmesh", "before"), ("sockmesh-passthrough", "before-passthrough")])
    ratios("epoll / io_uring (this build)",
           [("sockmesh-epoll", "sockmesh"), ("sockmesh-epoll-passthrough", "sockmesh-passthrough")])

    mem_path = os.path.join(out, "memory.tsv")
    if os.path.exists(mem_path):
        mem = {}
        for row in read_tsv(mem_path):
            mem.setdefault(row["sidecar"], {})[row["state"]] = row
        print()
        print(f"== memory: idle, and holding {meta['hold']} idle keep-alive client connections "
              "(one request each) ==")
        header = (f"{'sidecar':<25}{'RSS idle':>10}{'PSS idle':>10}{'RSS held':>10}{'PSS held':>10}"
                  f"{'KB/conn':>9}{'conns on :15001':>17}{'RSS after load':>16}")
        print(header)
        print("-" * len(header))
        for sidecar in NAMES:
            m = mem.get(sidecar)
            if not m:
                continue
            idle, held, after = m.get("idle"), m.get("held"), m.get("after-load")
            mb = lambda kb: f"{int(kb) / 1024:.1f}M"
            after_s = mb(after["rss_kb"]) if after else "-"
            if not held or not held.get("pss_kb"):
                reason = held.get("established", "") if held else "not measured"
                print(f"{NAMES[sidecar]:<25}{mb(idle['rss_kb']):>10}{mb(idle['pss_kb']):>10}  {reason}")
                continue
            est = int(held["established"])
            per = (int(held["pss_kb"]) - int(idle["pss_kb"])) / est if est else 0
            print(f"{NAMES[sidecar]:<25}{mb(idle['rss_kb']):>10}{mb(idle['pss_kb']):>10}"
                  f"{mb(held['rss_kb']):>10}{mb(held['pss_kb']):>10}{per:>9.1f}{est:>17}"
                  f"{after_s:>16}")
        first = next(iter(dict.fromkeys(k[0] for k in groups)), None)
        served = {sd: sum(r["requests"] for (v, s2, _), reps in cells.items()
                          if v == first and s2 == sd for r in reps if r["rep"] == "1")
                  for sd in NAMES}
        print("(RSS and PSS summed over the sidecar's processes; PSS counts nginx's shared "
              "pages once; KB/conn = PSS growth / connections;")
        print(f" after load = after the {first} cells of the first repetition: "
              + ", ".join(f"{NAMES[sd]} {n / 1e6:.2f}M requests" for sd, n in served.items()
                          if n and sd in mem) + ")")

    events = os.path.join(out, "events.txt")
    if os.path.exists(events):
        print()
        print("!! " + open(events).read().strip().replace("\n", "\n!! "))
    bad = [(k, g["errors"]) for k, g in groups.items() if g["errors"]]
    for (variant, sidecar, conns), n in bad:
        print(f"!! {variant} {sidecar} -c{conns}: {n} non-2xx/socket errors (see wrk/)")
    flat = os.path.join(out, "perf-flat.txt")
    if os.path.exists(flat):
        print()
        print("== sockmesh-proxy routed under wrk -c64: perf record -g, top symbols ==")
        shown = 0
        for line in open(flat):
            if line.strip() and not line.startswith("#") and shown < 15:
                print("  " + line.rstrip())
                shown += 1
        print(f"  (call graphs: {os.path.relpath(os.path.join(out, 'perf-report.txt'))})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
