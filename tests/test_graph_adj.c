/* test_graph_adj.c — blo_st_gcn_adj, the straight-through Bernoulli sample of a graph and its
 * normalisation D^-½ (A + I) D^-½ in one op, against two oracles:
 *
 *   - the composition of ops it replaces (the same draws; S = ½ (θ + θᵀ) off the diagonal,
 *     M = [u < S], A = S + (M − S)|const, d = (1 + A 1)^-½, Â = d dᵀ ⊙ (A + I)): the values,
 *     the gradient with respect to θ of ⟨W, Â⟩, the second derivative with respect to W of
 *     ⟨V, ∂/∂θ⟩ (the backward's adjoint) and the third with respect to V (the adjoint's
 *     backward), float64 on 7, 150 (three tiles, the last partial) and 600 nodes (two
 *     threads), float32 on 150;
 *   - central differences of a plain C function: ⟨W, Â(θ)⟩ with A = M + S(θ) − S(θ₀), M read
 *     off the op's output, the function whose derivative at θ₀ the estimator is (7 nodes);
 *   - bad arguments are refused with a message.
 */
#include "../src/internal.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static blo_tensor *from_host(blo_ctx *c, blo_dtype dt, int64_t n, int64_t m, const double *v) {
    int64_t sh[2] = {n, m};
    blo_tensor *t = blo_tensor_new(c, dt, 2, sh);
    if (t) blo_tensor_copy_from_host(t, BLO_F64, v);
    return t;
}

/* The composition the op replaces, drawing the same uniforms in the same order. */
static blo_tensor *unfused(blo_ctx *c, blo_tensor *theta, blo_rng *rng) {
    blo_dtype dt = blo_tensor_dtype(theta);
    int64_t n = blo_tensor_dim(theta, 0), col[2] = {n, 1};
    double *u = malloc(sizeof(double) * (size_t)(n * n)), *e = calloc((size_t)(n * n), sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        u[i * n + i] = 2;
        e[i * n + i] = 1;
        for (int64_t j = i + 1; j < n; j++) u[i * n + j] = u[j * n + i] = (float)blo_rng_uniform(rng);
    }
    blo_tensor *U = from_host(c, dt, n, n, u), *I = from_host(c, dt, n, n, e);
    free(u);
    free(e);
    blo_tensor *off = blo_sub(c, blo_full(c, dt, 2, (int64_t[]){n, n}, 1), I);
    blo_tensor *S = blo_mul(c, blo_scale(c, blo_add(c, theta, blo_transpose(c, theta, 0, 1)), 0.5), off);
    blo_tensor *M = blo_lt(c, U, blo_detach(c, S));
    blo_tensor *A = blo_add(c, S, blo_sub(c, M, blo_detach(c, S)));
    blo_tensor *d = blo_pow_scalar(c, blo_add_scalar(c, blo_matmul(c, A, blo_full(c, dt, 2, col, 1)), 1), -0.5);
    return blo_mul(c, blo_matmul(c, d, blo_transpose(c, d, 0, 1)), blo_add(c, A, I));
}

/* Â, the gradient of ⟨W, Â⟩ with respect to θ, the gradient with respect to W of ⟨V, that⟩
 * and the gradient with respect to V of ⟨V2, the last⟩, by the op (fused) or the composition. */
typedef struct derivs {
    blo_tensor *ahat, *dtheta, *dw, *dv;
} derivs;

static derivs run(blo_ctx *c, int fused, blo_tensor *theta, blo_tensor *W, blo_tensor *V,
                  blo_tensor *V2, uint64_t seed) {
    blo_rng r;
    blo_rng_seed(&r, seed);
    derivs o = {fused ? blo_st_gcn_adj(c, theta, &r) : unfused(c, theta, &r), NULL, NULL, NULL};
    blo_tensor *L = blo_sum_all(c, blo_mul(c, W, o.ahat));
    if (!L || blo_grad(c, 1, &L, NULL, 1, &theta, BLO_GRAD_CREATE_GRAPH, &o.dtheta)) return o;
    blo_tensor *L2 = blo_sum_all(c, blo_mul(c, V, o.dtheta));
    if (!L2 || blo_grad(c, 1, &L2, NULL, 1, &W, BLO_GRAD_CREATE_GRAPH, &o.dw)) return o;
    blo_tensor *L3 = blo_sum_all(c, blo_mul(c, V2, o.dw));
    if (L3) blo_grad(c, 1, &L3, NULL, 1, &V, 0, &o.dv);
    return o;
}

static void compare_case(int64_t n, blo_dtype dt, double tol, int threads) {
    blo_set_num_threads(threads);
    blo_ctx *c = blo_ctx_new(0);
    blo_rng r;
    blo_rng_seed(&r, (uint64_t)n);
    int64_t nn[2] = {n, n};
    blo_tensor *theta = tu_rand(c, &r, dt, 2, nn, 0, 1), *W = tu_rand(c, &r, dt, 2, nn, -1, 1);
    blo_tensor *V = tu_rand(c, &r, dt, 2, nn, -1, 1), *V2 = tu_rand(c, &r, dt, 2, nn, -1, 1);
    derivs f = run(c, 1, theta, W, V, V2, 7), u = run(c, 0, theta, W, V, V2, 7);
    tu_check_ok(c, "st_gcn_adj: the derivatives");
    char what[96];
    const char *dn = dt == BLO_F64 ? "f64" : "f32";
    if (f.dv && u.dv) {
        snprintf(what, sizeof what, "N %lld %s threads %d: Â", (long long)n, dn, threads);
        tu_check_close(f.ahat, u.ahat, tol, tol, what);
        snprintf(what, sizeof what, "N %lld %s threads %d: dθ", (long long)n, dn, threads);
        tu_check_close(f.dtheta, u.dtheta, tol, tol, what);
        snprintf(what, sizeof what, "N %lld %s threads %d: the adjoint (d/dW)", (long long)n, dn, threads);
        tu_check_close(f.dw, u.dw, tol, tol, what);
        snprintf(what, sizeof what, "N %lld %s threads %d: the adjoint's backward (d/dV)", (long long)n, dn, threads);
        tu_check_close(f.dv, u.dv, tol, tol, what);
    }
    /* The sample is neither empty nor full, so both terms of the gradient are exercised. */
    double *a = malloc(sizeof(double) * (size_t)(n * n));
    blo_tensor_copy_to_host(f.ahat, BLO_F64, a);
    int64_t edges = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) edges += i != j && a[i * n + j] != 0;
    TU_CHECK(edges > 0 && edges < n * (n - 1), "N %lld: %lld sampled entries", (long long)n,
             (long long)edges);
    free(a);
    blo_ctx_free(c);
    blo_set_num_threads(1);
}

