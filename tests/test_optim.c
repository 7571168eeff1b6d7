/* test_optim.c — the optimizers of blo/optim.h: two Adam and two Nesterov steps against
 * float64 values computed by hand (the update rules in plain arithmetic, run in Python), the
 * recorded step equal to the values-only one for every kind, the recorded step's gradient
 * against central differences, and L-BFGS on problems with known minimisers. */
#include "testutil.h"

#include <math.h>
#include <string.h>

static const double Y0[3] = {1.0, -2.0, 0.5};
static const double G[2][3] = {{0.5, -1.0, 0.0}, {0.2, 0.3, -4.0}};

static blo_tensor *vec(blo_ctx *c, const double *v) {
    int64_t n = 3;
    return blo_from_f64(c, BLO_F64, 1, &n, v);
}

/* Two values-only steps of o (weight decay 0.01) from Y0 with gradients G; checks y, m, v. */
static void two_steps(blo_opt o, const char *name, const double *want_y, const double *want_m,
                      const double *want_v) {
    blo_ctx *p = blo_ctx_new(0), *s = blo_ctx_new(0);
    o.weight_decay = 0.01;
    blo_tensor *y = vec(p, Y0);
    blo_opt_state st;
    TU_CHECK(blo_opt_state_init(p, &o, 1, &y, &st) == BLO_OK, "%s: state", name);
    for (int k = 0; k < 2; k++) {
        blo_tensor *g = vec(s, G[k]);
        TU_CHECK(blo_opt_step(s, &o, &st, 1, &y, &g) == BLO_OK, "%s: step %d: %s", name, k,
                 blo_ctx_error(s));
    }
    TU_CHECK(st.t == 2, "%s: t = %lld", name, (long long)st.t);
    tu_check_close_f64(y, want_y, 1e-13, 1e-15, name);
    tu_check_close_f64(st.m[0], want_m, 1e-13, 1e-15, name);
    if (want_v)
        tu_check_close_f64(st.v[0], want_v, 1e-13, 1e-15, name);
    else
        TU_CHECK(st.v[0] == NULL, "%s: a second moment it does not need", name);
    blo_ctx_free(s);
    blo_ctx_free(p);
}

static void test_hand_computed(void) {
    const double ay[3] = {0.80977332829417081, -1.8551761608807558, 0.47433002477333902};
    const double am[3] = {0.066800000001960763, -0.063700000000980375, -0.3991499998000001};
    const double av[3] = {0.00030352090000819638, 0.0011183205999944913, 0.015968040959016029};
    two_steps(blo_opt_adam(0.1), "adam", ay, am, av);
    blo_opt n = blo_opt_sgd(0.1);
    n.kind = BLO_OPT_NESTEROV;
    const double ny[3] = {0.82207410999999997, -1.7771482199999999, 1.2576968050000001};
    const double nm[3] = {0.66803100000000004, -0.63606200000000013, -3.9905094999999999};
    two_steps(n, "nesterov", ny, nm, NULL);
}

/* Three recorded steps (blo_opt_apply) and three values-only ones (blo_opt_step), f32 and
 * f64, every kind: the same values. */
static void test_recorded_equals_values(void) {
    for (int dt = 0; dt < 2; dt++)
        for (int kind = 0; kind <= BLO_OPT_ADAM; kind++) {
            blo_dtype d = dt ? BLO_F64 : BLO_F32;
            blo_ctx *c = blo_ctx_new(0), *s = blo_ctx_new(0);
            blo_opt o = blo_opt_sgd(0.05);
            o.kind = (blo_opt_kind)kind;
            o.weight_decay = 0.1;
            blo_rng r;
            blo_rng_seed(&r, 7);
            int64_t sh[2] = {4, 5};
            blo_tensor *y = tu_rand(c, &r, d, 2, sh, -1, 1), *yv = blo_clone(c, y);
            blo_opt_state a, b;
            blo_opt_state_init(c, &o, 1, &y, &a);
            blo_opt_state_init(c, &o, 1, &y, &b);
            for (int k = 0; k < 3; k++) {
                blo_tensor *g = tu_rand(c, &r, d, 2, sh, -2, 2), *yn;
                TU_CHECK(blo_opt_apply(c, &o, &a, 1, &y, &g, NULL, &yn) == BLO_OK, "apply");
                y = yn;
                TU_CHECK(blo_opt_step(s, &o, &b, 1, &yv, &g) == BLO_OK, "step");
            }
            char what[64];
            snprintf(what, sizeof what, "%s %s recorded == values", blo_opt_kind_name(o.kind),
                     dt ? "f64" : "f32");
            tu_check_close(yv, y, dt ? 1e-14 : 1e-6, 1e-7, what);
            TU_CHECK(blo_requires_grad(y), "%s: the recorded step is differentiable", what);
            TU_CHECK(blo_ctx_bytes(s) == 0 || blo_ctx_bytes(s) < 64,
                     "%s: scratch rewound (%zu bytes held)", what, blo_ctx_bytes(s));
            tu_check_ok(c, what);
            blo_ctx_free(s);
            blo_ctx_free(c);
        }
}

/* Σ_k w_k y2_k with y1, y2 two recorded steps on the quartic Σ y⁴/4 (g = y³) and a learned
 * per-coordinate step size lr: its gradient w.r.t. y0 and lr against central differences. */
typedef struct fd_env {
    blo_opt o;
} fd_env;

