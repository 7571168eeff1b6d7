#!/usr/bin/env bash
# run_graph_bench.sh — bench_graph (blo) and bench_graph_torch.py (PyTorch) on the same graph
# and thread count, run alternately, with the medians side by side: one GCN training epoch
# (sparse given graph), one LDS outer iteration (T = 5 differentiable Adam steps on sampled
# dense graphs and the reverse pass through them), and the peak resident-set growth of the LDS
# iterations. torch / blo above 1: blo is faster or smaller.
#
#   bench/run_graph_bench.sh [--threads N] [--rounds K] [--clock wall|cpu] [--build DIR]
#                            [--data DIR] [--epochs N] [--outer K]
#   PYTHON  the interpreter with torch (default /usr/bin/python3)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
build="$root/build"
threads=1 rounds=3 clock=cpu data="$root/data/planetoid/cora" epochs=50 outer=5
while [ $# -gt 0 ]; do
    case "$1" in
    --threads) threads="${2:?}"; shift 2 ;;
    --rounds) rounds="${2:?}"; shift 2 ;;
    --clock) clock="${2:?}"; shift 2 ;;
    --build) build="${2:?}"; shift 2 ;;
    --data) data="${2:?}"; shift 2 ;;
    --epochs) epochs="${2:?}"; shift 2 ;;
    --outer) outer="${2:?}"; shift 2 ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_graph_bench.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
source "$here/lib.sh"
exe=$(bench_exe run_graph_bench.sh bench_graph)
py=${PYTHON:-/usr/bin/python3}
args=(--data "$data" --epochs "$epochs" --outer "$outer" --threads "$threads" --clock "$clock")
bench_banner "$threads" "$rounds"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq "$rounds"); do
    "$exe" "${args[@]}" | sed 's/^/blo /' >>"$out"
    "$py" "$here/bench_graph_torch.py" "${args[@]}" | sed 's/^/torch /' >>"$out"
done
awk "$bench_median_awk"'
    { v[$1 " " $2] = v[$1 " " $2] " " $3 }
    END {
        printf "%-14s %12s %12s %12s\n", "'"clock=$clock"'", "blo", "torch", "torch/blo"
        n = split("gcn_epoch_ms lds_outer_s lds_peak_mib", k, " ")
        for (i = 1; i <= n; i++) {
            b = med(v["blo " k[i]]); t = med(v["torch " k[i]])
            printf "%-14s %12.4g %12.4g %12.2f\n", k[i], b, t, t / b
        }
        printf "%-14s %12.4g\n", "lds_arena_mib", med(v["blo lds_arena_mib"])
    }' "$out"
