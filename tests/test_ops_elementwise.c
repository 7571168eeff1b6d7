/* test_ops_elementwise.c — every elementwise op, reduction, shape op and matmul: gradient
 * against central finite differences in float64, Hessian-vector product against finite
 * differences of gradients, and the symmetry of the Hessian; broadcasting shapes included. */
#include "testutil.h"

#include <math.h>
#include <string.h>

typedef blo_tensor *(*unary_fn)(blo_ctx *, blo_tensor *);
typedef blo_tensor *(*binary_fn)(blo_ctx *, blo_tensor *, blo_tensor *);

/* f = Σ r ⊙ op(x)² + Σ r ⊙ op(x): squaring gives every op a non-zero second derivative
 * through the chain rule, and the fixed random weights r test the full VJP. */
typedef struct {
    unary_fn u;
    binary_fn b;
    blo_tensor *r;
} env_t;

static blo_tensor *weigh(blo_ctx *ctx, blo_tensor *y, blo_tensor *r) {
    blo_tensor *w = blo_mul(ctx, y, r);
    return blo_add(ctx, blo_sum_all(ctx, blo_mul(ctx, w, y)), blo_sum_all(ctx, w));
}

static blo_tensor *f_unary(blo_ctx *ctx, blo_tensor *const *in, void *e) {
    env_t *env = e;
    return weigh(ctx, env->u(ctx, in[0]), env->r);
}

static blo_tensor *f_binary(blo_ctx *ctx, blo_tensor *const *in, void *e) {
    env_t *env = e;
    return weigh(ctx, env->b(ctx, in[0], in[1]), env->r);
}

static blo_tensor *op_leaky(blo_ctx *c, blo_tensor *a) { return blo_leaky_relu(c, a, 0.1); }
static blo_tensor *op_clamp(blo_ctx *c, blo_tensor *a) { return blo_clamp(c, a, -0.5, 0.6); }
static blo_tensor *op_pow3(blo_ctx *c, blo_tensor *a) { return blo_pow_scalar(c, a, 3.0); }
static blo_tensor *op_powh(blo_ctx *c, blo_tensor *a) { return blo_pow_scalar(c, blo_add_scalar(c, blo_abs(c, a), 0.5), 1.5); }
static blo_tensor *op_scale(blo_ctx *c, blo_tensor *a) { return blo_scale(c, blo_add_scalar(c, a, 0.3), -2.5); }
static blo_tensor *op_logp(blo_ctx *c, blo_tensor *a) { return blo_log(c, blo_add_scalar(c, blo_abs(c, a), 0.2)); }
static blo_tensor *op_sqrtp(blo_ctx *c, blo_tensor *a) { return blo_sqrt(c, blo_add_scalar(c, blo_mul(c, a, a), 0.1)); }
static blo_tensor *op_sum0(blo_ctx *c, blo_tensor *a) { int ax = 0; return blo_sum(c, a, 1, &ax, 1); }
static blo_tensor *op_sum1(blo_ctx *c, blo_tensor *a) { int ax = -1; return blo_sum(c, a, 1, &ax, 0); }
static blo_tensor *op_mean(blo_ctx *c, blo_tensor *a) { int ax[2] = {0, 2}; return blo_mean(c, a, 2, ax, 0); }
static blo_tensor *op_max(blo_ctx *c, blo_tensor *a) { int ax = 1; return blo_max(c, a, 1, &ax, 0); }
static blo_tensor *op_lse(blo_ctx *c, blo_tensor *a) { int ax = 1; return blo_logsumexp(c, a, 1, &ax, 1); }
static blo_tensor *op_lse_all(blo_ctx *c, blo_tensor *a) { return blo_logsumexp(c, a, 0, NULL, 0); }
static blo_tensor *op_perm(blo_ctx *c, blo_tensor *a) { int p[3] = {2, 0, 1}; return blo_mul(c, blo_permute(c, a, p), blo_permute(c, a, p)); }
static blo_tensor *op_tr_reshape(blo_ctx *c, blo_tensor *a) {
    int64_t s[2] = {-1, 2};
    return blo_reshape(c, blo_transpose(c, a, 0, 2), 2, s); /* reshape of a strided view copies */
}
static blo_tensor *op_slice(blo_ctx *c, blo_tensor *a) { return blo_exp(c, blo_slice(c, a, 1, 1, 4, 2)); }
static blo_tensor *op_concat(blo_ctx *c, blo_tensor *a) {
    blo_tensor *parts[3] = {a, blo_tanh(c, a), blo_slice(c, a, 1, 0, 2, 1)};
    return blo_concat(c, 3, parts, 1);
}
static blo_tensor *op_expand(blo_ctx *c, blo_tensor *a) {
    int64_t s[4] = {2, 2, 3, 4};
    return blo_sigmoid(c, blo_expand(c, a, 4, s));
}

