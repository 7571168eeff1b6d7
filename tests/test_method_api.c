/* test_method_api.c — what users can plug into blo without editing the library, each checked
 * against an oracle on the ridge problem of bilevel_problems.h:
 *   - a registered first-order method equals the built-in first_order, and an implicit method
 *     written by hand with blo_linalg_cg equals the built-in cg;
 *   - a user SGD inner update equals the built-in SGD under rhg, and with an update that
 *     reads x, rhg's hypergradient equals float64 central differences of F(x, y_T(x));
 *   - a lower-level projection that reads x, checked the same way;
 *   - per-tensor bounds on x, against the clipped step computed by hand;
 *   - the split method settings (trhg_window, neumann_terms, solve_iters) act on their own
 *     methods only. */
#include "bilevel_problems.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

/* dF/dx of the solver's method at its x into hg (d values); F into *F. */
static int hypergrad(const blo_problem *p, const blo_config *c, double *hg, double *F) {
    char err[512];
    blo_solver *s = blo_solver_new(p, c, err, sizeof err);
    TU_CHECK(s != NULL, "%s: %s", c->method, err);
    if (!s) return 1;
    double *o[1] = {hg};
    blo_status st = blo_solver_hypergrad(s, o);
    TU_CHECK(st == BLO_OK, "%s: %s", c->method, blo_solver_error(s));
    if (F) blo_solver_values(s, F, NULL);
    blo_solver_free(s);
    return st != BLO_OK;
}

static double max_abs_diff(int d, const double *a, const double *b) {
    double w = 0;
    for (int i = 0; i < d; i++)
        w = fmax(w, fabs(a[i] - b[i]));
    return w;
}

/* ---- Registered methods ------------------------------------------------------------------ */

/* dF/dx ≈ ∂F/∂x(x, y_T): the one-line first-order method, on the public toolkit. */
static blo_status my_first_order(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    (void)hy0;
    int nx = blo_env_nx(e), ny = blo_env_ny(e);
    blo_tensor *y[4], *x[4];
    blo_status st = blo_env_unroll(e, 0, y);
    if (st) return st;
    for (int i = 0; i < nx; i++)
        x[i] = blo_env_x(e, i);
    blo_tensor *F = blo_env_upper(e, y), *f = blo_env_lower(e, y);
    if (!F || !f || blo_grad(blo_env_ctx(e), 1, &F, NULL, nx, x, 0, hx))
        return blo_env_fail(e, BLO_ERR_INVALID, "my_first_order: %s",
                            blo_ctx_error(blo_env_ctx(e)));
    blo_env_set_values(e, blo_tensor_item(F), blo_tensor_item(f));
    blo_env_keep_y(e, y);
    (void)ny;
    return BLO_OK;
}

/* Implicit by hand: solve ∇²_yy f v = ∂F/∂y with blo_linalg_cg on Hessian-vector products
 * through the recorded lower gradient, dF/dx = ∂F/∂x − ∇_x ⟨∇_y f, v⟩. One y tensor. */
typedef struct hvp_env {
    blo_tensor *g, *y;
} hvp_env;

static blo_status hvp(blo_ctx *ctx, blo_tensor *const *in, blo_tensor *const *out, void *user) {
    hvp_env *h = user;
    blo_tensor *dot = blo_dot(ctx, h->g, in[0]), *hv;
    if (!dot || blo_grad(ctx, 1, &dot, NULL, 1, &h->y, 0, &hv)) return blo_ctx_status(ctx);
    return blo_copy_into(out[0], hv);
}

