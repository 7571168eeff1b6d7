/* tasks.h — bilevel problems for the tasks of DESIGN.md §6, built on the public problem API
 * (blo/bilevel.h). Internal to the library: the CLI, tests and benchmarks use it.
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
#ifndef BLO_TASKS_H
#define BLO_TASKS_H

#include "../internal.h"
#include "blo/bilevel.h"
#include "blo/tasks.h"

/* What every task runner does with its problem: makes the solver into *s (set before anything
 * runs, so record callbacks can reach it; the caller frees it, also on failure), continues
 * from the checkpoint resume when given, and runs to the end. On failure err holds the
 * solver's message. */
/* Checks a classification data pair: X [n, d] and Xv [nv, d] of one float dtype, labels [n]
 * and labels_v [nv] i64 and non-negative; *classes <= 0 becomes the largest label plus one,
 * and must be >= 2 and above every label. Messages start with "<task>: ". */
blo_status blo__check_classification(const char *task, const blo_tensor *X,
                                     const blo_tensor *labels, const blo_tensor *Xv,
                                     const blo_tensor *labels_v, int64_t *classes, char *err,
                                     size_t errlen);
blo_status blo__task_solve(const blo_problem *p, const blo_config *c, const char *resume,
                           blo_solver **s, char *err, size_t errlen);

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

/* ---- Meta-learning of an initialisation (MAML family) as one bilevel problem -----------------
 * A regression learner, the MLP 1-H-H-1 with ReLU, and a meta-batch of B tasks, each with
 * K support points (xs, ys) and Q query points (xq, yq):
 *     x = θ = (W1 [1, H], b1 [1, H], W2 [H, H], b2 [1, H], W3 [H, 1], b3 [1, 1]),
 *         and with Meta-SGD also α = per-parameter inner step sizes of θ's shapes (x[6 .. 12))
 *     y = the B task learners stacked: y_i [B, θ_i's shape], started at y_0 = θ broadcast
 *         (BLO_INIT_FROM_X), so one batched matmul per layer serves all tasks
 *     f(x, y) = Σ_b MSE(net_{y_b}(xs_b), ys_b) + (λ/2) Σ_b ‖y_b − θ‖²    (support, summed
 *         over tasks so ∇_{y_b} f is task b's own gradient: B independent problems)
 *     F(x, y) = (1/B) Σ_b MSE(net_{y_b}(xq_b), yq_b)                      (query, averaged)
 * With T SGD inner steps of size α: rhg gives second-order MAML (Finn, Abbeel & Levine,
 * ICML 2017), first_order FOMAML (Nichol et al. 2018), cg with λ > 0 iMAML (Rajeswaran,
 * Finn, Kakade & Levine, NeurIPS 2019), lr_x_per_y Meta-SGD (Li et al. 2017). */
#define BLO_META_NPARAM 6
typedef struct blo_meta {
    int64_t B, H, K, Q;
    double prox;  /* λ >= 0 */
    int meta_sgd; /* x holds α after θ */
    blo_dtype dtype;
    /* Owned (in ctx). */
    blo_ctx *ctx;
    blo_tensor *x0[2 * BLO_META_NPARAM]; /* θ (initial values), then α when meta_sgd */
    blo_tensor *y0[BLO_META_NPARAM];     /* [B, ...]: shapes of y (values unused: from_x) */
    /* The current meta-batch [B, K, 1], [B, K, 1], [B, Q, 1], [B, Q, 1]; a caller writes
     * their values (blo_meta_set_batch) or lets the sampler below do it. */
    blo_tensor *xs, *ys, *xq, *yq;
    /* Optional: called by the objectives when ev->outer_iter differs from batch_iter, to
     * draw that iteration's meta-batch (so every call within one iteration sees the same
     * tasks, and a resumed run sees the same tasks as an uninterrupted one). */
    blo_status (*sample)(struct blo_meta *m, int64_t outer_iter, void *user);
    void *sample_user;
    int64_t batch_iter;
} blo_meta;

/* Makes the shapes and the initial θ (PyTorch's Linear initialisation, U(±1/sqrt(fan_in)) for
 * weights and biases, from rng), α = alpha0 everywhere when meta_sgd. B, H, K, Q >= 1. On
 * failure returns an error with a message in err and leaves nothing to free; on success free
 * with blo_meta_free. */
