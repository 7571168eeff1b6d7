#!/usr/bin/env bash
# run_reweight.sh — the reweighting table of RESULTS.md: Meta-Weight-Net, learning to reweight
# and plain cross-entropy on Fashion-MNIST with one noise setting, the same split, seed and
# budget, each writing its per-epoch log, JSON summary and (network) weight curve under OUT.
#
#   bench/run_reweight.sh [OUT] [EPOCHS] [NOISE] [KIND] [IMBALANCE]
#     OUT        results folder (default results/reweight)
#     EPOCHS     passes over the training set (default 10)
#     NOISE      label noise rate (default 0.4), KIND uniform|pair (default uniform)
#     IMBALANCE  long-tailed imbalance factor (default 1: none)
# Every setting the runs depend on is given on the command line below (they are also the
# defaults of `blo reweight`): 1000 meta examples, the rest of the 60 000 training images,
# the t10k test split, classifier 784-300-10 (ReLU), SGD lr 0.02 momentum 0.9 wd 5e-4,
# weighting network 1-100-1 by Adam lr 1e-3 wd 1e-4, batches of 100, f32, seed 0.
# BLO: the binary (default build/blo); THREADS: the thread count (default 1).
set -euo pipefail
out=${1:-results/reweight}
epochs=${2:-15}
noise=${3:-0.4}
kind=${4:-uniform}
imb=${5:-1}
blo=${BLO:-build/blo}
tag="${kind}${noise}_imb${imb}"
mkdir -p "$out"
common=(--data "${BLO_DATA:-/usr/share/datasets/fashion-mnist}" --test-split t10k --n-meta 1000
    --n-train 0 --n-test 0 --noise "$noise" --noise-kind "$kind" --imbalance "$imb"
    --hidden 300 --vnet-hidden 100 --batch 100 --meta-batch 100 --epochs "$epochs" --lr 0.02
    --sgd-momentum 0.9 --wd 5e-4 --meta-lr 1e-3 --meta-wd 1e-4 --scheme online --dtype f32
    --seed 0 --threads "${THREADS:-1}" -q --json)
for w in none per-example network; do
    echo "== $w: $epochs epochs, $noise $kind noise, imbalance $imb" >&2
    extra=()
    [ "$w" = network ] && extra=(--curve "$out/${tag}_curve.svg")
    "$blo" reweight "${common[@]}" --weights "$w" --log "$out/${tag}_$w.csv" "${extra[@]}" \
        >"$out/${tag}_$w.json"
done
python3 - "$out" "$tag" <<'PY'
import json, sys
out, tag = sys.argv[1], sys.argv[2]
for w in ("none", "per-example", "network"):
    d = json.load(open(f"{out}/{tag}_{w}.json"))
    print(f"| {w} | {100*d['test_acc']:.2f} % | {100*d['best_test_acc']:.2f} % | "
          f"{d['seconds_per_epoch']:.1f} s |")
PY
