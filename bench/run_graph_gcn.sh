#!/usr/bin/env bash
# run_graph_gcn.sh — the GCN alone (Kipf & Welling: 16 hidden, dropout 0.5, Adam 0.01, L2 5e-4
# on W1, 200 epochs) on Cora and Citeseer over seeds 0..4: test accuracy per seed and the mean.
# Usage: bench/run_graph_gcn.sh [build folder] (default build-release).
set -euo pipefail
b=${1:-build-release}
for data in cora citeseer; do
    accs=()
    for seed in 0 1 2 3 4; do
        a=$("$b/blo" graph --data "$data" --gcn-only --seed "$seed" --threads 2 -q --json |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["gcn_test"])')
        accs+=("$a")
        echo "$data seed $seed: test $a"
    done
    python3 -c 'import sys, statistics as s; v=[100*float(x) for x in sys.argv[2:]]; print("%s: mean %.2f %% (sd %.2f) over %d seeds" % (sys.argv[1], s.mean(v), s.stdev(v), len(v)))' "$data" "${accs[@]}"
done
