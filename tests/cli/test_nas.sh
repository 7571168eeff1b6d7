#!/usr/bin/env bash
# test_nas.sh — `blo nas search` and `blo nas train` end to end on tests/data/tinymnist (120 8x8
# images, 3 classes; its training files also stand in for the test split): exit codes, the
# JSON summary's fields and ranges, the genotype file (readable, loads back into `nas train`),
# --log rows, the alpha log and its plot (also redrawn by `blo plot`), every search method
# named by the task (cg damped), the warm-up, a resumed search ending where an uninterrupted
# one ends, and bad input named.
# Usage: test_nas.sh <blo binary> <source dir>.
set -uo pipefail
blo=${1:?usage: test_nas.sh <blo binary> <source dir>}
src=${2:?usage: test_nas.sh <blo binary> <source dir>}
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE

data=$tmp/tiny
mkdir -p "$data"
for f in images-idx3-ubyte.gz labels-idx1-ubyte; do
    cp "$src/tests/data/tinymnist/train-$f" "$data/train-$f"
    cp "$src/tests/data/tinymnist/train-$f" "$data/t10k-$f"
done
net=(--data "$data" --size 4 --cells 3 --channels 2 --threads 1 -q)
search=("${net[@]}" --n-search 40 --n-test 20 --batch 8 --nodes 2)

expect_rc 0 nas search "${search[@]}" --outer 4 --inner 2 --json --genotype "$tmp/g.txt" \
    --log "$tmp/s.csv" --eval-every 2
cp "$tmp/out" "$tmp/s.json"
check "--json has every field" json_ok "$tmp/s.json" \
    'all(k in d for k in ("method","iters","params","val_acc","test_acc","upper","lower","genotype","genotype_file"))'
check "4 iterations of first_order, accuracies are probabilities" json_ok "$tmp/s.json" \
    'd["iters"] == 4 and d["method"] == "first_order" and 0 <= d["val_acc"] <= 1 and 0 <= d["test_acc"] <= 1'
check "the JSON genotype is the file's text" python3 -c '
import json, sys
sys.exit(0 if json.load(open(sys.argv[1]))["genotype"] == open(sys.argv[2]).read() else 1)' \
    "$tmp/s.json" "$tmp/g.txt"
check "the genotype file has 2 nodes of each cell kind" test "$(grep -cE '^(normal|reduce) [01]: [a-z_0-9]+ <- [0-3], [a-z_0-9]+ <- [0-3]$' "$tmp/g.txt")" -eq 4
check "no 'none' op in a genotype" bash -c "! grep -q 'none <-' '$tmp/g.txt'"
check "--log has a header and 4 rows" test "$(wc -l <"$tmp/s.csv")" -eq 5
expect_rc 0 plot "$tmp/s.csv" -o "$tmp/s.svg"
check "blo plot draws the search's loss curves" grep -q 'upper-level loss F' "$tmp/s.svg"

# The saved genotype trains from scratch; a random one too.
expect_rc 0 nas train "${net[@]}" --genotype "$tmp/g.txt" --n-train 60 --n-test 30 --epochs 2 \
    --batch 16 --json
cp "$tmp/out" "$tmp/t.json"
check "train: fields and ranges" json_ok "$tmp/t.json" \
    'd["steps"] == 8 and d["params"] > 0 and 0 <= d["test_acc"] <= 1 and d["train_loss"] > 0'
check "train: the genotype it trained is the file's" python3 -c '
import json, sys
sys.exit(0 if json.load(open(sys.argv[1]))["genotype"] == open(sys.argv[2]).read() else 1)' \
    "$tmp/t.json" "$tmp/g.txt"
expect_rc 0 nas train "${net[@]}" --random --nodes 3 --n-train 30 --n-test 30 --epochs 1 --json
check "train --random" json_ok "$tmp/out" 'd["genotype_source"] == "random" and d["nodes"] == 3'
expect_rc 0 nas train "${net[@]}" --random --n-train 30 --n-test 30 --epochs 1
check "the human summary names the test accuracy" grep -q 'test accuracy' "$tmp/out"

# The methods of the task: DARTS-1st and 2nd, rhg through the unrolled steps.
for m in darts rhg; do
    expect_rc 0 nas search "${search[@]}" --outer 2 --inner 2 --method "$m" --json
    check "$m ran 2 iterations" json_ok "$tmp/out" "d['iters'] == 2 and d['method'] == '$m'"
done
# cg needs a positive definite lower-level Hessian; a supernet's is not, and cg says so with
# the damping that would be needed; damped, (H + D I) v = g, it runs.
expect_rc 1 nas search "${search[@]}" --outer 2 --inner 2 --method cg
check "cg names the indefinite Hessian" grep -q "positive definite" "$tmp/err"
check "cg names the damping needed" grep -q "damping must exceed" "$tmp/err"
expect_rc 0 nas search "${search[@]}" --outer 2 --inner 2 --method cg --K 3 --damping 100 --json
check "damped cg ran 2 iterations" json_ok "$tmp/out" "d['iters'] == 2 and d['method'] == 'cg'"
expect_rc 2 nas search "${search[@]}" --outer 2 --method cg --damping -1
check "a negative damping is refused" grep -q -- "--damping" "$tmp/err"

