#!/usr/bin/python3
"""bench_conv_torch.py — the conv2d rows and the DARTS search step of bench/bench_conv.c in
PyTorch (CPU, float32).

    /usr/bin/python3 bench/bench_conv_torch.py [--threads N] [--quick] [--only conv|search]

  --threads N  torch.set_num_threads(N) (default 1)
  --quick      fewer repeats
  --only WHAT  only the conv rows or only the search step

Conv rows: y = F.conv2d(x, w) and torch.autograd.grad(y, (x, w), gy) for x, w, gy from
N(0, 1), at the shapes of bench_conv.c (same names, same order).

Search rows: the supernet of src/tasks/nas/space.c written with torch.nn.functional: stem
3x3 conv to 3C channels + BN; cells (reduction at cells//3 and 2*cells//3, channels doubled
there) with both inputs preprocessed (ReLU-conv1x1-BN, or a factorized reduce after a
reduction cell), every edge a mixed op sum_o softmax(alpha)_o o(h) over max/avg pool 3x3 + BN,
skip (factorized reduce at stride 2), sep_conv 3x3/5x5 ((ReLU, depthwise, pointwise, BN)
twice), dil_conv 3x3/5x5 (ReLU, depthwise dilation 2, pointwise, BN), none left out; BN on the
batch's statistics without affine parameters; global average pool and a linear classifier.
Parameters are made in the same order and with the same shapes and initialisation laws
(Kaiming normal convs, Kaiming uniform classifier, zero bias); alpha = 1e-3 N(0, 1). Default
search size: 1x14x14 images, 3 cells of 4 channels, 3 nodes, batch 32, 1000 synthetic
examples split in halves.

  search_step             the work blo's first_order solver step does: a weight step (train
                          minibatch, SGD momentum 0.9, lr 0.05, weight decay 3e-4), the val
                          minibatch loss differentiated with respect to alpha and the weights,
                          an Adam step on alpha (lr 3e-3, betas (0.5, 0.999)), and one untaped
                          train-minibatch loss (the solver's lower value for its record)
  search_step_alpha_only  the least work a DARTS first-order step needs: the val gradient with
                          respect to alpha only, no extra forward

Each figure is the median over timed runs after warm-up ones (time.perf_counter), ms; the
note adds the median CPU time of the main thread (time.thread_time).
Output: '#' lines are notes; the table has columns metric median unit repeats ref note.
"""
import argparse
import math
import time

import torch
import torch.nn.functional as F

# name, N, C, O, S, K, stride, pad, dil, groups — as CASES in bench_conv.c
CASES = [
    ("dense3x3_c16_14", 32, 16, 16, 14, 3, 1, 1, 1, 1),
    ("dense3x3_c16_14_s2", 32, 16, 16, 14, 3, 2, 1, 1, 1),
    ("dense3x3_c16_7", 32, 16, 16, 7, 3, 1, 1, 1, 1),
    ("dense3x3_c64_16", 32, 64, 64, 16, 3, 1, 1, 1, 1),
    ("dw3x3_c16_14", 32, 16, 16, 14, 3, 1, 1, 1, 16),
    ("dw3x3_c16_14_s2", 32, 16, 16, 14, 3, 2, 1, 1, 16),
    ("dw3x3_c16_7", 32, 16, 16, 7, 3, 1, 1, 1, 16),
    ("dw5x5_c16_14", 32, 16, 16, 14, 5, 1, 2, 1, 16),
    ("dil3x3_c16_14", 32, 16, 16, 14, 3, 1, 2, 2, 16),
    ("dw3x3_c4_14", 32, 4, 4, 14, 3, 1, 1, 1, 4),
    ("pw1x1_c16_14", 32, 16, 16, 14, 1, 1, 0, 1, 1),
    ("pw1x1_c16_14_s2", 32, 16, 16, 14, 1, 2, 0, 1, 1),
    ("pw1x1_c16_7", 32, 16, 16, 7, 1, 1, 0, 1, 1),
]

CELLS, CHANNELS, NODES, BATCH, SIZE, CLASSES, N_SEARCH = 3, 4, 3, 32, 14, 10, 1000
NUM_OPS = 8  # none, max_pool, avg_pool, skip, sep3, sep5, dil3, dil5


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def row(name, times, cpu, note):
    print("%-22s %12.4f %-6s %7d  %-22s cpu %.4f ms; %s" % (name, median(times), "ms", len(times),
                                                           name, median(cpu), note), flush=True)


