/* loss.c — softmax, log-softmax, cross-entropy (differentiable to any order, and a fused
 * first-order variant) and mean squared error. */
#include "ops_util.h"

#include <math.h>
#include <string.h>

/* log softmax is one recorded node: the forward's temporaries are released at once, and
 * the backward, g - softmax · Σ g with softmax = exp(out), is written with blo ops (so it
 * differentiates again through out). Recording the composition a - logsumexp(a) instead kept
 * about eight tensors of a's size per call on the tape, which dominated the memory of
 * reverse mode through unrolled classifiers. ip[0] = axis. */
static blo_status log_softmax_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                                 const bool *need, blo_tensor **gin) {
    (void)need;
    int axis = (int)n->ip[0];
    blo_tensor *sg = blo_sum(ctx, g, 1, &axis, 1);
    gin[0] = blo_sub(ctx, g, blo_mul(ctx, blo_exp(ctx, out), sg));
    return ctx->status;
}
static const blo_op_def LOG_SOFTMAX = {"log_softmax", log_softmax_bw, 1};

blo_tensor *blo_log_softmax(blo_ctx *ctx, blo_tensor *a, int axis) {
    BLO_GUARD(ctx);
    if (!a) return NULL;
    if (!blo__check_float(ctx, "blo_log_softmax", a)) return NULL;
    int ax = blo__axis(axis, a->ndim);
    if (ax < 0) {
        char d[64];
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_log_softmax: axis %d is out of range for %s",
                          axis, blo__desc(a, d, sizeof d));
        return NULL;
    }
    blo_tensor *out = blo__alloc(ctx, a->dtype, a->ndim, a->shape);
    if (!out) return NULL;
    blo_mark mk = blo_ctx_mark(ctx);
    int old = blo_ctx_set_recording(ctx, 0);
    blo_tensor *v = blo_sub(ctx, a, blo_logsumexp(ctx, a, 1, &ax, 1));
    blo_ctx_set_recording(ctx, old);
    if (!v) return NULL;
    ctx->be->copy(v, out);
    blo_ctx_rewind(ctx, mk);
    blo_node *n;
    BLO_RECORD(n, ctx, out, &LOG_SOFTMAX, 1, a);
    if (n) n->ip[0] = ax;
    return out;
}

blo_tensor *blo_softmax(blo_ctx *ctx, blo_tensor *a, int axis) {
    return blo_exp(ctx, blo_log_softmax(ctx, a, axis));
}

/* Checks logits [N, C], labels [N] (i64 in range) and weights [N] or NULL. */
static bool check_xent(blo_ctx *ctx, const char *op, const blo_tensor *logits,
                       const blo_tensor *labels, const blo_tensor *w) {
    if (!blo__check_float(ctx, op, logits)) return false;
    char x[64], y[64];
    if (logits->ndim != 2 || labels->ndim != 1 || labels->shape[0] != logits->shape[0]) {
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "%s: logits %s and labels %s: expected [N, C] and [N]",
                          op, blo__desc(logits, x, sizeof x), blo__desc(labels, y, sizeof y));
        return false;
    }
    if (labels->dtype != BLO_I64) {
        blo_ctx_set_error(ctx, BLO_ERR_DTYPE, "%s: labels must be i64", op);
        return false;
    }
    int64_t n = labels->shape[0], c = logits->shape[1], v = 0;
    int64_t i = ctx->be->index_outside(labels, c, &v);
    if (i >= 0) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "%s: label %lld of example %lld is outside [0, %lld)",
                          op, (long long)v, (long long)i, (long long)c);
        return false;
    }
    if (w && (w->ndim != 1 || w->shape[0] != n || w->dtype != logits->dtype)) {
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "%s: weights %s do not match %lld examples of %s", op,
                          blo__desc(w, x, sizeof x), (long long)n, blo_dtype_name(logits->dtype));
        return false;
    }
    return true;
}

static blo_tensor *reduce_terms(blo_ctx *ctx, blo_tensor *l, blo_reduction red) {
    if (!l) return NULL;
    switch (red) {
    case BLO_REDUCE_NONE: return l;
    case BLO_REDUCE_SUM: return blo_sum_all(ctx, l);
    case BLO_REDUCE_MEAN:
        return blo_scale(ctx, blo_sum_all(ctx, l), l->shape[0] ? 1.0 / (double)l->shape[0] : NAN);
    }
    blo_ctx_set_error(ctx, BLO_ERR_INVALID, "unknown reduction %d", (int)red);
    return NULL;
}

