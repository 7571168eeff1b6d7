#!/usr/bin/env bash
# test_regsearch.sh — `blo regsearch` end to end on small generated files: a two-class LIBSVM
# file (targets -1 / +1, sparse lines) and a three-class CSV file (the label in the first
# column), and the built-in path on tests/data/tinymnist. Checks exit codes (0 ok, 1 diverged,
# 2 malformed file or bad option), the JSON summary's fields and their consistency, --log
# rows, --plot SVG, every registered method, a resumed run ending where an uninterrupted one
# does, and messages that name the file and line of a malformed file.
# Usage: test_regsearch.sh <blo binary> <source dir>.
set -uo pipefail
blo=${1:?usage: test_regsearch.sh <blo binary> <source dir>}
src=${2:?usage: test_regsearch.sh <blo binary> <source dir>}
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1

# Two classes, 6 features of which 3 carry the label; zeros left out as LIBSVM does.
python3 - "$tmp" <<'EOF'
import math, random, sys
d = sys.argv[1]
r = random.Random(4)
with open(d + "/two.svm", "w") as f:
    for i in range(160):
        x = [round(r.gauss(0, 1), 3) if r.random() < 0.8 else 0.0 for _ in range(6)]
        z = 1.5 * x[0] - x[1] + 0.8 * x[2]
        y = 1 if r.random() < 1 / (1 + math.exp(-z)) else -1
        f.write("%+d %s\n" % (y, " ".join("%d:%g" % (j + 1, v) for j, v in enumerate(x) if v)))
with open(d + "/three.csv", "w") as f:
    f.write("cls,a,b,c,d\n")
    for i in range(150):
        x = [r.gauss(0, 1) for _ in range(4)]
        z = [x[0] + 0.5 * x[3], x[1] - x[0], -x[1] + 0.3 * x[2]]
        z = [v + r.gauss(0, 0.7) for v in z]
        f.write("%d,%s\n" % (z.index(max(z)), ",".join("%.4f" % v for v in x)))
EOF
fast=(--threads 1 -q --outer 8 --grid 5)

# json_all <file> <description> <python expression over d> [<description> <expression> ...]:
# every expression holds for the JSON object in the file; one python process for them all
# (starting python costs more than a run of blo here).
json_all() {
    local file=$1
    shift
    local out
    out=$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
for what, expr in zip(sys.argv[2::2], sys.argv[3::2]):
    try:
        ok = eval(expr)
    except Exception as e:
        ok = False
    print("ok" if ok else "FAIL: %s (%s does not hold for %s)" % (what, expr, json.dumps(d)))' "$file" "$@")
    [ -n "$out" ] || out="FAIL: $file is not one JSON object"
    while IFS= read -r line; do
        if [ "$line" = ok ]; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            echo "$line" >&2
        fi
    done <<<"$out"
}

# ---- LIBSVM, two classes: JSON, log, plot --------------------------------------------------
expect_rc 0 regsearch --data "$tmp/two.svm" "${fast[@]}" --json --log "$tmp/run.csv" \
    --plot "$tmp/run.svg"
cp "$tmp/out" "$tmp/two.json"
json_all "$tmp/two.json" \
    "--json prints one object with the side-by-side fields" \
    'all(k in d[s] for s in ("grid", "bilevel") for k in ("val_loss", "val_acc", "test_loss", "test_acc")) and all(k in d for k in ("method", "groups", "n_groups", "lambda", "iters", "n_train", "n_val", "n_test"))' \
    "160 examples split 50 / 25 / 25 %, 6 features, 2 classes (from -1 / +1)" \
    '(d["n_train"], d["n_val"], d["n_test"], d["features"], d["classes"]) == (80, 40, 40, 6, 2)' \
    "the default is cg with one strength per feature" \
    'd["method"] == "cg" and d["groups"] == "feature" and d["n_groups"] == 6 and len(d["lambda"]) == 6' \
    "the grid has 5 log-spaced values over [1e-6, 1e2]" \
    'len(d["grid"]["lambdas"]) == 5 and abs(d["grid"]["lambdas"][0] - 1e-6) < 1e-18 and abs(d["grid"]["lambdas"][2] - 1e-2) < 1e-15 and abs(d["grid"]["lambdas"][4] - 100) < 1e-10' \
    "the grid picks the value with the lowest validation loss" \
    'd["grid"]["lambda"] == d["grid"]["lambdas"][d["grid"]["val_losses"].index(min(d["grid"]["val_losses"]))] and abs(d["grid"]["val_loss"] - min(d["grid"]["val_losses"])) < 1e-12' \
    "the learned strengths stay in the box and their summary matches them" \
    'all(1e-6 * (1 - 1e-12) <= v <= 100 * (1 + 1e-12) for v in d["lambda"]) and abs(d["bilevel"]["lambda_min"] - min(d["lambda"])) <= 1e-12 * min(d["lambda"]) and abs(d["bilevel"]["lambda_max"] - max(d["lambda"])) <= 1e-12 * max(d["lambda"])' \
    "the search does not end above the grid's validation loss it started from" \
    'd["bilevel"]["val_loss"] <= d["grid"]["val_loss"] + 1e-9' \
    "accuracies are probabilities" \
    'all(0 <= d[s][k] <= 1 for s in ("grid", "bilevel") for k in ("val_acc", "test_acc"))' \
    "8 iterations ran" 'd["iters"] == 8 and d["fits_unconverged"] == 0'
