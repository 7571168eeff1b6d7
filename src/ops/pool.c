/* pool.c — 2-d max and average pooling over x [N, C, H, W].
 *
 * Window (oy, ox) covers rows oy·sh − ph + [0, KH) and columns ox·sw − pw + [0, KW) (floor
 * mode: OH = (H + 2 ph − KH) / sh + 1), as in PyTorch.
 *
 * max: the kernel finds each window's argmax a (padding is −inf); the op is then
 *   out[n][c][k] = x[n][c][a[n][c][k]]   (k = oy·OW + ox, x viewed as [N, C, H·W]),
 * a blo_gather, whose backward (scatter_add) and all higher orders come with it. The
 * argmax is a constant: max pooling is piecewise linear, so its second derivative is zero
 * away from ties.
 * avg: a linear map P with out = P x; its backward is the adjoint Pᵀ (a recorded op too),
 * and the backward of Pᵀ is P again, so both differentiate to any order.
 *
 * Padding is limited to half the kernel (PyTorch's rule): then every window holds a real
 * cell, so a max is always defined and count_include_pad = 0 never divides by zero.
 */
#include "ops_util.h"

#include <string.h>

/* Checks x and p; on success *rp holds p with the strides resolved, and *oh, *ow the output
 * size. */
static bool pool_check(blo_ctx *ctx, const char *op, const blo_tensor *x,
                       const blo_pool2d_params *p, blo_pool2d_params *rp, int64_t *oh,
                       int64_t *ow) {
    char d[64];
    if (!blo__check_float(ctx, op, x)) return false;
    if (!p) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "%s: no parameters given", op);
        return false;
    }
    if (x->ndim != 4) {
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "%s: x %s must be [N, C, H, W]", op,
                          blo__desc(x, d, sizeof d));
        return false;
    }
    *rp = *p;
    if (rp->stride_h == 0) rp->stride_h = rp->kernel_h;
    if (rp->stride_w == 0) rp->stride_w = rp->kernel_w;
    if (p->kernel_h < 1 || p->kernel_w < 1 || p->stride_h < 0 || p->stride_w < 0 || p->pad_h < 0 ||
        p->pad_w < 0 || p->pad_h > p->kernel_h / 2 || p->pad_w > p->kernel_w / 2) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                          "%s: kernel (%d, %d) must be >= 1, stride (%d, %d) >= 0 and padding "
                          "(%d, %d) between 0 and half the kernel",
                          op, p->kernel_h, p->kernel_w, p->stride_h, p->stride_w, p->pad_h,
                          p->pad_w);
        return false;
    }
    int64_t ph = x->shape[2] + 2 * (int64_t)p->pad_h, pw = x->shape[3] + 2 * (int64_t)p->pad_w;
    if (p->kernel_h > ph || p->kernel_w > pw) {
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE,
                          "%s: kernel %dx%d is larger than the padded input %lldx%lld of x %s", op,
                          p->kernel_h, p->kernel_w, (long long)ph, (long long)pw,
                          blo__desc(x, d, sizeof d));
        return false;
    }
    *oh = (ph - p->kernel_h) / rp->stride_h + 1;
    *ow = (pw - p->kernel_w) / rp->stride_w + 1;
    return true;
}

/* ---- max ------------------------------------------------------------------------------------- */

blo_tensor *blo_max_pool2d(blo_ctx *ctx, blo_tensor *x, const blo_pool2d_params *p) {
    BLO_GUARD(ctx);
    if (!x) return NULL;
    blo_pool2d_params rp;
    int64_t oh, ow;
    if (!pool_check(ctx, "blo_max_pool2d", x, p, &rp, &oh, &ow)) return NULL;
    int64_t N = x->shape[0], C = x->shape[1];
    int64_t so[4] = {N, C, oh, ow};
    blo_tensor *xc = blo_contiguous(ctx, x);
    blo_tensor *argmax = blo__alloc(ctx, BLO_I64, 4, so);
    if (!xc || !argmax) return NULL;
    if (!ctx->recording || !x->requires_grad) { /* values only: the kernel's maxima */
        blo_tensor *out = blo__alloc(ctx, x->dtype, 4, so);
        if (!out) return NULL;
        ctx->be->max_pool2d(xc, &rp, out, argmax);
        return out;
    }
    ctx->be->max_pool2d(xc, &rp, NULL, argmax);
    int64_t sx[3] = {N, C, -1}, si[3] = {N, C, oh * ow};
    blo_tensor *g =
        blo_gather(ctx, blo_reshape(ctx, xc, 3, sx), 2, blo_reshape(ctx, argmax, 3, si));
    return blo_reshape(ctx, g, 4, so);
}

