#!/usr/bin/env python3
"""Reads divan output (stdin) and prints, for each argument, the median of two benchmarks and
their ratio: `bench_ratio.py BASELINE CANDIDATE` (for example decode_baseline
decode_and_normalize). A ratio of 0.5 means the candidate runs at half the baseline's speed."""
import re, sys

UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}

def medians(lines):
    out, group = {}, None
    for line in lines:
        m = re.match(r"^[├╰]─ (\S+)", line)
        if m:
            group = m.group(1)
            continue
        m = re.match(r"^[│ ]  [├╰]─ (\S+)\s+(.*)$", line)
        if m and group:
            cols = [c.strip() for c in m.group(2).split("│")]
            if len(cols) >= 3 and cols[2]:
                value, unit = cols[2].split()
                out[(group, m.group(1))] = float(value) * UNITS[unit]
    return out

def fmt(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return "%.3g %s" % (seconds / scale, unit)
    return "%.3g ns" % (seconds / 1e-9)

base, cand = sys.argv[1], sys.argv[2]
m = medians(sys.stdin.read().splitlines())
print("| input | %s (median) | %s (median) | speed vs baseline |" % (base, cand))
print("|---|---|---|---|")
for (group, arg), b in sorted(m.items()):
    if group != base or (cand, arg) not in m:
        continue
    c = m[(cand, arg)]
    print("| %s | %s | %s | %.0f %% |" % (arg, fmt(b), fmt(c), 100 * b / c))
