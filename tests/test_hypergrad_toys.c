/* test_hypergrad_toys.c — the methods for lower levels that are not singletons (bda, iaptt),
 * the first-order value-function method (bome) and the single-loop one (soba), each held to
 * an oracle:
 *   - iaptt on the non-convex toy of Liu et al. (NeurIPS 2021, eq. 10) reaches the known
 *     optimum (11π/4, −2) from several starts, and its hypergradient is the finite-difference
 *     derivative of the pessimistic objective max_t F(x, y_t), computed by a hand loop;
 *   - bda on the BDA toy (Liu et al., ICML 2020) ends at the closed-form fixed point of its
 *     own iteration, close to the optimum (e, e, e), while rhg ends at its closed-form point,
 *     measurably away; bda's reverse pass matches finite differences of its unrolled
 *     objective (learned step size, momentum, learned start);
 *   - bome and soba on ridge regression (tests/bilevel_problems.h) approach the minimizer of
 *     F(x, y*(x)) found with the closed-form hypergradient; soba's step against a hand
 *     computation;
 *   - every method: a run stopped halfway and resumed from its checkpoint ends bit for bit
 *     where an uninterrupted run ends; settings a method cannot use are refused by name. */
#include "../src/solve/solver.h"
#include "bilevel_problems.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define PI 3.14159265358979323846

static blo_solver *make(const blo_problem *p, blo_config c) {
    char err[512];
    blo_solver *s = blo_solver_new(p, &c, err, sizeof err);
    TU_CHECK(s != NULL, "solver for %s: %s", c.method, err);
    return s;
}

static int run(blo_solver *s, int iters, const char *what) {
    for (int k = 0; k < iters; k++) {
        blo_status st = blo_solver_step(s, NULL);
        if (st) {
            TU_CHECK(0, "%s: step %d: %s", what, k, blo_solver_error(s));
            return 1;
        }
    }
    return 0;
}

/* ---- The IAPTT toy: min_{x ∈ [1, 10]} x + x y,  y ∈ argmin_{y ∈ [−2, 2]} −sin(x y) ----------
 * blo has no sine op, so sin is built from blo ops: z − kπ with k = round(z/π) held constant
 * (its derivative is zero away from the jumps, and sin is continuous across them), then the
 * odd Taylor polynomial on [−π/2, π/2] to degree 19 (error below 4e-15), differentiable to
 * any order. Optimistic optimum: y = −2 is an LL minimizer when −2x ≡ π/2 (mod 2π), i.e.
 * x ∈ {3π/4, 7π/4, 11π/4}, and F = −x there, so (11π/4, −2) with F = −11π/4. */

static blo_tensor *poly_sin(blo_ctx *ctx, blo_tensor *z) {
    if (!z || blo_tensor_numel(z) > 8) return NULL;
    int64_t n = blo_tensor_numel(z);
    double shift[8], sign[8], c[10], fact = 1;
    for (int64_t i = 0; i < n; i++) {
        double k = nearbyint(blo_tensor_get(z, i) / PI);
        shift[i] = k * PI;
        sign[i] = fmod(fabs(k), 2.0) == 1.0 ? -1.0 : 1.0;
    }
    for (int j = 0; j < 10; j++) { /* sin r = r Σ_j (−1)^j r^{2j} / (2j+1)! */
        if (j > 0) fact *= (2.0 * j) * (2.0 * j + 1);
        c[j] = (j % 2 ? -1.0 : 1.0) / fact;
    }
    int nd = blo_tensor_ndim(z);
    const int64_t *sh = blo_tensor_shape(z);
    blo_tensor *r = blo_sub(ctx, z, blo_from_f64(ctx, blo_tensor_dtype(z), nd, sh, shift));
    blo_tensor *u = blo_mul(ctx, r, r);
    blo_tensor *p = blo_add_scalar(ctx, blo_scale(ctx, u, c[9]), c[8]);
    for (int j = 7; j >= 0; j--)
        p = blo_add_scalar(ctx, blo_mul(ctx, p, u), c[j]);
    return blo_mul(ctx, blo_mul(ctx, r, p), blo_from_f64(ctx, blo_tensor_dtype(z), nd, sh, sign));
}

static blo_tensor *sin_upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                             const blo_eval *ev, void *user) {
    (void)ev;
    (void)user;
    return blo_add(ctx, x[0], blo_mul(ctx, x[0], y[0]));
}

static blo_tensor *sin_lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                             const blo_eval *ev, void *user) {
    (void)ev;
    (void)user;
    return blo_neg(ctx, poly_sin(ctx, blo_mul(ctx, x[0], y[0])));
}

static blo_tensor *sin_project(blo_ctx *ctx, int i, blo_tensor *y, blo_tensor *const *x,
                               void *user) {
    (void)i;
    (void)x;
    (void)user;
    return blo_clamp(ctx, y, -2, 2);
}

