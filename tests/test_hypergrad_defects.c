/* test_hypergrad_defects.c — configurations the methods used to accept and get wrong without
 * an error, each against an oracle:
 *   - the inner optimizer's weight decay is part of the lower level f + ½ wd ‖y‖²: cg, neumann,
 *     fixed_point and rhg against the closed-form hypergradient of the ridge with penalties
 *     x + wd (tests/bilevel_problems.h);
 *   - bda with per-tensor learned step sizes: one step by hand, two y tensors with their own
 *     step sizes; darts refuses per-tensor step sizes;
 *   - a learned start is refused by the methods that take no derivative through it, and a
 *     start built from x by the single-loop methods that never build it. */
#include "bilevel_problems.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

/* With weight decay wd the lower level is ½‖Ay − b‖² + ½ yᵀ diag(x + wd) y: the closed form at
 * x + wd, less the direct term's c·wd. */
static void test_weight_decay(void) {
    ridge r;
    ridge_init(&r, BLO_F64, 24, 16, 5, 0.3, 7);
    int d = r.d;
    double wd = 1.0, x[RIDGE_MAXD], xw[RIDGE_MAXD], exact[RIDGE_MAXD], ystar[RIDGE_MAXD], L;
    blo_tensor_to_f64(r.x0, x);
    for (int i = 0; i < d; i++)
        xw[i] = x[i] + wd;
    ridge_exact(&r, xw, exact, ystar, &L);
    for (int i = 0; i < d; i++)
        exact[i] -= r.c * wd;
    const char *methods[] = {"cg", "neumann", "fixed_point", "rhg"};
    for (int k = 0; k < 4; k++) {
        blo_config c = blo_config_default();
        c.method = methods[k];
        c.inner = blo_opt_sgd(1.0 / L);
        c.inner.weight_decay = wd;
        c.inner_steps = 400;
        c.solve_iters = 400;
        c.tol = 1e-14;
        c.neumann_terms = 400;
        c.alpha = 1.0 / L;
        blo_problem p = ridge_problem(&r);
        char err[512];
        blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
        TU_CHECK(s != NULL, "%s: %s", c.method, err);
        if (!s) continue;
        double hg[RIDGE_MAXD], *o[1] = {hg};
        blo_status st = blo_solver_hypergrad(s, o);
        TU_CHECK(st == BLO_OK, "%s: %s", c.method, blo_solver_error(s));
        double e = tu_max_rel(d, hg, exact);
        printf("weight decay %g: %s vs the closed form: %.3g\n", wd, c.method, e);
        TU_CHECK(e < 1e-6, "%s with weight decay %g vs the closed form: %.3g", c.method, wd, e);
        blo_solver_free(s);
    }
    ridge_free(&r);
}

/* Two y tensors (2 and 3 values) with their own learned step sizes x[0], x[1]:
 *   f = ½‖y1 − a‖² + ½‖y2 − b‖²,   F = ½‖y1‖² + ½‖y2 − 1‖²,
 * one bda step from y0: y_i ← y_i − [μ_0 s_u ∇_{y_i} F + (1 − μ_0) x_i ∇_{y_i} f]. */
typedef struct two {
    blo_ctx *ctx;
    blo_tensor *a, *b, *x[2], *y[2];
} two;

static blo_tensor *two_lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                             const blo_eval *ev, void *user) {
    (void)x, (void)ev;
    two *t = user;
    blo_tensor *r1 = blo_sub(ctx, y[0], t->a), *r2 = blo_sub(ctx, y[1], t->b);
    return blo_scale(ctx, blo_add(ctx, blo_dot(ctx, r1, r1), blo_dot(ctx, r2, r2)), 0.5);
}

static blo_tensor *two_upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                             const blo_eval *ev, void *user) {
    (void)x, (void)ev, (void)user;
    blo_tensor *r2 = blo_add_scalar(ctx, y[1], -1.0);
    return blo_scale(ctx, blo_add(ctx, blo_dot(ctx, y[0], y[0]), blo_dot(ctx, r2, r2)), 0.5);
}

