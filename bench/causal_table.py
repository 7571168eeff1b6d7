#!/usr/bin/python3
"""causal_table.py — the tables of RESULTS.md ("Treatment effects on IHDP") from the runs of
bench/run_causal.sh: per replication sqrt PEHE out of sample, mean +- s.e. over all
replications and over 1-8, each run's CPU seconds, and paired differences (mean +- s.e. of the
per-replication differences) of every run against the reference runs.

Usage: bench/causal_table.py [results dir] [--ref NAME ...] [--runs A,B,..] (default
results/causal; references tarnet, grid-mmd, grid-wass where present; --runs: only these runs,
in this order, as columns).
"""
import json
import math
import os
import sys

ROOT = __file__.rsplit("/bench/", 1)[0]


def mean_se(v):
    m = sum(v) / len(v)
    se = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1) / len(v)) if len(v) > 1 else float("nan")
    return m, se


def main():
    args = sys.argv[1:]
    refs, only = [], None
    if "--runs" in args:
        i = args.index("--runs")
        only = args[i + 1].split(",")
        del args[i:i + 2]
    while "--ref" in args:
        i = args.index("--ref")
        refs.append(args[i + 1])
        del args[i:i + 2]
    d = args[0] if args else os.path.join(ROOT, "results", "causal")
    runs = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".json"):
            name = f[:-5]
            try:
                runs[name] = json.load(open(os.path.join(d, f)))
            except ValueError:  # a run still in progress
                continue
            cpu = os.path.join(d, name + ".cpu")
            runs[name]["cpu"] = float(open(cpu).read()) if os.path.exists(cpu) else float("nan")
    if only:
        missing = [r for r in only if r not in runs]
        if missing:
            sys.exit("causal_table: no results for " + ", ".join(missing))
        runs = {r: runs[r] for r in only}
    refs = refs or [r for r in ("tarnet", "grid-mmd", "grid-wass") if r in runs]
    names = list(runs)
    print("| rep | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    n = max(len(r["per_rep"]) for r in runs.values())
    for k in range(n):
        cells = [f"{r['per_rep'][k][1]:.3f}" if k < len(r["per_rep"]) else "" for r in runs.values()]
        print(f"| {k + 1} | " + " | ".join(cells) + " |")
    for label, sl in (("mean ± s.e.", slice(None)), ("reps 1–8", slice(0, 8))):
        cells = []
        for r in runs.values():
            m, se = mean_se([p[1] for p in r["per_rep"][sl]])
            cells.append(f"{m:.2f} ± {se:.2f}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("| ε_ATE out | " + " | ".join("%.2f ± %.2f" % mean_se([p[3] for p in r["per_rep"]]) for r in runs.values()) + " |")
    print("| CPU s | " + " | ".join(f"{r['cpu']:.0f}" for r in runs.values()) + " |")
    print()
    for ref in refs:
        for name in names:
            if name == ref:
                continue
            a, b = runs[name]["per_rep"], runs[ref]["per_rep"]
            m = min(len(a), len(b))
            diff = [a[k][1] - b[k][1] for k in range(m)]
            dm, dse = mean_se(diff)
            d8 = mean_se(diff[:8]) if m >= 8 else (float("nan"), float("nan"))
            better = sum(x < 0 for x in diff)
            print(f"{name} − {ref}: {dm:+.3f} ± {dse:.3f} over {m} (better on {better}); "
                  f"reps 1–8 {d8[0]:+.3f} ± {d8[1]:.3f}")


if __name__ == "__main__":
    main()
