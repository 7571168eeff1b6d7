#!/usr/bin/env python3
"""nas_table.py — the summary tables of bench/reproduce_nas.sh's results folder, as Markdown.

    python3 bench/nas_table.py DIR [--baselines BDIR]

First one row per search (method and search seed): its time, the peak scratch memory of one
iteration and the process's peak resident memory, the supernet's test accuracy, and the found
cell trained from scratch (weights, accuracy per training seed, their mean). Then the
hand-designed and the random cells, trained the same way. Last, per method, the mean over its
search seeds against the random cells' mean, with the standard error of the difference (cells
as the samples), and against the random cells within 25 % of the found cells' weights. Last,
the cells derived from each method's search seeds together (`blo nas derive`, the stage
"averaged" of reproduce_nas.sh), where trained. --baselines BDIR takes the hand-designed and
random cells' trainings from BDIR instead of DIR (an earlier run with the same training
protocol, reproduce_nas.sh --baselines)."""
import glob
import json
import os
import re
import statistics
import sys

METHODS = ["first_order", "darts", "rhg", "cg", "first_order_perturb", "darts_perturb"]


def load(path):
    with open(path) as f:
        return json.load(f)


def trainings(d, name):
    runs = {}
    for p in glob.glob(os.path.join(d, "train_%s_s*.json" % name)):
        runs[int(re.search(r"_s(\d+)\.json$", p).group(1))] = load(p)
    return [runs[k] for k in sorted(runs)]


def sem(xs):
    """The standard error of the mean of xs (0 for a single value)."""
    return statistics.stdev(xs) / len(xs) ** 0.5 if len(xs) > 1 else 0.0


def weights(n):
    return "{:,}".format(n).replace(",", " ")


def pct(accs):
    return ", ".join("%.1f %%" % (100 * a) for a in accs)


def main():
    args = sys.argv[1:]
    if len(args) == 3 and args[1] == "--baselines":
        d, bdir = args[0], args[2]
    elif len(args) == 1:
        d = bdir = args[0]
    else:
        sys.exit("usage: nas_table.py DIR [--baselines BDIR]")
    print("| method | search seed | search time | peak memory: iteration scratch / process RSS "
          "| supernet test acc | found cell: weights | test accuracy per training seed | mean |")
    print("|---|---|---|---|---|---|---|---|")
    found = {m: [] for m in METHODS}
    for m in METHODS:
        seeds = sorted(int(re.search(r"_seed(\d+)\.json$", p).group(1))
                       for p in glob.glob(os.path.join(d, "search_%s_seed*.json" % m)))
        for sd in seeds:
            name = "%s_seed%d" % (m, sd)
            s = load(os.path.join(d, "search_%s.json" % name))
            rss = "?"
            rp = os.path.join(d, "search_%s.rss" % name)
            if os.path.exists(rp):
                rss = "%.0f MB" % (int(open(rp).read().split()[-1]) / 1024)
            t = trainings(d, name)
            accs = [r["test_acc"] for r in t]
            if accs:
                found[m].append((statistics.mean(accs), t[0]["params"]))
            print("| %s (T = %d) | %d | %.0f s | %.0f MB / %s | %.1f %% | %s | %s | %s |" % (
                m, s["inner_steps"], sd, s["seconds"], s["peak_bytes"] / 2**20, rss,
                100 * s["test_acc"], weights(t[0]["params"]) if t else "?",
                pct(accs) or "not trained", "%.2f %%" % (100 * statistics.mean(accs)) if accs else ""))
    print()
    print("| baseline cell | weights | test accuracy per training seed | mean |")
    print("|---|---|---|---|")
    rnd = []
    for name in ["hand"] + ["random_%d" % i for i in range(1, 100)]:
        t = trainings(bdir, name)
        if not t:
            continue
        accs = [r["test_acc"] for r in t]
        if name != "hand":
            rnd.append((t[0]["params"], statistics.mean(accs)))
        print("| %s | %s | %s | %.2f %% |" % (
            "hand-designed (all sep_conv_3x3)" if name == "hand" else name.replace("_", " "),
            weights(t[0]["params"]), pct(accs), 100 * statistics.mean(accs)))
    if not rnd:
        return
    means = [a for _, a in rnd]
    rmean = statistics.mean(means)
    print()
    print("Random cells (%d): mean %.2f %%, best %.2f %%, worst %.2f %%, standard deviation "
          "%.2f points; %s to %s weights." % (
              len(rnd), 100 * rmean, 100 * max(means), 100 * min(means),
              100 * (statistics.stdev(means) if len(means) > 1 else 0),
              weights(min(w for w, _ in rnd)), weights(max(w for w, _ in rnd))))
    print()
    print("| method | found cells (search seeds) | their mean | against the random mean "
          "(± standard error) | seeds above the random mean "
          "| random cells within 25 % of the weights: mean |")
    print("|---|---|---|---|---|---|")
    for m in METHODS:
        f = found[m]
        if not f:
            continue
        v = statistics.mean(a for a, _ in f)
        near = [a for w, a in rnd if any(abs(w - fw) <= 0.25 * fw for _, fw in f)]
        # the standard error of the difference of two means, cells as the samples
        se = (sem([a for a, _ in f]) ** 2 + sem(means) ** 2) ** 0.5
        print("| %s | %s | %.2f %% | %+.2f ± %.2f points | %d of %d | %s |" % (
            m, ", ".join("%.2f %%" % (100 * a) for a, _ in f), 100 * v, 100 * (v - rmean),
            100 * se, sum(a > rmean for a, _ in f), len(f),
            "%.2f %% (%d cells)" % (100 * statistics.mean(near), len(near)) if near else "none"))

    avg = [(m, trainings(d, m + "_averaged")) for m in METHODS]
    avg = [(m, t) for m, t in avg if t]
    if avg:
        print()
        print("| method | cell of the search seeds' mean op weights: weights "
              "| test accuracy per training seed | mean | against the random mean |")
        print("|---|---|---|---|---|")
        for m, t in avg:
            accs = [r["test_acc"] for r in t]
            v = statistics.mean(accs)
            print("| %s | %s | %s | %.2f %% | %+.2f points |" % (
                m, weights(t[0]["params"]), pct(accs), 100 * v, 100 * (v - rmean)))


if __name__ == "__main__":
    main()
