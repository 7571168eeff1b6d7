#!/usr/bin/env bash
# test_meta.sh — `blo meta sinusoid` end to end with a tiny budget: exit codes (0 ok, 1
# diverged, 2 bad usage), the JSON summary's fields, --log rows and --plot files, every method
# of the MAML family (MAML, FOMAML, iMAML, Meta-SGD) running, a meta-learned start beating the
# pretrained baseline after fine-tuning, and a run stopped halfway and resumed from its
# checkpoint ending exactly where an uninterrupted run ends.
# Usage: test_meta.sh <blo binary> <source dir>.
set -uo pipefail
blo=${1:?usage: test_meta.sh <blo binary> <source dir>}
src=${2:?usage: test_meta.sh <blo binary> <source dir>}
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1

tiny=(meta sinusoid --width 8 --meta-batch 4 --shots 5 --eval-tasks 20 --eval-query 10
    --threads 1 -q)

expect_rc 0 "${tiny[@]}" --outer 20 --json --log "$tmp/run.csv" --plot "$tmp/run.svg"
cp "$tmp/out" "$tmp/run.json"
check "--json prints one object with every field" json_ok "$tmp/run.json" \
    'all(k in d for k in ("method","shots","meta_batch","inner_steps","iters","eval_tasks","mse","mse_ci95","baseline_mse","baseline_mse_ci95","upper","seconds"))'
check "MSE after 0, 1, 5, 10 test-time steps, finite and positive" json_ok "$tmp/run.json" \
    'all(sorted(d[k]) == ["0","1","10","5"] and all(v > 0 for v in d[k].values()) for k in ("mse","baseline_mse","mse_ci95"))'
check "20 iterations of rhg, one inner step of 0.01 (the protocol)" json_ok "$tmp/run.json" \
    'd["iters"] == 20 and d["method"] == "rhg" and d["inner_steps"] == 1 and d["inner_lr"] == 0.01'
check "--log has a header and 20 rows" test "$(wc -l <"$tmp/run.csv")" -eq 21
check "--log has the upper loss column" grep -q '^iter,upper,lower,hypergrad_norm' "$tmp/run.csv"
check "--plot wrote an SVG" grep -q '<svg' "$tmp/run.svg"

# The human summary goes to stdout.
expect_rc 0 "${tiny[@]}" --outer 2 --no-baseline
check "the summary has the meta-learned row" grep -q 'meta-learned init' "$tmp/out"
expect_rc 0 meta --help
expect_rc 0 meta sinusoid --help
check "the help lists --shots" grep -q -- '--shots' "$tmp/out"

# The family: FOMAML, iMAML (cg + proximal term), Meta-SGD, and the other reverse methods.
for args in "--method first_order" "--method cg --prox 20 --inner 5 --K 5" "--meta-sgd" \
    "--method rhg_ckpt --inner 3" "--method trhg --inner 3 --K 3"; do
    # shellcheck disable=SC2086
    expect_rc 0 "${tiny[@]}" --outer 3 --no-baseline --json $args
done
expect_rc 2 "${tiny[@]}" --outer 2 --method fhg
check "fhg refuses a start built from x" grep -q "from_x" "$tmp/err"

# Meta-learning works: after 400 iterations the learned start, fine-tuned, beats the
# pretrained baseline on the same held-out tasks (published: 0.35 vs 2.19 at 10 steps).
expect_rc 0 meta sinusoid --outer 400 --eval-tasks 100 --shots 10 --threads 1 -q --json
cp "$tmp/out" "$tmp/learn.json"
check "adaptation lowers the MSE and beats the baseline" json_ok "$tmp/learn.json" \
    'd["mse"]["10"] < d["mse"]["0"] and d["mse"]["10"] < d["baseline_mse"]["10"]'

# Resume: 6 iterations in one go == 3, stopped, then resumed to 6.
expect_rc 0 "${tiny[@]}" --outer 6 --no-baseline --json
cp "$tmp/out" "$tmp/full.json"
expect_rc 0 "${tiny[@]}" --outer 3 --no-baseline --json --checkpoint "$tmp/ck.bin"
expect_rc 0 "${tiny[@]}" --outer 6 --no-baseline --json --resume "$tmp/ck.bin"
cp "$tmp/out" "$tmp/resumed.json"
check "a resumed run ends where the uninterrupted one does" python3 -c '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
sys.exit(0 if a["mse"] == b["mse"] and a["upper"] == b["upper"] and b["iters"] == 6 else 1)' \
    "$tmp/full.json" "$tmp/resumed.json"

# Bad usage: exit 2 with a message naming the problem.
expect_rc 2 meta
check "a missing subcommand is named" grep -q "sinusoid" "$tmp/err"
expect_rc 2 meta cosine
check "an unknown subcommand is named" grep -q "cosine" "$tmp/err"
expect_rc 2 "${tiny[@]}" --shots 0
check "a bad value is named" grep -q -- "--shots" "$tmp/err"
expect_rc 2 "${tiny[@]}" --init learned
check "a start other than theta is refused" grep -q -- "--init" "$tmp/err"

# A diverging run: exit 1 and the iteration named.
expect_rc 1 "${tiny[@]}" --outer 3 --no-baseline --inner-lr 1e30
check "divergence names the iteration" grep -q "iteration" "$tmp/err"

cli_finish test_meta
