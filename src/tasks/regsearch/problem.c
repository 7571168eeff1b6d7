/* problem.c — regularization search as a blo_problem: per-group log-strengths x,
 * lower level the training cross-entropy of a logistic (two classes) or softmax (C > 2)
 * regression plus ½ Σ_j exp(x_{g(j)}) ‖W_j‖², upper level the validation cross-entropy (the
 * maths is in regsearch.h). Both objectives are blo ops, differentiable to any order, so every
 * hypergradient method of the registry goes through them. */
#include "regsearch.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Checks labels [m] (i64, >= 0) and raises *max_label to the largest one. */
/* The labels as 0/1 values in dtype dt (the two-class targets t). */
static blo_tensor *targets(blo_ctx *ctx, blo_tensor *labels, blo_dtype dt) {
    int64_t m = blo_tensor_dim(labels, 0);
    blo_tensor *t = blo_tensor_new(ctx, dt, 1, &m);
    for (int64_t i = 0; t && i < m; i++)
        blo_tensor_set(t, i, blo_tensor_get(labels, i));
    return t;
}

blo_status blo_regsearch_init(blo_regsearch *h, blo_tensor *X, blo_tensor *labels, blo_tensor *Xv,
                              blo_tensor *labels_v, int64_t classes, int64_t groups,
                              const int64_t *group, double log_lambda0, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!h) return blo__fail(err, errlen, BLO_ERR_INVALID, "regsearch: no struct to initialise");
    memset(h, 0, sizeof *h);
    blo_status st = blo__check_classification("regsearch", X, labels, Xv, labels_v, &classes, err,
                                              errlen);
    if (st) return st;
    blo_dtype dt = blo_tensor_dtype(X);
    int64_t n = blo_tensor_dim(X, 0), d = blo_tensor_dim(X, 1), nv = blo_tensor_dim(Xv, 0);
    if (!group && groups != d)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                    "regsearch: without a group map there is one group per feature (%lld), "
                    "not %lld",
                    (long long)d, (long long)groups);
    if (groups < 1 || groups > d)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                    "regsearch: %lld groups for %lld features (need 1 .. d)", (long long)groups,
                    (long long)d);
    for (int64_t j = 0; group && j < d; j++)
        if (group[j] < 0 || group[j] >= groups)
            return blo__fail(err, errlen, BLO_ERR_INVALID,
                        "regsearch: feature %lld is in group %lld, outside [0, %lld)", (long long)j,
                        (long long)group[j], (long long)groups);
    if (!isfinite(log_lambda0))
        return blo__fail(err, errlen, BLO_ERR_INVALID, "regsearch: the start log-strength is %g",
                    log_lambda0);

    h->X = X;
    h->labels = labels;
    h->Xv = Xv;
    h->labels_v = labels_v;
    h->n = n;
    h->nv = nv;
    h->d = d;
    h->classes = classes;
    h->groups = groups;
    if (!(h->ctx = blo_ctx_new(0)))
        return blo__fail(err, errlen, BLO_ERR_NOMEM, "regsearch: out of memory");
    int64_t wshape[2] = {d, classes}, nb = classes == 2 ? 1 : classes;
    h->x0[0] = blo_full(h->ctx, dt, 1, &groups, log_lambda0);
    h->y0[0] = blo_zeros(h->ctx, dt, classes == 2 ? 1 : 2, wshape);
    h->y0[1] = blo_zeros(h->ctx, dt, 1, &nb);
    if (group) h->group = blo_from_i64(h->ctx, 1, &d, group);
    if (classes == 2) {
        h->t = targets(h->ctx, labels, dt);
        h->tv = targets(h->ctx, labels_v, dt);
    }
    if (!h->x0[0] || !h->y0[0] || !h->y0[1] || (group && !h->group) ||
        (classes == 2 && (!h->t || !h->tv))) {
        blo_regsearch_free(h);
        return blo__fail(err, errlen, BLO_ERR_NOMEM, "regsearch: out of memory");
    }
    return BLO_OK;
}

