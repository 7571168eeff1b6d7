#!/usr/bin/env bash
# run_dist_bench.sh — data-parallel hyper-cleaning: 1 process against `mpirun -np 2` (one
# thread per rank), alternating, on 50 000 training examples of Fashion-MNIST; prints the
# seconds per outer iteration, the speed-up and the bytes rank 0 sent per outer iteration
# (one hypergradient plus the inner steps that precede it).
#
#   bench/run_dist_bench.sh [build dir] [rounds]      (defaults: build-release, 3)
#
# Pinned settings: cg (K = 10) with a warm start, T = 100 inner SGD steps of lr 0.03, f32,
# linear model, 5000 validation and 5000 test examples, seed 0, --outer 3, no baselines, test
# accuracy at the end only; OMP_NUM_THREADS=1 and --threads 1 in every process. The 1-process
# line with --threads 2 (OpenMP + BLAS threads) is printed too, for reference.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${1:-$root/build-release}
rounds=${2:-3}
. "$here/lib.sh"
blo=$(bench_exe run_dist_bench blo)
data=${BLO_DATA:-/usr/share/datasets/fashion-mnist}
export OMP_NUM_THREADS=1
args=(hyperclean --data "$data" --n-train 50000 --n-val 5000 --n-test 5000 --method cg --K 10
    --init warm --inner 100 --inner-lr 0.03 --dtype f32 --model linear --seed 0 --outer 3
    --eval-every 0 --no-baselines --json -q)
mpi=(mpirun -np 2 --oversubscribe --allow-run-as-root --mca pml ob1 --mca btl self,vader)

bench_banner 1 "$rounds"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
one="" two="" thr="" bytes=0 iters=3
for r in $(seq "$rounds"); do
    nice -n 10 "$blo" "${args[@]}" --threads 1 >"$out"
    one="$one $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["seconds"]/d["iters"])' "$out")"
    nice -n 10 "${mpi[@]}" "$blo" "${args[@]}" --threads 1 >"$out"
    two="$two $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["seconds"]/d["iters"])' "$out")"
    bytes=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["comm_bytes"], d["comm_calls"], d["iters"])' "$out")
    nice -n 10 "$blo" "${args[@]}" --threads 2 >"$out"
    thr="$thr $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["seconds"]/d["iters"])' "$out")"
    echo "round $r: 1 process $one | 2 ranks $two | 1 process, 2 threads $thr" >&2
done
awk -v one="$one" -v two="$two" -v thr="$thr" -v bytes="$bytes" "$bench_median_awk"'
BEGIN {
    a = med(one); b = med(two); c = med(thr); split(bytes, v, " ")
    printf "%-34s %10s %10s\n", "hyper-cleaning, n = 50000, cg", "s / iter", "speed-up"
    printf "%-34s %10.3f %10s\n", "1 process, 1 thread", a, "1.00"
    printf "%-34s %10.3f %10.2f\n", "mpirun -np 2, 1 thread each", b, a / b
    printf "%-34s %10.3f %10.2f\n", "1 process, 2 threads", c, a / c
    printf "bytes sent by rank 0 per outer iteration: %.0f (%.0f collectives)\n", v[1] / v[3], v[2] / v[3]
}'
