#!/usr/bin/env bash
# test_reweight.sh — `blo reweight` end to end on tests/data/tinymnist (120 8x8 images,
# 3 classes; the test set held out of the training split): every weighting and both schemes
# run, the JSON summary's fields and sizes, the noise count, the imbalance, the weight curve
# file and plot, and bad input refused with exit 2 and a message.
# Usage: test_reweight.sh <blo binary> <source dir>.
set -uo pipefail
blo=${1:?usage: test_reweight.sh <blo binary> <source dir>}
src=${2:?usage: test_reweight.sh <blo binary> <source dir>}
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1

tiny=(--data "$src/tests/data/tinymnist" --test-split train --n-test 20 --n-meta 20 --batch 10
    --meta-batch 10 --hidden 16 --vnet-hidden 8 --epochs 2 --lr 0.1 --threads 1 -q)

expect_rc 0 reweight "${tiny[@]}" --json --log "$tmp/run.csv" --curve "$tmp/curve.csv"
cp "$tmp/out" "$tmp/run.json"
check "--json has every field" json_ok "$tmp/run.json" \
    'all(k in d for k in ("test_acc","best_test_acc","clean_weight","noisy_weight","n_train","noisy","weight_curve","seconds_per_epoch"))'
check "120 - 20 meta - 20 test = 80 training examples, 8 batches a pass, 2 passes" \
    json_ok "$tmp/run.json" 'd["n_train"] == 80 and d["steps"] == 16 and d["epochs"] == 2'
check "40 % of 80 labels redrawn uniformly: 32 redrawn, about a third keep theirs" \
    json_ok "$tmp/run.json" '15 <= d["noisy"] <= 32'
check "weights and accuracy are probabilities" json_ok "$tmp/run.json" \
    '0 <= d["test_acc"] <= 1 and 0 < d["clean_weight"] < 1 and 0 < d["noisy_weight"] < 1'
check "--log has a header and 2 rows" test "$(wc -l <"$tmp/run.csv")" -eq 3
check "--curve wrote 101 points of V(loss)" test "$(grep -c , "$tmp/curve.csv")" -eq 102

expect_rc 0 reweight "${tiny[@]}" --noise 0.5 --noise-kind pair --json --curve "$tmp/curve.svg"
check "pair flip changes exactly half of the 80 labels" json_ok "$tmp/out" 'd["noisy"] == 40'
check "--curve .svg draws the curve" grep -q '<svg' "$tmp/curve.svg"
for w in per-example none; do
    expect_rc 0 reweight "${tiny[@]}" --weights "$w" --json
done
check "plain cross-entropy has no weights" json_ok "$tmp/out" 'd["clean_weight"] is None'
expect_rc 0 reweight "${tiny[@]}" --scheme solver --method rhg --inner 2 --json
check "the solver scheme learns a curve" json_ok "$tmp/out" \
    'all(0 < v < 1 for _, v in d["weight_curve"])'
expect_rc 0 reweight "${tiny[@]}" --noise 0 --imbalance 4 --batch 5 --json
check "imbalance 4: fewer training examples than 80, no label changed" json_ok "$tmp/out" \
    'd["n_train"] < 80 and d["noisy"] == 0'

expect_rc 0 reweight "${tiny[@]}" --classifier conv --channels 2 --norm batch --lr-decay 1 --json
check "the conv classifier trains through the online scheme" json_ok "$tmp/out" \
    'd["epochs"] == 2 and 0 <= d["test_acc"] <= 1 and 0 < d["clean_weight"] < 1'
