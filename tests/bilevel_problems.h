/* bilevel_problems.h — small bilevel problems with known answers, shared by the tests.
 *
 * Ridge regression with per-feature penalties x (DESIGN.md §5.1), plus a direct term so that
 * first-order methods have something to return:
 *   f(x, y) = ½‖A y − b‖² + ½ yᵀ diag(x) y
 *   F(x, y) = ½‖A_v y − b_v‖² + ½ c ‖x‖²
 *   y*(x) = H⁻¹ Aᵀ b,  H = AᵀA + diag(x)
 *   dF/dx = c x − y* ⊙ H⁻¹ A_vᵀ (A_v y* − b_v)
 * Optionally the lower objective samples a random minibatch of A's rows through the solver's
 * RNG (to test that checkpoints restore it).
 */
#ifndef BLO_BILEVEL_PROBLEMS_H
#define BLO_BILEVEL_PROBLEMS_H

#include "blo/blo.h"
#include "linalg/lists.h" /* blo__dense_solve */

#include <math.h>
#include <string.h>

#define RIDGE_MAXD 16

typedef struct ridge {
    int n, nv, d;
    double c;          /* weight of the direct term ½ c ‖x‖² */
    int minibatch;     /* 0: full batch; else rows sampled per inner step */
    blo_ctx *ctx;      /* owns the data */
    blo_tensor *A, *b, *Av, *bv;
    blo_tensor *x0, *y0;
    double Ad[64 * RIDGE_MAXD], bd[64], Avd[64 * RIDGE_MAXD], bvd[64];
} ridge;

static inline void ridge_init(ridge *r, blo_dtype dt, int n, int nv, int d, double c, uint64_t seed) {
    memset(r, 0, sizeof *r);
    r->n = n;
    r->nv = nv;
    r->d = d;
    r->c = c;
    r->ctx = blo_ctx_new(0);
    blo_rng g;
    blo_rng_seed(&g, seed);
    for (int i = 0; i < n * d; i++) r->Ad[i] = blo_rng_normal(&g) / sqrt((double)d);
    for (int i = 0; i < n; i++) r->bd[i] = blo_rng_normal(&g);
    for (int i = 0; i < nv * d; i++) r->Avd[i] = blo_rng_normal(&g) / sqrt((double)d);
    for (int i = 0; i < nv; i++) r->bvd[i] = blo_rng_normal(&g);
    int64_t sa[2] = {n, d}, sb[1] = {n}, sav[2] = {nv, d}, sbv[1] = {nv}, sd[1] = {d};
    r->A = blo_from_f64(r->ctx, dt, 2, sa, r->Ad);
    r->b = blo_from_f64(r->ctx, dt, 1, sb, r->bd);
    r->Av = blo_from_f64(r->ctx, dt, 2, sav, r->Avd);
    r->bv = blo_from_f64(r->ctx, dt, 1, sbv, r->bvd);
    double xs[RIDGE_MAXD], ys[RIDGE_MAXD];
    for (int j = 0; j < d; j++) {
        xs[j] = 0.5 + blo_rng_uniform(&g);
        ys[j] = 0.1 * blo_rng_normal(&g);
    }
    r->x0 = blo_from_f64(r->ctx, dt, 1, sd, xs);
    r->y0 = blo_from_f64(r->ctx, dt, 1, sd, ys);
}

static inline void ridge_free(ridge *r) {
    blo_ctx_free(r->ctx);
}

static inline blo_tensor *ridge_lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                                      const blo_eval *ev, void *user) {
    ridge *r = user;
    blo_tensor *A = r->A, *b = r->b;
    if (r->minibatch) {
        int64_t idx[64], k = r->minibatch;
        for (int64_t i = 0; i < k; i++) idx[i] = (int64_t)blo_rng_below(ev->rng, (uint64_t)r->n);
        blo_tensor *it = blo_from_i64(ctx, 1, &k, idx);
        A = blo_index_select(ctx, A, 0, it);
        b = blo_index_select(ctx, b, 0, it);
    }
    blo_tensor *res = blo_sub(ctx, blo_matmul(ctx, A, y[0]), b);
    blo_tensor *fit = blo_scale(ctx, blo_dot(ctx, res, res), 0.5);
    blo_tensor *pen = blo_scale(ctx, blo_sum_all(ctx, blo_mul(ctx, x[0], blo_mul(ctx, y[0], y[0]))), 0.5);
    return blo_add(ctx, fit, pen);
}

static inline blo_tensor *ridge_upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                                      const blo_eval *ev, void *user) {
    (void)ev;
    ridge *r = user;
    blo_tensor *res = blo_sub(ctx, blo_matmul(ctx, r->Av, y[0]), r->bv);
    blo_tensor *F = blo_scale(ctx, blo_dot(ctx, res, res), 0.5);
    if (r->c != 0) F = blo_add(ctx, F, blo_scale(ctx, blo_dot(ctx, x[0], x[0]), 0.5 * r->c));
    return F;
}

static inline blo_problem ridge_problem(ridge *r) {
    blo_problem p;
    memset(&p, 0, sizeof p);
    p.nx = 1;
    p.x = &r->x0;
    p.ny = 1;
    p.y = &r->y0;
    p.upper = ridge_upper;
    p.lower = ridge_lower;
    p.user = r;
    p.x_lo = -INFINITY;
    p.x_hi = INFINITY;
    return p;
}

/* Solves M z = rhs (d x d, row-major) by Gaussian elimination with partial pivoting. */
static inline void ridge_solve(int d, double *M, double *z) {
    blo__dense_solve(d, M, z, 1);
}

/* The exact hypergradient at x (d values) into hg; y* into ystar; λ_max(H) bound into *L. */
static inline void ridge_exact(const ridge *r, const double *x, double *hg, double *ystar, double *L) {
    int d = r->d;
    double H[RIDGE_MAXD * RIDGE_MAXD], M[RIDGE_MAXD * RIDGE_MAXD], z[RIDGE_MAXD];
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double s = 0;
            for (int k = 0; k < r->n; k++) s += r->Ad[k * d + i] * r->Ad[k * d + j];
            H[i * d + j] = s + (i == j ? x[i] : 0);
        }
    double gersh = 0;
    for (int i = 0; i < d; i++) {
        double row = 0;
        for (int j = 0; j < d; j++) row += fabs(H[i * d + j]);
        if (row > gersh) gersh = row;
    }
    if (L) *L = gersh;
    for (int i = 0; i < d; i++) {
        double s = 0;
        for (int k = 0; k < r->n; k++) s += r->Ad[k * d + i] * r->bd[k];
        z[i] = s;
    }
    memcpy(M, H, sizeof(double) * (size_t)(d * d));
    ridge_solve(d, M, z);
    memcpy(ystar, z, sizeof(double) * (size_t)d);
    double res[64];
    for (int k = 0; k < r->nv; k++) {
        double s = -r->bvd[k];
        for (int i = 0; i < d; i++) s += r->Avd[k * d + i] * ystar[i];
        res[k] = s;
    }
    for (int i = 0; i < d; i++) {
        double s = 0;
        for (int k = 0; k < r->nv; k++) s += r->Avd[k * d + i] * res[k];
        z[i] = s;
    }
    memcpy(M, H, sizeof(double) * (size_t)(d * d));
    ridge_solve(d, M, z);
    for (int i = 0; i < d; i++) hg[i] = r->c * x[i] - ystar[i] * z[i];
}

#endif
