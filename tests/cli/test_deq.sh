#!/usr/bin/env bash
# test_deq.sh — `blo deq` end to end on tests/data/tinymnist (120 8x8 images, 3 classes; the
# same files serve as the t10k split): exit codes (0 ok, 1 diverged, 2 bad option or data), the
# JSON summary, --log rows and --plot, the unconverged examples reported, the explicit baseline
# of the same size, every backward, and a run stopped after one epoch and resumed from its
# checkpoint ending exactly where an uninterrupted run ends.
# Usage: test_deq.sh <blo binary> <source dir>.
set -uo pipefail
blo=${1:?usage: test_deq.sh <blo binary> <source dir>}
src=${2:?usage: test_deq.sh <blo binary> <source dir>}
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1

mkdir -p "$tmp/data"
for f in images-idx3-ubyte.gz labels-idx1-ubyte; do
    cp "$src/tests/data/tinymnist/train-$f" "$tmp/data/train-$f"
    cp "$src/tests/data/tinymnist/train-$f" "$tmp/data/t10k-$f"
done
tiny=(--data "$tmp/data" --hidden 8 --batch 20 --lr 0.01 --threads 1 -q)

expect_rc 0 deq "${tiny[@]}" --epochs 3 --baseline --json --log "$tmp/run.csv" --plot "$tmp/run.svg"
cp "$tmp/out" "$tmp/run.json"
check "--json prints one object with every field" json_ok "$tmp/run.json" \
    'all(k in d for k in ("test_acc","fwd_iters","bwd_iters","fwd_residual","unconverged","params","baseline_acc","baseline_params","peak_bytes"))'
check "3 epochs; the layer learns (3 classes: chance is 1/3)" json_ok "$tmp/run.json" \
    'd["epochs"] == 3 and d["test_acc"] > 0.6'
check "the explicit network has the layer's parameter count within one unit's worth" \
    json_ok "$tmp/run.json" 'abs(d["baseline_params"] - d["params"]) <= 64 + 1 + 3'
check "--log has a header and 3 rows" test "$(wc -l <"$tmp/run.csv")" -eq 4
check "--log has the solver columns" grep -q '^iter,upper,test_acc,fwd_iters,fwd_residual,bwd_iters' "$tmp/run.csv"
check "--plot wrote an SVG with the iteration panel" grep -q 'forward solver iterations' "$tmp/run.svg"

# Every parametrisation and every backward trains (the first run above: monotone, implicit).
for pb in "weight jfb" "spectral phantom" "monotone unrolled" "spectral implicit"; do
    set -- $pb
    expect_rc 0 deq "${tiny[@]}" --epochs 1 --param "$1" --solver anderson --backward "$2" --json
    check "--param $1 --backward $2 trains" json_ok "$tmp/out" "d[\"param\"] == \"$1\" and d[\"backward\"] == \"$2\" and d[\"test_acc\"] > 0.4"
done
for b in implicit unrolled; do
    expect_rc 0 deq "${tiny[@]}" --epochs 1 --backward $b --jac-reg 0.5 --json
done
expect_rc 0 deq "${tiny[@]}" --epochs 1 --solver pr --alpha 1 --json
check "--solver pr trains" json_ok "$tmp/out" 'd["solver"] == "pr" and d["test_acc"] > 0.4'
expect_rc 2 deq "${tiny[@]}" --solver pr --backward unrolled
check "pr with unrolled says why" grep -q "not offered with pr" "$tmp/err"
expect_rc 2 deq "${tiny[@]}" --solver fb --alpha 2
check "fb with alpha > 1 is refused" grep -q "(0, 1\]" "$tmp/err"
expect_rc 0 deq "${tiny[@]}" --epochs 2 --layer conv --channels 4 --stride 1 --solver anderson \
    --baseline --json
check "--layer conv trains beside its conv net" json_ok "$tmp/out" \
    'd["layer"] == "conv" and d["test_acc"] > 0.6 and d["baseline_acc"] > 0.4 and abs(d["baseline_params"] - d["params"]) == 8'
