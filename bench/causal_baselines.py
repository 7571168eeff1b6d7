#!/usr/bin/python3
"""causal_baselines.py — which units carry the out-of-sample error of a `blo causal` run, and
what simple learners score on the same splits (RESULTS.md, "Why replications 9 and 10 carry
the means").

Usage: bench/causal_baselines.py EFFECTS.csv [rep ...]
EFFECTS.csv is written by `blo causal --effects EFFECTS.csv` on the shipped IHDP data. For
every replication in it: the run's sqrt PEHE out of sample, and that of three learners fitted on
the same train + validation units and scored on the same test units — least squares per arm
(T-learner), 5 nearest neighbours per arm, and least squares of log y on x for the control arm
(the form of IHDP's control surface, mu0 = exp(.)) with least squares for the treated arm.
For the replications named after the file, the test units with the largest squared errors.
"""
import csv
import sys

import numpy as np

ROOT = __file__.rsplit("/bench/", 1)[0]


def ridge(X, y, lam=1e-3):
    A = np.c_[X, np.ones(len(X))]
    return np.linalg.solve(A.T @ A + lam * np.eye(A.shape[1]), A.T @ y)


def predict(w, X):
    return np.c_[X, np.ones(len(X))] @ w


def knn(Xs, ys, X, k=5):
    d = ((X[:, None, :] - Xs[None]) ** 2).sum(2)
    return ys[np.argsort(d, 1)[:, :k]].mean(1)


def main():
    rows = list(csv.DictReader(open(sys.argv[1])))
    detail = {int(r) for r in sys.argv[2:]}
    reps = sorted({int(r["rep"]) for r in rows})
    print("rep  run     OLS-2   5NN-2  loglin0  max train-control y  test units beyond it")
    for rep in reps:
        a = np.loadtxt(f"{ROOT}/data/ihdp/ihdp_npci_{rep}.csv", delimiter=",")
        t, y, m0, m1, x = a[:, 0], a[:, 1], a[:, 3], a[:, 4], a[:, 5:]
        tau = m1 - m0
        R = [r for r in rows if int(r["rep"]) == rep]
        split = np.array([r["split"] for r in R])
        th = np.array([float(r["tau_hat"]) for r in R])
        seen, test = split != "test", split == "test"
        c, tr = seen & (t == 0), seen & (t == 1)

        def pehe(est):
            return np.sqrt(np.mean((est - tau)[test] ** 2))

        w0, w1 = ridge(x[c], y[c]), ridge(x[tr], y[tr])
        wl = ridge(x[c], np.log(np.maximum(y[c], 1e-3)))
        ctrl_train = (split == "train") & (t == 0)
        ymax = y[ctrl_train].max()
        print(f"{rep:3d} {pehe(th):7.3f} {pehe(predict(w1, x) - predict(w0, x)):7.3f} "
              f"{pehe(knn(x[tr], y[tr], x) - knn(x[c], y[c], x)):7.3f} "
              f"{pehe(predict(w1, x) - np.exp(predict(wl, x))):8.3f} {ymax:20.1f} "
              f"{int(np.sum(m0[test] > ymax)):21d}")
        if rep not in detail:
            continue
        e = th - tau
        idx = np.where(test)[0]
        order = idx[np.argsort(-e[idx] ** 2)]
        total = np.sum(e[test] ** 2)
        lo, hi = x[split == "train"].min(0), x[split == "train"].max(0)
        near = [np.sqrt(((x[ctrl_train] - x[i]) ** 2).sum(1)).min() for i in idx]
        print(f"  median distance of a test unit to its nearest training control: {np.median(near):.2f}")
        for i in order[:5]:
            d = np.sqrt(((x[ctrl_train] - x[i]) ** 2).sum(1)).min()
            out = int(np.sum((x[i] < lo) | (x[i] > hi)))
            print(f"  unit {i:3d} t={int(t[i])} mu0 {m0[i]:6.1f} mu1 {m1[i]:5.1f} tau {tau[i]:7.1f} "
                  f"tau_hat {th[i]:7.1f} share of squared error {e[i] ** 2 / total:.2f} "
                  f"nearest training control {d:.2f} covariates outside the training range {out}")
        for k in (1, 3):
            keep = np.setdiff1d(idx, order[:k])
            print(f"  sqrt PEHE out without the worst {k}: {np.sqrt(np.mean(e[keep] ** 2)):.3f}")


if __name__ == "__main__":
    main()
