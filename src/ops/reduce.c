/* reduce.c — sum, mean, max, logsumexp over chosen axes; sum_to (the adjoint of broadcasting)
 * and dot. sum is the primitive with a tape node (its backward broadcasts the gradient back);
 * mean and logsumexp are compositions of recorded ops, so they differentiate to any order. */
#include "ops_util.h"

#include <math.h>
#include <string.h>

bool blo__axes_mask(blo_ctx *ctx, const char *op, const blo_tensor *a, int naxes, const int *axes,
                    unsigned *mask) {
    if (naxes == 0) {
        *mask = (1u << a->ndim) - 1u;
        return true;
    }
    if (naxes < 0 || !axes) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "%s: %d axes given with axes = %p", op, naxes,
                          (const void *)axes);
        return false;
    }
    unsigned m = 0;
    for (int i = 0; i < naxes; i++) {
        int ax = blo__axis(axes[i], a->ndim);
        if (ax < 0) {
            char d[64];
            blo_ctx_set_error(ctx, BLO_ERR_INVALID, "%s: axis %d is out of range for %s", op,
                              axes[i], blo__desc(a, d, sizeof d));
            return false;
        }
        m |= 1u << ax;
    }
    *mask = m;
    return true;
}

int blo__reduced_shape(const blo_tensor *a, unsigned mask, int keepdim, int64_t *shape) {
    int nd = 0;
    for (int i = 0; i < a->ndim; i++) {
        if (mask & (1u << i)) {
            if (keepdim) shape[nd++] = 1;
        } else {
            shape[nd++] = a->shape[i];
        }
    }
    return nd;
}

blo_tensor *blo__reduce_const(blo_ctx *ctx, blo_reduce_kind k, blo_tensor *a, unsigned mask) {
    int64_t sh[BLO_MAX_DIMS];
    int nd = blo__reduced_shape(a, mask, 1, sh);
    blo_tensor *out = blo__alloc(ctx, a->dtype, nd, sh);
    if (!out) return NULL;
    ctx->be->reduce(k, a, out);
    return out;
}

/* sum: node params ip[0] = axes mask, ip[1] = keepdim. */
static blo_status sum_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                         const bool *need, blo_tensor **gin) {
    (void)out, (void)need;
    const blo_tensor *a = n->in[0];
    if (!n->ip[1]) { /* put the reduced axes back as size 1 */
        int64_t sh[BLO_MAX_DIMS];
        int nd = blo__reduced_shape(a, (unsigned)n->ip[0], 1, sh);
        g = blo_reshape(ctx, g, nd, sh);
    }
    gin[0] = blo_expand(ctx, g, a->ndim, a->shape);
    return ctx->status;
}
static const blo_op_def SUM = {"sum", sum_bw, 1};

blo_tensor *blo_sum(blo_ctx *ctx, blo_tensor *a, int naxes, const int *axes, int keepdim) {
    BLO_GUARD(ctx);
    if (!a) return NULL;
    if (!blo__check_float(ctx, "blo_sum", a)) return NULL;
    unsigned mask;
    if (!blo__axes_mask(ctx, "blo_sum", a, naxes, axes, &mask)) return NULL;
    blo_tensor *out = blo__reduce_const(ctx, BLO_R_SUM, a, mask);
    if (!out) return NULL;
    if (!keepdim) {
        int64_t sh[BLO_MAX_DIMS];
        int nd = blo__reduced_shape(a, mask, 0, sh);
        out->ndim = nd; /* fresh contiguous storage: dropping size-1 axes is free */
        memcpy(out->shape, sh, sizeof(int64_t) * (size_t)nd);
        blo__contig_strides(nd, out->shape, out->stride);
    }
    blo_node *n;
    BLO_RECORD(n, ctx, out, &SUM, 1, a);
    if (n) {
        n->ip[0] = mask;
        n->ip[1] = keepdim ? 1 : 0;
    }
    return out;
}

blo_tensor *blo_sum_all(blo_ctx *ctx, blo_tensor *a) {
    return blo_sum(ctx, a, 0, NULL, 0);
}

blo_tensor *blo_mean(blo_ctx *ctx, blo_tensor *a, int naxes, const int *axes, int keepdim) {
    BLO_GUARD(ctx);
    if (!a) return NULL;
    unsigned mask;
    if (!blo__axes_mask(ctx, "blo_mean", a, naxes, axes, &mask)) return NULL;
    double count = 1;
    for (int i = 0; i < a->ndim; i++)
        if (mask & (1u << i)) count *= (double)a->shape[i];
    return blo_scale(ctx, blo_sum(ctx, a, naxes, axes, keepdim), count > 0 ? 1.0 / count : NAN);
}

/* max: the gradient flows to the maximal elements, split equally between ties. The mask and
 * the tie count are constants. ip[0] = mask, ip[1] = keepdim. */