static blo_status my_implicit(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    (void)hy0;
    blo_ctx *c = blo_env_ctx(e);
    blo_tensor *y, *x = blo_env_x(e, 0), *g, *in[2], *dF[2];
    blo_status st = blo_env_unroll(e, 0, &y);
    if (st) return st;
    blo_tensor *F = blo_env_upper(e, &y);
    in[0] = x;
    in[1] = y;
    if (!F || blo_grad(c, 1, &F, NULL, 2, in, 0, dF)) return blo_env_fail(e, BLO_ERR_INVALID, "F");
    if ((st = blo_env_lower_grad(e, &y, 1, &g))) return st;
    blo_tensor *v = blo_zeros(c, blo_tensor_dtype(y), blo_tensor_ndim(y), blo_tensor_shape(y));
    hvp_env h = {g, y};
    blo_linop A = {1, hvp, &h};
    blo_linalg_opts o = {blo_env_config(e)->solve_iters, blo_env_config(e)->tol, 0, 0, 0};
    if ((st = blo_linalg_cg(c, &A, &dF[1], &v, &o, NULL)))
        return blo_env_fail(e, st, "my_implicit: %s", blo_ctx_error(c));
    blo_tensor *dot = blo_dot(c, g, v), *mixed;
    if (!dot || blo_grad(c, 1, &dot, NULL, 1, &x, 0, &mixed))
        return blo_env_fail(e, BLO_ERR_INVALID, "mixed");
    hx[0] = blo_sub(c, dF[0], mixed);
    blo_tensor *f = blo_env_lower(e, &y);
    blo_env_set_values(e, blo_tensor_item(F), f ? blo_tensor_item(f) : NAN);
    blo_env_keep_y(e, &y);
    return hx[0] ? BLO_OK : blo_env_fail(e, BLO_ERR_INVALID, "hx");
}

static void test_register(ridge *r) {
    int before = blo_method_count();
    blo_method_def fo = {
        {"my_first_order", "dF/dx ≈ ∂F/∂x(x, y_T)", "a test", "inner"}, NULL, my_first_order, 0};
    blo_method_def im = {{"my_implicit", "CG on ∇²_yy f v = ∂F/∂y", "a test", "solve_iters, tol"},
                         NULL,
                         my_implicit,
                         0};
    TU_CHECK(blo_method_register(&fo) == BLO_OK && blo_method_register(&im) == BLO_OK, "register");
    TU_CHECK(blo_method_count() == before + 2, "count %d, before %d", blo_method_count(), before);
    TU_CHECK(blo_method_find("my_implicit") &&
                 !strcmp(blo_method_at(before)->name, "my_first_order"),
             "find / at list the registered methods");
    TU_CHECK(blo_method_register(&fo) == BLO_ERR_INVALID, "a taken name is refused");
    blo_method_def cg = fo;
    cg.info.name = "cg";
    TU_CHECK(blo_method_register(&cg) == BLO_ERR_INVALID, "a built-in name is refused");
    cg.info.name = "nohg";
    cg.hypergrad = NULL;
    TU_CHECK(blo_method_register(&cg) == BLO_ERR_INVALID, "a method without hypergradient");

    blo_problem p = ridge_problem(r);
    blo_config c = blo_config_default();
    c.inner = blo_opt_sgd(0.05);
    c.inner_steps = 50;
    c.solve_iters = 50;
    c.tol = 1e-13;
    double want[RIDGE_MAXD], got[RIDGE_MAXD], Fw, Fg;
    const char *pairs[2][2] = {{"first_order", "my_first_order"}, {"cg", "my_implicit"}};
    for (int k = 0; k < 2; k++) {
        c.method = pairs[k][0];
        if (hypergrad(&p, &c, want, &Fw)) continue;
        c.method = pairs[k][1];
        if (hypergrad(&p, &c, got, &Fg)) continue;
        double e = max_abs_diff(r->d, got, want);
        TU_CHECK(e < 1e-12 && Fg == Fw, "%s vs %s: %.3g, F %.17g vs %.17g", pairs[k][1],
                 pairs[k][0], e, Fg, Fw);
    }
    /* Not a tautology: first order and implicit differ here (x reaches F through y). */
    c.method = "my_first_order";
    double fo_hg[RIDGE_MAXD];
    if (!hypergrad(&p, &c, fo_hg, NULL))
        TU_CHECK(max_abs_diff(r->d, fo_hg, want) > 1e-3, "first order and implicit differ here");
    /* A registered method runs in the outer loop too. */
    c.method = "my_implicit";
    c.outer_iters = 3;
    char err[256];
    blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
    TU_CHECK(s && blo_solver_run(s) == BLO_OK && blo_solver_iter(s) == 3, "run: %s",
             s ? blo_solver_error(s) : err);
    blo_solver_free(s);
}

