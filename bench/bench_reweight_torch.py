#!/usr/bin/python3
"""bench_reweight_torch.py — the online step of `blo reweight` in PyTorch, for its time per epoch.

    /usr/bin/python3 bench/bench_reweight_torch.py [--weights network|per-example|none]
        [--epochs E] [--threads N] [--data DIR] [--seed S]

The same data and step as `blo reweight` with its defaults: Fashion-MNIST's training split
minus 1000 meta examples (59 000), 40 % of the labels redrawn uniformly, batches of 100 and
meta batches of 100; classifier 784-300-10 (ReLU), real step SGD lr 0.02 momentum 0.9 weight
decay 5e-4; weighting network 1-100-1 (ReLU, sigmoid) by Adam lr 1e-3 weight decay 1e-4.
Per batch (network): virtual step w^ = w - lr grad_w f (create_graph), meta CE on w^, its
gradient with respect to phi, Adam step, real step with the new phi; per-example: learning to
reweight's weights; none: the real step on the mean CE. After each epoch the test accuracy on
the t10k split, as blo does (inside the timed epoch). The split and noise draws differ from
blo's (numpy's generator): the times compare, the accuracies only roughly.
Prints one JSON object: seconds_per_epoch (wall) and cpu_seconds_per_epoch (the process's CPU
time, which a loaded machine does not stretch), medians over epochs; test_acc (last epoch).
"""
import argparse
import gzip
import json
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F


def load(d, split):
    def read(name):
        p = os.path.join(d, name)
        return gzip.open(p + ".gz").read() if os.path.exists(p + ".gz") else open(p, "rb").read()
    x = np.frombuffer(read(f"{split}-images-idx3-ubyte"), np.uint8, offset=16)
    y = np.frombuffer(read(f"{split}-labels-idx1-ubyte"), np.uint8, offset=8)
    return torch.tensor(x.reshape(len(y), -1) / 255.0, dtype=torch.float32), torch.tensor(y.astype(np.int64))


def linear_init(fan_in, fan_out):
    b = 1 / fan_in ** 0.5
    return [torch.empty(fan_in, fan_out).uniform_(-b, b).requires_grad_(),
            torch.empty(fan_out).uniform_(-b, b).requires_grad_()]


def mlp(x, p):
    return torch.relu(x @ p[0] + p[1]) @ p[2] + p[3]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="network", choices=["network", "per-example", "none"])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default=os.environ.get("BLO_DATA", "/usr/share/datasets/fashion-mnist"))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    X, y = load(a.data, "train")
    Xte, yte = load(a.data, "t10k")
    perm = torch.tensor(rng.permutation(len(y)))
    Xm, ym = X[perm[:1000]], y[perm[:1000]]
    Xt, yt = X[perm[1000:]], y[perm[1000:]].clone()
    k = round(0.4 * len(yt))
    yt[:k] = torch.tensor(rng.integers(0, 10, k))
    w = linear_init(784, 300) + linear_init(300, 10)
    phi = linear_init(1, 100) + linear_init(100, 1)
    opt = torch.optim.SGD(w, lr=0.02, momentum=0.9, weight_decay=5e-4)
    meta_opt = torch.optim.Adam(phi, lr=1e-3, weight_decay=1e-4)
    lr, B, n = 0.02, 100, len(yt)
    times, cpu, acc = [], [], float("nan")
    for _ in range(a.epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        order = torch.randperm(n)
        for b in range(n // B):
            idx = order[b * B:(b + 1) * B]
            midx = torch.randint(0, 1000, (B,))
            xb, yb = Xt[idx], yt[idx]
            l = F.cross_entropy(mlp(xb, w), yb, reduction="none")
            if a.weights == "network":
                v = torch.sigmoid(mlp(l.detach().unsqueeze(1), phi)).squeeze(1)
                f = (v * l).sum() / v.sum()
                g = torch.autograd.grad(f, w, create_graph=True)
                meta = F.cross_entropy(mlp(Xm[midx], [p - lr * gp for p, gp in zip(w, g)]), ym[midx])
                meta_opt.zero_grad()
                phi_g = torch.autograd.grad(meta, phi)
                for p, gp in zip(phi, phi_g):
                    p.grad = gp
                meta_opt.step()
                with torch.no_grad():
                    v = torch.sigmoid(mlp(l.detach().unsqueeze(1), phi)).squeeze(1)
                f = (v * l).sum() / v.sum()
            elif a.weights == "per-example":
                eps = torch.zeros(B, requires_grad=True)
                g = torch.autograd.grad((eps * l).sum(), w, create_graph=True)
                meta = F.cross_entropy(mlp(Xm[midx], [p - lr * gp for p, gp in zip(w, g)]), ym[midx])
                ge = torch.clamp(-torch.autograd.grad(meta, eps)[0], min=0)
                s = ge.sum()
                f = ((ge / s if s > 0 else ge).detach() * l).sum()
            else:
                f = l.mean()
            opt.zero_grad()
            f.backward()
            opt.step()
        with torch.no_grad():
            acc = (mlp(Xte, w).argmax(1) == yte).float().mean().item()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(json.dumps({"impl": "torch", "weights": a.weights, "threads": a.threads,
                      "seconds_per_epoch": statistics.median(times),
                      "cpu_seconds_per_epoch": statistics.median(cpu), "test_acc": acc}))


if __name__ == "__main__":
    main()
