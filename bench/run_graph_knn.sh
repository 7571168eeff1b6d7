#!/usr/bin/env bash
# run_graph_knn.sh — kNN-LDS on the UCI data with no graph (data/uci: Wine, Breast cancer,
# Digits): the GCN on the kNN graph (cosine, k = 10), LDS from that graph, and LDS's schedule
# with θ frozen at its start, in one run per seed (`--baseline`). Every setting that matters
# is pinned: trhg, T = 5 inner Adam steps (lr 0.01), window 5, warm start, 50 outer SGD steps
# (lr 1), 16 sampled graphs for the prediction, GCN 16 hidden, dropout 0.5, L2 5e-4, 200
# epochs alone; features as converted (standardised / pixel counts), not row-normalised;
# outer step 1, all validation nodes drive θ, the last iteration scored. PROTOCOL=lds runs
# LDS's own protocol instead: half of the validation nodes drive θ, the other half is the
# early-stopping set (patience 10 outer iterations, the best one scored), and the outer step is
# chosen from {1, 0.1, 0.01, 0.001} by that set's accuracy (one LDS run per step size).
# CANDIDATES=K restricts θ to the kNN graph with K neighbours plus the given one (`--candidates
# K`: the pairs outside stay 0); PATIENCE=P adds early stopping to the plain run (`--patience
# P`, the outer step stays 1).
# Usage: bench/run_graph_knn.sh [build folder] [seeds] [data sets]
#        (defaults: build-release, "0 1 2 3 4", "wine cancer digits"). One JSON line per run
#        on stdout, then the means.
set -euo pipefail
b=${1:-build-release}
seeds=${2:-0 1 2 3 4}
sets=${3:-wine cancer digits}
if [ "${PROTOCOL:-plain}" = lds ]; then
    proto=(--patience 10 --outer-lr-grid 1,0.1,0.01,0.001)
else
    proto=(--outer-lr 1 --patience "${PATIENCE:-0}")
fi
if [ -n "${CANDIDATES:-}" ]; then proto+=(--candidates "$CANDIDATES"); fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for data in $sets; do
    for seed in $seeds; do
        "$b/blo" graph --data "$data" --knn 10 --features raw --baseline --seed "$seed" \
            --method trhg --inner 5 --K 5 --init warm --inner-opt adam --inner-lr 0.01 \
            --outer 50 --outer-opt sgd "${proto[@]}" --samples 16 --hidden 16 --dropout 0.5 \
            --wd 5e-4 --epochs 200 --gcn-lr 0.01 --threads 1 -q --json | tee -a "$out"
    done
done
python3 - "$out" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
for d in dict.fromkeys(r["data"] for r in rows):
    rs = [r for r in rows if r["data"] == d]
    def f(k):
        v = [100 * r[k] for r in rs]
        return "%.2f ± %.2f" % (st.mean(v), st.stdev(v) / len(v) ** 0.5 if len(v) > 1 else 0)
    print("%s (%d seeds): kNN-GCN %s, kNN-LDS %s, frozen θ %s (test %%, mean ± s.e.)" %
          (d, len(rs), f("gcn_test"), f("lds_test"), f("frozen_test")))
PY
