/* ipm.c — the integral probability metrics of CFR between the treated and control
 * representations (formulas in blo/causal.h): linear MMD², RBF-kernel MMD², and the entropic
 * Wasserstein distance of Shalit et al.'s code, whose transport plan is computed here on the
 * host from the distances' values and enters the loss as a constant. */
#include "blo/ops.h"
#include "causal_internal.h"

#include <math.h>
#include <string.h>

void blo__causal_sinkhorn(int64_t nt, int64_t nc, const double *M, double lam, int its,
                          double *plan, double *dist) {
    int64_t R = nt + 1, C = nc + 1;
    double mean = 0, delta = 0;
    for (int64_t i = 0; i < nt * nc; i++) {
        mean += M[i];
        if (M[i] > delta) delta = M[i];
    }
    mean /= (double)(nt * nc);
    double el = mean > 0 ? lam / mean : lam;
    /* The augmented cost: row nt and column nc cost δ = max M, (nt, nc) costs 0; marginals
     * a = (p/nt .., 1 − p), b = ((1 − p)/nc .., p) with p = 1/2. */
    double *K = blo_malloc(sizeof(double) * (size_t)(R * C + R + C + C));
    double *u = K + R * C, *v = u + R, *kt = v + C;
    if (!K) {
        *dist = NAN;
        return;
    }
#define MT(i, j) ((i) < nt && (j) < nc ? M[(i) * nc + (j)] : (i) < nt || (j) < nc ? delta : 0.0)
#define A(i) ((i) < nt ? 0.5 / (double)nt : 0.5)
#define B(j) ((j) < nc ? 0.5 / (double)nc : 0.5)
    for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < C; j++) K[i * C + j] = exp(-el * MT(i, j)) + 1e-6;
    for (int64_t i = 0; i < R; i++) u[i] = A(i);
    /* u ← 1 / ((K / a) (b / (Kᵀu))), its times; then v = b / (Kᵀu). */
    for (int it = 0; it <= its; it++) {
        for (int64_t j = 0; j < C; j++) {
            double s = 0;
            for (int64_t i = 0; i < R; i++) s += K[i * C + j] * u[i];
            kt[j] = B(j) / s;
        }
        if (it == its) break;
        for (int64_t i = 0; i < R; i++) {
            double s = 0;
            for (int64_t j = 0; j < C; j++) s += K[i * C + j] * kt[j];
            u[i] = A(i) / s;
        }
    }
    for (int64_t j = 0; j < C; j++) v[j] = kt[j];
    double D = 0;
    for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < C; j++) {
            double p = u[i] * v[j] * K[i * C + j];
            if (plan) plan[i * C + j] = p;
            D += p * MT(i, j);
        }
    *dist = 2 * D;
#undef MT
#undef A
#undef B
    blo_free(K);
}

/* Pairwise squared distances [na, nb] of the rows of A and B. */
static blo_tensor *pdist2sq(blo_ctx *ctx, blo_tensor *A, blo_tensor *B) {
    int ax = 1;
    blo_tensor *na = blo_sum(ctx, blo_mul(ctx, A, A), 1, &ax, 1);
    blo_tensor *nb = blo_sum(ctx, blo_mul(ctx, B, B), 1, &ax, 1);
    blo_tensor *ab = blo_matmul(ctx, A, blo_transpose(ctx, B, 0, 1));
    return blo_add(ctx, blo_sub(ctx, na, blo_scale(ctx, ab, 2.0)), blo_transpose(ctx, nb, 0, 1));
}

/* Σ of the off-diagonal entries of a kernel matrix over the same points, divided by m(m − 1):
 * (Σ K − m) / (m (m − 1)) as Shalit et al. write it (the diagonal is exp(0) = 1). */
static blo_tensor *offdiag_mean(blo_ctx *ctx, blo_tensor *K, double m) {
    return blo_scale(ctx, blo_add_scalar(ctx, blo_sum_all(ctx, K), -m), 1.0 / (m * (m - 1)));
}

