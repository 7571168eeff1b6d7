/* test_ops_loss.c — softmax, log-softmax, cross-entropy (plain and fused), MSE and the index
 * ops: gradients and Hessian-vector products against finite differences in float64, values
 * against hand computations, the fused cross-entropy against the composed one, and the
 * errors (labels out of range; create-graph through the first-order-only kernel). */
#include "testutil.h"

#include <math.h>
#include <string.h>

/* f = Σ r ⊙ y² + Σ r ⊙ y for y = op(inputs): the square gives every op a non-zero second
 * derivative (even the linear ones) and the fixed random r tests the whole VJP. */
typedef blo_tensor *(*op_fn)(blo_ctx *ctx, blo_tensor *const *in, const void *env);
typedef struct {
    op_fn op;
    const void *env;
    blo_tensor *r;
} wenv;

static blo_tensor *f_weighted(blo_ctx *ctx, blo_tensor *const *in, void *e) {
    wenv *w = e;
    blo_tensor *y = w->op(ctx, in, w->env);
    blo_tensor *yr = blo_mul(ctx, y, w->r);
    return blo_add(ctx, blo_sum_all(ctx, blo_mul(ctx, yr, y)), blo_sum_all(ctx, yr));
}

/* Gradient and HVP check of op at the n inputs given. */
static void check_op(blo_ctx *ctx, blo_rng *r, const char *name, op_fn op, const void *env,
                     int n, blo_tensor *const *in) {
    int old = blo_ctx_set_recording(ctx, 0);
    blo_tensor *y = op(ctx, in, env);
    blo_ctx_set_recording(ctx, old);
    if (!y) {
        TU_CHECK(0, "%s: forward failed: %s", name, blo_ctx_error(ctx));
        blo_ctx_clear_error(ctx);
        return;
    }
    blo_tensor *w = blo_tensor_new(ctx, BLO_F64, blo_tensor_ndim(y), blo_tensor_shape(y));
    blo_init_uniform(w, r, -1, 1);
    wenv e = {op, env, w};
    tu_gradcheck(ctx, name, f_weighted, &e, n, in, 1);
    tu_check_ok(ctx, name);
}

/* ---- The ops under test, as op_fn ------------------------------------------------------------ */

static blo_tensor *op_softmax(blo_ctx *c, blo_tensor *const *in, const void *e) {
    return blo_softmax(c, in[0], *(const int *)e);
}
static blo_tensor *op_log_softmax(blo_ctx *c, blo_tensor *const *in, const void *e) {
    return blo_log_softmax(c, in[0], *(const int *)e);
}

typedef struct {
    blo_tensor *labels;
    blo_reduction red;
    int weighted, fast;
} xent_env;

static blo_tensor *op_xent(blo_ctx *c, blo_tensor *const *in, const void *e) {
    const xent_env *x = e;
    blo_tensor *w = x->weighted ? in[1] : NULL;
    return x->fast ? blo_cross_entropy_fast(c, in[0], x->labels, w, x->red)
                   : blo_cross_entropy(c, in[0], x->labels, w, x->red);
}

static blo_tensor *op_mse(blo_ctx *c, blo_tensor *const *in, const void *e) {
    return blo_mse(c, in[0], in[1], *(const blo_reduction *)e);
}

typedef struct {
    int axis;
    blo_tensor *idx;
} idx_env;

static blo_tensor *op_gather(blo_ctx *c, blo_tensor *const *in, const void *e) {
    const idx_env *x = e;
    return blo_gather(c, blo_tanh(c, in[0]), x->axis, x->idx);
}
static blo_tensor *op_scatter(blo_ctx *c, blo_tensor *const *in, const void *e) {
    const idx_env *x = e;
    return blo_scatter_add(c, in[0], x->axis, x->idx, blo_exp(c, in[1]));
}
static blo_tensor *op_index_select(blo_ctx *c, blo_tensor *const *in, const void *e) {
    const idx_env *x = e;
    return blo_index_select(c, blo_sigmoid(c, in[0]), x->axis, x->idx);
}

static const char *red_name(blo_reduction red) {
    return red == BLO_REDUCE_MEAN ? "mean" : red == BLO_REDUCE_SUM ? "sum" : "none";
}

/* ---- Checks ---------------------------------------------------------------------------------- */

