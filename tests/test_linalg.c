/* test_linalg.c — the matrix-free solvers of blo/linalg.h on small systems with closed-form
 * solutions: CG and the Neumann series on A v = b (A symmetric positive definite, v* chosen
 * and b = A v*), the fixed-point iteration on u = M u + c (M a contraction, c = u* − M u*)
 * plain and with Anderson acceleration, which must need fewer iterations; and the failures
 * (indefinite A, α too large, an expanding map). The vector is a list of two tensors (3 + 1
 * elements), so the list algebra is exercised too. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#define N 4

typedef struct mat {
    double a[N][N];
    double shift; /* out = A in + shift (an affine map, for fixed points) */
    const double *c;
    int calls;
} mat;

static void to_vec(blo_tensor *const *t, double *v) {
    blo_tensor_to_f64(t[0], v);
    blo_tensor_to_f64(t[1], v + 3);
}

static blo_status apply(blo_ctx *ctx, blo_tensor *const *in, blo_tensor *const *out, void *user) {
    mat *m = user;
    double v[N], w[N];
    to_vec(in, v);
    for (int i = 0; i < N; i++) {
        w[i] = m->c ? m->c[i] : 0;
        for (int j = 0; j < N; j++)
            w[i] += m->a[i][j] * v[j];
    }
    int64_t s0 = 3, s1 = 1;
    blo_tensor *a = blo_from_f64(ctx, BLO_F64, 1, &s0, w),
               *b = blo_from_f64(ctx, BLO_F64, 1, &s1, w + 3);
    if (!a || !b) return blo_ctx_status(ctx);
    blo_copy_into(out[0], a);
    blo_copy_into(out[1], b);
    m->calls++;
    return BLO_OK;
}

static void make_vec(blo_ctx *c, const double *v, blo_tensor **t) {
    int64_t s0 = 3, s1 = 1;
    t[0] = blo_from_f64(c, BLO_F64, 1, &s0, v);
    t[1] = blo_from_f64(c, BLO_F64, 1, &s1, v + 3);
}

/* A = Qᵀ diag(λ) Q-like SPD matrix: a fixed well-conditioned one. */
static const double SPD[N][N] = {
    {4, 1, 0, 0.5}, {1, 3, 0.5, 0}, {0, 0.5, 2, 0.25}, {0.5, 0, 0.25, 1.5}};
static const double VSTAR[N] = {1, -2, 0.5, 3};

static void check_vec(blo_tensor *const *t, const double *want, double tol, const char *what) {
    double v[N];
    to_vec(t, v);
    for (int i = 0; i < N; i++)
        TU_CHECK(fabs(v[i] - want[i]) <= tol, "%s: element %d is %.15g, want %.15g", what, i, v[i],
                 want[i]);
}

static void rhs(const double a[N][N], const double *v, double *b) {
    for (int i = 0; i < N; i++) {
        b[i] = 0;
        for (int j = 0; j < N; j++)
            b[i] += a[i][j] * v[j];
    }
}

static void test_cg(void) {
    blo_ctx *c = blo_ctx_new(0);
    mat m = {{{0}}, 0, NULL, 0};
    memcpy(m.a, SPD, sizeof SPD);
    double bv[N], zero[N] = {0}, start[N] = {5, 5, -5, 1};
    rhs(SPD, VSTAR, bv);
    blo_tensor *b[2], *x[2];
    make_vec(c, bv, b);
    make_vec(c, zero, x);
    blo_linop A = {2, apply, &m};
    blo_linalg_opts o = {50, 1e-12, 0, 0, 0};
    blo_linalg_result r;
    size_t before = blo_ctx_bytes(c);
    TU_CHECK(blo_linalg_cg(c, &A, b, x, &o, &r) == BLO_OK, "cg: %s", blo_ctx_error(c));
    check_vec(x, VSTAR, 1e-10, "cg");
    /* In exact arithmetic CG ends in at most N iterations. */
    TU_CHECK(r.converged && r.iters <= N + 1 && m.calls == r.iters,
             "cg: %d iterations, %d products, residual %g", r.iters, m.calls, r.residual);
    TU_CHECK(tu_close(r.residual0,
                      sqrt(bv[0] * bv[0] + bv[1] * bv[1] + bv[2] * bv[2] + bv[3] * bv[3]), 1e-14,
                      0),
             "cg: residual0 = ‖b‖ from a zero start");
    TU_CHECK(blo_ctx_bytes(c) == before, "cg: temporaries released (%zu -> %zu bytes)", before,
             blo_ctx_bytes(c));
    /* From a non-zero start, and one iteration only: residual reported, not converged. */
    blo_tensor *x2[2];
    make_vec(c, start, x2);
    o.max_iter = 1;
    TU_CHECK(blo_linalg_cg(c, &A, b, x2, &o, &r) == BLO_OK && !r.converged && r.iters == 1 &&
                 r.residual < r.residual0,
             "cg: one iteration reduces the residual (%g -> %g)", r.residual0, r.residual);
    o.max_iter = 50;
    TU_CHECK(blo_linalg_cg(c, &A, b, x2, &o, &r) == BLO_OK, "cg from a start");
    check_vec(x2, VSTAR, 1e-10, "cg from a start");
    /* Negative definite: refused at the first iteration with the curvature. */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            m.a[i][j] = -SPD[i][j];
    make_vec(c, zero, x);
    TU_CHECK(blo_linalg_cg(c, &A, b, x, &o, &r) == BLO_ERR_NUMERIC && r.curvature < 0 &&
                 strstr(blo_ctx_error(c), "positive definite"),
             "cg on -A: %s (curvature %g)", blo_ctx_error(c), r.curvature);
    blo_ctx_free(c);
}

