#!/usr/bin/env bash
# run_causal.sh — the IHDP figures of RESULTS.md ("Treatment effects on IHDP"), each on the 10
# shipped replications: TARNet, CFR (MMD and Wasserstein) with α chosen from a grid by the
# validation criterion, and the bilevel variants at the grid's budget. Each run writes
# results/causal/<name>.json (the summary and per-replication scores) and <name>.cpu (the CPU
# seconds, user + system, of the whole command).
# Usage: bench/run_causal.sh [-b build dir] [name ...] (default: build-release, every run).
# SEED=S (default 0) passes --seed S — another start of every network and another split of each
# replication k (split seed S + k) — and writes to results/causal/seedS/ instead.
#
# Budgets: one training (3000 Adam steps, batch 100) costs ~9 s of CPU per replication (MMD;
# Wasserstein ~10 s); the grid trains three times. A bilevel run trains once, then spends the
# grid's other two trainings on outer iterations of 5 differentiated full-batch inner steps:
# ~0.17 s each with MMD (so 100), ~0.29 s with the Wasserstein IPM (so 65). The .cpu files
# say what each sweep actually cost.
# grid-alpha-wass-eq spends one training on the grid (3 × 1000 steps), one at its winner, and
# the third on 40 outer iterations.
# alpha-wass-cg-eq takes the implicit hypergradient (CG, 10 iterations, damping 0.01) after the
# 5 warm-started inner steps, which are then not differentiated: ~0.18 s an outer iteration, so 83.
# alpha-wass-mb-eq takes its inner steps on minibatches of 100 (--inner-batch), as the training
# does: ~0.13 s an outer iteration, so 155 (grid-alpha-wass-mb-eq: 75 after the grid and the
# training). The runs before it pin --inner-batch 0 (every training unit at each inner step).
# frozen-wass-adam-eq is alpha-wass-adam-eq with α held (outer step 1e-12): the same inner
# steps without the hypergradient, the control that separates tuning from continued training.
# The -carry runs continue the inner Adam across outer iterations, from the training's state
# (--inner-state carry); the -best runs end on the network of lowest validation criterion
# seen, the trained start included (--keep-best), as the grid keeps its best.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$root/build-release
if [ "${1:-}" = -b ]; then
    build=$2
    shift 2
fi
b=$build/blo
out=$root/results/causal
common=(--threads 1 -q --l2 0 --json)
if [ "${SEED:-0}" != 0 ]; then
    out=$out/seed$SEED
    common+=(--seed "$SEED")
