/* blo/graph.h — graph convolutional networks and graph structure learning (LDS).
 *
 * The GCN of Kipf & Welling (ICLR 2017), two layers, no biases (as their reference code):
 *     Â = D^-½ (A + I) D^-½,   D = diag(1 + Σ_j A_ij)
 *     logits = Â · drop(relu(Â · drop(X) W1)) W2
 *     loss   = mean CE over the training nodes + (wd / 2) ‖W1‖²
 * A may be weighted and is differentiable: sparse (a CSR pattern with a values tensor, the
 * given graph) or dense [N, N] (a sampled graph).
 *
 * LDS (Franceschi, Niepert, Pontil, He, ICML 2019) as a blo_problem:
 *     x = θ ∈ [0, 1]^{N×N}, one Bernoulli probability per node pair, symmetric, zero diagonal
 *     y = (W1, W2)
 *     f(θ, y) = GCN training loss on A ~ Bernoulli(θ), a fresh sample per inner step
 *     F(θ, y) = validation cross-entropy (no dropout) on a fresh sample
 * The gradient reaches θ through the sample by the straight-through estimator:
 *     A = S(θ) + stop_gradient(M − S(θ)),  M_ij = [u_ij < S(θ)_ij] (u symmetric uniform),
 *     S(θ) = ½ (θ + θᵀ) with the diagonal zeroed,
 * so A's values are the 0/1 sample M and dA/dθ is the derivative of S. The sample and Â
 * are one op, blo_st_gcn_adj (blo/ops.h), whose backward keeps only Â. After each outer step
 * θ is clipped to [0, 1] and projected onto symmetric matrices with a zero diagonal.
 * Memory: θ, its gradient, the outer optimizer's moments and the truncated reverse pass's
 * N × N temporaries — an outer iteration with the defaults peaks near 15 N² floats (435 MiB
 * for Cora's 2708 nodes, bench/bench_graph.c); N up to about 8000 fits in 4 GB. Larger graphs
 * need θ on a candidate set of pairs in CSR (blo_gcn_adj's sparse form), not built yet.
 */
#ifndef BLO_GRAPH_H
#define BLO_GRAPH_H
#pragma GCC visibility push(default)