static void test_neumann(void) {
    blo_ctx *c = blo_ctx_new(0);
    mat m = {{{0}}, 0, NULL, 0};
    memcpy(m.a, SPD, sizeof SPD);
    double bv[N];
    rhs(SPD, VSTAR, bv);
    blo_tensor *b[2], *x[2];
    make_vec(c, bv, b);
    make_vec(c, bv, x);
    blo_linop A = {2, apply, &m};
    /* λ_max <= 5.5 (Gershgorin), λ_min >= 0.75: α = 0.3 contracts by at most 0.775. */
    blo_linalg_opts o = {200, 0, 0.3, 0, 0};
    blo_linalg_result r;
    TU_CHECK(blo_linalg_neumann(c, &A, b, x, &o, &r) == BLO_OK, "neumann: %s", blo_ctx_error(c));
    check_vec(x, VSTAR, 1e-9, "neumann K=200");
    TU_CHECK(r.iters == 200 && m.calls == 200 && r.residual < 1e-12 * r.residual0,
             "neumann: %d terms, last %g", r.iters, r.residual);
    /* Few terms: far from the solution, and the error shrinks with K. */
    double e_prev = INFINITY;
    for (int K = 2; K <= 32; K *= 4) {
        o.max_iter = K;
        blo_linalg_neumann(c, &A, b, x, &o, &r);
        double v[N], e = 0;
        to_vec(x, v);
        for (int i = 0; i < N; i++)
            e = fmax(e, fabs(v[i] - VSTAR[i]));
        TU_CHECK(e < e_prev, "neumann: the error shrinks with K (K=%d: %g, before %g)", K, e,
                 e_prev);
        e_prev = e;
    }
    o.alpha = 1.0; /* beyond 2/λ_max */
    o.max_iter = 200;
    TU_CHECK(blo_linalg_neumann(c, &A, b, x, &o, &r) == BLO_ERR_NUMERIC &&
                 strstr(blo_ctx_error(c), "alpha"),
             "neumann with α too large: %s", blo_ctx_error(c));
    blo_ctx_free(c);
}