blo_status blo_meta_init(blo_meta *m, int64_t B, int64_t H, int64_t K, int64_t Q, double prox,
                         int meta_sgd, double alpha0, blo_dtype dt, blo_rng *rng, char *err,
                         size_t errlen);
void blo_meta_free(blo_meta *m); /* NULL-safe */
/* The problem (nx = 6 or 12, ny = 6, init_y = broadcast θ) whose user pointer is m. Use it
 * with init = BLO_INIT_FROM_X and, for Meta-SGD, lr_x = 6, lr_x_per_y = 1. */
blo_problem blo_meta_problem(blo_meta *m);
/* The batched network's output [B, N, 1] for inputs X [B, N, 1] and stacked parameters
 * w[0 .. 6) of shapes [B, ...] (recorded like any op). */
blo_tensor *blo_meta_net(blo_ctx *ctx, blo_tensor *X, blo_tensor *const *w);
/* The per-task support objective Σ_b MSE_b (+ the proximal term when theta != NULL) and the
 * query objective (1/B) Σ_b MSE_b of stacked parameters w. */
blo_tensor *blo_meta_support_loss(blo_ctx *ctx, const blo_meta *m, blo_tensor *const *theta,
                                  blo_tensor *const *w);
blo_tensor *blo_meta_query_loss(blo_ctx *ctx, const blo_meta *m, blo_tensor *const *w);

/* Sinusoid tasks (Finn et al. 2017): amplitude A ~ U[0.1, 5], phase φ ~ U[0, π], inputs
 * x ~ U[−5, 5], targets A sin(x − φ). Draws n_tasks tasks of n_points points each into
 * amp[n_tasks], phase[n_tasks], x and y [n_tasks * n_points] (task-major). */
void blo_sinusoid_sample(blo_rng *r, int64_t n_tasks, int64_t n_points, double *amp,
                         double *phase, double *x, double *y);
/* ---- Few-shot learners as bilevel problems (fewshot_learn.c; see blo_fewshot_run) ----------
 * MAML: x = every param of the MLP, y = B stacked copies from y_0 = x (init_y, from_x);
 * hyperrep: x = the body, y = B stacked heads from y_0 = 0 (fixed);
 *     f = B · mean support CE (+ ½λ Σ_b ‖head_b‖², hyperrep),  F = mean query CE. */
#define BLO_FEWSHOT_MAXP (2 * (BLO_FEWSHOT_MAX_LAYERS + 1))
typedef struct blo_fewshot_meta {
    const blo_fewshot_config *c; /* borrowed: learner, shapes, dtype, seed */
    /* Borrowed, or NULL: then the objectives use xs .. yq as the caller wrote them instead
     * of drawing each iteration's meta-batch of meta-train episodes from fs. */
    const blo_fewshot_data *fs;
    int np;          /* params of the network: 2 (layers + 1), or 2 when linear */
    int nx;          /* MAML: np; hyperrep: np - 2 (the body) */
    double lambda;   /* λ of the head problems; 0 for MAML */
    blo_ctx *ctx;    /* owns the tensors below */
    blo_tensor *p0[BLO_FEWSHOT_MAXP]; /* the initial network [d, H], [1, H], ..., [H, N], [1, N] */
    blo_tensor *y0[BLO_FEWSHOT_MAXP]; /* y's shapes [B, ...], zeros */
    blo_tensor *xs, *ys, *xq, *yq;    /* [B, N K, d], [B N K], [B, N Q, d], [B N Q] */
    blo_ctx *scratch;
    int64_t batch_iter;
} blo_fewshot_meta;
/* Checks c's learner settings (MAML or hyperrep; pretrain makes the same network) and makes the
 * initial network (PyTorch's Linear start from c->seed) and the batch tensors for images of d
 * features. On failure returns an error with a message and leaves nothing to free. */
blo_status blo_fewshot_meta_init(blo_fewshot_meta *m, const blo_fewshot_config *c,
                                 const blo_fewshot_data *fs, int64_t d, char *err, size_t errlen);
