#!/usr/bin/env bash
# run_conv_bench.sh — runs bench_conv (blo) and bench_conv_torch.py (PyTorch) with the same
# thread count, alternately, and prints per row the medians side by side with blo / torch
# (below 1, blo is faster): conv2d forward+backward at supernet and common shapes, and one
# DARTS supernet search step.
#
#   bench/run_conv_bench.sh [--threads N] [--rounds K] [--quick] [--only WHAT] [--build DIR]
#
#   --threads N  threads for both (default 1)
#   --rounds K   run the two programs alternately K times (default 3); each row then shows
#                the median of the K per-round medians
#   --quick      fewer repeats (smoke run)
#   --only WHAT  conv (the conv rows) or search (the search step)
#   --build DIR  the CMake build folder holding bench_conv (default: build/ in the source tree)
#   PYTHON       the interpreter with torch (default /usr/bin/python3)
#
# Two ratios: of wall-clock medians, and of the medians of the thread's CPU time (with one
# thread, the work's cost without the time other processes held the core: the steadier of the
# two on a shared machine).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
threads=1
rounds=3
opts=()
build="$root/build"
while [ $# -gt 0 ]; do
    case "$1" in
    --threads) threads="${2:?--threads needs a number}"; shift 2 ;;
    --rounds) rounds="${2:?--rounds needs a number}"; shift 2 ;;
    --quick) opts+=(--quick); shift ;;
    --only)
        case "${2:-}" in
        conv | search) opts+=(--only "$2"); shift 2 ;;
        *) echo "run_conv_bench.sh: --only takes conv or search" >&2; exit 2 ;;
        esac ;;
    --build) build="${2:?--build needs a folder}"; shift 2 ;;
    -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_conv_bench.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
case "$threads$rounds" in *[!0-9]*) echo "run_conv_bench.sh: --threads and --rounds take numbers" >&2; exit 2 ;; esac
python="${PYTHON:-/usr/bin/python3}"
. "$here/lib.sh"
exe="$(bench_exe run_conv_bench.sh bench_conv)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

bench_banner "$threads" "$rounds"
for k in $(seq 1 "$rounds"); do
    "$exe" --threads "$threads" "${opts[@]}" | tee "$tmp/blo.$k"
    echo
    "$python" "$here/bench_conv_torch.py" --threads "$threads" "${opts[@]}" | tee "$tmp/torch.$k"
    echo
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

# Each row: its wall median ($2) and the CPU median after "cpu" in the note.
awk -v threads="$threads" -v rounds="$rounds" "$bench_median_awk"'
    function cpu(    i) {
        for (i = 6; i < NF; i++) if ($i == "cpu") return $(i + 1)
        return "nan"
    }
    /^#/ || $1 == "metric" || NF < 5 { next }
    {
        side = FILENAME ~ /\/blo\.[0-9]+$/ ? "b" : "t"
        if (!(($1) in seen)) { seen[$1] = 1; order[++n] = $1 }
        wall[side, $1] = wall[side, $1] " " $2
        cp[side, $1] = cp[side, $1] " " cpu()
    }
    function cell(side, r, what) {
        if (!((side, r) in wall)) return "-"
        return what == "wall" ? med(wall[side, r]) : med(cp[side, r])
    }
    function ratio(a, b) { return (a == "-" || b == "-" || b + 0 == 0) ? "-" : sprintf("%.2f", a / b) }
    END {
        printf "conv2d forward+backward and DARTS search step, f32, ms (median of %s round " \
               "medians), threads=%s; ratio = blo / torch\n", rounds, threads
        printf "%-24s %10s %10s %6s | %10s %10s %6s\n", "row", "blo wall", "torch wall", "ratio",
               "blo cpu", "torch cpu", "ratio"
        for (i = 1; i <= n; i++) {
            r = order[i]
            bw = cell("b", r, "wall"); tw = cell("t", r, "wall")
            bc = cell("b", r, "cpu"); tc = cell("t", r, "cpu")
            printf "%-24s %10s %10s %6s | %10s %10s %6s\n", r, bw, tw, ratio(bw, tw), bc, tc,
                   ratio(bc, tc)
        }
    }' "$tmp"/blo.* "$tmp"/torch.*