static blo_tensor *two_steps_fn(blo_ctx *c, blo_tensor *const *in, void *env) {
    const fd_env *e = env;
    blo_tensor *y = in[0], *lr = in[1];
    blo_opt_state st;
    if (blo_opt_state_init(c, &e->o, 1, &y, &st)) return NULL;
    for (int k = 0; k < 2; k++) {
        blo_tensor *g = blo_mul(c, blo_mul(c, y, y), y), *yn;
        if (blo_opt_apply(c, &e->o, &st, 1, &y, &g, &lr, &yn)) return NULL;
        y = yn;
    }
    const double w[3] = {0.3, -1.1, 0.7};
    return blo_sum_all(c, blo_mul(c, y, vec(c, w)));
}

static void test_gradient(void) {
    for (int kind = 0; kind <= BLO_OPT_ADAM; kind++) {
        blo_ctx *c = blo_ctx_new(0);
        fd_env e = {blo_opt_adam(0.1)};
        e.o.kind = (blo_opt_kind)kind;
        e.o.weight_decay = 0.05;
        const double lrv[3] = {0.1, 0.05, 0.2};
        blo_tensor *in[2] = {vec(c, Y0), vec(c, lrv)};
        blo_set_requires_grad(in[0], 1);
        blo_set_requires_grad(in[1], 1);
        char name[64];
        snprintf(name, sizeof name, "%s step gradient", blo_opt_kind_name(e.o.kind));
        tu_gradcheck(c, name, two_steps_fn, &e, 2, in, 0);
        blo_ctx_free(c);
    }
}

static void test_errors(void) {
    blo_ctx *c = blo_ctx_new(0);
    blo_opt o = blo_opt_sgd(-1);
    TU_CHECK(blo_opt_check(&o) != NULL, "a negative lr is refused");
    int64_t n = 3;
    blo_tensor *y = blo_zeros(c, BLO_F64, 1, &n);
    blo_opt_state st;
    TU_CHECK(blo_opt_state_init(c, &o, 1, &y, &st) == BLO_ERR_INVALID, "state of a bad optimizer");
    TU_CHECK(strstr(blo_ctx_error(c), "learning rate") != NULL, "message: %s", blo_ctx_error(c));
    blo_ctx_clear_error(c);
    blo_opt sgd = blo_opt_sgd(0.1), adam = blo_opt_adam(0.1);
    blo_opt_state_init(c, &sgd, 1, &y, &st);
    TU_CHECK(blo_opt_step(c, &adam, &st, 1, &y, NULL) == BLO_ERR_INVALID, "SGD state for Adam");
    TU_CHECK(strstr(blo_ctx_error(c), "moments") != NULL, "message: %s", blo_ctx_error(c));
    blo_ctx_free(c);
}

/* Rosenbrock (minimum 0 at (1, 1)) and a diagonal quadratic Σ d_i (x_i − i)². */
static blo_status rosenbrock(const double *x, double *f, double *g, void *user) {
    (void)user;
    double a = 1 - x[0], b = x[1] - x[0] * x[0];
    *f = a * a + 100 * b * b;
    g[0] = -2 * a - 400 * x[0] * b;
    g[1] = 200 * b;
    return BLO_OK;
}

static blo_status quadratic(const double *x, double *f, double *g, void *user) {
    int *calls = user;
    ++*calls;
    *f = 0;
    for (int i = 0; i < 6; i++) {
        double d = 1.0 + i * i, r = x[i] - i;
        *f += d * r * r;
        g[i] = 2 * d * r;
    }
    return BLO_OK;
}

static blo_status failing(const double *x, double *f, double *g, void *user) {
    (void)x, (void)f, (void)g, (void)user;
    return BLO_ERR_NUMERIC;
}

static void test_lbfgs(void) {
    double x[6] = {-1.2, 1.0};
    blo_lbfgs_opts o = {0, 500, 1e-10};
    blo_lbfgs_result r;
    TU_CHECK(blo_lbfgs(2, x, rosenbrock, NULL, &o, &r) == BLO_OK, "rosenbrock");
    TU_CHECK(r.converged && tu_close(x[0], 1, 0, 1e-8) && tu_close(x[1], 1, 0, 1e-8),
             "rosenbrock: (%.12g, %.12g) converged %d after %lld iterations", x[0], x[1],
             r.converged, (long long)r.iters);
    TU_CHECK(r.iters > 5 && r.iters < 200 && r.f < 1e-16, "rosenbrock: %lld iterations, f %g",
             (long long)r.iters, r.f);
    memset(x, 0, sizeof x);
    int calls = 0;
    TU_CHECK(blo_lbfgs(6, x, quadratic, &calls, &o, &r) == BLO_OK, "quadratic");
    for (int i = 0; i < 6; i++)
        TU_CHECK(tu_close(x[i], i, 0, 1e-9), "quadratic x[%d] = %.12g", i, x[i]);
    TU_CHECK(r.evals == calls && r.grad_max <= 1e-8, "quadratic: evals %lld of %d, |g| %g",
             (long long)r.evals, calls, r.grad_max);
    /* Quasi-Newton speed: about n + a few iterations on a quadratic (steepest descent needs
     * hundreds here, a broken two-loop recursion about twice as many). */
    TU_CHECK(r.converged && r.iters <= 20, "quadratic: %lld iterations", (long long)r.iters);
    o.max_iter = 2;
    x[0] = -1.2, x[1] = 1;
    TU_CHECK(blo_lbfgs(2, x, rosenbrock, NULL, &o, &r) == BLO_OK && !r.converged && r.iters == 2,
             "a budget of 2 iterations is reported as not converged");
    TU_CHECK(blo_lbfgs(2, x, failing, NULL, &o, &r) == BLO_ERR_NUMERIC, "fn's error is returned");
    TU_CHECK(blo_lbfgs(0, x, rosenbrock, NULL, &o, &r) == BLO_ERR_INVALID, "n = 0 is refused");
}

int main(void) {
    test_hand_computed();
    test_recorded_equals_values();
    test_gradient();
    test_errors();
    test_lbfgs();
    return tu_finish("optim");
}
