/* test_hypergrad_defect6.c — two methods whose earlier tests only followed their own formula,
 * checked here against oracles written in plain double arithmetic:
 *   - bome: one outer step (the hypergradient d_x, the new y, the new x under an SGD outer
 *     step) computed by hand on a 2-d quadratic, once where λ is clipped to 0 and once where
 *     it is not (src/hypergrad/bome.c's maths header);
 *   - darts: a lower level that is not quadratic in y (softplus), so the finite-difference
 *     mixed product carries an O(η²) error: darts against the exact derivative of the one-step
 *     unrolled objective F(x, y − ξ∇_y f(x, y)) (analytic mixed product), with the ratio of
 *     the errors at radius η and η/2 near 4, and against the central-difference formula
 *     itself to round-off. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define N 2 /* every x and y here has two entries */

static blo_tensor *vec(blo_ctx *ctx, const double *v) {
    int64_t n = N;
    return blo_from_f64(ctx, BLO_F64, 1, &n, v);
}

static double dot(const double *a, const double *b) {
    double s = 0;
    for (int i = 0; i < N; i++)
        s += a[i] * b[i];
    return s;
}

static double err_norm(const double *a, const double *b) {
    double s = 0;
    for (int i = 0; i < N; i++)
        s += (a[i] - b[i]) * (a[i] - b[i]);
    return sqrt(s);
}

/* The upper level of both problems, F = ½ ‖y − t‖² + ½ c ‖x‖², and the data they own. */
typedef struct upper {
    double t[N], c;
    blo_ctx *ctx;
    blo_tensor *tt;
} upper;

static blo_tensor *upper_F(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                           const blo_eval *ev, void *user) {
    (void)ev;
    const upper *u = user; /* the first member of quad and soft */
    blo_tensor *r = blo_sub(ctx, y[0], u->tt);
    return blo_add(ctx, blo_scale(ctx, blo_dot(ctx, r, r), 0.5),
                   blo_scale(ctx, blo_dot(ctx, x[0], x[0]), 0.5 * u->c));
}

/* The problem with x = x0, y = y0 (tensors in u->ctx) and the given lower level; user is the
 * problem's struct, whose first member is u. */
static blo_problem problem(upper *u, const double *x0, const double *y0, blo_tensor **tx,
                           blo_tensor **ty, blo_objective_fn lower, void *user) {
    blo_problem p;
    memset(&p, 0, sizeof p);
    u->tt = vec(u->ctx, u->t);
    *tx = vec(u->ctx, x0);
    *ty = vec(u->ctx, y0);
    p.nx = p.ny = 1;
    p.x = tx;
    p.y = ty;
    p.upper = upper_F;
    p.lower = lower;
    p.user = user;
    p.x_lo = -INFINITY;
    p.x_hi = INFINITY;
    return p;
}

/* ---- bome on f = ½ Σ a_i (y_i − x_i)² ------------------------------------------------------ */

typedef struct quad {
    upper u;
    double a[N];
    blo_tensor *ta;
} quad;

static blo_tensor *quad_lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                              const blo_eval *ev, void *user) {
    (void)ev;
    quad *q = user;
    blo_tensor *r = blo_sub(ctx, y[0], x[0]);
    return blo_scale(ctx, blo_sum_all(ctx, blo_mul(ctx, q->ta, blo_mul(ctx, r, r))), 0.5);
}

/* The step by hand: d = (d_x, d_y), the unclipped λ into *raw. */
static void bome_by_hand(const quad *q, const double *x, const double *y, double alpha, int T,
                         double eta, double *dx, double *dy, double *raw) {
    double th[N], gFx[N], gFy[N], gqx[N], gqy[N];
    for (int i = 0; i < N; i++) {
        th[i] = y[i];
        for (int k = 0; k < T; k++)
            th[i] -= alpha * q->a[i] * (th[i] - x[i]);
        gFx[i] = q->u.c * x[i];
        gFy[i] = y[i] - q->u.t[i];
        gqy[i] = q->a[i] * (y[i] - x[i]);                             /* ∇_y f(x, y) */
        gqx[i] = -q->a[i] * (y[i] - x[i]) + q->a[i] * (th[i] - x[i]); /* ∇_x f(y) − ∇_x f(θ_T) */
    }
    double nq2 = dot(gqx, gqx) + dot(gqy, gqy), fq = dot(gFx, gqx) + dot(gFy, gqy);
    *raw = (eta * nq2 - fq) / nq2;
    double lambda = fmax(*raw, 0.0);
    for (int i = 0; i < N; i++) {
        dx[i] = gFx[i] + lambda * gqx[i];
        dy[i] = gFy[i] + lambda * gqy[i];
    }
}

