/* problem.c — meta-learning an initialisation (MAML family) as one bilevel problem over
 * a meta-batch of B regression tasks, the learner an MLP 1-H-H-1 with ReLU whose B copies are
 * stacked in batched tensors (see meta.h for the maths):
 *     y_0 = θ broadcast to B tasks,   f = Σ_b support MSE_b + (λ/2) Σ_b ‖y_b − θ‖²,
 *     F = (1/B) Σ_b query MSE_b.
 * Finn, Abbeel & Levine, "Model-agnostic meta-learning", ICML 2017; Rajeswaran et al.,
 * "Meta-learning with implicit gradients" (iMAML), NeurIPS 2019; Li et al., "Meta-SGD", 2017.
 */
#include "meta.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* θ_i's shape: W1 [1, H], b1 [1, H], W2 [H, H], b2 [1, H], W3 [H, 1], b3 [1, 1]. */
static void param_shape(int64_t H, int i, int64_t shape[2]) {
    static const int rows_h[BLO_META_NPARAM] = {0, 0, 1, 0, 1, 0};
    static const int cols_h[BLO_META_NPARAM] = {1, 1, 1, 1, 0, 0};
    shape[0] = rows_h[i] ? H : 1;
    shape[1] = cols_h[i] ? H : 1;
}

void blo_sinusoid_sample(blo_rng *r, int64_t n_tasks, int64_t n_points, double *amp,
                         double *phase, double *x, double *y) {
    const double pi = 3.14159265358979323846;
    for (int64_t t = 0; t < n_tasks; t++) {
        double a = 0.1 + 4.9 * blo_rng_uniform(r), ph = pi * blo_rng_uniform(r);
        if (amp) amp[t] = a;
        if (phase) phase[t] = ph;
        for (int64_t k = 0; k < n_points; k++) {
            double u = -5.0 + 10.0 * blo_rng_uniform(r);
            x[t * n_points + k] = u;
            y[t * n_points + k] = a * sin(u - ph);
        }
    }
}

static blo_status meta_fail(char *err, size_t errlen, blo_status st, const char *msg) {
    if (err && errlen) snprintf(err, errlen, "meta: %s", msg);
    return st;
}

blo_status blo_meta_init(blo_meta *m, int64_t B, int64_t H, int64_t K, int64_t Q, double prox,
                         int meta_sgd, double alpha0, blo_dtype dt, blo_rng *rng, char *err,
                         size_t errlen) {
    memset(m, 0, sizeof *m);
    if (B < 1 || H < 1 || K < 1 || Q < 1 || !(prox >= 0) || (dt != BLO_F32 && dt != BLO_F64))
        return meta_fail(err, errlen, BLO_ERR_INVALID,
                         "tasks per batch, width, support and query sizes must be >= 1, the "
                         "proximal weight >= 0 and the dtype f32 or f64");
    m->B = B;
    m->H = H;
    m->K = K;
    m->Q = Q;
    m->prox = prox;
    m->meta_sgd = meta_sgd;
    m->dtype = dt;
    m->batch_iter = -1;
    if (!(m->ctx = blo_ctx_new(0))) return meta_fail(err, errlen, BLO_ERR_NOMEM, "out of memory");
    for (int i = 0; i < BLO_META_NPARAM; i++) {
        int64_t sh[2], bsh[3];
        param_shape(H, i, sh);
        bsh[0] = B;
        bsh[1] = sh[0];
        bsh[2] = sh[1];
        /* Linear(in, out) draws both W and b from U(±1/sqrt(in)); in is H except layer 1. */
        double bound = 1.0 / sqrt(i < 2 ? 1.0 : (double)H);
        m->x0[i] = blo_tensor_new(m->ctx, dt, 2, sh);
        m->y0[i] = blo_zeros(m->ctx, dt, 3, bsh);
        if (!m->x0[i] || !m->y0[i]) goto nomem;
        blo_init_uniform(m->x0[i], rng, -bound, bound);
        if (meta_sgd && !(m->x0[BLO_META_NPARAM + i] = blo_full(m->ctx, dt, 2, sh, alpha0)))
            goto nomem;
    }
    int64_t s[3] = {B, K, 1}, q[3] = {B, Q, 1};
    m->xs = blo_zeros(m->ctx, dt, 3, s);
    m->ys = blo_zeros(m->ctx, dt, 3, s);
    m->xq = blo_zeros(m->ctx, dt, 3, q);
    m->yq = blo_zeros(m->ctx, dt, 3, q);
    if (!m->xs || !m->ys || !m->xq || !m->yq) goto nomem;
    return BLO_OK;
nomem:
    blo_meta_free(m);
    return meta_fail(err, errlen, BLO_ERR_NOMEM, "out of memory");
}

