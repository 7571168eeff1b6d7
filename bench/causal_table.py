#!/usr/bin/python3
"""causal_table.py — the tables of RESULTS.md ("Treatment effects on IHDP") from the runs of
bench/run_causal.sh: per replication sqrt PEHE out of sample, mean +- s.e. over all
replications and over 1-8, each run's CPU seconds, and paired differences (mean +- s.e. of the
per-replication differences) of every run against the reference runs.

Usage: bench/causal_table.py [results dir[,dir...]] [--ref NAME ...] [--runs A,B,..] (default
results/causal; references tarnet, grid-mmd, grid-wass where present; --runs: only these runs,
in this order, as columns). Several folders (the SEED=S runs of bench/run_causal.sh) pool
their replications: a run's rows are those of every folder that holds it, in the order given,
"reps 1-8" keeps replications 1-8 of each, and CPU s is the mean over the folders.
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
    dirs = args[0].split(",") if args else [os.path.join(ROOT, "results", "causal")]
    runs = {}
    for d in dirs:
        for f in sorted(os.listdir(d)):
            if not f.endswith(".json"):
                continue
            name = f[:-5]
            try:
                r = json.load(open(os.path.join(d, f)))
            except ValueError:  # a run still in progress
                continue
            cpu = os.path.join(d, name + ".cpu")
            cpu = float(open(cpu).read()) if os.path.exists(cpu) else float("nan")
            tag = os.path.basename(os.path.normpath(d)) if len(dirs) > 1 else ""
            if tag and not tag.startswith("seed"):  # run_causal.sh's own folder: SEED=0
                tag = "seed0"
            rows = [(tag, k + 1, p) for k, p in enumerate(r["per_rep"])]
            if name in runs:
                runs[name]["rows"] += rows
                runs[name]["cpus"].append(cpu)
            else:
                runs[name] = {"rows": rows, "cpus": [cpu]}
    for r in runs.values():
        r["per_rep"] = [p for _, _, p in r["rows"]]
        r["first8"] = [k <= 8 for _, k, _ in r["rows"]]
        r["cpu"] = sum(r["cpus"]) / len(r["cpus"])
    if only:
        missing = [r for r in only if r not in runs]
        if missing:
            sys.exit("causal_table: no results for " + ", ".join(missing))
        runs = {r: runs[r] for r in only}
    refs = refs or [r for r in ("tarnet", "grid-mmd", "grid-wass") if r in runs]
    names = list(runs)
    print("| rep | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    longest = max(runs.values(), key=lambda r: len(r["rows"]))
    for k, (tag, rep, _) in enumerate(longest["rows"]):
        cells = [f"{r['per_rep'][k][1]:.3f}" if k < len(r["per_rep"]) else "" for r in runs.values()]
        print(f"| {tag + ' ' if tag else ''}{rep} | " + " | ".join(cells) + " |")
    n_all = f"over {len(longest['rows'])}" if len(dirs) > 1 else "mean ± s.e."
    for label, first8 in ((n_all, False), ("reps 1–8", True)):
        cells = []
        for r in runs.values():
            m, se = mean_se([p[1] for p, f8 in zip(r["per_rep"], r["first8"]) if f8 or not first8])
            cells.append(f"{m:.2f} ± {se:.2f}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("| ε_ATE out | " + " | ".join("%.2f ± %.2f" % mean_se([p[3] for p in r["per_rep"]]) for r in runs.values()) + " |")
    print("| CPU s | " + " | ".join(f"{r['cpu']:.0f}" for r in runs.values()) + " |")
    print()
    for ref in refs:
        for name in names:
            if name == ref:
                continue
            a, b = runs[name], runs[ref]
            m = min(len(a["rows"]), len(b["rows"]))
            if a["rows"][:m] and [(t, k) for t, k, _ in a["rows"][:m]] != [(t, k) for t, k, _ in b["rows"][:m]]:
                sys.exit(f"causal_table: {name} and {ref} do not hold the same replications")
            diff = [a["per_rep"][k][1] - b["per_rep"][k][1] for k in range(m)]
            dm, dse = mean_se(diff)
            d8 = [x for x, f8 in zip(diff, a["first8"]) if f8]
            d8 = mean_se(d8) if len(d8) >= 2 else (float("nan"), float("nan"))
            better = sum(x < 0 for x in diff)
            print(f"{name} − {ref}: {dm:+.3f} ± {dse:.3f} over {m} (better on {better}); "
                  f"reps 1–8 {d8[0]:+.3f} ± {d8[1]:.3f}")


if __name__ == "__main__":
    main()