static void test_bome(void) {
    quad q = {{{-1.0, -0.6}, 0.3, blo_ctx_new(0), NULL}, {1.0, 2.0}, NULL};
    q.ta = vec(q.u.ctx, q.a);
    double x0[N] = {0.8, -0.5}, y0[N] = {1.5, 0.7};
    blo_tensor *tx, *ty;
    blo_problem p = problem(&q.u, x0, y0, &tx, &ty, quad_lower, &q);

    /* η = 0.05: ⟨∇F, ∇q⟩ > η‖∇q‖², λ clipped to 0 (d = ∇F); η = 3: λ > 0. */
    const double etas[2] = {0.05, 3.0};
    for (int k = 0; k < 2; k++) {
        blo_config c = blo_config_default();
        c.method = "bome";
        c.eta = etas[k];
        c.inner = blo_opt_sgd(0.2);
        c.inner_steps = 3;
        c.outer = blo_opt_sgd(0.1);
        double dx[N], dy[N], raw, want_y[N], want_x[N];
        bome_by_hand(&q, x0, y0, c.inner.lr, c.inner_steps, c.eta, dx, dy, &raw);
        TU_CHECK(k == 0 ? raw < -0.1 : raw > 0.1, "bome η=%g: λ before the clip %g is not %s",
                 c.eta, raw, k == 0 ? "negative (clip active)" : "positive (no clip)");
        for (int i = 0; i < N; i++) {
            want_y[i] = y0[i] - c.outer.lr * dy[i];
            want_x[i] = x0[i] - c.outer.lr * dx[i];
        }
        char err[512];
        /* The hypergradient d_x, and y moved by −ξ d_y. */
        blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
        TU_CHECK(s != NULL, "bome solver: %s", err);
        if (!s) continue;
        double hx[N], *o[1] = {hx}, got_y[N];
        TU_CHECK(blo_solver_hypergrad(s, o) == BLO_OK, "bome: %s", blo_solver_error(s));
        blo_tensor_to_f64(blo_solver_y(s, 0), got_y);
        TU_CHECK(tu_max_rel(N, hx, dx) < 1e-13, "bome η=%g (λ %s): d_x off by %.3g", c.eta,
                 k == 0 ? "clipped" : "free", tu_max_rel(N, hx, dx));
        TU_CHECK(tu_max_rel(N, got_y, want_y) < 1e-13, "bome η=%g: new y off by %.3g", c.eta,
                 tu_max_rel(N, got_y, want_y));
        blo_solver_free(s);
        /* One outer step with SGD: the paper's joint update of (x, y). */
        s = blo_solver_new(&p, &c, err, sizeof err);
        TU_CHECK(s != NULL, "bome solver: %s", err);
        if (!s) continue;
        double got_x[N];
        TU_CHECK(blo_solver_step(s, NULL) == BLO_OK, "bome step: %s", blo_solver_error(s));
        blo_tensor_to_f64(blo_solver_x(s, 0), got_x);
        blo_tensor_to_f64(blo_solver_y(s, 0), got_y);
        TU_CHECK(tu_max_rel(N, got_x, want_x) < 1e-13, "bome η=%g step: new x off by %.3g", c.eta,
                 tu_max_rel(N, got_x, want_x));
        TU_CHECK(tu_max_rel(N, got_y, want_y) < 1e-13, "bome η=%g step: new y off by %.3g", c.eta,
                 tu_max_rel(N, got_y, want_y));
        blo_solver_free(s);
    }
    blo_ctx_free(q.u.ctx);
}

/* ---- darts on f = Σ_k softplus(x_k (A y)_k) + ½ μ ‖y‖² ------------------------------------- */

typedef struct soft {
    upper u;
    double A[N * N], mu;
    blo_tensor *tA;
} soft;

static blo_tensor *soft_lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                              const blo_eval *ev, void *user) {
    (void)ev;
    soft *m = user;
    blo_tensor *z = blo_mul(ctx, x[0], blo_matmul(ctx, m->tA, y[0]));
    return blo_add(ctx, blo_sum_all(ctx, blo_softplus(ctx, z)),
                   blo_scale(ctx, blo_dot(ctx, y[0], y[0]), 0.5 * m->mu));
}

static double sigm(double u) {
    return 1 / (1 + exp(-u));
}

static void matvec(const soft *m, const double *y, double *z) {
    for (int k = 0; k < N; k++)
        z[k] = m->A[k * N] * y[0] + m->A[k * N + 1] * y[1];
}

/* ∇_y f(x, y) = Aᵀ (x ⊙ σ(x ⊙ Ay)) + μ y */
static void soft_grad_y(const soft *m, const double *x, const double *y, double *g) {
    double z[N], w[N];
    matvec(m, y, z);
    for (int k = 0; k < N; k++)
        w[k] = x[k] * sigm(x[k] * z[k]);
    for (int i = 0; i < N; i++)
        g[i] = m->A[i] * w[0] + m->A[N + i] * w[1] + m->mu * y[i];
}

