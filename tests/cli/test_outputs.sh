#!/usr/bin/env bash
# test_outputs.sh — every task command checks its output files before any work: a --log with
# an extension it cannot write, a --log or --plot into a missing folder, a --plot that is not
# .svg or .png, an unwritable --checkpoint (and nas search's --genotype and --alpha-log) are
# exit 2 with a message naming the option. Each run below asks for a budget that would take
# minutes (100000 outer iterations on real data), so a check made after the work would show
# as a hang, not as a pass. Also: the library has no data default, the CLI resolves one
# ($BLO_DATA), and a run whose data folder is missing names it.
# Usage: test_outputs.sh <blo binary> <source dir>.
set -uo pipefail
blo=${1:?usage: test_outputs.sh <blo binary> <source dir>}
src=${2:?usage: test_outputs.sh <blo binary> <source dir>}
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1

# A check made after the work would run for minutes: such a run is stopped after 60 s and
# counts as a failure (exit 124, not 2).
printf '#!/bin/sh\nexec timeout 60 "%s" "$@"\n' "$blo" >"$tmp/blo"
chmod +x "$tmp/blo"
blo=$tmp/blo

data=$tmp/tiny
mkdir -p "$data" "$tmp/ro" "$tmp/ro.csv"
for f in images-idx3-ubyte.gz labels-idx1-ubyte; do
    cp "$src/tests/data/tinymnist/train-$f" "$data/train-$f"
    cp "$src/tests/data/tinymnist/train-$f" "$data/t10k-$f"
done
chmod a-w "$tmp/ro" # (root writes there anyway: those cases run only for other users)
printf '1 1:0.5\n0 1:-0.5\n1 1:0.7\n0 1:-0.2\n1 1:0.1\n0 1:-0.9\n1 1:0.3\n0 1:-0.4\n' >"$tmp/d.svm"

# The task commands, each with a long budget on valid data.
cmds=(
    "hyperclean --data $data --n-train 60 --n-val 30 --n-test 30 --outer 100000 -q"
    "meta sinusoid --outer 100000 -q"
    "meta fewshot --data $data --train-classes 8 --ways 3 --shots 2 --queries 5 --outer 100000 -q"
    "regsearch --data $tmp/d.svm --outer 100000 -q"
    "nas search --data $data --size 4 --n-search 40 --n-test 20 --outer 100000 -q"
)
train="nas train --data $data --size 4 --random --n-train 60 --n-test 30 --epochs 100000 -q"

# expect_refused <option> <what the message says> <command words...>
expect_refused() {
    local opt=$1 why=$2
    shift 2
    expect_rc 2 "$@"
    check "'$*' names $opt ($why)" grep -q -- "$opt .*$why" "$tmp/err"
}

for c in "${cmds[@]}" "$train"; do
    read -r -a a <<<"$c"
    expect_refused --log "must end in .csv, .jsonl, .json" "${a[@]}" --log "$tmp/x.txt"
    expect_refused --log "no folder" "${a[@]}" --log "$tmp/missing/x.csv"
    expect_refused --log "a folder, not a file" "${a[@]}" --log "$tmp/ro.csv"
    [ "$(id -u)" -ne 0 ] && expect_refused --log "not writable" "${a[@]}" --log "$tmp/ro/x.csv"
done
for c in "${cmds[@]}"; do
    read -r -a a <<<"$c"
    plot_src=(--log "$tmp/x.csv")
    [[ $c == nas* ]] && plot_src=(--alpha-log "$tmp/a.csv")
    expect_refused --plot "no folder" "${a[@]}" "${plot_src[@]}" --plot "$tmp/missing/x.svg"
    expect_refused --plot "must end in .svg, .png" "${a[@]}" "${plot_src[@]}" --plot "$tmp/x.pdf"
    expect_refused --checkpoint "no folder" "${a[@]}" --checkpoint "$tmp/missing/ck.bin"
    expect_refused --checkpoint "a folder, not a file" "${a[@]}" --checkpoint "$tmp/ro"
    [ "$(id -u)" -ne 0 ] && expect_refused --checkpoint "not writable" "${a[@]}" --checkpoint "$tmp/ro/ck.bin"
done
read -r -a a <<<"$train"
expect_refused --plot "no folder" "${a[@]}" --log "$tmp/x.csv" --plot "$tmp/missing/x.svg"
read -r -a a <<<"${cmds[4]}"
expect_refused --genotype "no folder" "${a[@]}" --genotype "$tmp/missing/g.txt"
expect_refused --alpha-log "must end in .csv, .jsonl, .json" "${a[@]}" --alpha-log "$tmp/a.txt"
check "nothing was written" test ! -e "$tmp/x.csv" -a ! -e "$tmp/a.csv"

# Data: $BLO_DATA is the CLI's default folder; a missing one is named.
BLO_DATA=$tmp/nowhere expect_rc 2 hyperclean --outer 1 -q
check "a missing default data folder is named" grep -q "$tmp/nowhere" "$tmp/err"
BLO_DATA=$data expect_rc 0 hyperclean --n-train 60 --n-val 30 --n-test 30 --outer 2 --inner 2 \
    --no-baselines -q --json
check "\$BLO_DATA is the default --data" json_ok "$tmp/out" 'd["iters"] == 2'
expect_rc 0 hyperclean --help
check "--help names \$BLO_DATA" grep -q 'BLO_DATA' "$tmp/out"

cli_finish test_outputs
