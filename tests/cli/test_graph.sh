#!/usr/bin/env bash
# test_graph.sh — `blo graph` end to end on tests/data/graph_tiny (7 nodes): exit codes (0 ok,
# 2 bad option or malformed data), the JSON summary, --log rows, --plot, --save-graph (pairs
# with theta > 1/2, i < j, theta in (1/2, 1]), --keep-edges, a resumed run ending where an
# uninterrupted one ends, and every registered method running the task (with the settings
# those that need them ask for).
# Usage: test_graph.sh <blo binary> <source dir>.
set -uo pipefail
blo=${1:?usage: test_graph.sh <blo binary> <source dir>}
src=${2:?usage: test_graph.sh <blo binary> <source dir>}
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1

tiny=(--data "$src/tests/data/graph_tiny" --samples 4 --epochs 30 --threads 1 -q)

expect_rc 0 graph "${tiny[@]}" --outer 6 --baseline --json --log "$tmp/run.csv" \
    --plot "$tmp/run.svg" --save-graph "$tmp/graph.txt"
cp "$tmp/out" "$tmp/run.json"
check "--json prints one object with every field" json_ok "$tmp/run.json" \
    'all(k in d for k in ("gcn_val","gcn_test","lds_val","lds_test","frozen_val","frozen_test","edges_learned","iters","method"))'
check "accuracies are probabilities, 6 iterations, trhg by default" json_ok "$tmp/run.json" \
    'all(0 <= d[k] <= 1 for k in ("gcn_val","lds_val","frozen_val")) and d["iters"] == 6 and d["method"] == "trhg"'
check "--log has a header and 6 rows" test "$(wc -l <"$tmp/run.csv")" -eq 7
check "--log has validation accuracy and edges" grep -q '^iter,upper,lower,hypergrad_norm,seconds,peak_bytes,val_acc,edges' "$tmp/run.csv"
check "--plot wrote an SVG" grep -q '<svg' "$tmp/run.svg"
check "--save-graph: one line per pair with theta > 1/2, as many as the summary counts" python3 -c '
import json, sys
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("#")]
d = json.load(open(sys.argv[2]))
ok = len(rows) == d["edges_learned"] and all(int(i) < int(j) < 7 and 0.5 < float(p) <= 1 for i, j, p in rows)
sys.exit(0 if ok else 1)' "$tmp/graph.txt" "$tmp/run.json"

expect_rc 0 graph "${tiny[@]}" --outer 2 --keep-edges 0.5 --json
check "--keep-edges 0.5 keeps 3 of 6 edges" json_ok "$tmp/out" 'd["edges_kept"] == 3 and d["edges_given"] == 6'
expect_rc 0 graph "${tiny[@]}" --gcn-only
check "the summary names the GCN's test accuracy" grep -q 'GCN on the graph: test' "$tmp/out"

# Early stopping: with patience 1 the run stops at the first iteration that does not improve
# on the held-out half of the validation nodes, and scores the best one.
expect_rc 0 graph "${tiny[@]}" --outer 30 --patience 1 --baseline --json
check "--patience 1: stops early, the best iteration before the last" json_ok "$tmp/out" \
    'd["iters"] < 30 and 0 <= d["best_iter"] < d["iters"] and 0 <= d["es_acc"] <= 1'
expect_rc 0 graph "${tiny[@]}" --outer 3 --json
check "without --patience, 2 validation nodes: no early stopping" json_ok "$tmp/out" \
    'd["best_iter"] is None and d["es_acc"] is None and d["patience"] == 0'
# The default early stopping is on with 100 validation nodes (Digits), off with --patience 0.
expect_rc 0 graph --data digits --outer 1 --epochs 1 --samples 1 --threads 1 -q --json
check "Digits (100 validation nodes): patience 10 by default" json_ok "$tmp/out" \
    'd["patience"] == 10 and d["best_iter"] == 0 and 0 <= d["es_acc"] <= 1'