static void check_grads(blo_ctx *ctx, blo_rng *r) {
    const int64_t s35[2] = {3, 5}, s234[3] = {2, 3, 4}, s4[1] = {4}, s45[2] = {4, 5};
    int ax1 = 1, ax0 = 0, axm1 = -1;
    blo_tensor *a = tu_rand(ctx, r, BLO_F64, 2, s35, -2, 2);
    check_op(ctx, r, "softmax axis 1", op_softmax, &ax1, 1, &a);
    check_op(ctx, r, "softmax axis 0", op_softmax, &ax0, 1, &a);
    check_op(ctx, r, "log_softmax axis 1", op_log_softmax, &ax1, 1, &a);
    blo_tensor *a3 = tu_rand(ctx, r, BLO_F64, 3, s234, -2, 2);
    check_op(ctx, r, "softmax 3-d axis -1", op_softmax, &axm1, 1, &a3);
    check_op(ctx, r, "log_softmax 3-d axis 0", op_log_softmax, &ax0, 1, &a3);

    const int64_t lab[4] = {1, 4, 0, 4};
    blo_tensor *labels = blo_from_i64(ctx, 1, s4, lab);
    for (int red = 0; red < 3; red++) {
        for (int weighted = 0; weighted < 2; weighted++) {
            char name[96];
            snprintf(name, sizeof name, "cross_entropy %s %s", red_name((blo_reduction)red),
                     weighted ? "weighted" : "unweighted");
            blo_tensor *in[2] = {tu_rand(ctx, r, BLO_F64, 2, s45, -2, 2),
                                 tu_rand(ctx, r, BLO_F64, 1, s4, -1, 1.5)};
            xent_env e = {labels, (blo_reduction)red, weighted, 0};
            check_op(ctx, r, name, op_xent, &e, weighted ? 2 : 1, in);
        }
    }

    for (int red = 0; red < 3; red++) {
        char name[64];
        snprintf(name, sizeof name, "mse 3-d %s", red_name((blo_reduction)red));
        blo_tensor *in[2] = {tu_rand(ctx, r, BLO_F64, 3, s234, -1, 1),
                             tu_rand(ctx, r, BLO_F64, 3, s234, -1, 1)};
        blo_reduction rd = (blo_reduction)red;
        check_op(ctx, r, name, op_mse, &rd, 2, in);
    }
    {
        blo_reduction rd = BLO_REDUCE_MEAN;
        blo_tensor *in[2] = {tu_rand(ctx, r, BLO_F64, 1, s4, -1, 1),
                             tu_rand(ctx, r, BLO_F64, 1, s4, -1, 1)};
        check_op(ctx, r, "mse 1-d mean", op_mse, &rd, 2, in);
    }

    /* Index ops, with repeated indices so that gradients add up. */
    const int64_t s32[2] = {3, 2}, s24[2] = {2, 4}, s6[1] = {6};
    const int64_t g1[6] = {4, 0, 4, 4, 2, 1};  /* axis 1 of [3, 5]: idx [3, 2] */
    const int64_t g0[8] = {2, 0, 1, 2, 2, 2, 0, 1}; /* axis 0 of [3, 5]: idx [2, 4] */
    idx_env ge1 = {1, blo_from_i64(ctx, 2, s32, g1)}, ge0 = {0, blo_from_i64(ctx, 2, s24, g0)};
    blo_tensor *x = tu_rand(ctx, r, BLO_F64, 2, s35, -1, 1);
    check_op(ctx, r, "gather axis 1", op_gather, &ge1, 1, &x);
    check_op(ctx, r, "gather axis 0", op_gather, &ge0, 1, &x);
    {
        blo_tensor *in[2] = {tu_rand(ctx, r, BLO_F64, 2, s35, -1, 1),
                             tu_rand(ctx, r, BLO_F64, 2, s32, -1, 1)};
        check_op(ctx, r, "scatter_add axis 1", op_scatter, &ge1, 2, in);
        blo_tensor *in0[2] = {tu_rand(ctx, r, BLO_F64, 2, s35, -1, 1),
                              tu_rand(ctx, r, BLO_F64, 2, s24, -1, 1)};
        check_op(ctx, r, "scatter_add axis 0", op_scatter, &ge0, 2, in0);
    }
    const int64_t sel[6] = {2, 0, 2, 1, 2, 0};
    idx_env se0 = {0, blo_from_i64(ctx, 1, s6, sel)}, se1 = {1, blo_from_i64(ctx, 1, s6, sel)};
    check_op(ctx, r, "index_select axis 0", op_index_select, &se0, 1, &x);
    check_op(ctx, r, "index_select axis 1", op_index_select, &se1, 1, &x);
    se1.axis = -1;
    check_op(ctx, r, "index_select 3-d axis -1", op_index_select, &se1, 1, &a3);
}

