#!/usr/bin/env bash
# test_dist_reweight.sh — `mpirun -np 2 blo reweight` on tests/data/tinymnist: every minibatch
# shared by 2 ranks follows the 1-process run (f64, 1e-9 relative: the weights of clean and
# noisy examples, the learned weight curve, the per-epoch meta and training CE of the log) for
# network and per-example weights and a solver method, prints one summary (rank 0), and a batch
# smaller than the rank count is refused with a message. Skipped (passing) when blo or this
# machine has no MPI.
# Usage: test_dist_reweight.sh <blo binary> <source dir>.
set -uo pipefail
blo=${1:?usage: test_dist_reweight.sh <blo binary> <source dir>}
src=${2:?usage: test_dist_reweight.sh <blo binary> <source dir>}
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1

need_mpi test_dist_reweight
# same <a.json> <b.json> <a.csv> <b.csv> <rtol>: the summaries' weights and curve and the logs'
# meta and training CE agree.
same() {
    python3 -c '
import csv, json, math, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
la, lb = list(csv.DictReader(open(sys.argv[3]))), list(csv.DictReader(open(sys.argv[4])))
rtol = float(sys.argv[5])
def close(x, y):
    if x is None or y is None: return x is None and y is None
    x, y = float(x), float(y)
    return (math.isnan(x) and math.isnan(y)) or abs(x - y) <= rtol * abs(y)
ok = all(close(a[k], b[k]) for k in ("test_acc", "clean_weight", "noisy_weight"))
ok = ok and all(a[k] == b[k] for k in ("steps", "epochs", "noisy", "n_train"))
ok = ok and all(close(p[1], q[1]) for p, q in zip(a["weight_curve"], b["weight_curve"]))
ok = ok and len(la) == len(lb) == a["epochs"] and all(
    close(p[k], q[k]) for p, q in zip(la, lb) for k in lb[0] if k not in ("seconds", "iter"))
if not ok: print("  %s\n  %s" % (json.dumps(a), json.dumps(b)), file=sys.stderr)
sys.exit(0 if ok else 1)' "$@"
}

tiny=(--data "$src/tests/data/tinymnist" --test-split train --n-test 20 --n-meta 20 --batch 9
    --meta-batch 7 --hidden 16 --vnet-hidden 8 --epochs 2 --lr 0.1 --threads 1 -q --json
    --dtype f64)

# Odd batch sizes: the ranks hold 5 and 4 (4 and 3) positions of each batch.
for run in "--weights network" "--weights per-example" "--scheme solver --method rhg --inner 2"; do
    # shellcheck disable=SC2086
    expect_rc 0 reweight "${tiny[@]}" $run --log "$tmp/one.csv"
    cp "$tmp/out" "$tmp/one.json"
    # shellcheck disable=SC2086
    expect_mpi 0 reweight "${tiny[@]}" $run --log "$tmp/two.csv"
    check "$run: one summary, printed by rank 0" test "$(wc -l <"$tmp/out")" -eq 1
    check "$run: 2 ranks follow 1 process (f64, 1e-9)" \
        same "$tmp/out" "$tmp/one.json" "$tmp/two.csv" "$tmp/one.csv" 1e-9
done

# Every rank needs at least one example of each batch.
expect_mpi 2 reweight "${tiny[@]}" --batch 1
check "a batch of 1 on 2 ranks is refused with a reason" grep -q "cannot be shared by 2 ranks" "$tmp/err"

cli_finish test_dist_reweight
