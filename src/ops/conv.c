/* conv.c — 2-d convolution (cross-correlation, as in PyTorch) as im2col + batched gemm.
 *
 *   out[n][o][y][x] = bias[o] + Σ_{c < Cg} Σ_{i < KH} Σ_{j < KW}
 *                     w[o][c][i][j] · x[n][g·Cg + c][y·sh − ph + i·dh][x·sw − pw + j·dw]
 *
 * with g = o / Og the group of output channel o, Cg = C / G and Og = O / G input and output
 * channels per group, and x zero outside the image. im2col is a linear map U: x -> cols
 * [N, C·KH·KW, OH·OW] (src/backend/cpu_conv.c). Its rows come group after group, so with
 * K = Cg·KH·KW the convolution of image n and group g is one matrix product,
 *
 *   out[n, g] = W_g · cols[n, g],   W_g = w[g·Og : (g+1)·Og] reshaped to [Og, K],
 *
 * which blo_matmul does with batch axes [N, G] (one gemm per image and group). U's adjoint
 * is col2im, so im2col's backward is col2im and col2im's backward is im2col; both are
 * recorded ops, and matmul, reshape and add carry their own rules, so the convolution
 * differentiates to any order (Hessian-vector products through conv nets).
 */
#include "ops_util.h"

#include <string.h>

blo_conv2d_params blo_conv2d_default(void) {
    blo_conv2d_params p = {
        .stride_h = 1, .stride_w = 1, .pad_h = 0, .pad_w = 0, .dil_h = 1, .dil_w = 1, .groups = 1};
    return p;
}

/* ---- im2col / col2im as recorded ops -----------------------------------------------------------
 * Both nodes keep the geometry in ip: stride, padding, dilation (h, w each), KH, KW, OH, OW,
 * H, W. The channel count comes from the tensors. */

typedef struct {
    blo_conv2d_params p;
    int kh, kw, oh, ow;
    int64_t h, w;
} unfold_geom;

static void geom_save(blo_node *n, const unfold_geom *g) {
    const int64_t v[12] = {g->p.stride_h, g->p.stride_w, g->p.pad_h, g->p.pad_w,
                           g->p.dil_h,    g->p.dil_w,    g->kh,      g->kw,
                           g->oh,         g->ow,         g->h,       g->w};
    memcpy(n->ip, v, sizeof v);
}

static unfold_geom geom_load(const blo_node *n) {
    const int64_t *v = n->ip;
    unfold_geom g = {.p = {.stride_h = (int)v[0],
                           .stride_w = (int)v[1],
                           .pad_h = (int)v[2],
                           .pad_w = (int)v[3],
                           .dil_h = (int)v[4],
                           .dil_w = (int)v[5],
                           .groups = 1},
                     .kh = (int)v[6],
                     .kw = (int)v[7],
                     .oh = (int)v[8],
                     .ow = (int)v[9],
                     .h = v[10],
                     .w = v[11]};
    return g;
}

static blo_tensor *im2col(blo_ctx *ctx, blo_tensor *x, const unfold_geom *g);
static blo_tensor *col2im(blo_ctx *ctx, blo_tensor *cols, const unfold_geom *g);

static blo_status im2col_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *gout,
                            const bool *need, blo_tensor **gin) {
    (void)out, (void)need;
    unfold_geom g = geom_load(n);
    gin[0] = col2im(ctx, gout, &g);
    return ctx->status;
}
static const blo_op_def IM2COL = {"im2col", im2col_bw, 1};

static blo_status col2im_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *gout,
                            const bool *need, blo_tensor **gin) {
    (void)out, (void)need;
    unfold_geom g = geom_load(n);
    gin[0] = im2col(ctx, gout, &g);
    return ctx->status;
}
static const blo_op_def COL2IM = {"col2im", col2im_bw, 1};

/* x [N, C, H, W] -> cols [N, C·KH·KW, OH·OW]. The geometry was checked by the caller. */
static blo_tensor *im2col(blo_ctx *ctx, blo_tensor *x, const unfold_geom *g) {
    x = blo_contiguous(ctx, x);
    if (!x) return NULL;
    int64_t sh[3] = {x->shape[0], x->shape[1] * g->kh * g->kw, (int64_t)g->oh * g->ow};
    blo_tensor *cols = blo__alloc(ctx, x->dtype, 3, sh);
    if (!cols) return NULL;
    ctx->be->im2col(x, &g->p, g->kh, g->kw, g->oh, g->ow, cols);
    blo_node *n;
    BLO_RECORD(n, ctx, cols, &IM2COL, 1, x);
    if (n) geom_save(n, g);
    return cols;
}

/* cols [N, C·KH·KW, OH·OW] -> x [N, C, H, W], the adjoint of im2col. */
static blo_tensor *col2im(blo_ctx *ctx, blo_tensor *cols, const unfold_geom *g) {
    cols = blo_contiguous(ctx, cols);
    if (!cols) return NULL;
    int64_t sh[4] = {cols->shape[0], cols->shape[1] / ((int64_t)g->kh * g->kw), g->h, g->w};
    blo_tensor *x = blo__alloc(ctx, cols->dtype, 4, sh);
    if (!x) return NULL;
    ctx->be->col2im(cols, &g->p, g->kh, g->kw, g->oh, g->ow, x);
    blo_node *n;
    BLO_RECORD(n, ctx, x, &COL2IM, 1, cols);
    if (n) geom_save(n, g);
    return x;
}