typedef struct sin_toy {
    blo_ctx *ctx;
    blo_tensor *x, *y;
    blo_problem p;
} sin_toy;

static void sin_toy_init(sin_toy *t, double x0, double y0) {
    int64_t one = 1;
    t->ctx = blo_ctx_new(0);
    t->x = blo_from_f64(t->ctx, BLO_F64, 1, &one, &x0);
    t->y = blo_from_f64(t->ctx, BLO_F64, 1, &one, &y0);
    memset(&t->p, 0, sizeof t->p);
    t->p.nx = 1;
    t->p.x = &t->x;
    t->p.ny = 1;
    t->p.y = &t->y;
    t->p.upper = sin_upper;
    t->p.lower = sin_lower;
    t->p.x_lo = 1;
    t->p.x_hi = 10;
    t->p.project_y = sin_project;
}

/* The authors' toy settings (experiment/Numerical.py): inner SGD, x and y_0 by SGD lr 0.1.
 * The inner budget lr·T decides which stationary point holds x. Once y_0 sits at −2, just
 * right of x_k = (4k−1)π/4 the LL lifts y off −2 and dF/dx = 1 + y_T + x ∂y_T/∂x ≈
 * −1 + 2(1 − (1 − lr x²)^T), so x_k holds x when (1 − lr x_k²)^T < ½ (just left of x_k, y is
 * pinned at −2 by the box and dF/dx = −1 pushes x up). With lr·T = 0.015 this fails at 3π/4
 * and 7π/4 and holds at 11π/4; the authors' T = 40, lr 5e-4 (lr·T = 0.02) is in the same
 * window. We take T = 5, lr 0.003: the reverse pass costs grow with T. */
static blo_config sin_config(const char *method, double lr_out) {
    blo_config c = blo_config_default();
    c.method = method;
    c.inner = blo_opt_sgd(0.003);
    c.inner_steps = 5;
    c.init = BLO_INIT_LEARNED;
    c.init_opt = blo_opt_sgd(lr_out);
    c.outer = blo_opt_sgd(lr_out);
    return c;
}

/* The pessimistic objective max_{t=1..T} F(x, y_t) by a hand loop with libm's sine:
 * y_{t+1} = clamp(y_t + lr x cos(x y_t), −2, 2). */
static double ptt_objective(double x, double y0, int T, double lr, int *tstar) {
    double y = y0, best = -INFINITY;
    for (int t = 1; t <= T; t++) {
        y = fmin(fmax(y + lr * x * cos(x * y), -2.0), 2.0);
        double F = x + x * y;
        if (F > best) {
            best = F;
            if (tstar) *tstar = t;
        }
    }
    return best;
}