# Perturbation-based selection: the genotype read off the supernet by taking ops and edges
# out; it trains like any other.
expect_rc 0 nas search "${search[@]}" --outer 2 --select perturb --json --genotype "$tmp/gp.txt"
check "--select perturb is reported and timed" json_ok "$tmp/out" \
    'd["select"] == "perturb" and d["select_seconds"] > 0 and "normal 1:" in d["genotype"]'
expect_rc 0 nas train "${net[@]}" --genotype "$tmp/gp.txt" --n-train 20 --n-test 10 --epochs 1 --json
expect_rc 2 nas search "${search[@]}" --outer 1 --select best
check "an unknown --select is named" grep -q -- "--select" "$tmp/err"

# A weights-only warm-up before alpha moves.
expect_rc 0 nas search "${search[@]}" --outer 2 --warmup 3 --json
check "--warmup is reported" json_ok "$tmp/out" "d['warmup'] == 3 and d['iters'] == 2"

# The alpha log and its plot: softmax(alpha) per iteration, cell kind, edge and op; one panel
# per edge (2 nodes: 2 + 3 edges per cell kind), one curve per op.
expect_rc 0 nas search "${search[@]}" --outer 3 --alpha-log "$tmp/a.csv" --plot "$tmp/a.svg" \
    --genotype "$tmp/ga.txt"
check "alpha log: header, 3 x 2 x 5 x 8 rows, each edge's weights sum to 1" python3 -c '
import csv, sys, collections
rows = list(csv.DictReader(open(sys.argv[1])))
s = collections.defaultdict(float)
for r in rows: s[(r["iter"], r["cell"], r["edge"])] += float(r["weight"])
ok = len(rows) == 240 and len(s) == 30 and all(abs(v - 1) < 1e-6 for v in s.values())
ok = ok and sorted({r["iter"] for r in rows}) == ["0", "1", "2"] and {r["op"] for r in rows} == set(map(str, range(8)))
sys.exit(0 if ok else 1)' "$tmp/a.csv"
check "alpha log: the last weights give the saved genotype's strongest op on node 0's first edge" python3 -c '
import csv, sys
names = ["none","max_pool_3x3","avg_pool_3x3","skip_connect","sep_conv_3x3","sep_conv_5x5","dil_conv_3x3","dil_conv_5x5"]
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["iter"] == "2" and r["cell"] == "0"]
w = {(int(r["edge"]), int(r["op"])): float(r["weight"]) for r in rows}
line = [l for l in open(sys.argv[2]) if l.startswith("normal 0:")][0]
op, src = line.split(":")[1].split(",")[0].split("<-")
e = int(src)
best = max(range(1, 8), key=lambda o: w[(e, o)])
sys.exit(0 if names[best] == op.strip() else 1)' "$tmp/a.csv" "$tmp/ga.txt"
check "alpha plot: an SVG with 10 edge panels of 8 curves" python3 -c '
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = "{http://www.w3.org/2000/svg}"
titles = [t.text for t in root.iter(ns + "text") if t.text and " from " in t.text]
lines = list(root.iter(ns + "polyline"))
ok = len(titles) == 10 and len(lines) == 80 and "normal: node 1 from node 0" in titles
ok = ok and "reduce: node 0 from input 1" in titles and any(t.text == "sep_conv_3x3" for t in root.iter(ns + "text"))
sys.exit(0 if ok else 1)' "$tmp/a.svg"
expect_rc 0 plot "$tmp/a.csv" -o "$tmp/a.png"
check "blo plot redraws the alpha log as a PNG" python3 -c '
import sys, struct
b = open(sys.argv[1], "rb").read()
w, h = struct.unpack(">II", b[16:24])
sys.exit(0 if b[:8] == b"\x89PNG\r\n\x1a\n" and w == 3 * 480 and h > 4 * 320 else 1)' "$tmp/a.png"
expect_rc 2 nas search "${search[@]}" --outer 1 --plot "$tmp/b.svg"
check "--plot without --alpha-log says what to give" grep -q -- "--alpha-log" "$tmp/err"
expect_rc 2 plot "$tmp/a.csv" "$tmp/s.csv" -o "$tmp/c.svg"
check "an alpha log is plotted on its own" grep -q "on its own" "$tmp/err"
printf 'iter,cell,edge,op,weight\n0,5,0,0,0.5\n' >"$tmp/bad_alpha.csv"
expect_rc 2 plot "$tmp/bad_alpha.csv" -o "$tmp/c.svg"
check "a bad alpha log names the row" grep -q "row 1: cell must be 0 or 1" "$tmp/err"

# nas derive: one alpha log gives back its search's genotype; several logs' mean op weights
# decide the averaged cell; --iter picks an earlier iteration; bad logs are named.
expect_rc 0 nas derive "$tmp/a.csv" --genotype "$tmp/gd.txt"
check "nas derive of the search's alpha log gives the search's genotype" \
    diff <(grep -v '^#' "$tmp/ga.txt") <(grep -v '^#' "$tmp/gd.txt")
