/* shape.c — reshape, permute/transpose, expand, slice, concat, contiguous and cast.
 * Views share storage with their input; each records a node whose backward is the inverse
 * view (or, for slice, its adjoint: placing the gradient into zeros). */
#include "ops_util.h"

#include <string.h>

/* ---- contiguous ---------------------------------------------------------------------------- */

static blo_status ident_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                           const bool *need, blo_tensor **gin) {
    (void)ctx, (void)n, (void)out, (void)need;
    gin[0] = g;
    return BLO_OK;
}
static const blo_op_def CONTIG = {"contiguous", ident_bw, 1};

blo_tensor *blo_contiguous(blo_ctx *ctx, blo_tensor *a) {
    BLO_GUARD(ctx);
    if (!a) return NULL;
    if (blo__is_contig(a)) return a;
    blo_tensor *out = blo__alloc(ctx, a->dtype, a->ndim, a->shape);
    if (!out) return NULL;
    ctx->be->copy(a, out);
    blo_node *n;
    BLO_RECORD(n, ctx, out, &CONTIG, 1, a);
    (void)n;
    return out;
}

/* ---- cast -------------------------------------------------------------------------------------- */

static blo_status cast_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                          const bool *need, blo_tensor **gin) {
    (void)out, (void)need;
    gin[0] = blo_cast(ctx, g, n->in[0]->dtype);
    return ctx->status;
}
static const blo_op_def CAST = {"cast", cast_bw, 1};

blo_tensor *blo_cast(blo_ctx *ctx, blo_tensor *a, blo_dtype dt) {
    BLO_GUARD(ctx);
    if (!a) return NULL;
    if (a->dtype == dt) return a;
    if (dt == BLO_I64 && a->requires_grad) {
        blo_ctx_set_error(ctx, BLO_ERR_DTYPE, "blo_cast: cannot cast a variable to i64");
        return NULL;
    }
    blo_tensor *out = blo__alloc(ctx, dt, a->ndim, a->shape);
    if (!out) return NULL;
    ctx->be->copy(a, out);
    if (dt != BLO_I64 && a->dtype != BLO_I64) {
        blo_node *n;
        BLO_RECORD(n, ctx, out, &CAST, 1, a);
        (void)n;
    }
    return out;
}

/* ---- reshape ------------------------------------------------------------------------------------ */

static blo_status reshape_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                             const bool *need, blo_tensor **gin) {
    (void)out, (void)need;
    gin[0] = blo_reshape(ctx, g, n->in[0]->ndim, n->in[0]->shape);
    return ctx->status;
}
static const blo_op_def RESHAPE = {"reshape", reshape_bw, 1};

blo_tensor *blo_reshape(blo_ctx *ctx, blo_tensor *a, int ndim, const int64_t *shape) {
    BLO_GUARD(ctx);
    if (!a) return NULL;
    if (ndim < 0 || ndim > BLO_MAX_DIMS || (ndim > 0 && !shape)) {
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "blo_reshape: bad target rank %d", ndim);
        return NULL;
    }
    int64_t sh[BLO_MAX_DIMS], known = 1;
    int infer = -1;
    for (int i = 0; i < ndim; i++) {
        sh[i] = shape[i];
        if (shape[i] == -1 && infer < 0) {
            infer = i;
        } else if (shape[i] < 0) {
            blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "blo_reshape: bad size %lld on axis %d",
                              (long long)shape[i], i);
            return NULL;
        } else {
            known *= shape[i];
        }
    }
    int64_t n = blo__numel(a->ndim, a->shape);
    if (infer >= 0) sh[infer] = known ? n / known : 0;
    if (blo__numel(ndim, sh) != n) {
        char d[64];
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE,
                          "blo_reshape: %s has %lld elements, the target shape %lld", 
                          blo__desc(a, d, sizeof d), (long long)n, (long long)blo__numel(ndim, sh));
        return NULL;
    }
    if (ndim == a->ndim && !memcmp(sh, a->shape, sizeof(int64_t) * (size_t)ndim)) return a;
    blo_tensor *src = a;
    if (!blo__is_contig(a)) {
        /* A copy (recorded as contiguous), then a view of the copy. */
        src = blo_contiguous(ctx, a);
        if (!src) return NULL;
    }
    int64_t st[BLO_MAX_DIMS];
    blo__contig_strides(ndim, sh, st);
    blo_tensor *out = blo__view(ctx, src, ndim, sh, st, 0);
    if (!out) return NULL;
    blo_node *nd;
    BLO_RECORD(nd, ctx, out, &RESHAPE, 1, src);
    (void)nd;
    return out;
}

blo_tensor *blo_flatten(blo_ctx *ctx, blo_tensor *a) {
    BLO_GUARD(ctx);
    if (!a) return NULL;
    if (a->ndim < 1) {
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "blo_flatten: needs at least one axis");
        return NULL;
    }
    int64_t sh[2] = {a->shape[0], -1};
    if (a->shape[0] == 0) sh[1] = 0;
    return blo_reshape(ctx, a, 2, sh);
}

