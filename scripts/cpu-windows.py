#!/usr/bin/env python3
"""CPU of each server process over each measured wrk run: scripts/bench's per-node figures.

    cpu-windows.py watch DURATION NAME=PID [NAME=PID ...] > windows.txt   (until SIGTERM)
    cpu-windows.py pair windows.txt raw.txt > per-node.txt

`watch` looks for a wrk process whose command line has `-d<DURATION>s` (the measured runs;
run.sh's warm-ups are shorter), reads the CPU seconds (user + system, all threads) of every
PID at its start and at its end, and prints one line per run:

    window wall_s=15.02 node1=3.41 node2=1.27 node3=1.30 haproxy=0.55

`pair` matches the windows, in order, with the BENCH lines of run.sh's raw.txt (one
measured run each) and prints each line's `NAME_ms_per_req` for every name, plus
`all_ms_per_req` over the names that start with `node`:

    BENCH-CPU label=placementd-3n scenario=put_alloc conns=64 rep=1 requests=54000
      node1_ms_per_req=0.181 ... all_ms_per_req=0.352

Why not run.sh's own `cpu_ms_per_req`: that one is all nodes together, with one decimal
(0.3 or 0.4 ms, a 30 % step at these costs). Error here: wrk is seen starting and ending at
most POLL_S late, so a window can miss the first POLL_S of a run and take in as much of the
quiet after it: under 1 % of a 15 s run.
"""
import os
import signal
import sys
import time

POLL_S = 0.05
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    """CPU seconds (user + system) of PID so far, or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / TICK


def find_wrk(flag):
    """The pid of a running wrk whose arguments include FLAG (-d15s), else None."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if args and os.path.basename(args[0]) == b"wrk" and flag in args:
            return int(d)
    return None


def watch(duration, named):
    flag = ("-d%ss" % duration).encode()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        wrk = find_wrk(flag)
        if wrk is None:
            time.sleep(POLL_S)
            continue
        t0, c0 = time.monotonic(), {n: cpu_s(p) for n, p in named}
        while not stop and os.path.exists("/proc/%d" % wrk):
            time.sleep(POLL_S)
        t1, c1 = time.monotonic(), {n: cpu_s(p) for n, p in named}
        cells = " ".join(
            "%s=%.2f" % (n, c1[n] - c0[n]) if c0[n] is not None and c1[n] is not None else "%s=-" % n
            for n, _ in named)
        print("window wall_s=%.2f %s" % (t1 - t0, cells), flush=True)


def fields(line):
    return dict(t.split("=", 1) for t in line.split()[1:] if "=" in t)


def pair(windows_path, raw_path):
    windows = [fields(l) for l in open(windows_path) if l.startswith("window ")]
    runs = [fields(l) for l in open(raw_path) if l.startswith("BENCH ")]
    if len(windows) != len(runs):
        print("# %d wrk windows for %d BENCH lines: not paired" % (len(windows), len(runs)))
        return
    for w, r in zip(windows, runs):
        n = int(r.get("requests", "0") or 0)
        names = [k for k in w if k != "wall_s"]
        cells, total = [], 0.0
        for k in names:
            if w[k] == "-" or n == 0:
                cells.append("%s_ms_per_req=-" % k)
                continue
            ms = float(w[k]) * 1000 / n
            total += ms if k.startswith("node") else 0.0
            cells.append("%s_ms_per_req=%.3f" % (k, ms))
        print("BENCH-CPU label=%s scenario=%s conns=%s rep=%s requests=%d wall_s=%s %s all_ms_per_req=%s"
              % (r.get("label", "-"), r.get("scenario", "-"), r.get("conns", "-"), r.get("rep", "-"),
                 n, w["wall_s"], " ".join(cells), "%.3f" % total if n else "-"))


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "watch":
        named = [(a.split("=", 1)[0], int(a.split("=", 1)[1])) for a in sys.argv[3:]]
        watch(sys.argv[2], named)
    elif len(sys.argv) == 4 and sys.argv[1] == "pair":
        pair(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
