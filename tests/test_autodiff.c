/* test_autodiff.c — the reverse-mode engine as a whole: JVP against the adjoint identity
 * ⟨u, Jv⟩ = ⟨Jᵀu, v⟩ and finite differences, mixed second derivatives against finite
 * differences of gradients, third and fourth derivatives of a polynomial against its closed
 * form, stop-gradient, gradients with respect to intermediates, a 20000-op chain, and the
 * errors (input without grad, BLO_GRAD_STRICT, bad seeds). */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- A vector function of two inputs with two outputs --------------------------------------
 *   x [3], y [2, 3]:  o1 = y tanh(x)  [2],   o2 = exp(x) ⊙ y ⊙ y + sigmoid(y) x  [2, 3]  */
static void vfun(blo_ctx *ctx, blo_tensor *x, blo_tensor *y, blo_tensor **o) {
    o[0] = blo_matmul(ctx, y, blo_tanh(ctx, x));
    o[1] = blo_add(ctx, blo_mul(ctx, blo_exp(ctx, x), blo_mul(ctx, y, y)),
                   blo_mul(ctx, blo_sigmoid(ctx, y), x));
}

static double dot_t(const blo_tensor *a, const blo_tensor *b) {
    double s = 0;
    for (int64_t i = 0; i < blo_tensor_numel(a); i++)
        s += blo_tensor_get(a, i) * blo_tensor_get(b, i);
    return s;
}

static void check_jvp(blo_ctx *ctx, blo_rng *r) {
    const int64_t s3[1] = {3}, s23[2] = {2, 3}, s2[1] = {2};
    blo_tensor *x = tu_rand(ctx, r, BLO_F64, 1, s3, -1, 1);
    blo_tensor *y = tu_rand(ctx, r, BLO_F64, 2, s23, -1, 1);
    blo_tensor *in[2] = {x, y}, *o[2];
    vfun(ctx, x, y, o);
    /* Tangents v (one per input) and cotangents u (one per output), constants. */
    blo_tensor *v[2] = {blo_tensor_new(ctx, BLO_F64, 1, s3), blo_tensor_new(ctx, BLO_F64, 2, s23)};
    blo_tensor *u[2] = {blo_tensor_new(ctx, BLO_F64, 1, s2), blo_tensor_new(ctx, BLO_F64, 2, s23)};
    for (int i = 0; i < 2; i++) {
        blo_init_uniform(v[i], r, -1, 1);
        blo_init_uniform(u[i], r, -1, 1);
    }
    blo_tensor *jv[2], *jtu[2];
    blo_status s = blo_jvp(ctx, 2, o, 2, in, v, 0, jv);
    TU_CHECK(s == BLO_OK, "blo_jvp: %s", blo_ctx_error(ctx));
    s = blo_grad(ctx, 2, o, u, 2, in, 0, jtu);
    TU_CHECK(s == BLO_OK, "blo_grad with seeds: %s", blo_ctx_error(ctx));
    if (blo_ctx_status(ctx)) return;
    TU_CHECK(blo_tensor_ndim(jv[0]) == 1 && blo_tensor_dim(jv[0], 0) == 2 &&
                 blo_tensor_ndim(jv[1]) == 2,
             "jvp results have the outputs' shapes");
    double ujv = dot_t(u[0], jv[0]) + dot_t(u[1], jv[1]);
    double jtuv = dot_t(jtu[0], v[0]) + dot_t(jtu[1], v[1]);
    TU_CHECK(tu_close(ujv, jtuv, 1e-12, 1e-14), "<u, Jv> = %.15g but <J^T u, v> = %.15g", ujv,
             jtuv);

    /* Jv against central differences (F(x + εv) - F(x - εv)) / 2ε. */
    const double eps = 1e-6;
    double fd[2][6] = {{0}};
    for (int sign = -1; sign <= 1; sign += 2) {
        blo_mark m = blo_ctx_mark(ctx);
        blo_tensor *xp = blo_add(ctx, blo_detach(ctx, x), blo_scale(ctx, v[0], sign * eps));
        blo_tensor *yp = blo_add(ctx, blo_detach(ctx, y), blo_scale(ctx, v[1], sign * eps));
        blo_tensor *op[2];
        vfun(ctx, xp, yp, op);
        for (int k = 0; k < 2; k++)
            for (int64_t i = 0; i < blo_tensor_numel(op[k]); i++)
                fd[k][i] += sign * blo_tensor_get(op[k], i) / (2 * eps);
        blo_ctx_rewind(ctx, m);
    }
    tu_check_close_f64(jv[0], fd[0], 1e-6, 1e-8, "jvp output 0 vs finite differences");
    tu_check_close_f64(jv[1], fd[1], 1e-6, 1e-8, "jvp output 1 vs finite differences");

    /* A JVP along one input only. */
    blo_tensor *jx;
    s = blo_jvp(ctx, 1, o, 1, in, v, 0, &jx);
    TU_CHECK(s == BLO_OK && jx, "single jvp: %s", blo_ctx_error(ctx));
    /* ∂o1/∂x v_x = y (tanh'(x) ⊙ v_x) */
    double want[2] = {0, 0};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) {
            double t = tanh(blo_tensor_get(x, j));
            want[i] += blo_tensor_get(y, i * 3 + j) * (1 - t * t) * blo_tensor_get(v[0], j);
        }
    if (!s) tu_check_close_f64(jx, want, 1e-13, 1e-15, "jvp of o1 along x, closed form");
    tu_check_ok(ctx, "jvp");
}