expect_rc 0 graph --data digits --outer 1 --epochs 1 --samples 1 --threads 1 -q --json --patience 0
check "--patience 0: off" json_ok "$tmp/out" 'd["patience"] == 0 and d["best_iter"] is None'
# The outer step from a grid, chosen on the early-stopping set; restarts of the GCN.
expect_rc 0 graph "${tiny[@]}" --outer 6 --patience 2 --outer-lr-grid 2,0.5 --json
check "--outer-lr-grid: the chosen step is one of the grid's" json_ok "$tmp/out" \
    'd["outer_lr"] in (2, 0.5) and 0 <= d["es_acc"] <= 1'
expect_rc 2 graph "${tiny[@]}" --outer-lr-grid 1,x --patience 1
check "--outer-lr-grid 1,x names the option" grep -q "bad value '1,x' for --outer-lr-grid" "$tmp/err"
expect_rc 2 graph "${tiny[@]}" --outer-lr-grid 1,0.1
check "--outer-lr-grid without --patience asks for it" grep -q 'add --patience' "$tmp/err"
expect_rc 0 graph "${tiny[@]}" --outer 6 --restart-every 2 --patience 1 --json
check "--restart-every 2 --patience 1: the scored iteration ends a cycle" json_ok "$tmp/out" \
    'd["best_iter"] % 2 == 1 and d["iters"] % 2 == 0'
expect_rc 2 graph "${tiny[@]}" --restart-every -1
# kNN: the tiny graph's features as a kNN graph (k = 2) replace its edges.
expect_rc 0 graph "${tiny[@]}" --outer 1 --knn 2 --features raw --json
check "--knn 2: the kNN graph's 9 edges are the given ones" json_ok "$tmp/out" \
    'd["knn"] == 2 and d["edges_given"] == 9'
expect_rc 2 graph "${tiny[@]}" --knn 7
check "--knn 7 on 7 nodes names the bound" grep -q 'k < the number of nodes' "$tmp/err"
# A candidate set: theta on the kNN graph's pairs (k = 2, 9 of them) and the given edges only.
expect_rc 0 graph "${tiny[@]}" --outer 3 --candidates 2 --theta-start 0.9 --save-graph "$tmp/cand.txt" --json
check "--candidates 2: theta above 1/2 on at most the 6 given and 9 kNN pairs (21 without)" \
    test "$(grep -vc '^#' "$tmp/cand.txt")" -le 15
check "--json names the candidate set" json_ok "$tmp/out" 'd["candidates"] == 2'
expect_rc 2 graph "${tiny[@]}" --candidates 7
check "--candidates 7 on 7 nodes names the bound" grep -q 'k < the number of nodes' "$tmp/err"

# Resume: 4 iterations in one go == 2, stopped, then resumed to 4.
expect_rc 0 graph "${tiny[@]}" --outer 4 --json
cp "$tmp/out" "$tmp/full.json"
expect_rc 0 graph "${tiny[@]}" --outer 2 --json --checkpoint "$tmp/ck.bin"
expect_rc 0 graph "${tiny[@]}" --outer 4 --json --resume "$tmp/ck.bin"
cp "$tmp/out" "$tmp/resumed.json"
check "a resumed run ends where the uninterrupted one does" python3 -c '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
sys.exit(0 if all(a[k] == b[k] for k in ("upper", "lower", "iters", "edges_learned")) else 1)' \
    "$tmp/full.json" "$tmp/resumed.json"

for m in $("$blo" methods --json | python3 -c 'import json,sys; print(" ".join(x["name"] for x in json.load(sys.stdin)))'); do
    extra=()
    case "$m" in
    fixed_point | soba | amm) extra=(--inner-opt sgd --inner-lr 0.5) ;;
    iaptt) extra=(--init learned) ;;
    esac
    expect_rc 0 graph "${tiny[@]}" --outer 2 --method "$m" "${extra[@]}" --json
done

# Bad input: exit 2 with the file and line named.
expect_rc 2 graph "${tiny[@]}" --data "$src/tests/data/bad/graph_twosplits"
check "a split overlap names the file and line" grep -q 'test.txt: line 2: node 1 is already in train.txt' "$tmp/err"
expect_rc 2 graph "${tiny[@]}" --keep-edges 1.5
expect_rc 2 graph "${tiny[@]}" --save-graph /nonexistent/dir/g.txt
cli_finish test_graph
