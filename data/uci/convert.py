"""Writes wine/, cancer/ and digits/ (the three-part graph layout of data/planetoid, with an
empty edge list) from the copies of the UCI data sets that Debian's python3-sklearn ships under
/usr/lib/python3/dist-packages/sklearn/datasets/data/. The splits follow the kNN-LDS experiments
of Franceschi et al. (ICML 2019): a stratified draw of n_train training and n_val validation
examples (seed 0), every other example for test; Wine and Breast cancer standardised per
feature (mean 0, variance 1 over all examples), Digits left as pixel counts 0..16.
Usage: /usr/bin/python3 convert.py [SKLEARN_DATA_DIR]"""
import gzip, os, sys
import numpy as np

src = sys.argv[1] if len(sys.argv) > 1 else "/usr/lib/python3/dist-packages/sklearn/datasets/data"
here = os.path.dirname(os.path.abspath(__file__))


def read(name):
    op = gzip.open if name.endswith(".gz") else open
    with op(os.path.join(src, name), "rt") as f:
        lines = f.read().splitlines()
    if name.startswith("digits"):  # no header: 64 pixels and the class
        rows = [list(map(float, l.split(","))) for l in lines if l.strip()]
    else:  # header "n,d,class names..."
        rows = [list(map(float, l.split(","))) for l in lines[1:] if l.strip()]
    a = np.array(rows)
    return a[:, :-1], a[:, -1].astype(int)


def stratified(y, k, rng):
    """k indices drawn from the classes in proportion to their sizes (largest remainders)."""
    classes, counts = np.unique(y, return_counts=True)
    share = counts * k / len(y)
    take = np.floor(share).astype(int)
    for c in np.argsort(-(share - take), kind="stable")[: k - take.sum()]:
        take[c] += 1
    out = []
    for c, t in zip(classes, take):
        idx = np.flatnonzero(y == c)
        out.extend(rng.choice(idx, t, replace=False).tolist())
    return np.array(sorted(out))


for name, file, n_train, n_val, scale in [("wine", "wine_data.csv", 10, 20, True),
                                          ("cancer", "breast_cancer.csv", 10, 20, True),
                                          ("digits", "digits.csv.gz", 50, 100, False)]:
    X, y = read(file)
    if scale:
        X = (X - X.mean(0)) / X.std(0)
    rng = np.random.RandomState(0)
    train = stratified(y, n_train, rng)
    rest = np.setdiff1d(np.arange(len(y)), train)
    val = rest[stratified(y[rest], n_val, rng)]
    test = np.setdiff1d(rest, val)
    d = os.path.join(here, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "features.libsvm"), "w") as f:
        for i in range(len(y)):
            f.write(str(y[i]) + "".join(f" {j + 1}:{X[i, j]:.7g}" for j in range(X.shape[1])
                                        if X[i, j] != 0) + "\n")
    open(os.path.join(d, "edges.txt"), "w").close()
    for part, idx in [("train", train), ("val", val), ("test", test)]:
        with open(os.path.join(d, part + ".txt"), "w") as f:
            f.write("\n".join(str(i) for i in idx) + "\n")
    print(name, "examples", len(y), "features", X.shape[1], "classes", len(set(y)),
          "train/val/test", len(train), len(val), len(test))
