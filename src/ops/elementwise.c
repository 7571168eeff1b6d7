/* elementwise.c — binary ops with broadcasting, unary maps, scalar forms, where and masks.
 * Each backward rule is written with blo ops, so it records when create-graph is on. Masks
 * that select a subgradient (relu, abs, clamp) are constants: the second derivative of a
 * piecewise-linear map is zero almost everywhere. */
#include "ops_util.h"

#include <stdio.h>

/* ---- Binary --------------------------------------------------------------------------------- */

static blo_tensor *binary(blo_ctx *ctx, blo_binary_kind k, const blo_op_def *def,
                          const char *name, blo_tensor *a, blo_tensor *b) {
    BLO_GUARD(ctx);
    if (!a || !b) return NULL;
    if (!blo__check_same_dtype(ctx, name, a, b)) return NULL;
    int nd;
    int64_t sh[BLO_MAX_DIMS];
    if (!blo__broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, &nd, sh)) {
        char x[64], y[64];
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "%s: shapes %s and %s do not broadcast", name,
                          blo__desc(a, x, sizeof x), blo__desc(b, y, sizeof y));
        return NULL;
    }
    blo_tensor *out = blo__alloc(ctx, a->dtype, nd, sh);
    if (!out) return NULL;
    blo_tensor av, bv;
    blo__expand_into(&av, a, nd, sh);
    blo__expand_into(&bv, b, nd, sh);
    ctx->be->binary(k, &av, &bv, out);
    if (def) {
        blo_node *n;
        BLO_RECORD(n, ctx, out, def, 2, a, b);
        (void)n;
    }
    return out;
}

static blo_status add_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                         const bool *need, blo_tensor **gin) {
    (void)out;
    if (need[0]) gin[0] = blo__sum_like(ctx, g, n->in[0]);
    if (need[1]) gin[1] = blo__sum_like(ctx, g, n->in[1]);
    return ctx->status;
}

static blo_status sub_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                         const bool *need, blo_tensor **gin) {
    (void)out;
    if (need[0]) gin[0] = blo__sum_like(ctx, g, n->in[0]);
    if (need[1]) gin[1] = blo__sum_like(ctx, blo_neg(ctx, g), n->in[1]);
    return ctx->status;
}

static blo_status mul_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                         const bool *need, blo_tensor **gin) {
    (void)out;
    if (need[0]) gin[0] = blo__sum_like(ctx, blo_mul(ctx, g, n->in[1]), n->in[0]);
    if (need[1]) gin[1] = blo__sum_like(ctx, blo_mul(ctx, g, n->in[0]), n->in[1]);
    return ctx->status;
}

static blo_status div_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                         const bool *need, blo_tensor **gin) {
    blo_tensor *gb = blo_div(ctx, g, n->in[1]); /* g / b */
    if (need[0]) gin[0] = blo__sum_like(ctx, gb, n->in[0]);
    /* d(a/b)/db = -(a/b)/b */
    if (need[1]) gin[1] = blo__sum_like(ctx, blo_neg(ctx, blo_mul(ctx, gb, out)), n->in[1]);
    return ctx->status;
}

static const blo_op_def ADD = {"add", add_bw, 1};
static const blo_op_def SUB = {"sub", sub_bw, 1};
static const blo_op_def MUL = {"mul", mul_bw, 1};
static const blo_op_def DIV = {"div", div_bw, 1};

blo_tensor *blo_add(blo_ctx *ctx, blo_tensor *a, blo_tensor *b) {
    return binary(ctx, BLO_B_ADD, &ADD, "blo_add", a, b);
}
blo_tensor *blo_sub(blo_ctx *ctx, blo_tensor *a, blo_tensor *b) {
    return binary(ctx, BLO_B_SUB, &SUB, "blo_sub", a, b);
}
blo_tensor *blo_mul(blo_ctx *ctx, blo_tensor *a, blo_tensor *b) {
    return binary(ctx, BLO_B_MUL, &MUL, "blo_mul", a, b);
}
blo_tensor *blo_div(blo_ctx *ctx, blo_tensor *a, blo_tensor *b) {
    return binary(ctx, BLO_B_DIV, &DIV, "blo_div", a, b);
}
blo_tensor *blo_gt(blo_ctx *ctx, blo_tensor *a, blo_tensor *b) {
    return binary(ctx, BLO_B_GT, NULL, "blo_gt", a, b);
}
blo_tensor *blo_lt(blo_ctx *ctx, blo_tensor *a, blo_tensor *b) {
    return binary(ctx, BLO_B_LT, NULL, "blo_lt", a, b);
}
blo_tensor *blo_eq(blo_ctx *ctx, blo_tensor *a, blo_tensor *b) {
    return binary(ctx, BLO_B_EQ, NULL, "blo_eq", a, b);
}

/* ---- where ------------------------------------------------------------------------------------- */

