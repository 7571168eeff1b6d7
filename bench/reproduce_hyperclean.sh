#!/usr/bin/env bash
# reproduce_hyperclean.sh — the Fashion-MNIST data hyper-cleaning table of Liu et al.
# (NeurIPS 2021, Table 3) with blo: one run per method, same split, seed and budget, each
# writing its per-iteration log and JSON summary under OUT, then one plot overlaying them.
#
#   bench/reproduce_hyperclean.sh [OUT] [OUTER] [INNER] [METHODS...]
#     OUT      results folder (default results/hyperclean)
#     OUTER    upper-level iterations (default 300, as in RESULTS.md; the paper runs 3000)
#     INNER    lower-level steps T (default 100, as published)
#     METHODS  default: rhg trhg cg neumann bda iaptt amm (the first also trains the baselines)
# Protocol: 5000 / 5000 / 10000 from the training split, half the labels corrupted, linear
# model, inner SGD lr 0.03, outer Adam lr 0.01, learned start updated by SGD lr 0.03 (the
# authors' script; trhg, cg and neumann start warm instead, see below), trhg K = 10,
# cg / neumann K = 10 (neumann alpha 0.03). Set BLO to the binary (default build/blo) and
# THREADS the thread count (default 1: on a shared machine a second thread that gets
# descheduled stalls every parallel region).
set -euo pipefail
out=${1:-results/hyperclean}
outer=${2:-300}
inner=${3:-100}
shift $(($# < 3 ? $# : 3))
methods=("$@")
[ ${#methods[@]} -gt 0 ] || methods=(rhg trhg cg neumann bda iaptt amm)
blo=${BLO:-build/blo}
mkdir -p "$out"
logs=()
baselines=() # the baselines do not depend on the method: the first run trains them
for m in "${methods[@]}"; do
    extra=("${baselines[@]}")
    case "$m" in
    # trhg's truncated pass and the implicit methods do not reach y0, so they give no dF/dy0:
    # their lower level starts warm (from the last y_T) instead, which accumulates training
    # the way the learned start does for the others.
    trhg | cg) extra+=(--init warm) ;;
    # amm is single-loop: it carries y itself, one lower-level step per outer iteration.
    amm) extra+=(--init warm) ;;
    neumann) extra+=(--init warm --alpha 0.03) ;;
    esac
    echo "== $m: $outer outer iterations, T = $inner" >&2
    "$blo" hyperclean --method "$m" --outer "$outer" --inner "$inner" --K 10 --eval-every 10 \
        --threads "${THREADS:-1}" --log "$out/$m.csv" --json "${extra[@]}" >"$out/$m.json"
    logs+=("$out/$m.csv")
    baselines=(--no-baselines)
done
"$blo" plot --out "$out/hyperclean.png" "${logs[@]}"