void blo_fewshot_meta_free(blo_fewshot_meta *m); /* NULL-safe */
/* The problem (nx, ny = np - nx or np) whose user pointer is m; use it with init from_x (MAML)
 * or fixed (hyperrep). */
blo_problem blo_fewshot_meta_problem(blo_fewshot_meta *m);

/* ---- Regularization search ----------------------------------------------------------------
 * Per-group L2 strengths of a logistic regression, chosen by validation loss. Given training
 * data X [n, d] with class labels [n] and validation data Xv [nv, d], labels_v [nv], and a
 * partition of the d features into G groups g(j):
 *     x = (x_1 .. x_G)       log-strengths, λ_g = exp(x_g) (the log keeps λ > 0 and makes
 *                            the search scale-free: a step moves λ by a factor)
 *     y = (w [d], b [1])     two classes: z = X w + b, P(class 1 | X_i) = σ(z_i)
 *       = (W [d, C], b [C])  C > 2 classes: softmax(X W + b)
 *     f(x, y) = (1/n) Σ_i CE_i + ½ Σ_j λ_{g(j)} ‖W_j‖²     (lower: penalised training loss;
 *                                                          the bias is not penalised)
 *     F(x, y) = (1/nv) Σ_i CE_i on the validation set        (upper)
 * Two-class cross-entropy with targets t ∈ {0, 1}: CE = softplus(z) − t z = −log σ((2t − 1) z).
 * With every λ_g > 0 the lower level is strongly convex in w (and convex in b), so y*(x) is
 * unique and the implicit methods apply. Bengio, "Gradient-based optimization of
 * hyperparameters", Neural Computation 2000; Pedregosa, ICML 2016 (HOAG).
 */
typedef struct blo_regsearch {
    /* Borrowed: the caller's data (X and Xv share a float dtype; labels are i64 in
     * [0, classes)); it must outlive this struct and every solver built from its problem. */
    blo_tensor *X, *labels;
    blo_tensor *Xv, *labels_v;
    int64_t n, nv, d, classes, groups;
    /* Owned (in ctx). */
    blo_ctx *ctx;
    blo_tensor *t, *tv;  /* two classes: the labels as 0/1 in X's dtype; NULL otherwise */
    blo_tensor *group;   /* i64 [d]: the group of each feature; NULL when every feature is its
                            own group (G = d) */
    blo_tensor *x0[1];   /* [G], every entry log_lambda0 */
    blo_tensor *y0[2];   /* w [d] or W [d, C], and b; zeros */
} blo_regsearch;

/* Checks the data and makes the problem's start values. group [d] (copied) assigns each
 * feature to a group in [0, groups), or is NULL for one group per feature (then groups must
 * be d). classes <= 0 takes the largest label seen plus one; it must be >= 2. On failure
 * returns BLO_ERR_SHAPE / BLO_ERR_DTYPE / BLO_ERR_INVALID / BLO_ERR_NOMEM with a message in
 * err and leaves nothing to free; on success free with blo_regsearch_free. */
blo_status blo_regsearch_init(blo_regsearch *h, blo_tensor *X, blo_tensor *labels, blo_tensor *Xv,
                              blo_tensor *labels_v, int64_t classes, int64_t groups,
                              const int64_t *group, double log_lambda0, char *err, size_t errlen);
/* Releases what blo_regsearch_init made (not the borrowed data). NULL-safe. */
void blo_regsearch_free(blo_regsearch *h);
/* The bilevel problem (nx = 1, ny = 2) whose user pointer is h; no box on x. */
blo_problem blo_regsearch_problem(blo_regsearch *h);
/* The logits of the model y on X: [m] for two classes, [m, C] otherwise (recorded). */
blo_tensor *blo_regsearch_logits(blo_ctx *ctx, const blo_regsearch *h, blo_tensor *X,
                                 blo_tensor *const *y);
/* Mean cross-entropy and accuracy of the model y on (X, labels), computed without a tape.
 * Returns BLO_OK or the error of the evaluation. */
blo_status blo_regsearch_score(const blo_regsearch *h, blo_tensor *X, blo_tensor *labels,
                               blo_tensor *const *y, double *loss, double *acc);

#endif