blo_tensor *blo_cross_entropy(blo_ctx *ctx, blo_tensor *logits, blo_tensor *labels,
                              blo_tensor *weights, blo_reduction red) {
    BLO_GUARD(ctx);
    if (!logits || !labels) return NULL;
    if (!check_xent(ctx, "blo_cross_entropy", logits, labels, weights)) return NULL;
    int64_t n = logits->shape[0];
    int64_t col[2] = {n, 1};
    blo_tensor *lab = blo_reshape(ctx, labels, 2, col);
    blo_tensor *picked = blo_gather(ctx, blo_log_softmax(ctx, logits, 1), 1, lab);
    blo_tensor *l = blo_neg(ctx, blo_reshape(ctx, picked, 1, &n));
    if (weights) l = blo_mul(ctx, l, weights);
    return reduce_terms(ctx, l, red);
}

/* Fused variant. Node: in[0] logits, in[1] weights (or NULL); saved[0] probs, saved[1] labels,
 * saved[2] the unweighted loss terms; ip[0] reduction. Its backward is a kernel of the
 * backend (not recorded), so it is flagged first order only. */
static blo_status xent_fast_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                               const bool *need, blo_tensor **gin) {
    (void)out;
    blo_tensor *p = n->saved[0], *lab = n->saved[1], *terms = n->saved[2], *w = n->in[1];
    int64_t N = p->shape[0];
    blo_reduction red = (blo_reduction)n->ip[0];
    double scale = red == BLO_REDUCE_MEAN ? 1.0 / (double)N : 1.0;
    blo_tensor *gl = need[0] ? blo__alloc(ctx, p->dtype, 2, p->shape) : NULL;
    blo_tensor *gw = w && need[1] ? blo__alloc(ctx, p->dtype, 1, w->shape) : NULL;
    if ((need[0] && !gl) || (w && need[1] && !gw)) return ctx->status;
    ctx->be->xent_backward(p, lab, terms, w, g, scale, gl, gw);
    gin[0] = gl;
    if (w) gin[1] = gw;
    return BLO_OK;
}
static const blo_op_def XENT_FAST = {"cross_entropy_fast", xent_fast_bw, 0};

blo_tensor *blo_cross_entropy_fast(blo_ctx *ctx, blo_tensor *logits, blo_tensor *labels,
                                   blo_tensor *weights, blo_reduction red) {
    BLO_GUARD(ctx);
    if (!logits || !labels) return NULL;
    if (!check_xent(ctx, "blo_cross_entropy_fast", logits, labels, weights)) return NULL;
    if (red != BLO_REDUCE_MEAN && red != BLO_REDUCE_SUM && red != BLO_REDUCE_NONE) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_cross_entropy_fast: unknown reduction %d",
                          (int)red);
        return NULL;
    }
    blo_tensor *lc = blo__is_contig(logits) ? logits : blo__alloc(ctx, logits->dtype, 2, logits->shape);
    if (!lc) return NULL;
    if (lc != logits) ctx->be->copy(logits, lc);
    int64_t N = logits->shape[0];
    blo_tensor *terms = blo__alloc(ctx, logits->dtype, 1, &N);
    blo_tensor *probs = blo__alloc(ctx, logits->dtype, 2, logits->shape);
    blo_tensor *lab = blo__is_contig(labels) ? labels : blo__alloc(ctx, BLO_I64, 1, &N);
    if (!terms || !probs || !lab) return NULL;
    if (lab != labels) ctx->be->copy(labels, lab);
    blo_tensor *out = blo__alloc(ctx, logits->dtype, red == BLO_REDUCE_NONE ? 1 : 0, &N);
    if (!out) return NULL;
    ctx->be->xent_forward(lc, lab, weights, red, terms, probs, out);
    blo_node *n;
    BLO_RECORD(n, ctx, out, &XENT_FAST, 2, logits, weights);
    if (n) {
        n->saved[0] = probs;
        n->saved[1] = lab;
        n->saved[2] = terms;
        n->ip[0] = red;
    }
    return out;
}

blo_tensor *blo_mse(blo_ctx *ctx, blo_tensor *pred, blo_tensor *target, blo_reduction red) {
    BLO_GUARD(ctx);
    if (!pred || !target) return NULL;
    if (!blo__check_same_dtype(ctx, "blo_mse", pred, target)) return NULL;
    if (pred->ndim < 1 || pred->ndim != target->ndim ||
        memcmp(pred->shape, target->shape, sizeof(int64_t) * (size_t)pred->ndim)) {
        char x[64], y[64];
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "blo_mse: prediction %s and target %s differ",
                          blo__desc(pred, x, sizeof x), blo__desc(target, y, sizeof y));
        return NULL;
    }
    blo_tensor *d = blo_sub(ctx, pred, target);
    blo_tensor *sq = blo_mul(ctx, d, d);
    if (pred->ndim > 1) {
        int axes[BLO_MAX_DIMS];
        for (int i = 1; i < pred->ndim; i++) axes[i - 1] = i;
        sq = blo_mean(ctx, sq, pred->ndim - 1, axes, 0);
    }
    return reduce_terms(ctx, sq, red);
}
