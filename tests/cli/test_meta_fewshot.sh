#!/usr/bin/env bash
# test_meta_fewshot.sh — `blo meta fewshot` end to end on tests/data/tinymnist (8x8, 3
# classes: 12 rotation classes, split by base class 8 / 4 unless told): exit codes (0 ok,
# 2 bad usage), the JSON summary's fields, --log rows and --plot files, the three learners
# (maml with a linear or MLP network, hyperrep, pretrain) well above chance on the meta-test
# episodes, the split by class, a run stopped halfway and resumed from its checkpoint (maml
# and hyperrep), and refused options.
# Usage: test_meta_fewshot.sh <blo binary> <source dir>.
set -uo pipefail
blo=${1:?usage: test_meta_fewshot.sh <blo binary> <source dir>}
src=${2:?usage: test_meta_fewshot.sh <blo binary> <source dir>}
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1

tiny=(meta fewshot --data "$src/tests/data/tinymnist" --train-classes 8 --ways 3 --shots 2
    --queries 5 --meta-batch 4 --eval-episodes 50 --outer-lr 0.01 --threads 1 -q)

expect_rc 0 "${tiny[@]}" --hidden 0 --outer 30 --json --log "$tmp/run.csv" --plot "$tmp/run.svg"
cp "$tmp/out" "$tmp/run.json"
check "--json prints one object with every field" json_ok "$tmp/run.json" \
    'all(k in d for k in ("learner","method","class_split","ways","shots","queries","meta_batch","hidden","layers","head_l2","normalize","inner_steps","inner_lr","classes","train_classes","test_classes","side","iters","eval_episodes","eval_steps","acc","acc_ci95","acc_before","upper","seconds","peak_bytes"))'
check "12 rotation classes of 8x8 images, 8 / 4 by base class" json_ok "$tmp/run.json" \
    'd["classes"] == 12 and d["train_classes"] == 8 and d["test_classes"] == 4 and d["side"] == 8 and d["class_split"] == "base"'
check "30 iterations of maml with first_order (the defaults)" json_ok "$tmp/run.json" \
    'd["iters"] == 30 and d["method"] == "first_order" and d["learner"] == "maml"'
check "3-way accuracy well above chance after fine-tuning" json_ok "$tmp/run.json" \
    'd["acc"] > 0.6 and 0 <= d["acc_before"] <= 1 and d["head_l2"] is None'
check "--log has a header and 30 rows" test "$(wc -l <"$tmp/run.csv")" -eq 31
check "--plot wrote an SVG" grep -q '<svg' "$tmp/run.svg"

expect_rc 0 "${tiny[@]}" --outer 5 --hidden 8 --layers 1
check "the summary names the rotation classes and the split" grep -q 'rotation classes of 8x8 images (split by base' "$tmp/out"
expect_rc 0 "${tiny[@]}" --outer 3 --method rhg --inner 2 --hidden 8 --json
check "second-order MAML runs" json_ok "$tmp/out" 'd["method"] == "rhg" and d["iters"] == 3 and d["layers"] == 2'
expect_rc 0 "${tiny[@]}" --outer 3 --hidden 0 --class-split class --train-classes 6 --json
check "the split by class takes any count" json_ok "$tmp/out" \
    'd["class_split"] == "class" and d["train_classes"] == 6 and d["test_classes"] == 6'

# Meta feature learning: rhg and cg; heads fitted from zero.
expect_rc 0 "${tiny[@]}" --learner hyperrep --hidden 32 --method rhg --inner-lr 0.5 --outer 60 --json
check "hyperrep (rhg): 3-way accuracy well above chance" json_ok "$tmp/out" \
    'd["learner"] == "hyperrep" and d["acc"] > 0.6 and d["acc_before"] is None and d["head_l2"] == 0.01'
expect_rc 0 "${tiny[@]}" --learner hyperrep --hidden 16 --method cg --inner 20 --outer 5 --json
check "hyperrep (cg) runs" json_ok "$tmp/out" 'd["method"] == "cg" and d["iters"] == 5'
expect_rc 0 "${tiny[@]}" --learner hyperrep --hidden 16 --normalize --inner-lr 1 --method rhg --outer 30 --json
check "hyperrep with normalised features" json_ok "$tmp/out" 'd["normalize"] is True and d["acc"] > 0.5'

# The pretrained baseline.
expect_rc 0 "${tiny[@]}" --learner pretrain --hidden 32 --pretrain-steps 200 --pretrain-lr 0.01 \
    --pretrain-batch 32 --eval-steps 20 --json --log "$tmp/pre.csv"
check "pretrain: 3-way accuracy well above chance" json_ok "$tmp/out" \
    'd["learner"] == "pretrain" and d["method"] == "adam" and d["iters"] == 200 and d["acc"] > 0.6'
check "pretrain: --log has a row per Adam step" test "$(wc -l <"$tmp/pre.csv")" -eq 201

