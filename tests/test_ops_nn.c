/* test_ops_nn.c — the neural-network layers: conv2d, max/avg pooling, batch norm, dropout.
 *
 * Oracles: a direct 7-loop convolution written here; hand-computed pooling outputs and
 * gradients; per-channel moments and hand-computed running statistics for batch norm; the
 * mask identities of dropout; gradients against central differences and Hessian-vector
 * products against differences of gradients (tu_gradcheck) for every layer; the adjoint
 * identity ⟨Jᵀr, x⟩ = ⟨r, Jx⟩ of linear maps on inputs big enough to take the threaded
 * paths; float32 against float64; and the errors bad arguments must give.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* f = Σ r ⊙ y² + Σ r ⊙ y: squaring gives a non-zero Hessian through the layer, and the fixed
 * random weights r test the full vector-Jacobian product. */
static blo_tensor *weigh(blo_ctx *ctx, blo_tensor *y, blo_tensor *r) {
    blo_tensor *w = blo_mul(ctx, y, r);
    return blo_add(ctx, blo_sum_all(ctx, blo_mul(ctx, w, y)), blo_sum_all(ctx, w));
}

/* A constant tensor like y, uniform in [-1, 1). */
static blo_tensor *weights_like(blo_ctx *ctx, blo_rng *r, const blo_tensor *y) {
    blo_tensor *w =
        blo_tensor_new(ctx, blo_tensor_dtype(y), blo_tensor_ndim(y), blo_tensor_shape(y));
    blo_init_uniform(w, r, -1, 1);
    return w;
}

static double *values(const blo_tensor *t) {
    double *v = malloc(sizeof(double) * (size_t)(blo_tensor_numel(t) + 1));
    blo_tensor_to_f64(t, v);
    return v;
}

/* Σ a ⊙ b over all elements, read back as doubles. */
static double dot_values(const blo_tensor *a, const blo_tensor *b) {
    double *x = values(a), *y = values(b), s = 0;
    for (int64_t i = 0; i < blo_tensor_numel(a); i++)
        s += x[i] * y[i];
    free(x);
    free(y);
    return s;
}

static void expect_error(blo_ctx *ctx, const blo_tensor *y, blo_status want, const char *op,
                         const char *what) {
    TU_CHECK(y == NULL, "%s: expected NULL", what);
    TU_CHECK(blo_ctx_status(ctx) == want, "%s: status %s, expected %s (%s)", what,
             blo_status_name(blo_ctx_status(ctx)), blo_status_name(want), blo_ctx_error(ctx));
    TU_CHECK(strstr(blo_ctx_error(ctx), op) != NULL, "%s: message \"%s\" does not name %s", what,
             blo_ctx_error(ctx), op);
    blo_ctx_clear_error(ctx);
}

/* ---- conv2d ---------------------------------------------------------------------------------- */

/* The definition, loop by loop: n, o, oy, ox, then c, i, j over the receptive field. */
static void conv_ref(const double *x, const double *w, const double *b, int64_t N, int64_t C,
                     int64_t H, int64_t W, int64_t O, int64_t KH, int64_t KW,
                     const blo_conv2d_params *p, int64_t OH, int64_t OW, double *out) {
    int64_t G = p->groups, Cg = C / G, Og = O / G;
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t oy = 0; oy < OH; oy++)
                for (int64_t ox = 0; ox < OW; ox++) {
                    double acc = b ? b[o] : 0;
                    int64_t g = o / Og;
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t i = 0; i < KH; i++)
                            for (int64_t j = 0; j < KW; j++) {
                                int64_t iy = oy * p->stride_h - p->pad_h + i * p->dil_h;
                                int64_t ix = ox * p->stride_w - p->pad_w + j * p->dil_w;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                acc += w[((o * Cg + c) * KH + i) * KW + j] *
                                       x[((n * C + g * Cg + c) * H + iy) * W + ix];
                            }
                    out[((n * O + o) * OH + oy) * OW + ox] = acc;
                }
}

typedef struct {
    const char *name;
    int64_t n, c, h, w, o, kh, kw;
    blo_conv2d_params p; /* stride h, w; pad h, w; dilation h, w; groups */
    int bias;
} conv_case;

static const conv_case CONV_CASES[] = {
    {"plain, bias", 2, 3, 5, 5, 4, 3, 3, {1, 1, 0, 0, 1, 1, 1}, 1},
    {"stride 2, padding 1", 1, 2, 6, 5, 3, 3, 2, {2, 2, 1, 1, 1, 1, 1}, 0},
    {"dilation 2", 1, 2, 6, 6, 2, 2, 2, {1, 1, 0, 0, 2, 2, 1}, 0},
    {"stride (1,2), dil (2,1), pad (2,1), bias", 1, 2, 7, 6, 2, 2, 3, {1, 2, 2, 1, 2, 1, 1}, 1},
    {"dilation (1,3), padding (0,2)", 1, 2, 5, 7, 2, 2, 2, {1, 1, 0, 2, 1, 3, 1}, 0},
    {"groups 2, padding 1, bias", 2, 4, 5, 5, 6, 3, 3, {1, 1, 1, 1, 1, 1, 2}, 1},
    {"depthwise (groups = C = O), bias", 1, 3, 5, 5, 3, 3, 3, {1, 1, 1, 1, 1, 1, 3}, 1},
    {"depthwise x2, stride 2", 1, 2, 6, 6, 4, 3, 3, {2, 2, 1, 1, 1, 1, 2}, 0},
    {"1x1, bias", 2, 3, 4, 4, 5, 1, 1, {1, 1, 0, 0, 1, 1, 1}, 1},
    {"1x1, stride 2", 1, 3, 5, 5, 2, 1, 1, {2, 2, 0, 0, 1, 1, 1}, 0},
    {"1x1, groups 3 (per-image gemm)", 2, 3, 3, 4, 6, 1, 1, {1, 1, 0, 0, 1, 1, 3}, 0},
    {"groups 2, stride 2, dil 2, pad 2, batch 3", 3, 4, 7, 6, 4, 3, 3, {2, 2, 2, 2, 2, 2, 2}, 0},
    /* Depthwise: stride 1 takes the zero-bordered-plane kernels, other strides the row ones. */
    {"depthwise 3x3, dilation 2, padding 2", 2, 3, 7, 7, 3, 3, 3, {1, 1, 2, 2, 2, 2, 3}, 0},
    {"depthwise x2, dil (2,1), pad (2,1), bias", 2, 2, 6, 7, 4, 3, 3, {1, 1, 2, 1, 2, 1, 2}, 1},
    {"depthwise 5x5, stride 2, dil 2, pad (4,3)", 1, 2, 7, 8, 2, 5, 5, {2, 2, 4, 3, 2, 2, 2}, 0},
    {"depthwise, stride (1,2), padding 1", 2, 2, 6, 7, 2, 3, 3, {1, 2, 1, 1, 1, 1, 2}, 0},
    {"depthwise x3, stride (2,1), no padding", 1, 2, 7, 5, 6, 3, 2, {2, 1, 0, 0, 1, 1, 2}, 0},
};