def bench_conv(case, warmup, repeats, g):
    name, n, c, o, s, k, stride, pad, dil, groups = case
    x = torch.randn(n, c, s, s, generator=g).requires_grad_()
    w = torch.randn(o, c // groups, k, k, generator=g).requires_grad_()
    with torch.no_grad():
        y0 = F.conv2d(x, w, None, stride, pad, dil, groups)
    gy = torch.randn(y0.shape, generator=g)
    times, cpu = [], []
    for r in range(warmup + repeats):
        t0, c0 = time.perf_counter(), time.thread_time()
        y = F.conv2d(x, w, None, stride, pad, dil, groups)
        gx, gw = torch.autograd.grad(y, (x, w), gy)
        dt, dc = time.perf_counter() - t0, time.thread_time() - c0
        if r >= warmup:
            times.append(dt * 1e3)
            cpu.append(dc * 1e3)
    row(name, times, cpu, "x %s w %s stride %d pad %d dil %d" % (list(x.shape), list(w.shape), stride,
                                                            pad, dil))


# ---- The supernet --------------------------------------------------------------------------


class Params:
    """The parameter list walked in forward order: made on the first pass, read afterwards."""

    def __init__(self, g):
        self.g, self.list, self.next, self.build = g, [], 0, True

    def get(self, shape, kind):
        if not self.build:
            p = self.list[self.next]
            self.next += 1
            return p
        fan_in = math.prod(shape[1:])
        if kind == "conv":  # Kaiming normal
            t = torch.randn(shape, generator=self.g) * math.sqrt(2.0 / fan_in)
        elif kind == "linear":  # Kaiming uniform
            b = math.sqrt(6.0 / fan_in)
            t = (torch.rand(shape, generator=self.g) * 2 - 1) * b
        else:
            t = torch.zeros(shape)
        t.requires_grad_()
        self.list.append(t)
        return t


def conv(P, h, o, k, stride, pad, dil, groups):
    w = P.get((o, h.shape[1] // groups, k, k), "conv")
    return F.conv2d(h, w, None, stride, pad, dil, groups)


def bn(h):
    return F.batch_norm(h, None, None, None, None, True, 0.1, 1e-5)


def relu_conv_bn(P, h, o):
    return bn(conv(P, F.relu(h), o, 1, 1, 0, 1, 1))


def factorized_reduce(P, h, o):
    r = F.relu(h)
    a = conv(P, r, o // 2, 1, 2, 0, 1, 1)
    b = conv(P, r, o - o // 2, 1, 2, 1, 1, 1)
    oh, ow = a.shape[2], a.shape[3]
    b = b[:, :, 1:1 + oh, 1:1 + ow]
    return bn(torch.cat([a, b], 1))


def op_forward(P, op, h, stride):
    c = h.shape[1]
    if op == 1:
        return bn(F.max_pool2d(h, 3, stride, 1))
    if op == 2:
        return bn(F.avg_pool2d(h, 3, stride, 1, count_include_pad=False))
    if op == 3:
        return h if stride == 1 else factorized_reduce(P, h, c)
    if op in (4, 5):
        k = 3 if op == 4 else 5
        for rep in range(2):
            h = conv(P, F.relu(h), c, k, 1 if rep else stride, k // 2, 1, c)
            h = bn(conv(P, h, c, 1, 1, 0, 1, 1))
        return h
    k = 3 if op == 6 else 5
    h = conv(P, F.relu(h), c, k, stride, k - 1, 2, c)
    return bn(conv(P, h, c, 1, 1, 0, 1, 1))


def mixed(P, h, w, stride):
    s = None
    for o in range(1, NUM_OPS):
        t = op_forward(P, o, h, stride) * w[o]
        s = t if s is None else s + t
    return s


def cell(P, s0, s1, prev_red, red, c, W):
    st = [factorized_reduce(P, s0, c) if prev_red else relu_conv_bn(P, s0, c),
          relu_conv_bn(P, s1, c)]
    for i in range(NODES):
        s = None
        for j in range(2 + i):
            e = 2 * i + i * (i - 1) // 2 + j
            t = mixed(P, st[j], W[e], 2 if red and j < 2 else 1)
            s = t if s is None else s + t
        st.append(s)
    return torch.cat(st[2:], 1)


def net(P, an, ar, X):
    P.next = 0
    Wn, Wr = F.softmax(an, 1), F.softmax(ar, 1)
    c = CHANNELS
    s = bn(conv(P, X, 3 * c, 3, 1, 1, 1, 1))
    s0 = s1 = s
    prev_red = False
    for k in range(CELLS):
        red = k == CELLS // 3 or k == 2 * CELLS // 3
        if red:
            c *= 2
        out = cell(P, s0, s1, prev_red, red, c, Wr if red else Wn)
        s0, s1, prev_red = s1, out, red
    pooled = s1.mean((2, 3))
    w = P.get((CLASSES, pooled.shape[1]), "linear")
    b = P.get((CLASSES,), "zeros")
    return F.linear(pooled, w, b)


def bench_search(warmup, repeats, g):
    E = NODES * (NODES + 3) // 2
    P = Params(g)
    with torch.no_grad():
        net(P, torch.zeros(E, NUM_OPS), torch.zeros(E, NUM_OPS), torch.full((2, 1, SIZE, SIZE), 0.5))
    P.build = False
    weights = P.list
    X = torch.randn(N_SEARCH, 1, SIZE, SIZE, generator=g)
    labels = torch.arange(N_SEARCH) % CLASSES
    half = N_SEARCH // 2
    nparams = sum(p.numel() for p in weights)
    for variant in ("search_step", "search_step_alpha_only"):
        alphas = [(1e-3 * torch.randn(E, NUM_OPS, generator=g)).requires_grad_() for _ in range(2)]
        wcopy = [p.detach().clone().requires_grad_() for p in weights]
        P.list = wcopy
        wopt = torch.optim.SGD(wcopy, lr=0.05, momentum=0.9, weight_decay=3e-4)
        aopt = torch.optim.Adam(alphas, lr=3e-3, betas=(0.5, 0.999))

        def batch(lo):
            idx = lo + torch.randperm(half, generator=g)[:BATCH]
            return X[idx], labels[idx]

        times, cpu, first, last = [], [], None, None
        for r in range(warmup + repeats):
            t0, c0 = time.perf_counter(), time.thread_time()
            xb, yb = batch(0)
            loss = F.cross_entropy(net(P, alphas[0], alphas[1], xb), yb)
            grads = torch.autograd.grad(loss, wcopy)
            for p, gr in zip(wcopy, grads):
                p.grad = gr
            wopt.step()
            xb, yb = batch(half)
            upper = F.cross_entropy(net(P, alphas[0], alphas[1], xb), yb)
            if variant == "search_step":
                grads = torch.autograd.grad(upper, alphas + wcopy)[:2]
            else:
                grads = torch.autograd.grad(upper, alphas)
            for a, gr in zip(alphas, grads):
                a.grad = gr
            aopt.step()
            if variant == "search_step":
                with torch.no_grad():
                    xb, yb = batch(0)
                    lower = F.cross_entropy(net(P, alphas[0], alphas[1], xb), yb).item()
            else:
                lower = loss.item()
            dt, dc = time.perf_counter() - t0, time.thread_time() - c0
            if r >= warmup:
                times.append(dt * 1e3)
                cpu.append(dc * 1e3)
            if r == 0:
                first = lower
            last = lower
        row(variant, times, cpu, "%d cells x %d ch, %d nodes, batch %d, %d weights; train loss "
            "%.3f -> %.3f" % (CELLS, CHANNELS, NODES, BATCH, nparams, first, last))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=("conv", "search"))
    a = ap.parse_args()
    if a.threads < 1:
        ap.error("--threads must be >= 1")
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0xC0417)
    print("# torch %s conv2d forward+backward (gx, gw) and DARTS search step, float32; "
          "threads=%d" % (torch.__version__, torch.get_num_threads()))
    print("%-22s %12s %-6s %7s  %-22s %s" % ("metric", "median", "unit", "repeats", "ref", "note"))
    if a.only in (None, "conv"):
        for case in CASES:
            bench_conv(case, 2 if a.quick else 5, 7 if a.quick else 41, g)
    if a.only in (None, "search"):
        bench_search(2 if a.quick else 3, 5 if a.quick else 21, g)


if __name__ == "__main__":
    main()
