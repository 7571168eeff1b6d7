#!/usr/bin/env bash
# test_causal.sh — `blo causal` end to end with tiny networks: the shipped IHDP replications,
# a generated CSV with named columns (scores present with --mu0/--mu1, absent without), every
# --tune, --rep, --inner-state carry with --keep-best, the JSON summary's fields and their
# consistency, and malformed input named by file and line. Usage: test_causal.sh <blo binary> <source dir>.
set -uo pipefail
blo=${1:?usage: test_causal.sh <blo binary> <source dir>}
src=${2:?usage: test_causal.sh <blo binary> <source dir>}
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1

python3 - "$tmp" <<'PY'
import random, sys
r = random.Random(5)
with open(sys.argv[1] + "/obs.csv", "w") as f:
    f.write("age,dose,treat,y,m0,m1\n")
    for i in range(120):
        a, b = r.gauss(0, 1), r.gauss(0, 1)
        t = 1 if r.random() < 0.4 else 0
        m0, m1 = a, a + 2 + b
        f.write("%.4f,%.4f,%d,%.4f,%.4f,%.4f\n" % (a, b, t, (m1 if t else m0) + r.gauss(0, 0.1), m0, m1))
PY
fast=(--threads 1 -q --steps 40 --rep-layers 1 --rep-width 8 --head-layers 1 --head-width 8 --outer 2 --inner 2)

expect_rc 0 causal --reps 2 "${fast[@]}" --json
check "IHDP: 2 replications, finite scores" json_ok "$tmp/out" \
    'd["reps"] == 2 and len(d["per_rep"]) == 2 and 0 < d["pehe_out"] < 20 and abs(d["pehe_out"] - (d["per_rep"][0][1] + d["per_rep"][1][1]) / 2) < 1e-9'
cp "$tmp/out" "$tmp/two.json"
expect_rc 0 causal --rep 2 "${fast[@]}" --json
check "--rep 2: replication 2 alone, as --reps 2 scored it" python3 -c '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
sys.exit(not (a["reps"] == 1 and a["per_rep"][0] == b["per_rep"][1]))' "$tmp/out" "$tmp/two.json"
expect_rc 0 causal --reps 1 "${fast[@]}" --tune grid-alpha --grid 0.1,1 --inner-state carry --keep-best --json
check "--inner-state carry --keep-best" json_ok "$tmp/out" 'd["reps"] == 1 and 0 < d["pehe_out"] < 20'
for tune in "hyper --model cfr" "alpha --model cfr --ipm wass" "weights" "weights --criterion factual" "grid --grid 0.1,1" "grid-alpha --grid 0.1,1 --ipm wass" "weights --inner-batch 50"; do
    expect_rc 0 causal --reps 1 "${fast[@]}" --tune $tune --json
    check "--tune $tune" json_ok "$tmp/out" 'd["reps"] == 1 and d["pehe_in"] > 0'
done
for ipm in wass rbf; do
    expect_rc 0 causal --reps 1 "${fast[@]}" --model cfr --ipm $ipm --tune hyper --json
    check "--ipm $ipm" json_ok "$tmp/out" 'd["reps"] == 1 and d["ipm"] == "'$ipm'" and 0 < d["pehe_out"] < 20'
done
expect_rc 0 causal --reps 2 "${fast[@]}" --effects "$tmp/eff.csv" --json
check "--effects: every unit of each replication, split 471/202/74, the scores recomputable" python3 - "$tmp/eff.csv" "$tmp/out" <<'PY'
import csv, json, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
d = json.load(open(sys.argv[2]))
assert len(rows) == 2 * 747, len(rows)
for k in (1, 2):
    r = [x for x in rows if x["rep"] == str(k)]
    parts = [x["split"] for x in r]
    assert (parts.count("train"), parts.count("val"), parts.count("test")) == (471, 202, 74)
    te = [x for x in r if x["split"] == "test"]
    pehe = math.sqrt(sum((float(x["tau_hat"]) - float(x["mu1"]) + float(x["mu0"])) ** 2 for x in te) / len(te))
    assert abs(pehe - d["per_rep"][k - 1][1]) < 1e-5, (pehe, d["per_rep"][k - 1])
PY
expect_rc 0 causal --data "$tmp/obs.csv" --treatment treat --outcome y --mu0 m0 --mu1 m1 "${fast[@]}" --json
check "CSV: scored against mu0/mu1" json_ok "$tmp/out" 'd["reps"] == 1 and d["pehe_out"] > 0'
expect_rc 0 causal --data "$tmp/obs.csv" --treatment treat --outcome y --covariates 'age|dose' "${fast[@]}" --json
check "CSV without the truth: no scores" json_ok "$tmp/out" 'd["pehe_out"] is None'

# Bad input: a positioned message, exit 2, before any training.
expect_rc 2 causal --data "$src/tests/data/bad/causal-treatment.csv" --treatment treat --outcome y
check "a treatment that is not 0/1 is named by line" grep -q 'causal-treatment.csv: line 3, field 1: the treatment is 2' "$tmp/err"
expect_rc 2 causal --data "$tmp/obs.csv" --treatment treat --outcome nosuch
check "a missing column is named" grep -q "no column named 'nosuch'" "$tmp/err"
expect_rc 2 causal --data "$tmp/obs.csv" --treatment treat
check "--outcome is required for a CSV" grep -q -- '--outcome' "$tmp/err"
expect_rc 2 causal --tune hyper
check "--tune hyper needs cfr" grep -q 'model cfr' "$tmp/err"
expect_rc 2 causal --effects /nonexistent/dir/e.csv --reps 1 "${fast[@]}"
check "an unwritable --effects is named" grep -q 'cannot write --effects /nonexistent/dir/e.csv' "$tmp/err"
expect_rc 2 causal --tune grid --grid 1,x
check "a bad --grid is named" grep -q -- "--grid" "$tmp/err"
expect_rc 2 causal --tune grid-alpha --grid 0,1
check "grid-alpha refuses alpha = 0 in --grid" grep -q -- "--grid.*α > 0" "$tmp/err"
expect_rc 2 causal --tune alpha --model cfr --init fixed --inner-state carry
check "--inner-state carry without the warm start is named" grep -q 'inner_state carry.*init = warm, got fixed' "$tmp/err"
expect_rc 2 causal --reps 1 "${fast[@]}" --tune grid --grid 0.1,1 --keep-best
check "keep_best without a bilevel phase is named" grep -q 'keep_best keeps the best iterate of a bilevel phase: it needs tune' "$tmp/err"
expect_rc 2 causal --reps 1 "${fast[@]}" --tune alpha --model cfr --checkpoint "$tmp/ck"
check "--checkpoint is refused by name" grep -q -- '--checkpoint: this task keeps no checkpoints' "$tmp/err"
expect_rc 2 causal --reps 1 "${fast[@]}" --tune alpha --model cfr --resume "$tmp/ck"
check "--resume is refused by name" grep -q -- '--resume: this task keeps no checkpoints' "$tmp/err"
cli_finish test_causal