/* ---- User inner updates ---------------------------------------------------------------------- */

typedef struct upd {
    double lr, c; /* Φ = y − lr g ⊙ 1/(1 + c x): a per-coordinate step that reads x */
} upd;

static blo_status user_update(blo_ctx *ctx, int nx, blo_tensor *const *x, int ny,
                              blo_tensor *const *y, blo_tensor *const *g, int64_t t,
                              blo_tensor **y_new, void *user) {
    (void)nx, (void)t;
    upd *u = user;
    for (int i = 0; i < ny; i++) {
        blo_tensor *step = blo_scale(ctx, g[i], u->lr);
        if (u->c != 0)
            step = blo_div(ctx, step, blo_add_scalar(ctx, blo_scale(ctx, x[0], u->c), 1.0));
        y_new[i] = blo_sub(ctx, y[i], step);
        if (!y_new[i]) return blo_ctx_status(ctx);
    }
    return BLO_OK;
}

/* Central differences of F(x, y_T(x)) (rhg's reported F) in every coordinate of x. */
static void fd_check(const blo_problem *p, const blo_config *c, const char *what) {
    char err[512];
    blo_solver *s = blo_solver_new(p, c, err, sizeof err);
    TU_CHECK(s != NULL, "%s: %s", what, err);
    if (!s) return;
    blo_tensor *x = blo_solver_x(s, 0);
    int d = (int)blo_tensor_numel(x);
    double hg[RIDGE_MAXD], *o[1] = {hg}, scratch[RIDGE_MAXD], *so[1] = {scratch};
    TU_CHECK(blo_solver_hypergrad(s, o) == BLO_OK, "%s: %s", what, blo_solver_error(s));
    double worst = 0, h = 1e-6;
    for (int j = 0; j < d; j++) {
        double x0 = blo_tensor_get(x, j), Fp, Fm;
        blo_tensor_set(x, j, x0 + h);
        blo_solver_hypergrad(s, so);
        blo_solver_values(s, &Fp, NULL);
        blo_tensor_set(x, j, x0 - h);
        blo_solver_hypergrad(s, so);
        blo_solver_values(s, &Fm, NULL);
        blo_tensor_set(x, j, x0);
        double fd = (Fp - Fm) / (2 * h);
        worst = fmax(worst, fabs(fd - hg[j]) / fmax(1e-3, fabs(fd)));
    }
    TU_CHECK(worst < 1e-6, "%s: rhg off central differences by %.3g", what, worst);
    blo_solver_free(s);
}

static void test_inner_update(ridge *r) {
    blo_problem p = ridge_problem(r);
    blo_config c = blo_config_default();
    c.method = "rhg";
    c.inner = blo_opt_sgd(0.05);
    c.inner_steps = 30;
    double want[RIDGE_MAXD], got[RIDGE_MAXD];
    upd u = {0.05, 0};
    if (!hypergrad(&p, &c, want, NULL)) {
        c.inner_update = user_update;
        c.inner_update_user = &u;
        if (!hypergrad(&p, &c, got, NULL))
            TU_CHECK(max_abs_diff(r->d, got, want) < 1e-13,
                     "user SGD vs built-in SGD under rhg: %.3g", max_abs_diff(r->d, got, want));
    }
    /* Φ reads x: rhg must follow that path too. */
    u.c = 0.7;
    c.inner_update = user_update;
    c.inner_update_user = &u;
    fd_check(&p, &c, "rhg with Φ(x, y) reading x");
    /* The same with the truncated and forward-mode methods at full length. */
    c.method = "fhg";
    double hf[RIDGE_MAXD], hr[RIDGE_MAXD];
    if (!hypergrad(&p, &c, hf, NULL)) {
        c.method = "rhg";
        if (!hypergrad(&p, &c, hr, NULL))
            TU_CHECK(max_abs_diff(r->d, hf, hr) < 1e-10, "fhg == rhg with a user update: %.3g",
                     max_abs_diff(r->d, hf, hr));
    }
    /* Without the x term the hypergradients differ (so the check above sees the path). */
    TU_CHECK(max_abs_diff(r->d, hr, want) > 1e-4, "the x-dependent update changes dF/dx");
    /* soba takes plain steps and refuses a user update. */
    c.method = "soba";
    char err[256];
    TU_CHECK(!blo_solver_new(&p, &c, err, sizeof err) && strstr(err, "user-defined"), "soba: %s",
             err);
}

