/* meta.h — the MAML family's bilevel problem (internal: the sinusoid runner, tests, benchmarks). */
#ifndef BLO_TASKS_META_H
#define BLO_TASKS_META_H

#include "../common/common.h"
#include "blo/meta.h"

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

#endif