static void check_values(blo_ctx *ctx) {
    const int64_t s23[2] = {2, 3}, s2[1] = {2};
    const double z[6] = {1, 2, 3, 1, 0, -1};
    const int64_t lab[2] = {2, 0};
    const double w[2] = {0.5, 2.0};
    blo_tensor *logits = blo_from_f64(ctx, BLO_F64, 2, s23, z);
    blo_tensor *labels = blo_from_i64(ctx, 1, s2, lab);
    blo_tensor *weights = blo_from_f64(ctx, BLO_F64, 1, s2, w);
    /* l_i = log Σ_j e^{z_ij} - z_{i y_i} */
    double l0 = log(exp(1) + exp(2) + exp(3)) - 3, l1 = log(exp(1) + exp(0) + exp(-1)) - 1;
    double none[2] = {0.5 * l0, 2.0 * l1};
    double sum = 0.5 * l0 + 2.0 * l1, mean = sum / 2; /* MEAN divides by N, not by Σ w */
    double unw[2] = {l0, l1};
    tu_check_close_f64(blo_cross_entropy(ctx, logits, labels, weights, BLO_REDUCE_NONE), none,
                       1e-14, 0, "cross_entropy none weighted value");
    tu_check_close_f64(blo_cross_entropy(ctx, logits, labels, weights, BLO_REDUCE_SUM), &sum,
                       1e-14, 0, "cross_entropy sum weighted value");
    tu_check_close_f64(blo_cross_entropy(ctx, logits, labels, weights, BLO_REDUCE_MEAN), &mean,
                       1e-14, 0, "cross_entropy mean weighted value");
    tu_check_close_f64(blo_cross_entropy(ctx, logits, labels, NULL, BLO_REDUCE_NONE), unw, 1e-14,
                       0, "cross_entropy none unweighted value");
    double umean = (l0 + l1) / 2;
    tu_check_close_f64(blo_cross_entropy(ctx, logits, labels, NULL, BLO_REDUCE_MEAN), &umean,
                       1e-14, 0, "cross_entropy mean unweighted value");
    /* The same in float32, to float accuracy. */
    blo_tensor *l32 = blo_cast(ctx, logits, BLO_F32);
    tu_check_close_f64(blo_cross_entropy(ctx, l32, labels, blo_cast(ctx, weights, BLO_F32),
                                         BLO_REDUCE_SUM),
                       &sum, 1e-6, 0, "cross_entropy f32 value");

    /* softmax rows: e^z / Σ e^z; log_softmax = z - log Σ e^z. */
    double s0 = exp(1) + exp(2) + exp(3), s1 = exp(1) + exp(0) + exp(-1);
    double sm[6] = {exp(1) / s0, exp(2) / s0, exp(3) / s0,
                    exp(1) / s1, exp(0) / s1, exp(-1) / s1};
    double lsm[6];
    for (int i = 0; i < 6; i++) lsm[i] = log(sm[i]);
    tu_check_close_f64(blo_softmax(ctx, logits, 1), sm, 1e-14, 0, "softmax values");
    tu_check_close_f64(blo_log_softmax(ctx, logits, -1), lsm, 1e-14, 1e-15, "log_softmax values");
    /* Large logits do not overflow. */
    const double big[3] = {1000, 1001, 1002};
    int64_t s3 = 3;
    double sb[3] = {exp(-2) / (exp(-2) + exp(-1) + 1), exp(-1) / (exp(-2) + exp(-1) + 1),
                    1 / (exp(-2) + exp(-1) + 1)};
    tu_check_close_f64(blo_softmax(ctx, blo_from_f64(ctx, BLO_F64, 1, &s3, big), 0), sb, 1e-12, 0,
                       "softmax of large logits");

    /* mse: mean over non-batch axes, then the reduction over the batch. */
    const double p[6] = {1, 2, 3, 4, 5, 6}, t[6] = {1, 0, 3, 0, 5, 9};
    blo_tensor *pt = blo_from_f64(ctx, BLO_F64, 2, s23, p);
    blo_tensor *tt = blo_from_f64(ctx, BLO_F64, 2, s23, t);
    double mse_none[2] = {4.0 / 3, 25.0 / 3}, mse_mean = 29.0 / 6, mse_sum = 29.0 / 3;
    tu_check_close_f64(blo_mse(ctx, pt, tt, BLO_REDUCE_NONE), mse_none, 1e-15, 0, "mse none");
    tu_check_close_f64(blo_mse(ctx, pt, tt, BLO_REDUCE_MEAN), &mse_mean, 1e-15, 0, "mse mean");
    tu_check_close_f64(blo_mse(ctx, pt, tt, BLO_REDUCE_SUM), &mse_sum, 1e-15, 0, "mse sum");

    /* one_hot, gather, scatter_add, index_select values. */
    const int64_t oh_lab[3] = {2, 0, 2};
    int64_t n3 = 3;
    blo_tensor *oh = blo_one_hot(ctx, blo_from_i64(ctx, 1, &n3, oh_lab), 4, BLO_F32);
    const double oh_want[12] = {0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0};
    TU_CHECK(oh && blo_tensor_dtype(oh) == BLO_F32 && blo_tensor_dim(oh, 0) == 3 &&
                 blo_tensor_dim(oh, 1) == 4 && !blo_requires_grad(oh),
             "one_hot: f32 [3, 4] without gradient");
    tu_check_close_f64(oh, oh_want, 0, 0, "one_hot values");

    const int64_t gi[4] = {2, 2, 1, 0};
    int64_t s22[2] = {2, 2};
    blo_tensor *gidx = blo_from_i64(ctx, 2, s22, gi);
    const double g_want[4] = {3, 3, 0, 1}; /* rows of z: [1 2 3] -> z[0][2], z[0][2]; [1 0 -1] */
    tu_check_close_f64(blo_gather(ctx, logits, 1, gidx), g_want, 0, 0, "gather values");
    const double src[4] = {10, 20, 30, 40};
    blo_tensor *st = blo_from_f64(ctx, BLO_F64, 2, s22, src);
    const double sc_want[6] = {1, 2, 33, 41, 30, -1}; /* repeated index 2 adds 10 + 20 */
    tu_check_close_f64(blo_scatter_add(ctx, logits, 1, gidx, st), sc_want, 0, 0,
                       "scatter_add values");
    const int64_t si[3] = {2, 0, 2};
    const double is_want[6] = {3, 1, 3, -1, 1, -1};
    tu_check_close_f64(blo_index_select(ctx, logits, 1, blo_from_i64(ctx, 1, &n3, si)), is_want, 0,
                       0, "index_select values");
    tu_check_ok(ctx, "loss values");
}

