/* blo/regsearch.h — regularization search: per-feature L2 strengths by validation loss
 * (`blo regsearch`). */
#ifndef BLO_REGSEARCH_H
#define BLO_REGSEARCH_H
#pragma GCC visibility push(default)

#include "blo/bilevel.h"
#include "blo/data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Regularization search ---------------------------------------------------------------
 * Per-feature (or per-group) L2 strengths of a logistic regression chosen by validation loss
 * (Bengio, Neural Computation 2000; Pedregosa, ICML 2016):
 *     x ∈ R^G  log-strengths, λ_g = exp(x_g), start log λ0
 *     y = (w [d], b) for two classes, (W [d, C], b [C]) softmax for C > 2
 *     f(x, y) = mean CE(train) + ½ Σ_j λ_{g(j)} ‖W_j‖²     (lower; the bias is not penalised)
 *     F(x, y) = mean CE(validation)                          (upper)
 * The reference it is compared with is the best single strength of a grid: each grid value
 * is a plain fit of the lower level to convergence, the one with the lowest validation loss
 * wins. Both final models are fitted to convergence (L-BFGS), so the comparison is between
 * strengths, not between optimizers.
 */
typedef enum blo_regsearch_groups {
    BLO_REGSEARCH_FEATURE = 0, /* G = d: one strength per feature */
    BLO_REGSEARCH_SINGLE,      /* G = 1: one strength for all (what the grid searches) */
    BLO_REGSEARCH_BLOCKS       /* G = K contiguous blocks: feature j in block ⌊j K / d⌋ */
} blo_regsearch_groups;

#define BLO_REGSEARCH_MAX_GRID 64

/* One outer iteration as the regularization search reports it. */
typedef struct blo_regsearch_iter {
    blo_record rec;      /* the solver's record (rec.upper is the validation loss at y_T) */
    double test_acc;     /* accuracy of the current model (y_T, or the lower level solved at
                            the new strengths with solve_lower) on the test set, NAN when not
                            evaluated */
    double lambda_min, lambda_gmean, lambda_max; /* of the current strengths (gmean: geometric) */
} blo_regsearch_iter;
/* Return non-zero to stop the run. */
typedef int (*blo_regsearch_iter_fn)(const blo_regsearch_iter *it, void *user);
/* Called after each grid value's fit (i of n). */
typedef void (*blo_regsearch_grid_fn)(int i, int n, double lambda, double val_loss, double val_acc,
                                      void *user);

typedef struct blo_regsearch_config {
    /* The data: the three sets given in memory (borrowed, already split, the same features and
     * classes), else a file, else the built-in problem: two classes of an MNIST-layout folder. */
    const blo_dataset *train, *val, *test;
    const char *data_path;    /* LIBSVM or CSV (gzip or plain) */
    const char *format;       /* "libsvm", "csv", or NULL / "auto": CSV when the name ends in
                                 .csv or .csv.gz, LIBSVM otherwise */
    const char *label_column; /* CSV: the target column (NULL: the last) */
    const char *mnist_dir;    /* the built-in problem's folder (its "train" split); no default:
                                 the built-in problem without one fails (BLO_ERR_INVALID) */
    int64_t class_a, class_b; /* built-in: class_a -> 0, class_b -> 1 */
    int64_t max_examples;     /* at most this many (shuffled) examples from a file or the
                                 built-in problem; 0: all */
    double train_frac, val_frac; /* of those; the rest is the test set */
    int standardize;          /* features are always centred on their training mean (the free
                                 bias absorbs it: same models, better conditioning); scaled to
                                 unit variance too: 1 yes, 0 no, -1 for files and sets in
                                 memory but not for the built-in pixels */
    blo_regsearch_groups groups;
    int64_t blocks;           /* K for BLO_REGSEARCH_BLOCKS */
    double lambda0;           /* start strength of every group (clamped into the box); 0: the
                                 grid's best */
    double lambda_lo, lambda_hi; /* the box the bilevel search keeps λ in */
    int grid_n;               /* grid values, log-spaced over [grid_lo, grid_hi]; 0: no grid */
    double grid_lo, grid_hi;
    int64_t fit_iters;        /* L-BFGS iterations of each fit to convergence */
    double fit_tol;           /* ... stopped when ‖∇_y f‖_∞ ≤ fit_tol */
    blo_dtype dtype;
    blo_config solver;        /* method, inner / outer optimizers, budgets, checkpoints;
                                 solver.inner.lr <= 0 picks the step from the data (see below) */
    int solve_lower;          /* 1: after every outer step the lower level is solved again to
                                 convergence (L-BFGS, from the last y) and the next iteration's
                                 T steps start there, as HOAG does (Pedregosa 2016); needs
                                 solver.init warm. 0: the T warm-started steps alone track y* */
    const char *resume;       /* a checkpoint of an earlier run of the same settings, or NULL */
    int64_t eval_every;       /* test accuracy every k outer iterations (0: at the end only) */
    uint64_t seed;            /* the shuffle and split */
    blo_regsearch_iter_fn on_iter;
    blo_regsearch_grid_fn on_grid;
    void *user;
} blo_regsearch_config;

