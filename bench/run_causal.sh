#!/usr/bin/env bash
# run_causal.sh — the IHDP figures of RESULTS.md ("Treatment effects on IHDP"): TARNet, CFR-MMD
# with α chosen from a grid by the validation criterion, and the two bilevel variants, each
# on the 10 shipped replications. Usage: bench/run_causal.sh [build dir] (default build-release).
set -euo pipefail
b=${1:-build-release}/blo
common=(--threads 1 -q --l2 0)
"$b" causal "${common[@]}"
"$b" causal "${common[@]}" --tune grid --grid 0.1,1,10
"$b" causal "${common[@]}" --model cfr --alpha 1 --tune hyper --outer 20 --inner 5
"$b" causal "${common[@]}" --tune weights --outer 20 --inner 5
