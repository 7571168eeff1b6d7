/* common.h — what every task runner repeats (internal to the library: the task folders, the
 * tests): checking classification data, solving a problem with a resumable solver, scoring a
 * classifier. */
#ifndef BLO_TASKS_COMMON_H
#define BLO_TASKS_COMMON_H

#include "../../internal.h"
#include "blo/bilevel.h"

/* Checks a classification data pair: X [n, d] and Xv [nv, d] of one float dtype, labels [n]
 * and labels_v [nv] i64 and non-negative; *classes <= 0 becomes the largest label plus one,
 * and must be >= 2 and above every label. Messages start with "<task>: ". */
blo_status blo__check_classification(const char *task, const blo_tensor *X,
                                     const blo_tensor *labels, const blo_tensor *Xv,
                                     const blo_tensor *labels_v, int64_t *classes, char *err,
                                     size_t errlen);

/* What every task runner does with its problem: makes the solver into *s (set before anything
 * runs, so record callbacks can reach it; the caller frees it, also on failure), continues
 * from the checkpoint resume when given, and runs to the end. On failure err holds the
 * solver's message. */
blo_status blo__task_solve(const blo_problem *p, const blo_config *c, const char *resume,
                           blo_solver **s, char *err, size_t errlen);

/* ---- Training parameters by values-only optimizer steps --------------------------------------
 * What the baselines, pretraining and warm-ups share: for t = 1 .. steps, a scalar loss of the
 * params w (built in a scratch context rewound after every step), its gradient, one step of
 * optim/'s values-only update in place on w. */
typedef blo_tensor *(*blo__fit_loss_fn)(blo_ctx *sc, blo_tensor *const *w, int64_t t, void *user);
/* After step t: its loss, the squared norm of its gradient and the step's scratch peak.
 * Non-zero stops the run. */
typedef int (*blo__fit_report_fn)(int64_t t, double loss, double grad_sq, size_t peak, void *user);
typedef struct blo__fit {
    const char *what; /* names the run in messages: "<what> step <t>: ..." */
    const char *hint; /* appended to the message of a loss that is not finite, or NULL */
    blo_opt opt;
    int n;
    blo_tensor *const *w; /* requires_grad set; updated in place */
    int64_t steps;
    blo__fit_loss_fn loss;
    blo__fit_report_fn report; /* optional */
    void *user;
} blo__fit;
/* Runs f. Returns BLO_OK (also when report stopped it), or the first error with a message in
 * err: the loss's or the gradient's (its context's status), BLO_ERR_NUMERIC for a loss that is
 * not finite, BLO_ERR_NOMEM. */
blo_status blo__fit_run(const blo__fit *f, char *err, size_t errlen);
/* The same, handing the optimizer's state at the end to *keep (moments made in keep_ctx, its
 * step count) for a caller that continues the run (the causal task's bilevel phase). */
blo_status blo__fit_run_keep(const blo__fit *f, blo_ctx *keep_ctx, blo_opt_state *keep, char *err,
                             size_t errlen);

/* Seconds on the monotonic clock (for a task's wall time). */
double blo__task_seconds(void);
/* CPU seconds of the process, all threads (for a time that a loaded machine does not stretch). */
double blo__task_cpu_seconds(void);

/* Shuffles a[0 .. n) in place (Fisher–Yates from the back: for i = n-1 .. 1, a[i] swaps with
 * a[j], j uniform in [0, i]). */
void blo__shuffle(blo_rng *r, int64_t *a, int64_t n);
/* Moves k entries of a[0 .. n) drawn uniformly without replacement to a[0 .. k), in draw
 * order (Fisher–Yates from the front, stopped after k swaps). */
void blo__draw_first(blo_rng *r, int64_t *a, int64_t n, int64_t k);
/* Rank r's share of n items cut into R contiguous blocks (the first n mod R ranks one more):
 * items [*lo, *lo + *count). */
void blo__rank_block(int64_t n, int R, int r, int64_t *lo, int64_t *count);

/* A problem with no box on x and nothing optional: nx hyper-variables x, ny parameters y, the
 * two objectives and their user pointer. */
blo_problem blo__task_problem(int nx, blo_tensor *const *x, int ny, blo_tensor *const *y,
                              blo_objective_fn upper, blo_objective_fn lower, void *user);

/* ---- Fully connected networks -----------------------------------------------------------------
 * layers affine maps width[0] → width[1] → … → width[layers], parameters p[2l] = W_l
 * [width[l], width[l+1]] and p[2l+1] = b_l [width[l+1]] made in ctx with dtype dt and drawn
 * in that order from PyTorch's Linear start U(±1/sqrt(width[l])). Returns BLO_OK or ctx's
 * status. */
blo_status blo__mlp_init(blo_ctx *ctx, blo_dtype dt, int layers, const int64_t *width, blo_rng *rng,
                         blo_tensor **p);
/* X [m, width[0]] → [m, width[layers]]: X W_0 + b_0, then ReLU (when relu) and the next layer. */
blo_tensor *blo__mlp_forward(blo_ctx *ctx, blo_tensor *X, int layers, blo_tensor *const *p,
                             int relu);

#endif