/* r with the shape of f's output, drawn once. */
static blo_tensor *weights_for(blo_ctx *ctx, blo_rng *r, blo_tensor *y) {
    blo_tensor *w = blo_tensor_new(ctx, BLO_F64, blo_tensor_ndim(y), blo_tensor_shape(y));
    blo_init_uniform(w, r, -1, 1);
    return w;
}

static void check_unary(blo_ctx *ctx, blo_rng *r, const char *name, unary_fn op, int nd,
                        const int64_t *shape, double lo, double hi) {
    blo_tensor *x = tu_rand(ctx, r, BLO_F64, nd, shape, lo, hi);
    int old = blo_ctx_set_recording(ctx, 0);
    blo_tensor *y = op(ctx, x);
    blo_ctx_set_recording(ctx, old);
    if (!y) {
        TU_CHECK(0, "%s: forward failed: %s", name, blo_ctx_error(ctx));
        blo_ctx_clear_error(ctx);
        return;
    }
    env_t env = {op, NULL, weights_for(ctx, r, y)};
    tu_gradcheck(ctx, name, f_unary, &env, 1, &x, 1);
    tu_check_ok(ctx, name);
}

static void check_binary(blo_ctx *ctx, blo_rng *r, const char *name, binary_fn op, int na,
                         const int64_t *sa, int nb, const int64_t *sb, double lo, double hi) {
    blo_tensor *in[2] = {tu_rand(ctx, r, BLO_F64, na, sa, lo, hi),
                         tu_rand(ctx, r, BLO_F64, nb, sb, lo, hi)};
    int old = blo_ctx_set_recording(ctx, 0);
    blo_tensor *y = op(ctx, in[0], in[1]);
    blo_ctx_set_recording(ctx, old);
    if (!y) {
        TU_CHECK(0, "%s: forward failed: %s", name, blo_ctx_error(ctx));
        blo_ctx_clear_error(ctx);
        return;
    }
    env_t env = {NULL, op, weights_for(ctx, r, y)};
    tu_gradcheck(ctx, name, f_binary, &env, 2, in, 1);
    tu_check_ok(ctx, name);
}

static blo_tensor *op_divp(blo_ctx *c, blo_tensor *a, blo_tensor *b) {
    return blo_div(c, a, blo_add_scalar(c, blo_mul(c, b, b), 0.5));
}
static blo_tensor *op_where(blo_ctx *c, blo_tensor *a, blo_tensor *b) {
    blo_tensor *m = blo_gt(c, blo_detach(c, a), blo_detach(c, b));
    return blo_where(c, m, blo_exp(c, a), blo_mul(c, b, b));
}
static blo_tensor *op_matmul(blo_ctx *c, blo_tensor *a, blo_tensor *b) { return blo_matmul(c, a, b); }
static blo_tensor *op_matmul_t(blo_ctx *c, blo_tensor *a, blo_tensor *b) {
    return blo_matmul(c, blo_transpose(c, a, -1, -2), blo_tanh(c, b));
}
static blo_tensor *op_linear(blo_ctx *c, blo_tensor *a, blo_tensor *b) {
    return blo_linear(c, a, b, blo_sum(c, b, 1, (int[]){1}, 0));
}
static blo_tensor *op_dot(blo_ctx *c, blo_tensor *a, blo_tensor *b) { return blo_dot(c, a, blo_exp(c, b)); }

