/* index.c — gather / scatter_add, index_select / index_add, one_hot. Each pair is mutually
 * adjoint, so each one's backward is the other and both differentiate to any order. */
#include "ops_util.h"

#include <string.h>

/* Checks that idx is an i64 tensor whose values lie in [0, n). */
static bool check_index(blo_ctx *ctx, const char *op, const blo_tensor *idx, int64_t n) {
    if (idx->dtype != BLO_I64) {
        blo_ctx_set_error(ctx, BLO_ERR_DTYPE, "%s: indices must be i64, got %s", op,
                          blo_dtype_name(idx->dtype));
        return false;
    }
    int64_t v = 0, i = ctx->be->index_outside(idx, n, &v);
    if (i >= 0) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "%s: index %lld at position %lld is outside [0, %lld)",
                          op, (long long)v, (long long)i, (long long)n);
        return false;
    }
    return true;
}

/* Shared check for gather/scatter: idx has a's rank and sizes no larger off the axis. */
static bool check_gather(blo_ctx *ctx, const char *op, const blo_tensor *a, int ax,
                         const blo_tensor *idx) {
    bool ok = idx->ndim == a->ndim;
    for (int d = 0; ok && d < a->ndim; d++) ok = d == ax || idx->shape[d] <= a->shape[d];
    if (!ok) {
        char x[64], y[64];
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "%s: index %s does not fit %s on axis %d", op,
                          blo__desc(idx, x, sizeof x), blo__desc(a, y, sizeof y), ax);
        return false;
    }
    return check_index(ctx, op, idx, a->shape[ax]);
}

static blo_status gather_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                            const bool *need, blo_tensor **gin) {
    (void)out, (void)need;
    blo_tensor *a = n->in[0];
    blo_tensor *z = blo_zeros(ctx, g->dtype, a->ndim, a->shape);
    gin[0] = blo_scatter_add(ctx, z, (int)n->ip[0], n->saved[0], g);
    return ctx->status;
}
static const blo_op_def GATHER = {"gather", gather_bw, 1};

blo_tensor *blo_gather(blo_ctx *ctx, blo_tensor *a, int axis, blo_tensor *idx) {
    BLO_GUARD(ctx);
    if (!a || !idx) return NULL;
    int ax = blo__axis(axis, a->ndim);
    if (ax < 0) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_gather: axis %d out of range", axis);
        return NULL;
    }
    if (!blo__check_float(ctx, "blo_gather", a) || !check_gather(ctx, "blo_gather", a, ax, idx))
        return NULL;
    blo_tensor *out = blo__alloc(ctx, a->dtype, idx->ndim, idx->shape);
    if (!out) return NULL;
    ctx->be->gather(a, ax, idx, out);
    blo_node *n;
    BLO_RECORD(n, ctx, out, &GATHER, 1, a);
    if (n) {
        n->ip[0] = ax;
        n->saved[0] = idx;
    }
    return out;
}

static blo_status scatter_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                             const bool *need, blo_tensor **gin) {
    (void)out;
    if (need[0]) gin[0] = g;
    if (need[1]) gin[1] = blo_gather(ctx, g, (int)n->ip[0], n->saved[0]);
    return ctx->status;
}
static const blo_op_def SCATTER = {"scatter_add", scatter_bw, 1};

blo_tensor *blo_scatter_add(blo_ctx *ctx, blo_tensor *base, int axis, blo_tensor *idx,
                            blo_tensor *src) {
    BLO_GUARD(ctx);
    if (!base || !idx || !src) return NULL;
    int ax = blo__axis(axis, base->ndim);
    if (ax < 0) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_scatter_add: axis %d out of range", axis);
        return NULL;
    }
    if (!blo__check_same_dtype(ctx, "blo_scatter_add", base, src) ||
        !check_gather(ctx, "blo_scatter_add", base, ax, idx))
        return NULL;
    if (src->ndim != idx->ndim || memcmp(src->shape, idx->shape, sizeof(int64_t) * (size_t)src->ndim)) {
        char x[64], y[64];
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "blo_scatter_add: src %s and index %s differ",
                          blo__desc(src, x, sizeof x), blo__desc(idx, y, sizeof y));
        return NULL;
    }
    blo_tensor *out = blo__alloc(ctx, base->dtype, base->ndim, base->shape);
    if (!out) return NULL;
    ctx->be->copy(base, out);
    ctx->be->scatter_add(out, ax, idx, src);
    blo_node *n;
    BLO_RECORD(n, ctx, out, &SCATTER, 2, base, src);
    if (n) {
        n->ip[0] = ax;
        n->saved[0] = idx;
    }
    return out;
}