expect_rc 2 deq "${tiny[@]}" --layer conv --solver pr
check "conv with pr says why" grep -q "FFT" "$tmp/err"
expect_rc 2 deq "${tiny[@]}" --layer conv --param weight
check "conv with a normalised W says why" grep -q "monotone" "$tmp/err"
expect_rc 0 deq "${tiny[@]}" --epochs 1 --param weight --act tanh --solver picard --json
check "tanh with picard runs" json_ok "$tmp/out" 'd["act"] == "tanh" and d["fwd_iters"] >= 1'

# A cap too low to converge: reported, not silently accepted.
expect_rc 0 deq --data "$tmp/data" --hidden 8 --batch 20 --threads 1 --epochs 1 --max-iter 2 --tol 1e-9 --anderson-m 0
check "the summary counts unconverged examples" grep -q "examples not converged (all epochs) *120" "$tmp/out"
check "stderr names the epoch and the residual" grep -q "epoch 1: 120 examples stopped above the tolerance (worst minibatch residual" "$tmp/err"

# Resume: 3 epochs in one go == 1, then resumed to 3.
expect_rc 0 deq "${tiny[@]}" --epochs 3 --json
cp "$tmp/out" "$tmp/full.json"
expect_rc 0 deq "${tiny[@]}" --epochs 1 --json --checkpoint "$tmp/ck.bin"
expect_rc 0 deq "${tiny[@]}" --epochs 3 --json --resume "$tmp/ck.bin"
cp "$tmp/out" "$tmp/resumed.json"
check "a resumed run ends where the uninterrupted one does" python3 -c '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
keys = ("test_acc", "train_loss", "fwd_iters", "bwd_iters", "epochs")
sys.exit(0 if all(a[k] == b[k] for k in keys) else 1)' "$tmp/full.json" "$tmp/resumed.json"
expect_rc 0 deq "${tiny[@]}" --epochs 1 --json --resume "$tmp/ck.bin"
check "resuming a finished run reports its epochs and scores it again" json_ok "$tmp/out" \
    'd["epochs"] == 1 and 0.3 <= d["test_acc"] <= 1'
expect_rc 2 deq "${tiny[@]}" --epochs 3 --hidden 9 --resume "$tmp/ck.bin"
check "a checkpoint of another size is refused by name" grep -q "ck.bin: written by a model" "$tmp/err"
printf 'junk' >"$tmp/junk.bin"
expect_rc 2 deq "${tiny[@]}" --epochs 3 --resume "$tmp/junk.bin"
check "a file that is no checkpoint is named" grep -q "junk.bin: not a blo deq checkpoint" "$tmp/err"

# Bad input: exit 2 with a message naming the problem.
expect_rc 2 deq "${tiny[@]}" --solver nope
check "an unknown solver lists the known ones" grep -q "picard" "$tmp/err"
expect_rc 2 deq "${tiny[@]}" --solver fb --act tanh
check "fb with tanh says why" grep -q "relu" "$tmp/err"
expect_rc 2 deq "${tiny[@]}" --data "$tmp/nonexistent"
check "a missing folder is named" grep -q "nonexistent" "$tmp/err"
expect_rc 2 deq "${tiny[@]}" --n-train 500
check "asking for more examples than exist says so" grep -q "has 120" "$tmp/err"
expect_rc 2 deq "${tiny[@]}" --checkpoint "$tmp/nodir/ck.bin"
check "an unwritable checkpoint is refused before the run" grep -q "no folder" "$tmp/err"
expect_rc 0 deq --help
check "--help gives every backward's maths" grep -q "phantom: .*lambda" "$tmp/out"

# A diverging run: exit 1 and the epoch named.
expect_rc 1 deq "${tiny[@]}" --epochs 2 --lr 1000
check "divergence names the epoch" grep -q "epoch 1" "$tmp/err"

cli_finish test_deq