/* f(x, y) = Σ tanh(W y) ⊙ exp(x) + Σ x² y³ (broadcast), x [3], y [3], W fixed [3, 3]. */
static blo_tensor *mixed_f(blo_ctx *ctx, blo_tensor *x, blo_tensor *y, blo_tensor *w) {
    blo_tensor *a = blo_sum_all(ctx, blo_mul(ctx, blo_tanh(ctx, blo_matmul(ctx, w, y)),
                                             blo_exp(ctx, x)));
    blo_tensor *b = blo_sum_all(ctx, blo_mul(ctx, blo_mul(ctx, x, x), blo_pow_scalar(ctx, y, 3)));
    return blo_add(ctx, a, b);
}

static void check_mixed(blo_ctx *ctx, blo_rng *r) {
    const int64_t s3[1] = {3}, s33[2] = {3, 3};
    blo_tensor *x = tu_rand(ctx, r, BLO_F64, 1, s3, -1, 1);
    blo_tensor *y = tu_rand(ctx, r, BLO_F64, 1, s3, -1, 1);
    blo_tensor *w = blo_tensor_new(ctx, BLO_F64, 2, s33);
    blo_tensor *v = blo_tensor_new(ctx, BLO_F64, 1, s3);
    blo_init_uniform(w, r, -1, 1);
    blo_init_uniform(v, r, -1, 1);
    blo_tensor *f = mixed_f(ctx, x, y, w), *out;
    blo_status s = blo_mixed_vp(ctx, f, 1, &y, &v, 1, &x, 0, &out);
    TU_CHECK(s == BLO_OK, "blo_mixed_vp: %s", blo_ctx_error(ctx));
    /* ∇_x⟨∇_y f, v⟩ = (∇_x f(x, y + εv) - ∇_x f(x, y - εv)) / 2ε */
    const double eps = 1e-5;
    double want[3] = {0, 0, 0};
    for (int sign = -1; sign <= 1; sign += 2) {
        blo_mark m = blo_ctx_mark(ctx);
        blo_tensor *yp = blo_add(ctx, blo_detach(ctx, y), blo_scale(ctx, v, sign * eps));
        blo_tensor *fp = mixed_f(ctx, x, yp, w), *gx;
        if (blo_grad(ctx, 1, &fp, NULL, 1, &x, 0, &gx) == BLO_OK)
            for (int i = 0; i < 3; i++) want[i] += sign * blo_tensor_get(gx, i) / (2 * eps);
        blo_ctx_rewind(ctx, m);
    }
    if (!s) tu_check_close_f64(out, want, 1e-6, 1e-8, "mixed vp vs finite differences");
    /* The mixed product in the other order is the transpose: ⟨u, ∂²f/∂y∂x v⟩ symmetry. */
    blo_tensor *u = blo_tensor_new(ctx, BLO_F64, 1, s3), *out2;
    blo_init_uniform(u, r, -1, 1);
    blo_tensor *f2 = mixed_f(ctx, x, y, w);
    s = blo_mixed_vp(ctx, f2, 1, &x, &u, 1, &y, 0, &out2);
    TU_CHECK(s == BLO_OK, "blo_mixed_vp (x, y swapped): %s", blo_ctx_error(ctx));
    if (!s)
        TU_CHECK(tu_close(dot_t(u, out), dot_t(out2, v), 1e-12, 1e-14),
                 "<u, M v> = %.15g but <M^T u, v> = %.15g", dot_t(u, out), dot_t(out2, v));
    tu_check_ok(ctx, "mixed vp");
}

