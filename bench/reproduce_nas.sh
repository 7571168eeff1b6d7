#!/usr/bin/env bash
# reproduce_nas.sh — the DARTS search table of RESULTS.md ("Architecture search"): searches
# with first_order, darts, rhg and cg on Fashion-MNIST at 14x14 (search seeds 1, 2, 3), then
# the found cells, 8 random cells and the hand-designed all-sep_conv_3x3 cell trained from
# scratch the same way, each with 4 training seeds. About two hours on 2 cores (--jobs 2);
# with --long, the stages search, found and table take about 1.5 hours. The test suite does
# not run it.
#
#   bench/reproduce_nas.sh [--out DIR] [--build DIR] [--jobs N] [--seeds "S ..."] [--long]
#                          [--baselines BDIR] [STAGE ...]
#
#   STAGE     search (the 4 methods' searches and the baselines' trainings: the random and the
#             hand-designed cells), found (the searched cells' trainings), averaged (per method
#             the cell of its search seeds' mean op weights, `blo nas derive`, and its
#             trainings), perturb (first_order and darts searched again with the genotype
#             read off by perturbation, --select perturb, and its trainings), table (the
#             summary); default: all five in that order. Each run writes a JSON file into DIR and is
#             skipped when its file is already there, so an interrupted run continues.
#   --out     where the logs, genotypes and JSON go (default nas_results/)
#   --build   the CMake build folder holding blo (default build/)
#   --jobs    runs at a time, one thread each (default 1)
#   --seeds   the search seeds (default "1 2 3")
#   --train-seeds  the training seeds of every architecture (default "1 2 3 4")
#   --long    the longer searches on more data (10 000 search examples, 200 warm-up steps,
#             600 iterations at Adam 0.01 instead of 2000, 100, 200 at 0.03); the trainings
#             are the same
#   --baselines BDIR  the random and hand-designed cells' genotypes and trainings are those
#             of an earlier run in BDIR (same trainings), not run again
#   DATA      the Fashion-MNIST folder (default /usr/share/datasets/fashion-mnist)
#
# The protocol (RESULTS.md says which parts were fixed when): search seeds 1, 2, 3 for every
# method, the same settings for each; the supernet and the trained networks have 3 cells and
# 3 nodes per cell; every architecture is trained with training seeds 1 to 4, seed s fixing
# the same 4000 training examples for all, and tested on the whole test split (10 000
# images); an architecture's accuracy is the mean over its 4 trainings.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
out=nas_results
build="$root/build"
jobs=1
stages=()
seeds="1 2 3"
train_seeds="1 2 3 4"
job=()
long=0
baselines=
while [ $# -gt 0 ]; do
    case "$1" in
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    --build) build="${2:?--build needs a folder}"; shift 2 ;;
    --jobs) jobs="${2:?--jobs needs a count}"; shift 2 ;;
    --seeds) seeds="${2:?--seeds needs a list}"; shift 2 ;;
    --train-seeds) train_seeds="${2:?--train-seeds needs a list}"; shift 2 ;;
    --long) long=1; shift ;;
    --baselines) baselines="${2:?--baselines needs a folder}"; shift 2 ;;
    --job) shift; job=("$@"); break ;; # internal: one run of the list, "kind name seed arg"
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    search | found | averaged | perturb | table) stages+=("$1"); shift ;;
    *) echo "reproduce_nas.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