void blo_regsearch_free(blo_regsearch *h) {
    if (!h) return;
    blo_ctx_free(h->ctx);
    memset(h, 0, sizeof *h);
}

blo_tensor *blo_regsearch_logits(blo_ctx *ctx, const blo_regsearch *h, blo_tensor *X,
                                 blo_tensor *const *y) {
    (void)h; /* [m, d] x [d] -> [m] (+ b [1]) and [m, d] x [d, C] -> [m, C] (+ b [C]) alike */
    return blo_add(ctx, blo_matmul(ctx, X, y[0]), y[1]);
}

/* Mean cross-entropy of logits z against labels (C > 2) or 0/1 targets t (two classes). */
static blo_tensor *mean_ce(blo_ctx *ctx, const blo_regsearch *h, blo_tensor *z, blo_tensor *labels,
                           blo_tensor *t) {
    if (h->classes > 2) return blo_cross_entropy(ctx, z, labels, NULL, BLO_REDUCE_MEAN);
    return blo_mean(ctx, blo_sub(ctx, blo_softplus(ctx, z), blo_mul(ctx, t, z)), 0, NULL, 0);
}

/* f = mean CE(train) + ½ Σ_j λ_{g(j)} ‖W_j‖², λ = exp(x). */
static blo_tensor *lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                         const blo_eval *ev, void *user) {
    (void)ev;
    blo_regsearch *h = user;
    blo_tensor *ce = mean_ce(ctx, h, blo_regsearch_logits(ctx, h, h->X, y), h->labels, h->t);
    blo_tensor *lam = blo_exp(ctx, x[0]);
    if (h->group) lam = blo_index_select(ctx, lam, 0, h->group); /* [G] -> [d] */
    if (h->classes > 2) {
        int64_t col[2] = {h->d, 1}; /* one strength per row of W, shared by its C columns */
        lam = blo_reshape(ctx, lam, 2, col);
    }
    blo_tensor *pen = blo_sum_all(ctx, blo_mul(ctx, lam, blo_mul(ctx, y[0], y[0])));
    return blo_add(ctx, ce, blo_scale(ctx, pen, 0.5));
}

static blo_tensor *upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                         const blo_eval *ev, void *user) {
    (void)x;
    (void)ev;
    blo_regsearch *h = user;
    return mean_ce(ctx, h, blo_regsearch_logits(ctx, h, h->Xv, y), h->labels_v, h->tv);
}

blo_problem blo_regsearch_problem(blo_regsearch *h) {
    return blo__task_problem(1, h->x0, 2, h->y0, upper, lower, h);
}

blo_status blo_regsearch_score(const blo_regsearch *h, blo_tensor *X, blo_tensor *labels,
                               blo_tensor *const *y, double *loss, double *acc) {
    blo_ctx *ctx = blo_ctx_new(0);
    if (!ctx) return BLO_ERR_NOMEM;
    blo_ctx_set_recording(ctx, 0);
    blo_tensor *z = blo_regsearch_logits(ctx, h, X, y);
    blo_tensor *t = h->classes == 2 && z ? targets(ctx, labels, blo_tensor_dtype(z)) : NULL;
    blo_tensor *ce = z ? mean_ce(ctx, h, z, labels, t) : NULL;
    blo_status st = ce ? BLO_OK : blo_ctx_status(ctx);
    if (!st) {
        int64_t m = blo_tensor_dim(z, 0), right = 0;
        for (int64_t i = 0; i < m; i++) {
            int64_t best = 0, want = (int64_t)blo_tensor_get(labels, i);
            if (h->classes == 2) {
                best = blo_tensor_get(z, i) >= 0;
            } else {
                for (int64_t c = 1; c < h->classes; c++)
                    if (blo_tensor_get(z, i * h->classes + c) >
                        blo_tensor_get(z, i * h->classes + best))
                        best = c;
            }
            right += best == want;
        }
        if (loss) *loss = blo_tensor_item(ce);
        if (acc) *acc = m ? (double)right / (double)m : NAN;
    }
    blo_ctx_free(ctx);
    return st ? st : BLO_OK;
}
