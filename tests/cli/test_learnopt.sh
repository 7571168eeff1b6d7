#!/usr/bin/env bash
# test_learnopt.sh — `blo learnopt train|apply` end to end on a tiny data set and budget: exit
# codes (0 ok, 2 bad usage or a bad optimizer file), the JSON summaries' fields, --log rows and
# --plot files, the optimizer file applied to the trained optimizee and to a deeper one, a run
# stopped halfway and resumed from its checkpoint writing the same optimizer bytes as an
# uninterrupted one, and a meta-trained optimizer beating its own start (Adam) on an optimizee
# it never saw.
# Usage: test_learnopt.sh <blo binary> <source dir>.
set -uo pipefail
blo=${1:?usage: test_learnopt.sh <blo binary> <source dir>}
src=${2:?usage: test_learnopt.sh <blo binary> <source dir>}
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1

# tests/data/tinymnist (120 8x8 images, 3 classes) serves as both the train and the t10k split.
mkdir "$tmp/data"
for split in train t10k; do
    cp "$src/tests/data/tinymnist/train-images-idx3-ubyte.gz" "$tmp/data/$split-images-idx3-ubyte.gz"
    cp "$src/tests/data/tinymnist/train-labels-idx1-ubyte" "$tmp/data/$split-labels-idx1-ubyte"
done
tiny=(--data "$tmp/data" --n-train 120 --n-test 120 --batch 16 --hidden 8 --threads 1 -q)
train=(learnopt train "${tiny[@]}" --inner 3 --reset-every 2)

expect_rc 0 "${train[@]}" --outer 4 --json --out "$tmp/full.blo" --log "$tmp/run.csv" \
    --plot "$tmp/run.svg"
cp "$tmp/out" "$tmp/train.json"
check "train --json prints one object with every field" json_ok "$tmp/train.json" \
    'all(k in d for k in ("method","window","reset_every","iters","optimizer","upper","first_trajectory","last_trajectory","step","seconds")) and d["iters"] == 4 and d["window"] == 3'
check "--log has a header and 4 rows" test "$(wc -l <"$tmp/run.csv")" -eq 5
check "--log has the window loss column" grep -q '^iter,upper,hypergrad_norm' "$tmp/run.csv"
check "--plot wrote an SVG" grep -q '<svg' "$tmp/run.svg"
check "the optimizer file starts with its header" grep -q '^BLOLOPT1' "$tmp/full.blo"

# apply: the learned optimizer, a deeper optimizee, a baseline; JSON fields and a log.
expect_rc 0 learnopt apply "${tiny[@]}" --optimizer "$tmp/full.blo" --steps 20 --json \
    --eval-every 5 --log "$tmp/apply.csv"
cp "$tmp/out" "$tmp/apply.json"
check "apply --json prints one object with every field" json_ok "$tmp/apply.json" \
    'all(k in d for k in ("optimizer","steps","mean_loss","train_loss","test_acc","seconds")) and d["steps"] == 20 and 0 < d["train_loss"] < 2.31 and d["test_acc"] > 0.2'
check "apply --log has a row every 5 steps" test "$(wc -l <"$tmp/apply.csv")" -eq 5
check "apply --log has the columns blo plot draws" grep -q '^iter,upper,lower,test_acc' "$tmp/apply.csv"
expect_rc 0 learnopt apply "${tiny[@]}" --optimizer "$tmp/full.blo" --steps 5 --layers 2 \
    --hidden 12
check "the summary names the optimizer file" grep -q 'full.blo' "$tmp/out"
expect_rc 0 learnopt apply "${tiny[@]}" --baseline momentum --lr 0.05 --steps 5 --json
expect_rc 0 learnopt --help
expect_rc 0 learnopt apply --help
check "the help lists --optimizer" grep -q -- '--optimizer' "$tmp/out"

# Bad usage and bad files: exit 2 with a message naming the problem.
expect_rc 2 learnopt apply "${tiny[@]}" --steps 5
check "apply needs an optimizer" grep -q -- '--optimizer FILE or --baseline' "$tmp/err"
expect_rc 2 learnopt apply "${tiny[@]}" --steps 5 --optimizer "$tmp/full.blo" --baseline adam
expect_rc 2 learnopt apply "${tiny[@]}" --steps 5 --optimizer "$tmp/none.blo"
check "a missing optimizer file is named" grep -q 'none.blo' "$tmp/err"
printf 'BLOLOPT1 but not really an optimizer' >"$tmp/bad.blo"
expect_rc 2 learnopt apply "${tiny[@]}" --steps 5 --optimizer "$tmp/bad.blo"
check "a malformed optimizer file is refused with its name" grep -q 'bad.blo' "$tmp/err"
expect_rc 2 "${train[@]}" --outer 1 --out "$tmp/no/such/dir/x.blo"
check "an unwritable --out is refused before the run" grep -q -- '--out' "$tmp/err"
expect_rc 2 learnopt fly
expect_rc 2 "${train[@]}" --outer 1 --out "$tmp/x.blo" --n-train 100000000
check "too many training images are refused" grep -q 'training and' "$tmp/err"

# Resume: 4 windows in one go == 2, stopped, then resumed to 4 (a trajectory reset between).
expect_rc 0 "${train[@]}" --outer 2 --out "$tmp/half.blo" --checkpoint "$tmp/ck.bin"
expect_rc 0 "${train[@]}" --outer 4 --out "$tmp/resumed.blo" --resume "$tmp/ck.bin"
check "a resumed run writes the optimizer an uninterrupted one writes" \
    cmp -s "$tmp/full.blo" "$tmp/resumed.blo"

# Meta-training learns: after 100 windows of 5 steps (T = 10) the learned optimizer, which
# starts as Adam with lr 3e-3, trains an optimizee it never saw (seed 2) to a lower mean loss
# over the 10 steps than that Adam on the same minibatches.
expect_rc 0 learnopt train "${tiny[@]}" --inner 5 --reset-every 2 --outer 100 --outer-lr 0.01 \
    --out "$tmp/learn.blo"
expect_rc 0 learnopt apply "${tiny[@]}" --seed 2 --steps 10 --optimizer "$tmp/learn.blo" --json
cp "$tmp/out" "$tmp/learned.json"
expect_rc 0 learnopt apply "${tiny[@]}" --seed 2 --steps 10 --baseline adam --lr 3e-3 --json
check "meta-training improves on the optimizer's start" python3 -c '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
sys.exit(0 if a["mean_loss"] < b["mean_loss"] - 0.02 else 1)' "$tmp/learned.json" "$tmp/out"

cli_finish test_learnopt