static void test_iaptt(const char *ckpt) {
    const double xstar = 11 * PI / 4;
    /* Starts spread over the box, the authors' default (1, 2) first. */
    const double starts[4][2] = {{1, 2}, {3, -2}, {6, 0}, {9, 1.5}};
    for (int k = 0; k < 4; k++) {
        sin_toy t;
        sin_toy_init(&t, starts[k][0], starts[k][1]);
        /* 200 iterations at lr 0.1 (x needs at least 77 to climb from 1 to 11π/4; measured:
         * every start is in the band after 150): x then oscillates in a band of about lr·|dF/dx|
         * around 11π/4 (dF/dx ≈ −1 left of it, where y_T = −2 is pinned by the box, and ≈ +2..3
         * right of it). Continue from a checkpoint at lr 0.01 for 100 iterations: the band
         * shrinks to ≈ 0.03. */
        blo_solver *a = make(&t.p, sin_config("iaptt", 0.1));
        if (!a || run(a, 200, "iaptt toy")) return;
        double x1 = blo_tensor_item(blo_solver_x(a, 0));
        TU_CHECK(fabs(x1 - xstar) < 0.35,
                 "iaptt from (%g, %g): x = %.5f after 200 iterations, "
                 "expected within 0.35 of 11π/4 = %.5f",
                 starts[k][0], starts[k][1], x1, xstar);
        TU_CHECK(blo_solver_save(a, ckpt) == BLO_OK, "save: %s", blo_solver_error(a));
        blo_solver_free(a);
        blo_solver *b = make(&t.p, sin_config("iaptt", 0.01));
        if (!b) return;
        TU_CHECK(blo_solver_load(b, ckpt) == BLO_OK, "load: %s", blo_solver_error(b));
        if (run(b, 100, "iaptt toy, fine")) return;
        double x = blo_tensor_item(blo_solver_x(b, 0)), y = blo_tensor_item(blo_solver_y(b, 0));
        double y0 = blo_tensor_item(blo_solver_y0(b, 0));
        TU_CHECK(fabs(x - xstar) < 0.05 && y >= -2 && y < -1.98,
                 "iaptt from (%g, %g): (x, y_T) = (%.5f, %.5f), expected (11π/4, −2) = (%.5f, −2) "
                 "within (0.05, 0.02)",
                 starts[k][0], starts[k][1], x, y, xstar);
        TU_CHECK(y0 >= -2 && y0 <= 2, "the learned start must stay in the box, y_0 = %g", y0);
        printf("iaptt from (%g, %g): x %.5f (11π/4 %.5f), y_T %.5f, y_0 %.5f\n", starts[k][0],
               starts[k][1], x, xstar, y, y0);
        blo_solver_free(b);
        blo_ctx_free(t.ctx);
    }
    /* Without the learned start the LL stays in the basin of y_0 = 2 (y_T ≈ 2, F ≈ 3x), and
     * x runs to the lower bound: the bad stationary point that IA escapes. */
    {
        sin_toy t;
        sin_toy_init(&t, 1, 2);
        blo_config c = sin_config("rhg", 0.1);
        c.init = BLO_INIT_FIXED;
        blo_solver *s = make(&t.p, c);
        if (s && !run(s, 50, "rhg toy")) {
            double x = blo_tensor_item(blo_solver_x(s, 0)), y = blo_tensor_item(blo_solver_y(s, 0));
            TU_CHECK(x == 1 && y > 1.9,
                     "rhg with a fixed start: (x, y_T) = (%g, %g), expected the "
                     "local point (1, ≈2)",
                     x, y);
        }
        blo_solver_free(s);
        blo_ctx_free(t.ctx);
    }
    /* The hypergradient is that of F(x, y_{t*}): central differences of the hand-computed
     * max_t F(x, y_t) in x and y_0, at one point where F rises along the trajectory (t* = T)
     * and one where it falls (t* = 1). */
    const double pts[2][2] = {{3.0, 0.3}, {4.0, -1.0}};
    const int want_t[2] = {8, 1};
    for (int k = 0; k < 2; k++) {
        const int T = 8;
        const double lr = 0.01, eps = 1e-6, lr0 = 1e-3;
        double x = pts[k][0], y0 = pts[k][1];
        int ts = 0;
        ptt_objective(x, y0, T, lr, &ts);
        TU_CHECK(ts == want_t[k], "the hand loop picks t* = %d at (%g, %g), expected %d", ts, x, y0,
                 want_t[k]);
        double gx =
            (ptt_objective(x + eps, y0, T, lr, NULL) - ptt_objective(x - eps, y0, T, lr, NULL)) /
            (2 * eps);
        double gy =
            (ptt_objective(x, y0 + eps, T, lr, NULL) - ptt_objective(x, y0 - eps, T, lr, NULL)) /
            (2 * eps);
        sin_toy t;
        sin_toy_init(&t, x, y0);
        blo_config c = sin_config("iaptt", lr0);
        c.inner = blo_opt_sgd(lr);
        c.inner_steps = T;
        blo_solver *s = make(&t.p, c);
        if (!s) return;
        double hx, *o[1] = {&hx};
        TU_CHECK(blo_solver_hypergrad(s, o) == BLO_OK, "iaptt hypergradient: %s",
                 blo_solver_error(s));
        /* dF/dy_0 from one SGD step of the learned start: y_0' = y_0 − lr0 · dF/dy_0. */
        TU_CHECK(blo_solver_step(s, NULL) == BLO_OK, "iaptt step: %s", blo_solver_error(s));
        double hy = (y0 - blo_tensor_item(blo_solver_y0(s, 0))) / lr0;
        TU_CHECK(tu_close(hx, gx, 1e-6, 1e-8),
                 "iaptt dF/dx %.10g vs finite differences of "
                 "max_t F(x, y_t) %.10g (t* = %d)",
                 hx, gx, ts);
        TU_CHECK(tu_close(hy, gy, 1e-6, 1e-7),
                 "iaptt dF/dy_0 %.10g vs finite differences %.10g "
                 "(t* = %d)",
                 hy, gy, ts);
        blo_solver_free(s);
        blo_ctx_free(t.ctx);
    }
}

/* ---- The BDA toy (Liu et al., ICML 2020): x ∈ R^n, y = (y1, y2),
 *   F(x, y) = ½‖x − y2‖² + ½‖y1 − e‖²,   f(x, y) = ½‖y1‖² − xᵀy1.
 * argmin_y f = {(x, y2) : y2 free}: not a singleton. The optimistic solution is x = y1 = y2 = e.
 * The LL gradient never moves y2, so an LL-only inner loop keeps y2 = y2_0 and the UL sees
 * F = ½‖x − y2_0‖² + ½‖x − e‖²: x = (e + y2_0)/2. */

#define BDA_N 4

static blo_tensor *bda_upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                             const blo_eval *ev, void *user) {
    (void)ev;
    (void)user;
    blo_tensor *a = blo_sub(ctx, x[0], y[1]), *b = blo_add_scalar(ctx, y[0], -1);
    return blo_scale(ctx, blo_add(ctx, blo_dot(ctx, a, a), blo_dot(ctx, b, b)), 0.5);
}

