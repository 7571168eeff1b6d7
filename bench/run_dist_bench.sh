#!/usr/bin/env bash
# run_dist_bench.sh — data-parallel hyper-cleaning: 1 process against `mpirun -np 2` (one
# thread per rank), alternating, on 50 000 training examples of Fashion-MNIST; prints the
# seconds per outer iteration, the speed-up and the bytes rank 0 sent per outer iteration
# (one hypergradient plus the inner steps that precede it).
#
#   bench/run_dist_bench.sh [build dir] [rounds]      (defaults: build-release, 1)
#
# Pinned settings: cg (K = 10) with a warm start, T = 100 inner SGD steps of lr 0.03, f32,
# linear model, 5000 validation and 5000 test examples, seed 0, --outer 1 and 2, no baselines, test
# accuracy at the end only; OMP_NUM_THREADS=1 and --threads 1 in every process.
#
# On a loaded machine the scheduler shares the cores per process and the ranks, which meet in
# every sum, wait for each other's turn: the wall-clock ratio says little about an idle
# machine. So the table also gives CPU seconds per outer iteration, from the JSON summary
# (rank 0's process CPU time, cpu_seconds, and the part spent inside the sums,
# comm_cpu_seconds), as the difference between a run of 2 outer iterations and one of 1, which
# removes the data loading: "compute" is a rank's CPU time outside the sums. Its ratio to the
# 1-process figure is the speed-up of the work on an idle machine, before the sums' own time
# (3.7 MB per outer iteration through shared memory: milliseconds).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${1:-$root/build-release}
rounds=${2:-1}
. "$here/lib.sh"
blo=$(bench_exe run_dist_bench blo)
data=${BLO_DATA:-/usr/share/datasets/fashion-mnist}
export OMP_NUM_THREADS=1
args=(hyperclean --data "$data" --n-train 50000 --n-val 5000 --n-test 5000 --method cg --K 10
    --init warm --inner 100 --inner-lr 0.03 --dtype f32 --model linear --seed 0
    --eval-every 0 --no-baselines --json -q)
mpi=(mpirun -np 2 --oversubscribe --allow-run-as-root --mca pml ob1 --mca btl self,vader)

bench_banner 1 "$rounds"
a=$(mktemp)
b=$(mktemp)
trap 'rm -f "$a" "$b"' EXIT
# per_iter <1-iteration JSON> <2-iteration JSON>: wall s/iter, CPU s/iter, the difference of
# the CPU in sums (subtracted from the CPU: compute = Δ(cpu − cpu in sums)), wall in sums,
# bytes and sums per iteration (rank 0).
per_iter() {
    python3 -c 'import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
d = lambda k: b[k] - a[k]
# The sums happen only in the iterations: their figures are halves of the 2-iteration run.
print(b["seconds"] / b["iters"], d("cpu_seconds"), d("comm_cpu_seconds"),
      b["comm_seconds"] / b["iters"], b["comm_bytes"] / b["iters"], b["comm_calls"] / b["iters"])' "$1" "$2"
}
one="" two="" cone="" ctwo="" sums=""
for r in $(seq "$rounds"); do
    nice -n 10 "$blo" "${args[@]}" --threads 1 --outer 1 >"$a"
    nice -n 10 "$blo" "${args[@]}" --threads 1 --outer 2 >"$b"
    read -r w c _ _ _ _ <<<"$(per_iter "$a" "$b")"
    one="$one $w"
    cone="$cone $c"
    nice -n 10 "${mpi[@]}" "$blo" "${args[@]}" --threads 1 --outer 1 >"$a"
    nice -n 10 "${mpi[@]}" "$blo" "${args[@]}" --threads 1 --outer 2 >"$b"
    read -r w c cc cw by n <<<"$(per_iter "$a" "$b")"
    two="$two $w"
    ctwo="$ctwo $(echo "$c $cc" | awk '{print $1 - $2}')"
    sums="$by $n $cc $cw"
    echo "round $r: s/iter 1 process$one, 2 ranks$two; compute CPU s/iter 1 process$cone, rank 0$ctwo" >&2
done
awk -v one="$one" -v two="$two" -v cone="$cone" -v ctwo="$ctwo" -v sums="$sums" "$bench_median_awk"'
BEGIN {
    a = med(one); b = med(two); c = med(cone); d = med(ctwo); split(sums, v, " ")
    printf "%-30s %10s %9s %16s %9s\n", "hyper-cleaning, n = 50000, cg", "s / iter", "speed-up", "compute CPU s/it", "speed-up"
    printf "%-30s %10.2f %9s %16.2f %9s\n", "1 process, 1 thread", a, "1.00", c, "1.00"
    printf "%-30s %10.2f %9.2f %16.2f %9.2f\n", "mpirun -np 2, 1 thread each", b, a / b, d, c / d
    printf "rank 0 per outer iteration: %.0f bytes sent in %.0f sums, %.2f s (wall) inside them\n", v[1], v[2], v[4]
}'