/* The built-in Fashion-MNIST problem: T-shirt/top (0) against shirt (6), 4000 examples split
 * 50 / 25 / 25 %, pixels in [0, 1] centred but not scaled; one strength per feature; a
 * 13-value grid over [1e-6, 1e2]; the bilevel search starts at the grid's best, keeps λ in
 * [1e-6, 1e2], solves the lower level after every outer step (solve_lower) and runs cg
 * (K 50, tol 1e-10) after T = 10 warm-started SGD steps of step 1/L, where
 * L = 1.1 c λ_max(X̃ᵀX̃ / n) + λ_hi bounds the lower level's curvature (X̃ = [X, 1], the top
 * eigenvalue by power iteration, 10 % margin; c = 1/4 for two classes, 1/2 for softmax; an
 * Adam inner optimizer gets 0.01); outer Adam lr 0.05, 200 iterations; test accuracy every 10;
 * float64; fits by L-BFGS to ‖∇_y f‖_∞ ≤ 1e-6 or 2000 iterations. */
blo_regsearch_config blo_regsearch_default(void);

/* A model's scores at the strengths it was fitted with. */
typedef struct blo_regsearch_scores {
    double val_loss, val_acc, test_loss, test_acc;
} blo_regsearch_scores;

typedef struct blo_regsearch_result {
    int64_t n_train, n_val, n_test, features, classes, groups;
    /* The grid: its values, their validation losses, the best one and its model's scores. */
    int grid_n;
    double grid_lambda[BLO_REGSEARCH_MAX_GRID], grid_val_loss[BLO_REGSEARCH_MAX_GRID];
    double grid_best;             /* λ of the best grid value, NAN without a grid */
    blo_regsearch_scores grid;    /* NAN without a grid */
    /* The bilevel search: the lower level refitted to convergence at the learned strengths. */
    blo_regsearch_scores bilevel;
    double lambda_min, lambda_gmean, lambda_max;
    double *lambda;               /* [groups] the learned strengths; owned, released by
                                     blo_regsearch_result_free */
    int64_t fits_unconverged;     /* fits that ended on the iteration budget */
    double upper, lower;          /* F and f at the end of the outer loop (y_T) */
    int64_t iters;
    double seconds, grid_seconds; /* the outer loop's time (with a resumed run's), the grid's */
    size_t peak_bytes;
} blo_regsearch_result;

/* Loads and splits the data, runs the grid, then the bilevel search from lambda0 (continuing
 * from c->resume when given), refits and scores both models. Errors: BLO_ERR_IO /
 * BLO_ERR_FORMAT for the data (the loader's message names the file and line), BLO_ERR_INVALID
 * for settings, BLO_ERR_NUMERIC for a diverged run, with a message in err. On failure r holds
 * nothing to free. */
blo_status blo_regsearch_run(const blo_regsearch_config *c, blo_regsearch_result *r, char *err,
                             size_t errlen);
/* Releases r->lambda. NULL-safe. */
void blo_regsearch_result_free(blo_regsearch_result *r);

#ifdef __cplusplus
}
#endif

#pragma GCC visibility pop
#endif
