#!/usr/bin/python3
"""Where processes ran: `placement.py OUT ROLE=PID[,PID...]...` samples every thread of the
given processes every 0.2 s until SIGTERM, then writes one line to OUT:
  ROLE:cpu0%/cpu1%/... ROLE:...
counting a thread's sample only when it used CPU since the previous sample (an idle
thread's "last CPU" says nothing), attributed to the CPU it last ran on (/proc stat field
39). Reads /proc only; costs well under 1% of a CPU.
"""
import os
import signal
import sys
import time


def threads(pid):
    try:
        return os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []


def sample(pid, tid):
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is field 3 (state): utime/stime are fields 14/15, processor is field 39.
    return int(fields[11]) + int(fields[12]), int(fields[36])


def main(argv):
    out, roles = argv[1], {}
    for arg in argv[2:]:
        role, _, pids = arg.partition("=")
        roles[role] = [p for p in pids.split(",") if p]
    ncpu = os.cpu_count()
    counts = {role: [0] * ncpu for role in roles}
    last = {}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        for role, pids in roles.items():
            for pid in pids:
                for tid in threads(pid):
                    s = sample(pid, tid)
                    if s is None:
                        continue
                    ticks, cpu = s
                    if (pid, tid) in last and ticks > last[(pid, tid)]:
                        counts[role][cpu] += 1
                    last[(pid, tid)] = ticks
        time.sleep(0.2)
    parts = []
    for role, c in counts.items():
        total = sum(c) or 1
        parts.append(f"{role}:" + "/".join(f"{100 * n // total}" for n in c))
    with open(out, "w") as f:
        f.write(" ".join(parts) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