static blo_tensor *bda_lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                             const blo_eval *ev, void *user) {
    (void)ev;
    (void)user;
    return blo_sub(ctx, blo_scale(ctx, blo_dot(ctx, y[0], y[0]), 0.5), blo_dot(ctx, x[0], y[0]));
}

/* Everything is linear and separable, so T aggregated SGD steps give, per coordinate,
 * y1_T = A x + B + D y1_0 and y2_T = (1 − C) x + C y2_0, and the unrolled objective
 * ½ C² (x − y2_0)² + ½ (A x + B + D y1_0 − 1)² is minimal at
 * x = [C² y2_0 + A (1 − B − D y1_0)] / (C² + A²).  μ = 0 is plain rhg. Writes x, y1_T, y2_T. */
static void bda_fixed_point(double alpha, double su, double sl, int T, double y1_0, double y2_0,
                            double *out) {
    double A = 0, B = 0, C = 1, D = 1;
    for (int t = 0; t < T; t++) {
        double mu = alpha / (t + 1), keep = 1 - mu * su - (1 - mu) * sl;
        A = keep * A + (1 - mu) * sl;
        B = keep * B + mu * su;
        D = keep * D;
        C = (1 - mu * su) * C;
    }
    double x = (C * C * y2_0 + A * (1 - B - D * y1_0)) / (C * C + A * A);
    out[0] = x;
    out[1] = A * x + B + D * y1_0;
    out[2] = (1 - C) * x + C * y2_0;
}

static void test_bda(void) {
    blo_ctx *ctx = blo_ctx_new(0);
    int64_t n = BDA_N;
    const double x0[BDA_N] = {0, 2, -1, 0.5}, y10[BDA_N] = {0.3, -0.2, 1, 0},
                 y20[BDA_N] = {-1, 0, 0.5, -2};
    blo_tensor *xt = blo_from_f64(ctx, BLO_F64, 1, &n, x0);
    blo_tensor *yt[2] = {blo_from_f64(ctx, BLO_F64, 1, &n, y10),
                         blo_from_f64(ctx, BLO_F64, 1, &n, y20)};
    blo_problem p;
    memset(&p, 0, sizeof p);
    p.nx = 1;
    p.x = &xt;
    p.ny = 2;
    p.y = yt;
    p.upper = bda_upper;
    p.lower = bda_lower;
    p.x_lo = -INFINITY;
    p.x_hi = INFINITY;
    /* α = 0.9, s_u = 1: μ_0 s_u = 0.9 moves y2 most of the way to x in the first step and
     * Π_t (1 − μ_t s_u) ≈ 0.007 after T = 20, so bda's point is within ~1e-4 of e. The
     * unrolled objectives are quadratics of curvature ≈ 1 (bda) and ≈ 2 (rhg): SGD at 0.5
     * contracts by ≤ 0.5 per iteration, 80 iterations reach round-off. */
    blo_config c = blo_config_default();
    c.inner = blo_opt_sgd(0.5);
    c.inner_steps = 20;
    c.alpha = 0.9;
    c.upper_lr = 1.0;
    c.outer = blo_opt_sgd(0.5);
    const char *methods[2] = {"bda", "rhg"};
    for (int m = 0; m < 2; m++) {
        c.method = methods[m];
        blo_solver *s = make(&p, c);
        if (!s || run(s, 80, methods[m])) return;
        double far = 0, worst = 0, yfar = 0;
        for (int i = 0; i < BDA_N; i++) {
            double want[3], got[3] = {blo_tensor_get(blo_solver_x(s, 0), i),
                                      blo_tensor_get(blo_solver_y(s, 0), i),
                                      blo_tensor_get(blo_solver_y(s, 1), i)};
            bda_fixed_point(m == 0 ? c.alpha : 0, c.upper_lr, c.inner.lr, c.inner_steps, y10[i],
                            y20[i], want);
            for (int k = 0; k < 3; k++)
                worst = fmax(worst, fabs(got[k] - want[k]));
            far = fmax(far, fabs(got[0] - 1));
            yfar = fmax(yfar, fmax(fabs(got[1] - 1), fabs(got[2] - 1)));
        }
        printf("%s on the BDA toy: max|(x, y_T) − closed form| %.3g, max|x − e| %.3g, "
               "max|y_T − e| %.3g\n",
               methods[m], worst, far, yfar);
        TU_CHECK(worst < 1e-9,
                 "%s: (x, y_T) is %.3g from the closed-form fixed point of its "
                 "iteration",
                 methods[m], worst);
        /* bda: y2_T − x = C (y2_0 − x) with C = Π_t (1 − μ_t s_u) ≈ 0.007, so y2_T is within
         * 0.007·max|y2_0 − 1| ≈ 0.021 of e, and x within C²-order (~1e-4). */
        if (m == 0)
            TU_CHECK(far < 1e-3 && yfar < 0.025,
                     "bda must reach the all-ones solution: max|x − e| %.3g, max|y_T − e| %.3g",
                     far, yfar);
        else /* coordinate 3 has y2_0 = −2: rhg's x = (1 − 2)/2 = −0.5, 1.5 away */
            TU_CHECK(far > 1.4, "rhg must stop measurably away from e (max|x − e| %.3g)", far);
        blo_solver_free(s);
    }
    blo_ctx_free(ctx);
}