#include "blo/data.h"
#include "blo/ops.h"
#include "blo/task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The propagation graph A: sparse (csr and values, nnz of them) or dense [N, N] (csr NULL);
 * or, when norm is set, Â itself, already normalised ([N, N], e.g. blo_st_gcn_adj's sample),
 * the others unread. */
typedef struct blo_gcn_adj {
    const blo_csr *csr;
    blo_tensor *values;
    blo_tensor *dense;
    blo_tensor *norm;
} blo_gcn_adj;

/* Â h for h [N, K] (Â as above): differentiable in h and in A's values. NULL on failure (the
 * error recorded in ctx). */
blo_tensor *blo_gcn_propagate(blo_ctx *ctx, const blo_gcn_adj *a, blo_tensor *h);

/* The GCN's logits [N, C]. Features X [N, F] as a CSR pattern x with values xval [nnz]
 * (dropout acts on the stored values, as the reference code's sparse dropout). W1 [F, H],
 * W2 [H, C]. training = 0 or dropout = 0: no dropout (rng unused). */
blo_tensor *blo_gcn_logits(blo_ctx *ctx, const blo_gcn_adj *a, const blo_csr *x,
                           blo_tensor *xval, blo_tensor *W1, blo_tensor *W2, double dropout,
                           int training, blo_rng *rng);

/* Glorot uniform into w[0] = W1 and w[1] = W2 (±√(6 / (fan_in + fan_out))), as the reference
 * GCN. */
blo_status blo_gcn_glorot(blo_tensor *const *w, blo_rng *rng);

/* Mean cross-entropy of logits over the nodes idx (i64 [k]) with labels lab (i64 [k]), plus
 * (wd / 2) ‖W1‖² when W1 is given. */
blo_tensor *blo_gcn_loss(blo_ctx *ctx, blo_tensor *logits, blo_tensor *idx, blo_tensor *lab,
                         blo_tensor *W1, double wd);

/* A graph's tensors in ctx: the features — row-normalised (each row divided by its sum; empty
 * rows stay zero) when row_normalize is set, as GCN does for bag-of-words, else as read — as a
 * CSR pattern and values; the given edges (both directions) as a CSR
 * pattern with values 1, keeping only edge e when keep is NULL or keep[e] != 0; the split
 * nodes and their labels (i64). Returns BLO_OK or an error with a message. */
typedef struct blo_graph_tensors {
    blo_csr *x;
    blo_tensor *xval;
    blo_csr *adj;
    blo_tensor *adj_val;
    blo_tensor *idx[3], *lab[3]; /* train, validation, test */
} blo_graph_tensors;
blo_status blo_graph_tensors_make(blo_ctx *ctx, const blo_graph_data *g, const unsigned char *keep,
                                  int row_normalize, blo_dtype dt, blo_graph_tensors *t, char *err,
                                  size_t errlen);

/* Replaces g's edges by the kNN graph of its features: node i joined to the k nodes j ≠ i of
 * largest cosine similarity (ties: lower id), both directions merged. O(N² d) time, N² bytes.
 * BLO_ERR_INVALID unless 1 <= k < N. */
blo_status blo_graph_knn(blo_graph_data *g, int64_t k, char *err, size_t errlen);

/* ---- LDS ------------------------------------------------------------------------------------ */
typedef struct blo_lds {
    blo_ctx *ctx;            /* owns everything below */
    const blo_graph_tensors *gt; /* the graph (features, splits); not owned */
    int64_t n, hidden, classes;
    double dropout, wd;
    blo_tensor *x0[1];       /* θ's start [N, N] */
    blo_tensor *y0[2];       /* W1, W2 (Glorot uniform) */
    blo_tensor *offdiag;     /* 1 − I, [N, N] */
    blo_ctx *scratch;        /* the projection's temporaries, rewound after each (kept, so
                                its N × N blocks are not faulted in anew every step) */
    /* For checking the estimator: when set, A = M + S(θ) − S(st_base) (st_base a constant)
     * instead of S(θ) + stop_gradient(M − S(θ)): equal values and equal derivatives at
     * θ = st_base, but an ordinary function of θ that finite differences can probe. */
    blo_tensor *st_base;
    /* 1: the sample and Â as the composition of ops (blo_lds_sample, then the degree
     * normalisation of blo_gcn_propagate) instead of blo_st_gcn_adj, the same values and
     * first derivatives; for checking the fused op (st_base implies it). */
    int unfused;
    /* NULL, or the candidate set of pairs as a 0/1 [N, N] tensor (symmetric, zero diagonal):
     * the projection multiplies θ by it, so the pairs outside stay 0 (never sampled). Set by
     * blo_lds_set_candidates. */
    blo_tensor *mask;
} blo_lds;

/* θ_ij = 1 on the edges of gt->adj, theta_off elsewhere (0 on the diagonal); W from rng.
 * dt is the features' dtype. */
blo_status blo_lds_init(blo_lds *l, const blo_graph_tensors *gt, int64_t n, int64_t classes,
                        int64_t hidden, double dropout, double wd, double theta_off, blo_rng *rng,
                        char *err, size_t errlen);
void blo_lds_free(blo_lds *l);
/* S(θ) = ½ (θ + θᵀ) ⊙ (1 − I). */
blo_tensor *blo_lds_sym(blo_ctx *ctx, const blo_lds *l, blo_tensor *theta);
/* A sample with the straight-through estimator (see above); draws N(N−1)/2 uniforms. */
blo_tensor *blo_lds_sample(blo_ctx *ctx, const blo_lds *l, blo_tensor *theta, blo_rng *rng);
/* The graph a GCN propagates with for one sample of θ: blo_st_gcn_adj's Â, or the composition
 * when l->unfused or l->st_base is set. Draws N(N−1)/2 uniforms, in the same order both ways. */
blo_gcn_adj blo_lds_adj(blo_ctx *ctx, const blo_lds *l, blo_tensor *theta, blo_rng *rng);
/* The bilevel problem on l (x = θ with bounds [0, 1] and the symmetric projection). */
blo_problem blo_lds_problem(blo_lds *l);
/* Restricts θ to a candidate set of pairs: the m pairs (pairs[2e], pairs[2e + 1]), both
 * directions (include the given edges, or θ's 1s on them are lost); θ's start is set to 0
 * outside them and stays so (l->mask). BLO_ERR_INVALID for a node id out of range or a
 * self-pair. */
blo_status blo_lds_set_candidates(blo_lds *l, const int64_t *pairs, int64_t m, char *err,
                                  size_t errlen);
/* The projection itself: θ ← S(θ) (θ already clipped to [0, 1], so S(θ) stays there), times
 * the candidate mask when there is one. */
blo_status blo_lds_project(int nx, blo_tensor *const *x, void *user);

/* ---- The task: `blo graph` is a thin layer over blo_graph_run ------------------------------ */
typedef struct blo_graph_iter {
    blo_record rec;
    double val_acc;  /* validation accuracy of y_T on one fresh sample of θ (no dropout) */
    int64_t edges;   /* pairs with θ > ½ */
} blo_graph_iter;
typedef int (*blo_graph_iter_fn)(const blo_graph_iter *it, void *user);

typedef struct blo_graph_config {
    const char *data_dir;  /* the three-part folder (blo/data.h); no default */
    double keep_edges;     /* the fraction of the given edges kept, drawn at random (1: all) */
    int64_t knn;           /* k > 0: the graph is the kNN graph of the features (cosine;
                              kNN-LDS) instead of the given edges; -1: that with k = 10 when
                              the data has no edges (the default), else the given edges */
    int row_normalize;     /* divide each feature row by its sum (1, for bag-of-words) */
    int64_t hidden;        /* 16 */
    double dropout, wd;    /* 0.5, 5e-4 (L2 on W1) */
    double gcn_lr;         /* the GCN's Adam step, alone (baseline) and inside LDS: 0.01 */
    int64_t gcn_epochs;    /* training epochs of the GCN alone: 200 */
    int lds;               /* learn the structure (1), or only train the GCN on the graph (0) */
    int baseline;          /* with lds: also the GCN on the graph and the frozen-θ ablation */
    double theta_off;      /* θ's start off the given edges: 0.0 (LDS starts from the graph) */
    int64_t samples;       /* graphs sampled for the test prediction (mean of softmaxes): 16 */
    int64_t patience;      /* > 0: early stopping as LDS: the validation split is halved (its
                              even positions drive the hypergradient, its odd ones are the
                              early-stopping set), the accuracy on the latter (mean over
                              `samples` graphs) is measured after every outer iteration, the
                              run stops after `patience` iterations without a better one, and
                              θ and y of the best are scored. Also for the frozen ablation.
                              0: off (all of the validation split drives the hypergradient);
                              -1 (the default): 10 when the validation split has 100 nodes or
                              more (an early-stopping set of 50 or more), else 0 — a smaller
                              set's accuracy saturates at once. With it LDS's GCN trains until
                              the held-out accuracy stops rising instead of for a fixed budget
                              (so LDS is about 3 points above the GCN on Cora, RESULTS.md) */
    int64_t restart_every; /* > 0: LDS's outer loop (Franceschi et al., Algorithm 1, and
                              their code): every restart_every outer iterations the GCN's
                              weights are drawn afresh (Glorot) and trained again on θ's
                              samples while θ keeps learning, so each cycle ends with a GCN
                              trained on the current θ; with patience, early stopping scores
                              the end of each cycle and counts cycles. 0: one warm-started
                              run (the default) */
    int64_t candidates;    /* k > 0: θ lives on a candidate set of pairs, the kNN graph of
                              the features (cosine, k neighbours) plus the given edges; the
                              pairs outside stay 0. Fewer free pairs for θ to fit the
                              validation nodes with. 0: every pair (the default) */
    double lr_grid[8];     /* with n_lr_grid > 0 (needs patience > 0): LDS is run once per
                              outer step size in lr_grid[0 .. n_lr_grid) and the run with the
                              best early-stopping accuracy is scored, as LDS's authors choose
                              their outer step from a grid by that set; ties: the first */
    int n_lr_grid;
    const char *save_graph;/* write "i j θ_ij" for every pair with θ > ½ (i < j), or NULL */
    blo_dtype dtype;
    blo_config solver;     /* trhg with a window of T = 5 inner Adam steps, a warm start, outer
                              SGD lr 1 on θ, 50 outer iterations */
    const char *resume;
    uint64_t seed;         /* edge removal, initial weights, samples, dropout */
    blo_graph_iter_fn on_iter;
    void *user;
} blo_graph_config;
blo_graph_config blo_graph_default(void);

typedef struct blo_graph_result {
    int64_t n, edges_given, edges_kept, edges_learned; /* learned: pairs with θ > ½ */
    int64_t knn;                    /* k of the kNN graph used as the given one (0: none) */
    double gcn_val, gcn_test;       /* the GCN on the (damaged) graph; NAN when not run */
    double lds_val, lds_test;       /* LDS, mean over `samples` graphs; NAN when not run */
    double frozen_val, frozen_test; /* LDS's schedule with θ frozen at its start */
    double upper, lower;
    int64_t iters;
    int64_t best_iter;              /* with patience: the outer iteration scored (else -1) */
    double es_acc;                  /* with patience: its early-stopping accuracy (else NAN) */
    double outer_lr;                /* LDS's outer step size (the grid's choice with a grid) */
    int64_t patience;               /* the early stopping that ran (the default resolved) */
    double seconds;
} blo_graph_result;
/* Loads the data, removes edges, trains the GCN and / or runs LDS. Errors: the loader's
 * (BLO_ERR_IO / BLO_ERR_FORMAT), BLO_ERR_INVALID for settings, the solver's; message in err. */
blo_status blo_graph_run(const blo_graph_config *c, blo_graph_result *r, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#pragma GCC visibility pop
#endif