expect_rc 0 reweight "${tiny[@]}" --json --meta-opt nesterov
cp "$tmp/out" "$tmp/nesterov.json"
check "--meta-opt reaches the weighting network's step: another curve than Adam's" python3 -c '
import json, sys
a, b = (json.load(open(p))["weight_curve"] for p in sys.argv[1:])
assert max(abs(x[1] - y[1]) for x, y in zip(a, b)) > 1e-6' "$tmp/run.json" "$tmp/nesterov.json"
check "the log's hypergrad_norm column holds the mean meta-gradient norm of each epoch" python3 -c '
import csv, sys
assert all(0 < float(r["hypergrad_norm"]) < 1e3 for r in csv.DictReader(open(sys.argv[1])))' "$tmp/run.csv"
expect_rc 0 reweight "${tiny[@]}" --json --lr-decay 1 --meta-wd 0.5 --meta-wd-schedule fixed
cp "$tmp/out" "$tmp/fixed.json"
expect_rc 0 reweight "${tiny[@]}" --json --lr-decay 1 --meta-wd 0.5
check "--meta-wd-schedule follow (the default) changes the second epoch's weight decay only" python3 -c '
import json, sys
a, b = (json.load(open(p))["weight_curve"] for p in sys.argv[1:])
assert max(abs(x[1] - y[1]) for x, y in zip(a, b)) > 1e-6' "$tmp/fixed.json" "$tmp/out"
expect_rc 0 reweight "${tiny[@]}" --json --epochs 1 --lr-decay 1 --meta-wd 0.5 --meta-wd-schedule follow
cp "$tmp/out" "$tmp/one.json"
expect_rc 0 reweight "${tiny[@]}" --json --epochs 1 --lr-decay 1 --meta-wd 0.5 --meta-wd-schedule fixed
check "... and not the first (before any decay)" python3 -c '
import json, sys
a, b = (json.load(open(p))["weight_curve"] for p in sys.argv[1:])
assert a == b' "$tmp/one.json" "$tmp/out"
expect_rc 0 reweight "${tiny[@]}" --json --lr-decay 1 --meta-lr 0.05 --meta-lr-schedule follow
cp "$tmp/out" "$tmp/lrfollow.json"
expect_rc 0 reweight "${tiny[@]}" --json --lr-decay 1 --meta-lr 0.05
cp "$tmp/out" "$tmp/lrfixed.json"
check "--meta-lr-schedule follow changes the second epoch's phi step" python3 -c '
import json, sys
a, b = (json.load(open(p))["weight_curve"] for p in sys.argv[1:])
assert max(abs(x[1] - y[1]) for x, y in zip(a, b)) > 1e-6' "$tmp/lrfollow.json" "$tmp/lrfixed.json"
expect_rc 0 reweight "${tiny[@]}" --json --epochs 1 --lr-decay 1 --meta-lr 0.05 --meta-lr-schedule follow
cp "$tmp/out" "$tmp/lrone.json"
expect_rc 0 reweight "${tiny[@]}" --json --epochs 1 --lr-decay 1 --meta-lr 0.05
check "... and not the first (before any decay)" python3 -c '
import json, sys
a, b = (json.load(open(p))["weight_curve"] for p in sys.argv[1:])
assert a == b' "$tmp/lrone.json" "$tmp/out"
expect_rc 0 reweight "${tiny[@]}" --json --meta-beta1 0.99
check "--meta-beta1 reaches Adam's first moment for phi: another curve" python3 -c '
import json, sys
a, b = (json.load(open(p))["weight_curve"] for p in sys.argv[1:])
assert max(abs(x[1] - y[1]) for x, y in zip(a, b)) > 1e-6' "$tmp/run.json" "$tmp/out"
expect_rc 2 reweight "${tiny[@]}" --meta-beta1 1
check "--meta-beta1 1 is refused and named" grep -q -- "--meta-beta1" "$tmp/err"
expect_rc 0 reweight "${tiny[@]}" --weights none --log "$tmp/none.csv"
check "plain cross-entropy has no meta gradient: hypergrad_norm is nan" python3 -c '
import csv, math, sys
assert all(math.isnan(float(r["hypergrad_norm"])) for r in csv.DictReader(open(sys.argv[1])))' "$tmp/none.csv"
expect_rc 2 reweight "${tiny[@]}" --meta-opt rmsprop
check "an unknown --meta-opt is named" grep -q "rmsprop" "$tmp/err"
expect_rc 2 reweight "${tiny[@]}" --lr-decay 3,x
check "a malformed --lr-decay is named" grep -q "lr-decay '3,x'" "$tmp/err"
expect_rc 2 reweight "${tiny[@]}" --scheme solver --lr-decay 1
check "decays with the solver scheme say why" grep -q "online scheme only" "$tmp/err"
expect_rc 2 reweight "${tiny[@]}" --weights nosuch
check "an unknown weighting is named" grep -q "nosuch" "$tmp/err"
expect_rc 2 reweight "${tiny[@]}" --scheme solver --weights none
check "the solver scheme with no network says why" grep -q "weighting network" "$tmp/err"
expect_rc 2 reweight "${tiny[@]}" --n-meta 110
check "a meta set that leaves nothing to train on says so" grep -q "leave no training" "$tmp/err"
expect_rc 2 reweight "${tiny[@]}" --test-split t10k
check "a folder without a test split is named" grep -q "t10k" "$tmp/err"
expect_rc 2 reweight "${tiny[@]}" --curve "$tmp/nodir/c.csv"
check "an unwritable --curve is refused before the run" grep -q "nodir" "$tmp/err"