/* bda's reverse pass against central differences of its own unrolled objective F(x, y_T(x))
 * (exact for any T), on ridge regression, through the paths the toy does not take: a learned
 * step size s_l = x[1] (the UL part is divided by it and multiplied back), momentum acting on
 * the aggregated direction, and a learned start (dF/dy_0). */
static double bda_F(blo_solver *s) {
    double a[RIDGE_MAXD], b[1], *o[2] = {a, b};
    blo_solver_hypergrad(s, o);
    return s->last_upper;
}

static void test_bda_fd(void) {
    ridge r;
    ridge_init(&r, BLO_F64, 24, 16, 5, 0.3, 7);
    blo_ctx *ctx = blo_ctx_new(0);
    int64_t one = 1;
    double lr = 0.05;
    blo_tensor *xs[2] = {r.x0, blo_from_f64(ctx, BLO_F64, 1, &one, &lr)};
    blo_problem p = ridge_problem(&r);
    p.nx = 2;
    p.x = xs;
    blo_config c = blo_config_default();
    c.method = "bda";
    c.inner = blo_opt_sgd(lr);
    c.inner.kind = BLO_OPT_MOMENTUM;
    c.inner_steps = 8;
    c.lr_x = 1;
    c.alpha = 0.5;
    c.upper_lr = 0.05;
    c.init = BLO_INIT_LEARNED;
    c.init_opt = blo_opt_sgd(1e-3);
    blo_solver *s = make(&p, c);
    if (!s) return;
    double g0[RIDGE_MAXD], g1[1], *got[2] = {g0, g1};
    TU_CHECK(blo_solver_hypergrad(s, got) == BLO_OK, "bda: %s", blo_solver_error(s));
    const double eps = 1e-6;
    double worst = 0;
    for (int xi = 0; xi < 2; xi++) {
        blo_tensor *x = blo_solver_x(s, xi);
        for (int64_t j = 0; j < blo_tensor_numel(x); j++) {
            double v = blo_tensor_get(x, j);
            blo_tensor_set(x, j, v + eps);
            double fp = bda_F(s);
            blo_tensor_set(x, j, v - eps);
            double fm = bda_F(s);
            blo_tensor_set(x, j, v);
            double want = (fp - fm) / (2 * eps);
            worst = fmax(worst, fabs(got[xi][j] - want) / (1e-6 + fabs(want)));
        }
    }
    TU_CHECK(worst < 1e-6, "bda dF/dx (lr_x, momentum) off finite differences by %.3g", worst);
    { /* The learned step x[1] = inner.lr must give the run with the configured step. */
        blo_problem p1 = ridge_problem(&r);
        blo_config c1 = c;
        c1.lr_x = -1;
        blo_solver *s1 = make(&p1, c1);
        double h[RIDGE_MAXD], *o[1] = {h};
        if (s1 && blo_solver_hypergrad(s1, o) == BLO_OK) {
            double F1 = s1->last_upper, F0 = bda_F(s), e = 0;
            for (int j = 0; j < r.d; j++)
                e = fmax(e, fabs(h[j] - g0[j]));
            TU_CHECK(fabs(F1 - F0) < 1e-13 && e < 1e-12,
                     "bda with lr_x = inner.lr differs from bda without: F %.3g, dF/dx %.3g",
                     fabs(F1 - F0), e);
        }
        blo_solver_free(s1);
    }
    /* dF/dy_0 from one SGD step of the start (lr 1e-3), against differences in y_0. */
    double y0[RIDGE_MAXD], hy[RIDGE_MAXD], want[RIDGE_MAXD];
    blo_tensor *y0t = blo_solver_y0(s, 0);
    blo_tensor_to_f64(y0t, y0);
    for (int j = 0; j < r.d; j++) {
        blo_tensor_set(y0t, j, y0[j] + eps);
        double fp = bda_F(s);
        blo_tensor_set(y0t, j, y0[j] - eps);
        double fm = bda_F(s);
        blo_tensor_set(y0t, j, y0[j]);
        want[j] = (fp - fm) / (2 * eps);
    }
    TU_CHECK(blo_solver_step(s, NULL) == BLO_OK, "bda step: %s", blo_solver_error(s));
    worst = 0;
    for (int j = 0; j < r.d; j++) {
        hy[j] = (y0[j] - blo_tensor_get(y0t, j)) / c.init_opt.lr;
        worst = fmax(worst, fabs(hy[j] - want[j]) / (1e-4 + fabs(want[j])));
    }
    TU_CHECK(worst < 1e-5, "bda dF/dy_0 off finite differences by %.3g", worst);
    blo_solver_free(s);
    blo_ctx_free(ctx);
    ridge_free(&r);
}