/* f(w) = Σ w⁴ + (a·w)³.  Closed forms:
 *   H v            = 12 w² ⊙ v + 6 (a·w)(a·v) a
 *   ∇⟨u, H v⟩      = 24 u ⊙ w ⊙ v + 6 (a·u)(a·v) a
 *   ∇⟨z, ∇⟨u,Hv⟩⟩  = 24 u ⊙ v ⊙ z                     (fourth order) */
static void check_higher(blo_ctx *ctx) {
    const int64_t s4[1] = {4};
    const double wv[4] = {0.5, -1.0, 1.5, 0.25}, av[4] = {1, 2, -1, 0.5};
    const double uv[4] = {0.3, -0.7, 1.1, 2.0}, vv[4] = {-1.2, 0.4, 0.9, -0.5};
    const double zv[4] = {1.5, 0.5, -2.0, 1.0};
    blo_tensor *w = blo_from_f64(ctx, BLO_F64, 1, s4, wv);
    blo_set_requires_grad(w, 1);
    blo_tensor *a = blo_from_f64(ctx, BLO_F64, 1, s4, av);
    blo_tensor *u = blo_from_f64(ctx, BLO_F64, 1, s4, uv);
    blo_tensor *v = blo_from_f64(ctx, BLO_F64, 1, s4, vv);
    blo_tensor *z = blo_from_f64(ctx, BLO_F64, 1, s4, zv);
    blo_tensor *f = blo_add(ctx, blo_sum_all(ctx, blo_pow_scalar(ctx, w, 4)),
                            blo_pow_scalar(ctx, blo_dot(ctx, a, w), 3));
    double aw = 0, au = 0, avv = 0;
    for (int i = 0; i < 4; i++) {
        aw += av[i] * wv[i];
        au += av[i] * uv[i];
        avv += av[i] * vv[i];
    }
    double hv_want[4], g3_want[4], g4_want[4];
    for (int i = 0; i < 4; i++) {
        hv_want[i] = 12 * wv[i] * wv[i] * vv[i] + 6 * aw * avv * av[i];
        g3_want[i] = 24 * uv[i] * wv[i] * vv[i] + 6 * au * avv * av[i];
        g4_want[i] = 24 * uv[i] * vv[i] * zv[i];
    }
    blo_tensor *hv, *g3, *g4;
    blo_status s = blo_hvp(ctx, f, 1, &w, &v, BLO_GRAD_CREATE_GRAPH, &hv);
    TU_CHECK(s == BLO_OK && blo_has_history(hv), "hvp with create-graph: %s", blo_ctx_error(ctx));
    if (s) return;
    tu_check_close_f64(hv, hv_want, 1e-13, 1e-13, "Hv closed form");
    blo_tensor *t = blo_dot(ctx, u, hv);
    s = blo_grad(ctx, 1, &t, NULL, 1, &w, BLO_GRAD_CREATE_GRAPH, &g3);
    TU_CHECK(s == BLO_OK, "third order: %s", blo_ctx_error(ctx));
    if (s) return;
    tu_check_close_f64(g3, g3_want, 1e-13, 1e-13, "third derivative closed form");
    blo_tensor *t4 = blo_dot(ctx, z, g3);
    s = blo_grad(ctx, 1, &t4, NULL, 1, &w, 0, &g4);
    TU_CHECK(s == BLO_OK, "fourth order: %s", blo_ctx_error(ctx));
    if (!s) tu_check_close_f64(g4, g4_want, 1e-13, 1e-13, "fourth derivative closed form");
    tu_check_ok(ctx, "higher order");
}