static blo_status max_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                         const bool *need, blo_tensor **gin) {
    (void)need;
    blo_tensor *a = n->in[0];
    unsigned mask = (unsigned)n->ip[0];
    int64_t sh[BLO_MAX_DIMS];
    int nd = blo__reduced_shape(a, mask, 1, sh);
    blo_tensor *outk = blo_detach(ctx, out), *gk = g;
    if (!n->ip[1]) {
        outk = blo_reshape(ctx, outk, nd, sh);
        gk = blo_reshape(ctx, g, nd, sh);
    }
    blo_tensor *sel = blo_eq(ctx, blo_detach(ctx, a), outk); /* constant 0/1 */
    blo_tensor *cnt = sel ? blo__reduce_const(ctx, BLO_R_SUM, sel, mask) : NULL;
    blo_tensor *w = blo_div(ctx, sel, cnt);
    gin[0] = blo_mul(ctx, blo_expand(ctx, gk, a->ndim, a->shape), w);
    return ctx->status;
}
static const blo_op_def MAX = {"max", max_bw, 1};

blo_tensor *blo_max(blo_ctx *ctx, blo_tensor *a, int naxes, const int *axes, int keepdim) {
    BLO_GUARD(ctx);
    if (!a) return NULL;
    if (!blo__check_float(ctx, "blo_max", a)) return NULL;
    unsigned mask;
    if (!blo__axes_mask(ctx, "blo_max", a, naxes, axes, &mask)) return NULL;
    if (blo__numel(a->ndim, a->shape) == 0) {
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "blo_max: empty tensor");
        return NULL;
    }
    blo_tensor *out = blo__reduce_const(ctx, BLO_R_MAX, a, mask);
    if (!out) return NULL;
    if (!keepdim) {
        int64_t sh[BLO_MAX_DIMS];
        int nd = blo__reduced_shape(a, mask, 0, sh);
        out->ndim = nd;
        memcpy(out->shape, sh, sizeof(int64_t) * (size_t)nd);
        blo__contig_strides(nd, out->shape, out->stride);
    }
    blo_node *n;
    BLO_RECORD(n, ctx, out, &MAX, 1, a);
    if (n) {
        n->ip[0] = mask;
        n->ip[1] = keepdim ? 1 : 0;
    }
    return out;
}

/* logsumexp(a) = m + log Σ exp(a - m), with m the (constant) maximum for stability. */
blo_tensor *blo_logsumexp(blo_ctx *ctx, blo_tensor *a, int naxes, const int *axes,
                          int keepdim) {
    BLO_GUARD(ctx);
    if (!a) return NULL;
    if (!blo__check_float(ctx, "blo_logsumexp", a)) return NULL;
    unsigned mask;
    if (!blo__axes_mask(ctx, "blo_logsumexp", a, naxes, axes, &mask)) return NULL;
    blo_tensor *m = blo__reduce_const(ctx, BLO_R_MAX, a, mask);
    if (!m) return NULL;
    ctx->be->unary(BLO_U_FINITE, NULL, m, m); /* an all -inf slice: shift by 0, not inf */
    blo_tensor *s = blo_sum(ctx, blo_exp(ctx, blo_sub(ctx, a, m)), naxes, axes, 1);
    blo_tensor *out = blo_add(ctx, blo_log(ctx, s), m);
    if (!out || keepdim) return out;
    int64_t sh[BLO_MAX_DIMS];
    int nd = blo__reduced_shape(a, mask, 0, sh);
    return blo_reshape(ctx, out, nd, sh);
}

blo_tensor *blo_sum_to(blo_ctx *ctx, blo_tensor *a, int ndim, const int64_t *shape) {
    BLO_GUARD(ctx);
    if (!a) return NULL;
    if (ndim == a->ndim && !memcmp(shape, a->shape, sizeof(int64_t) * (size_t)ndim)) return a;
    int lead = a->ndim - ndim;
    bool ok = lead >= 0;
    int axes[BLO_MAX_DIMS], na = 0;
    for (int i = 0; ok && i < a->ndim; i++) {
        if (i < lead)
            axes[na++] = i;
        else if (shape[i - lead] == 1 && a->shape[i] != 1)
            axes[na++] = i;
        else if (shape[i - lead] != a->shape[i])
            ok = false;
    }
    if (!ok) {
        char d[64];
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "blo_sum_to: %s cannot be summed to a %d-d shape",
                          blo__desc(a, d, sizeof d), ndim);
        return NULL;
    }
    blo_tensor *s = na ? blo_sum(ctx, a, na, axes, 1) : a;
    return blo_reshape(ctx, s, ndim, shape);
}

blo_tensor *blo__sum_like(blo_ctx *ctx, blo_tensor *g, const blo_tensor *like) {
    return blo_sum_to(ctx, g, like->ndim, like->shape);
}

blo_tensor *blo_dot(blo_ctx *ctx, blo_tensor *a, blo_tensor *b) {
    BLO_GUARD(ctx);
    if (!a || !b) return NULL;
    if (a->ndim != b->ndim || memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim)) {
        char x[64], y[64];
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "blo_dot: shapes %s and %s differ",
                          blo__desc(a, x, sizeof x), blo__desc(b, y, sizeof y));
        return NULL;
    }
    return blo_sum_all(ctx, blo_mul(ctx, a, b));
}
