#!/usr/bin/env python3
"""Shares of perf samples, from `perf script -F comm,tid,ip,sym` output (STACKS).

    stacks.py fold STACKS PATTERN...          samples whose stack has a frame matching each
                                              regex (inclusive share)
    stacks.py under STACKS PATTERN [DEPTH]    the frames DEPTH (1) below the outermost match
    stacks.py leaves STACKS PATTERN [N] [MID] the leaves of matching stacks (N most common,
                                              25), each with its first frame matching MID
    stacks.py folded STACKS                   one line per distinct stack, root first, with
                                              the thread name as its root frame and the
                                              sample count last (the input of
                                              inferno-flamegraph or flamegraph.pl)
"""
import collections
import re
import sys


def read_samples(path):
    """Every sample as (thread name, frames leaf first)."""
    samples, comm, cur = [], None, []
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        if not line.strip():
            if cur:
                samples.append((comm, cur))
            comm, cur = None, []
        elif line.startswith(("\t", " ")):
            parts = line.strip().split(" ", 1)
            cur.append(parts[1] if len(parts) > 1 else parts[0])
        else:
            # the header line: `comm tid` (a thread name may hold spaces)
            comm, cur = re.sub(r"\s+\d+\s*$", "", line.strip()) or "?", []
    if cur:
        samples.append((comm, cur))
    return samples


def read_stacks(path):
    """Every sample's frames, leaf first."""
    return [frames for _, frames in read_samples(path)]


def folded(path):
    """Collapsed stacks: `thread;outermost;...;leaf count`."""
    counts = collections.Counter()
    for comm, frames in read_samples(path):
        stack = [comm or "?"] + list(reversed(frames))
        counts[";".join(f.replace(";", ":") for f in stack)] += 1
    for stack, count in sorted(counts.items()):
        print(stack, count)


def short(frame, generic, width):
    """A frame with long generic arguments elided."""
    return re.sub(r"<[^<>]{%d,}>" % generic, "<…>", frame)[:width]


def top(counter, matched, total, n):
    print("total", matched, "of", total)
    for key, count in counter.most_common(n):
        print(f"{100 * count / total:6.2f}% {key}")


def fold(stacks, patterns):
    print("samples", len(stacks))
    for p in patterns:
        r = re.compile(p)
        n = sum(1 for s in stacks if any(r.search(f) for f in s))
        print(f"{100 * n / len(stacks):6.2f}%  {p}")


def under(stacks, pattern, depth=1):
    r = re.compile(pattern)
    c, matched = collections.Counter(), 0
    for s in stacks:
        idx = [i for i, f in enumerate(s) if r.search(f)]
        if not idx:
            continue
        matched += 1
        i = max(idx)  # the outermost match
        c[short(s[i - depth], 60, 150) if i - depth >= 0 else "(self)"] += 1
    top(c, matched, len(stacks), 25)


def leaves(stacks, pattern, n=25, mid=None):
    r = re.compile(pattern)
    m = re.compile(mid) if mid else None
    c, matched = collections.Counter(), 0
    for s in stacks:
        if not any(r.search(f) for f in s):
            continue
        matched += 1
        key = s[0]
        if m:
            hits = [f for f in s if m.search(f)]
            key = (hits[0] if hits else "-") + "  <<  " + s[0]
        c[short(key, 40, 200)] += 1
    top(c, matched, len(stacks), n)


if __name__ == "__main__":
    mode, path, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if mode == "folded":
        folded(path)
        sys.exit(0)
    stacks = read_stacks(path)
    if mode == "fold":
        fold(stacks, args)
    elif mode == "under":
        under(stacks, args[0], *map(int, args[1:2]))
    elif mode == "leaves":
        leaves(stacks, args[0], *map(int, args[1:2]), *args[2:3])
    else:
        sys.exit(__doc__)
