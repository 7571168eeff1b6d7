#!/usr/bin/env bash
# run_deq_bench.sh — the implicit-model figures of BENCHMARKS.md ("Implicit models"):
#   memory  the scratch peak of one training step of `blo deq` (batch 128, d = 64, weight W,
#           picard) with the iteration cap K = 10, 30, 100 and tol 0 (every step runs to the
#           cap), by the implicit gradient and by unrolled backprop;
#   speed   one training epoch (plus the test accuracy) of the same layer, solver and gradient
#           in blo and in PyTorch (bench/bench_deq_torch.py), K forward and K adjoint
#           iterations, run alternately `rounds` times with the same thread count; medians.
#
#   bench/run_deq_bench.sh [--threads N] [--rounds K] [--iters K] [--n-train N] [--clock C]
#                          [--build DIR]
#   --clock C  cpu (default): each program's process CPU time over the epoch, which leaves out
#              the time other processes hold the core; wall: elapsed time
#   PYTHON    the interpreter with torch (default /usr/bin/python3)
#   BLO_DATA  the MNIST-layout folder (default /usr/share/datasets/fashion-mnist)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
threads=1
rounds=3
iters=20
ntrain=60000
build="$root/build"
clock=cpu_seconds
while [ $# -gt 0 ]; do
    case "$1" in
    --threads) threads="${2:?--threads needs a number}"; shift 2 ;;
    --rounds) rounds="${2:?--rounds needs a number}"; shift 2 ;;
    --iters) iters="${2:?--iters needs a number}"; shift 2 ;;
    --n-train) ntrain="${2:?--n-train needs a number}"; shift 2 ;;
    --build) build="${2:?--build needs a folder}"; shift 2 ;;
    --clock)
        case "${2:-}" in wall) clock=seconds ;; cpu) clock=cpu_seconds ;;
        *) echo "run_deq_bench.sh: --clock: '${2:-}' is not wall or cpu" >&2; exit 2 ;; esac
        shift 2 ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_deq_bench.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
python="${PYTHON:-/usr/bin/python3}"
. "$here/lib.sh"
blo="$(bench_exe run_deq_bench.sh blo)"
export OMP_NUM_THREADS="$threads"
layer=(--param weight --scale 0.9 --act relu --solver picard --hidden 64 --batch 128 --lr 1e-3
    --seed 0 --threads "$threads" -q --json)
field() { "$python" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

bench_banner "$threads" "$rounds"
echo "memory: scratch peak of one training step (MiB), batch 128, d = 64"
printf '%6s %12s %12s\n' cap implicit unrolled
for K in 10 30 100; do
    row=()
    for b in implicit unrolled; do
        peak=$("$blo" deq "${layer[@]}" --n-train 128 --n-test 100 --epochs 1 --max-iter "$K" \
            --tol 0 --back-max-iter "$K" --back-tol 0 --backward "$b" | field peak_bytes)
        row+=("$(awk -v p="$peak" 'BEGIN { printf "%.2f", p / 1048576 }')")
    done
    printf '%6d %12s %12s\n' "$K" "${row[0]}" "${row[1]}"
done

echo
echo "speed: one epoch of $ntrain examples + test accuracy ($clock), K = $iters forward and adjoint iterations"
b_all="" t_all=""
for r in $(seq 1 "$rounds"); do
    b=$("$blo" deq "${layer[@]}" --n-train "$ntrain" --epochs 1 --max-iter "$iters" --tol 0 \
        --back-max-iter "$iters" --back-tol 0 --backward implicit | field "$clock")
    t=$("$python" "$here/bench_deq_torch.py" --threads "$threads" --n-train "$ntrain" \
        --iters "$iters" --hidden 64 --batch 128 --lr 1e-3 --scale 0.9 | field "$clock")
    printf 'round %d: blo %.3f s, torch %.3f s\n' "$r" "$b" "$t"
    b_all="$b_all $b" t_all="$t_all $t"
done
awk -v b="$b_all" -v t="$t_all" "$bench_median_awk"'
    BEGIN { printf "median: blo %.3f s, torch %.3f s, blo / torch = %.2f\n", med(b), med(t), med(b) / med(t) }'
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
