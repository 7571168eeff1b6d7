"""bench_graph_torch.py — the PyTorch peer of bench_graph.c: the same GCN (Kipf & Welling: two
layers, no biases, 16 hidden, dropout 0.5 on the sparse features' values and on the hidden
layer, L2 5e-4 on W1, Adam 0.01) and the same LDS outer iteration (T = 5 differentiable Adam
steps on graphs sampled from θ with the straight-through estimator, the reverse pass through
all of them, SGD lr 1 on θ, clipping to [0, 1] and symmetrisation), timed the same way.

    /usr/bin/python3 bench/bench_graph_torch.py [--data DIR] [--epochs N] [--outer K]
                                               [--threads N] [--clock wall|cpu]

Prints gcn_epoch_ms, lds_outer_s (medians) and lds_peak_mib (the process's peak RSS growth
over the LDS iterations, from getrusage)."""
import argparse, os, resource, statistics, time
import numpy as np
import torch

ap = argparse.ArgumentParser()
ap.add_argument("--data", default="data/planetoid/cora")
ap.add_argument("--epochs", type=int, default=50)
ap.add_argument("--outer", type=int, default=5)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--clock", default="wall", choices=["wall", "cpu"])
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
clock = time.thread_time if a.clock == "cpu" else time.perf_counter

# The three-part layout (data/planetoid/README.md).
rows, cols, vals, labels = [], [], [], []
for i, line in enumerate(open(os.path.join(a.data, "features.libsvm"))):
    t = line.split()
    labels.append(int(t[0]))
    for kv in t[1:]:
        k, v = kv.split(":")
        rows.append(i); cols.append(int(k) - 1); vals.append(float(v))
N, F = len(labels), max(cols) + 1
C = max(labels) + 1
vals = np.array(vals)
rs = np.bincount(rows, weights=vals, minlength=N)
vals = vals / np.where(rs[rows] != 0, rs[rows], 1)
Xi = torch.tensor([rows, cols])
Xv = torch.tensor(vals, dtype=torch.float32)
E = np.loadtxt(os.path.join(a.data, "edges.txt"), dtype=np.int64).reshape(-1, 2)
split = {s: torch.tensor(np.loadtxt(os.path.join(a.data, s + ".txt"), dtype=np.int64))
         for s in ("train", "val", "test")}
y = torch.tensor(labels)
H, p, wd = 16, 0.5, 5e-4

def glorot(r, c):
    b = (6.0 / (r + c)) ** 0.5
    return (torch.rand(r, c) * 2 - 1) * b

def xdrop(train):
    v = torch.nn.functional.dropout(Xv, p, train)
    return torch.sparse_coo_tensor(Xi, v, (N, F))

def logits(prop, W1, W2, train):
    h = torch.relu(prop(torch.sparse.mm(xdrop(train), W1)))
    return prop(torch.nn.functional.dropout(h, p, train) @ W2)

def loss(z, idx, W1):
    l = torch.nn.functional.cross_entropy(z[idx], y[idx])
    return l + 0.5 * wd * (W1 * W1).sum() if W1 is not None else l

# Â of the given graph, sparse.
ii = np.concatenate([E[:, 0], E[:, 1], np.arange(N)])
jj = np.concatenate([E[:, 1], E[:, 0], np.arange(N)])
deg = np.bincount(ii, minlength=N).astype(np.float64)
Ahat = torch.sparse_coo_tensor(torch.tensor(np.stack([ii, jj])),
                               torch.tensor(1 / np.sqrt(deg[ii] * deg[jj]), dtype=torch.float32),
                               (N, N)).coalesce()

W1 = glorot(F, H).requires_grad_()
W2 = glorot(H, C).requires_grad_()
opt = torch.optim.Adam([W1, W2], lr=0.01)
ts = []
for e in range(a.epochs):
    t0 = clock()
    opt.zero_grad()
    l = loss(logits(lambda h: torch.sparse.mm(Ahat, h), W1, W2, True), split["train"], W1)
    l.backward()
    opt.step()
    ts.append(clock() - t0)
print("gcn_epoch_ms %.3f" % (1e3 * statistics.median(ts)))

# LDS: θ dense, 1 on the edges, 0 elsewhere.
theta = torch.zeros(N, N)
theta[E[:, 0], E[:, 1]] = 1
theta[E[:, 1], E[:, 0]] = 1
offdiag = 1 - torch.eye(N)

def sample(th):
    u = torch.triu(torch.rand(N, N), 1)
    u = u + u.t()
    S = 0.5 * (th + th.t()) * offdiag
    M = (u < S).float() * offdiag
    return S + (M - S).detach()

def dense_prop(A):
    d = (A.sum(1) + 1).rsqrt()
    def prop(h):
        return d[:, None] * (A @ (d[:, None] * h) + d[:, None] * h)
    return prop

w = [glorot(F, H), glorot(H, C)]
T, lr, b1, b2, eps = 5, 0.01, 0.9, 0.999, 1e-8
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ts = []
for k in range(a.outer + 1):
    t0 = clock()
    th = theta.clone().requires_grad_()
    ws = [v.clone().requires_grad_() for v in w]
    m = [torch.zeros_like(v) for v in ws]
    s = [torch.zeros_like(v) for v in ws]
    for t in range(1, T + 1):
        l = loss(logits(dense_prop(sample(th)), ws[0], ws[1], True), split["train"], ws[0])
        g = torch.autograd.grad(l, ws, create_graph=True)
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        s = [b2 * si + (1 - b2) * gi * gi for si, gi in zip(s, g)]
        ws = [v - lr * (mi / (1 - b1 ** t)) / ((si / (1 - b2 ** t)).sqrt() + eps)
              for v, mi, si in zip(ws, m, s)]
    Fv = loss(logits(dense_prop(sample(th)), ws[0], ws[1], False), split["val"], None)
    hg, = torch.autograd.grad(Fv, th)
    with torch.no_grad():
        theta = (theta - 1.0 * hg).clamp(0, 1)
        theta = 0.5 * (theta + theta.t()) * offdiag
        w = [v.detach() for v in ws]
    if k > 0:
        ts.append(clock() - t0)
rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("lds_outer_s %.4f" % statistics.median(ts))
print("lds_peak_mib %.1f" % ((rss1 - rss0) / 1024))
