#!/usr/bin/env python3
"""Writes tinymnist/: an MNIST-layout data set small enough for end-to-end CLI tests.

120 images of 8x8 pixels in 3 classes; each class lights a different band of rows, plus
deterministic noise, so a linear classifier separates them well. Deterministic (no RNG
library): the noise comes from a linear congruential sequence. Run from tests/data.
"""
import gzip
import struct


def lcg(seed):
    while True:
        seed = (1103515245 * seed + 12345) % (1 << 31)
        yield seed


def main():
    n, h, w = 120, 8, 8
    rnd = lcg(7)
    images, labels = bytearray(), bytearray()
    for i in range(n):
        c = i % 3
        labels.append(c)
        for r in range(h):
            for col in range(w):
                v = 200 if r // 3 == c else 20
                v += next(rnd) % 60
                images.append(min(v, 255))
    head_i = bytes([0, 0, 8, 3]) + struct.pack(">III", n, h, w)
    head_l = bytes([0, 0, 8, 1]) + struct.pack(">I", n)
    with gzip.GzipFile("tinymnist/train-images-idx3-ubyte.gz", "wb", mtime=0) as f:
        f.write(head_i + bytes(images))
    with open("tinymnist/train-labels-idx1-ubyte", "wb") as f:
        f.write(head_l + bytes(labels))


if __name__ == "__main__":
    main()
