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
# On a loaded machine the scheduler shares the cores per process, so the wall-clock ratio says
# little about an idle one. The table therefore also gives CPU seconds per outer iteration (of
# every rank together, from /usr/bin/time, as the difference between a run of 2 outer
# iterations and one of 1, which removes the data loading): 2 ranks that split the work evenly
# and wait little use the CPU seconds of 1 process, and on an idle 2-core machine run
# 2 x CPU(1 process) / CPU(2 ranks) times faster. That bound is printed as well. The ranks
# yield their core while they wait in a sum (mpi_yield_when_idle): spinning ranks on a loaded
# machine burn the CPU the other rank needs to reach the sum.
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
mpi=(mpirun -np 2 --oversubscribe --allow-run-as-root --mca pml ob1 --mca btl self,vader
    --mca mpi_yield_when_idle 1)

bench_banner 1 "$rounds"
out=$(mktemp)
cpu=$(mktemp)
trap 'rm -f "$out" "$cpu"' EXIT
sec() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["seconds"]/d["iters"])' "$out"; }
# cpu_of <outer> <command...>: CPU seconds (user + system, children included) of the command.
cpu_of() {
    local outer=$1
    shift
    /usr/bin/time -f "%U %S" -o "$cpu" nice -n 10 "$@" "${args[@]}" --threads 1 --outer "$outer" >"$out"
    awk '{print $1 + $2}' "$cpu"
}
one="" two="" cone="" ctwo="" bytes=0
for r in $(seq "$rounds"); do
    c1=$(cpu_of 1 "$blo")
    c2=$(cpu_of 2 "$blo")
    one="$one $(sec)"
    cone="$cone $(echo "$c1 $c2" | awk '{print $2 - $1}')"
    c1=$(cpu_of 1 "${mpi[@]}" "$blo")
    c2=$(cpu_of 2 "${mpi[@]}" "$blo")
    two="$two $(sec)"
    ctwo="$ctwo $(echo "$c1 $c2" | awk '{print $2 - $1}')"
    bytes=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["comm_bytes"], d["comm_calls"], d["iters"], d["comm_seconds"])' "$out")
    echo "round $r: s/iter 1 process$one, 2 ranks$two; CPU s/iter 1 process$cone, 2 ranks$ctwo" >&2
done
awk -v one="$one" -v two="$two" -v cone="$cone" -v ctwo="$ctwo" -v bytes="$bytes" "$bench_median_awk"'
BEGIN {
    a = med(one); b = med(two); c = med(cone); d = med(ctwo); split(bytes, v, " ")
    printf "%-30s %10s %9s %14s\n", "hyper-cleaning, n = 50000, cg", "s / iter", "speed-up", "CPU s / iter"
    printf "%-30s %10.2f %9s %14.2f\n", "1 process, 1 thread", a, "1.00", c
    printf "%-30s %10.2f %9.2f %14.2f\n", "mpirun -np 2, 1 thread each", b, a / b, d
    printf "idle-machine speed-up bound 2 x CPU(1) / CPU(2): %.2f\n", 2 * c / d
    printf "bytes sent by rank 0 per outer iteration: %.0f in %.0f collectives\n", v[1] / v[3], v[2] / v[3]
    printf "rank 0 inside the sums (transfer and waiting): %.2f s per outer iteration\n", v[4] / v[3]
}'