/* ⟨W, Â⟩ with A = M + S(θ) − S(θ₀) off the diagonal, in plain double arithmetic. */
static double plain_objective(int64_t n, const double *th, const double *th0, const double *m,
                              const double *w) {
    double *d = calloc((size_t)n, sizeof(double)), s = 0;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < n; j++)
            if (i != j)
                d[i] += m[i * n + j] + 0.5 * (th[i * n + j] + th[j * n + i]) -
                        0.5 * (th0[i * n + j] + th0[j * n + i]);
        d[i] = 1 / sqrt(1 + d[i]);
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double A = i == j ? 1
                              : m[i * n + j] + 0.5 * (th[i * n + j] + th[j * n + i]) -
                                    0.5 * (th0[i * n + j] + th0[j * n + i]);
            s += w[i * n + j] * A * d[i] * d[j];
        }
    free(d);
    return s;
}

static void fd_case(void) {
    enum { N = 7 };
    blo_ctx *c = blo_ctx_new(0);
    blo_rng r;
    blo_rng_seed(&r, 21);
    int64_t nn[2] = {N, N};
    blo_tensor *theta = tu_rand(c, &r, BLO_F64, 2, nn, 0, 1), *W = tu_rand(c, &r, BLO_F64, 2, nn, -1, 1);
    blo_rng s;
    blo_rng_seed(&s, 5);
    blo_tensor *ahat = blo_st_gcn_adj(c, theta, &s), *g = NULL;
    blo_tensor *L = blo_sum_all(c, blo_mul(c, W, ahat));
    TU_CHECK(L && !blo_grad(c, 1, &L, NULL, 1, &theta, 0, &g), "st_gcn_adj: %s", blo_ctx_error(c));
    if (!g) {
        blo_ctx_free(c);
        return;
    }
    double th[N * N], th0[N * N], m[N * N], w[N * N], a[N * N], gv[N * N];
    blo_tensor_copy_to_host(theta, BLO_F64, th0);
    blo_tensor_copy_to_host(W, BLO_F64, w);
    blo_tensor_copy_to_host(ahat, BLO_F64, a);
    blo_tensor_copy_to_host(g, BLO_F64, gv);
    for (int k = 0; k < N * N; k++) m[k] = k % (N + 1) != 0 && a[k] != 0;
    memcpy(th, th0, sizeof th);
    TU_CHECK(fabs(plain_objective(N, th, th0, m, w) - blo_tensor_item(L)) < 1e-12,
             "the value: %.15g against %.15g", plain_objective(N, th, th0, m, w), blo_tensor_item(L));
    double worst = 0, scale = 0, eps = 1e-6;
    for (int k = 0; k < N * N; k++) {
        th[k] = th0[k] + eps;
        double fp = plain_objective(N, th, th0, m, w);
        th[k] = th0[k] - eps;
        double fm = plain_objective(N, th, th0, m, w);
        th[k] = th0[k];
        worst = fmax(worst, fabs((fp - fm) / (2 * eps) - gv[k]));
        scale = fmax(scale, fabs(gv[k]));
    }
    TU_CHECK(scale > 1e-3 && worst < 1e-8 * (1 + scale),
             "st_gcn_adj: |FD − dθ| max %.3g (max |dθ| %.3g)", worst, scale);
    blo_ctx_free(c);
}

static void bad_args(void) {
    blo_ctx *c = blo_ctx_new(0);
    blo_rng r;
    blo_rng_seed(&r, 1);
    blo_tensor *t = blo_full(c, BLO_F32, 2, (int64_t[]){3, 4}, 0.5);
    TU_CHECK(!blo_st_gcn_adj(c, t, &r) && blo_ctx_status(c) == BLO_ERR_SHAPE &&
                 strstr(blo_ctx_error(c), "square"),
             "a [3, 4] θ is refused: %s", blo_ctx_error(c));
    blo_ctx_clear_error(c);
    t = blo_full(c, BLO_F32, 2, (int64_t[]){3, 3}, 0.5);
    TU_CHECK(!blo_st_gcn_adj(c, t, NULL) && strstr(blo_ctx_error(c), "rng"),
             "no rng is refused: %s", blo_ctx_error(c));
    blo_ctx_free(c);
}

int main(void) {
    fd_case();
    compare_case(7, BLO_F64, 1e-12, 1);
    compare_case(150, BLO_F64, 1e-12, 1);
    compare_case(150, BLO_F32, 2e-5, 1);
    compare_case(600, BLO_F64, 1e-12, 2);
    bad_args();
    return tu_finish("graph_adj");
}
