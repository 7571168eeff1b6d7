/* hello_bilevel.c — a first bilevel program with blo: one penalty per feature for ridge
 * regression, tuned on a validation set.
 *
 *   lower  f(x, y) = ½‖A y − b‖²/n + ½ Σ_j λ_j y_j²,  λ_j = e^{x_j}   (train the model y)
 *   upper  F(y)    = ½‖A_val y − b_val‖²/m                         (validate it)
 *
 * blo approximates y*(x) by T steps of SGD on f and computes dF/dx with a method from its
 * registry ("cg": the implicit function theorem, solved by conjugate gradients). The program
 * checks that hypergradient against the closed form, then lets Adam tune x.
 *
 *   cc hello_bilevel.c $(pkg-config --cflags --libs blo) -lm -o hello_bilevel
 */
#include <blo/blo.h>

#include <math.h>
#include <stdio.h>

enum { N = 40, M = 40, P = 5 }; /* training rows, validation rows, features */

typedef struct ridge {
    double A[N * P], b[N], Av[M * P], bv[M]; /* the data, row-major */
    blo_tensor *tA, *tb, *tAv, *tbv;         /* the same as blo tensors */
} ridge;

/* The objectives, written with blo ops so that blo can differentiate them. */
static blo_tensor *lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                         const blo_eval *ev, void *user) {
    (void)ev;
    ridge *r = user;
    blo_tensor *res = blo_sub(ctx, blo_matmul(ctx, r->tA, y[0]), r->tb);
    blo_tensor *fit = blo_scale(ctx, blo_dot(ctx, res, res), 0.5 / N);
    blo_tensor *pen = blo_sum_all(ctx, blo_mul(ctx, blo_exp(ctx, x[0]), blo_mul(ctx, y[0], y[0])));
    return blo_add(ctx, fit, blo_scale(ctx, pen, 0.5));
}

static blo_tensor *upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                         const blo_eval *ev, void *user) {
    (void)x, (void)ev;
    ridge *r = user;
    blo_tensor *res = blo_sub(ctx, blo_matmul(ctx, r->tAv, y[0]), r->tbv);
    return blo_scale(ctx, blo_dot(ctx, res, res), 0.5 / M);
}

/* The oracle, in plain C: H = AᵀA/n + diag(λ), y* = H⁻¹Aᵀb/n, g = A_valᵀ(A_val y* − b_val)/m,
 * and by the implicit function theorem dF/dλ_j = −y*_j (H⁻¹g)_j, so dF/dx_j = −λ_j y*_j (H⁻¹g)_j. */
static void solve_spd(const double *H, const double *rhs, double *z) { /* Cholesky, H = L Lᵀ */
    double L[P * P] = {0};
    for (int i = 0; i < P; i++)
        for (int j = 0; j <= i; j++) {
            double s = H[i * P + j];
            for (int k = 0; k < j; k++) s -= L[i * P + k] * L[j * P + k];
            L[i * P + j] = i == j ? sqrt(s) : s / L[j * P + j];
        }
    for (int i = 0; i < P; i++) { /* L w = rhs */
        z[i] = rhs[i];
        for (int k = 0; k < i; k++) z[i] -= L[i * P + k] * z[k];
        z[i] /= L[i * P + i];
    }
    for (int i = P - 1; i >= 0; i--) { /* Lᵀ z = w */
        for (int k = i + 1; k < P; k++) z[i] -= L[k * P + i] * z[k];
        z[i] /= L[i * P + i];
    }
}

static void exact_hypergradient(const ridge *r, const double *x, double *hg) {
    double H[P * P], rhs[P] = {0}, ystar[P], g[P] = {0}, v[P];
    for (int i = 0; i < P; i++) {
        for (int j = 0; j < P; j++) {
            double s = 0;
            for (int k = 0; k < N; k++) s += r->A[k * P + i] * r->A[k * P + j];
            H[i * P + j] = s / N + (i == j ? exp(x[i]) : 0);
        }
        for (int k = 0; k < N; k++) rhs[i] += r->A[k * P + i] * r->b[k] / N;
    }
    solve_spd(H, rhs, ystar);
    for (int k = 0; k < M; k++) {
        double res = -r->bv[k];
        for (int j = 0; j < P; j++) res += r->Av[k * P + j] * ystar[j];
        for (int j = 0; j < P; j++) g[j] += r->Av[k * P + j] * res / M;
    }
    solve_spd(H, g, v);
    for (int j = 0; j < P; j++) hg[j] = -exp(x[j]) * ystar[j] * v[j];
}