/* ---- permute / transpose ---------------------------------------------------------------------- */

static blo_status permute_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                             const bool *need, blo_tensor **gin) {
    (void)out, (void)need;
    int inv[BLO_MAX_DIMS];
    for (int i = 0; i < n->in[0]->ndim; i++) inv[n->ip[i]] = i;
    gin[0] = blo_permute(ctx, g, inv);
    return ctx->status;
}
static const blo_op_def PERMUTE = {"permute", permute_bw, 1};

blo_tensor *blo_permute(blo_ctx *ctx, blo_tensor *a, const int *perm) {
    BLO_GUARD(ctx);
    if (!a) return NULL;
    int seen[BLO_MAX_DIMS] = {0}, p[BLO_MAX_DIMS];
    bool ident = true;
    for (int i = 0; i < a->ndim; i++) {
        p[i] = perm ? blo__axis(perm[i], a->ndim) : -1;
        if (p[i] < 0 || seen[p[i]]++) {
            blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                              "blo_permute: the permutation is not one of %d axes", a->ndim);
            return NULL;
        }
        ident &= p[i] == i;
    }
    if (ident) return a;
    int64_t sh[BLO_MAX_DIMS], st[BLO_MAX_DIMS];
    for (int i = 0; i < a->ndim; i++) {
        sh[i] = a->shape[p[i]];
        st[i] = a->stride[p[i]];
    }
    blo_tensor *out = blo__view(ctx, a, a->ndim, sh, st, 0);
    if (!out) return NULL;
    blo_node *n;
    BLO_RECORD(n, ctx, out, &PERMUTE, 1, a);
    if (n)
        for (int i = 0; i < a->ndim; i++) n->ip[i] = p[i];
    return out;
}

blo_tensor *blo_transpose(blo_ctx *ctx, blo_tensor *a, int d0, int d1) {
    BLO_GUARD(ctx);
    if (!a) return NULL;
    int x = blo__axis(d0, a->ndim), y = blo__axis(d1, a->ndim);
    if (x < 0 || y < 0) {
        char d[64];
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_transpose: axes %d, %d out of range for %s",
                          d0, d1, blo__desc(a, d, sizeof d));
        return NULL;
    }
    int p[BLO_MAX_DIMS];
    for (int i = 0; i < a->ndim; i++) p[i] = i;
    p[x] = y;
    p[y] = x;
    return blo_permute(ctx, a, p);
}

/* ---- expand ----------------------------------------------------------------------------------------- */

static blo_status expand_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                            const bool *need, blo_tensor **gin) {
    (void)out, (void)need;
    gin[0] = blo__sum_like(ctx, g, n->in[0]);
    return ctx->status;
}
static const blo_op_def EXPAND = {"expand", expand_bw, 1};

blo_tensor *blo_expand(blo_ctx *ctx, blo_tensor *a, int ndim, const int64_t *shape) {
    BLO_GUARD(ctx);
    if (!a) return NULL;
    int nd;
    int64_t sh[BLO_MAX_DIMS];
    bool ok = ndim >= a->ndim && ndim <= BLO_MAX_DIMS &&
              blo__broadcast_shape(a->ndim, a->shape, ndim, shape, &nd, sh) && nd == ndim &&
              !memcmp(sh, shape, sizeof(int64_t) * (size_t)ndim);
    if (!ok) {
        char d[64];
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "blo_expand: %s cannot be broadcast to a %d-d shape",
                          blo__desc(a, d, sizeof d), ndim);
        return NULL;
    }
    if (ndim == a->ndim && !memcmp(shape, a->shape, sizeof(int64_t) * (size_t)ndim)) return a;
    blo_tensor *out = blo__expand_view(ctx, a, ndim, shape);
    if (!out) return NULL;
    blo_node *n;
    BLO_RECORD(n, ctx, out, &EXPAND, 1, a);
    (void)n;
    return out;
}

/* ---- slice and its adjoint ---------------------------------------------------------------------------
 * slice: ip[0] axis, ip[1] start, ip[2] step, ip[3] length. Its adjoint "unslice" puts g into
 * zeros of the input's shape; each is the other's backward. */
static blo_tensor *unslice(blo_ctx *ctx, blo_tensor *g, const blo_tensor *like, int axis,
                           int64_t start, int64_t step);

static blo_status slice_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                           const bool *need, blo_tensor **gin) {
    (void)out, (void)need;
    gin[0] = unslice(ctx, g, n->in[0], (int)n->ip[0], n->ip[1], n->ip[2]);
    return ctx->status;
}
static const blo_op_def SLICE = {"slice", slice_bw, 1};

static blo_status unslice_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                             const bool *need, blo_tensor **gin) {
    (void)out, (void)need;
    gin[0] = blo_slice(ctx, g, (int)n->ip[0], n->ip[1], n->ip[1] + n->ip[3] * n->ip[2], n->ip[2]);
    return ctx->status;
}
static const blo_op_def UNSLICE = {"unslice", unslice_bw, 1};

