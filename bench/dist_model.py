#!/usr/bin/env python3
"""dist_model.py — projected time per outer iteration of a data-parallel hypergradient on R
ranks, from the collectives each method issues (counted on `mpirun -np 2 blo hyperclean`, see
docs/distributed.md) and a latency-bandwidth model of blo's deterministic all-reduce.

    python3 bench/dist_model.py [seconds per outer iteration of 1 process at n = 50000]

The default 1-process figure is the one measured by bench/run_dist_bench.sh (BENCHMARKS.md).
Every constant the tables depend on is set below.
"""
import math
import sys

ALPHA = 5e-6        # s, one message's latency on a 100 Gb/s network (RDMA: 2-5 us; TCP: ~20 us)
BW = 100e9 / 8      # bytes/s, 100 Gb/s
ES = 4              # bytes per element (f32)
SHORT = 4096        # blo: vectors of at most SHORT / R elements are all-gathered whole
T, K = 100, 10      # inner steps; cg / neumann / fixed_point iterations, trhg window

# Collectives per outer iteration: (model-sized P, x-sized n, scalar) as functions of T, K.
# Each model-sized event is one all-reduce per parameter tensor of y (2 for the linear model,
# 2 per layer for a ResNet); its bytes are those of the whole model.
METHODS = {
    "rhg":         (lambda T, K: 3 * T,     lambda T, K: T, lambda T, K: 2 * T + 1),
    "trhg":        (lambda T, K: T + 2 * K, lambda T, K: K, lambda T, K: T + K + 1),
    "rhg_ckpt":    (lambda T, K: 3 * T,     lambda T, K: T, lambda T, K: 2 * T),
    "cg":          (lambda T, K: T + K + 2, lambda T, K: 1, lambda T, K: T + 2),
    "neumann":     (lambda T, K: T + K + 2, lambda T, K: 1, lambda T, K: T + 2),
    "fixed_point": (lambda T, K: T + K + 2, lambda T, K: 1, lambda T, K: T + 2),
    "first_order": (lambda T, K: T + 1,     lambda T, K: 0, lambda T, K: T + 2),
    "darts":       (lambda T, K: T + 2,     lambda T, K: 2, lambda T, K: T + 6),
    "bda":         (lambda T, K: 4 * T + 1, lambda T, K: T, lambda T, K: 2 * T + 2),
    "iaptt":       (lambda T, K: T + 2,     lambda T, K: 1, lambda T, K: 2 * T + 3),
    "bome":        (lambda T, K: T + 2,     lambda T, K: 2, lambda T, K: T + 3),
    "soba":        (lambda T, K: 3,         lambda T, K: 1, lambda T, K: 2),
    "amm":         (lambda T, K: 4,         lambda T, K: 1, lambda T, K: 2),
}


def allreduce(m, R, tree=False):
    """Seconds for one all-reduce of m elements on R ranks (what each rank waits)."""
    if R == 1:
        return 0.0
    if m * R <= SHORT:  # all-gather of the whole vector (recursive doubling)
        return math.ceil(math.log2(R)) * ALPHA + (R - 1) * m * ES / BW
    steps = 2 * math.ceil(math.log2(R)) if tree else 2 * (R - 1)
    return steps * ALPHA + 2 * (R - 1) / R * m * ES / BW


def comm(method, P, tensors, n, R, tree=False):
    p, x, s = (f(T, K) for f in METHODS[method])
    per_tensor = P / tensors
    return p * tensors * allreduce(per_tensor, R, tree) + x * allreduce(n, R, tree) + s * allreduce(1, R, tree)


def bytes_per_iter(method, P, n, R):
    """Bytes each rank sends per outer iteration (long vectors; scalars left out)."""
    p, x, _ = (f(T, K) for f in METHODS[method])
    return 2 * (R - 1) / R * ES * (p * P + x * n)


def table(title, P, tensors, n, compute1, ranks):
    """compute1(method): seconds of one outer iteration's compute on one rank for all the data."""
    print(f"\n{title}: P = {P:,} parameters in {tensors} tensors, dim x = {n:,}, T = {T}, K = {K}")
    print(f"{'method':12s}" + "".join(f"{'R=' + str(R):>22s}" for R in ranks) + "   sent, R=2")
    for m in METHODS:
        row = f"{m:12s}"
        for R in ranks:
            c = compute1(m) / R
            a = comm(m, P, tensors, n, R)
            b = comm(m, P, tensors, n, R, tree=True)
            row += f"{c + a:10.3g}s {100 * a / (c + a):3.0f}% {100 * b / (c + b):3.0f}%"
        print(row + f"   {bytes_per_iter(m, P, n, 2) / 1e6:9.3g} MB")
    print("  (each cell: projected seconds per outer iteration; the collective's share of it with"
          " blo's all-to-all sum; the share with a 2 log2 R-step tree; last: MB each rank sends"
          " per outer iteration on 2 ranks, scalars left out)")


def main():
    s50k = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    ranks = (1, 8, 64, 512)
    events = lambda m: sum(f(T, K) for f in METHODS[m][:2])
    # Hyper-cleaning at 60 000 examples: compute grows with the rows; each method's compute is
    # taken proportional to its passes over the data (model- and x-sized events), cg measured.
    per_pass = s50k * 60000 / 50000 / events("cg")
    table("hyper-cleaning, 60 000 examples, linear model (784 x 10)", 7850, 2, 60000,
          lambda m: per_pass * events(m), ranks)
    # A ResNet-sized lower level: ResNet-18 (11.2 M parameters, 62 tensors), a global batch
    # of 1024 images per inner step split over the ranks, 1.7 GFLOP per image for a gradient
    # (forward + backward), 20 TFLOP/s per rank; per-example weights x on 50 000 images.
    grad_pass = 1024 * 1.7e9 / 20e12
    table("ResNet-18 lower level, batch 1024 per inner step, 20 TFLOP/s per rank", 11_200_000, 62,
          50000, lambda m: grad_pass * events(m), ranks)


if __name__ == "__main__":
    main()