# Hand-made logs of a 1-node cell (2 edges per cell kind). Edge 0 of the normal cell: log A
# puts 0.5 on sep_conv_3x3 (the other ops 0.5/7) at iteration 1 and 0.5 on max_pool_3x3 at
# iteration 0; log B puts 0.3 on dil_conv_3x3 (the others 0.1). The mean favours sep_conv_3x3
# (0.3 against 0.19); B alone dil_conv_3x3. Every other edge: 0.3 on skip_connect.
python3 -c '
import sys
def log(path, picks):  # picks: {iteration: op of normal edge 0 and its weight}
    with open(path, "w") as f:
        f.write("iter,cell,edge,op,weight\n")
        for it, (best, w) in picks.items():
            for cell in (0, 1):
                for e in (0, 1):
                    b, bw = (best, w) if (cell, e) == (0, 0) else (3, 0.3)
                    for o in range(8):
                        f.write("%d,%d,%d,%d,%.6f\n" % (it, cell, e, o, bw if o == b else (1 - bw) / 7))
log(sys.argv[1], {0: (1, 0.5), 1: (4, 0.5)})
log(sys.argv[2], {0: (6, 0.3)})' "$tmp/da.csv" "$tmp/db.csv"
expect_rc 0 nas derive "$tmp/da.csv" "$tmp/db.csv"
check "derive: the mean of two logs' weights picks sep_conv_3x3" grep -q "^normal 0: sep_conv_3x3 <- 0, skip_connect <- 1" "$tmp/out"
expect_rc 0 nas derive "$tmp/db.csv" --json
check "derive: one log alone picks its own op" json_ok "$tmp/out" \
    '"normal 0: dil_conv_3x3 <- 0" in d["genotype"] and d["logs"] == 1 and d["nodes"] == 1'
expect_rc 0 nas derive "$tmp/da.csv" --iter 0
check "derive --iter 0 reads the earlier weights" grep -q "^normal 0: max_pool_3x3 <- 0" "$tmp/out"
expect_rc 2 nas derive "$tmp/da.csv" --iter 7
check "derive: a missing iteration is named" grep -q "da.csv: no rows of iteration 7" "$tmp/err"
expect_rc 2 nas derive "$tmp/a.csv" "$tmp/da.csv"
check "derive: logs of different cells are refused" grep -q "a cell of 1 nodes, but .*a.csv has 2" "$tmp/err"
expect_rc 2 nas derive "$tmp/s.csv"
check "derive: a run log is not an alpha log" grep -q "s.csv: not an architecture (alpha) log" "$tmp/err"
head -n 20 "$tmp/da.csv" >"$tmp/dc.csv"
expect_rc 2 nas derive "$tmp/dc.csv"
check "derive: a cut log names what is missing" grep -q "dc.csv: .*edge count\|dc.csv: iteration 0 has no weight" "$tmp/err"
expect_rc 2 nas derive
check "derive without logs says what to give" grep -q "one or more alpha logs" "$tmp/err"

# Resume: 4 iterations in one go == 2, stopped, then resumed to 4.
expect_rc 0 nas search "${search[@]}" --outer 4 --json
cp "$tmp/out" "$tmp/full.json"
expect_rc 0 nas search "${search[@]}" --outer 2 --json --checkpoint "$tmp/ck.bin"
expect_rc 0 nas search "${search[@]}" --outer 4 --json --resume "$tmp/ck.bin"
cp "$tmp/out" "$tmp/resumed.json"
check "a resumed search ends where the uninterrupted one does" python3 -c '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
bad = [k for k in ("upper", "lower", "val_acc", "test_acc", "genotype", "iters") if a[k] != b[k]]
if bad: print("  differ:", bad, file=sys.stderr)
sys.exit(1 if bad else 0)' "$tmp/full.json" "$tmp/resumed.json"

# Bad input: exit 2 with a message naming the problem.
expect_rc 2 nas
expect_rc 2 nas search "${search[@]}" --size 3
check "an image size that does not divide the side is named" grep -q "pooled to 3 x 3" "$tmp/err"
expect_rc 2 nas search "${search[@]}" --n-search 1000
check "asking for more examples than exist says so" grep -q "has 120" "$tmp/err"
expect_rc 2 nas search "${search[@]}" --nodes 9
check "--nodes out of range is named" grep -q -- "--nodes" "$tmp/err"
expect_rc 2 nas train "${net[@]}"
check "train without a genotype says what to give" grep -q -- "--genotype" "$tmp/err"
printf 'nodes 1\nnormal 0: sep_conv_3x3 <- 0, conv_9x9 <- 1\n' >"$tmp/bad.txt"
expect_rc 2 nas train "${net[@]}" --genotype "$tmp/bad.txt"
check "a malformed genotype names its line" grep -q "bad.txt: line 2" "$tmp/err"
expect_rc 2 nas train "${net[@]}" --genotype "$tmp/missing.txt"
check "a missing genotype file is named" grep -q "missing.txt" "$tmp/err"

cli_finish test_nas