/* ∇_x f(x, y)_k = (Ay)_k σ(x_k (Ay)_k) */
static void soft_grad_x(const soft *m, const double *x, const double *y, double *g) {
    double z[N];
    matvec(m, y, z);
    for (int k = 0; k < N; k++)
        g[k] = z[k] * sigm(x[k] * z[k]);
}

/* The DARTS quantities at y = y_T: the exact derivative of F(x, y − ξ∇_y f(x, y)) in x (y held
 * fixed; the mixed product ∇²_xy f · v analytically), and the central-difference version with
 * radius η (ε = η/‖v‖). */
static void darts_by_hand(const soft *m, const double *x, const double *y0, double xi, int T,
                          double eta, double *exact, double *fd) {
    double y[N], g[N], yv[N], v[N], z[N], Av[N];
    memcpy(y, y0, sizeof y);
    for (int k = 0; k < T; k++) {
        soft_grad_y(m, x, y, g);
        for (int i = 0; i < N; i++)
            y[i] -= xi * g[i];
    }
    soft_grad_y(m, x, y, g);
    for (int i = 0; i < N; i++) {
        yv[i] = y[i] - xi * g[i];
        v[i] = yv[i] - m->u.t[i];
    }
    matvec(m, y, z);
    matvec(m, v, Av);
    for (int k = 0; k < N; k++) { /* d/dy [z_k σ(x_k z_k)] · v = (σ + x_k z_k σ(1 − σ)) (Av)_k */
        double s = sigm(x[k] * z[k]);
        exact[k] = m->u.c * x[k] - xi * (s + x[k] * z[k] * s * (1 - s)) * Av[k];
    }
    double eps = eta / sqrt(dot(v, v)), yp[N], ym[N], gp[N], gm[N];
    for (int i = 0; i < N; i++) {
        yp[i] = y[i] + eps * v[i];
        ym[i] = y[i] - eps * v[i];
    }
    soft_grad_x(m, x, yp, gp);
    soft_grad_x(m, x, ym, gm);
    for (int k = 0; k < N; k++)
        fd[k] = m->u.c * x[k] - xi * (gp[k] - gm[k]) / (2 * eps);
}

static void test_darts(void) {
    soft m = {{{0.3, 2.5}, 0.1, blo_ctx_new(0), NULL}, {1.0, 0.4, -0.3, 0.8}, 0.5, NULL};
    int64_t sa[2] = {N, N};
    m.tA = blo_from_f64(m.u.ctx, BLO_F64, 2, sa, m.A);
    double x0[N] = {0.7, -1.2}, y0[N] = {0.9, -0.6};
    blo_tensor *tx, *ty;
    blo_problem p = problem(&m.u, x0, y0, &tx, &ty, soft_lower, &m);

    blo_config c = blo_config_default();
    c.method = "darts";
    c.inner = blo_opt_sgd(0.3);
    c.inner_steps = 2;
    const double radii[3] = {0.2, 0.1, 0.05};
    double errs[3], exact[N];
    for (int k = 0; k < 3; k++) {
        c.fd_radius = radii[k];
        double fd[N], hx[N], *o[1] = {hx};
        darts_by_hand(&m, x0, y0, c.inner.lr, c.inner_steps, c.fd_radius, exact, fd);
        char err[512];
        blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
        TU_CHECK(s != NULL, "darts solver: %s", err);
        if (!s) {
            errs[k] = NAN;
            continue;
        }
        TU_CHECK(blo_solver_hypergrad(s, o) == BLO_OK, "darts: %s", blo_solver_error(s));
        blo_solver_free(s);
        TU_CHECK(tu_max_rel(N, hx, fd) < 1e-12, "darts η=%g: off its central difference by %.3g",
                 c.fd_radius, tu_max_rel(N, hx, fd));
        errs[k] = err_norm(hx, exact) / sqrt(dot(exact, exact));
    }
    /* Not quadratic in y: the difference is not exact, and its error is O(η²). */
    TU_CHECK(errs[2] > 1e-6 && errs[2] < 1e-3,
             "darts η=0.05: relative error %.3g vs the exact "
             "mixed product, expected between 1e-6 and 1e-3",
             errs[2]);
    for (int k = 0; k < 2; k++) {
        double ratio = errs[k] / errs[k + 1];
        TU_CHECK(ratio > 3.8 && ratio < 4.2,
                 "darts: error ratio at η=%g and η=%g is %.4g (errors %.3g, %.3g), not ≈ 4 (O(η²))",
                 radii[k], radii[k + 1], ratio, errs[k], errs[k + 1]);
    }
    blo_ctx_free(m.u.ctx);
}

int main(void) {
    test_bome();
    test_darts();
    return tu_finish("test_hypergrad_defect6");
}
