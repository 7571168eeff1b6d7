/* problem.c — data hyper-cleaning with a linear softmax model as a blo_problem:
 * per-example weights x, lower level the σ(x)-weighted training cross-entropy of (W, b),
 * upper level the validation cross-entropy (the maths is in hyperclean.h). Both objectives are
 * written with differentiable blo ops, so every hypergradient method can go through them to
 * any order. */
#include "hyperclean.h"

#include <math.h>
#include <stdio.h>
#include <string.h>


/* A tensor of dtype dt and the given shape in h->ctx holding src's values (zeros if NULL). */
static blo_tensor *start_value(blo_hyperclean *h, const char *what, const blo_tensor *src,
                               blo_dtype dt, int ndim, const int64_t *shape, char *err,
                               size_t errlen, blo_status *st) {
    blo_tensor *t = blo_zeros(h->ctx, dt, ndim, shape);
    if (!t) {
        *st = blo__fail(err, errlen, BLO_ERR_NOMEM, "hyperclean: out of memory");
        return NULL;
    }
    if (!src) return t;
    int same = blo_tensor_ndim(src) == ndim && blo_tensor_dtype(src) != BLO_I64;
    for (int k = 0; same && k < ndim; k++) same = blo_tensor_dim(src, k) == shape[k];
    if (!same) {
        char got[64], want[64];
        if (ndim == 2)
            snprintf(want, sizeof want, "[%lld, %lld]", (long long)shape[0], (long long)shape[1]);
        else
            snprintf(want, sizeof want, "[%lld]", (long long)shape[0]);
        *st = blo__fail(err, errlen, BLO_ERR_SHAPE, "hyperclean: the start %s is %s, expected %s floats",
                   what, blo_tensor_describe(src, got, sizeof got), want);
        return NULL;
    }
    blo_copy_into(t, src);
    return t;
}

/* Checks the data and fills h's data fields and ctx; the model's start is made by the caller. */
static blo_status init_data(blo_hyperclean *h, blo_tensor *X, blo_tensor *labels, blo_tensor *Xv,
                            blo_tensor *labels_v, int64_t classes, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!h) return blo__fail(err, errlen, BLO_ERR_INVALID, "hyperclean: no struct to initialise");
    memset(h, 0, sizeof *h);
    blo_status st = blo__check_classification("hyperclean", X, labels, Xv, labels_v, &classes, err,
                                              errlen);
    if (st) return st;
    blo_dtype dt = blo_tensor_dtype(X);
    int64_t n = blo_tensor_dim(X, 0), d = blo_tensor_dim(X, 1), nv = blo_tensor_dim(Xv, 0);

    h->X = X;
    h->labels = labels;
    h->Xv = Xv;
    h->labels_v = labels_v;
    h->n = n;
    h->nv = nv;
    h->d = d;
    h->classes = classes;
    if (!(h->ctx = blo_ctx_new(0))) return blo__fail(err, errlen, BLO_ERR_NOMEM, "hyperclean: out of memory");
    st = BLO_OK;
    h->x0[0] = start_value(h, "x", NULL, dt, 1, &n, err, errlen, &st);
    if (!h->x0[0]) {
        blo_hyperclean_free(h);
        return st ? st : BLO_ERR_NOMEM;
    }
    return BLO_OK;
}

blo_status blo_hyperclean_init(blo_hyperclean *h, blo_tensor *X, blo_tensor *labels,
                               blo_tensor *Xv, blo_tensor *labels_v, int64_t classes,
                               const blo_tensor *W0, const blo_tensor *b0, char *err,
                               size_t errlen) {
    blo_status st = init_data(h, X, labels, Xv, labels_v, classes, err, errlen);
    if (st) return st;
    blo_dtype dt = blo_tensor_dtype(X);
    int64_t wshape[2] = {h->d, h->classes};
    h->ny = 2;
    h->y0[0] = start_value(h, "W", W0, dt, 2, wshape, err, errlen, &st);
    if (h->y0[0]) h->y0[1] = start_value(h, "b", b0, dt, 1, &h->classes, err, errlen, &st);
    if (!h->y0[1]) {
        blo_hyperclean_free(h);
        return st ? st : BLO_ERR_NOMEM;
    }
    return BLO_OK;
}

blo_status blo_hyperclean_init_mlp(blo_hyperclean *h, blo_tensor *X, blo_tensor *labels,
                                   blo_tensor *Xv, blo_tensor *labels_v, int64_t classes,
                                   int64_t hidden, blo_rng *rng, char *err, size_t errlen) {
    if (hidden < 1 || !rng)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "hyperclean: the hidden width must be >= 1");
    blo_status st = init_data(h, X, labels, Xv, labels_v, classes, err, errlen);
    if (st) return st;
    h->ny = 4;
    h->hidden = hidden;
    if (blo__mlp_init(h->ctx, blo_tensor_dtype(X), 2, (int64_t[]){h->d, hidden, h->classes}, rng,
                      h->y0)) {
        blo_hyperclean_free(h);
        return blo__fail(err, errlen, BLO_ERR_NOMEM, "hyperclean: out of memory");
    }
    return BLO_OK;
}

