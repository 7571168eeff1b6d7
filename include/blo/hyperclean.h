/* blo/hyperclean.h — the data hyper-cleaning task (`blo hyperclean` is a thin layer over it).
 *
 * Data hyper-cleaning (Franceschi et al. ICML 2017; protocol of Liu et al. NeurIPS 2021,
 * Table 3): a training set whose labels are partly corrupted, a clean validation set;
 *     x = one weight per training example (σ(x_i) ∈ (0, 1), start x = 0)
 *     y = the classifier: linear (W, b), or Linear(d, H) → Linear(H, C)
 *     f(x, y) = (1/n) Σ_i σ(x_i) CE(model_y(X_i), ỹ_i)     (lower: weighted training loss)
 *     F(x, y) = mean CE on the validation set              (upper)
 * The cleaner keeps the examples with x_i ≥ 0; with "clean" meaning the noisy label equals
 * the true one, precision = |kept ∧ clean| / |kept|, recall = |kept ∧ clean| / |clean|.
 */
#ifndef BLO_HYPERCLEAN_H
#define BLO_HYPERCLEAN_H
#pragma GCC visibility push(default)

#include "blo/data.h"
#include "blo/dist.h"
#include "blo/task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Cleaner scores of weights x[n] (kept = x_i ≥ 0) against noisy and true labels. A ratio with
 * an empty denominator is 0. */
void blo_cleaner_scores(int64_t n, const double *x, const int64_t *noisy, const int64_t *truth,
                        double *precision, double *recall, double *f1);

typedef struct blo_hyperclean_config {
    const char *data_dir;  /* MNIST layout (train-images-idx3-ubyte[.gz], ...); no default: a
                              run without one fails with BLO_ERR_INVALID */
    int64_t n_train, n_val, n_test; /* drawn without overlap from the "train" split */
    double corrupt;        /* fraction of training labels replaced by a uniform random class
                              (over all classes, so about 1/C of them keep their label) */
    int64_t hidden;        /* 0: linear model; H > 0: Linear(d, H) → Linear(H, C) */
    blo_dtype dtype;
    blo_config solver;     /* method, inner / outer optimizers, budgets, start, checkpoints */
    const char *resume;    /* a checkpoint of an earlier run of the same settings, or NULL */
    int64_t eval_every;    /* test accuracy every k outer iterations (0: at the end only) */
    int baselines;         /* also train the three reference classifiers and the one on the
                              kept examples plus the validation set */
    int64_t baseline_steps;
    double baseline_lr;    /* Adam, full batch */
    uint64_t seed;         /* the split, the corruption, the initial model */
    blo_task_iter_fn on_iter;
    void *user;
    /* NULL or one rank: one process. R ranks (blo/dist.h): the training and validation rows
     * are cut into R contiguous blocks, one per rank, x and the model replicated (the rule of
     * blo/dist.h), so every rank follows the 1-process run on all the rows; only rank 0
     * writes the checkpoint and trains the baselines. Every rank of comm must call
     * blo_hyperclean_run with the same configuration. */
    blo_comm *comm;
} blo_hyperclean_config;

/* The published protocol with a budget that runs in minutes on 2 cores: 5000 / 5000 / 10000,
 * half the labels corrupted, linear model, cg (K = 10) with a warm start, inner SGD lr 0.03
 * with T = 100, outer Adam lr 0.01, 200 outer iterations (the authors' protocol is rhg with a
 * learned start updated by SGD lr 0.03, and 3000 iterations); a run whose validation loss
 * passes 1e4 is stopped as diverged. */
blo_hyperclean_config blo_hyperclean_default(void);

typedef struct blo_hyperclean_result {
    double test_acc;       /* the model at the end of the last inner loop (y_T) */
    double test_acc_start; /* the learned start y_0 (the protocol's reported model), or NAN */
    double precision, recall, f1;
    int64_t kept, clean;   /* |kept|, |clean| */
    double base_noisy, base_val, base_oracle; /* baselines' test accuracy, NAN when not run */
    double base_kept;      /* the cleaner's use: a classifier trained like the baselines on the
                              kept examples (noisy labels) plus the validation set; NAN when the
                              baselines are not run */
    double upper, lower;   /* F and f at the end */
    int64_t iters;
    double seconds;
    size_t peak_bytes;     /* the largest per-iteration scratch peak */
} blo_hyperclean_result;

/* Loads the data, splits and corrupts it, runs the solver (continuing from c->resume when
 * given) and scores the result. Errors: BLO_ERR_IO / BLO_ERR_FORMAT for the data, BLO_ERR_INVALID
 * for settings, BLO_ERR_NUMERIC for a diverged run (the message names the iteration), with a
 * message in err. */
blo_status blo_hyperclean_run(const blo_hyperclean_config *c, blo_hyperclean_result *r, char *err,
                              size_t errlen);

#ifdef __cplusplus
}
#endif

#pragma GCC visibility pop
#endif