static void check_detach_and_intermediate(blo_ctx *ctx) {
    const int64_t s3[1] = {3};
    const double xv[3] = {0.5, -1.0, 2.0};
    blo_tensor *x = blo_from_f64(ctx, BLO_F64, 1, s3, xv);
    blo_set_requires_grad(x, 1);
    /* f = Σ x ⊙ detach(x): the gradient is x, not 2x. */
    blo_tensor *d = blo_detach(ctx, x);
    TU_CHECK(d && !blo_requires_grad(d) && !blo_has_history(d) &&
                 blo_tensor_data(d) == blo_tensor_data(x),
             "detach: a view without history");
    blo_tensor *f = blo_sum_all(ctx, blo_mul(ctx, x, d)), *g;
    blo_status s = blo_grad(ctx, 1, &f, NULL, 1, &x, 0, &g);
    TU_CHECK(s == BLO_OK, "grad through detach: %s", blo_ctx_error(ctx));
    if (!s) tu_check_close_f64(g, xv, 0, 0, "detach stops the gradient");
    /* A function of detach(x) only: x does not influence it. */
    blo_tensor *f0 = blo_sum_all(ctx, blo_exp(ctx, d));
    TU_CHECK(!blo_requires_grad(f0), "an expression of a detached tensor has no history");

    /* Gradient with respect to an intermediate h = tanh(x), f = Σ h² + Σ x:
     * ∂f/∂h = 2h; df/dx = 2h(1 - h²) + 1 when asked together. */
    blo_tensor *h = blo_tanh(ctx, x);
    blo_tensor *f2 = blo_add(ctx, blo_sum_all(ctx, blo_mul(ctx, h, h)), blo_sum_all(ctx, x));
    blo_tensor *gh, *both[2], *ins[2] = {h, x};
    s = blo_grad(ctx, 1, &f2, NULL, 1, &h, 0, &gh);
    double wh[3], wx[3];
    for (int i = 0; i < 3; i++) {
        double t = tanh(xv[i]);
        wh[i] = 2 * t;
        wx[i] = 2 * t * (1 - t * t) + 1;
    }
    TU_CHECK(s == BLO_OK, "grad wrt intermediate: %s", blo_ctx_error(ctx));
    if (!s) tu_check_close_f64(gh, wh, 1e-15, 1e-15, "grad wrt intermediate h");
    s = blo_grad(ctx, 1, &f2, NULL, 2, ins, 0, both);
    if (!s) {
        tu_check_close_f64(both[0], wh, 1e-15, 1e-15, "grad wrt h with x");
        tu_check_close_f64(both[1], wx, 1e-15, 1e-15, "grad wrt x with h");
    }
    tu_check_ok(ctx, "detach and intermediates");
}

/* y_{k+1} = y_k + c y_k², 7000 steps of 3 ops each: 21000 tape nodes. The derivative is
 * Π (1 + 2 c y_k), computed alongside in plain C. */
static void check_long_chain(blo_ctx *ctx) {
    const int steps = 7000;
    const double c = 1e-4;
    blo_tensor *x = blo_scalar(ctx, BLO_F64, 0.5);
    blo_set_requires_grad(x, 1);
    blo_tensor *y = x;
    double yv = 0.5, dy = 1;
    for (int k = 0; k < steps; k++) {
        y = blo_add(ctx, y, blo_scale(ctx, blo_mul(ctx, y, y), c));
        dy *= 1 + 2 * c * yv;
        yv = yv + c * (yv * yv);
    }
    TU_CHECK(y && tu_close(blo_tensor_item(y), yv, 1e-13, 0), "chain value %.15g vs %.15g",
             blo_tensor_item(y), yv);
    blo_tensor *g;
    blo_status s = blo_grad(ctx, 1, &y, NULL, 1, &x, 0, &g);
    TU_CHECK(s == BLO_OK, "grad of a 21000-op chain: %s", blo_ctx_error(ctx));
    if (!s) TU_CHECK(tu_close(blo_tensor_item(g), dy, 1e-12, 0), "chain derivative %.15g vs %.15g",
                     blo_tensor_item(g), dy);
    tu_check_ok(ctx, "long chain");
}

