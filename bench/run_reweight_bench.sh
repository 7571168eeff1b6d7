#!/usr/bin/env bash
# run_reweight_bench.sh — seconds per epoch of `blo reweight` and of the same step in PyTorch
# (bench/bench_reweight_torch.py), one epoch each, alternating, with the same thread count.
#
#   bench/run_reweight_bench.sh [--threads N] [--rounds K] [--weights W] [--build DIR]
#
#   --threads N  threads for both (default 1)
#   --rounds K   alternate the two K times (default 2); the table shows each run and the medians
#   --weights W  network (default), per-example or none
#   --build DIR  the CMake build folder holding blo (default: build/ in the source tree)
#   PYTHON       the interpreter with torch (default /usr/bin/python3)
# Both read Fashion-MNIST (BLO_DATA or the Debian package's folder), train on 59 000 examples
# with 40 % uniform noise in batches of 100 and score the t10k split inside the timed epoch.
# Each reports wall seconds and the CPU seconds of its process (all threads): on a loaded
# machine the CPU time is the steadier figure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
threads=1
rounds=2
weights=network
build="$root/build"
while [ $# -gt 0 ]; do
    case "$1" in
    --threads) threads="${2:?--threads needs a number}"; shift 2 ;;
    --rounds) rounds="${2:?--rounds needs a number}"; shift 2 ;;
    --weights) weights="${2:?--weights needs network, per-example or none}"; shift 2 ;;
    --build) build="${2:?--build needs a folder}"; shift 2 ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_reweight_bench.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
python="${PYTHON:-/usr/bin/python3}"
. "$here/lib.sh"
exe="$(bench_exe run_reweight_bench.sh blo)"
export OMP_NUM_THREADS="$threads"
bench_banner "$threads" "$rounds"
bw=() bc=() tw=() tc=()
for k in $(seq 1 "$rounds"); do
    read -r b bcpu < <("$exe" reweight --weights "$weights" --epochs 1 --noise 0.4 --noise-kind uniform \
        --lr 0.02 --sgd-momentum 0.9 --wd 5e-4 --meta-lr 1e-3 --meta-wd 1e-4 --batch 100 \
        --meta-batch 100 --hidden 300 --vnet-hidden 100 --n-meta 1000 --threads "$threads" -q --json |
        "$python" -c 'import json,sys; d = json.load(sys.stdin); print(d["seconds_per_epoch"], d["cpu_seconds_per_epoch"])')
    read -r t tcpu < <("$python" "$here/bench_reweight_torch.py" --weights "$weights" --epochs 1 \
        --threads "$threads" |
        "$python" -c 'import json,sys; d = json.load(sys.stdin); print(d["seconds_per_epoch"], d["cpu_seconds_per_epoch"])')
    echo "round $k: blo $b s wall, $bcpu s CPU; torch $t s wall, $tcpu s CPU per epoch"
    bw+=("$b") bc+=("$bcpu") tw+=("$t") tc+=("$tcpu")
done
awk -v bw="${bw[*]}" -v bc="${bc[*]}" -v tw="${tw[*]}" -v tc="${tc[*]}" -v w="$weights" "$bench_median_awk"'
    BEGIN { printf "%s weights, seconds per epoch (medians): wall blo %.2f torch %.2f (blo / torch %.2f); CPU blo %.2f torch %.2f (blo / torch %.2f)\n", w, med(bw), med(tw), med(bw) / med(tw), med(bc), med(tc), med(bc) / med(tc) }'
