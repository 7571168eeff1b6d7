/* hyperclean.h — the hyper-cleaning task's bilevel problem, built on the public problem API
 * (blo/bilevel.h). Internal to the library: the runner, tests and benchmarks use it.
 *
 * Data hyper-cleaning (linear softmax model). Given training data X [n, d] with noisy labels
 * ỹ [n] and clean validation data Xv [nv, d], yv [nv]:
 *     x = (x_1 .. x_n)        one weight per training example, start 0 (σ(0) = 1/2)
 *     y = (W [d, C], b [C])   the model, start 0 or given; or, with a hidden width H,
 *         (W1 [d, H], b1 [H], W2 [H, C], b2 [C]) for Linear(d, H) → Linear(H, C) (the
 *         "non-convex" option of the protocol: no activation between the two layers), started
 *         from PyTorch's Linear initialisation U(±1/sqrt(fan_in)) drawn from a given generator
 *     f(x, y) = (1/n) Σ_i σ(x_i) · CE(X_i W + b, ỹ_i)      lower level: weighted training loss
 *     F(x, y) = (1/nv) Σ_j CE(Xv_j W + b, yv_j)            upper level: validation loss
 * Examples whose weight the upper level drives down (σ(x_i) → 0) are the ones it judges
 * mislabelled: the cleaner keeps x_i ≥ 0. Franceschi et al., ICML 2017; Liu et al.,
 * NeurIPS 2021 (Table 3).
 */
#ifndef BLO_TASKS_HYPERCLEAN_H
#define BLO_TASKS_HYPERCLEAN_H

#include "../common/common.h"
#include "blo/hyperclean.h"


typedef struct blo_hyperclean {
    /* Borrowed: the caller's data, which must outlive this struct and every solver built
     * from its problem. X and Xv share a float dtype; the labels are i64. */
    blo_tensor *X, *labels;
    blo_tensor *Xv, *labels_v;
    int64_t n, nv, d, classes;
    /* Owned (in ctx): the initial values the problem hands to the solver, in X's dtype. */
    blo_ctx *ctx;
    blo_tensor *x0[1]; /* [n] */
    int ny;            /* 2 (linear) or 4 (two layers) */
    int64_t hidden;    /* 0 for the linear model */
    blo_tensor *y0[4]; /* W [d, C], b [C]; or W1, b1, W2, b2 */
    /* Data parallel (blo_hyperclean_distribute): NULL, or the ranks whose shards make up the
     * data; X, labels (Xv, labels_v) then hold this rank's rows [lo, lo + n_local) of the n
     * training rows ([vlo, vlo + nv_local) of the nv validation rows); x stays [n]. */
    blo_comm *comm;
    int64_t lo, n_local, vlo, nv_local;
} blo_hyperclean;

/* Checks the data (shapes, dtypes, labels in [0, classes)) and makes the initial values:
 * x = 0, and (W, b) = copies of W0 [d, C] and b0 [C] (any float dtype), or zeros where NULL.
 * classes <= 0 takes the largest label seen plus one. On failure returns BLO_ERR_SHAPE /
 * BLO_ERR_DTYPE / BLO_ERR_INVALID / BLO_ERR_NOMEM with a message in err (if given) and leaves
 * nothing to free. On success free with blo_hyperclean_free. */
blo_status blo_hyperclean_init(blo_hyperclean *h, blo_tensor *X, blo_tensor *labels,
                               blo_tensor *Xv, blo_tensor *labels_v, int64_t classes,
                               const blo_tensor *W0, const blo_tensor *b0, char *err,
                               size_t errlen);
/* The same data with the two-layer model of width hidden, initialised from rng. */
blo_status blo_hyperclean_init_mlp(blo_hyperclean *h, blo_tensor *X, blo_tensor *labels,
                                   blo_tensor *Xv, blo_tensor *labels_v, int64_t classes,
                                   int64_t hidden, blo_rng *rng, char *err, size_t errlen);
/* Cuts the data into comm's ranks' shards (contiguous blocks of rows, the first n mod R ranks
 * one row more) and keeps this rank's: f and F become allreduce_sum of the shards' sums over
 * the number of all rows, x and y replicated (blo/dist.h). With one rank nothing changes.
 * BLO_ERR_INVALID when a rank would hold no row; BLO_ERR_NOMEM. */
blo_status blo_hyperclean_distribute(blo_hyperclean *h, blo_comm *comm, char *err, size_t errlen);
/* Releases what blo_hyperclean_init made (not the borrowed data). NULL-safe. */
void blo_hyperclean_free(blo_hyperclean *h);

/* The bilevel problem (nx = 1, ny = h->ny) whose user pointer is h; h must outlive it and the
 * solvers made from it. No box on x. */
blo_problem blo_hyperclean_problem(blo_hyperclean *h);

/* Logits X W + b [m, C] in ctx (recorded like any op): the model both levels evaluate, and
 * the one a caller scores test accuracy with. */
blo_tensor *blo_hyperclean_logits(blo_ctx *ctx, blo_tensor *X, blo_tensor *W, blo_tensor *b);
/* The logits of h's model (linear or two-layer) with parameters y[0 .. h->ny) on X. */
blo_tensor *blo_hyperclean_model(blo_ctx *ctx, const blo_hyperclean *h, blo_tensor *X,
                                 blo_tensor *const *y);

#endif