int main(void) {
    blo_ctx *ctx = blo_ctx_new(0);
    blo_rng r;
    blo_rng_seed(&r, 42);
    const int64_t s23[2] = {2, 3}, s234[3] = {2, 3, 4}, s3[1] = {3}, s31[2] = {3, 1},
                  s134[3] = {1, 3, 4}, s4[1] = {4}, s34[2] = {3, 4}, s43[2] = {4, 3},
                  s24[2] = {2, 4}, s5[1] = {5}, s53[2] = {5, 3}, s235[3] = {2, 3, 5};

    check_unary(ctx, &r, "neg", blo_neg, 2, s23, -1, 1);
    check_unary(ctx, &r, "exp", blo_exp, 3, s234, -1, 1);
    check_unary(ctx, &r, "log", op_logp, 2, s23, -1, 1);
    check_unary(ctx, &r, "sqrt", op_sqrtp, 2, s23, -1, 1);
    check_unary(ctx, &r, "abs", blo_abs, 2, s23, 0.1, 1);
    check_unary(ctx, &r, "tanh", blo_tanh, 3, s234, -2, 2);
    check_unary(ctx, &r, "sigmoid", blo_sigmoid, 3, s234, -3, 3);
    check_unary(ctx, &r, "relu", blo_relu, 2, s34, 0.05, 1);
    check_unary(ctx, &r, "relu_neg", blo_relu, 2, s34, -1, -0.05);
    check_unary(ctx, &r, "leaky_relu", op_leaky, 2, s34, -1, 1);
    check_unary(ctx, &r, "softplus", blo_softplus, 2, s34, -3, 3);
    check_unary(ctx, &r, "clamp", op_clamp, 2, s34, -1, 1);
    check_unary(ctx, &r, "pow3", op_pow3, 2, s23, -1, 1);
    check_unary(ctx, &r, "pow1.5", op_powh, 2, s23, -1, 1);
    check_unary(ctx, &r, "scale_add", op_scale, 2, s23, -1, 1);
    check_unary(ctx, &r, "sum_axis0_keep", op_sum0, 3, s234, -1, 1);
    check_unary(ctx, &r, "sum_last", op_sum1, 3, s234, -1, 1);
    check_unary(ctx, &r, "mean_axes02", op_mean, 3, s234, -1, 1);
    check_unary(ctx, &r, "max_axis1", op_max, 3, s234, -1, 1);
    check_unary(ctx, &r, "logsumexp_axis1", op_lse, 3, s234, -2, 2);
    check_unary(ctx, &r, "logsumexp_all", op_lse_all, 2, s34, -2, 2);
    check_unary(ctx, &r, "permute", op_perm, 3, s234, -1, 1);
    check_unary(ctx, &r, "transpose_reshape", op_tr_reshape, 3, s234, -1, 1);
    check_unary(ctx, &r, "slice_step2", op_slice, 2, s53, -1, 1);
    check_unary(ctx, &r, "concat", op_concat, 2, s34, -1, 1);
    check_unary(ctx, &r, "expand", op_expand, 3, s134, -1, 1);

    check_binary(ctx, &r, "add_bcast", blo_add, 2, s23, 1, s3, -1, 1);
    check_binary(ctx, &r, "sub_bcast", blo_sub, 2, s31, 3, s234, -1, 1);
    check_binary(ctx, &r, "mul_bcast", blo_mul, 3, s134, 2, s31, -1, 1);
    check_binary(ctx, &r, "mul_same", blo_mul, 2, s34, 2, s34, -1, 1);
    check_binary(ctx, &r, "div", op_divp, 2, s34, 1, s4, -1, 1);
    check_binary(ctx, &r, "where", op_where, 2, s34, 2, s34, -1, 1);
    check_binary(ctx, &r, "matmul", op_matmul, 2, s34, 2, s43, -1, 1);
    check_binary(ctx, &r, "matmul_batched_bcast", op_matmul, 3, s234, 2, s43, -1, 1);
    check_binary(ctx, &r, "matmul_vec", op_matmul, 1, s4, 2, s43, -1, 1);
    check_binary(ctx, &r, "matmul_transposed", op_matmul_t, 3, s235, 2, s34, -1, 1);
    check_binary(ctx, &r, "linear", op_linear, 2, s24, 2, s34, -1, 1);
    check_binary(ctx, &r, "dot", op_dot, 2, s53, 2, s53, -1, 1);
    (void)s5;

    /* Forward values against hand-computed results. */
    {
        double av[6] = {1, 2, 3, 4, 5, 6}, bv[3] = {10, 20, 30};
        blo_tensor *a = blo_from_f64(ctx, BLO_F64, 2, s23, av);
        blo_tensor *b = blo_from_f64(ctx, BLO_F64, 1, s3, bv);
        double want[6] = {11, 22, 33, 14, 25, 36};
        tu_check_close_f64(blo_add(ctx, a, b), want, 0, 0, "add broadcast values");
        double wsum[3] = {5, 7, 9};
        tu_check_close_f64(blo_sum(ctx, a, 1, (int[]){0}, 0), wsum, 0, 0, "sum axis 0");
        double wmax[2] = {3, 6};
        tu_check_close_f64(blo_max(ctx, a, 1, (int[]){1}, 0), wmax, 0, 0, "max axis 1");
        int64_t s32[2] = {3, 2};
        double mm[4] = {1 * 1 + 2 * 3 + 3 * 5, 1 * 2 + 2 * 4 + 3 * 6, 4 * 1 + 5 * 3 + 6 * 5,
                        4 * 2 + 5 * 4 + 6 * 6};
        tu_check_close_f64(blo_matmul(ctx, a, blo_reshape(ctx, a, 2, s32)), mm, 0, 0,
                           "matmul values");
        double lse = log(exp(1) + exp(2) + exp(3));
        double wl[2] = {lse, lse + 3};
        tu_check_close_f64(blo_logsumexp(ctx, a, 1, (int[]){1}, 0), wl, 1e-14, 0, "logsumexp");
        tu_check_ok(ctx, "forward values");
    }

    /* Shape errors are reported, not crashed on, and NULL propagates. */
    {
        blo_tensor *a = blo_zeros(ctx, BLO_F64, 2, s23);
        blo_tensor *b = blo_zeros(ctx, BLO_F64, 2, s34);
        blo_tensor *y = blo_exp(ctx, blo_add(ctx, a, b));
        TU_CHECK(!y && blo_ctx_status(ctx) == BLO_ERR_SHAPE, "add of [2,3] and [3,4] must fail");
        TU_CHECK(strstr(blo_ctx_error(ctx), "f64[2, 3]") != NULL, "message names the shapes: %s",
                 blo_ctx_error(ctx));
        blo_ctx_clear_error(ctx);
        blo_tensor *f = blo_zeros(ctx, BLO_F32, 2, s23);
        TU_CHECK(!blo_mul(ctx, a, f) && blo_ctx_status(ctx) == BLO_ERR_DTYPE, "dtype mismatch");
        blo_ctx_clear_error(ctx);
        TU_CHECK(!blo_matmul(ctx, a, a) && blo_ctx_status(ctx) == BLO_ERR_SHAPE, "matmul inner");
        blo_ctx_clear_error(ctx);
    }

    blo_ctx_free(ctx);
    return tu_finish("test_ops_elementwise");
}