/* ---- avg and its adjoint ------------------------------------------------------------------------
 * Node parameters ip: kernel, stride, padding (h, w each), count_include_pad, H, W. */

static void pool_save(blo_node *n, const blo_pool2d_params *p, int64_t h, int64_t w) {
    const int64_t v[9] = {p->kernel_h,          p->kernel_w, p->stride_h,
                          p->stride_w,          p->pad_h,    p->pad_w,
                          p->count_include_pad, h,           w};
    memcpy(n->ip, v, sizeof v);
}

static blo_pool2d_params pool_load(const blo_node *n) {
    const int64_t *v = n->ip;
    blo_pool2d_params p = {.kernel_h = (int)v[0],
                           .kernel_w = (int)v[1],
                           .stride_h = (int)v[2],
                           .stride_w = (int)v[3],
                           .pad_h = (int)v[4],
                           .pad_w = (int)v[5],
                           .count_include_pad = (int)v[6]};
    return p;
}

static blo_tensor *avg_pool(blo_ctx *ctx, blo_tensor *x, const blo_pool2d_params *rp, int64_t oh,
                            int64_t ow);
static blo_tensor *avg_pool_adjoint(blo_ctx *ctx, blo_tensor *g, const blo_pool2d_params *rp,
                                    int64_t h, int64_t w);

static blo_status avg_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                         const bool *need, blo_tensor **gin) {
    (void)out, (void)need;
    blo_pool2d_params rp = pool_load(n);
    gin[0] = avg_pool_adjoint(ctx, g, &rp, n->ip[7], n->ip[8]);
    return ctx->status;
}
static const blo_op_def AVG_POOL = {"avg_pool2d", avg_bw, 1};

static blo_status avg_adjoint_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                                 const bool *need, blo_tensor **gin) {
    (void)out, (void)need;
    blo_pool2d_params rp = pool_load(n);
    gin[0] = avg_pool(ctx, g, &rp, n->in[0]->shape[2], n->in[0]->shape[3]);
    return ctx->status;
}
static const blo_op_def AVG_POOL_ADJOINT = {"avg_pool2d_adjoint", avg_adjoint_bw, 1};

/* x [N, C, H, W] -> [N, C, OH, OW]; rp checked and resolved. */
static blo_tensor *avg_pool(blo_ctx *ctx, blo_tensor *x, const blo_pool2d_params *rp, int64_t oh,
                            int64_t ow) {
    x = blo_contiguous(ctx, x);
    if (!x) return NULL;
    int64_t so[4] = {x->shape[0], x->shape[1], oh, ow};
    blo_tensor *out = blo__alloc(ctx, x->dtype, 4, so);
    if (!out) return NULL;
    ctx->be->avg_pool2d(x, rp, out);
    blo_node *n;
    BLO_RECORD(n, ctx, out, &AVG_POOL, 1, x);
    if (n) pool_save(n, rp, x->shape[2], x->shape[3]);
    return out;
}

/* g [N, C, OH, OW] -> [N, C, H, W], the adjoint of avg_pool. */
static blo_tensor *avg_pool_adjoint(blo_ctx *ctx, blo_tensor *g, const blo_pool2d_params *rp,
                                    int64_t h, int64_t w) {
    g = blo_contiguous(ctx, g);
    if (!g) return NULL;
    int64_t sx[4] = {g->shape[0], g->shape[1], h, w};
    blo_tensor *gx = blo__alloc(ctx, g->dtype, 4, sx);
    if (!gx) return NULL;
    ctx->be->avg_pool2d_adjoint(g, rp, gx);
    blo_node *n;
    BLO_RECORD(n, ctx, gx, &AVG_POOL_ADJOINT, 1, g);
    if (n) pool_save(n, rp, h, w);
    return gx;
}

blo_tensor *blo_avg_pool2d(blo_ctx *ctx, blo_tensor *x, const blo_pool2d_params *p) {
    BLO_GUARD(ctx);
    if (!x) return NULL;
    blo_pool2d_params rp;
    int64_t oh, ow;
    if (!pool_check(ctx, "blo_avg_pool2d", x, p, &rp, &oh, &ow)) return NULL;
    return avg_pool(ctx, x, &rp, oh, ow);
}