/* The fused cross-entropy equals the composed one in value and in first-order gradients of
 * logits and weights, for every reduction, with and without weights, f32 and f64. */
static void check_fast(blo_ctx *ctx, blo_rng *r) {
    const int64_t s57[2] = {5, 7}, s5[1] = {5};
    const int64_t lab[5] = {0, 6, 3, 3, 2};
    blo_tensor *labels = blo_from_i64(ctx, 1, s5, lab);
    for (int dt = 0; dt < 2; dt++) {
        blo_dtype d = dt ? BLO_F64 : BLO_F32;
        double tol = dt ? 1e-13 : 2e-6;
        for (int red = 0; red < 3; red++) {
            for (int weighted = 0; weighted < 2; weighted++) {
                char name[96];
                snprintf(name, sizeof name, "cross_entropy_fast %s %s %s", blo_dtype_name(d),
                         red_name((blo_reduction)red), weighted ? "weighted" : "unweighted");
                blo_tensor *z = tu_rand(ctx, r, d, 2, s57, -3, 3);
                blo_tensor *w = tu_rand(ctx, r, d, 1, s5, 0, 2);
                blo_tensor *wp = weighted ? w : NULL;
                blo_tensor *y = blo_cross_entropy(ctx, z, labels, wp, (blo_reduction)red);
                blo_tensor *yf = blo_cross_entropy_fast(ctx, z, labels, wp, (blo_reduction)red);
                tu_check_close(yf, y, tol, tol, name);
                blo_tensor *seed = NULL;
                if (red == BLO_REDUCE_NONE) {
                    seed = blo_tensor_new(ctx, d, 1, s5);
                    blo_init_uniform(seed, r, -1, 1);
                }
                blo_tensor *in[2] = {z, w}, *g[2], *gf[2];
                int nin = weighted ? 2 : 1;
                blo_status s1 = blo_grad(ctx, 1, &y, &seed, nin, in, 0, g);
                blo_status s2 = blo_grad(ctx, 1, &yf, &seed, nin, in, 0, gf);
                TU_CHECK(!s1 && !s2, "%s: grads: %s", name, blo_ctx_error(ctx));
                if (!s1 && !s2) {
                    tu_check_close(gf[0], g[0], tol, tol, name);
                    if (weighted) tu_check_close(gf[1], g[1], tol, tol, name);
                }
                tu_check_ok(ctx, name);
            }
        }
    }

    /* A create-graph pass, or an HVP, through the fused kernel is an error naming it, and no
     * gradient comes back. */
    blo_tensor *z = tu_rand(ctx, r, BLO_F64, 2, s57, -3, 3);
    blo_tensor *w = tu_rand(ctx, r, BLO_F64, 1, s5, 0, 2);
    blo_tensor *y = blo_cross_entropy_fast(ctx, z, labels, w, BLO_REDUCE_MEAN);
    blo_tensor *in[2] = {z, w};
    blo_tensor *g[2] = {z, z}; /* poisoned: must be reset to NULL */
    blo_status s = blo_grad(ctx, 1, &y, NULL, 2, in, BLO_GRAD_CREATE_GRAPH, g);
    TU_CHECK(s == BLO_ERR_NOT_DIFFERENTIABLE && blo_ctx_status(ctx) == s,
             "create-graph through cross_entropy_fast: got %s", blo_status_name(s));
    TU_CHECK(strstr(blo_ctx_error(ctx), "cross_entropy_fast") != NULL,
             "the message names the op: '%s'", blo_ctx_error(ctx));
    TU_CHECK(!g[0] && !g[1], "no gradient is returned on failure");
    blo_ctx_clear_error(ctx);

    blo_tensor *v[2] = {blo_full(ctx, BLO_F64, 2, s57, 1.0), blo_full(ctx, BLO_F64, 1, s5, 1.0)};
    blo_tensor *hv[2] = {z, z};
    s = blo_hvp(ctx, y, 2, in, v, 0, hv);
    TU_CHECK(s == BLO_ERR_NOT_DIFFERENTIABLE && strstr(blo_ctx_error(ctx), "cross_entropy_fast"),
             "hvp through cross_entropy_fast: %s '%s'", blo_status_name(s), blo_ctx_error(ctx));
    TU_CHECK(!hv[0] && !hv[1], "no HVP is returned on failure");
    blo_ctx_clear_error(ctx);
    /* Also when it sits in the middle of a bigger expression. */
    blo_tensor *y2 = blo_mul(ctx, blo_cross_entropy_fast(ctx, blo_tanh(ctx, z), labels, NULL,
                                                         BLO_REDUCE_SUM),
                             blo_sum_all(ctx, w));
    s = blo_hvp(ctx, y2, 1, &z, v, 0, hv);
    TU_CHECK(s == BLO_ERR_NOT_DIFFERENTIABLE && !hv[0], "hvp through a composed expression: %s",
             blo_status_name(s));
    blo_ctx_clear_error(ctx);
    /* First order still works in the same graph. */
    s = blo_grad(ctx, 1, &y2, NULL, 1, &z, 0, g);
    TU_CHECK(s == BLO_OK && g[0], "first order through cross_entropy_fast works: %s",
             blo_ctx_error(ctx));
    blo_ctx_clear_error(ctx);
}

