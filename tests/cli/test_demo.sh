#!/usr/bin/env bash
# test_demo.sh — the command line's conventions and `blo demo`: exit codes (0 ok, 2 bad usage),
# --help / --version, --json output that parses as exactly one JSON object, a loss that
# decreases, an HVP check that passes, and identical results for the same seed.
# Usage: test_demo.sh <blo binary> <source dir>. Prints "N passed, M failed".
set -uo pipefail

blo=${1:?usage: test_demo.sh <blo binary> <source dir>}
. "$(dirname "$0")/lib.sh"

# ---- global options and dispatch ----------------------------------------------------------
expect_rc 0 --version
check "--version prints 'blo <version>'" grep -Eq '^blo [0-9]+\.[0-9]+\.[0-9]+$' "$tmp/out"
expect_rc 0 --help
check "--help lists the demo command" grep -q '^  demo ' "$tmp/out"
check "--help states the exit codes" grep -q 'exit codes' "$tmp/out"
expect_rc 2
expect_rc 2 no-such-command
check "an unknown command is named in the message" grep -q "no-such-command" "$tmp/err"
expect_rc 0 demo --help
check "demo --help lists --seed with its default" grep -Eq -- '--seed S .*default 1' "$tmp/out"

# ---- bad usage: exit 2 and a message naming the option -------------------------------------
expect_rc 2 demo --seed x
check "bad --seed names the option" grep -q "bad value 'x' for --seed: expected an integer" \
    "$tmp/err"
expect_rc 2 demo --steps 0
expect_rc 2 demo --steps
expect_rc 2 demo --dtype f16
check "bad --dtype lists the choices" grep -q "f32|f64" "$tmp/err"
expect_rc 2 demo --lr abc
expect_rc 2 demo --no-such-option
expect_rc 2 demo stray-argument
expect_rc 2 demo --json=yes

# ---- the demo itself --------------------------------------------------------------------------
expect_rc 0 demo -q
check "the human summary reports the HVP check" grep -q "hvp .*: ok" "$tmp/out"

for dtype in f64 f32; do
    expect_rc 0 demo --json --dtype "$dtype" --threads 1 --seed 3
    cp "$tmp/out" "$tmp/$dtype.json"
    check "$dtype: --json parses" json_ok "$tmp/$dtype.json" 'isinstance(d, dict)'
    check "$dtype: final loss < initial loss" json_ok "$tmp/$dtype.json" \
        'd["final_loss"] < d["initial_loss"]'
    check "$dtype: accuracy >= 0.9" json_ok "$tmp/$dtype.json" 'd["accuracy"] >= 0.9'
    check "$dtype: the HVP residual is within its tolerance" json_ok "$tmp/$dtype.json" \
        'd["hvp_ok"] is True and d["hvp_residual"] <= d["hvp_tolerance"]'
    check "$dtype: the dtype is reported" json_ok "$tmp/$dtype.json" "d['dtype'] == '$dtype'"
done
check "f64: the HVP residual is tiny" json_ok "$tmp/f64.json" 'd["hvp_residual"] < 1e-7'
# Without -q progress goes to stderr; stdout must still hold only the JSON object.
check "progress goes to stderr" grep -q "loss" "$tmp/err"

# Same seed and thread count: the same numbers.
expect_rc 0 demo --json -q --dtype f64 --threads 1 --seed 3
check "same seed, same result" json_ok "$tmp/out" \
    "all(d[k] == v for k, v in json.load(open('$tmp/f64.json')).items() if k != 'seconds')"
# Too large a step diverges: exit 1, not a silent success.
expect_rc 1 demo -q --lr 60 --steps 200

cli_finish test_demo
