#!/usr/bin/python3
"""bench_maml_torch.py — the MAML sinusoid meta-iteration of bench/bench_maml.c in PyTorch.

    /usr/bin/python3 bench/bench_maml_torch.py [--threads N] [--quick] [--clock wall|cpu]

  --threads N  torch.set_num_threads(N) (default 1)
  --quick      fewer meta-iterations
  --clock C    wall: time.perf_counter (default); cpu: time.thread_time, the CPU time of the
               calling thread (with 1 thread torch runs every op there), which leaves out the
               time other processes hold the core on a loaded machine

One meta-iteration: draw 25 sinusoid tasks (A ~ U[0.1, 5], phase ~ U[0, pi], x ~ U[-5, 5];
10 support + 10 query points each), one inner SGD step (lr 0.01) from theta on each task's
support MSE, the mean query MSE of the adapted networks, its gradient with respect to theta,
one Adam step (lr 0.001) on theta. The learner is an MLP 1-40-40-1 with ReLU, float32,
theta initialised as nn.Linear does. Two ways of writing it, each second order
(create_graph=True in the inner step) and first order (the inner gradient detached: FOMAML):

  maml_loop / fomaml_loop        a Python loop over the tasks with a functional MLP
                                 (F.linear), as most MAML code is written
  maml_batched / fomaml_batched  the 25 tasks' weights stacked ([B, in, out], theta expanded),
                                 each layer one torch.baddbmm; the inner gradient is taken with
                                 respect to the stacked copies

Each figure is the median over timed meta-iterations after warm-up ones (time.perf_counter,
or time.thread_time with --clock cpu), ms per meta-iteration. Output: '#' lines are notes; the table has columns
metric median unit repeats ref note.
"""
import argparse
import math
import time

import torch
import torch.nn.functional as F

B, K, Q, H = 25, 10, 10, 40
INNER_LR, OUTER_LR = 0.01, 0.001


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def sample_tasks(g):
    amp = 0.1 + 4.9 * torch.rand(B, 1, 1, generator=g)
    phase = math.pi * torch.rand(B, 1, 1, generator=g)
    x = -5.0 + 10.0 * torch.rand(B, K + Q, 1, generator=g)
    y = amp * torch.sin(x - phase)
    return x[:, :K], y[:, :K], x[:, K:], y[:, K:]


def init_theta(g):
    """nn.Linear's initialisation: weight [out, in] and bias from U(+-1/sqrt(in))."""
    theta = []
    for fan_in, fan_out in ((1, H), (H, H), (H, 1)):
        bound = 1.0 / math.sqrt(fan_in)
        theta.append((torch.rand(fan_out, fan_in, generator=g) * 2 - 1) * bound)
        theta.append((torch.rand(fan_out, generator=g) * 2 - 1) * bound)
    return [t.requires_grad_() for t in theta]


def net(x, w):
    h = F.relu(F.linear(x, w[0], w[1]))
    h = F.relu(F.linear(h, w[2], w[3]))
    return F.linear(h, w[4], w[5])


def meta_iter_loop(theta, opt, g, second_order):
    xs, ys, xq, yq = sample_tasks(g)
    opt.zero_grad()
    meta_loss = 0.0
    for t in range(B):
        loss = F.mse_loss(net(xs[t], theta), ys[t])
        grads = torch.autograd.grad(loss, theta, create_graph=second_order)
        fast = [p - INNER_LR * gr for p, gr in zip(theta, grads)]
        meta_loss = meta_loss + F.mse_loss(net(xq[t], fast), yq[t])
    meta_loss = meta_loss / B
    meta_loss.backward()
    opt.step()
    return meta_loss.item()


def stack(theta):
    """theta as B stacked copies: weights [B, in, out], biases [B, 1, out]."""
    w = []
    for i, p in enumerate(theta):
        if i % 2 == 0:
            w.append(p.t().unsqueeze(0).expand(B, -1, -1))
        else:
            w.append(p.view(1, 1, -1).expand(B, -1, -1))
    return w


def net_batched(x, w):
    h = F.relu(torch.baddbmm(w[1], x, w[0]))
    h = F.relu(torch.baddbmm(w[3], h, w[2]))
    return torch.baddbmm(w[5], h, w[4])


def meta_iter_batched(theta, opt, g, second_order):
    xs, ys, xq, yq = sample_tasks(g)
    opt.zero_grad()
    w = stack(theta)
    # Sum over tasks of each task's mean support MSE: each copy gets its own task's gradient.
    loss = F.mse_loss(net_batched(xs, w), ys, reduction="sum") / K
    grads = torch.autograd.grad(loss, w, create_graph=second_order)
    fast = [p - INNER_LR * gr for p, gr in zip(w, grads)]
    meta_loss = F.mse_loss(net_batched(xq, fast), yq)  # mean over tasks and points
    meta_loss.backward()
    opt.step()
    return meta_loss.item()


def bench(metric, ref, step, second_order, warmup, repeats, clock):
    g = torch.Generator().manual_seed(0)
    theta = init_theta(g)
    opt = torch.optim.Adam(theta, lr=OUTER_LR)
    times, losses = [], []
    for r in range(-warmup, repeats):
        t0 = clock()
        losses.append(step(theta, opt, g, second_order))
        dt = clock() - t0
        if r >= 0:
            times.append(dt * 1e3)
    note = f"query MSE {losses[0]:.3f} -> {losses[-1]:.3f} over {warmup + repeats} its"
    print(f"{metric:<20} {median(times):12.4f} {'ms':<6} {repeats:7d}  {ref:<16} {note}",
          flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = ap.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.thread_time
    torch.set_num_threads(args.threads)
    print(f"# torch {torch.__version__} MAML sinusoid meta-iteration: B={B} tasks, K={K} support "
          f"+ {Q} query points, MLP 1-{H}-{H}-1 ReLU float32, 1 inner SGD step ({INNER_LR}), "
          f"Adam {OUTER_LR}; threads={torch.get_num_threads()}; clock {args.clock}")
    print(f"{'metric':<20} {'median':>12} {'unit':<6} {'repeats':>7}  {'ref':<16} note")
    warmup, repeats = (3, 11) if args.quick else (10, 101)
    bench("maml_loop", "-", meta_iter_loop, True, warmup, repeats, clock)
    bench("maml_batched", "-", meta_iter_batched, True, warmup, repeats, clock)
    bench("fomaml_loop", "-", meta_iter_loop, False, warmup, repeats, clock)
    bench("fomaml_batched", "-", meta_iter_batched, False, warmup, repeats, clock)


if __name__ == "__main__":
    main()