typedef struct {
    blo_conv2d_params p;
    int bias;
    blo_tensor *r;
} conv_env;

static blo_tensor *f_conv(blo_ctx *ctx, blo_tensor *const *in, void *e) {
    conv_env *env = e;
    return weigh(ctx, blo_conv2d(ctx, in[0], in[1], env->bias ? in[2] : NULL, &env->p), env->r);
}

static int64_t out_size(int64_t in, int pad, int dil, int64_t k, int stride) {
    return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

/* Forward against conv_ref (rtol 1e-12), in f64; returns the inputs through xs. */
static void check_conv_forward(blo_ctx *ctx, blo_rng *r, const conv_case *c, blo_tensor **xs) {
    int64_t sx[4] = {c->n, c->c, c->h, c->w}, sw[4] = {c->o, c->c / c->p.groups, c->kh, c->kw};
    blo_tensor *x = tu_rand(ctx, r, BLO_F64, 4, sx, -1, 1);
    blo_tensor *w = tu_rand(ctx, r, BLO_F64, 4, sw, -1, 1);
    blo_tensor *b = tu_rand(ctx, r, BLO_F64, 1, &c->o, -1, 1);
    xs[0] = x, xs[1] = w, xs[2] = b;
    blo_tensor *y = blo_conv2d(ctx, x, w, c->bias ? b : NULL, &c->p);
    if (!y) {
        TU_CHECK(0, "conv2d %s: forward failed: %s", c->name, blo_ctx_error(ctx));
        blo_ctx_clear_error(ctx);
        return;
    }
    int64_t OH = out_size(c->h, c->p.pad_h, c->p.dil_h, c->kh, c->p.stride_h);
    int64_t OW = out_size(c->w, c->p.pad_w, c->p.dil_w, c->kw, c->p.stride_w);
    TU_CHECK(blo_tensor_ndim(y) == 4 && blo_tensor_dim(y, 0) == c->n &&
                 blo_tensor_dim(y, 1) == c->o && blo_tensor_dim(y, 2) == OH &&
                 blo_tensor_dim(y, 3) == OW,
             "conv2d %s: output shape", c->name);
    double *xv = values(x), *wv = values(w), *bv = values(b);
    double *want = malloc(sizeof(double) * (size_t)(c->n * c->o * OH * OW));
    conv_ref(xv, wv, c->bias ? bv : NULL, c->n, c->c, c->h, c->w, c->o, c->kh, c->kw, &c->p, OH, OW,
             want);
    char what[160];
    snprintf(what, sizeof what, "conv2d %s: forward against the direct loops", c->name);
    tu_check_close_f64(y, want, 1e-12, 1e-12, what);
    free(xv);
    free(wv);
    free(bv);
    free(want);
}

static void test_conv_cases(blo_ctx *ctx, blo_rng *r) {
    for (size_t k = 0; k < sizeof CONV_CASES / sizeof CONV_CASES[0]; k++) {
        const conv_case *c = &CONV_CASES[k];
        blo_mark m = blo_ctx_mark(ctx);
        blo_tensor *in[3];
        check_conv_forward(ctx, r, c, in);
        conv_env env = {c->p, c->bias, NULL};
        int old = blo_ctx_set_recording(ctx, 0);
        env.r = weights_like(ctx, r, blo_conv2d(ctx, in[0], in[1], NULL, &c->p));
        blo_ctx_set_recording(ctx, old);
        char name[160];
        snprintf(name, sizeof name, "conv2d %s", c->name);
        tu_gradcheck(ctx, name, f_conv, &env, c->bias ? 3 : 2, in, 1);
        tu_check_ok(ctx, name);
        blo_ctx_rewind(ctx, m);
    }
}

/* Inputs big enough for the threaded kernels: forward against the loops, and the backward
 * against the adjoint identity ⟨∇_x ⟨r, y⟩, x⟩ = ⟨r, y⟩ = ⟨∇_w ⟨r, y⟩, w⟩ (y is bilinear). The
 * depthwise cases take the zero-bordered-plane kernels (33×33), the row kernels for a plane
 * too big for their buffers (95×95, stride 1), and the row kernels with a stride; the dense
 * 91×91 one im2col's clipped rows (its bordered plane is past the buffer too). */
static void test_conv_big(blo_ctx *ctx, blo_rng *r) {
    static const conv_case cases[] = {
        {"big, groups 2, stride 2, padding 1", 4, 8, 33, 33, 8, 3, 3, {2, 2, 1, 1, 1, 1, 2}, 0},
        {"big depthwise, padding 1", 4, 8, 33, 33, 8, 3, 3, {1, 1, 1, 1, 1, 1, 8}, 0},
        {"big depthwise, plane past the buffers", 2, 4, 95, 95, 4, 3, 3, {1, 1, 1, 1, 1, 1, 4}, 0},
        {"big dense, plane past the buffers", 1, 2, 91, 91, 2, 3, 3, {1, 1, 1, 1, 1, 1, 1}, 0},
        {"big depthwise x2, stride 2, dilation 2", 4, 4, 33, 31, 8, 3, 3, {2, 2, 2, 2, 2, 2, 4}, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const conv_case *c = &cases[k];
        blo_mark m = blo_ctx_mark(ctx);
        blo_tensor *in[3];
        check_conv_forward(ctx, r, c, in);
        blo_tensor *y = blo_conv2d(ctx, in[0], in[1], NULL, &c->p);
        blo_tensor *rw = weights_like(ctx, r, y);
        blo_tensor *s = blo_dot(ctx, y, rw), *g[2];
        blo_status st = blo_grad(ctx, 1, &s, NULL, 2, in, 0, g);
        TU_CHECK(st == BLO_OK, "conv2d %s: blo_grad: %s", c->name, blo_ctx_error(ctx));
        if (!st) {
            double sv = blo_tensor_item(s);
            double gx = dot_values(g[0], in[0]), gw = dot_values(g[1], in[1]);
            TU_CHECK(tu_close(gx, sv, 1e-10, 1e-10),
                     "conv2d %s: <grad_x, x> = %.15g, <r, y> = %.15g", c->name, gx, sv);
            TU_CHECK(tu_close(gw, sv, 1e-10, 1e-10),
                     "conv2d %s: <grad_w, w> = %.15g, <r, y> = %.15g", c->name, gw, sv);
        }
        blo_ctx_clear_error(ctx);
        blo_ctx_rewind(ctx, m);
    }
}

/* The backward of the backward. With the seed g an input too, f(x, w, g) = weigh(∇_x ⟨g, y⟩)
 * + weigh(∇_w ⟨g, y⟩) for y = conv2d(x, w) differentiates the ops of conv2d's backward (for a
 * depthwise conv, the adjoints in x and in w) with respect to every input, and the Hessian
 * check goes one order further. */
typedef struct {
    blo_conv2d_params p;
    blo_tensor *rx, *rw;
} vjp_env;

static blo_tensor *f_conv_vjp(blo_ctx *ctx, blo_tensor *const *in, void *e) {
    vjp_env *env = e;
    /* The inner gradient needs a tape even where the check evaluates f unrecorded. */
    int old = blo_ctx_set_recording(ctx, 1);
    blo_tensor *y = blo_conv2d(ctx, in[0], in[1], NULL, &env->p), *g[2];
    blo_tensor *f = y && !blo_grad(ctx, 1, &y, &in[2], 2, in, BLO_GRAD_CREATE_GRAPH, g)
                        ? blo_add(ctx, weigh(ctx, g[0], env->rx), weigh(ctx, g[1], env->rw))
                        : NULL;
    blo_ctx_set_recording(ctx, old);
    return f;
}

static void test_conv_double_backward(blo_ctx *ctx, blo_rng *r) {
    static const conv_case cases[] = {
        {"depthwise, padding 1", 2, 2, 5, 5, 2, 3, 3, {1, 1, 1, 1, 1, 1, 2}, 0},
        {"depthwise x2, stride 2, dil 2, pad 2", 1, 2, 6, 7, 4, 3, 3, {2, 2, 2, 2, 2, 2, 2}, 0},
        {"dense, stride 2, padding 1", 2, 2, 5, 5, 3, 3, 3, {2, 2, 1, 1, 1, 1, 1}, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const conv_case *c = &cases[k];
        blo_mark m = blo_ctx_mark(ctx);
        int64_t sx[4] = {c->n, c->c, c->h, c->w}, sw[4] = {c->o, c->c / c->p.groups, c->kh, c->kw};
        blo_tensor *in[3] = {tu_rand(ctx, r, BLO_F64, 4, sx, -1, 1),
                             tu_rand(ctx, r, BLO_F64, 4, sw, -1, 1), NULL};
        int old = blo_ctx_set_recording(ctx, 0);
        blo_tensor *y = blo_conv2d(ctx, in[0], in[1], NULL, &c->p);
        blo_ctx_set_recording(ctx, old);
        in[2] = y ? tu_rand(ctx, r, BLO_F64, 4, blo_tensor_shape(y), -1, 1) : NULL;
        vjp_env env = {c->p, weights_like(ctx, r, in[0]), weights_like(ctx, r, in[1])};
        char name[160];
        snprintf(name, sizeof name, "conv2d %s: backward of the backward", c->name);
        if (in[2]) tu_gradcheck(ctx, name, f_conv_vjp, &env, 3, in, 1);
        tu_check_ok(ctx, name);
        blo_ctx_rewind(ctx, m);
    }
}

/* float32 against float64 on the same (f32-representable) inputs: values and gradients. */
static void conv_f32_case(blo_ctx *ctx, blo_rng *r, blo_conv2d_params p, const int64_t *sx,
                          const int64_t *sw) {
    blo_mark m = blo_ctx_mark(ctx);
    int64_t sb = sw[0];
    char what[4][120];
    static const char *const part[4] = {"", "values", "grad x", "grad w"};
    for (int k = 0; k < 4; k++)
        snprintf(what[k], sizeof what[k],
                 "conv2d f32 (groups %d, stride (%d,%d), w [%lld,%lld,%lld,%lld])%s%s", p.groups,
                 p.stride_h, p.stride_w, (long long)sw[0], (long long)sw[1], (long long)sw[2],
                 (long long)sw[3], k ? " against f64: " : "", part[k]);
    blo_tensor *x32 = tu_rand(ctx, r, BLO_F32, 4, sx, -1, 1);
    blo_tensor *w32 = tu_rand(ctx, r, BLO_F32, 4, sw, -1, 1);
    blo_tensor *b32 = tu_rand(ctx, r, BLO_F32, 1, &sb, -1, 1);
    blo_tensor *x64 = blo_clone(ctx, x32), *w64 = blo_clone(ctx, w32), *b64 = blo_clone(ctx, b32);
    x64 = blo_cast(ctx, x64, BLO_F64);
    w64 = blo_cast(ctx, w64, BLO_F64);
    b64 = blo_cast(ctx, b64, BLO_F64);
    blo_set_requires_grad(x64, 1);
    blo_set_requires_grad(w64, 1);
    blo_tensor *y32 = blo_conv2d(ctx, x32, w32, b32, &p);
    blo_tensor *y64 = blo_conv2d(ctx, x64, w64, b64, &p);
    tu_check_ok(ctx, what[0]);
    if (!y32 || !y64) return;
    TU_CHECK(blo_tensor_dtype(y32) == BLO_F32, "%s: result dtype", what[0]);
    /* Relative to the output's scale: single rounding errors on sums of ~20 terms. */
    double *v = values(y64), scale = 0;
    for (int64_t i = 0; i < blo_tensor_numel(y64); i++)
        scale = fmax(scale, fabs(v[i]));
    free(v);
    tu_check_close(y32, y64, 1e-5, 1e-5 * scale, what[1]);

    blo_tensor *r64 = weights_like(ctx, r, y64), *r32 = blo_cast(ctx, r64, BLO_F32);
    blo_tensor *s32 = blo_dot(ctx, y32, r32), *s64 = blo_dot(ctx, y64, r64);
    blo_tensor *in32[2] = {x32, w32}, *in64[2] = {x64, w64}, *g32[2], *g64[2];
    if (blo_grad(ctx, 1, &s32, NULL, 2, in32, 0, g32) ||
        blo_grad(ctx, 1, &s64, NULL, 2, in64, 0, g64)) {
        TU_CHECK(0, "%s: blo_grad: %s", what[0], blo_ctx_error(ctx));
        blo_ctx_clear_error(ctx);
    } else {
        for (int k = 0; k < 2; k++) {
            double *gv = values(g64[k]), gs = 0;
            for (int64_t i = 0; i < blo_tensor_numel(g64[k]); i++)
                gs = fmax(gs, fabs(gv[i]));
            free(gv);
            tu_check_close(g32[k], g64[k], 1e-5, 1e-5 * gs, what[2 + k]);
        }
    }
    blo_ctx_rewind(ctx, m);
}

/* Grouped with stride and dilation (im2col), and depthwise on the f32 direct kernels: the
 * zero-bordered-plane ones (stride 1, with a multiplier 2 and a plane wider than eight
 * columns) and the row ones (stride (1, 2)). */
static void test_conv_f32(blo_ctx *ctx, blo_rng *r) {
    const int64_t sx[4] = {2, 4, 9, 10}, sx_dw[4] = {3, 4, 11, 13};
    const int64_t sw[4] = {6, 2, 3, 3}, sw_dw[4] = {8, 1, 3, 3}, sw_dw5[4] = {4, 1, 5, 5};
    conv_f32_case(ctx, r, (blo_conv2d_params){2, 1, 1, 2, 1, 2, 2}, sx, sw);
    conv_f32_case(ctx, r, (blo_conv2d_params){1, 1, 1, 2, 1, 2, 4}, sx_dw, sw_dw);
    conv_f32_case(ctx, r, (blo_conv2d_params){1, 2, 2, 2, 1, 1, 4}, sx_dw, sw_dw5);
}

static void test_conv_errors(blo_ctx *ctx, blo_rng *r) {
    blo_mark m = blo_ctx_mark(ctx);
    blo_conv2d_params p = blo_conv2d_default();
    TU_CHECK(p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 && p.pad_w == 0 && p.dil_h == 1 &&
                 p.dil_w == 1 && p.groups == 1,
             "blo_conv2d_default: stride 1, no padding, dilation 1, one group");
    int64_t s35[4] = {1, 3, 5, 5}, s45[4] = {1, 4, 5, 5}, s33[4] = {1, 1, 3, 3};
    int64_t sw_c2[4] = {4, 2, 3, 3}, sw_c1[4] = {4, 1, 3, 3}, sw_o3[4] = {3, 2, 3, 3};
    int64_t sw_55[4] = {1, 1, 5, 5}, sw_33[4] = {1, 1, 3, 3}, sw_c3[4] = {4, 3, 3, 3};
    int64_t s3[3] = {3, 5, 5};
    int64_t nb = 5;
    blo_tensor *x = tu_rand(ctx, r, BLO_F64, 4, s35, -1, 1);
    blo_tensor *x4 = tu_rand(ctx, r, BLO_F64, 4, s45, -1, 1);
    blo_tensor *x33 = tu_rand(ctx, r, BLO_F64, 4, s33, -1, 1);
    blo_tensor *w_good = tu_rand(ctx, r, BLO_F64, 4, sw_c3, -1, 1);

    expect_error(ctx, blo_conv2d(ctx, x, tu_rand(ctx, r, BLO_F64, 4, sw_c2, -1, 1), NULL, &p),
                 BLO_ERR_SHAPE, "blo_conv2d", "conv2d: wrong input-channel count");
    expect_error(ctx, blo_conv2d(ctx, x33, tu_rand(ctx, r, BLO_F64, 4, sw_55, -1, 1), NULL, &p),
                 BLO_ERR_SHAPE, "blo_conv2d", "conv2d: kernel larger than the input");
    blo_conv2d_params pd = p;
    pd.dil_h = pd.dil_w = 2;
    pd.pad_h = 0;
    expect_error(ctx, blo_conv2d(ctx, x33, tu_rand(ctx, r, BLO_F64, 4, sw_33, -1, 1), NULL, &pd),
                 BLO_ERR_SHAPE, "blo_conv2d", "conv2d: dilated kernel larger than the input");
    pd.pad_h = pd.pad_w = 1; /* now extent 5 fits the padded 5x5: no error */
    blo_tensor *ok = blo_conv2d(ctx, x33, tu_rand(ctx, r, BLO_F64, 4, sw_33, -1, 1), NULL, &pd);
    TU_CHECK(ok && blo_tensor_dim(ok, 2) == 1 && blo_tensor_dim(ok, 3) == 1,
             "conv2d: dilated kernel exactly filling the padded input gives 1x1");
    tu_check_ok(ctx, "conv2d: dilated kernel exactly filling the padded input");
    blo_conv2d_params pg = p;
    pg.groups = 2;
    expect_error(ctx, blo_conv2d(ctx, x, tu_rand(ctx, r, BLO_F64, 4, sw_c1, -1, 1), NULL, &pg),
                 BLO_ERR_INVALID, "blo_conv2d", "conv2d: groups not dividing C");
    expect_error(ctx, blo_conv2d(ctx, x4, tu_rand(ctx, r, BLO_F64, 4, sw_o3, -1, 1), NULL, &pg),
                 BLO_ERR_INVALID, "blo_conv2d", "conv2d: groups not dividing O");
    blo_conv2d_params ps = p;
    ps.stride_w = 0;
    expect_error(ctx, blo_conv2d(ctx, x, w_good, NULL, &ps), BLO_ERR_INVALID, "blo_conv2d",
                 "conv2d: stride 0");
    blo_conv2d_params pp = p;
    pp.pad_h = -1;
    expect_error(ctx, blo_conv2d(ctx, x, w_good, NULL, &pp), BLO_ERR_INVALID, "blo_conv2d",
                 "conv2d: negative padding");
    expect_error(ctx, blo_conv2d(ctx, x, w_good, tu_rand(ctx, r, BLO_F64, 1, &nb, -1, 1), &p),
                 BLO_ERR_SHAPE, "blo_conv2d", "conv2d: bias of the wrong size");
    expect_error(ctx, blo_conv2d(ctx, tu_rand(ctx, r, BLO_F64, 3, s3, -1, 1), w_good, NULL, &p),
                 BLO_ERR_SHAPE, "blo_conv2d", "conv2d: 3-d input");
    expect_error(ctx, blo_conv2d(ctx, blo_cast(ctx, x, BLO_F32), w_good, NULL, &p), BLO_ERR_DTYPE,
                 "blo_conv2d", "conv2d: mixed dtypes");
    TU_CHECK(blo_conv2d(ctx, NULL, w_good, NULL, &p) == NULL && blo_ctx_status(ctx) == BLO_OK,
             "conv2d: a NULL input gives NULL and records nothing");
    blo_tensor *d = blo_conv2d(ctx, x, w_good, NULL, NULL);
    TU_CHECK(d && blo_tensor_dim(d, 2) == 3, "conv2d: NULL parameters mean the defaults");
    tu_check_ok(ctx, "conv2d: errors");
    blo_ctx_rewind(ctx, m);
}

/* ---- Pooling --------------------------------------------------------------------------------- */

typedef struct {
    blo_pool2d_params p;
    int max, transpose;
    blo_tensor *r;
} pool_env;

static blo_tensor *pool(blo_ctx *ctx, const pool_env *e, blo_tensor *x) {
    if (e->transpose) x = blo_transpose(ctx, x, 2, 3);
    return e->max ? blo_max_pool2d(ctx, x, &e->p) : blo_avg_pool2d(ctx, x, &e->p);
}

static blo_tensor *f_pool(blo_ctx *ctx, blo_tensor *const *in, void *e) {
    pool_env *env = e;
    return weigh(ctx, pool(ctx, env, in[0]), env->r);
}

static void test_pool_values(blo_ctx *ctx) {
    blo_mark m = blo_ctx_mark(ctx);
    int64_t s3[4] = {1, 1, 3, 3}, s4[4] = {1, 1, 4, 4};
    const double xm[9] = {5, 1, 9, 2, 8, 3, 7, 4, 6};
    const double xa[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    blo_tensor *x = blo_from_f64(ctx, BLO_F64, 4, s3, xm);
    blo_tensor *xs = blo_from_f64(ctx, BLO_F64, 4, s3, xa);
    blo_set_requires_grad(x, 1);
    blo_set_requires_grad(xs, 1);

    /* Kernel 2, stride 1, padding 1: 4x4 windows, corners see one cell, edges two. */
    blo_pool2d_params p = {2, 2, 1, 1, 1, 1, 1};
    const double want_max[16] = {5, 5, 9, 9, 5, 8, 9, 9, 7, 8, 8, 6, 7, 7, 6, 6};
    blo_tensor *y = blo_max_pool2d(ctx, x, &p);
    tu_check_close_f64(y, want_max, 0, 0, "max_pool2d k2 s1 p1: values");
    /* ∂Σy/∂x counts the windows each cell is the maximum of: 5 -> 3, 9 -> 4, 8, 7, 6 -> 3. */
    const double want_count[9] = {3, 0, 4, 0, 3, 0, 3, 0, 3};
    blo_tensor *s = blo_sum_all(ctx, y), *g;
    if (blo_grad(ctx, 1, &s, NULL, 1, &x, 0, &g) == BLO_OK)
        tu_check_close_f64(g, want_count, 0, 0, "max_pool2d k2 s1 p1: gradient of the sum");
    else
        TU_CHECK(0, "max_pool2d: blo_grad: %s", blo_ctx_error(ctx));
    /* Without recording the kernel's maxima are returned directly: same values. */
    int old = blo_ctx_set_recording(ctx, 0);
    tu_check_close_f64(blo_max_pool2d(ctx, x, &p), want_max, 0, 0,
                       "max_pool2d k2 s1 p1: values without recording");
    blo_ctx_set_recording(ctx, old);

    /* Ties go to the first maximum in row-major order; a NaN wins over numbers. */
    const double xt[9] = {2, 1, 2, 0, 2, NAN, 1, 1, 1};
    blo_tensor *xtie = blo_from_f64(ctx, BLO_F64, 4, s3, xt);
    blo_set_requires_grad(xtie, 1);
    blo_pool2d_params k2 = {2, 2, 1, 1, 0, 0, 1};
    const double want_tie[4] = {2, NAN, 2, NAN}, want_tie_grad[9] = {1, 0, 0, 0, 1, 2, 0, 0, 0};
    blo_tensor *yt = blo_max_pool2d(ctx, xtie, &k2);
    for (int i = 0; i < 4; i++)
        TU_CHECK(yt && (isnan(want_tie[i]) ? isnan(blo_tensor_get(yt, i))
                                           : blo_tensor_get(yt, i) == want_tie[i]),
                 "max_pool2d with ties and NaN: element %d", i);
    s = blo_sum_all(ctx, yt);
    if (blo_grad(ctx, 1, &s, NULL, 1, &xtie, 0, &g) == BLO_OK)
        tu_check_close_f64(g, want_tie_grad, 0, 0, "max_pool2d ties: gradient to the first max");
    else
        TU_CHECK(0, "max_pool2d ties: blo_grad: %s", blo_ctx_error(ctx));

    /* Window sums: corners 1, 3, 3, 7, 9 ...; divided by 4, or by the real cells (1, 2, 4). */
    const double want_pad[16] = {0.25, 0.75, 1.25, 0.75, 1.25, 3,    4,    2.25,
                                 2.75, 6,    7,    3.75, 1.75, 3.75, 4.25, 2.25};
    const double want_nopad[16] = {1, 1.5, 2.5, 3, 2.5, 3, 4, 4.5, 5.5, 6, 7, 7.5, 7, 7.5, 8.5, 9};
    tu_check_close_f64(blo_avg_pool2d(ctx, xs, &p), want_pad, 1e-15, 0,
                       "avg_pool2d k2 s1 p1 count_include_pad: values");
    p.count_include_pad = 0;
    tu_check_close_f64(blo_avg_pool2d(ctx, xs, &p), want_nopad, 1e-15, 0,
                       "avg_pool2d k2 s1 p1 real cells only: values");

    /* Stride 0 = the kernel size: 2x2 blocks of a 4x4 input, no padding. */
    const double x16[16] = {1, 9, 2, 3, 4, 0, 8, 7, 6, 5, 1, 1, -1, 2, 3, 0};
    blo_tensor *x4 = blo_from_f64(ctx, BLO_F64, 4, s4, x16);
    blo_pool2d_params q = {2, 2, 0, 0, 0, 0, 1};
    const double want_blk_max[4] = {9, 8, 6, 3}, want_blk_avg[4] = {3.5, 5, 3, 1.25};
    tu_check_close_f64(blo_max_pool2d(ctx, x4, &q), want_blk_max, 0, 0,
                       "max_pool2d k2 stride 0: values");
    tu_check_close_f64(blo_avg_pool2d(ctx, x4, &q), want_blk_avg, 1e-15, 0,
                       "avg_pool2d k2 stride 0: values");
    /* Kernel 3, stride 2, padding 1 on 4x4: rows and columns {0, 1} and {1, 2, 3}. */
    blo_pool2d_params k3 = {3, 3, 2, 2, 1, 1, 0};
    const double want_k3_max[4] = {9, 9, 6, 8};
    const double want_k3_avg[4] = {14.0 / 4, 29.0 / 6, 16.0 / 6, 27.0 / 9};
    tu_check_close_f64(blo_max_pool2d(ctx, x4, &k3), want_k3_max, 0, 0,
                       "max_pool2d k3 s2 p1: values");
    tu_check_close_f64(blo_avg_pool2d(ctx, x4, &k3), want_k3_avg, 1e-15, 0,
                       "avg_pool2d k3 s2 p1 real cells only: values");
    tu_check_ok(ctx, "pooling values");
    blo_ctx_rewind(ctx, m);
}

static void test_pool_grads(blo_ctx *ctx, blo_rng *r) {
    static const struct {
        const char *name;
        int64_t shape[4];
        pool_env e;
    } cases[] = {
        {"max_pool2d k3 s2 p1", {2, 2, 5, 6}, {{3, 3, 2, 2, 1, 1, 0}, 1, 0, NULL}},
        {"max_pool2d k2 stride 0", {1, 2, 4, 6}, {{2, 2, 0, 0, 0, 0, 0}, 1, 0, NULL}},
        {"max_pool2d k(2,3) s(1,2) p(1,1), strided input",
         {1, 2, 5, 4},
         {{2, 3, 1, 2, 1, 1, 0}, 1, 1, NULL}},
        {"avg_pool2d k3 s2 p1 include pad", {2, 2, 5, 6}, {{3, 3, 2, 2, 1, 1, 1}, 0, 0, NULL}},
        {"avg_pool2d k3 s2 p1 real cells", {2, 2, 5, 6}, {{3, 3, 2, 2, 1, 1, 0}, 0, 0, NULL}},
        {"avg_pool2d k(2,3) s(1,2) p(1,1) real cells, strided input",
         {1, 2, 5, 4},
         {{2, 3, 1, 2, 1, 1, 0}, 0, 1, NULL}},
        {"avg_pool2d k2 stride 0", {1, 1, 4, 6}, {{2, 2, 0, 0, 0, 0, 1}, 0, 0, NULL}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        blo_mark m = blo_ctx_mark(ctx);
        pool_env env = cases[k].e;
        blo_tensor *x = tu_rand(ctx, r, BLO_F64, 4, cases[k].shape, -1, 1);
        int old = blo_ctx_set_recording(ctx, 0);
        env.r = weights_like(ctx, r, pool(ctx, &env, x));
        blo_ctx_set_recording(ctx, old);
        tu_gradcheck(ctx, cases[k].name, f_pool, &env, 1, &x, 1);
        tu_check_ok(ctx, cases[k].name);
        blo_ctx_rewind(ctx, m);
    }
}

/* Threaded sizes: max pooling against a reference loop, avg pooling's backward against
 * the adjoint identity ⟨Pᵀr, x⟩ = ⟨r, Px⟩. */
static void test_pool_big(blo_ctx *ctx, blo_rng *r) {
    blo_mark m = blo_ctx_mark(ctx);
    int64_t sx[4] = {4, 8, 32, 31}, H = 32, W = 31;
    blo_tensor *x = tu_rand(ctx, r, BLO_F64, 4, sx, -1, 1);
    blo_pool2d_params p = {3, 3, 2, 2, 1, 1, 0};
    blo_tensor *y = blo_max_pool2d(ctx, x, &p);
    int64_t OH = (H + 2 - 3) / 2 + 1, OW = (W + 2 - 3) / 2 + 1;
    double *xv = values(x), *want = malloc(sizeof(double) * (size_t)(32 * OH * OW));
    for (int64_t q = 0; q < 32; q++)
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++) {
                double b = -INFINITY;
                for (int64_t iy = oy * 2 - 1; iy < oy * 2 + 2; iy++)
                    for (int64_t ix = ox * 2 - 1; ix < ox * 2 + 2; ix++)
                        if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                            b = fmax(b, xv[(q * H + iy) * W + ix]);
                want[(q * OH + oy) * OW + ox] = b;
            }
    tu_check_close_f64(y, want, 0, 0, "max_pool2d big: values against the loops");
    free(xv);
    free(want);
    for (int cip = 0; cip <= 1; cip++) {
        p.count_include_pad = cip;
        blo_tensor *a = blo_avg_pool2d(ctx, x, &p);
        blo_tensor *rw = weights_like(ctx, r, a);
        blo_tensor *s = blo_dot(ctx, a, rw), *g;
        if (blo_grad(ctx, 1, &s, NULL, 1, &x, 0, &g) == BLO_OK) {
            double lhs = dot_values(g, x), rhs = blo_tensor_item(s);
            TU_CHECK(tu_close(lhs, rhs, 1e-11, 1e-11),
                     "avg_pool2d big (cip %d): <P'r, x> = %.15g, <r, Px> = %.15g", cip, lhs, rhs);
        } else {
            TU_CHECK(0, "avg_pool2d big: blo_grad: %s", blo_ctx_error(ctx));
        }
    }
    tu_check_ok(ctx, "pooling big");
    blo_ctx_rewind(ctx, m);
}

static void test_pool_errors(blo_ctx *ctx, blo_rng *r) {
    blo_mark m = blo_ctx_mark(ctx);
    int64_t s2[4] = {1, 1, 2, 2}, s3[3] = {1, 4, 4};
    blo_tensor *x = tu_rand(ctx, r, BLO_F64, 4, s2, -1, 1);
    blo_pool2d_params big = {5, 5, 1, 1, 1, 1, 1}, pad = {3, 3, 1, 1, 2, 0, 1};
    blo_pool2d_params zero = {0, 2, 1, 1, 0, 0, 1}, ok = {2, 2, 0, 0, 0, 0, 1};
    expect_error(ctx, blo_max_pool2d(ctx, x, &big), BLO_ERR_SHAPE, "blo_max_pool2d",
                 "max_pool2d: kernel larger than the padded input");
    expect_error(ctx, blo_avg_pool2d(ctx, x, &big), BLO_ERR_SHAPE, "blo_avg_pool2d",
                 "avg_pool2d: kernel larger than the padded input");
    expect_error(ctx, blo_max_pool2d(ctx, x, &pad), BLO_ERR_INVALID, "blo_max_pool2d",
                 "max_pool2d: padding above half the kernel");
    expect_error(ctx, blo_avg_pool2d(ctx, x, &zero), BLO_ERR_INVALID, "blo_avg_pool2d",
                 "avg_pool2d: kernel 0");
    expect_error(ctx, blo_max_pool2d(ctx, x, NULL), BLO_ERR_INVALID, "blo_max_pool2d",
                 "max_pool2d: no parameters");
    expect_error(ctx, blo_max_pool2d(ctx, tu_rand(ctx, r, BLO_F64, 3, s3, -1, 1), &ok),
                 BLO_ERR_SHAPE, "blo_max_pool2d", "max_pool2d: 3-d input");
    TU_CHECK(blo_avg_pool2d(ctx, NULL, &ok) == NULL && blo_ctx_status(ctx) == BLO_OK,
             "avg_pool2d: a NULL input gives NULL and records nothing");
    blo_ctx_rewind(ctx, m);
}

/* ---- Batch norm ------------------------------------------------------------------------------ */

/* Per-channel mean and biased variance of x [N, C, S...] (S = the rest, flattened). */
static void channel_moments(const blo_tensor *t, double *mean, double *var) {
    int64_t N = blo_tensor_dim(t, 0), C = blo_tensor_dim(t, 1), S = blo_tensor_numel(t) / (N * C);
    double *v = values(t);
    for (int64_t c = 0; c < C; c++) {
        double s = 0, q = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < S; k++)
                s += v[(n * C + c) * S + k];
        mean[c] = s / (double)(N * S);
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < S; k++) {
                double d = v[(n * C + c) * S + k] - mean[c];
                q += d * d;
            }
        var[c] = q / (double)(N * S);
    }
    free(v);
}

static void test_bn_values(blo_ctx *ctx, blo_rng *r) {
    blo_mark m = blo_ctx_mark(ctx);
    int64_t sx[4] = {4, 3, 2, 3}, C = 3, M = 4 * 2 * 3;
    const double eps = 1e-5, mom = 0.1;
    blo_tensor *x = tu_rand(ctx, r, BLO_F64, 4, sx, -2, 3);
    const double g0[3] = {1.5, -0.5, 2}, b0[3] = {0.25, -1, 3};
    const double rm0[3] = {0.1, -0.2, 0.3}, rv0[3] = {1, 2, 0.5};
    blo_tensor *gamma = blo_from_f64(ctx, BLO_F64, 1, &C, g0);
    blo_tensor *beta = blo_from_f64(ctx, BLO_F64, 1, &C, b0);
    blo_tensor *rm = blo_from_f64(ctx, BLO_F64, 1, &C, rm0);
    blo_tensor *rv = blo_from_f64(ctx, BLO_F64, 1, &C, rv0);
    double mx[3], vx[3], my[3], vy[3];
    channel_moments(x, mx, vx);

    /* Without affine parameters: mean 0 and variance σ²/(σ² + eps) ≈ 1 per channel. */
    blo_tensor *y = blo_batch_norm(ctx, x, NULL, NULL, rm, rv, 1, mom, eps);
    tu_check_ok(ctx, "batch_norm train");
    if (!y) return;
    channel_moments(y, my, vy);
    for (int c = 0; c < 3; c++) {
        TU_CHECK(fabs(my[c]) < 1e-12, "batch_norm train: channel %d mean %g", c, my[c]);
        TU_CHECK(tu_close(vy[c], vx[c] / (vx[c] + eps), 1e-10, 0) && fabs(vy[c] - 1) < 1e-4,
                 "batch_norm train: channel %d variance %.12g, expected %.12g", c, vy[c],
                 vx[c] / (vx[c] + eps));
    }
    /* One step of the running statistics, with the unbiased batch variance. */
    double want_rm[3], want_rv[3];
    for (int c = 0; c < 3; c++) {
        want_rm[c] = (1 - mom) * rm0[c] + mom * mx[c];
        want_rv[c] = (1 - mom) * rv0[c] + mom * vx[c] * (double)M / (double)(M - 1);
    }
    tu_check_close_f64(rm, want_rm, 1e-13, 1e-15, "batch_norm train: running mean after a step");
    tu_check_close_f64(rv, want_rv, 1e-13, 1e-15, "batch_norm train: running var after a step");
    double rm1[3], rv1[3]; /* the running stats now: the calls below must leave them */
    blo_tensor_to_f64(rm, rm1);
    blo_tensor_to_f64(rv, rv1);

    /* Affine: mean β, variance γ² σ²/(σ² + eps). No running statistics: nothing moves. */
    y = blo_batch_norm(ctx, x, gamma, beta, NULL, NULL, 1, mom, eps);
    channel_moments(y, my, vy);
    for (int c = 0; c < 3; c++) {
        TU_CHECK(tu_close(my[c], b0[c], 1e-12, 1e-12), "batch_norm affine: channel %d mean %g", c,
                 my[c]);
        TU_CHECK(tu_close(vy[c], g0[c] * g0[c] * vx[c] / (vx[c] + eps), 1e-10, 0),
                 "batch_norm affine: channel %d variance %g", c, vy[c]);
    }
    tu_check_close_f64(rm, rm1, 0, 0, "batch_norm without running stats leaves them");

    /* eval: (x - r_μ) / sqrt(r_σ² + eps) γ + β elementwise, running stats untouched. */
    y = blo_batch_norm(ctx, x, gamma, beta, rm, rv, 0, mom, eps);
    double *xv = values(x), want[72];
    for (int64_t i = 0; i < 72; i++) {
        int64_t c = (i / 6) % 3;
        want[i] = (xv[i] - rm1[c]) / sqrt(rv1[c] + eps) * g0[c] + b0[c];
    }
    free(xv);
    tu_check_close_f64(y, want, 1e-12, 1e-12, "batch_norm eval: values");
    tu_check_close_f64(rm, rm1, 0, 0, "batch_norm eval leaves the running mean");
    tu_check_close_f64(rv, rv1, 0, 0, "batch_norm eval leaves the running var");

    /* [N, C] input, and f32 running statistics for an f64 input. */
    int64_t s2[2] = {5, 3};
    blo_tensor *x2 = tu_rand(ctx, r, BLO_F64, 2, s2, -1, 2);
    blo_tensor *rm32 = blo_zeros(ctx, BLO_F32, 1, &C), *rv32 = blo_full(ctx, BLO_F32, 1, &C, 1);
    y = blo_batch_norm(ctx, x2, NULL, NULL, rm32, rv32, 1, 0.5, 0);
    channel_moments(y, my, vy);
    channel_moments(x2, mx, vx);
    for (int c = 0; c < 3; c++) {
        TU_CHECK(fabs(my[c]) < 1e-12 && tu_close(vy[c], 1, 1e-12, 0),
                 "batch_norm [N, C]: channel %d mean %g variance %g", c, my[c], vy[c]);
        TU_CHECK(tu_close(blo_tensor_get(rm32, c), 0.5 * mx[c], 1e-6, 1e-7) &&
                     tu_close(blo_tensor_get(rv32, c), 0.5 + 0.5 * vx[c] * 5 / 4, 1e-6, 0),
                 "batch_norm [N, C]: f32 running stats of channel %d", c);
    }
    tu_check_ok(ctx, "batch_norm values");
    blo_ctx_rewind(ctx, m);
}

typedef struct {
    int training, affine;
    blo_tensor *rm, *rv, *r;
} bn_env;

static blo_tensor *f_bn(blo_ctx *ctx, blo_tensor *const *in, void *e) {
    bn_env *env = e;
    blo_tensor *y =
        blo_batch_norm(ctx, in[0], env->affine ? in[1] : NULL, env->affine ? in[2] : NULL, env->rm,
                       env->rv, env->training, 0.1, 1e-5);
    return weigh(ctx, y, env->r);
}

static void test_bn_grads(blo_ctx *ctx, blo_rng *r) {
    static const struct {
        const char *name;
        int nd;
        int64_t shape[4];
        int training, affine;
    } cases[] = {
        {"batch_norm train, affine", 4, {3, 2, 2, 3}, 1, 1},
        {"batch_norm train, no affine", 4, {3, 2, 3, 2}, 1, 0},
        {"batch_norm train [N, C], affine", 2, {5, 3}, 1, 1},
        {"batch_norm eval, affine", 4, {2, 3, 2, 2}, 0, 1},
        {"batch_norm eval, no affine", 3, {2, 3, 4}, 0, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        blo_mark m = blo_ctx_mark(ctx);
        int64_t C = cases[k].shape[1];
        blo_tensor *in[3] = {tu_rand(ctx, r, BLO_F64, cases[k].nd, cases[k].shape, -1, 2),
                             tu_rand(ctx, r, BLO_F64, 1, &C, 0.5, 1.5),
                             tu_rand(ctx, r, BLO_F64, 1, &C, -1, 1)};
        bn_env env = {cases[k].training, cases[k].affine, NULL, NULL, NULL};
        if (!cases[k].training) {
            env.rm = blo_tensor_new(ctx, BLO_F64, 1, &C);
            env.rv = blo_tensor_new(ctx, BLO_F64, 1, &C);
            blo_init_uniform(env.rm, r, -0.5, 0.5);
            blo_init_uniform(env.rv, r, 0.5, 2);
        }
        env.r = weights_like(ctx, r, in[0]);
        tu_gradcheck(ctx, cases[k].name, f_bn, &env, cases[k].affine ? 3 : 1, in, 1);
        tu_check_ok(ctx, cases[k].name);
        blo_ctx_rewind(ctx, m);
    }
}

static void test_bn_errors(blo_ctx *ctx, blo_rng *r) {
    blo_mark m = blo_ctx_mark(ctx);
    int64_t sx[4] = {2, 3, 2, 2}, s1[2] = {1, 3}, C = 3, C4 = 4;
    blo_tensor *x = tu_rand(ctx, r, BLO_F64, 4, sx, -1, 1);
    blo_tensor *c3 = blo_full(ctx, BLO_F64, 1, &C, 1), *c4 = blo_full(ctx, BLO_F64, 1, &C4, 1);
    expect_error(ctx, blo_batch_norm(ctx, x, c4, NULL, NULL, NULL, 1, 0.1, 1e-5), BLO_ERR_SHAPE,
                 "blo_batch_norm", "batch_norm: gamma of the wrong size");
    expect_error(ctx, blo_batch_norm(ctx, x, c3, c3, c4, c4, 1, 0.1, 1e-5), BLO_ERR_SHAPE,
                 "blo_batch_norm", "batch_norm: running stats of the wrong size");
    expect_error(ctx, blo_batch_norm(ctx, x, c3, c3, NULL, NULL, 0, 0.1, 1e-5), BLO_ERR_INVALID,
                 "blo_batch_norm", "batch_norm: eval without running stats");
    expect_error(ctx, blo_batch_norm(ctx, x, NULL, NULL, c3, NULL, 1, 0.1, 1e-5), BLO_ERR_INVALID,
                 "blo_batch_norm", "batch_norm: running mean without var");
    expect_error(ctx, blo_batch_norm(ctx, x, NULL, NULL, NULL, NULL, 1, 1.5, 1e-5), BLO_ERR_INVALID,
                 "blo_batch_norm", "batch_norm: momentum above 1");
    expect_error(ctx,
                 blo_batch_norm(ctx, tu_rand(ctx, r, BLO_F64, 2, s1, -1, 1), NULL, NULL, NULL, NULL,
                                1, 0.1, 1e-5),
                 BLO_ERR_INVALID, "blo_batch_norm", "batch_norm: one value per channel");
    expect_error(ctx, blo_batch_norm(ctx, c3, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5), BLO_ERR_SHAPE,
                 "blo_batch_norm", "batch_norm: 1-d input");
    TU_CHECK(blo_batch_norm(ctx, NULL, c3, c3, NULL, NULL, 1, 0.1, 1e-5) == NULL &&
                 blo_ctx_status(ctx) == BLO_OK,
             "batch_norm: a NULL input gives NULL and records nothing");
    blo_ctx_rewind(ctx, m);
}

/* ---- Dropout --------------------------------------------------------------------------------- */

static void test_dropout(blo_ctx *ctx, blo_rng *r) {
    blo_mark m = blo_ctx_mark(ctx);
    const double p = 0.3, keep_scale = 1.0 / (1.0 - p);
    int64_t big[2] = {200, 500}, n = 200 * 500;
    blo_tensor *ones = blo_full(ctx, BLO_F64, 2, big, 1.0);
    blo_rng a, b;
    blo_rng_seed(&a, 42);
    blo_rng_seed(&b, 42);
    blo_tensor *y1 = blo_dropout(ctx, ones, p, 1, &a), *y2 = blo_dropout(ctx, ones, p, 1, &b);
    tu_check_ok(ctx, "dropout");
    if (!y1 || !y2) return;
    double *v1 = values(y1), *v2 = values(y2);
    int64_t zeros = 0, bad_scale = 0, differ = 0;
    for (int64_t i = 0; i < n; i++) {
        zeros += v1[i] == 0;
        bad_scale += v1[i] != 0 && v1[i] != keep_scale;
        differ += v1[i] != v2[i];
    }
    /* The zero fraction's standard deviation is sqrt(p(1-p)/n) = 0.0014: allow 7 of them. */
    double frac = (double)zeros / (double)n;
    TU_CHECK(fabs(frac - p) < 0.01, "dropout: zero fraction %.4f, expected %.2f", frac, p);
    TU_CHECK(bad_scale == 0, "dropout: %lld survivors not scaled by 1/(1-p)", (long long)bad_scale);
    TU_CHECK(differ == 0, "dropout: the same seed gave %lld different elements", (long long)differ);
    blo_tensor *y3 = blo_dropout(ctx, ones, p, 1, &a); /* the rng moved on: a new mask */
    double *v3 = values(y3);
    differ = 0;
    for (int64_t i = 0; i < n; i++)
        differ += v1[i] != v3[i];
    TU_CHECK(differ > n / 10, "dropout: a second draw repeats the mask (%lld differ)",
             (long long)differ);
    free(v1);
    free(v2);
    free(v3);

    /* Gradient of Σ dropout(x): mask / (1 - p), and out = x · that mask. */
    int64_t s[2] = {30, 40};
    blo_tensor *x = tu_rand(ctx, r, BLO_F64, 2, s, 0.5, 1.5);
    blo_rng_seed(&a, 7);
    blo_tensor *y = blo_dropout(ctx, x, p, 1, &a), *sum = blo_sum_all(ctx, y), *g;
    if (blo_grad(ctx, 1, &sum, NULL, 1, &x, 0, &g) == BLO_OK) {
        double *yv = values(y), *xv = values(x), *gv = values(g);
        int64_t bad = 0;
        for (int64_t i = 0; i < 1200; i++) {
            double want = yv[i] != 0 ? keep_scale : 0;
            bad += gv[i] != want || yv[i] != xv[i] * want;
        }
        TU_CHECK(bad == 0, "dropout: %lld gradient entries are not mask/(1-p)", (long long)bad);
        free(yv);
        free(xv);
        free(gv);
    } else {
        TU_CHECK(0, "dropout: blo_grad: %s", blo_ctx_error(ctx));
    }
    /* f32 keeps the dtype and the scale. */
    blo_tensor *y32 = blo_dropout(ctx, blo_cast(ctx, ones, BLO_F32), 0.5, 1, &a);
    TU_CHECK(y32 && blo_tensor_dtype(y32) == BLO_F32 &&
                 (blo_tensor_get(y32, 0) == 0 || blo_tensor_get(y32, 0) == 2),
             "dropout f32: dtype and scale");

    TU_CHECK(blo_dropout(ctx, x, p, 0, &a) == x, "dropout eval returns x");
    TU_CHECK(blo_dropout(ctx, x, 0.0, 1, &a) == x, "dropout p = 0 returns x");
    expect_error(ctx, blo_dropout(ctx, x, 1.0, 1, &a), BLO_ERR_INVALID, "blo_dropout",
                 "dropout: p = 1");
    expect_error(ctx, blo_dropout(ctx, x, -0.1, 1, &a), BLO_ERR_INVALID, "blo_dropout",
                 "dropout: p < 0");
    expect_error(ctx, blo_dropout(ctx, x, 0.5, 1, NULL), BLO_ERR_INVALID, "blo_dropout",
                 "dropout: no rng");
    blo_ctx_rewind(ctx, m);
}

int main(void) {
    blo_ctx *ctx = blo_ctx_new(0);
    blo_rng r;
    blo_rng_seed(&r, 2024);
    test_conv_cases(ctx, &r);
    test_conv_big(ctx, &r);
    test_conv_double_backward(ctx, &r);
    test_conv_f32(ctx, &r);
    test_conv_errors(ctx, &r);
    test_pool_values(ctx);
    test_pool_grads(ctx, &r);
    test_pool_big(ctx, &r);
    test_pool_errors(ctx, &r);
    test_bn_values(ctx, &r);
    test_bn_grads(ctx, &r);
    test_bn_errors(ctx, &r);
    test_dropout(ctx, &r);
    blo_ctx_free(ctx);
    return tu_finish("test_ops_nn");
}