static void check_errors(blo_ctx *ctx) {
    const int64_t s3[1] = {3};
    blo_tensor *x = blo_full(ctx, BLO_F64, 1, s3, 1.0);
    blo_tensor *c = blo_full(ctx, BLO_F64, 1, s3, 2.0);
    blo_set_requires_grad(x, 1);
    blo_tensor *f = blo_sum_all(ctx, blo_mul(ctx, x, c)), *g[2] = {x, x};
    /* An input that does not require grad. */
    blo_status s = blo_grad(ctx, 1, &f, NULL, 1, &c, 0, g);
    TU_CHECK(s == BLO_ERR_INVALID && blo_ctx_status(ctx) == s &&
                 strstr(blo_ctx_error(ctx), "input 0") && !g[0],
             "grad wrt a constant: %s '%s'", blo_status_name(s), blo_ctx_error(ctx));
    blo_ctx_clear_error(ctx);

    /* An input that does not influence the output: zeros by default, an error with STRICT. */
    blo_tensor *z = blo_full(ctx, BLO_F64, 1, s3, 3.0);
    blo_set_requires_grad(z, 1);
    blo_tensor *in[2] = {x, z};
    s = blo_grad(ctx, 1, &f, NULL, 2, in, 0, g);
    double zero[3] = {0, 0, 0}, two[3] = {2, 2, 2};
    TU_CHECK(s == BLO_OK, "grad with an unused input: %s", blo_ctx_error(ctx));
    if (!s) {
        tu_check_close_f64(g[0], two, 0, 0, "grad of the used input");
        tu_check_close_f64(g[1], zero, 0, 0, "grad of the unused input is zero");
    }
    s = blo_grad(ctx, 1, &f, NULL, 2, in, BLO_GRAD_STRICT, g);
    TU_CHECK(s == BLO_ERR_INVALID && strstr(blo_ctx_error(ctx), "input 1") && !g[0] && !g[1],
             "STRICT: %s '%s'", blo_status_name(s), blo_ctx_error(ctx));
    blo_ctx_clear_error(ctx);
    s = blo_grad(ctx, 1, &f, NULL, 1, &x, BLO_GRAD_STRICT, g);
    TU_CHECK(s == BLO_OK, "STRICT with a used input succeeds");

    /* A vector output needs a seed; a seed must match its output. */
    blo_tensor *vec = blo_mul(ctx, x, c);
    s = blo_grad(ctx, 1, &vec, NULL, 1, &x, 0, g);
    TU_CHECK(s == BLO_ERR_SHAPE, "vector output without a seed: %s", blo_status_name(s));
    blo_ctx_clear_error(ctx);
    int64_t s2 = 2;
    blo_tensor *bad = blo_zeros(ctx, BLO_F64, 1, &s2);
    s = blo_grad(ctx, 1, &vec, &bad, 1, &x, 0, g);
    TU_CHECK(s == BLO_ERR_SHAPE && strstr(blo_ctx_error(ctx), "f64[2]"),
             "seed of the wrong shape: '%s'", blo_ctx_error(ctx));
    blo_ctx_clear_error(ctx);
    /* An earlier failure stands: grad reports it instead of computing. */
    blo_tensor *broken = blo_add(ctx, x, bad);
    TU_CHECK(!broken, "add of [3] and [2] fails");
    g[0] = x;
    s = blo_grad(ctx, 1, &f, NULL, 1, &x, 0, g);
    TU_CHECK(s == BLO_ERR_SHAPE && !g[0], "grad after a failed op reports the failure");
    blo_ctx_clear_error(ctx);
    /* Missing directions and tangents are named, and nothing is returned. */
    blo_tensor *none = NULL, *hv = x;
    s = blo_hvp(ctx, f, 1, &x, &none, 0, &hv);
    TU_CHECK(s == BLO_ERR_INVALID && strstr(blo_ctx_error(ctx), "direction 0") && !hv,
             "hvp with a NULL direction: '%s'", blo_ctx_error(ctx));
    blo_ctx_clear_error(ctx);
    blo_tensor *jv = x;
    s = blo_jvp(ctx, 1, &vec, 1, &x, &none, 0, &jv);
    TU_CHECK(s == BLO_ERR_INVALID && strstr(blo_ctx_error(ctx), "tangent 0") && !jv,
             "jvp with a NULL tangent: '%s'", blo_ctx_error(ctx));
    blo_ctx_clear_error(ctx);
    /* A gradient that depends on nothing (f linear in x): the mixed product is zeros, and a
     * NULL among the x is an error, not a crash. */
    blo_tensor *mv = x, *nul = NULL, *lin = blo_sum_all(ctx, blo_mul(ctx, x, c));
    s = blo_mixed_vp(ctx, lin, 1, &x, &c, 1, &x, 0, &mv);
    TU_CHECK(s == BLO_OK, "mixed vp of a linear function: %s", blo_ctx_error(ctx));
    if (!s) tu_check_close_f64(mv, zero, 0, 0, "mixed vp of a linear function is zero");
    mv = x;
    s = blo_mixed_vp(ctx, lin, 1, &x, &c, 1, &nul, 0, &mv);
    TU_CHECK(s == BLO_ERR_INVALID && strstr(blo_ctx_error(ctx), "x 0") && !mv,
             "mixed vp with a NULL x: '%s'", blo_ctx_error(ctx));
    blo_ctx_clear_error(ctx);
    /* No recording: no history, so no gradient. */
    int old = blo_ctx_set_recording(ctx, 0);
    blo_tensor *nr = blo_sum_all(ctx, blo_exp(ctx, x));
    blo_ctx_set_recording(ctx, old);
    TU_CHECK(!blo_has_history(nr), "with recording off, ops record nothing");
}

int main(void) {
    blo_ctx *ctx = blo_ctx_new(0);
    blo_rng r;
    blo_rng_seed(&r, 99);
    check_jvp(ctx, &r);
    check_mixed(ctx, &r);
    check_higher(ctx);
    check_detach_and_intermediate(ctx);
    check_long_chain(ctx);
    check_errors(ctx);
    blo_ctx_free(ctx);
    return tu_finish("test_autodiff");
}
