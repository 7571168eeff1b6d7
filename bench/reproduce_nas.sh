#!/usr/bin/env bash
# reproduce_nas.sh — the DARTS search table of RESULTS.md ("Architecture search"): searches
# with first_order, darts, rhg and cg on Fashion-MNIST at 7x7 (search seeds 1, 2, 3), then the
# found cells, 8 random cells and the hand-designed all-sep_conv_3x3 cell trained from scratch
# the same way, each with 4 training seeds. About an hour on 2 loaded cores; the test suite does not run it.
#
#   bench/reproduce_nas.sh [--out DIR] [--build DIR] [--seeds "S ..."] [STAGE ...]
#
#   STAGE     search (4 searches per seed), baselines (random and hand-designed cells), found (the
#             searched cells), table (the summary); default: all four in that order. The
#             stages write JSON files into DIR and skip a run whose file is already there, so
#             an interrupted run continues, and baselines can run beside search.
#   --out     where the logs, genotypes and JSON go (default nas_results/)
#   --build   the CMake build folder holding blo (default build/)
#   --seeds   the search seeds of the search and found stages (default "1 2 3")
#   --train-seeds  the training seeds of every architecture (default "1 2 3 4")
#   DATA      the Fashion-MNIST folder (default /usr/share/datasets/fashion-mnist)
#
# The protocol (RESULTS.md says which parts were fixed when): search seeds 1, 2, 3 for every
# method, the same settings for each; the supernet and the trained networks have 3 cells and
# 3 nodes per cell; every architecture is trained with training seeds 1 to 4, seed s fixing
# the same 2000 training and 2000 test examples for all; an architecture's accuracy is the
# mean over its 4 trainings.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
out=nas_results
build="$root/build"
stages=()
seeds="1 2 3"
train_seeds="1 2 3 4"
while [ $# -gt 0 ]; do
    case "$1" in
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    --build) build="${2:?--build needs a folder}"; shift 2 ;;
    --seeds) seeds="${2:?--seeds needs a list}"; shift 2 ;;
    --train-seeds) train_seeds="${2:?--train-seeds needs a list}"; shift 2 ;;
    -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    search | baselines | found | table) stages+=("$1"); shift ;;
    *) echo "reproduce_nas.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
[ ${#stages[@]} -gt 0 ] || stages=(search baselines found table)
blo="$build/blo"
[ -x "$blo" ] || { echo "reproduce_nas.sh: $blo not found; build first" >&2; exit 2; }
data="${DATA:-/usr/share/datasets/fashion-mnist}"
mkdir -p "$out"
export OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1

# The search space and budget shared by every method.
space=(--data "$data" --size 7 --cells 3 --nodes 3 --threads 1 -q)
search=("${space[@]}" --channels 4 --n-search 1000 --n-test 1000 --batch 32 --warmup 50
    --outer 100 --eval-every 25)
train=("${space[@]}" --channels 8 --n-train 2000 --n-test 2000 --epochs 10 --batch 32)
# method name, then its settings.
methods=(
    "first_order|--method first_order --inner 1"
    "darts|--method darts --inner 1"
    "rhg|--method rhg --inner 2"
    "cg|--method cg --inner 2 --K 5 --damping 20"
)

run_search() {
    local name=$1; shift
    [ -s "$out/search_$name.json" ] && return 0
    echo "search $name" >&2
    # peak resident memory of the whole process, from GNU time
    /usr/bin/time -f "%M" -o "$out/search_$name.rss" \
        "$blo" nas search "${search[@]}" "$@" --json --genotype "$out/$name.txt" \
        --log "$out/search_$name.csv" --alpha-log "$out/alpha_$name.csv" \
        --plot "$out/alpha_$name.svg" >"$out/search_$name.json.tmp"
    mv "$out/search_$name.json.tmp" "$out/search_$name.json"
}

run_train() { # name, then the genotype options
    local name=$1; shift
    for ts in $train_seeds; do
        local f="$out/train_${name}_s$ts.json"
        [ -s "$f" ] && continue
        echo "train $name seed $ts" >&2
        "$blo" nas train "${train[@]}" "$@" --seed "$ts" --json >"$f.tmp"
        mv "$f.tmp" "$f"
    done
}

for stage in "${stages[@]}"; do
    case "$stage" in
    search)
        for seed in $seeds; do
            for m in "${methods[@]}"; do
                # shellcheck disable=SC2086
                run_search "${m%%|*}_seed$seed" ${m#*|} --seed "$seed"
            done
        done ;;
    baselines)
        run_train hand --genotype "$root/examples/genotypes/sep_conv_3x3.txt"
        for r in 1 2 3 4 5 6 7 8; do
            # the random genotype is drawn from --seed: fix it, vary only the training seed
            if [ ! -s "$out/random_$r.txt" ]; then
                "$blo" nas train "${train[@]}" --random --nodes 3 --seed "$r" --epochs 0 --json |
                    python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["genotype"])' \
                        >"$out/random_$r.txt"
            fi
            run_train "random_$r" --genotype "$out/random_$r.txt"
        done ;;
    found)
        for seed in $seeds; do
            for m in "${methods[@]}"; do
                name=${m%%|*}_seed$seed
                if [ -s "$out/$name.txt" ]; then run_train "$name" --genotype "$out/$name.txt"; fi
            done
        done ;;
    table)
        python3 "$here/nas_table.py" "$out" ;;
    esac
done