static void test_fixed_point(void) {
    /* M: a non-symmetric contraction with spectral radius near 0.95 (slow for Picard). */
    mat m = {{{0.6, 0.3, 0, 0}, {-0.3, 0.6, 0.1, 0}, {0, 0.1, 0.9, 0.05}, {0.05, 0, 0, 0.8}},
             0,
             NULL,
             0};
    double cv[N], mu[N];
    rhs(m.a, VSTAR, mu);
    for (int i = 0; i < N; i++)
        cv[i] = VSTAR[i] - mu[i]; /* u* = M u* + c */
    m.c = cv;
    int iters[2];
    for (int acc = 0; acc < 2; acc++) {
        blo_ctx *c = blo_ctx_new(0);
        double zero[N] = {0};
        blo_tensor *u[2];
        make_vec(c, zero, u);
        blo_linop G = {2, apply, &m};
        blo_linalg_opts o = {5000, 1e-11, 0, acc ? 5 : 0, 1.0};
        blo_linalg_result r;
        size_t before = blo_ctx_bytes(c);
        TU_CHECK(blo_linalg_fixed_point(c, &G, u, &o, &r) == BLO_OK, "fixed point: %s",
                 blo_ctx_error(c));
        check_vec(u, VSTAR, 1e-9, acc ? "anderson" : "picard");
        TU_CHECK(r.converged && r.residual <= 1e-11, "fixed point converged: %g after %d",
                 r.residual, r.iters);
        TU_CHECK(blo_ctx_bytes(c) == before, "fixed point: temporaries released");
        iters[acc] = r.iters;
        blo_ctx_free(c);
    }
    fprintf(stderr, "picard %d anderson %d\n", iters[0], iters[1]);
    TU_CHECK(iters[1] * 4 < iters[0], "Anderson needs far fewer iterations: %d vs %d plain",
             iters[1], iters[0]);
    /* Damped mixing still converges. */
    {
        blo_ctx *c = blo_ctx_new(0);
        double zero[N] = {0};
        blo_tensor *u[2];
        make_vec(c, zero, u);
        blo_linop G = {2, apply, &m};
        blo_linalg_opts o = {5000, 1e-11, 0, 3, 0.5};
        blo_linalg_result r;
        TU_CHECK(blo_linalg_fixed_point(c, &G, u, &o, &r) == BLO_OK && r.converged,
                 "anderson β = 0.5");
        check_vec(u, VSTAR, 1e-9, "anderson β = 0.5");
        blo_ctx_free(c);
    }
    /* An expanding map is refused. */
    blo_ctx *c = blo_ctx_new(0);
    mat e = {{{1.5, 0, 0, 0}, {0, 1.5, 0, 0}, {0, 0, 1.5, 0}, {0, 0, 0, 1.5}}, 0, cv, 0};
    double one[N] = {1, 1, 1, 1};
    blo_tensor *u[2];
    make_vec(c, one, u);
    blo_linop G = {2, apply, &e};
    blo_linalg_opts o = {500, 1e-12, 0, 0, 0};
    TU_CHECK(blo_linalg_fixed_point(c, &G, u, &o, NULL) == BLO_ERR_NUMERIC &&
                 strstr(blo_ctx_error(c), "contraction"),
             "expanding map: %s", blo_ctx_error(c));
    blo_ctx_clear_error(c);
    o.anderson_m = 99;
    TU_CHECK(blo_linalg_fixed_point(c, &G, u, &o, NULL) == BLO_ERR_INVALID,
             "Anderson memory 99 refused");
    blo_ctx_free(c);
}

/* blo_linalg_inverse: A A⁻¹ = I for a random non-symmetric A that needs pivoting (a zero
 * leading entry), in f64 and f32; a singular A and a non-square one are refused by name. */
static void test_inverse(void) {
    blo_ctx *ctx = blo_ctx_new(0);
    blo_rng r;
    blo_rng_seed(&r, 21);
    const int64_t n = 7, s[2] = {n, n};
    for (int f32 = 0; f32 < 2; f32++) {
        blo_dtype dt = f32 ? BLO_F32 : BLO_F64;
        blo_tensor *A = blo_tensor_new(ctx, dt, 2, s);
        blo_init_normal(A, &r, 0, 1);
        blo_tensor_set(A, 0, 0);
        blo_tensor *Ai = blo_linalg_inverse(ctx, A);
        blo_tensor *P = Ai ? blo_matmul(ctx, A, Ai) : NULL, *Q = Ai ? blo_matmul(ctx, Ai, A) : NULL;
        double e = 0;
        for (int64_t i = 0; P && Q && i < n * n; i++) {
            double id = i / n == i % n;
            e = fmax(e, fmax(fabs(blo_tensor_get(P, i) - id), fabs(blo_tensor_get(Q, i) - id)));
        }
        TU_CHECK(P && Q && e < (f32 ? 1e-4 : 1e-12), "inverse (%s): max |A A⁻¹ − I| = %.3g",
                 f32 ? "f32" : "f64", P ? e : NAN);
    }
    blo_tensor *S = blo_zeros(ctx, BLO_F64, 2, s);
    for (int64_t i = 0; i < n * n; i++)
        blo_tensor_set(S, i, (double)(i % n)); /* equal rows: rank one */
    TU_CHECK(!blo_linalg_inverse(ctx, S) && blo_ctx_status(ctx) == BLO_ERR_NUMERIC &&
                 strstr(blo_ctx_error(ctx), "singular"),
             "singular: %s", blo_ctx_error(ctx));
    blo_ctx_clear_error(ctx);
    TU_CHECK(!blo_linalg_inverse(ctx, blo_zeros(ctx, BLO_F64, 2, (int64_t[]){2, 3})) &&
                 strstr(blo_ctx_error(ctx), "square"),
             "non-square: %s", blo_ctx_error(ctx));
    blo_ctx_free(ctx);
}

int main(void) {
    test_inverse();
    test_cg();
    test_neumann();
    test_fixed_point();
    return tu_finish("linalg");
}
