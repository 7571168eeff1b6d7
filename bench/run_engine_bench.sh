#!/usr/bin/env bash
# run_engine_bench.sh — runs bench_engine (blo) and bench_engine_torch.py (PyTorch) with the
# same thread count and prints their tables side by side with the ratio blo / torch (of the
# medians; below 1 means blo is faster, for every row, since every row is a time).
#
#   bench/run_engine_bench.sh [--threads N] [--rounds K] [--quick] [--build DIR]
#
#   --threads N  threads for both (default 1)
#   --rounds K   run the two programs alternately K times (default 1); the comparison then
#                uses, per row, the median of the K medians, which damps a noisy machine
#   --quick      fewer repeats (smoke run)
#   --build DIR  the CMake build folder holding bench_engine (default: build/ in the source tree)
#   PYTHON       the interpreter with torch (default /usr/bin/python3)
#
# Each program's own table is printed first, then the comparison. Rows of blo's table name in
# their "ref" column the torch row they are compared with (the fused-loss MLP row and the
# direct OpenBLAS sgemm row are compared with torch's only MLP and matmul rows).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
threads=1
rounds=1
quick=()
build="$root/build"
while [ $# -gt 0 ]; do
    case "$1" in
    --threads) threads="${2:?--threads needs a number}"; shift 2 ;;
    --rounds) rounds="${2:?--rounds needs a number}"; shift 2 ;;
    --quick) quick=(--quick); shift ;;
    --build) build="${2:?--build needs a folder}"; shift 2 ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_engine_bench.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
python="${PYTHON:-/usr/bin/python3}"
. "$here/lib.sh"
exe="$(bench_exe run_engine_bench.sh bench_engine)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# OpenMP's own default would use every core; the programs set their thread counts themselves,
# and this keeps any library that reads the variable in line with them.
export OMP_NUM_THREADS="$threads"

bench_banner "$threads" "$rounds"
for k in $(seq 1 "$rounds"); do
    "$exe" --threads "$threads" "${quick[@]}" | tee "$tmp/blo.$k"
    echo
    "$python" "$here/bench_engine_torch.py" --threads "$threads" "${quick[@]}" | tee "$tmp/torch.$k"
    echo
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

# Per row, the median over rounds of each program's median.
awk -v threads="$threads" -v rounds="$rounds" "$bench_median_awk"'
    /^#/ || $1 == "metric" { next }
    FILENAME ~ /\/blo\.[0-9]+$/ {
        if (!($1 in val)) order[++n] = $1
        val[$1] = val[$1] " " $2; unit[$1] = $3; rep[$1] = $4; ref[$1] = $5
    }
    FILENAME ~ /\/torch\.[0-9]+$/ { tval[$1] = tval[$1] " " $2; tunit[$1] = $3; trep[$1] = $4 }
    END {
        for (m in val) val[m] = val[m] ~ /nan/ ? "nan" : med(val[m])
        for (m in tval) tval[m] = med(tval[m])
        printf "side by side, threads=%s, %s round(s) ", threads, rounds
        printf "(medians; ratio = blo / torch, < 1: blo faster)\n"
        printf "%-20s %-6s %12s %-12s %12s %10s %9s\n", "blo row", "unit", "blo", "torch row",
               "torch", "ratio", "repeats"
        for (i = 1; i <= n; i++) {
            m = order[i]; r = ref[m]
            if (r in tval && tunit[r] == unit[m] && tval[r] + 0 > 0 && val[m] != "nan") {
                printf "%-20s %-6s %12.4f %-12s %12.4f %10.3f %4d/%-4d\n", m, unit[m], val[m], r,
                       tval[r], val[m] / tval[r], rep[m], trep[r]
            } else {
                printf "%-20s %-6s %12s %-12s %12s %10s %4d\n", m, unit[m], val[m], r, "-", "-",
                       rep[m]
            }
        }
    }' "$tmp"/blo.* "$tmp"/torch.*

# blo as % of OpenBLAS (paired inside bench_engine), median over rounds.
awk "$bench_median_awk"'
    /^# blo_matmul reaches/ { v = v " " $4; n++ }
    END {
        if (n) printf "blo_matmul reaches %.1f %% of OpenBLAS sgemm (median over %d round(s)); " \
                      "target 90 %%\n", med(v), n
    }' "$tmp"/blo.*