/* ---- Ridge regression: bome and soba against the minimizer of Φ(x) = F(x, y*(x)) --------- */

/* Φ(x) with y*(x) in closed form. */
static double ridge_phi(const ridge *r, const double *x) {
    double hg[RIDGE_MAXD], ys[RIDGE_MAXD];
    ridge_exact(r, x, hg, ys, NULL);
    double F = 0;
    for (int k = 0; k < r->nv; k++) {
        double s = -r->bvd[k];
        for (int i = 0; i < r->d; i++)
            s += r->Avd[k * r->d + i] * ys[i];
        F += 0.5 * s * s;
    }
    for (int i = 0; i < r->d; i++)
        F += 0.5 * r->c * x[i] * x[i];
    return F;
}

/* x* by gradient descent (step 0.3) with the closed-form hypergradient, to ‖∇Φ‖ < 1e-13. */
static void ridge_argmin(const ridge *r, double *x) {
    blo_tensor_to_f64(r->x0, x);
    double hg[RIDGE_MAXD], ys[RIDGE_MAXD];
    for (int it = 0; it < 200000; it++) {
        ridge_exact(r, x, hg, ys, NULL);
        double n2 = 0;
        for (int i = 0; i < r->d; i++)
            n2 += hg[i] * hg[i];
        if (sqrt(n2) < 1e-13) return;
        for (int i = 0; i < r->d; i++)
            x[i] -= 0.3 * hg[i];
    }
    TU_CHECK(0, "gradient descent on the closed form did not converge");
}

static double dist(int d, const double *a, const blo_tensor *b) {
    double s = 0;
    for (int i = 0; i < d; i++)
        s += (a[i] - blo_tensor_get(b, i)) * (a[i] - blo_tensor_get(b, i));
    return sqrt(s);
}

