#!/usr/bin/env bash
# run_images_bench.sh — makes synthetic image data in a scratch folder and times blo's loaders
# (bench_images) against Pillow / NumPy (bench_images_pil.py), the two run alternately
# `rounds` times; each line is one program's median over its repeats.
#
#   bench/run_images_bench.sh [--rounds K] [--build DIR]
#
# Data: a class-per-folder tree of 50 classes x 20 PNGs of 105 x 105 1-bit gray (Omniglot's
# size and depth; random strokes), loaded at side 28, 1 channel; a tree of 20 classes x 20
# RGB PNGs of 84 x 84 (miniImageNet's usual size), loaded at side 32, 3 channels; a CIFAR-10
# train split of 5 x 10000 random records (150 MB), NumPy run with and without its transparent
# huge pages (blo's allocator asks for none; on a VM where page faults are costly, first
# touching the 600 MB of floats dominates the CIFAR-10 load).
#   PYTHON  the interpreter with Pillow and NumPy (default /usr/bin/python3)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
rounds=3
build="$root/build"
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds="${2:?--rounds needs a number}"; shift 2 ;;
    --build) build="${2:?--build needs a folder}"; shift 2 ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_images_bench.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
python="${PYTHON:-/usr/bin/python3}"
exe="$build/bench_images"
[ -x "$exe" ] || { echo "run_images_bench.sh: $exe not found; build first" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" - "$tmp" <<'PY'
import os, sys
import numpy as np
from PIL import Image, ImageDraw
out = sys.argv[1]
rng = np.random.default_rng(0)
for c in range(50):
    d = os.path.join(out, "omni", "char%02d" % c)
    os.makedirs(d)
    for i in range(20):
        im = Image.new("1", (105, 105), 1)
        dr = ImageDraw.Draw(im)
        for _ in range(4):
            dr.line([tuple(rng.integers(5, 100, 2)) for _ in range(3)], fill=0, width=3)
        im.save(os.path.join(d, "%02d.png" % i))
for c in range(20):
    d = os.path.join(out, "mini", "n%08d" % c)
    os.makedirs(d)
    for i in range(20):
        a = rng.integers(0, 256, (84, 84, 3), dtype=np.uint8)
        Image.fromarray(a).save(os.path.join(d, "%02d.png" % i))
os.makedirs(os.path.join(out, "cifar"))
for k in range(1, 6):
    rec = rng.integers(0, 256, (10000, 3073), dtype=np.uint8)
    rec[:, 0] %= 10
    rec.tofile(os.path.join(out, "cifar", "data_batch_%d.bin" % k))
PY
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
for r in $(seq "$rounds"); do
    echo "# round $r"
    "$exe" folder "$tmp/omni" 28 1 5
    "$python" "$here/bench_images_pil.py" folder "$tmp/omni" 28 1 5
    "$exe" folder "$tmp/mini" 32 3 5
    "$python" "$here/bench_images_pil.py" folder "$tmp/mini" 32 3 5
    "$exe" cifar "$tmp/cifar" train 3
    "$python" "$here/bench_images_pil.py" cifar "$tmp/cifar" train 3
    NUMPY_MADVISE_HUGEPAGE=0 "$python" "$here/bench_images_pil.py" cifar "$tmp/cifar" train 3
done
