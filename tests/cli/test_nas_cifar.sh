#!/usr/bin/env bash
# test_nas_cifar.sh — `blo nas search` and `blo nas train --data-format cifar10` on a small
# generated CIFAR-10 folder (data_batch_1..5.bin, one of them gzip'd, and test_batch.bin; 3
# classes, each brightening one colour plane): exit codes and JSON fields, the network taking 3
# input channels (its weight count exceeds the 1-channel network's by exactly the stem's extra
# input weights), and bad input named: a missing batch file, a size that does not divide 32.
# Usage: test_nas_cifar.sh <blo binary> <source dir>.
set -uo pipefail
blo=${1:?usage: test_nas_cifar.sh <blo binary> <source dir>}
src=${2:?usage: test_nas_cifar.sh <blo binary> <source dir>}
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE

data=$tmp/cifar
mkdir -p "$data"
python3 - "$data" <<'PY'
import gzip, sys
out = sys.argv[1]
seed = 11
def byte():
    global seed
    seed = (1103515245 * seed + 12345) % (1 << 31)
    return seed % 64
def batch(n, first):
    b = bytearray()
    for i in range(n):
        c = (first + i) % 3
        b.append(c)
        for plane in range(3):
            base = 160 if plane == c else 30
            b.extend(base + byte() for _ in range(1024))
    return bytes(b)
for k in range(1, 6):
    data = batch(12, 12 * k)
    name = "%s/data_batch_%d.bin" % (out, k)
    if k == 2:
        with gzip.open(name + ".gz", "wb") as f:
            f.write(data)
    else:
        open(name, "wb").write(data)
open(out + "/test_batch.bin", "wb").write(batch(30, 0))
PY
net=(--data "$data" --data-format cifar10 --size 4 --cells 3 --channels 2 --threads 1 -q)

expect_rc 0 nas search "${net[@]}" --n-search 40 --n-test 20 --batch 8 --nodes 2 --outer 3 \
    --inner 1 --json --genotype "$tmp/g.txt"
check "search: 3 iterations, accuracies are probabilities" json_ok "$tmp/out" \
    'd["iters"] == 3 and 0 <= d["val_acc"] <= 1 and 0 <= d["test_acc"] <= 1 and d["params"] > 0'
expect_rc 0 nas train "${net[@]}" --genotype "$tmp/g.txt" --n-train 60 --n-test 30 --epochs 2 \
    --batch 16 --json
check "train: every training example read (60 of the 5 batches' 60), fields and ranges" \
    json_ok "$tmp/out" 'd["steps"] == 8 and 0 <= d["test_acc"] <= 1 and d["train_loss"] > 0'

# The stem is a 3x3 convolution from the input channels to 3C = 6 channels: with 3 input
# channels instead of 1 the network has (3 - 1) * 9 * 6 = 108 more weights, nothing else.
expect_rc 0 nas train "${net[@]}" --random --n-train 10 --n-test 10 --epochs 0 --json
cp "$tmp/out" "$tmp/c3.json"
mnist=$tmp/mnist
mkdir -p "$mnist"
for f in images-idx3-ubyte.gz labels-idx1-ubyte; do
    cp "$src/tests/data/tinymnist/train-$f" "$mnist/train-$f"
    cp "$src/tests/data/tinymnist/train-$f" "$mnist/t10k-$f"
done
expect_rc 0 nas train --data "$mnist" --size 4 --cells 3 --channels 2 --threads 1 -q --random \
    --n-train 10 --n-test 10 --epochs 0 --json
cp "$tmp/out" "$tmp/c1.json"
check "3 input channels: 108 more weights than 1" python3 -c '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
sys.exit(0 if a["params"] - b["params"] == 108 else 1)' "$tmp/c3.json" "$tmp/c1.json"

# Bad input: exit 2 with a message naming the problem.
expect_rc 2 nas train "${net[@]}" --random --size 3 --n-train 10 --n-test 10
check "a size that does not divide 32 is named" grep -q "32 x 32 pixels cannot be pooled to 3 x 3" "$tmp/err"
expect_rc 2 nas search "${net[@]}" --data-format cifar100
check "an unknown format is named" grep -q -- "--data-format" "$tmp/err"
mv "$data/data_batch_3.bin" "$data/moved.bin"
expect_rc 2 nas search "${net[@]}" --n-search 10 --n-test 10 --outer 1
check "a missing batch file is named" grep -q "data_batch_3.bin: cannot open" "$tmp/err"
mv "$data/moved.bin" "$data/data_batch_3.bin"
head -c 5000 "$data/test_batch.bin" >"$data/t" && mv "$data/t" "$data/test_batch.bin"
expect_rc 2 nas train "${net[@]}" --random --n-train 10 --n-test 1
check "a truncated test batch names the file and the partial record" \
    grep -q "test_batch.bin: offset 3073: a partial record" "$tmp/err"

cli_finish test_nas_cifar