/* index_add (internal): a copy of base with src's slices added at rows idx along axis. */
static blo_tensor *index_add(blo_ctx *ctx, blo_tensor *base, int axis, blo_tensor *idx,
                             blo_tensor *src);

static blo_status index_select_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                                  const bool *need, blo_tensor **gin) {
    (void)out, (void)need;
    blo_tensor *a = n->in[0];
    blo_tensor *z = blo_zeros(ctx, g->dtype, a->ndim, a->shape);
    gin[0] = index_add(ctx, z, (int)n->ip[0], n->saved[0], g);
    return ctx->status;
}
static const blo_op_def INDEX_SELECT = {"index_select", index_select_bw, 1};

static blo_status index_add_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                               const bool *need, blo_tensor **gin) {
    (void)out;
    if (need[0]) gin[0] = g;
    if (need[1]) gin[1] = blo_index_select(ctx, g, (int)n->ip[0], n->saved[0]);
    return ctx->status;
}
static const blo_op_def INDEX_ADD = {"index_add", index_add_bw, 1};

blo_tensor *blo_index_select(blo_ctx *ctx, blo_tensor *a, int axis, blo_tensor *idx) {
    BLO_GUARD(ctx);
    if (!a || !idx) return NULL;
    int ax = blo__axis(axis, a->ndim);
    if (ax < 0 || idx->ndim != 1) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                          "blo_index_select: axis %d out of range or index not 1-d", axis);
        return NULL;
    }
    if (!blo__check_float(ctx, "blo_index_select", a) ||
        !check_index(ctx, "blo_index_select", idx, a->shape[ax]))
        return NULL;
    int64_t sh[BLO_MAX_DIMS];
    memcpy(sh, a->shape, sizeof sh);
    sh[ax] = idx->shape[0];
    blo_tensor *out = blo__alloc(ctx, a->dtype, a->ndim, sh);
    if (!out) return NULL;
    ctx->be->index_select(a, ax, idx, out);
    blo_node *n;
    BLO_RECORD(n, ctx, out, &INDEX_SELECT, 1, a);
    if (n) {
        n->ip[0] = ax;
        n->saved[0] = idx;
    }
    return out;
}

static blo_tensor *index_add(blo_ctx *ctx, blo_tensor *base, int axis, blo_tensor *idx,
                             blo_tensor *src) {
    if (!base || !src) return NULL;
    blo_tensor *out = blo__alloc(ctx, base->dtype, base->ndim, base->shape);
    if (!out) return NULL;
    ctx->be->copy(base, out);
    ctx->be->index_add(out, axis, idx, src);
    blo_node *n;
    BLO_RECORD(n, ctx, out, &INDEX_ADD, 2, base, src);
    if (n) {
        n->ip[0] = axis;
        n->saved[0] = idx;
    }
    return out;
}

blo_tensor *blo_one_hot(blo_ctx *ctx, blo_tensor *labels, int64_t num_classes, blo_dtype dt) {
    BLO_GUARD(ctx);
    if (!labels) return NULL;
    if (labels->ndim != 1 || num_classes < 1 || dt == BLO_I64) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                          "blo_one_hot: needs 1-d labels, num_classes >= 1 and a float dtype");
        return NULL;
    }
    if (!check_index(ctx, "blo_one_hot", labels, num_classes)) return NULL;
    /* out[i, labels_i] = 1: ones scattered into zeros at the labels, seen as [N, 1] */
    int64_t sh[2] = {labels->shape[0], num_classes}, col[2] = {sh[0], 1};
    int64_t st[2] = {labels->stride[0], 1};
    blo_tensor *out = blo_zeros(ctx, dt, 2, sh);
    blo_tensor *ones = blo_full(ctx, dt, 2, col, 1.0);
    blo_tensor *idx = blo__view(ctx, labels, 2, col, st, 0);
    if (!out || !ones || !idx) return NULL;
    ctx->be->scatter_add(out, 1, idx, ones);
    return out;
}
