#!/usr/bin/env python3
"""nas_table.py — the summary table of bench/reproduce_nas.sh's results folder, as Markdown.

    python3 bench/nas_table.py DIR

One row per architecture: searched cells (with their search's time, peak scratch memory of
an iteration and the process's peak resident memory), the hand-designed cell and the random
cells; an architecture's accuracy is the mean over the training seeds found in DIR. Then the
random cells' mean and best against every searched cell."""
import glob
import json
import os
import re
import statistics
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def trainings(d, name):
    runs = {}
    for p in glob.glob(os.path.join(d, "train_%s_s*.json" % name)):
        runs[int(re.search(r"_s(\d+)\.json$", p).group(1))] = load(p)
    return [runs[k] for k in sorted(runs)]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: nas_table.py DIR")
    d = sys.argv[1]
    methods = ["first_order", "darts", "rhg", "cg"]
    print("| architecture | search time | peak memory (iteration scratch / process RSS) "
          "| supernet test acc | weights | test accuracy per training seed | mean |")
    print("|---|---|---|---|---|---|---|")
    found = {}
    for m in methods:
        sp = os.path.join(d, "search_%s.json" % m)
        if not os.path.exists(sp):
            print("| searched, %s | not run | | | | | |" % m)
            continue
        s = load(sp)
        rss = "?"
        rp = os.path.join(d, "search_%s.rss" % m)
        if os.path.exists(rp):
            rss = "%.0f MB" % (int(open(rp).read().split()[-1]) / 1024)
        t = trainings(d, m)
        accs = [r["test_acc"] for r in t]
        mean = statistics.mean(accs) if accs else float("nan")
        found[m] = mean
        print("| searched, %s (T = %d) | %.0f s | %.0f MB / %s | %.1f %% | %s | %s | %s |" % (
            m, s["inner_steps"], s["seconds"], s["peak_bytes"] / 2**20, rss, 100 * s["test_acc"],
            "{:,}".format(t[0]["params"]).replace(",", " ") if t else "?",
            ", ".join("%.1f %%" % (100 * a) for a in accs) or "not trained",
            "%.2f %%" % (100 * mean) if accs else ""))
    rows = []
    for name in ["hand"] + ["random_%d" % i for i in range(1, 100)]:
        t = trainings(d, name)
        if not t:
            continue
        accs = [r["test_acc"] for r in t]
        rows.append((name, t[0]["params"], accs, statistics.mean(accs)))
        print("| %s | | | | %s | %s | %.2f %% |" % (
            "hand-designed (all sep_conv_3x3)" if name == "hand" else name.replace("_", " "),
            "{:,}".format(t[0]["params"]).replace(",", " "),
            ", ".join("%.1f %%" % (100 * a) for a in accs), 100 * statistics.mean(accs)))
    rnd = [r for r in rows if r[0].startswith("random")]
    if rnd:
        means = [r[3] for r in rnd]
        print()
        print("Random cells (%d): mean %.2f %%, best %.2f %%, worst %.2f %%, standard deviation "
              "%.2f %%; weights %d to %d." % (
                  len(rnd), 100 * statistics.mean(means), 100 * max(means), 100 * min(means),
                  100 * (statistics.stdev(means) if len(means) > 1 else 0),
                  min(r[1] for r in rnd), max(r[1] for r in rnd)))
        for m, v in found.items():
            print("%s: %.2f %% (%+.2f points against the random mean: %s)." % (
                m, 100 * v, 100 * (v - statistics.mean(means)),
                "beats it" if v > statistics.mean(means) else "does not beat it"))


if __name__ == "__main__":
    main()