static blo_status where_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                           const bool *need, blo_tensor **gin) {
    (void)out;
    blo_tensor *mask = n->saved[0];
    blo_tensor *zero = blo_scalar(ctx, g->dtype, 0.0);
    if (need[0]) gin[0] = blo__sum_like(ctx, blo_where(ctx, mask, g, zero), n->in[0]);
    if (need[1]) gin[1] = blo__sum_like(ctx, blo_where(ctx, mask, zero, g), n->in[1]);
    return ctx->status;
}
static const blo_op_def WHERE = {"where", where_bw, 1};

blo_tensor *blo_where(blo_ctx *ctx, blo_tensor *mask, blo_tensor *a, blo_tensor *b) {
    BLO_GUARD(ctx);
    if (!mask || !a || !b) return NULL;
    if (!blo__check_same_dtype(ctx, "blo_where", a, b) ||
        !blo__check_same_dtype(ctx, "blo_where (mask)", mask, a))
        return NULL;
    int nd, nd2;
    int64_t sh[BLO_MAX_DIMS], sh2[BLO_MAX_DIMS];
    if (!blo__broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, &nd, sh) ||
        !blo__broadcast_shape(nd, sh, mask->ndim, mask->shape, &nd2, sh2)) {
        char x[64], y[64], z[64];
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "blo_where: shapes %s, %s and %s do not broadcast",
                          blo__desc(mask, x, sizeof x), blo__desc(a, y, sizeof y),
                          blo__desc(b, z, sizeof z));
        return NULL;
    }
    blo_tensor *out = blo__alloc(ctx, a->dtype, nd2, sh2);
    if (!out) return NULL;
    blo_tensor mv, av, bv;
    blo__expand_into(&mv, mask, nd2, sh2);
    blo__expand_into(&av, a, nd2, sh2);
    blo__expand_into(&bv, b, nd2, sh2);
    ctx->be->where(&mv, &av, &bv, out);
    blo_node *n;
    BLO_RECORD(n, ctx, out, &WHERE, 2, a, b);
    if (n) n->saved[0] = mask;
    return out;
}

/* ---- Unary ---------------------------------------------------------------------------------------- */

/* The map of a kernel kind into a fresh tensor, never recorded (masks, constants). */
blo_tensor *blo__unary_const(blo_ctx *ctx, blo_unary_kind k, double p0, double p1,
                             blo_tensor *a) {
    BLO_GUARD(ctx);
    if (!a) return NULL;
    blo_tensor *out = blo__alloc(ctx, a->dtype, a->ndim, a->shape);
    if (!out) return NULL;
    double p[2] = {p0, p1};
    ctx->be->unary(k, p, a, out);
    return out;
}

static blo_tensor *unary(blo_ctx *ctx, blo_unary_kind k, const blo_op_def *def, const char *name,
                         double p0, double p1, blo_tensor *a) {
    BLO_GUARD(ctx);
    if (!a) return NULL;
    if (!blo__check_float(ctx, name, a)) return NULL;
    blo_tensor *out = blo__unary_const(ctx, k, p0, p1, a);
    if (!out) return NULL;
    blo_node *n;
    BLO_RECORD(n, ctx, out, def, 1, a);
    if (n) {
        n->fp[0] = p0;
        n->fp[1] = p1;
    }
    return out;
}

#define BW(NAME) \
    static blo_status NAME(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g, \
                           const bool *need, blo_tensor **gin)

BW(neg_bw) {
    (void)n, (void)out, (void)need;
    gin[0] = blo_neg(ctx, g);
    return ctx->status;
}
BW(exp_bw) {
    (void)n, (void)need;
    gin[0] = blo_mul(ctx, g, out);
    return ctx->status;
}
BW(log_bw) {
    (void)out, (void)need;
    gin[0] = blo_div(ctx, g, n->in[0]);
    return ctx->status;
}
BW(sqrt_bw) { /* 1 / (2 sqrt a) */
    (void)n, (void)need;
    gin[0] = blo_scale(ctx, blo_div(ctx, g, out), 0.5);
    return ctx->status;
}
BW(abs_bw) {
    (void)out, (void)need;
    gin[0] = blo_mul(ctx, g, blo__unary_const(ctx, BLO_U_SIGN, 0, 0, n->in[0]));
    return ctx->status;
}
BW(tanh_bw) { /* 1 - tanh² */
    (void)n, (void)need;
    blo_tensor *one_m = blo_add_scalar(ctx, blo_neg(ctx, blo_mul(ctx, out, out)), 1.0);
    gin[0] = blo_mul(ctx, g, one_m);
    return ctx->status;
}
BW(sigmoid_bw) { /* σ (1 - σ) */
    (void)n, (void)need;
    blo_tensor *one_m = blo_add_scalar(ctx, blo_neg(ctx, out), 1.0);
    gin[0] = blo_mul(ctx, g, blo_mul(ctx, out, one_m));
    return ctx->status;
}
BW(relu_bw) {
    (void)out, (void)need;
    gin[0] = blo_mul(ctx, g, blo__unary_const(ctx, BLO_U_STEP, 0, 0, n->in[0]));
    return ctx->status;
}
BW(leaky_bw) {
    (void)out, (void)need;
    gin[0] = blo_mul(ctx, g, blo__unary_const(ctx, BLO_U_LEAKY_STEP, n->fp[0], 0, n->in[0]));
    return ctx->status;
}
BW(softplus_bw) {
    (void)out, (void)need;
    gin[0] = blo_mul(ctx, g, blo_sigmoid(ctx, n->in[0]));
    return ctx->status;
}
BW(clamp_bw) {
    (void)out, (void)need;
    gin[0] = blo_mul(ctx, g, blo__unary_const(ctx, BLO_U_CLAMP_MASK, n->fp[0], n->fp[1], n->in[0]));
    return ctx->status;
}
BW(pow_bw) { /* p a^(p-1) */
    (void)out, (void)need;
    double p = n->fp[0];
    blo_tensor *d = p == 1.0 ? NULL : blo_scale(ctx, blo_pow_scalar(ctx, n->in[0], p - 1.0), p);
    gin[0] = p == 1.0 ? g : blo_mul(ctx, g, d);
    return ctx->status;
}
BW(affine_bw) { /* p0 a + p1 */
    (void)out, (void)need;
    gin[0] = n->fp[0] == 1.0 ? g : blo_scale(ctx, g, n->fp[0]);
    return ctx->status;
}