/* ---- Projection that reads x, per-tensor bounds ------------------------------------------ */

/* y ← y / (1 + 0.1 x): a shrink whose strength is the hyper-variable. */
static blo_tensor *shrink(blo_ctx *ctx, int i, blo_tensor *y, blo_tensor *const *x, void *user) {
    (void)i, (void)user;
    return blo_div(ctx, y, blo_add_scalar(ctx, blo_scale(ctx, x[0], 0.1), 1.0));
}

static void test_project_y(ridge *r) {
    blo_problem p = ridge_problem(r);
    p.project_y = shrink;
    blo_config c = blo_config_default();
    c.method = "rhg";
    c.inner = blo_opt_sgd(0.05);
    c.inner_steps = 20;
    fd_check(&p, &c, "rhg with project_y reading x");
}

/* F = ½‖x_a − 5‖² + ½ (x_b + 5)²; f = ½‖y‖². One SGD step of lr 1 from 0 moves x_a to 5 and
 * x_b to −5; bounds clip them. */
static blo_tensor *box_upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                             const blo_eval *ev, void *user) {
    (void)y, (void)ev, (void)user;
    blo_tensor *a = blo_add_scalar(ctx, x[0], -5), *b = blo_add_scalar(ctx, x[1], 5);
    return blo_scale(ctx, blo_add(ctx, blo_dot(ctx, a, a), blo_sum_all(ctx, blo_mul(ctx, b, b))),
                     0.5);
}

static blo_tensor *box_lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                             const blo_eval *ev, void *user) {
    (void)x, (void)ev, (void)user;
    return blo_scale(ctx, blo_dot(ctx, y[0], y[0]), 0.5);
}

static void test_bounds(void) {
    blo_ctx *ctx = blo_ctx_new(0);
    int64_t two = 2, one = 1;
    blo_tensor *x[2] = {blo_zeros(ctx, BLO_F64, 1, &two), blo_zeros(ctx, BLO_F64, 1, &one)};
    blo_tensor *y = blo_zeros(ctx, BLO_F64, 1, &two);
    blo_problem p;
    memset(&p, 0, sizeof p);
    p.nx = 2;
    p.x = x;
    p.ny = 1;
    p.y = &y;
    p.upper = box_upper;
    p.lower = box_lower;
    p.x_lo = -3;
    p.x_hi = 3;
    blo_config c = blo_config_default();
    c.method = "first_order";
    c.outer = blo_opt_sgd(1.0);
    c.inner_steps = 1;
    char err[256];
    for (int each = 0; each < 2; each++) {
        double lo[2] = {-INFINITY, -2}, hi[2] = {1, INFINITY};
        p.x_lo_each = each ? lo : NULL;
        p.x_hi_each = each ? hi : NULL;
        blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
        lo[0] = hi[0] = 99; /* the solver keeps its own copy */
        TU_CHECK(s && blo_solver_step(s, NULL) == BLO_OK, "bounds: %s",
                 s ? blo_solver_error(s) : err);
        if (!s) continue;
        double a0 = blo_tensor_get(blo_solver_x(s, 0), 0),
               a1 = blo_tensor_get(blo_solver_x(s, 0), 1),
               b = blo_tensor_get(blo_solver_x(s, 1), 0);
        double wa = each ? 1 : 3, wb = each ? -2 : -3;
        TU_CHECK(a0 == wa && a1 == wa && b == wb,
                 "%s bounds: x_a = (%g, %g), x_b = %g; want %g, %g", each ? "per-tensor" : "scalar",
                 a0, a1, b, wa, wb);
        blo_solver_free(s);
    }
    double lo[2] = {0, 1}, hi[2] = {1, 0};
    p.x_lo_each = lo;
    p.x_hi_each = hi;
    TU_CHECK(!blo_solver_new(&p, &c, err, sizeof err) && strstr(err, "x[1]"), "empty bounds: %s",
             err);
    p.x_hi_each = NULL;
    TU_CHECK(!blo_solver_new(&p, &c, err, sizeof err) && strstr(err, "both"), "half the bounds: %s",
             err);
    blo_ctx_free(ctx);
}

