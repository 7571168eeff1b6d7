#!/usr/bin/env bash
# reproduce_hyperclean.sh — the Fashion-MNIST data hyper-cleaning table of Liu et al.
# (NeurIPS 2021, Table 3) with blo: one run per method, same split, seed and budget, each
# writing its per-iteration log and JSON summary under OUT, then one plot overlaying them.
#
#   bench/reproduce_hyperclean.sh [OUT] [OUTER] [INNER] [METHODS...]
#     OUT      results folder (default results/hyperclean)
#     OUTER    upper-level iterations (default 300, as in RESULTS.md; the paper runs 3000)
#     INNER    lower-level steps T (default 100, as published)
#     METHODS  default: rhg trhg cg neumann bda iaptt amm
# Every setting the runs depend on is on the command line below, so that a change of the
# CLI's defaults cannot change the table: the data (BLO_DATA or Fashion-MNIST's Debian
# package), 5000 / 5000 / 10000 from the training split, half the labels corrupted, seed 0,
# f32, linear model, inner SGD lr 0.03, outer Adam lr 0.01, K = 10 (trhg's window, neumann's
# terms, cg's iterations), the divergence limit 1e4, the baselines (500 full-batch Adam steps
# of lr 0.01; each run also trains the classifier on its kept examples plus the validation
# set), and the lower-level start per method:
#   learned (y0 updated by SGD lr 0.03, the authors' script): rhg, bda, iaptt;
#   warm (the last y_T): trhg, cg, neumann (alpha 0.03) — their truncated or implicit pass
#   gives no dF/dy0, so a learned start would never move — and amm, which is single-loop.
# BLO: the binary (default build/blo); THREADS: the thread count (default 1: on a shared
# machine a second thread that gets descheduled stalls every parallel region).
set -euo pipefail
out=${1:-results/hyperclean}
outer=${2:-300}
inner=${3:-100}
shift $(($# < 3 ? $# : 3))
methods=("$@")
[ ${#methods[@]} -gt 0 ] || methods=(rhg trhg cg neumann bda iaptt amm)
blo=${BLO:-build/blo}
mkdir -p "$out"
common=(--data "${BLO_DATA:-/usr/share/datasets/fashion-mnist}" --n-train 5000 --n-val 5000
    --n-test 10000 --corrupt 0.5 --seed 0 --dtype f32 --model linear --inner-opt sgd
    --inner-lr 0.03 --outer-opt adam --outer-lr 0.01 --init-lr 0.03 --K 10 --diverge 1e4
    --baseline-steps 500 --baseline-lr 0.01 --eval-every 10 --threads "${THREADS:-1}")
logs=()
for m in "${methods[@]}"; do
    case "$m" in
    rhg | bda | iaptt) start=(--init learned) ;;
    trhg | cg | amm) start=(--init warm) ;;
    neumann) start=(--init warm --alpha 0.03) ;;
    *) echo "reproduce_hyperclean.sh: no pinned start for method '$m'" >&2; exit 2 ;;
    esac
    echo "== $m: $outer outer iterations, T = $inner, ${start[*]}" >&2
    "$blo" hyperclean "${common[@]}" --method "$m" --outer "$outer" --inner "$inner" "${start[@]}" \
        --log "$out/$m.csv" --json >"$out/$m.json"
    logs+=("$out/$m.csv")
done
"$blo" plot --out "$out/hyperclean.png" "${logs[@]}"
