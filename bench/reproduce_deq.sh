#!/usr/bin/env bash
# reproduce_deq.sh — the Fashion-MNIST figures of RESULTS.md ("Implicit models"): `blo deq`
# with the monotone and the weight-normalised W, each beside the explicit network of the same
# parameter count (--baseline), every setting pinned here. Prints one JSON summary per run and
# a table. A few minutes on 2 cores.
#
#   bench/reproduce_deq.sh [--build DIR] [--epochs N] [--hidden D] [--part P]
#   --part P  main (default): the table above; seeds: the monotone and weight runs over seeds
#             0, 1, 2 (mean ± standard error); pr: the monotone run with Peaceman-Rachford;
#             conv: the convolutional layer beside its conv net (10 000 training images,
#             2 000 test, 2 epochs)
#   BLO_DATA  the MNIST-layout folder (default /usr/share/datasets/fashion-mnist)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
build="$root/build"
epochs=5
hidden=64
part=main
while [ $# -gt 0 ]; do
    case "$1" in
    --part) part="${2:?--part needs main, seeds, pr or conv}"; shift 2 ;;
    --build) build="${2:?--build needs a folder}"; shift 2 ;;
    --epochs) epochs="${2:?--epochs needs a number}"; shift 2 ;;
    --hidden) hidden="${2:?--hidden needs a number}"; shift 2 ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "reproduce_deq.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
. "$here/lib.sh"
blo="$(bench_exe reproduce_deq.sh blo)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
common=(--epochs "$epochs" --hidden "$hidden" --batch 128 --lr 1e-3 --threads 1 -q --json --baseline)
bench_banner 1 1
run() { # run <name> <options...> (seed 0 unless the options give one)
    local name=$1
    shift
    "$blo" deq "${common[@]}" --seed 0 "$@" | tee "$tmp/$name.json"
}
mono=(--param monotone --m 0.1 --act relu --solver fb --alpha 0.5 --anderson-m 5 --max-iter 50
    --tol 1e-3 --backward implicit --back-max-iter 50 --back-tol 1e-3)
weight=(--param weight --scale 0.9 --act relu --solver anderson --anderson-m 5 --max-iter 50
    --tol 1e-3 --backward implicit --back-max-iter 50 --back-tol 1e-3)
case "$part" in
main) ;;
seeds)
    for s in 0 1 2; do
        run "monotone_$s" "${mono[@]}" --seed "$s"
        run "weight_$s" "${weight[@]}" --seed "$s"
    done
    /usr/bin/python3 - "$tmp" <<'PY'
import json, math, os, sys
print("\n| run | seeds | test acc, mean ± s.e. | explicit net, mean ± s.e. | difference, mean ± s.e. | fwd it |")
print("|---|---|---|---|---|---|")
def ms(v):
    m = sum(v) / len(v)
    return m, math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1) / len(v))
for name in ("monotone", "weight"):
    d = [json.load(open(os.path.join(sys.argv[1], "%s_%d.json" % (name, s)))) for s in (0, 1, 2)]
    a = [100 * x["test_acc"] for x in d]
    b = [100 * x["baseline_acc"] for x in d]
    print("| %s | 0 1 2 | %.2f ± %.2f %% (%s) | %.2f ± %.2f %% (%s) | %+.2f ± %.2f | %.1f |" % (
        (name,) + ms(a) + (" ".join("%.2f" % x for x in a),) + ms(b) +
        (" ".join("%.2f" % x for x in b),) + ms([x - y for x, y in zip(a, b)]) +
        (sum(x["fwd_iters"] for x in d) / 3,)))
PY
    exit 0 ;;
pr)
    run monotone_pr --param monotone --m 0.1 --act relu --solver pr --alpha 1 --anderson-m 5 \
        --max-iter 50 --tol 1e-3 --backward implicit --back-max-iter 50 --back-tol 1e-3
    exit 0 ;;
conv)
    "$blo" deq --layer conv --channels 8 --kernel 3 --stride 2 --n-train 10000 --n-test 2000 \
        --epochs 2 --batch 128 --lr 2e-3 --seed 0 --threads 1 -q --json --baseline \
        --param monotone --m 0.1 --act relu --solver fb --alpha 0.5 --anderson-m 5 --max-iter 50 \
        --tol 1e-3 --backward implicit --back-max-iter 50 --back-tol 1e-3
    exit 0 ;;
*) echo "reproduce_deq.sh: --part: '$part' is not main, seeds, pr or conv" >&2; exit 2 ;;
esac
run monotone --param monotone --m 0.1 --act relu --solver fb --alpha 0.5 --anderson-m 5 \
    --max-iter 50 --tol 1e-3 --backward implicit --back-max-iter 50 --back-tol 1e-3
run monotone_jac --param monotone --m 0.1 --act relu --solver fb --alpha 0.5 --anderson-m 5 \
    --max-iter 50 --tol 1e-3 --backward implicit --back-max-iter 50 --back-tol 1e-3 --jac-reg 0.5
run monotone_unrolled --param monotone --m 0.1 --act relu --solver fb --alpha 0.5 --anderson-m 5 \
    --max-iter 50 --tol 1e-3 --backward unrolled
run weight --param weight --scale 0.9 --act relu --solver anderson --anderson-m 5 \
    --max-iter 50 --tol 1e-3 --backward implicit --back-max-iter 50 --back-tol 1e-3
/usr/bin/python3 - "$tmp" <<'PY'
import json, sys, os
print("\n| run | d | params | test acc | explicit net (h, params) | its acc | fwd it | bwd it | unconverged | step peak MiB | deq CPU s (wall) | explicit wall s |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for name in ("monotone", "monotone_jac", "monotone_unrolled", "weight"):
    d = json.load(open(os.path.join(sys.argv[1], name + ".json")))
    print("| %s | %d | %d | %.2f %% | %d, %d | %.2f %% | %.1f | %.1f | %d | %.1f | %.1f (%.0f) | %.1f |" % (
        name, d["hidden"], d["params"], 100 * d["test_acc"], d["baseline_hidden"],
        d["baseline_params"], 100 * d["baseline_acc"], d["fwd_iters"], d["bwd_iters"],
        d["unconverged"], d["peak_bytes"] / 2**20, d["cpu_seconds"], d["seconds"],
        d["baseline_seconds"]))
PY
