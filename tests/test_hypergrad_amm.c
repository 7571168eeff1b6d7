/* test_hypergrad_amm.c — amm (sl-BAMM) on the merely convex toy of its paper, against the known
 * optimum:
 *   f(x, y) = ½‖y₁‖² − xᵀy₁,   F(x, y) = ½‖x − y₂‖² + ½‖y₁ − e‖²,   x, y₁, y₂ ∈ ℝⁿ,
 * whose lower level leaves y₂ free (argmin_y f = {x} × ℝⁿ, ∇²_yy f singular); the optimistic
 * bilevel problem's solution is x = y₁ = y₂ = e. A method that takes the lower level's y₂ as
 * given (rhg, cg: dy₂/dx = 0) stops at x = (y₂(0) + e)/2 instead. Then amm's refusals. */
#include "bilevel_problems.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#define TOY_N 10

typedef struct toy {
    blo_ctx *ctx;
    blo_tensor *x, *y[2];
} toy;

static blo_tensor *toy_lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                             const blo_eval *ev, void *user) {
    (void)ev, (void)user;
    /* y₂ enters f with weight 0: ∇_{y₂} f = 0 (the lower level does not determine it). */
    blo_tensor *q = blo_scale(ctx, blo_dot(ctx, y[0], y[0]), 0.5);
    blo_tensor *z = blo_scale(ctx, blo_sum_all(ctx, y[1]), 0.0);
    return blo_add(ctx, blo_sub(ctx, q, blo_dot(ctx, x[0], y[0])), z);
}

static blo_tensor *toy_upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                             const blo_eval *ev, void *user) {
    (void)ev, (void)user;
    blo_tensor *a = blo_sub(ctx, x[0], y[1]), *b = blo_add_scalar(ctx, y[0], -1.0);
    return blo_scale(ctx, blo_add(ctx, blo_dot(ctx, a, a), blo_dot(ctx, b, b)), 0.5);
}

static blo_problem toy_problem(toy *t, double start) {
    t->ctx = blo_ctx_new(0);
    int64_t n = TOY_N;
    t->x = blo_full(t->ctx, BLO_F64, 1, &n, start);
    t->y[0] = blo_full(t->ctx, BLO_F64, 1, &n, start);
    t->y[1] = blo_full(t->ctx, BLO_F64, 1, &n, start);
    blo_problem p;
    memset(&p, 0, sizeof p);
    p.nx = 1;
    p.x = &t->x;
    p.ny = 2;
    p.y = t->y;
    p.upper = toy_upper;
    p.lower = toy_lower;
    p.user = t;
    p.x_lo = -INFINITY;
    p.x_hi = INFINITY;
    return p;
}

/* Runs `c` on the toy from x = y = 0.01; the largest distance of x, y₁, y₂ from e. */
static double run_toy(blo_config c, double *xend) {
    toy t;
    blo_problem p = toy_problem(&t, 0.01);
    char err[512];
    blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
    TU_CHECK(s != NULL, "%s on the toy: %s", c.method, err);
    double worst = NAN;
    if (s) {
        blo_status st = blo_solver_run(s);
        TU_CHECK(st == BLO_OK, "%s on the toy: %s", c.method, blo_solver_error(s));
        blo_tensor *ts[3] = {blo_solver_x(s, 0), blo_solver_y(s, 0), blo_solver_y(s, 1)};
        worst = 0;
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < TOY_N; i++)
                worst = fmax(worst, fabs(blo_tensor_get(ts[k], i) - 1.0));
        *xend = blo_tensor_get(ts[0], 0);
        blo_solver_free(s);
    }
    blo_ctx_free(t.ctx);
    return worst;
}

static void test_toy(void) {
    blo_config c = blo_config_default();
    c.method = "amm";
    c.inner = blo_opt_sgd(0.5);
    c.outer = blo_opt_sgd(0.1);
    c.alpha = 0.9;
    c.outer_iters = 3000;
    double x, d = run_toy(c, &x);
    printf(
        "amm (the Theorem's schedule), %lld iterations: max |(x, y1, y2) - e| = %.3g, x_0 = %.4f\n",
        (long long)c.outer_iters, d, x);
    TU_CHECK(d < 1e-2, "amm must reach x = y1 = y2 = e: %.3g", d);
    c.amm_schedule = 1;
    d = run_toy(c, &x);
    printf("amm (the authors' code schedule), %lld iterations: max |(x, y1, y2) - e| = %.3g, x_0 = "
           "%.4f\n",
           (long long)c.outer_iters, d, x);

    const char *others[] = {"rhg", "cg"};
    for (int k = 0; k < 2; k++) {
        blo_config o = blo_config_default();
        o.method = others[k];
        o.inner = blo_opt_sgd(0.5);
        o.inner_steps = 50;
        o.init = BLO_INIT_WARM;
        o.outer = blo_opt_sgd(0.1);
        o.outer_iters = 300;
        o.solve_iters = 50;
        o.damping = 1e-6; /* cg: the Hessian is singular in y₂ */
        d = run_toy(o, &x);
        printf("%s, %lld iterations: max |(x, y1, y2) - e| = %.3g, x_0 = %.4f (the point that "
               "keeps y2 fixed: %.3f)\n",
               o.method, (long long)o.outer_iters, d, x, (0.01 + 1) / 2);
        TU_CHECK(d > 0.3, "%s cannot move y2 and must stop away from e: %.3g", o.method, d);
    }
}

static void test_refusals(void) {
    toy t;
    blo_problem p = toy_problem(&t, 0.0);
    blo_config c = blo_config_default();
    c.method = "amm";
    c.inner = blo_opt_adam(0.01);
    tu_expect_refused(&p, c, "sgd");
    c.inner = blo_opt_sgd(0.1);
    c.init = BLO_INIT_LEARNED;
    tu_expect_refused(&p, c, "init = learned");
    c.init = BLO_INIT_FIXED;
    c.alpha = 1.5;
    tu_expect_refused(&p, c, "alpha");
    c.alpha = 0.5;
    c.amm_schedule = 2;
    tu_expect_refused(&p, c, "amm_schedule");
    blo_ctx_free(t.ctx);
}

int main(void) {
    test_toy();
    test_refusals();
    return tu_finish("test_hypergrad_amm");
}
