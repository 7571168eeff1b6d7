#!/usr/bin/env bash
# run_reweight.sh — the reweighting tables of RESULTS.md: Meta-Weight-Net, learning to reweight
# and plain cross-entropy on Fashion-MNIST with one setting, the same split, seed and budget,
# each writing its per-epoch log, JSON summary and (network) weight curve under OUT.
#
#   bench/run_reweight.sh [OUT] [EPOCHS] [NOISE] [KIND] [IMBALANCE] [N_TRAIN] [WD] [DECAY]
#                         [CLASSIFIER] [NORM] [META]
#     OUT        results folder (default results/reweight)
#     EPOCHS     passes over the training set (default 15)
#     NOISE      label noise rate (default 0.4), KIND uniform|pair (default uniform)
#     IMBALANCE  long-tailed imbalance factor (default 1: none)
#     N_TRAIN    training examples (default 0: all 59 000 that the meta set leaves)
#     WD         the classifier's weight decay (default 5e-4)
#     DECAY      epochs after which the step is divided by 10, E1[,E2] (default 0: none)
#     CLASSIFIER mlp (784-300-10, default) or conv (3x3 conv 8, pool, 3x3 conv 16, pool, linear)
#     NORM       the weighting network's normalisation: sum (Σ V ℓ / Σ V, default) or batch
#                (Σ V ℓ / B); only the network's runs depend on it
#     META       the weighting network's optimizer (network runs only): follow (Adam lr 1e-3,
#                weight decay 1e-4 divided by 10 with each DECAY, the default), fixed (the same
#                with a constant weight decay, as the tables made before it was the default) or
#                nesterov (SGD with Nesterov momentum 0.9, lr 1e-3, constant weight decay 5e-4,
#                as the authors' script with the Σ V normalisation)
# Every other setting the runs depend on is given on the command line below: 1000 meta
# examples, the t10k test split (or HELDOUT), SGD lr 0.02 momentum 0.9, weighting network 1-100-1, batches
# of 100, f32. The output files are named after the setting.
# BLO: the binary (default build/blo); THREADS: the thread count (default 1); WEIGHTS: the
# weightings to run (default "none per-example network"); SEED: meta set, noise, batches and
# starts (default 0).
# HELDOUT: test on this many examples held out of the training split instead of t10k, the
# protocol on which settings are chosen (default unset: t10k). EXTRA: further `blo reweight`
# options, after the pinned ones (so they replace them), with SUFFIX, a name for them that the
# output files carry.
set -euo pipefail
out=${1:-results/reweight}
epochs=${2:-15}
noise=${3:-0.4}
kind=${4:-uniform}
imb=${5:-1}
ntrain=${6:-0}
wd=${7:-5e-4}
decay=${8:-0}
cls=${9:-mlp}
norm=${10:-sum}
meta=${11:-follow}
seed=${SEED:-0}
case $meta in
follow | fixed) metaopt=(--meta-opt adam --meta-lr 1e-3 --meta-beta1 0.9 --meta-wd 1e-4
    --meta-wd-schedule "$meta" --meta-lr-schedule fixed) ;;
nesterov) metaopt=(--meta-opt nesterov --meta-lr 1e-3 --meta-wd 5e-4 --meta-wd-schedule fixed
    --meta-lr-schedule fixed) ;;
*) echo "run_reweight.sh: META '$meta': expected follow, fixed or nesterov" >&2; exit 2 ;;
esac
blo=${BLO:-build/blo}
tag="${kind}${noise}_imb${imb}"
[ "$ntrain" != 0 ] && tag="${tag}_n${ntrain}"
[ "$wd" != 5e-4 ] && tag="${tag}_wd${wd}"
[ "$decay" != 0 ] && tag="${tag}_decay${decay/,/-}"
[ "$cls" != mlp ] && tag="${tag}_${cls}"
[ "$norm" != sum ] && tag="${tag}_norm${norm}"
# (follow and fixed differ only where the step decays)
[ "$meta" = nesterov ] || { [ "$meta" = fixed ] && [ "$decay" != 0 ]; } && tag="${tag}_${meta}"
[ "$seed" != 0 ] && tag="${tag}_s${seed}"
split=(--test-split t10k --n-test 0)
[ -n "${HELDOUT:-}" ] && split=(--test-split train --n-test "$HELDOUT") && tag="${tag}_val${HELDOUT}"
read -r -a extra_opts <<<"${EXTRA:-}"
[ -n "${EXTRA:-}" ] && tag="${tag}_${SUFFIX:?run_reweight.sh: EXTRA needs SUFFIX, a name for the files}"
tag="${tag}_e${epochs}"
mkdir -p "$out"
common=(--data "${BLO_DATA:-/usr/share/datasets/fashion-mnist}" "${split[@]}" --n-meta 1000
    --n-train "$ntrain" --noise "$noise" --noise-kind "$kind" --imbalance "$imb"
    --classifier "$cls" --hidden 300 --channels 8 --vnet-hidden 100 --batch 100
    --meta-batch 100 --epochs "$epochs" --lr 0.02 --lr-decay "$decay" --sgd-momentum 0.9
    --wd "$wd" "${metaopt[@]}" --norm "$norm" --scheme online --dtype f32 --seed "$seed"
    --threads "${THREADS:-1}" -q --json "${extra_opts[@]}")
weights=${WEIGHTS:-none per-example network}
for w in $weights; do
    echo "== $w: $tag" >&2
    extra=()
    [ "$w" = network ] && extra=(--curve "$out/${tag}_curve.svg")
    "$blo" reweight "${common[@]}" --weights "$w" --log "$out/${tag}_$w.csv" "${extra[@]}" \
        >"$out/${tag}_$w.json"
done
python3 - "$out" "$tag" $weights <<'PY'
import json, sys
out, tag = sys.argv[1], sys.argv[2]
for w in sys.argv[3:]:
    d = json.load(open(f"{out}/{tag}_{w}.json"))
    fmt = lambda v: "—" if v is None else f"{v:.3f}"
    cw = "—" if d["clean_weight"] is None else f"{fmt(d['clean_weight'])} / {fmt(d['noisy_weight'])}"
    print(f"| {tag} | {w} | {100*d['test_acc']:.2f} % | {100*d['best_test_acc']:.2f} % | {cw} | "
          f"{d['cpu_seconds_per_epoch']:.2f} s |")
PY