int main(void) {
    /* Data: b = A w + noise, with a few useless features (w_j = 0) worth a large penalty. */
    static ridge r;
    const double w[P] = {1.5, -2.0, 0.0, 0.0, 0.5};
    blo_rng rng;
    blo_rng_seed(&rng, 7);
    for (int k = 0; k < N + M; k++) {
        double *a = k < N ? &r.A[k * P] : &r.Av[(k - N) * P], t = 0;
        for (int j = 0; j < P; j++) t += w[j] * (a[j] = blo_rng_normal(&rng));
        *(k < N ? &r.b[k] : &r.bv[k - N]) = t + 1.0 * blo_rng_normal(&rng);
    }
    blo_ctx *data = blo_ctx_new(0); /* owns the tensors below; one free at the end */
    int64_t sa[2] = {N, P}, sav[2] = {M, P}, sn = N, sm = M, sp = P;
    r.tA = blo_from_f64(data, BLO_F64, 2, sa, r.A);
    r.tb = blo_from_f64(data, BLO_F64, 1, &sn, r.b);
    r.tAv = blo_from_f64(data, BLO_F64, 2, sav, r.Av);
    r.tbv = blo_from_f64(data, BLO_F64, 1, &sm, r.bv);
    blo_tensor *x0 = blo_zeros(data, BLO_F64, 1, &sp), *y0 = blo_zeros(data, BLO_F64, 1, &sp);

    /* The problem and how to solve it. */
    blo_problem p = {.nx = 1, .x = &x0, .ny = 1, .y = &y0, .upper = upper, .lower = lower,
                     .user = &r, .x_lo = -INFINITY, .x_hi = INFINITY};
    blo_config c = blo_config_default();
    c.method = "cg";
    c.inner = blo_opt_sgd(0.2); /* y_{t+1} = y_t − 0.2 ∇_y f, T = 300 steps from y_0 = 0 */
    c.inner_steps = 300;
    c.outer = blo_opt_adam(0.02);
    c.outer_iters = 100;
    char err[256];
    blo_solver *s = blo_ctx_status(data) ? NULL : blo_solver_new(&p, &c, err, sizeof err);
    if (!s) {
        fprintf(stderr, "hello_bilevel: %s\n", blo_ctx_status(data) ? blo_ctx_error(data) : err);
        return 1;
    }
    printf("method %s: %s\n", c.method, blo_method_find(c.method)->maths);

    /* 1. One hypergradient at x = 0, against the closed form. */
    double hg[P], want[P], x[P] = {0}, *out[1] = {hg}, err_max = 0, before, after, f;
    if (blo_solver_hypergrad(s, out) != BLO_OK) goto fail;
    blo_solver_values(s, &before, &f);
    exact_hypergradient(&r, x, want);
    for (int j = 0; j < P; j++) {
        printf("  dF/dx_%d  blo %+.8f  closed form %+.8f\n", j, hg[j], want[j]);
        err_max = fmax(err_max, fabs(hg[j] - want[j]));
    }
    /* 2. The outer loop: Adam on x, then F at the tuned penalties. */
    if (blo_solver_run(s) != BLO_OK || blo_solver_hypergrad(s, out) != BLO_OK) goto fail;
    blo_solver_values(s, &after, &f);
    printf("validation loss %.6f -> %.6f after %lld outer steps; lambda =", before, after,
           (long long)blo_solver_iter(s));
    for (int j = 0; j < P; j++) printf(" %.3g", exp(blo_tensor_get(blo_solver_x(s, 0), j)));
    printf("\n");
    int ok = err_max < 1e-8 && after < before; /* y_T is converged: cg is exact here */
    printf("%s: largest hypergradient error %.2e\n", ok ? "ok" : "FAILED", err_max);
    blo_solver_free(s);
    blo_ctx_free(data);
    return ok ? 0 : 1;
fail:
    fprintf(stderr, "hello_bilevel: %s\n", blo_solver_error(s));
    blo_solver_free(s);
    blo_ctx_free(data);
    return 1;
}
