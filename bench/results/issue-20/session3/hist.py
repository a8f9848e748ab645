#!/usr/bin/env python3
"""Reads a Prometheus histogram dump (smppd_api_submit_seconds) and prints the share under
each bucket bound and the p50/p99/p99.9 bucket bounds (the smallest bound holding that share)."""
import re, sys
args = sys.argv[1:]
metric = "smppd_api_submit_seconds"
if args and args[0].startswith("--metric="):
    metric = args.pop(0).split("=", 1)[1]
for path in args:
    buckets, count = [], None
    for line in open(path):
        m = re.match(metric + r'_bucket\{le="([^"]+)"\} (\S+)', line)
        if m:
            le = float('inf') if m.group(1) == '+Inf' else float(m.group(1))
            buckets.append((le, float(m.group(2))))
        m = re.match(metric + r'_count (\S+)', line)
        if m:
            count = float(m.group(1))
    if not count:
        print(path, "no samples"); continue
    q = lambda p: next(le for le, c in sorted(buckets) if c >= p * count)
    under2 = next(c for le, c in sorted(buckets) if le >= 0.002) / count
    print(f"{path}: n={count:.0f} under 2 ms {under2*100:.2f}%  p50<={q(0.5)*1e3:g} ms  p99<={q(0.99)*1e3:g} ms  p99.9<={q(0.999)*1e3:g} ms")
