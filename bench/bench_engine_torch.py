#!/usr/bin/python3
"""bench_engine_torch.py — the work of bench/bench_engine.c, done with PyTorch, same table.

    /usr/bin/python3 bench/bench_engine_torch.py [--threads N] [--quick]

  --threads N  torch.set_num_threads(N) (default 1); intra-op threads, as blo's --threads
  --quick      fewer repeats

Rows (median over repeats, wall clock from time.perf_counter):
  add_4_f32    torch.add of two 4-element float32 tensors under no_grad, ns per op; this
               includes the Python call, which is how torch is used
  mlp_fwd_bwd  MLP 784-300-10 (tanh), batch 128, float32, F.cross_entropy (mean): forward and
               torch.autograd.grad of all four parameters, ms per step
  mlp_hvp      forward + grad(create_graph=True) + grad of <g, v>: the Hessian-vector product of
               the loss with respect to all parameters, ms
  matmul_1024  torch.mm of two 1024x1024 float32 matrices, ms (and GFLOP/s)

Output: '#' lines are notes; the table has columns  metric median unit repeats ref note.
"""
import argparse
import os
import time

import torch
import torch.nn.functional as F


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def row(metric, value, unit, repeats, note=""):
    print(f"{metric:<20} {value:12.4f} {unit:<6} {repeats:7d}  {'-':<12} {note}")


def bench_add(repeats):
    iters = 50000
    a = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float32)
    b = torch.tensor([0.5, 0.25, 0.125, 0.0625], dtype=torch.float32)
    add = torch.add
    times = []
    with torch.no_grad():
        for r in range(-2, repeats):
            t0 = time.perf_counter()
            for _ in range(iters):
                add(a, b)
            dt = time.perf_counter() - t0
            if r >= 0:
                times.append(dt / iters * 1e9)
    row("add_4_f32", median(times), "ns/op", repeats, "torch.add, no_grad, from Python")


def bench_mlp(repeats):
    n, d_in, d_h, d_out = 128, 784, 300, 10
    g = torch.Generator().manual_seed(7)
    x = torch.rand(n, d_in, generator=g)
    labels = torch.randint(0, d_out, (n,), generator=g)
    params, vs = [], []
    for shape, fan_in in [((d_h, d_in), d_in), ((d_h,), d_in), ((d_out, d_h), d_h),
                          ((d_out,), d_h)]:
        bound = fan_in ** -0.5
        params.append((torch.rand(shape, generator=g) * 2 - 1).mul_(bound).requires_grad_(True))
        vs.append(torch.rand(shape, generator=g) * 2 - 1)
    w1, b1, w2, b2 = params

    def loss_fn():
        h = torch.tanh(F.linear(x, w1, b1))
        return F.cross_entropy(F.linear(h, w2, b2), labels)

    def fwd_bwd():
        return torch.autograd.grad(loss_fn(), params)

    def hvp():
        gs = torch.autograd.grad(loss_fn(), params, create_graph=True)
        dot = sum((gi * vi).sum() for gi, vi in zip(gs, vs))
        return torch.autograd.grad(dot, params)

    for name, fn, note in [("mlp_fwd_bwd", fwd_bwd, "F.cross_entropy, autograd.grad"),
                           ("mlp_hvp", hvp, "forward + grad(create_graph) + grad")]:
        times = []
        for r in range(-5, repeats):
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            if r >= 0:
                times.append(dt * 1e3)
        row(name, median(times), "ms", repeats, note)


def bench_matmul(repeats):
    n = 1024
    g = torch.Generator().manual_seed(11)
    a = torch.rand(n, n, generator=g) * 2 - 1
    b = torch.rand(n, n, generator=g) * 2 - 1
    times = []
    with torch.no_grad():
        for r in range(-2, repeats):
            t0 = time.perf_counter()
            torch.mm(a, b)
            dt = time.perf_counter() - t0
            if r >= 0:
                times.append(dt)
    t = median(times)
    row("matmul_1024", t * 1e3, "ms", repeats, f"{2 * n ** 3 / t * 1e-9:.1f} GFLOP/s (torch.mm)")


def blas_libraries():
    """The BLAS shared objects mapped into this process (after a first matmul)."""
    torch.mm(torch.ones(2, 2), torch.ones(2, 2))
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "blas" in os.path.basename(path) and path.startswith("/"):
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(libs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.threads < 1:
        ap.error("--threads must be at least 1")
    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float32)
    print(f"# torch {torch.__version__} engine benchmark: threads={torch.get_num_threads()} "
          "(median over repeats)")
    print(f"# BLAS libraries loaded: {', '.join(blas_libraries()) or 'unknown'}")
    print(f"{'metric':<20} {'median':>12} {'unit':<6} {'repeats':>7}  {'ref':<12} note")
    bench_add(5 if args.quick else 31)
    bench_mlp(5 if args.quick else 51)
    bench_matmul(3 if args.quick else 15)


if __name__ == "__main__":
    main()
