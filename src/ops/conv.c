/* conv.c — 2-d convolution (cross-correlation, as in PyTorch) as im2col + gemm, and direct
 * depthwise kernels.
 *
 *   out[n][o][y][x] = bias[o] + Σ_{c < Cg} Σ_{i < KH} Σ_{j < KW}
 *                     w[o][c][i][j] · x[n][g·Cg + c][y·sh − ph + i·dh][x·sw − pw + j·dw]
 *
 * with g = o / Og the group of output channel o, Cg = C / G and Og = O / G input and output
 * channels per group, and x zero outside the image. im2col is a linear map U: x -> cols
 * [C·KH·KW, N·OH·OW] (src/backend/cpu_conv.c), the images side by side. Its rows come group
 * after group, so with K = Cg·KH·KW the convolution of group g is one matrix product for the
 * whole batch,
 *
 *   out[:, g] = W_g · cols[g],   W_g = w[g·Og : (g+1)·Og] reshaped to [Og, K],
 *
 * which blo_matmul does with batch axis G (one gemm per group); the result [O, N, OH, OW] is
 * transposed to [N, O, OH, OW]. (A 1×1 kernel without stride or padding skips im2col: x is
 * its own columns, one gemm per image.) U's adjoint is col2im, so im2col's backward is col2im
 * and col2im's backward is im2col; both are recorded ops, and matmul, reshape, transpose and
 * add carry their own rules, so the convolution differentiates to any order (Hessian-vector
 * products through conv nets). Depthwise convolutions (groups = C) take direct kernels
 * instead, recorded as a family of three ops closed under differentiation (below).
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

/* x [N, C, H, W] -> cols [C·KH·KW, N·OH·OW]. The geometry was checked by the caller. */
static blo_tensor *im2col(blo_ctx *ctx, blo_tensor *x, const unfold_geom *g) {
    x = blo_contiguous(ctx, x);
    if (!x) return NULL;
    int64_t sh[2] = {x->shape[1] * g->kh * g->kw, x->shape[0] * g->oh * g->ow};
    blo_tensor *cols = blo__alloc(ctx, x->dtype, 2, sh);
    if (!cols) return NULL;
    ctx->be->im2col(x, &g->p, g->kh, g->kw, g->oh, g->ow, cols);
    blo_node *n;
    BLO_RECORD(n, ctx, cols, &IM2COL, 1, x);
    if (n) geom_save(n, g);
    return cols;
}

/* cols [C·KH·KW, N·OH·OW] -> x [N, C, H, W], the adjoint of im2col. */
static blo_tensor *col2im(blo_ctx *ctx, blo_tensor *cols, const unfold_geom *g) {
    cols = blo_contiguous(ctx, cols);
    if (!cols) return NULL;
    int64_t sh[4] = {cols->shape[1] / ((int64_t)g->oh * g->ow),
                     cols->shape[0] / ((int64_t)g->kh * g->kw), g->h, g->w};
    blo_tensor *x = blo__alloc(ctx, cols->dtype, 4, sh);
    if (!x) return NULL;
    ctx->be->col2im(cols, &g->p, g->kh, g->kw, g->oh, g->ow, x);
    blo_node *n;
    BLO_RECORD(n, ctx, x, &COL2IM, 1, cols);
    if (n) geom_save(n, g);
    return x;
}

/* ---- Depthwise convolution as three recorded ops ----------------------------------------------
 * With groups = C (one input channel per group, M = O/C outputs each), the per-group gemms
 * are K = KH·KW long and one row tall: too small for BLAS. The backend's direct kernels do it
 * instead, as three bilinear maps (x [N, C, H, W], w [O, 1, KH, KW], g [N, O, OH, OW]):
 *
 *   D(x, w) = the convolution,   X(g, w) = its adjoint in x,   W(x, g) = its adjoint in w.
 *
 * Each one's derivatives are the others, so the family differentiates to any order:
 *   D(x, w):  gx = X(u, w),  gw = W(x, u)                      (u the incoming gradient)
 *   X(g, w):  ⟨u, X(g, w)⟩ = ⟨D(u, w), g⟩ = ⟨W(u, g), w⟩:   gg = D(u, w),  gw = W(u, g)
 *   W(x, g):  ⟨v, W(x, g)⟩ = ⟨D(x, v), g⟩ = ⟨X(g, v), x⟩:   gx = X(g, v),  gg = D(x, v)
 * The nodes keep the geometry in ip as im2col's do, and M in fp[0]. */

static blo_tensor *dwconv(blo_ctx *ctx, blo_dwconv_kind k, blo_tensor *a, blo_tensor *b,
                          const unfold_geom *g, int64_t m);

static blo_status dw_forward_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *gout,
                                const bool *need, blo_tensor **gin) {
    (void)out;
    unfold_geom g = geom_load(n);
    int64_t m = (int64_t)n->fp[0];
    if (need[0]) gin[0] = dwconv(ctx, BLO_DW_ADJ_X, gout, n->in[1], &g, m);
    if (need[1]) gin[1] = dwconv(ctx, BLO_DW_ADJ_W, n->in[0], gout, &g, m);
    return ctx->status;
}
static const blo_op_def DW_FORWARD = {"dwconv", dw_forward_bw, 1};

