#!/usr/bin/env bash
# run_maml_bench.sh — runs bench_maml (blo) and bench_maml_torch.py (PyTorch) with the same
# thread count and prints the MAML sinusoid meta-iteration times side by side, with the
# speed-up of blo over each way of writing it in torch (torch / blo: above 1, blo is faster).
#
#   bench/run_maml_bench.sh [--threads N] [--rounds K] [--quick] [--clock wall|cpu] [--build DIR]
#
#   --threads N  threads for both (default 1)
#   --rounds K   run the two programs alternately K times (default 1); the comparison then
#                uses, per row, the median of the K medians
#   --quick      fewer meta-iterations (smoke run)
#   --clock C    wall (default) or cpu: each program times its calling thread's CPU time,
#                which leaves out the time other processes hold the core (a loaded machine)
#   --build DIR  the CMake build folder holding bench_maml (default: build/ in the source tree)
#   PYTHON       the interpreter with torch (default /usr/bin/python3)
#
# blo's rows name in their "ref" column the torch rows they are compared with: ref_loop (a
# Python loop over the tasks) and ref_batched (the tasks stacked, torch.baddbmm).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
threads=1
rounds=1
quick=()
clock=wall
build="$root/build"
while [ $# -gt 0 ]; do
    case "$1" in
    --threads) threads="${2:?--threads needs a number}"; shift 2 ;;
    --rounds) rounds="${2:?--rounds needs a number}"; shift 2 ;;
    --quick) quick=(--quick); shift ;;
    --build) build="${2:?--build needs a folder}"; shift 2 ;;
    --clock)
        clock="${2:?--clock needs wall or cpu}"; shift 2
        case "$clock" in wall | cpu) ;; *) echo "run_maml_bench.sh: --clock: '$clock' is not wall or cpu" >&2; exit 2 ;; esac ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_maml_bench.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
python="${PYTHON:-/usr/bin/python3}"
. "$here/lib.sh"
exe="$(bench_exe run_maml_bench.sh bench_maml)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS="$threads"

bench_banner "$threads" "$rounds"
for k in $(seq 1 "$rounds"); do
    "$exe" --threads "$threads" --clock "$clock" "${quick[@]}" | tee "$tmp/blo.$k"
    echo
    "$python" "$here/bench_maml_torch.py" --threads "$threads" --clock "$clock" "${quick[@]}" |
        tee "$tmp/torch.$k"
    echo
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

awk -v threads="$threads" -v rounds="$rounds" -v clock="$clock" "$bench_median_awk"'
    function cell(r) { return (r in tval) ? sprintf("%9.4f %7.1fx", tval[r], tval[r] / val[m]) : sprintf("%9s %8s", "-", "-") }
    /^#/ || $1 == "metric" { next }
    FILENAME ~ /\/blo\.[0-9]+$/ {
        if (!($1 in val)) order[++n] = $1
        val[$1] = val[$1] " " $2; ref[$1] = $5
    }
    FILENAME ~ /\/torch\.[0-9]+$/ { tval[$1] = tval[$1] " " $2 }
    END {
        for (x in val) val[x] = med(val[x])
        for (x in tval) tval[x] = med(tval[x])
        printf "MAML sinusoid meta-iteration, ms (median; %s round(s)), threads=%s, %s clock; " \
               "speed-up = torch / blo\n", rounds, threads, clock
        printf "%-18s %9s | %-16s %9s %8s | %-16s %9s %8s\n", "blo row", "blo", "torch loop",
               "ms", "speed-up", "torch batched", "ms", "speed-up"
        for (i = 1; i <= n; i++) {
            m = order[i]
            printf "%-18s %9.4f | %-16s %s | %-16s %s\n", m, val[m], ref[m] "_loop",
                   cell(ref[m] "_loop"), ref[m] "_batched", cell(ref[m] "_batched")
        }
    }' "$tmp"/blo.* "$tmp"/torch.*