static void test_ridge(void) {
    ridge r;
    /* c = 1 keeps x* where AᵀA + diag(x) is well conditioned (with c = 0.3 the minimizer
     * drives a penalty negative, close to a singular LL Hessian). */
    ridge_init(&r, BLO_F64, 24, 16, 5, 1.0, 7);
    int d = r.d;
    double x0[RIDGE_MAXD], xs[RIDGE_MAXD], hg[RIDGE_MAXD], ys[RIDGE_MAXD], L;
    blo_tensor_to_f64(r.x0, x0);
    ridge_exact(&r, x0, hg, ys, &L);
    ridge_argmin(&r, xs);
    double phi0 = ridge_phi(&r, x0), phis = ridge_phi(&r, xs);
    double d0 = 0;
    for (int i = 0; i < d; i++)
        d0 += (x0[i] - xs[i]) * (x0[i] - xs[i]);
    d0 = sqrt(d0);
    printf("ridge: Φ(x0) %.8f, Φ(x*) %.8f, ‖x0 − x*‖ %.4f\n", phi0, phis, d0);
    blo_problem p = ridge_problem(&r);

    /* soba: ρ = 1/L for y and v; x by SGD. With exact gradients SOBA's fixed point is exactly
     * (y*(x*), H⁻¹∇_y F, x*), so it converges to x* itself, linearly for small steps
     * (measured: 7e-6 after 100 iterations, 3e-11 after 200; 400 reach round-off). */
    {
        blo_config c = blo_config_default();
        c.method = "soba";
        c.inner = blo_opt_sgd(1.0 / L);
        c.outer = blo_opt_sgd(0.5);
        blo_solver *s = make(&p, c);
        if (s && !run(s, 400, "soba")) {
            double dx = dist(d, xs, blo_solver_x(s, 0));
            double x[RIDGE_MAXD];
            blo_tensor_to_f64(blo_solver_x(s, 0), x);
            double gap = ridge_phi(&r, x) - phis;
            printf("soba: ‖x − x*‖ %.3g, Φ(x) − Φ(x*) %.3g\n", dx, gap);
            TU_CHECK(dx < 1e-8 && gap < 1e-12, "soba: ‖x − x*‖ = %.3g, Φ gap %.3g", dx, gap);
        }
        blo_solver_free(s);
    }

    /* bome: joint SGD on (x, y) with step ξ; θ_T = 10 inner steps at 1/L. BOME has no exact
     * fixed point: as y nears y*(x), λ∇q removes from ∇F only its component along the current
     * ∇q and adds η∇q, so (x, y) settles in a neighbourhood of (x*, y*(x*)) whose size
     * shrinks with ξ (the paper's guarantee is for ξ → 0). Measured: Φ gap 0.013 at ξ = 0.01
     * and 0.006 at ξ = 0.005, out of Φ(x0) − Φ(x*) = 3.58; ‖x − x*‖ 0.11 out of 2.44. So:
     * below 1 % of the initial gap and 8 % of the initial distance at ξ = 0.01, and a smaller
     * gap at ξ/2. */
    {
        blo_config c = blo_config_default();
        c.method = "bome";
        c.inner = blo_opt_sgd(1.0 / L);
        c.inner_steps = 10;
        c.eta = 0.5;
        double gap[2] = {INFINITY, INFINITY};
        for (int k = 0; k < 2; k++) {
            c.outer = blo_opt_sgd(k == 0 ? 0.01 : 0.005);
            blo_solver *s = make(&p, c);
            if (s && !run(s, k == 0 ? 800 : 1600, "bome")) { /* settled by then */
                double x[RIDGE_MAXD];
                blo_tensor_to_f64(blo_solver_x(s, 0), x);
                double dx = dist(d, xs, blo_solver_x(s, 0));
                gap[k] = ridge_phi(&r, x) - phis;
                printf("bome, ξ = %g: ‖x − x*‖ %.3g, Φ(x) − Φ(x*) %.3g\n", c.outer.lr, dx, gap[k]);
                if (k == 0)
                    TU_CHECK(dx < 0.08 * d0 && gap[k] < 0.01 * (phi0 - phis),
                             "bome: ‖x − x*‖ = %.3g (start %.3g), Φ gap %.3g (start %.3g)", dx, d0,
                             gap[k], phi0 - phis);
            }
            blo_solver_free(s);
        }
        TU_CHECK(gap[1] < 0.6 * gap[0], "bome: halving ξ must shrink the Φ gap: %.3g -> %.3g",
                 gap[0], gap[1]);
    }

    /* soba's step by hand at a given (x, y, v):
     *   D_x = c x − y ⊙ v  (∂F/∂x = c x, ∇²_xy f v = ∇_x Σ x_i y_i v_i = y ⊙ v),
     *   y' = y − ρ (Aᵀ(Ay − b) + x ⊙ y),   v' = v − ρ ((AᵀA + diag x) v − A_vᵀ(A_v y − b_v)). */
    {
        blo_config c = blo_config_default();
        c.method = "soba";
        c.inner = blo_opt_sgd(0.05);
        blo_solver *s = make(&p, c);
        if (s) {
            double y[RIDGE_MAXD], v[RIDGE_MAXD], hx[RIDGE_MAXD], *o[1] = {hx};
            for (int i = 0; i < d; i++) {
                y[i] = 0.3 * i - 0.5;
                v[i] = 0.1 + 0.2 * (i % 3) - 0.15 * i;
                blo_tensor_set(s->y[0], i, y[i]);
                blo_tensor_set(s->ms[0], i, v[i]);
            }
            TU_CHECK(blo_solver_hypergrad(s, o) == BLO_OK, "soba: %s", blo_solver_error(s));
            double want_hx[RIDGE_MAXD], want_y[RIDGE_MAXD], want_v[RIDGE_MAXD], rho = c.inner.lr;
            double res[64], resv[64];
            for (int k = 0; k < r.n; k++) {
                res[k] = -r.bd[k];
                for (int i = 0; i < d; i++)
                    res[k] += r.Ad[k * d + i] * y[i];
            }
            for (int k = 0; k < r.nv; k++) {
                resv[k] = -r.bvd[k];
                for (int i = 0; i < d; i++)
                    resv[k] += r.Avd[k * d + i] * y[i];
            }
            for (int i = 0; i < d; i++) {
                double gy = x0[i] * y[i], hv = x0[i] * v[i], gF = 0;
                for (int k = 0; k < r.n; k++) {
                    gy += r.Ad[k * d + i] * res[k];
                    double av = 0;
                    for (int j = 0; j < d; j++)
                        av += r.Ad[k * d + j] * v[j];
                    hv += r.Ad[k * d + i] * av;
                }
                for (int k = 0; k < r.nv; k++)
                    gF += r.Avd[k * d + i] * resv[k];
                want_hx[i] = r.c * x0[i] - y[i] * v[i];
                want_y[i] = y[i] - rho * gy;
                want_v[i] = v[i] - rho * (hv - gF);
            }
            double ex = 0, ey = 0, ev = 0;
            for (int i = 0; i < d; i++) {
                ex = fmax(ex, fabs(hx[i] - want_hx[i]));
                ey = fmax(ey, fabs(blo_tensor_get(s->y[0], i) - want_y[i]));
                ev = fmax(ev, fabs(blo_tensor_get(s->ms[0], i) - want_v[i]));
            }
            TU_CHECK(ex < 1e-13 && ey < 1e-13 && ev < 1e-13,
                     "soba's step vs the hand computation: D_x %.3g, y %.3g, v %.3g", ex, ey, ev);
            blo_solver_free(s);
        }
    }
    ridge_free(&r);
}

/* ---- Checkpoint / resume: halfway, saved, loaded into a fresh solver, finished ----------- */