/* ---- Split settings ------------------------------------------------------------------------ */

static void test_settings(ridge *r) {
    blo_problem p = ridge_problem(r);
    blo_config c = blo_config_default();
    c.inner = blo_opt_sgd(0.05);
    c.inner_steps = 40;
    c.alpha = 0.05;
    const char *methods[3] = {"trhg", "neumann", "cg"};
    for (int k = 0; k < 3; k++) {
        /* Changing another method's setting leaves the numbers alone; its own changes them. */
        double a[RIDGE_MAXD], b[RIDGE_MAXD], d[RIDGE_MAXD];
        blo_config x = c;
        x.method = methods[k];
        x.trhg_window = x.neumann_terms = x.solve_iters = 2;
        if (hypergrad(&p, &x, a, NULL)) continue;
        blo_config y = x;
        if (k != 0) y.trhg_window = 30;
        if (k != 1) y.neumann_terms = 30;
        if (k != 2) y.solve_iters = 30;
        if (hypergrad(&p, &y, b, NULL)) continue;
        TU_CHECK(max_abs_diff(r->d, a, b) == 0, "%s reads only its own setting", methods[k]);
        blo_config z = x;
        if (k == 0) z.trhg_window = 30;
        if (k == 1) z.neumann_terms = 30;
        if (k == 2) z.solve_iters = 30;
        if (hypergrad(&p, &z, d, NULL)) continue;
        TU_CHECK(max_abs_diff(r->d, a, d) > 1e-6, "%s's own setting changes its result",
                 methods[k]);
    }
    blo_config bad = c;
    bad.method = "fixed_point";
    bad.anderson_m = 3;
    bad.anderson_beta = 0;
    char err[256];
    TU_CHECK(!blo_solver_new(&p, &bad, err, sizeof err) && strstr(err, "anderson"), "β = 0: %s",
             err);
}

/* fixed_point with Anderson acceleration reaches cg's numbers in fewer iterations. */
static void test_anderson_method(ridge *r) {
    blo_problem p = ridge_problem(r);
    double xv[RIDGE_MAXD], hg_exact[RIDGE_MAXD], ys[RIDGE_MAXD], L;
    blo_tensor_to_f64(r->x0, xv);
    ridge_exact(r, xv, hg_exact, ys, &L);
    blo_config c = blo_config_default();
    c.inner = blo_opt_sgd(1.0 / L);
    c.inner_steps = 400;
    c.method = "cg";
    c.solve_iters = 50;
    c.tol = 1e-13;
    double want[RIDGE_MAXD], plain[RIDGE_MAXD], acc[RIDGE_MAXD];
    if (hypergrad(&p, &c, want, NULL)) return;
    c.method = "fixed_point";
    c.solve_iters = 40;
    c.tol = 0;
    if (hypergrad(&p, &c, plain, NULL)) return;
    c.anderson_m = 5;
    if (hypergrad(&p, &c, acc, NULL)) return;
    double ep = max_abs_diff(r->d, plain, want), ea = max_abs_diff(r->d, acc, want);
    TU_CHECK(ea < 1e-8 && ea < 1e-3 * ep, "fixed_point, 40 iterations: Anderson %.3g, plain %.3g",
             ea, ep);
}

int main(void) {
    ridge r;
    ridge_init(&r, BLO_F64, 40, 30, 6, 0.1, 11);
    test_register(&r);
    test_inner_update(&r);
    test_project_y(&r);
    test_bounds();
    test_settings(&r);
    test_anderson_method(&r);
    ridge_free(&r);
    return tu_finish("method_api");
}
