#!/usr/bin/env bash
# test_hyperclean.sh — `blo hyperclean` end to end on tests/data/tinymnist (120 8x8 images,
# 3 classes): exit codes (0 ok, 1 diverged, 2 bad option or malformed data), the JSON summary's
# fields and ranges, --log rows and --plot files, and a run killed halfway and resumed from its
# checkpoint ending exactly where an uninterrupted run ends.
# Usage: test_hyperclean.sh <blo binary> <source dir>.
set -uo pipefail
blo=${1:?usage: test_hyperclean.sh <blo binary> <source dir>}
src=${2:?usage: test_hyperclean.sh <blo binary> <source dir>}
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1

tiny=(--data "$src/tests/data/tinymnist" --n-train 60 --n-val 30 --n-test 30 --inner 8
    --inner-lr 0.5 --baseline-steps 60 --threads 1 -q)

# The authors' protocol (reverse mode, learned start) for the quality checks.
expect_rc 0 hyperclean "${tiny[@]}" --outer 12 --method rhg --init learned --json \
    --log "$tmp/run.csv" --plot "$tmp/run.svg"
cp "$tmp/out" "$tmp/run.json"
check "--json prints one object with every field" json_ok "$tmp/run.json" \
    'all(k in d for k in ("test_acc","test_acc_start","precision","recall","f1","baseline_noisy","baseline_val","baseline_oracle","kept_plus_val","kept","clean","iters","method"))'
check "accuracies and scores are probabilities" json_ok "$tmp/run.json" \
    'all(0 <= d[k] <= 1 for k in ("test_acc","precision","recall","f1","baseline_noisy","kept_plus_val"))'
check "12 iterations ran, 33 labels intact (60 / 2 corrupted, a third kept by chance)" \
    json_ok "$tmp/run.json" 'd["iters"] == 12 and d["clean"] == 33'
check "the cleaner beats keeping everything (F1 of all-kept = 2*0.55/1.55)" json_ok "$tmp/run.json" \
    'd["f1"] > 2 * 0.55 / 1.55'
check "--log has a header and 12 rows" test "$(wc -l <"$tmp/run.csv")" -eq 13
check "--log has the upper loss column" grep -q '^iter,upper,lower,hypergrad_norm' "$tmp/run.csv"
check "--plot wrote an SVG" grep -q '<svg' "$tmp/run.svg"

# The human summary goes to stdout, progress to stderr.
expect_rc 0 hyperclean "${tiny[@]}" --outer 2 --no-baselines
check "the summary names the test accuracy" grep -q 'test accuracy' "$tmp/out"

# Every registered method runs the task (the single-loop ones carry y themselves, and the
# implicit ones take no derivative through the start: warm start).
for m in $("$blo" methods --json | python3 -c 'import json,sys; print(" ".join(x["name"] for x in json.load(sys.stdin)))'); do
    init=learned
    case "$m" in bome | soba | amm | cg | neumann | fixed_point | darts) init=warm ;; esac
    expect_rc 0 hyperclean "${tiny[@]}" --outer 2 --no-baselines --method "$m" --init "$init" --json
done
expect_rc 2 hyperclean "${tiny[@]}" --outer 2 --method soba --init learned
check "a method that cannot take the setting says why" grep -q "learned start" "$tmp/err"

# The hypergradient check: every iteration, a line with the cosine and cg's linear solve.
expect_rc 0 hyperclean "${tiny[@]}" --outer 2 --no-baselines --method cg --init warm --check-hypergrad 1
check "--check-hypergrad prints the check and the linear solve" \
    grep -q "iteration 1: hypergradient check.*cosine.*linear solve: residual" "$tmp/err"

# Resume: 6 iterations in one go == 3, killed (stopped), then resumed to 6.
expect_rc 0 hyperclean "${tiny[@]}" --outer 6 --no-baselines --json
cp "$tmp/out" "$tmp/full.json"
expect_rc 0 hyperclean "${tiny[@]}" --outer 3 --no-baselines --json --checkpoint "$tmp/ck.bin"
expect_rc 0 hyperclean "${tiny[@]}" --outer 6 --no-baselines --json --resume "$tmp/ck.bin"
cp "$tmp/out" "$tmp/resumed.json"
check "a resumed run ends where the uninterrupted one does" python3 -c '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
keys = ("test_acc", "precision", "recall", "upper", "lower", "iters")
sys.exit(0 if all(a[k] == b[k] for k in keys) else 1)' "$tmp/full.json" "$tmp/resumed.json"

# Bad input: exit 2 with a message naming the problem.
expect_rc 2 hyperclean "${tiny[@]}" --outer nope
check "a bad value is named" grep -q "nope" "$tmp/err"
expect_rc 2 hyperclean "${tiny[@]}" --method nosuch
check "an unknown method lists the known ones" grep -q "rhg" "$tmp/err"
mkdir -p "$tmp/bad"
printf '\0\0\10\3\0\0\0\170\0\0\0\10\0\0\0\10' >"$tmp/bad/train-images-idx3-ubyte"
cp "$src/tests/data/tinymnist/train-labels-idx1-ubyte" "$tmp/bad/"
expect_rc 2 hyperclean "${tiny[@]}" --data "$tmp/bad"
check "a truncated images file is named with its offset" grep -q "train-images-idx3-ubyte: offset 16" "$tmp/err"
expect_rc 2 hyperclean "${tiny[@]}" --data "$tmp/nonexistent"
check "a missing folder is named" grep -q "nonexistent" "$tmp/err"
expect_rc 2 hyperclean "${tiny[@]}" --n-train 100 --n-val 30 --n-test 30
check "asking for more examples than exist says so" grep -q "has 120" "$tmp/err"

# A diverging run: exit 1 and the iteration named.
expect_rc 1 hyperclean "${tiny[@]}" --outer 3 --no-baselines --inner-lr 1e30
check "divergence names the iteration" grep -q "iteration" "$tmp/err"

cli_finish test_hyperclean