void blo_meta_free(blo_meta *m) {
    if (!m) return;
    blo_ctx_free(m->ctx);
    m->ctx = NULL;
}

blo_tensor *blo_meta_net(blo_ctx *ctx, blo_tensor *X, blo_tensor *const *w) {
    /* [B, N, in] @ [B, in, out] + [B, 1, out], one batched matmul per layer. */
    blo_tensor *h = blo_relu(ctx, blo_add(ctx, blo_matmul(ctx, X, w[0]), w[1]));
    h = blo_relu(ctx, blo_add(ctx, blo_matmul(ctx, h, w[2]), w[3]));
    return blo_add(ctx, blo_matmul(ctx, h, w[4]), w[5]);
}

blo_tensor *blo_meta_support_loss(blo_ctx *ctx, const blo_meta *m, blo_tensor *const *theta,
                                  blo_tensor *const *w) {
    /* blo_mse averages over tasks; times B it is the sum of the tasks' own losses. */
    blo_tensor *f = blo_scale(ctx, blo_mse(ctx, blo_meta_net(ctx, m->xs, w), m->ys,
                                           BLO_REDUCE_MEAN),
                              (double)m->B);
    if (theta && m->prox > 0)
        for (int i = 0; i < BLO_META_NPARAM; i++) {
            blo_tensor *d = blo_sub(ctx, w[i], theta[i]); /* θ_i broadcast over the tasks */
            f = blo_add(ctx, f, blo_scale(ctx, blo_dot(ctx, d, d), 0.5 * m->prox));
        }
    return f;
}

blo_tensor *blo_meta_query_loss(blo_ctx *ctx, const blo_meta *m, blo_tensor *const *w) {
    return blo_mse(ctx, blo_meta_net(ctx, m->xq, w), m->yq, BLO_REDUCE_MEAN);
}

/* Draws the iteration's meta-batch when the solver has moved to a new outer iteration. */
static int ensure_batch(blo_ctx *ctx, blo_meta *m, const blo_eval *ev) {
    if (!m->sample || ev->outer_iter == m->batch_iter) return 1;
    blo_status st = m->sample(m, ev->outer_iter, m->sample_user);
    if (st) {
        blo_ctx_set_error(ctx, st, "meta: drawing the tasks of iteration %lld",
                          (long long)ev->outer_iter);
        return 0;
    }
    m->batch_iter = ev->outer_iter;
    return 1;
}

static blo_tensor *meta_upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                              const blo_eval *ev, void *user) {
    blo_meta *m = user;
    (void)x;
    return ensure_batch(ctx, m, ev) ? blo_meta_query_loss(ctx, m, y) : NULL;
}

static blo_tensor *meta_lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                              const blo_eval *ev, void *user) {
    blo_meta *m = user;
    return ensure_batch(ctx, m, ev) ? blo_meta_support_loss(ctx, m, x, y) : NULL;
}

/* y_0[i] = θ_i broadcast to [B, θ_i's shape] (a copy: its VJP sums over the tasks). */
static blo_tensor *meta_init_y(blo_ctx *ctx, int i, blo_tensor *const *x, void *user) {
    blo_meta *m = user;
    int64_t sh[3] = {m->B, blo_tensor_dim(x[i], 0), blo_tensor_dim(x[i], 1)};
    blo_tensor *t = blo_reshape(ctx, x[i], 3, (int64_t[]){1, sh[1], sh[2]});
    return blo_contiguous(ctx, blo_expand(ctx, t, 3, sh));
}

blo_problem blo_meta_problem(blo_meta *m) {
    blo_problem p = blo__task_problem(m->meta_sgd ? 2 * BLO_META_NPARAM : BLO_META_NPARAM, m->x0,
                                      BLO_META_NPARAM, m->y0, meta_upper, meta_lower, m);
    p.init_y = meta_init_y;
    return p;
}