static void check_errors(blo_ctx *ctx) {
    const int64_t s23[2] = {2, 3}, s2[1] = {2};
    blo_tensor *z = blo_zeros(ctx, BLO_F64, 2, s23);
    const int64_t bad_hi[2] = {0, 3}, bad_neg[2] = {-1, 0};
    blo_tensor *hi = blo_from_i64(ctx, 1, s2, bad_hi), *neg = blo_from_i64(ctx, 1, s2, bad_neg);
    for (int fast = 0; fast < 2; fast++) {
        const char *op = fast ? "blo_cross_entropy_fast" : "blo_cross_entropy";
        for (int k = 0; k < 2; k++) {
            blo_tensor *lab = k ? neg : hi;
            blo_tensor *y = fast ? blo_cross_entropy_fast(ctx, z, lab, NULL, BLO_REDUCE_MEAN)
                                 : blo_cross_entropy(ctx, z, lab, NULL, BLO_REDUCE_MEAN);
            TU_CHECK(!y && blo_ctx_status(ctx) == BLO_ERR_INVALID,
                     "%s: label out of range must fail", op);
            char want[64];
            snprintf(want, sizeof want, "example %d", k ? 0 : 1);
            TU_CHECK(strstr(blo_ctx_error(ctx), op) && strstr(blo_ctx_error(ctx), want),
                     "%s: message names the op and the example: '%s'", op, blo_ctx_error(ctx));
            blo_ctx_clear_error(ctx);
        }
    }
    TU_CHECK(!blo_one_hot(ctx, hi, 3, BLO_F64) && blo_ctx_status(ctx) == BLO_ERR_INVALID,
             "one_hot label out of range");
    blo_ctx_clear_error(ctx);
    int64_t s21[2] = {2, 1};
    TU_CHECK(!blo_gather(ctx, z, 1, blo_reshape(ctx, hi, 2, s21)) &&
                 blo_ctx_status(ctx) == BLO_ERR_INVALID,
             "gather index out of range");
    blo_ctx_clear_error(ctx);
    TU_CHECK(!blo_index_select(ctx, z, 0, neg) && blo_ctx_status(ctx) == BLO_ERR_INVALID,
             "index_select negative index");
    blo_ctx_clear_error(ctx);
    /* Indices read through a strided view: every other entry of [0, 9, 2, 1, 7, 0]. The
     * check names the first bad position of the view and its value; one_hot of the view
     * [0, 2, 1] of another array puts its ones at those labels. */
    {
        const int64_t raw[6] = {0, 9, 2, 1, 7, 0}, good_raw[6] = {0, 9, 2, 1, 1, 0};
        int64_t n6 = 6, n3b = 3;
        blo_tensor *every2 = blo_slice(ctx, blo_from_i64(ctx, 1, &n6, raw), 0, 0, 6, 2);
        TU_CHECK(!blo_index_select(ctx, z, 1, every2) &&
                     strstr(blo_ctx_error(ctx), "index 7 at position 2"),
                 "strided indices: the message names position and value: '%s'",
                 blo_ctx_error(ctx));
        blo_ctx_clear_error(ctx);
        blo_tensor *lab3 = blo_slice(ctx, blo_from_i64(ctx, 1, &n6, good_raw), 0, 0, 6, 2);
        blo_tensor *oh3 = blo_one_hot(ctx, lab3, 3, BLO_F64);
        const double want3[9] = {1, 0, 0, 0, 0, 1, 0, 1, 0};
        TU_CHECK(oh3 && blo_tensor_numel(lab3) == n3b, "one_hot of a strided view");
        if (oh3) tu_check_close_f64(oh3, want3, 0, 0, "one_hot of a strided view");
    }
    /* Labels of the wrong dtype or length, weights of the wrong length. */
    int64_t n3 = 3;
    TU_CHECK(!blo_cross_entropy(ctx, z, blo_zeros(ctx, BLO_F64, 1, s2), NULL, BLO_REDUCE_SUM) &&
                 blo_ctx_status(ctx) == BLO_ERR_DTYPE,
             "float labels");
    blo_ctx_clear_error(ctx);
    TU_CHECK(!blo_cross_entropy(ctx, z, blo_zeros(ctx, BLO_I64, 1, &n3), NULL, BLO_REDUCE_SUM) &&
                 blo_ctx_status(ctx) == BLO_ERR_SHAPE,
             "labels of the wrong length");
    blo_ctx_clear_error(ctx);
    TU_CHECK(!blo_cross_entropy_fast(ctx, z, blo_zeros(ctx, BLO_I64, 1, s2),
                                     blo_zeros(ctx, BLO_F64, 1, &n3), BLO_REDUCE_SUM) &&
                 blo_ctx_status(ctx) == BLO_ERR_SHAPE,
             "weights of the wrong length");
    blo_ctx_clear_error(ctx);
    TU_CHECK(!blo_mse(ctx, z, blo_zeros(ctx, BLO_F64, 1, s2), BLO_REDUCE_MEAN) &&
                 blo_ctx_status(ctx) == BLO_ERR_SHAPE,
             "mse of different shapes");
    blo_ctx_clear_error(ctx);
}

int main(void) {
    blo_ctx *ctx = blo_ctx_new(0);
    blo_rng r;
    blo_rng_seed(&r, 2024);
    check_grads(ctx, &r);
    check_values(ctx);
    check_fast(ctx, &r);
    check_errors(ctx);
    blo_ctx_free(ctx);
    return tu_finish("test_ops_loss");
}