check "--log has a header and 8 rows" test "$(wc -l <"$tmp/run.csv")" -eq 9
check "--log has the upper loss and the strengths' columns" \
    grep -q '^iter,upper,lower,hypergrad_norm,seconds,peak_bytes,test_acc,lambda_min,lambda_gmean,lambda_max$' "$tmp/run.csv"
check "--plot wrote an SVG" grep -q '<svg' "$tmp/run.svg"

# The human summary: both rows, side by side.
expect_rc 0 regsearch --data "$tmp/two.svm" "${fast[@]}"
check "the summary has the grid's row" grep -q 'grid: single (best of 5)' "$tmp/out"
check "the summary has the bilevel row" grep -q 'bilevel: feature (6)' "$tmp/out"

# ---- CSV, three classes, format from the extension, a label column, blocks -----------------
expect_rc 0 regsearch --data "$tmp/three.csv" --label-column cls --groups blocks:2 "${fast[@]}" --json
json_all "$tmp/out" "CSV: 3 classes, 4 features in 2 blocks" \
    'd["classes"] == 3 and d["features"] == 4 and d["n_groups"] == 2 and d["groups"] == "blocks:2"'
expect_rc 0 regsearch --data "$tmp/three.csv" --label-column cls --groups single --lambda0 0.1 \
    "${fast[@]}" --grid 0 --json
json_all "$tmp/out" "no grid: the grid's fields are null, the search still runs" \
    'd["grid"]["val_loss"] is None and d["grid"]["n"] == 0 and d["n_groups"] == 1 and d["bilevel"]["val_loss"] > 0'

# ---- the built-in problem's path, on the tiny MNIST-layout set ------------------------------
expect_rc 0 regsearch --mnist "$src/tests/data/tinymnist" --classes 0,2 --examples 0 "${fast[@]}" --json
json_all "$tmp/out" "built-in path: two classes of 8x8 images" \
    'd["features"] == 64 and d["classes"] == 2 and d["n_train"] + d["n_val"] + d["n_test"] == 80'

# ---- every registered method runs the task --------------------------------------------------
# (iaptt's start is a hyper-variable: it runs with a learned start and the solver's own steps)
for m in $("$blo" methods --json | python3 -c 'import json,sys; print(" ".join(x["name"] for x in json.load(sys.stdin)))'); do
    start=()
    case "$m" in iaptt) start=(--init learned --lower-solve steps) ;; esac
    expect_rc 0 regsearch --data "$tmp/two.svm" --threads 1 -q --outer 2 --grid 3 --method "$m" \
        "${start[@]}" --json
done
expect_rc 0 regsearch --data "$tmp/two.svm" --threads 1 -q --outer 2 --grid 3 --method rhg \
    --lower-solve steps --init fixed --json

# ---- resume: 6 iterations in one go == 3, stopped, then resumed to 6 ------------------------
expect_rc 0 regsearch --data "$tmp/two.svm" "${fast[@]}" --outer 6 --json
cp "$tmp/out" "$tmp/full.json"
expect_rc 0 regsearch --data "$tmp/two.svm" "${fast[@]}" --outer 3 --json --checkpoint "$tmp/ck.bin"
expect_rc 0 regsearch --data "$tmp/two.svm" "${fast[@]}" --outer 6 --json --resume "$tmp/ck.bin"
cp "$tmp/out" "$tmp/resumed.json"
check "a resumed run ends where the uninterrupted one does" python3 -c '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
same = a["lambda"] == b["lambda"] and a["bilevel"] == b["bilevel"] and a["iters"] == b["iters"] == 6
sys.exit(0 if same else 1)' "$tmp/full.json" "$tmp/resumed.json"