static blo_status dw_adj_x_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *gout,
                              const bool *need, blo_tensor **gin) {
    (void)out;
    unfold_geom g = geom_load(n);
    int64_t m = (int64_t)n->fp[0];
    if (need[0]) gin[0] = dwconv(ctx, BLO_DW_FORWARD, gout, n->in[1], &g, m);
    if (need[1]) gin[1] = dwconv(ctx, BLO_DW_ADJ_W, gout, n->in[0], &g, m);
    return ctx->status;
}
static const blo_op_def DW_ADJ_X = {"dwconv_adjoint_x", dw_adj_x_bw, 1};

static blo_status dw_adj_w_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *gout,
                              const bool *need, blo_tensor **gin) {
    (void)out;
    unfold_geom g = geom_load(n);
    int64_t m = (int64_t)n->fp[0];
    if (need[0]) gin[0] = dwconv(ctx, BLO_DW_ADJ_X, n->in[1], gout, &g, m);
    if (need[1]) gin[1] = dwconv(ctx, BLO_DW_FORWARD, n->in[0], gout, &g, m);
    return ctx->status;
}
static const blo_op_def DW_ADJ_W = {"dwconv_adjoint_w", dw_adj_w_bw, 1};

/* One of D, X, W (see above) on (a, b); the geometry was checked by blo_conv2d. */
static blo_tensor *dwconv(blo_ctx *ctx, blo_dwconv_kind k, blo_tensor *a, blo_tensor *b,
                          const unfold_geom *g, int64_t m) {
    a = blo_contiguous(ctx, a);
    b = blo_contiguous(ctx, b);
    if (!a || !b) return NULL;
    int64_t sh[4];
    if (k == BLO_DW_FORWARD) { /* (x, w) -> [N, O, OH, OW] */
        int64_t s[4] = {a->shape[0], b->shape[0], g->oh, g->ow};
        memcpy(sh, s, sizeof s);
    } else if (k == BLO_DW_ADJ_X) { /* (g, w) -> [N, C, H, W] */
        int64_t s[4] = {a->shape[0], b->shape[0] / m, g->h, g->w};
        memcpy(sh, s, sizeof s);
    } else { /* (x, g) -> [O, 1, KH, KW] */
        int64_t s[4] = {b->shape[1], 1, g->kh, g->kw};
        memcpy(sh, s, sizeof s);
    }
    blo_tensor *out = blo__alloc(ctx, a->dtype, 4, sh);
    if (!out) return NULL;
    ctx->be->dwconv(k, a, b, &g->p, out);
    const blo_op_def *def = k == BLO_DW_FORWARD ? &DW_FORWARD
                            : k == BLO_DW_ADJ_X ? &DW_ADJ_X
                                                : &DW_ADJ_W;
    blo_node *n;
    BLO_RECORD(n, ctx, out, def, 2, a, b);
    if (n) {
        geom_save(n, g);
        n->fp[0] = (double)m;
    }
    return out;
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

    if (G == C && w->shape[1] == 1) { /* depthwise: direct kernels */
        unfold_geom g = {prm, (int)KH, (int)KW, (int)oh, (int)ow, x->shape[2], x->shape[3]};
        blo_tensor *y = dwconv(ctx, BLO_DW_FORWARD, x, w, &g, O / C);
        if (y && bias) {
            int64_t sb[3] = {O, 1, 1};
            y = blo_add(ctx, y, blo_reshape(ctx, bias, 3, sb));
        }
        return y;
    }
    blo_tensor *y;
    if (KH == 1 && KW == 1 && prm.stride_h == 1 && prm.stride_w == 1 && prm.pad_h == 0 &&
        prm.pad_w == 0) {
        /* A 1x1 kernel without stride or padding reads every pixel once: x itself is the
         * columns of each image, one gemm per image and group. */
        int64_t sc[4] = {N, G, K, L}, sw[3] = {G, O / G, K}, so[4] = {N, O, oh, ow};
        y = blo_matmul(ctx, blo_reshape(ctx, w, 3, sw), blo_reshape(ctx, x, 4, sc));
        y = blo_reshape(ctx, y, 4, so);
    } else {
        /* cols [G, K, N·L]: one gemm per group for the whole batch, giving [O, N, OH, OW],
         * then the image axis is brought back to the front. */
        unfold_geom g = {prm, (int)KH, (int)KW, (int)oh, (int)ow, x->shape[2], x->shape[3]};
        int64_t sc[3] = {G, K, N * L}, sw[3] = {G, O / G, K}, so[4] = {O, N, oh, ow};
        y = blo_matmul(ctx, blo_reshape(ctx, w, 3, sw),
                       blo_reshape(ctx, im2col(ctx, x, &g), 3, sc));
        y = blo_contiguous(ctx, blo_transpose(ctx, blo_reshape(ctx, y, 4, so), 0, 1));
    }
    if (bias) {
        int64_t sb[3] = {O, 1, 1};
        y = blo_add(ctx, y, blo_reshape(ctx, bias, 3, sb));
    }
    return y;
}