[ ${#stages[@]} -gt 0 ] || stages=(search found averaged perturb table)
blo="$build/blo"
[ -x "$blo" ] || { echo "reproduce_nas.sh: $blo not found; build first" >&2; exit 2; }
data="${DATA:-/usr/share/datasets/fashion-mnist}"
mkdir -p "$out"
export OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1

# The search space and budget shared by every method.
space=(--data "$data" --size 14 --cells 3 --nodes 3 --threads 1 -q)
search=("${space[@]}" --channels 4 --n-test 1000 --batch 32)
if [ "$long" = 1 ]; then
    search+=(--n-search 10000 --warmup 200 --outer 600 --outer-lr 0.01 --eval-every 200)
else
    search+=(--n-search 2000 --warmup 100 --outer 200 --outer-lr 0.03 --eval-every 50)
fi
train=("${space[@]}" --channels 8 --n-train 4000 --n-test 10000 --epochs 10 --batch 32)
# method name, then its settings.
methods=(
    "first_order|--method first_order --inner 1"
    "darts|--method darts --inner 1"
    "rhg|--method rhg --inner 2"
    "cg|--method cg --inner 2 --K 5 --damping 20"
)
# the same searches with the genotype read off by perturbation (stage perturb)
perturbed=(
    "first_order_perturb|--method first_order --inner 1 --select perturb"
    "darts_perturb|--method darts --inner 1 --select perturb"
)

run_search() { # name, search seed, method
    local name=$1 seed=$2 m
    [ -s "$out/search_$name.json" ] && return 0
    for m in "${methods[@]}" "${perturbed[@]}"; do [ "${m%%|*}" = "$3" ] && break; done
    echo "search $name" >&2
    # shellcheck disable=SC2086  # the method's settings are words
    # peak resident memory of the whole process, from GNU time
    /usr/bin/time -f "%M" -o "$out/search_$name.rss" \
        "$blo" nas search "${search[@]}" ${m#*|} --seed "$seed" --json \
        --genotype "$out/$name.txt" --log "$out/search_$name.csv" \
        --alpha-log "$out/alpha_$name.csv" --plot "$out/alpha_$name.svg" \
        >"$out/search_$name.json.tmp"
    mv "$out/search_$name.json.tmp" "$out/search_$name.json"
}

run_train() { # name, training seed, genotype file
    local f="$out/train_$1_s$2.json"
    [ -s "$f" ] && return 0
    echo "train $1 seed $2" >&2
    "$blo" nas train "${train[@]}" --genotype "$3" --seed "$2" --json >"$f.tmp"
    mv "$f.tmp" "$f"
}

if [ ${#job[@]} -gt 0 ]; then
    case "${job[0]}" in
    search) run_search "${job[1]}" "${job[2]}" "${job[3]}" ;;
    train) run_train "${job[1]}" "${job[2]}" "${job[3]}" ;;
    esac
    exit
fi

# Runs the jobs listed on stdin (4 NUL-terminated fields each), --jobs at a time.
run_list() {
    local flags=()
    [ "$long" = 0 ] || flags+=(--long)
    xargs -0 -n 4 -P "$jobs" "$0" --out "$out" --build "$build" --seeds "$seeds" \
        --train-seeds "$train_seeds" "${flags[@]}" --job
}

trainings() { # name, genotype file: its trainings as jobs
    local ts
    for ts in $train_seeds; do printf '%s\0' train "$1" "$ts" "$2"; done
}

for stage in "${stages[@]}"; do
    case "$stage" in
    search) # the searches, and the baselines beside them
        if [ -n "$baselines" ]; then
            [ -s "$baselines/train_hand_s1.json" ] ||
                { echo "reproduce_nas.sh: no baseline trainings in $baselines" >&2; exit 2; }
        else
            for r in 1 2 3 4 5 6 7 8; do
                # random cell r: the genotype drawn by --random --seed r, trained like the others
                if [ ! -s "$out/random_$r.txt" ]; then
                    "$blo" nas train "${train[@]}" --random --seed "$r" --epochs 0 --json |
                        python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["genotype"])' \
                            >"$out/random_$r.txt"
                fi
            done
        fi
        {
            # the costliest method first, so that no long search runs alone at the end
            for ((i = ${#methods[@]} - 1; i >= 0; i--)); do
                m=${methods[i]}
                for seed in $seeds; do
                    printf '%s\0' search "${m%%|*}_seed$seed" "$seed" "${m%%|*}"
                done
            done
            if [ -z "$baselines" ]; then
                # a copy in DIR, so the JSON names the genotype by a path relative to the run
                [ -s "$out/hand.txt" ] || cp "$root/examples/genotypes/sep_conv_3x3.txt" "$out/hand.txt"
                trainings hand "$out/hand.txt"
                for r in 1 2 3 4 5 6 7 8; do trainings "random_$r" "$out/random_$r.txt"; done
            fi
        } | run_list ;;
    found)
        for seed in $seeds; do
            for m in "${methods[@]}"; do
                name=${m%%|*}_seed$seed
                if [ -s "$out/$name.txt" ]; then trainings "$name" "$out/$name.txt"; fi
            done
        done | run_list ;;
    averaged) # per method, the cell of its search seeds' mean op weights (blo nas derive)
        for m in "${methods[@]}"; do
            name=${m%%|*}_averaged
            if [ ! -s "$out/$name.txt" ]; then
                logs=()
                for seed in $seeds; do logs+=("$out/alpha_${m%%|*}_seed$seed.csv"); done
                "$blo" nas derive "${logs[@]}" --genotype "$out/$name.txt" >/dev/null
            fi
            trainings "$name" "$out/$name.txt"
        done | run_list ;;
    perturb) # first_order and darts again, the genotype by perturbation; then its trainings
        for m in "${perturbed[@]}"; do
            for seed in $seeds; do printf '%s\0' search "${m%%|*}_seed$seed" "$seed" "${m%%|*}"; done
        done | run_list
        for m in "${perturbed[@]}"; do
            for seed in $seeds; do trainings "${m%%|*}_seed$seed" "$out/${m%%|*}_seed$seed.txt"; done
        done | run_list ;;
    table)
        python3 "$here/nas_table.py" "$out" ${baselines:+--baselines "$baselines"} ;;
    esac
done