blo_tensor *blo_hyperclean_model(blo_ctx *ctx, const blo_hyperclean *h, blo_tensor *X,
                                 blo_tensor *const *y) {
    if (h->ny == 2) return blo_hyperclean_logits(ctx, X, y[0], y[1]);
    return blo__mlp_forward(ctx, X, 2, y, 0);
}

void blo_hyperclean_free(blo_hyperclean *h) {
    if (!h) return;
    blo_ctx_free(h->ctx);
    memset(h, 0, sizeof *h);
}

blo_tensor *blo_hyperclean_logits(blo_ctx *ctx, blo_tensor *X, blo_tensor *W, blo_tensor *b) {
    return blo_add(ctx, blo_matmul(ctx, X, W), b);
}

blo_status blo_hyperclean_distribute(blo_hyperclean *h, blo_comm *comm, char *err, size_t errlen) {
    int R = blo_comm_size(comm), r = blo_comm_rank(comm);
    if (!h || !h->ctx) return blo__fail(err, errlen, BLO_ERR_INVALID, "hyperclean: no data to shard");
    if (R <= 1) return BLO_OK;
    if (h->n < R || h->nv < R)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "hyperclean: %lld training and %lld validation rows cannot be shared by "
                         "%d ranks (each needs at least one of each)",
                         (long long)h->n, (long long)h->nv, R);
    h->comm = comm;
    blo__rank_block(h->n, R, r, &h->lo, &h->n_local);
    blo__rank_block(h->nv, R, r, &h->vlo, &h->nv_local);
    int rec = blo_ctx_set_recording(h->ctx, 0);
    h->X = blo_slice(h->ctx, h->X, 0, h->lo, h->lo + h->n_local, 1);
    h->labels = blo_slice(h->ctx, h->labels, 0, h->lo, h->lo + h->n_local, 1);
    h->Xv = blo_slice(h->ctx, h->Xv, 0, h->vlo, h->vlo + h->nv_local, 1);
    h->labels_v = blo_slice(h->ctx, h->labels_v, 0, h->vlo, h->vlo + h->nv_local, 1);
    blo_ctx_set_recording(h->ctx, rec);
    if (!h->X || !h->labels || !h->Xv || !h->labels_v)
        return blo__fail(err, errlen, blo_ctx_status(h->ctx), "hyperclean: %s", blo_ctx_error(h->ctx));
    return BLO_OK;
}

/* The model's parameters as rank-local computation sees them: replicated (blo/dist.h). */
static void local_y(blo_ctx *ctx, const blo_hyperclean *h, blo_tensor *const *y, blo_tensor **yr) {
    for (int i = 0; i < h->ny; i++) yr[i] = blo_replicate(ctx, h->comm, y[i]);
}

/* f = (1/n) Σ_i σ(x_i) CE_i: blo_cross_entropy's MEAN divides by n, not by Σ σ(x_i). On R ranks
 * f = allreduce_sum(Σ_{i in shard} σ(x_i) CE_i) / n. */
static blo_tensor *lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                         const blo_eval *ev, void *user) {
    (void)ev;
    blo_hyperclean *h = user;
    if (!h->comm) {
        blo_tensor *logits = blo_hyperclean_model(ctx, h, h->X, y);
        return blo_cross_entropy(ctx, logits, h->labels, blo_sigmoid(ctx, x[0]), BLO_REDUCE_MEAN);
    }
    blo_tensor *yr[4];
    local_y(ctx, h, y, yr);
    blo_tensor *xr = blo_slice(ctx, blo_replicate(ctx, h->comm, x[0]), 0, h->lo, h->lo + h->n_local, 1);
    blo_tensor *sum = blo_cross_entropy(ctx, blo_hyperclean_model(ctx, h, h->X, yr), h->labels,
                                        blo_sigmoid(ctx, xr), BLO_REDUCE_SUM);
    return blo_scale(ctx, blo_allreduce_sum(ctx, h->comm, sum), 1.0 / (double)h->n);
}

static blo_tensor *upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                         const blo_eval *ev, void *user) {
    (void)x;
    (void)ev;
    blo_hyperclean *h = user;
    if (!h->comm) {
        blo_tensor *logits = blo_hyperclean_model(ctx, h, h->Xv, y);
        return blo_cross_entropy(ctx, logits, h->labels_v, NULL, BLO_REDUCE_MEAN);
    }
    blo_tensor *yr[4];
    local_y(ctx, h, y, yr);
    blo_tensor *sum = blo_cross_entropy(ctx, blo_hyperclean_model(ctx, h, h->Xv, yr), h->labels_v,
                                        NULL, BLO_REDUCE_SUM);
    return blo_scale(ctx, blo_allreduce_sum(ctx, h->comm, sum), 1.0 / (double)h->nv);
}

blo_problem blo_hyperclean_problem(blo_hyperclean *h) {
    return blo__task_problem(1, h->x0, h->ny, h->y0, upper, lower, h);
}