/* ---- conv2d ---------------------------------------------------------------------------------- */

static bool conv_check(blo_ctx *ctx, const blo_tensor *x, const blo_tensor *w,
                       const blo_tensor *bias, const blo_conv2d_params *p, int64_t *oh,
                       int64_t *ow) {
    char a[64], b[64];
    if (!blo__check_same_dtype(ctx, "blo_conv2d", x, w) ||
        (bias && !blo__check_same_dtype(ctx, "blo_conv2d (bias)", x, bias)))
        return false;
    if (x->ndim != 4 || w->ndim != 4) {
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE,
                          "blo_conv2d: x %s must be [N, C, H, W] and w %s [O, C/groups, KH, KW]",
                          blo__desc(x, a, sizeof a), blo__desc(w, b, sizeof b));
        return false;
    }
    if (p->stride_h < 1 || p->stride_w < 1 || p->dil_h < 1 || p->dil_w < 1 || p->pad_h < 0 ||
        p->pad_w < 0 || p->groups < 1) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                          "blo_conv2d: stride (%d, %d) and dilation (%d, %d) must be >= 1, "
                          "padding (%d, %d) >= 0 and groups %d >= 1",
                          p->stride_h, p->stride_w, p->dil_h, p->dil_w, p->pad_h, p->pad_w,
                          p->groups);
        return false;
    }
    int64_t C = x->shape[1], O = w->shape[0], G = p->groups;
    if (C % G || O % G) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                          "blo_conv2d: groups %d must divide the %lld input channels of x %s and "
                          "the %lld output channels of w %s",
                          p->groups, (long long)C, blo__desc(x, a, sizeof a), (long long)O,
                          blo__desc(w, b, sizeof b));
        return false;
    }
    if (w->shape[1] != C / G) {
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE,
                          "blo_conv2d: w %s must have C/groups = %lld input channels for x %s "
                          "with %d groups",
                          blo__desc(w, a, sizeof a), (long long)(C / G), blo__desc(x, b, sizeof b),
                          p->groups);
        return false;
    }
    if (bias && (bias->ndim != 1 || bias->shape[0] != O)) {
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "blo_conv2d: bias %s must be [%lld] for w %s",
                          blo__desc(bias, a, sizeof a), (long long)O, blo__desc(w, b, sizeof b));
        return false;
    }
    /* Extent of the dilated kernel against the padded input. */
    int64_t eh = (int64_t)p->dil_h * (w->shape[2] - 1) + 1;
    int64_t ew = (int64_t)p->dil_w * (w->shape[3] - 1) + 1;
    int64_t ph = x->shape[2] + 2 * (int64_t)p->pad_h, pw = x->shape[3] + 2 * (int64_t)p->pad_w;
    if (w->shape[2] < 1 || w->shape[3] < 1 || eh > ph || ew > pw) {
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE,
                          "blo_conv2d: kernel %s (dilated extent %lldx%lld) is larger than the "
                          "padded input %lldx%lld of x %s",
                          blo__desc(w, a, sizeof a), (long long)eh, (long long)ew, (long long)ph,
                          (long long)pw, blo__desc(x, b, sizeof b));
        return false;
    }
    *oh = (ph - eh) / p->stride_h + 1;
    *ow = (pw - ew) / p->stride_w + 1;
    return true;
}

blo_tensor *blo_conv2d(blo_ctx *ctx, blo_tensor *x, blo_tensor *w, blo_tensor *bias,
                       const blo_conv2d_params *p) {
    BLO_GUARD(ctx);
    if (!x || !w) return NULL;
    blo_conv2d_params prm = p ? *p : blo_conv2d_default();
    int64_t oh, ow;
    if (!conv_check(ctx, x, w, bias, &prm, &oh, &ow)) return NULL;
    int64_t N = x->shape[0], C = x->shape[1], O = w->shape[0], G = prm.groups;
    int64_t KH = w->shape[2], KW = w->shape[3];
    int64_t K = C / G * KH * KW, L = oh * ow;

    blo_tensor *cols;
    if (KH == 1 && KW == 1 && prm.stride_h == 1 && prm.stride_w == 1 && prm.pad_h == 0 &&
        prm.pad_w == 0) {
        /* A 1x1 kernel without stride or padding reads every pixel once: cols is x itself. */
        int64_t s[3] = {N, C, L};
        cols = blo_reshape(ctx, x, 3, s);
    } else {
        unfold_geom g = {prm, (int)KH, (int)KW, (int)oh, (int)ow, x->shape[2], x->shape[3]};
        cols = im2col(ctx, x, &g);
    }
    int64_t sc[4] = {N, G, K, L}, sw[3] = {G, O / G, K}, so[4] = {N, O, oh, ow};
    blo_tensor *y = blo_matmul(ctx, blo_reshape(ctx, w, 3, sw), blo_reshape(ctx, cols, 4, sc));
    y = blo_reshape(ctx, y, 4, so);
    if (bias) {
        int64_t sb[3] = {O, 1, 1};
        y = blo_add(ctx, y, blo_reshape(ctx, bias, 3, sb));
    }
    return y;
}