static int same_tensors(int n, blo_tensor *const *a, blo_tensor *const *b) {
    for (int i = 0; i < n; i++) {
        int64_t m = blo_tensor_numel(a[i]);
        if (memcmp(blo_tensor_data(a[i]), blo_tensor_data(b[i]),
                   (size_t)m * blo_dtype_size(blo_tensor_dtype(a[i]))))
            return 0;
    }
    return 1;
}

static void check_resume(const blo_problem *p, blo_config c, int iters, const char *path) {
    blo_solver *a = make(p, c), *b = make(p, c), *r = make(p, c);
    if (!a || !b || !r) return;
    int bad = run(a, iters, c.method) || run(b, iters / 2, c.method);
    TU_CHECK(!bad && blo_solver_save(b, path) == BLO_OK, "%s: save: %s", c.method,
             blo_solver_error(b));
    TU_CHECK(blo_solver_load(r, path) == BLO_OK, "%s: load: %s", c.method, blo_solver_error(r));
    if (!bad) bad = run(r, iters - iters / 2, c.method);
    int same = !bad && same_tensors(a->nx, a->x, r->x) && same_tensors(a->ny, a->y, r->y) &&
               same_tensors(a->ny, a->y0, r->y0);
    if (a->m->n_state_groups)
        same = same && same_tensors(a->m->n_state_groups * a->ny, a->ms, r->ms);
    TU_CHECK(same, "%s: the resumed run differs from the uninterrupted one", c.method);
    /* The state really moved (a checkpoint of an idle state would prove nothing). */
    TU_CHECK(!same_tensors(a->nx, a->x, b->x) || iters / 2 == iters,
             "%s: x did not move in the second half", c.method);
    if (a->m->n_state_groups) {
        double n2 = 0;
        for (int i = 0; i < a->ny; i++)
            n2 += blo_tensor_get(a->ms[i], 0) * blo_tensor_get(a->ms[i], 0);
        TU_CHECK(n2 > 0, "%s: the method state is still zero", c.method);
    }
    blo_solver_free(a);
    blo_solver_free(b);
    blo_solver_free(r);
    remove(path);
}

static void test_resume(const char *path) {
    ridge rb;
    ridge_init(&rb, BLO_F64, 24, 16, 5, 0.3, 11);
    rb.minibatch = 8; /* the lower objective samples rows through the solver's RNG */
    blo_problem p = ridge_problem(&rb);
    blo_config c = blo_config_default();
    c.inner = blo_opt_sgd(0.2);
    c.inner_steps = 5;
    c.outer = blo_opt_adam(0.05);
    c.seed = 5;
    c.method = "bda";
    c.init = BLO_INIT_LEARNED; /* y_0's Adam moments travel too */
    c.init_opt = blo_opt_adam(0.01);
    check_resume(&p, c, 10, path);
    c.init = BLO_INIT_FIXED;
    c.method = "bome";
    check_resume(&p, c, 10, path);
    c.method = "soba"; /* v lives in the method state */
    check_resume(&p, c, 10, path);
    ridge_free(&rb);

    sin_toy t;
    sin_toy_init(&t, 2, 1);
    blo_config s = sin_config("iaptt", 0.1);
    s.init_opt = blo_opt_adam(0.05);
    check_resume(&t.p, s, 10, path);
    blo_ctx_free(t.ctx);
}

/* ---- Settings a method cannot use are refused, with the setting named ------------------ */

static void test_refusals(void) {
    ridge r;
    ridge_init(&r, BLO_F64, 24, 16, 5, 0.3, 3);
    blo_problem p = ridge_problem(&r);
    blo_config c = blo_config_default();
    c.method = "iaptt";
    tu_expect_refused(&p, c, "init = learned");
    c.init = BLO_INIT_LEARNED;
    c.inner_steps = 0;
    tu_expect_refused(&p, c, "inner step");
    c = blo_config_default();
    c.method = "bda";
    c.alpha = 1.5;
    tu_expect_refused(&p, c, "alpha");
    c.alpha = 0.5;
    c.upper_lr = 0;
    tu_expect_refused(&p, c, "upper_lr");
    c = blo_config_default();
    c.method = "soba";
    c.inner = blo_opt_adam(0.01);
    tu_expect_refused(&p, c, "sgd");
    c.inner = blo_opt_sgd(0.01);
    c.init = BLO_INIT_LEARNED;
    tu_expect_refused(&p, c, "learned");
    c = blo_config_default();
    c.method = "bome";
    c.eta = 0;
    tu_expect_refused(&p, c, "eta");
    c.eta = 0.5;
    c.inner_steps = 0;
    tu_expect_refused(&p, c, "inner step");
    ridge_free(&r);
}

int main(void) {
    char path[64];
    snprintf(path, sizeof path, "ckpt_toys_%d.bin", (int)getpid());
    test_iaptt(path);
    test_bda();
    test_bda_fd();
    test_ridge();
    test_resume(path);
    test_refusals();
    remove(path);
    return tu_finish("test_hypergrad_toys");
}
