#!/usr/bin/env python3
"""bench_hypergrad_torch.py — the PyTorch side of bench_hypergrad.c: the same data
hyper-cleaning hypergradient (linear softmax model, per-example weights x, inner SGD from
W = 0, b = 0, float32), the same methods written the usual PyTorch way, timed and measured
the same way. bench/run_hypergrad_bench.sh runs both and prints the comparison.

    bench_hypergrad_torch.py --data FILE --method rhg|trhg|cg [--T 100] [--K 10] [--lr 0.03]
                             [--threads 1] [--repeats 5] [--hg-out FILE]

Methods (as blo computes them, see src/hypergrad/):
  rhg   reverse mode through all T steps: torch.autograd.grad(create_graph=True) per step
  trhg  the first T-K steps under no_grad, reverse mode through the last K
  cg    T steps under no_grad; at y_T, K iterations of CG on ∇²_yy f v = ∂F/∂y with
        Hessian-vector products by double backward (stop when ‖r‖ ≤ 1e-10), then
        dF/dx = ∂F/∂x − ∇_x⟨∇_y f, v⟩

Prints one line "RESULT lib=torch method=... median_s=... cpu_median_s=... rss_delta_mib=..."
(wall and process CPU time per hypergradient), where
rss_delta_mib is ru_maxrss after the run minus ru_maxrss right after the data are loaded
(torch imported, tensors resident), as bench_hypergrad.c does. Exit 3 for a method this
script does not implement.
"""
import argparse
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as tf

MAGIC = b"BLOHCB1\n"


def maxrss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def load(path):
    with open(path, "rb") as f:
        if f.read(8) != MAGIC:
            sys.exit(f"{path}: not a data file written by bench_hypergrad --write-data")
        n, nv, d, C = np.frombuffer(f.read(32), dtype="<i8")
        X = np.fromfile(f, dtype="<f4", count=n * d).reshape(n, d)
        y = np.fromfile(f, dtype="<i8", count=n)
        Xv = np.fromfile(f, dtype="<f4", count=nv * d).reshape(nv, d)
        yv = np.fromfile(f, dtype="<i8", count=nv)
    if yv.shape[0] != nv:
        sys.exit(f"{path}: truncated")
    return (torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(Xv), torch.from_numpy(yv),
            int(C))


class Problem:
    def __init__(self, X, y, Xv, yv, C, lr):
        self.X, self.y, self.Xv, self.yv, self.C, self.lr = X, y, Xv, yv, C, lr

    def lower(self, x, W, b):
        per_example = tf.cross_entropy(self.X @ W + b, self.y, reduction="none")
        return (torch.sigmoid(x) * per_example).mean()

    def upper(self, W, b):
        return tf.cross_entropy(self.Xv @ W + b, self.yv)

    def start(self):
        d = self.X.shape[1]
        return torch.zeros(d, self.C), torch.zeros(self.C)

    def unroll(self, x, W, b, steps, create):
        """steps inner SGD steps; create=True records them for reverse mode."""
        for _ in range(steps):
            if create:
                gW, gb = torch.autograd.grad(self.lower(x, W, b), (W, b), create_graph=True)
                W, b = W - self.lr * gW, b - self.lr * gb
            else:
                W, b = W.detach().requires_grad_(True), b.detach().requires_grad_(True)
                with torch.enable_grad():
                    gW, gb = torch.autograd.grad(self.lower(x.detach(), W, b), (W, b))
                W, b = (W - self.lr * gW).detach(), (b - self.lr * gb).detach()
        return W, b


def rhg(p, x, T, K):
    W, b = p.start()
    W.requires_grad_(True)
    b.requires_grad_(True)
    W, b = p.unroll(x, W, b, T, True)
    F = p.upper(W, b)
    (hx,) = torch.autograd.grad(F, x)
    return F.item(), hx


def trhg(p, x, T, K):
    K = min(K, T)
    W, b = p.unroll(x, *p.start(), T - K, False)
    W.requires_grad_(True)
    b.requires_grad_(True)
    W, b = p.unroll(x, W, b, K, True)
    F = p.upper(W, b)
    (hx,) = torch.autograd.grad(F, x)
    return F.item(), hx


def cg(p, x, T, K, tol=1e-10):
    W, b = p.unroll(x, *p.start(), T, False)
    W.requires_grad_(True)
    b.requires_grad_(True)
    F = p.upper(W, b)
    gy = torch.autograd.grad(F, (W, b))  # F does not depend on x: ∂F/∂x = 0
    g = torch.autograd.grad(p.lower(x, W, b), (W, b), create_graph=True)
    v = [torch.zeros_like(t) for t in gy]
    r = [t.clone() for t in gy]
    d = [t.clone() for t in gy]
    rr = sum((t * t).sum() for t in r).item()
    for _ in range(K):
        if rr ** 0.5 <= tol:
            break
        hd = torch.autograd.grad(g, (W, b), d, retain_graph=True)
        a = rr / sum((u * w).sum() for u, w in zip(d, hd)).item()
        for vi, di, ri, hi in zip(v, d, r, hd):
            vi.add_(di, alpha=a)
            ri.add_(hi, alpha=-a)
        rr_new = sum((t * t).sum() for t in r).item()
        for di, ri in zip(d, r):
            di.mul_(rr_new / rr).add_(ri)
        rr = rr_new
    (mixed,) = torch.autograd.grad(g, x, v)
    return F.item(), -mixed


METHODS = {"rhg": rhg, "trhg": trhg, "cg": cg}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--method", required=True)
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--K", type=int, default=10)
    ap.add_argument("--lr", type=float, default=0.03)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--hg-out")
    a = ap.parse_args()
    if a.method not in METHODS:
        print(f"bench_hypergrad_torch: no PyTorch version of '{a.method}'", file=sys.stderr)
        return 3
    torch.set_num_threads(a.threads)
    X, y, Xv, yv, C = load(a.data)
    p = Problem(X, y, Xv, yv, C, a.lr)
    rss_base = maxrss_mib()

    fn = METHODS[a.method]
    times, cpu = [], []
    for _ in range(a.repeats + 1):  # the first is the warm-up
        x = torch.zeros(X.shape[0], requires_grad=True)
        t0, c0 = time.perf_counter(), time.process_time()
        F, hx = fn(p, x, a.T, a.K)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        del x
    rss = maxrss_mib()
    timed = sorted(times[1:])
    print(f"RESULT lib=torch method={a.method} T={a.T} K={a.K} threads={a.threads} "
          f"repeats={a.repeats} median_s={statistics.median(timed):.4f} min_s={timed[0]:.4f} "
          f"max_s={timed[-1]:.4f} warmup_s={times[0]:.4f} "
          f"cpu_median_s={statistics.median(cpu[1:]):.4f} rss_base_mib={rss_base:.1f} "
          f"rss_peak_mib={rss:.1f} rss_delta_mib={rss - rss_base:.1f} F={F:.6f} "
          f"hg_norm={hx.double().norm().item():.6g}")
    if a.hg_out:
        hx.double().numpy().tofile(a.hg_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