# ---- malformed files: exit 2, the loader's message names the file and the line ---------------
printf '+1 1:0.5 2:1\n-1 1:0.1\n+1 3:1 2:4\n' >"$tmp/bad.svm"
expect_rc 2 regsearch --data "$tmp/bad.svm" "${fast[@]}"
check "a malformed LIBSVM file is named with its line" grep -q "bad.svm: line 3" "$tmp/err"
printf 'a,b,label\n1,2,0\n3,4,1\n5,x,1\n' >"$tmp/bad.csv"
expect_rc 2 regsearch --data "$tmp/bad.csv" "${fast[@]}"
check "a malformed CSV file is named with its line" grep -q "bad.csv: line 4" "$tmp/err"
expect_rc 2 regsearch --data "$tmp/three.csv" --format libsvm "${fast[@]}"
check "a CSV read as LIBSVM fails on its first line" grep -q "three.csv: line 1" "$tmp/err"
expect_rc 2 regsearch --data "$tmp/three.csv" --label-column nosuch "${fast[@]}"
check "an unknown label column is named" grep -q "nosuch" "$tmp/err"
expect_rc 2 regsearch --data "$tmp/nonexistent.svm" "${fast[@]}"
check "a missing file is named" grep -q "nonexistent.svm" "$tmp/err"
printf '1 1:0.5\n1 2:1\n' >"$tmp/one.svm"
expect_rc 2 regsearch --data "$tmp/one.svm" "${fast[@]}"
check "a file with one class says so" grep -q "two classes" "$tmp/err"

# ---- bad options: exit 2, the option named ----------------------------------------------------
expect_rc 2 regsearch --data "$tmp/two.svm" --groups blocks:0
check "bad --groups is named" grep -q "for --groups" "$tmp/err"
expect_rc 2 regsearch --data "$tmp/two.svm" --groups pixels
expect_rc 2 regsearch --data "$tmp/two.svm" --groups blocks:7 "${fast[@]}"
check "more blocks than features is refused" grep -q "7 blocks for 6 features" "$tmp/err"
expect_rc 2 regsearch --data "$tmp/two.svm" --train-frac 0.8 --val-frac 0.3 "${fast[@]}"
check "fractions summing past 1 are refused" grep -q "fractions" "$tmp/err"
expect_rc 2 regsearch --data "$tmp/two.svm" --method nosuch
check "an unknown method lists the known ones" grep -q "cg" "$tmp/err"
expect_rc 2 regsearch --classes 3
check "bad --classes is named" grep -q "for --classes" "$tmp/err"
expect_rc 2 regsearch --data "$tmp/two.svm" --plot "$tmp/p.svg"
check "--plot without --log says so" grep -q "give --log" "$tmp/err"
expect_rc 2 regsearch --data "$tmp/two.svm" --init fixed "${fast[@]}"
check "--lower-solve lbfgs needs a warm start" grep -q "warm" "$tmp/err"
expect_rc 2 regsearch --data "$tmp/two.svm" --format arff
expect_rc 2 regsearch --data "$tmp/two.svm" "${fast[@]}" --grid 0
check "--grid 0 with --lambda0 0 asks for a start" grep -q "lambda0" "$tmp/err"

# ---- help: the maths and the defaults -----------------------------------------------------------
expect_rc 0 regsearch --help
check "--help states the lower objective" grep -q "f(x, y) = mean CE(train)" "$tmp/out"
check "--help gives the default method" grep -Eq -- '--method NAME .*default cg' "$tmp/out"
check "--help gives the default groups" grep -Eq -- '--groups G .*default feature' "$tmp/out"

# ---- a diverging run: exit 1 and the iteration named -------------------------------------------
expect_rc 1 regsearch --data "$tmp/two.svm" "${fast[@]}" --inner-lr 1e30
check "divergence names the iteration" grep -q "iteration" "$tmp/err"

cli_finish test_regsearch