blo_tensor *blo_slice(blo_ctx *ctx, blo_tensor *a, int axis, int64_t start, int64_t stop,
                      int64_t step) {
    BLO_GUARD(ctx);
    if (!a) return NULL;
    int ax = blo__axis(axis, a->ndim);
    if (ax < 0 || step < 1) {
        char d[64];
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_slice: axis %d / step %lld invalid for %s",
                          axis, (long long)step, blo__desc(a, d, sizeof d));
        return NULL;
    }
    int64_t n = a->shape[ax];
    if (start < 0) start += n;
    if (stop < 0) stop += n;
    if (start < 0) start = 0;
    if (start > n) start = n;
    if (stop > n) stop = n;
    if (stop < start) stop = start;
    int64_t len = (stop - start + step - 1) / step;
    if (start == 0 && len == n && step == 1) return a;
    int64_t sh[BLO_MAX_DIMS], st[BLO_MAX_DIMS];
    memcpy(sh, a->shape, sizeof sh);
    memcpy(st, a->stride, sizeof st);
    sh[ax] = len;
    st[ax] = a->stride[ax] * step;
    blo_tensor *out = blo__view(ctx, a, a->ndim, sh, st, len ? start * a->stride[ax] : 0);
    if (!out) return NULL;
    blo_node *nd;
    BLO_RECORD(nd, ctx, out, &SLICE, 1, a);
    if (nd) {
        nd->ip[0] = ax;
        nd->ip[1] = start;
        nd->ip[2] = step;
        nd->ip[3] = len;
    }
    return out;
}

static blo_tensor *unslice(blo_ctx *ctx, blo_tensor *g, const blo_tensor *like, int axis,
                           int64_t start, int64_t step) {
    if (!g) return NULL;
    blo_tensor *out = blo_zeros(ctx, g->dtype, like->ndim, like->shape);
    if (!out) return NULL;
    blo_tensor win = *out;
    win.shape[axis] = g->shape[axis];
    win.stride[axis] = out->stride[axis] * step;
    blo__view_shift(&win, start * out->stride[axis]);
    if (g->shape[axis] > 0) ctx->be->copy(g, &win);
    blo_node *n;
    BLO_RECORD(n, ctx, out, &UNSLICE, 1, g);
    if (n) {
        n->ip[0] = axis;
        n->ip[1] = start;
        n->ip[2] = step;
        n->ip[3] = g->shape[axis];
    }
    return out;
}

/* ---- concat ----------------------------------------------------------------------------------------------
 * ip[0] = axis; the inputs are in var_in (any number). Backward: slices of g. */
static blo_status concat_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                            const bool *need, blo_tensor **gin) {
    (void)out;
    int axis = (int)n->ip[0];
    int64_t off = 0;
    blo_tensor *const *in;
    int nin = blo__node_inputs(n, &in);
    for (int i = 0; i < nin; i++) {
        int64_t len = in[i]->shape[axis];
        if (need[i]) gin[i] = blo_contiguous(ctx, blo_slice(ctx, g, axis, off, off + len, 1));
        off += len;
    }
    return ctx->status;
}
static const blo_op_def CONCAT = {"concat", concat_bw, 1};

blo_tensor *blo_concat(blo_ctx *ctx, int n, blo_tensor *const *ts, int axis) {
    BLO_GUARD(ctx);
    if (n < 1 || !ts) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_concat: no tensors");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!ts[i]) return NULL;
    const blo_tensor *t0 = ts[0];
    int ax = blo__axis(axis, t0->ndim);
    if (ax < 0) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_concat: axis %d out of range", axis);
        return NULL;
    }
    int64_t sh[BLO_MAX_DIMS];
    memcpy(sh, t0->shape, sizeof sh);
    sh[ax] = 0;
    for (int i = 0; i < n; i++) {
        const blo_tensor *t = ts[i];
        bool ok = t->ndim == t0->ndim && t->dtype == t0->dtype;
        for (int d = 0; ok && d < t->ndim; d++) ok = d == ax || t->shape[d] == t0->shape[d];
        if (!ok) {
            char x[64], y[64];
            blo_ctx_set_error(ctx, BLO_ERR_SHAPE,
                              "blo_concat: tensor %d is %s, which does not fit %s on axis %d", i,
                              blo__desc(t, x, sizeof x), blo__desc(t0, y, sizeof y), ax);
            return NULL;
        }
        sh[ax] += t->shape[ax];
    }
    blo_tensor *out = blo__alloc(ctx, t0->dtype, t0->ndim, sh);
    if (!out) return NULL;
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        blo_tensor win = *out;
        win.shape[ax] = ts[i]->shape[ax];
        blo__view_shift(&win, off * out->stride[ax]);
        if (win.shape[ax] > 0) ctx->be->copy(ts[i], &win);
        off += ts[i]->shape[ax];
    }
    blo_node *nd = blo__record(ctx, out, &CONCAT, n, ts);
    if (!nd && out->requires_grad) return NULL;
    if (nd) nd->ip[0] = ax;
    return out;
}