static const blo_op_def NEG = {"neg", neg_bw, 1};
static const blo_op_def EXP = {"exp", exp_bw, 1};
static const blo_op_def LOG = {"log", log_bw, 1};
static const blo_op_def SQRT = {"sqrt", sqrt_bw, 1};
static const blo_op_def ABS = {"abs", abs_bw, 1};
static const blo_op_def TANH = {"tanh", tanh_bw, 1};
static const blo_op_def SIGMOID = {"sigmoid", sigmoid_bw, 1};
static const blo_op_def RELU = {"relu", relu_bw, 1};
static const blo_op_def LEAKY = {"leaky_relu", leaky_bw, 1};
static const blo_op_def SOFTPLUS = {"softplus", softplus_bw, 1};
static const blo_op_def CLAMP = {"clamp", clamp_bw, 1};
static const blo_op_def POW = {"pow_scalar", pow_bw, 1};
static const blo_op_def AFFINE = {"affine", affine_bw, 1};

blo_tensor *blo_neg(blo_ctx *ctx, blo_tensor *a) {
    return unary(ctx, BLO_U_NEG, &NEG, "blo_neg", 0, 0, a);
}
blo_tensor *blo_exp(blo_ctx *ctx, blo_tensor *a) {
    return unary(ctx, BLO_U_EXP, &EXP, "blo_exp", 0, 0, a);
}
blo_tensor *blo_log(blo_ctx *ctx, blo_tensor *a) {
    return unary(ctx, BLO_U_LOG, &LOG, "blo_log", 0, 0, a);
}
blo_tensor *blo_sqrt(blo_ctx *ctx, blo_tensor *a) {
    return unary(ctx, BLO_U_SQRT, &SQRT, "blo_sqrt", 0, 0, a);
}
blo_tensor *blo_abs(blo_ctx *ctx, blo_tensor *a) {
    return unary(ctx, BLO_U_ABS, &ABS, "blo_abs", 0, 0, a);
}
blo_tensor *blo_tanh(blo_ctx *ctx, blo_tensor *a) {
    return unary(ctx, BLO_U_TANH, &TANH, "blo_tanh", 0, 0, a);
}
blo_tensor *blo_sigmoid(blo_ctx *ctx, blo_tensor *a) {
    return unary(ctx, BLO_U_SIGMOID, &SIGMOID, "blo_sigmoid", 0, 0, a);
}
blo_tensor *blo_relu(blo_ctx *ctx, blo_tensor *a) {
    return unary(ctx, BLO_U_RELU, &RELU, "blo_relu", 0, 0, a);
}
blo_tensor *blo_leaky_relu(blo_ctx *ctx, blo_tensor *a, double slope) {
    return unary(ctx, BLO_U_LEAKY_RELU, &LEAKY, "blo_leaky_relu", slope, 0, a);
}
blo_tensor *blo_softplus(blo_ctx *ctx, blo_tensor *a) {
    return unary(ctx, BLO_U_SOFTPLUS, &SOFTPLUS, "blo_softplus", 0, 0, a);
}
blo_tensor *blo_clamp(blo_ctx *ctx, blo_tensor *a, double lo, double hi) {
    BLO_GUARD(ctx);
    if (a && !(lo <= hi)) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_clamp: lo %g is above hi %g", lo, hi);
        return NULL;
    }
    return unary(ctx, BLO_U_CLAMP, &CLAMP, "blo_clamp", lo, hi, a);
}
blo_tensor *blo_pow_scalar(blo_ctx *ctx, blo_tensor *a, double p) {
    return unary(ctx, BLO_U_POW, &POW, "blo_pow_scalar", p, 0, a);
}
blo_tensor *blo_scale(blo_ctx *ctx, blo_tensor *a, double s) {
    return unary(ctx, BLO_U_AFFINE, &AFFINE, "blo_scale", s, 0, a);
}
blo_tensor *blo_add_scalar(blo_ctx *ctx, blo_tensor *a, double s) {
    return unary(ctx, BLO_U_AFFINE, &AFFINE, "blo_add_scalar", 1, s, a);
}
