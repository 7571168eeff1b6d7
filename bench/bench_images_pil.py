#!/usr/bin/env python3
"""The work of bench_images.c with Pillow and NumPy, for comparison.

folder DIR SIDE CH REPEATS: every PNG of the class-per-folder tree (sorted classes and names)
opened with Pillow, converted to L (CH = 1) or RGB (CH = 3), resized to SIDE x SIDE with
Image.BOX, stacked into a float32 array scaled to [0, 1] in channel-major order.
cifar DIR SPLIT REPEATS: the split's batches read with NumPy, labels split off, pixels scaled
to float32 [0, 1].
Prints the median wall time of REPEATS loads after one untimed load.

NumPy asks the kernel for transparent huge pages on large arrays (madvise), which makes the
first touch of a 600 MB array far cheaper on machines where page faults are costly; blo's
allocator does not. NUMPY_MADVISE_HUGEPAGE=0 turns that off for a like-for-like comparison
(the line then says so).
"""
import os
import statistics
import sys
import time

import numpy as np
from PIL import Image


def load_folder(root, side, ch):
    xs, ys = [], []
    for c, cls in enumerate(sorted(d for d in os.listdir(root) if not d.startswith("."))):
        folder = os.path.join(root, cls)
        for name in sorted(os.listdir(folder)):
            if name.startswith(".") or not name.lower().endswith(".png"):
                continue
            im = Image.open(os.path.join(folder, name)).convert("L" if ch == 1 else "RGB")
            if side:
                im = im.resize((side, side), Image.BOX)
            a = np.asarray(im, dtype=np.float32) / 255.0
            xs.append(a.reshape(1, side, side) if ch == 1 else a.transpose(2, 0, 1))
            ys.append(c)
    return np.stack(xs), np.array(ys)


def load_cifar(root, split):
    files = ["data_batch_%d.bin" % k for k in range(1, 6)] if split == "train" else ["test_batch.bin"]
    raw = np.concatenate([np.fromfile(os.path.join(root, f), dtype=np.uint8) for f in files])
    rec = raw.reshape(-1, 3073)
    return rec[:, 1:].astype(np.float32) / 255.0, rec[:, 0].astype(np.int64)


def main():
    kind = sys.argv[1]
    repeats = int(sys.argv[-1])
    if kind == "folder":
        run = lambda: load_folder(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        run = lambda: load_cifar(sys.argv[2], sys.argv[3])
    n = len(run()[1])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    huge = "" if os.environ.get("NUMPY_MADVISE_HUGEPAGE", "1") != "0" else ", no huge pages"
    print("%-8s %8d images  median %9.4f s  %10.0f images/s  (%d repeats, Pillow/NumPy%s)"
          % (kind, n, med, n / med, repeats, huge))


if __name__ == "__main__":
    main()