# Resume: 3 epochs in one go == 1 epoch with --checkpoint, then resumed to 3 — bit for bit, the
# log continued — for each weighting (network: φ and Adam's moments; the classifier's momentum),
# the conv classifier with the step's decay, and the solver scheme.
same_run() {
    python3 -c '
import csv, json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
la, lb = list(csv.DictReader(open(sys.argv[3]))), list(csv.DictReader(open(sys.argv[4])))
keys = ("test_acc", "best_test_acc", "clean_weight", "noisy_weight", "weight_curve", "steps", "epochs")
ok = all(a[k] == b[k] for k in keys) and len(la) == len(lb) == 3 and all(
    p[k] == q[k] for p, q in zip(la, lb) for k in ("iter", "upper", "lower", "hypergrad_norm", "test_acc"))
if not ok: print("  %s\n  %s" % (json.dumps(a), json.dumps(b)), file=sys.stderr)
sys.exit(0 if ok else 1)' "$@"
}
for run in "--weights network" "--weights per-example" "--weights none" \
    "--classifier conv --channels 2 --lr-decay 2" "--scheme solver --method rhg --inner 2"; do
    rm -f "$tmp/ck" "$tmp/a.csv" "$tmp/b.csv"
    # shellcheck disable=SC2086
    expect_rc 0 reweight "${tiny[@]}" $run --epochs 3 --json --log "$tmp/a.csv"
    cp "$tmp/out" "$tmp/full.json"
    # shellcheck disable=SC2086
    expect_rc 0 reweight "${tiny[@]}" $run --epochs 1 --json --log "$tmp/b.csv" --checkpoint "$tmp/ck"
    # shellcheck disable=SC2086
    expect_rc 0 reweight "${tiny[@]}" $run --epochs 3 --json --log "$tmp/b.csv" --resume "$tmp/ck"
    check "$run: a run resumed from its checkpoint ends where the uninterrupted one does" \
        same_run "$tmp/full.json" "$tmp/out" "$tmp/a.csv" "$tmp/b.csv"
done
expect_rc 0 reweight "${tiny[@]}" --epochs 1 --json --checkpoint "$tmp/ck"
cp "$tmp/out" "$tmp/one.json"
check "the checkpoint is renamed into place: no FILE.tmp is left" test ! -e "$tmp/ck.tmp"
expect_rc 0 reweight "${tiny[@]}" --epochs 1 --json --resume "$tmp/ck"
check "resuming a finished run scores it again" python3 -c '
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert b["epochs"] == 1 and b["test_acc"] == a["test_acc"]' "$tmp/one.json" "$tmp/out"
expect_rc 2 reweight "${tiny[@]}" --epochs 3 --noise 0.3 --resume "$tmp/ck"
check "a checkpoint of other settings is refused, the setting named" \
    grep -q "ck: written with noise = 0.40000000000000002, this run has 0.29999999999999999" "$tmp/err"
expect_rc 2 reweight "${tiny[@]}" --epochs 3 --meta-lr 0.01 --resume "$tmp/ck"
check "... an optimizer's setting too" grep -q "written with meta_opt.lr = 0.001, this run has 0.01" "$tmp/err"
expect_rc 2 reweight "${tiny[@]}" --epochs 3 --seed 5 --resume "$tmp/ck"
check "... and of another seed" grep -q "written with seed 0, this run has 5" "$tmp/err"
expect_rc 2 reweight "${tiny[@]}" --epochs 3 --weights none --resume "$tmp/ck"
check "... and of another weighting" grep -q "written with weights = 0, this run has 2" "$tmp/err"
expect_rc 0 reweight "${tiny[@]}" --epochs 2 --json --checkpoint "$tmp/ck2"
expect_rc 2 reweight "${tiny[@]}" --epochs 1 --resume "$tmp/ck2"
check "a checkpoint past the epochs asked is refused" grep -q "holds 2 epochs, more than the 1 asked" "$tmp/err"
head -c 100 "$tmp/ck" >"$tmp/short"
expect_rc 2 reweight "${tiny[@]}" --epochs 3 --resume "$tmp/short"
check "a truncated checkpoint is named" grep -q "short: not a blo reweight checkpoint, or truncated" "$tmp/err"
head -c 2000 "$tmp/ck" >"$tmp/short"
expect_rc 2 reweight "${tiny[@]}" --epochs 3 --resume "$tmp/short"
check "... cut inside its tensors too" grep -q "short: truncated" "$tmp/err"
expect_rc 2 reweight "${tiny[@]}" --epochs 3 --resume "$tmp/nosuch"
check "a missing checkpoint is named" grep -q "nosuch: cannot open the checkpoint" "$tmp/err"
expect_rc 2 reweight "${tiny[@]}" --checkpoint "$tmp/nodir/ck"
check "an unwritable checkpoint is refused before the run" grep -q "nodir" "$tmp/err"
expect_rc 1 reweight "${tiny[@]}" --lr 1e6 --sgd-momentum 0 --weights none
check "a diverging run names the step" grep -q "epoch 1, step" "$tmp/err"

cli_finish test_reweight
