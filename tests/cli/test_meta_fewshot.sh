#!/usr/bin/env bash
# test_meta_fewshot.sh — `blo meta fewshot` end to end on tests/data/tinymnist (8x8, 3
# classes: 12 rotation classes): exit codes (0 ok, 2 bad usage), the JSON summary's fields,
# --log rows and --plot files, the linear and MLP learners, and meta-test accuracy far above
# chance after fine-tuning.
# Usage: test_meta_fewshot.sh <blo binary> <source dir>.
set -uo pipefail
blo=${1:?usage: test_meta_fewshot.sh <blo binary> <source dir>}
src=${2:?usage: test_meta_fewshot.sh <blo binary> <source dir>}
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1

tiny=(meta fewshot --data "$src/tests/data/tinymnist" --train-classes 8 --ways 3 --shots 2
    --queries 5 --meta-batch 4 --eval-episodes 50 --outer-lr 0.01 --threads 1 -q)

expect_rc 0 "${tiny[@]}" --outer 30 --json --log "$tmp/run.csv" --plot "$tmp/run.svg"
cp "$tmp/out" "$tmp/run.json"
check "--json prints one object with every field" json_ok "$tmp/run.json" \
    'all(k in d for k in ("method","ways","shots","queries","classes","train_classes","test_classes","side","iters","acc","acc_ci95","acc_before","upper","seconds"))'
check "12 rotation classes of 8x8 images, 8 / 4" json_ok "$tmp/run.json" \
    'd["classes"] == 12 and d["train_classes"] == 8 and d["test_classes"] == 4 and d["side"] == 8'
check "30 iterations of first_order (the default)" json_ok "$tmp/run.json" \
    'd["iters"] == 30 and d["method"] == "first_order"'
check "3-way accuracy well above chance after fine-tuning" json_ok "$tmp/run.json" \
    'd["acc"] > 0.7 and 0 <= d["acc_before"] <= 1'
check "--log has a header and 30 rows" test "$(wc -l <"$tmp/run.csv")" -eq 31
check "--plot wrote an SVG" grep -q '<svg' "$tmp/run.svg"

expect_rc 0 "${tiny[@]}" --outer 5 --hidden 8
check "the summary names the rotation classes" grep -q 'rotation classes of 8x8' "$tmp/out"
expect_rc 0 "${tiny[@]}" --outer 3 --method rhg --inner 2 --json
check "second-order MAML runs" json_ok "$tmp/out" 'd["method"] == "rhg" and d["iters"] == 3'
expect_rc 0 meta fewshot --help
check "the help lists --ways" grep -q -- '--ways' "$tmp/out"

# Usage errors.
expect_rc 2 "${tiny[@]}" --ways 5
expect_rc 2 "${tiny[@]}" --train-classes 13
expect_rc 2 "${tiny[@]}" --plot "$tmp/x.svg"
expect_rc 2 meta fewshot --data "$tmp/nowhere" -q
cli_finish test_meta_fewshot