fi
mkdir -p "$out"
# The runs made before Adam 1e-3 became the inner learner of the bilevel variants.
sgd="--inner-opt sgd --inner-lr 0.01"
declare -A runs=(
    [tarnet]=""
    [grid-mmd]="--tune grid --grid 0.1,1,10"
    [hyper-mmd]="--model cfr --alpha 1 --tune hyper --outer 20 --inner 5 --inner-batch 0 $sgd"
    [weights]="--tune weights --outer 20 --inner 5 --inner-batch 0 $sgd"
    [grid-wass]="--ipm wass --tune grid --grid 0.1,1,10"
    [hyper-wass-eq]="--ipm wass --model cfr --alpha 1 --tune hyper --outer 65 --inner 5 --inner-batch 0 $sgd"
    [hyper-mmd-eq]="--model cfr --alpha 1 --tune hyper --outer 100 --inner 5 --inner-batch 0 $sgd"
    [weights-wass-eq]="--ipm wass --model cfr --alpha 1 --tune weights --outer 65 --inner 5 --inner-batch 0 $sgd"
    [alpha-wass-eq]="--ipm wass --model cfr --alpha 1 --tune alpha --outer 65 --inner 5 --inner-batch 0 $sgd"
    [wass-a1]="--ipm wass --model cfr --alpha 1"
    [alpha-wass-adam-eq]="--ipm wass --model cfr --alpha 1 --tune alpha --outer 65 --inner 5 --inner-batch 0 --inner-opt adam --inner-lr 1e-3"
    [hyper-wass-adam-eq]="--ipm wass --model cfr --alpha 1 --tune hyper --outer 65 --inner 5 --inner-batch 0 --inner-opt adam --inner-lr 1e-3"
    [weights-wass-adam-eq]="--ipm wass --model cfr --alpha 1 --tune weights --outer 65 --inner 5 --inner-batch 0 --inner-opt adam --inner-lr 1e-3"
    [grid-alpha-wass-eq]="--ipm wass --tune grid-alpha --grid 0.1,1,10 --grid-steps 1000 --outer 40 --inner 5 --inner-batch 0 --inner-opt adam --inner-lr 1e-3"
    [alpha-wass-cg-eq]="--ipm wass --model cfr --alpha 1 --tune alpha --outer 83 --inner 5 --inner-batch 0 --inner-opt adam --inner-lr 1e-3 --method cg --damping 0.01 --solve-iters 10"
    [alpha-wass-mb-eq]="--ipm wass --model cfr --alpha 1 --tune alpha --outer 155 --inner 5 --inner-batch 100 --inner-opt adam --inner-lr 1e-3"
    [grid-alpha-wass-mb-eq]="--ipm wass --tune grid-alpha --grid 0.1,1,10 --grid-steps 1000 --outer 75 --inner 5 --inner-batch 100 --inner-opt adam --inner-lr 1e-3"
    [frozen-wass-adam-eq]="--ipm wass --model cfr --alpha 1 --tune alpha --outer 65 --inner 5 --inner-batch 0 --inner-opt adam --inner-lr 1e-3 --outer-lr 1e-12"
    [grid-alpha-wass-mb-eq-carry]="--ipm wass --tune grid-alpha --grid 0.1,1,10 --grid-steps 1000 --outer 75 --inner 5 --inner-batch 100 --inner-opt adam --inner-lr 1e-3 --inner-state carry"
    [grid-alpha-wass-mb-eq-best]="--ipm wass --tune grid-alpha --grid 0.1,1,10 --grid-steps 1000 --outer 75 --inner 5 --inner-batch 100 --inner-opt adam --inner-lr 1e-3 --keep-best"
    [grid-alpha-wass-mb-eq-carry-best]="--ipm wass --tune grid-alpha --grid 0.1,1,10 --grid-steps 1000 --outer 75 --inner 5 --inner-batch 100 --inner-opt adam --inner-lr 1e-3 --inner-state carry --keep-best"
    [frozen-wass-adam-eq-carry]="--ipm wass --model cfr --alpha 1 --tune alpha --outer 65 --inner 5 --inner-batch 0 --inner-opt adam --inner-lr 1e-3 --outer-lr 1e-12 --inner-state carry"
)
order=(tarnet grid-mmd hyper-mmd weights grid-wass hyper-wass-eq hyper-mmd-eq weights-wass-eq
    alpha-wass-eq wass-a1 alpha-wass-adam-eq hyper-wass-adam-eq weights-wass-adam-eq
    grid-alpha-wass-eq alpha-wass-cg-eq frozen-wass-adam-eq alpha-wass-mb-eq
    grid-alpha-wass-mb-eq grid-alpha-wass-mb-eq-carry grid-alpha-wass-mb-eq-best
    grid-alpha-wass-mb-eq-carry-best frozen-wass-adam-eq-carry)
[ $# -gt 0 ] && order=("$@")
for name in "${order[@]}"; do
    [ -n "${runs[$name]+x}" ] || { echo "run_causal: no run named '$name'" >&2; exit 2; }
    echo "== $name: blo causal ${common[*]} ${runs[$name]} (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    # shellcheck disable=SC2086
    /usr/bin/time -f "%U %S" -o "$out/$name.time" nice -n 10 "$b" causal "${common[@]}" ${runs[$name]} >"$out/$name.json"
    awk '{ printf "%.1f\n", $1 + $2 }' "$out/$name.time" >"$out/$name.cpu"
    rm -f "$out/$name.time"
done
