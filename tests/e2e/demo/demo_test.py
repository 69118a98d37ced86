#!/usr/bin/python3
"""`make demo`, non-interactively and briefly: runs demo/demo.py and checks what its report
says: every reviews version served before the rule, the 50/50 v1/v3 split after it (within
tolerance), the sidecars' response headers, the loader's status and map dump, and that the
teardown left no sm-demo namespace, pin, cgroup or /etc/netns entry behind.

usage: demo_test.py --build-dir DIR --mode ebpf|iptables     (exit 77: skipped, not root)"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(ROOT, "demo"))
import mesh as m  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--mode", default="ebpf", choices=["ebpf", "iptables"])
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIPPED: needs root (network namespaces, BPF programs, cgroups)")
        return 77
    failures = []

    def check(cond, what):
        print("{} {}".format("ok  " if cond else "FAIL", what))
        if not cond:
            failures.append(what)

    with tempfile.NamedTemporaryFile(prefix="sm-demo-test-", suffix=".json") as data:
        proc = subprocess.run([sys.executable, os.path.join(ROOT, "demo", "demo.py"), "--build-dir",
                               args.build_dir, "--mode", args.mode, "--requests", "30",
                               "--requests-after", "100", "--json", data.name],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=240)
        print(proc.stdout)
        check(proc.returncode == 0, "demo.py exits 0 (got {})".format(proc.returncode))
        try:
            rep = json.load(open(data.name))
        except ValueError:
            rep = {}
    text = proc.stdout
    for section in ("[1]", "[2]", "[3]", "[4]", "[5]", "teardown:"):
        check(section in text, "the report has section " + section)

    before = rep.get("before", [])
    check(len(before) == 30, "30 requests before the rule")
    check({"v1", "v2", "v3"} <= set(before), "every reviews version served: {}".format(sorted(set(before))))
    check(set(before) <= {"v1", "v2", "v3"}, "no error or mismatched stars before the rule")
    after = rep.get("after", [])
    v3 = after.count("v3")
    check(len(after) == 100 and set(after) <= {"v1", "v3"}, "after the rule only v1 and v3")
    # 100 fair coin flips: 3.5 standard deviations is 50 +- 17.5.
    check(32 <= v3 <= 68, "50/50 split within tolerance (v3 {} of 100)".format(v3))
    check(["server", "sockmesh"] in rep.get("headers", []), "server: sockmesh added by the sidecar")
    check(any(k == "x-sockmesh-upstream-service-time" for k, _ in rep.get("headers", [])),
          "x-sockmesh-upstream-service-time added by the sidecar")
    check(rep.get("trace_spans", 0) > 0, "the sidecars reported spans to the collector")
    # The longest trace has all four hops.
    services = set(rep.get("trace_services", []))
    check({"productpage-v1", "details-v1", "ratings-v1"} <= services and
          any(s.startswith("reviews-") for s in services),
          "the trace has productpage, details, reviews and ratings: {}".format(sorted(services)))
    if args.mode == "ebpf":
        check(rep.get("loader_workloads") == len(m.WORKLOADS), "every workload enrolled")
        check('"proxy_uid": 1337' in rep.get("map_dump", ""), "the map dump shows the enrolment")
    else:
        check("REDIRECT" in rep.get("map_dump", ""), "the nat rules redirect to the sidecar")
    check(rep.get("leftovers") == [], "the report says nothing was left behind")
    left = m.leftovers()
    check(left == [], "no sm-demo netns, pins, cgroup or /etc/netns entries: {}".format(left))
    check(not os.path.exists(m.STATE_FILE), "no state file left")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