# Resume: 6 iterations in one go == 3, stopped, then resumed to 6.
for learner in maml hyperrep; do
    run=("${tiny[@]}" --learner "$learner" --hidden 8 --method rhg --json)
    expect_rc 0 "${run[@]}" --outer 6
    cp "$tmp/out" "$tmp/full.json"
    expect_rc 0 "${run[@]}" --outer 3 --checkpoint "$tmp/ck-$learner.bin"
    expect_rc 0 "${run[@]}" --outer 6 --resume "$tmp/ck-$learner.bin"
    cp "$tmp/out" "$tmp/resumed.json"
    check "$learner: a resumed run ends where the uninterrupted one does" python3 -c '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
sys.exit(0 if all(a[k] == b[k] for k in ("acc", "acc_ci95", "upper", "iters")) else 1)' \
        "$tmp/full.json" "$tmp/resumed.json"
done

expect_rc 0 meta fewshot --help
check "the help lists --ways and --learner" grep -q -- '--learner' "$tmp/out"
check "the help explains meta feature learning" grep -q 'hyperrep' "$tmp/out"

# Usage errors, each named.
expect_rc 2 "${tiny[@]}" --ways 5
expect_rc 2 "${tiny[@]}" --train-classes 13 --class-split class
expect_rc 2 "${tiny[@]}" --train-classes 6
check "a count the base split cannot take is named" grep -q 'multiple of 4' "$tmp/err"
expect_rc 2 "${tiny[@]}" --learner nope
expect_rc 2 "${tiny[@]}" --class-split nope
expect_rc 2 "${tiny[@]}" --learner hyperrep --hidden 0
check "hyperrep without a body is named" grep -q 'hidden' "$tmp/err"
expect_rc 2 "${tiny[@]}" --learner hyperrep --head-l2 0
expect_rc 2 "${tiny[@]}" --learner pretrain --resume "$tmp/ck-maml.bin"
check "pretrain refuses --resume" grep -q 'does not resume' "$tmp/err"
expect_rc 2 "${tiny[@]}" --layers 9
expect_rc 2 "${tiny[@]}" --init warm
expect_rc 2 "${tiny[@]}" --plot "$tmp/x.svg"
expect_rc 2 meta fewshot --data "$tmp/nowhere" -q

# A class-per-folder PNG tree (--images): 4 classes of 8 gray 12x12 images, each class a bright
# band in another place plus noise, written with python3's zlib; read resized to 6x6, one
# rotation per class (4 classes) and with four (16 classes); a linear learner tells the bands
# apart after fine-tuning.
python3 - "$tmp/tree" <<'PY'
import os, struct, sys, zlib
root = sys.argv[1]
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
seed = 3
def noise():
    global seed
    seed = (1103515245 * seed + 12345) % (1 << 31)
    return seed % 40
for c, name in enumerate(["circle", "cross", "line", "square"]):
    os.makedirs(os.path.join(root, name))
    for k in range(8):
        rows = b"".join(b"\0" + bytes((200 if c * 3 <= j < c * 3 + 3 else 20) + noise()
                                      for j in range(12)) for _ in range(12))
        ihdr = struct.pack(">IIBBBBB", 12, 12, 8, 0, 0, 0, 0)
        png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
               chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
        open(os.path.join(root, name, "%02d.png" % k), "wb").write(png)
open(os.path.join(root, "line", "notes.txt"), "w").write("not an image\n")
PY
tree=(meta fewshot --images "$tmp/tree" --image-size 6 --ways 2 --shots 1 --queries 2
      --meta-batch 2 --hidden 0 --outer 5 --eval-episodes 20 --threads 1 -q --json)
expect_rc 0 "${tree[@]}" --rotations 1 --train-classes 2 --class-split class
cp "$tmp/out" "$tmp/tree1.json"
check "--images --rotations 1: 4 classes of 6x6 images, told apart after fine-tuning" json_ok \
    "$tmp/tree1.json" 'd["rotations"] == 1 and d["classes"] == 4 and d["side"] == 6 and '\
'd["train_classes"] == 2 and d["test_classes"] == 2 and d["acc"] > 0.9'
expect_rc 0 "${tree[@]}" --train-classes 8
cp "$tmp/out" "$tmp/tree4.json"
check "--images with 4 rotations: 16 classes split 8 / 8 by base class" json_ok \
    "$tmp/tree4.json" 'd["rotations"] == 4 and d["classes"] == 16 and '\
'd["train_classes"] == 8 and d["test_classes"] == 8 and d["class_split"] == "base" and '\
'd["acc"] > 0.9'
expect_rc 2 "${tree[@]}" --rotations 2
check "--rotations 2 is named" grep -q 'rotations 2' "$tmp/err"
expect_rc 2 "${tree[@]}" --rotations 4 --train-classes 6
check "a count the 4-rotation base split cannot take is named" grep -q 'multiple of 4' "$tmp/err"
mkdir -p "$tmp/tree/empty"
expect_rc 2 "${tree[@]}" --train-classes 8
check "a class folder without PNGs is named" grep -q 'empty' "$tmp/err"
rmdir "$tmp/tree/empty"
printf 'not a png' >"$tmp/tree/line/99.png"
expect_rc 2 "${tree[@]}" --train-classes 8
check "an undecodable PNG is named" grep -q '99.png' "$tmp/err"
cli_finish test_meta_fewshot
