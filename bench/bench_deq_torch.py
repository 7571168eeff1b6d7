#!/usr/bin/python3
"""bench_deq_torch.py — one training epoch of `blo deq`'s layer in PyTorch, for the speed
comparison in BENCHMARKS.md ("Implicit models"): the same data, layer, solver and gradient as

    blo deq --param weight --act relu --solver picard --max-iter K --tol 0 \
            --backward implicit --back-max-iter K --back-tol 0 --epochs 1

  z* = relu(z* Wᵀ + x Uᵀ + b), W = s V / ‖V‖_F, plain iterations from z = 0 without a graph,
  each measuring its residual ‖Φ(z) − z‖ and stopping at tol ‖relu(x Uᵀ + b)‖ or after K (blo's
  rule; with tol 0, the default, every solve runs K); the head's cross-entropy at z* = Φ(z*)
  recorded once; the backward hook solves u = J_Φᵀ u + ∂L/∂z* the same way by autograd VJPs
  (the way TorchDEQ and the DEQ authors' code write it); minibatch Adam; then the test
  accuracy, as blo's epoch does.

Prints one JSON line: the epoch's wall and CPU seconds (training + test accuracy), the test
accuracy.

  bench_deq_torch.py --data DIR [--threads N] [--n-train N] [--hidden D] [--iters K]
                     [--batch B] [--lr LR] [--scale S] [--tol T] [--seed S]
"""
import argparse
import gzip
import json
import os
import struct
import time

import numpy as np
import torch


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(folder, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    raise SystemExit("bench_deq_torch.py: no %s[.gz] in %s" % (stem, folder))


def load(folder, split, n):
    x = read_idx(find(folder, split + "-images-idx3-ubyte"))
    y = read_idx(find(folder, split + "-labels-idx1-ubyte"))
    n = n if n > 0 else len(y)
    x = torch.tensor(x[:n].reshape(n, -1), dtype=torch.float32) / 255.0
    return x, torch.tensor(y[:n].astype(np.int64))


class DEQ(torch.nn.Module):
    def __init__(self, p, d, classes, scale, iters, tol):
        super().__init__()
        self.V = torch.nn.Parameter(torch.randn(d, d) / d**0.5)
        self.U = torch.nn.Parameter(torch.randn(d, p) / p**0.5)
        self.b = torch.nn.Parameter(torch.zeros(d))
        self.head = torch.nn.Linear(d, classes)
        self.scale, self.iters, self.tol = scale, iters, tol

    def phi(self, z, W, inj):
        return torch.relu(z @ W.t() + inj)

    def forward(self, x):
        W = self.scale * self.V / self.V.norm()
        inj = x @ self.U.t() + self.b
        with torch.no_grad():
            z = torch.zeros(x.shape[0], self.V.shape[0])
            stop = self.tol * torch.relu(inj).norm()
            for _ in range(self.iters):
                zn = self.phi(z, W, inj)
                res = (zn - z).norm()
                z = zn
                if res <= stop:
                    break
        if torch.is_grad_enabled():
            z = self.phi(z.detach(), W, inj)  # records ∂Φ/∂θ at z*
            z0 = z.detach().requires_grad_()
            f0 = self.phi(z0, W.detach(), inj.detach())
            iters, tol = self.iters, self.tol

            def hook(g):
                u, stop = g, tol * g.norm()
                for _ in range(iters):
                    un = torch.autograd.grad(f0, z0, u, retain_graph=True)[0] + g
                    res = (un - u).norm()
                    u = un
                    if res <= stop:
                        break
                return u

            z.register_hook(hook)
        return self.head(z)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("BLO_DATA", "/usr/share/datasets/fashion-mnist"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-train", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--scale", type=float, default=0.9)
    ap.add_argument("--tol", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xtr, ytr = load(a.data, "train", a.n_train)
    xte, yte = load(a.data, "t10k", 0)
    model = DEQ(xtr.shape[1], a.hidden, 10, a.scale, a.iters, a.tol)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    t0, c0 = time.perf_counter(), time.process_time()
    perm = torch.randperm(len(ytr))
    for s in range(0, len(ytr), a.batch):
        idx = perm[s : s + a.batch]
        loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        hits = sum((model(xte[s : s + 1000]).argmax(1) == yte[s : s + 1000]).sum().item()
                   for s in range(0, len(yte), 1000))
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"impl": "torch", "seconds": secs, "cpu_seconds": cpu, "test_acc": hits / len(yte),
                      "threads": a.threads, "iters": a.iters, "n_train": len(ytr)}))


if __name__ == "__main__":
    main()