static void test_bda_per_tensor(void) {
    two t;
    t.ctx = blo_ctx_new(0);
    double a[2] = {1, -2}, b[3] = {0.5, 3, -1}, y1[2] = {0.2, 0.4}, y2[3] = {-0.3, 0.1, 0.7};
    double lr[2] = {0.1, 0.4};
    int64_t s2 = 2, s3 = 3, s1 = 1;
    t.a = blo_from_f64(t.ctx, BLO_F64, 1, &s2, a);
    t.b = blo_from_f64(t.ctx, BLO_F64, 1, &s3, b);
    t.y[0] = blo_from_f64(t.ctx, BLO_F64, 1, &s2, y1);
    t.y[1] = blo_from_f64(t.ctx, BLO_F64, 1, &s3, y2);
    t.x[0] = blo_from_f64(t.ctx, BLO_F64, 1, &s1, &lr[0]);
    t.x[1] = blo_from_f64(t.ctx, BLO_F64, 1, &s1, &lr[1]);
    blo_problem p;
    memset(&p, 0, sizeof p);
    p.nx = 2;
    p.x = t.x;
    p.ny = 2;
    p.y = t.y;
    p.upper = two_upper;
    p.lower = two_lower;
    p.user = &t;
    p.x_lo = -INFINITY;
    p.x_hi = INFINITY;
    blo_config c = blo_config_default();
    c.method = "bda";
    c.inner_steps = 1;
    c.lr_x = 0;
    c.lr_x_per_y = 1;
    c.alpha = 0.5;
    c.upper_lr = 0.2;
    char err[512];
    blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
    TU_CHECK(s != NULL, "bda per-tensor: %s", err);
    if (s) {
        double h0[1], h1[1], *o[2] = {h0, h1};
        TU_CHECK(blo_solver_hypergrad(s, o) == BLO_OK, "bda: %s", blo_solver_error(s));
        double mu = 0.5, su = 0.2, worst = 0;
        for (int i = 0; i < 2; i++) {
            double want = y1[i] - (mu * su * y1[i] + (1 - mu) * lr[0] * (y1[i] - a[i]));
            worst = fmax(worst, fabs(blo_tensor_get(blo_solver_y(s, 0), i) - want));
        }
        for (int i = 0; i < 3; i++) {
            double want = y2[i] - (mu * su * (y2[i] - 1) + (1 - mu) * lr[1] * (y2[i] - b[i]));
            worst = fmax(worst, fabs(blo_tensor_get(blo_solver_y(s, 1), i) - want));
        }
        printf("bda, per-tensor step sizes: one step vs by hand: %.3g\n", worst);
        TU_CHECK(worst < 1e-14, "bda with per-tensor step sizes vs the step by hand: %.3g", worst);
        blo_solver_free(s);
    }
    c.method = "darts";
    tu_expect_refused(&p, c, "per-parameter");
    blo_ctx_free(t.ctx);
}

static blo_tensor *ridge_init_y(blo_ctx *ctx, int i, blo_tensor *const *x, void *user) {
    (void)i, (void)user;
    return blo_scale(ctx, x[0], 0.1);
}

static void test_starts(void) {
    ridge r;
    ridge_init(&r, BLO_F64, 24, 16, 5, 0.3, 3);
    blo_problem p = ridge_problem(&r);
    p.init_y = ridge_init_y;
    const char *implicit[] = {"cg", "neumann", "fixed_point", "darts"};
    for (int k = 0; k < 4; k++) {
        blo_config c = blo_config_default();
        c.method = implicit[k];
        c.init = BLO_INIT_LEARNED;
        tu_expect_refused(&p, c, "rhg, trhg");
        c.init = BLO_INIT_FROM_X; /* accepted: they start there */
        char err[512];
        blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
        TU_CHECK(s != NULL, "%s from x: %s", c.method, err);
        blo_solver_free(s);
    }
    const char *single[] = {"bome", "soba"};
    for (int k = 0; k < 2; k++) {
        blo_config c = blo_config_default();
        c.method = single[k];
        c.init = BLO_INIT_FROM_X;
        tu_expect_refused(&p, c, "from_x");
    }
    ridge_free(&r);
}

int main(void) {
    test_weight_decay();
    test_bda_per_tensor();
    test_starts();
    return tu_finish("test_hypergrad_defects");
}
