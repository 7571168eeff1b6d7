#!/usr/bin/env bash
# run_learnopt.sh — the learned-optimizer figures of RESULTS.md ("A learned optimizer"):
# meta-train the optimizer on the 784-32-10 Fashion-MNIST optimizee (T = 200 steps), then
# compare it with SGD + momentum and Adam, whose step sizes are tuned by a grid on the same
# budget, in four settings: (a) the trained horizon, (b) 10x that horizon, (c1) a 4x wider and
# (c2) a deeper optimizee. The baselines are tuned per setting on seed 1 (lowest mean training
# loss along the run, the meta-objective); every optimizer is then run on seeds 2, 3, 4 (other
# training subsets, initialisations and minibatches) and the table averages them.
# Usage: bench/run_learnopt.sh [build dir] [windows] (defaults build-release, 1500).
# Writes results/learnopt/{learnopt.blo,train.csv,runs.jsonl} and prints the table. With
# LEARNOPT_REUSE=1 an existing results/learnopt/learnopt.blo (and train.csv) is kept: the
# meta-training is deterministic (one thread), so a rerun writes the same bytes.
set -euo pipefail
b=${1:-build-release}/blo
windows=${2:-1500}
out=results/learnopt
mkdir -p "$out"
data=(--n-train 10000 --n-test 10000 --batch 128 --dtype f32 --threads 1 -q)

[ -n "${LEARNOPT_REUSE:-}" ] && [ -s "$out/learnopt.blo" ] && [ -s "$out/train.csv" ] ||
    nice -n 10 "$b" learnopt train "${data[@]}" --seed 0 --hidden 32 --layers 1 --method trhg \
    --inner 20 --trhg-window 20 --init warm --reset-every 10 --outer "$windows" \
    --outer-opt adam --outer-lr 1e-3 --opt-hidden 16 --init-step 3e-3 \
    --out "$out/learnopt.blo" --log "$out/train.csv"

settings=("a|--hidden 32 --layers 1 --steps 200" "b|--hidden 32 --layers 1 --steps 2000"
    "c1|--hidden 128 --layers 1 --steps 200" "c2|--hidden 32 --layers 2 --steps 200")
adam_grid=(1e-3 3e-3 1e-2 3e-2)
momentum_grid=(0.01 0.03 0.1 0.3)
runs=$out/runs.jsonl
: >"$runs"
run() { # run <setting> <seed> <role> <args...>: one apply, its JSON tagged onto runs.jsonl
    local s=$1 seed=$2 role=$3
    shift 3
    local j
    j=$(nice -n 10 "$b" learnopt apply "${data[@]}" --seed "$seed" "$@" --json)
    printf '{"setting":"%s","seed":%s,"role":"%s","run":%s}\n' "$s" "$seed" "$role" "$j" >>"$runs"
}
best() { # best <setting> <optimizer>: the grid lr with the lowest tuning mean loss
    python3 -c 'import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rows = [r for r in rows if r["setting"] == sys.argv[2] and r["role"] == "tune" and r["run"]["optimizer"] == sys.argv[3]]
print(min(rows, key=lambda r: r["run"]["mean_loss"])["run"]["lr"])' "$runs" "$1" "$2"
}
for entry in "${settings[@]}"; do
    s=${entry%%|*}
    read -r -a args <<<"${entry#*|}"
    for lr in "${adam_grid[@]}"; do run "$s" 1 tune "${args[@]}" --baseline adam --lr "$lr"; done
    for lr in "${momentum_grid[@]}"; do
        run "$s" 1 tune "${args[@]}" --baseline momentum --momentum 0.9 --lr "$lr"
    done
    la=$(best "$s" adam)
    lm=$(best "$s" momentum)
    for seed in 2 3 4; do
        run "$s" "$seed" eval "${args[@]}" --optimizer "$out/learnopt.blo"
        run "$s" "$seed" eval "${args[@]}" --baseline adam --lr "$la"
        run "$s" "$seed" eval "${args[@]}" --baseline momentum --momentum 0.9 --lr "$lm"
    done
done

python3 - "$runs" "$out/train.csv" <<'EOF'
import csv, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
tr = list(csv.DictReader(open(sys.argv[2])))
u = [float(r["upper"]) for r in tr]
print("meta-training: %d windows, %.0f s; mean window loss over the first / last 100 windows "
      "%.4f / %.4f" % (len(u), float(tr[-1]["seconds"]), sum(u[:100]) / 100, sum(u[-100:]) / 100))
names = {"a": "(a) 784-32-10, T = 200 (trained)", "b": "(b) 784-32-10, T = 2000 (10x)",
         "c1": "(c) 784-128-10, T = 200 (wider)", "c2": "(c) 784-32-32-10, T = 200 (deeper)"}
print("| setting | optimizer (lr) | mean train loss along the run | train loss at the end | test accuracy |")
print("|---|---|---|---|---|")
for s in ("a", "b", "c1", "c2"):
    ev = [r for r in rows if r["setting"] == s and r["role"] == "eval"]
    for opt in sorted({r["run"]["optimizer"] for r in ev}, key=lambda o: (o != "adam", o != "momentum")):
        rs = [r["run"] for r in ev if r["run"]["optimizer"] == opt]
        m = lambda k: sum(r[k] for r in rs) / len(rs)
        lr = rs[0]["lr"]
        label = "learned" if lr is None else "%s (%g)" % (opt, lr)
        print("| %s | %s | %.4f | %.4f | %.2f %% |" % (names[s], label, m("mean_loss"),
                                                     m("train_loss"), 100 * m("test_acc")))
EOF