blo_tensor *blo__causal_ipm(blo_ctx *ctx, const blo_causal_net_config *c, blo_tensor *phi,
                            blo_tensor *T) {
    int64_t n = blo_tensor_dim(T, 0);
    double *h = blo_malloc(sizeof(double) * (size_t)(n + 1));
    int64_t *idx = blo_malloc(sizeof(int64_t) * (size_t)(n + 1));
    blo_tensor *out = NULL;
    if (!h || !idx || blo_tensor_copy_to_host(T, BLO_F64, h)) goto done;
    int64_t nt = 0;
    for (int64_t i = 0; i < n; i++) nt += h[i] == 1;
    int64_t nc = n - nt, a = 0, b = nt;
    if (nt == 0 || nc == 0) goto done;
    for (int64_t i = 0; i < n; i++) idx[h[i] == 1 ? a++ : b++] = i;
    blo_tensor *it = blo_from_i64(ctx, 1, &nt, idx), *ic = blo_from_i64(ctx, 1, &nc, idx + nt);
    blo_tensor *Pt = blo_index_select(ctx, phi, 0, it), *Pc = blo_index_select(ctx, phi, 0, ic);
    if (c->ipm == BLO_CAUSAL_IPM_MMD) {
        int ax = 0;
        blo_tensor *df = blo_sub(ctx, blo_mean(ctx, Pt, 1, &ax, 0), blo_mean(ctx, Pc, 1, &ax, 0));
        out = blo_dot(ctx, df, df);
    } else if (c->ipm == BLO_CAUSAL_IPM_RBF) {
        if (nt < 2 || nc < 2) goto done; /* the off-diagonal means need two of each arm */
        double s2 = c->rbf_sigma * c->rbf_sigma;
        blo_tensor *Ktt = blo_exp(ctx, blo_scale(ctx, pdist2sq(ctx, Pt, Pt), -1.0 / s2));
        blo_tensor *Kcc = blo_exp(ctx, blo_scale(ctx, pdist2sq(ctx, Pc, Pc), -1.0 / s2));
        blo_tensor *Kct = blo_exp(ctx, blo_scale(ctx, pdist2sq(ctx, Pc, Pt), -1.0 / s2));
        blo_tensor *within = blo_add(ctx, offdiag_mean(ctx, Kcc, (double)nc),
                                     offdiag_mean(ctx, Ktt, (double)nt));
        out = blo_sub(ctx, within,
                      blo_scale(ctx, blo_sum_all(ctx, Kct), 2.0 / ((double)nt * (double)nc)));
    } else {
        blo_tensor *M = blo_sqrt(ctx, blo_clamp(ctx, pdist2sq(ctx, Pt, Pc), 1e-10, INFINITY));
        double *m = M ? blo_malloc(sizeof(double) * (size_t)(nt * nc + (nt + 1) * (nc + 1))) : NULL;
        if (!m || blo_tensor_copy_to_host(M, BLO_F64, m)) {
            blo_free(m);
            goto done;
        }
        double *plan = m + nt * nc, dist, delta = 0, edge = 0;
        blo__causal_sinkhorn(nt, nc, m, c->wass_lambda, c->wass_iters, plan, &dist);
        for (int64_t i = 0; i < nt * nc; i++) delta = m[i] > delta ? m[i] : delta;
        for (int64_t i = 0; i < nt; i++) {
            memmove(m + i * nc, plan + i * (nc + 1), sizeof(double) * (size_t)nc); /* real block */
            edge += plan[i * (nc + 1) + nc];
        }
        for (int64_t j = 0; j < nc; j++) edge += plan[nt * (nc + 1) + j];
        int64_t s[2] = {nt, nc};
        blo_tensor *P = isfinite(dist) ? blo_from_f64(ctx, blo_tensor_dtype(phi), 2, s, m) : NULL;
        /* 2 Σ P_ij M_ij (P constant) plus the dummy row and column's 2 δ Σ P (constant too). */
        out = P ? blo_add_scalar(ctx, blo_scale(ctx, blo_sum_all(ctx, blo_mul(ctx, P, M)), 2.0),
                                 2.0 * delta * edge)
                : NULL;
        blo_free(m);
    }
done:
    blo_free(h);
    blo_free(idx);
    return out;
}
