/* test_causal_ipm.c — the IPMs of CFR (blo/causal.h) in float64: Shalit et al.'s Sinkhorn on
 * two point sets whose optimal plan is known by hand, the Wasserstein IPM's gradient with the
 * plan held fixed against central differences of 2 Σ P_ij ‖Φ_t,i − Φ_c,j‖, and the RBF and
 * linear MMD² against direct sums (value and central-difference gradient). */
#include "../src/tasks/causal/causal_internal.h"
#include "blo/autodiff.h"
#include "blo/ops.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

enum { N = 7, K = 3 };
static const double TT[N] = {1, 0, 0, 1, 0, 1, 0};

/* The IPM of phi (host, [N, K]) computed by blo in float64; grad[N K] its gradient. */
static double blo_ipm(const blo_causal_net_config *c, const double *phi, double *grad) {
    blo_ctx *ctx = blo_ctx_new(0);
    int64_t s[2] = {N, K}, st[2] = {N, 1};
    blo_tensor *P = blo_from_f64(ctx, BLO_F64, 2, s, phi), *T = blo_from_f64(ctx, BLO_F64, 2, st, TT);
    blo_set_requires_grad(P, 1);
    blo_tensor *f = blo__causal_ipm(ctx, c, P, T), *g = NULL;
    double v = f ? blo_tensor_item(f) : NAN;
    if (f && grad && blo_grad(ctx, 1, &f, NULL, 1, &P, 0, &g) == BLO_OK)
        blo_tensor_copy_to_host(g, BLO_F64, grad);
    tu_check_ok(ctx, "ipm");
    blo_ctx_free(ctx);
    return v;
}

static double dist(const double *a, const double *b) {
    double s = 0;
    for (int k = 0; k < K; k++) s += (a[k] - b[k]) * (a[k] - b[k]);
    return sqrt(s);
}

/* The references, written as plain sums over the arms. plan: the Wasserstein cost 2 Σ P M
 * with P [(nt + 1) (nc + 1)] fixed (the dummy row and column add a constant). */
static double ref_ipm(const blo_causal_net_config *c, const double *phi, const double *plan) {
    int it[N], ic[N], nt = 0, nc = 0;
    for (int i = 0; i < N; i++) TT[i] == 1 ? (it[nt++] = i) : (ic[nc++] = i);
    double v = 0;
    if (c->ipm == BLO_CAUSAL_IPM_MMD) {
        for (int k = 0; k < K; k++) {
            double d = 0;
            for (int i = 0; i < nt; i++) d += phi[it[i] * K + k] / nt;
            for (int j = 0; j < nc; j++) d -= phi[ic[j] * K + k] / nc;
            v += d * d;
        }
    } else if (c->ipm == BLO_CAUSAL_IPM_RBF) {
        double s2 = c->rbf_sigma * c->rbf_sigma;
        for (int a = 0; a < N; a++)
            for (int b = 0; b < N; b++) {
                double e = exp(-pow(dist(phi + a * K, phi + b * K), 2) / s2);
                if (a == b) continue;
                if (TT[a] == 1 && TT[b] == 1) v += e / (nt * (nt - 1.0));
                else if (TT[a] == 0 && TT[b] == 0) v += e / (nc * (nc - 1.0));
                else v -= e / ((double)nt * nc); /* each cross pair twice: 2 Σ_ij / (nt nc) */
            }
    } else {
        for (int i = 0; i < nt; i++)
            for (int j = 0; j < nc; j++) v += 2 * plan[i * (nc + 1) + j] * dist(phi + it[i] * K, phi + ic[j] * K);
    }
    return v;
}

static void check_gradient(const blo_causal_net_config *c, const char *what) {
    double phi[N * K], g[N * K], plan[(N + 1) * (N + 1)];
    blo_rng r;
    blo_rng_seed(&r, 11);
    for (int i = 0; i < N * K; i++) phi[i] = blo_rng_normal(&r);
    double v = blo_ipm(c, phi, g);
    if (c->ipm == BLO_CAUSAL_IPM_WASS) { /* the plan at phi, fixed from here on */
        double M[N * N], d;
        int it[N], ic[N], nt = 0, nc = 0;
        for (int i = 0; i < N; i++) TT[i] == 1 ? (it[nt++] = i) : (ic[nc++] = i);
        for (int i = 0; i < nt; i++)
            for (int j = 0; j < nc; j++) M[i * nc + j] = dist(phi + it[i] * K, phi + ic[j] * K);
        blo__causal_sinkhorn(nt, nc, M, c->wass_lambda, c->wass_iters, plan, &d);
        TU_CHECK(tu_close(v, d, 1e-12, 1e-12), "%s: value %.15g vs the host Sinkhorn's %.15g", what, v, d);
        double edge = 0, mx = 0; /* the dummy row and column's constant part */
        for (int i = 0; i < nt * nc; i++) mx = M[i] > mx ? M[i] : mx;
        for (int i = 0; i < nt; i++) edge += plan[i * (nc + 1) + nc];
        for (int j = 0; j < nc; j++) edge += plan[nt * (nc + 1) + j];
        TU_CHECK(tu_close(v, ref_ipm(c, phi, plan) + 2 * mx * edge, 1e-12, 1e-12),
                 "%s: value %.15g vs 2 Σ P M %.15g", what, v, ref_ipm(c, phi, plan) + 2 * mx * edge);
    } else {
        TU_CHECK(tu_close(v, ref_ipm(c, phi, plan), 1e-12, 1e-12), "%s: value %.15g vs the sum %.15g",
                 what, v, ref_ipm(c, phi, plan));
    }
    double h = 1e-6, worst = 0;
    for (int i = 0; i < N * K; i++) {
        double p = phi[i];
        phi[i] = p + h;
        double fp = ref_ipm(c, phi, plan);
        phi[i] = p - h;
        double fm = ref_ipm(c, phi, plan);
        phi[i] = p;
        double fd = (fp - fm) / (2 * h);
        if (!tu_close(g[i], fd, 1e-6, 1e-9)) worst = fabs(g[i] - fd) > worst ? fabs(g[i] - fd) : worst;
    }
    TU_CHECK(worst == 0, "%s: gradient off central differences by %g", what, worst);
}

int main(void) {
    /* Treated at 0 and 10, controls at 9 and 1: the optimal plan crosses (0 ↔ 1, 10 ↔ 9), each
     * pair carrying 1/4 of the real mass 1/2, and the distance 2 (1/4 · 1 + 1/4 · 1) = 1.
     * The kernel's 1e-6 floor (Shalit et al.'s, against NaN) leaks ~5e-6 of mass through the
     * dummy row and column at cost max M = 9: +2e-4 on the distance, hence the 5e-4. */
    double M1[4] = {9, 1, 1, 9}, plan[9], d;
    blo__causal_sinkhorn(2, 2, M1, 10, 10, plan, &d);
    TU_CHECK(fabs(d - 1) < 5e-4, "W(two crossed pairs) = %.8f, want 1", d);
    TU_CHECK(fabs(plan[1] - 0.25) < 1e-4 && fabs(plan[3] - 0.25) < 1e-4 && plan[0] < 1e-4 &&
                 plan[4] < 1e-4 && fabs(plan[8] - 0.5) < 1e-4,
             "plan %.4g %.4g / %.4g %.4g, dummy %.4g: want the crossing 1/4s", plan[0], plan[1],
             plan[3], plan[4], plan[8]);
    /* One treated at 0, controls at 1 and 3: all mass is forced, W = 1/2 · 1 + 1/2 · 3 = 2. */
    double M2[2] = {1, 3};
    blo__causal_sinkhorn(1, 2, M2, 10, 10, plan, &d);
    TU_CHECK(fabs(d - 2) < 5e-4, "W(one against two) = %.8f, want 2", d);
    /* Run long enough, the plan has the marginals (1/(2 nt) .., 1/2) and (1/(2 nc) .., 1/2)
     * (slowly: the real and the dummy blocks couple only through the kernel's 1e-6 floor; 200
     * iterations leave 9e-4, 5000 under 1e-9; one iteration leaves 1e-2). */
    {
        double M3[12], p3[20], worst = 0;
        for (int i = 0; i < 12; i++) M3[i] = 1 + sin(3.0 * i) * sin(3.0 * i);
        blo__causal_sinkhorn(3, 4, M3, 10, 5000, p3, &d);
        for (int i = 0; i < 4; i++) {
            double s = 0;
            for (int j = 0; j < 5; j++) s += p3[i * 5 + j];
            worst = fmax(worst, fabs(s - (i < 3 ? 0.5 / 3 : 0.5)));
        }
        for (int j = 0; j < 5; j++) {
            double s = 0;
            for (int i = 0; i < 4; i++) s += p3[i * 5 + j];
            worst = fmax(worst, fabs(s - (j < 4 ? 0.5 / 4 : 0.5)));
        }
        TU_CHECK(worst < 1e-9, "Sinkhorn marginals off by %g", worst);
    }
    /* The same through the loss's path: 1-d representations, T marks the arms. */
    {
        blo_causal_net_config c = blo_causal_net_default();
        c.ipm = BLO_CAUSAL_IPM_WASS;
        blo_ctx *ctx = blo_ctx_new(0);
        int64_t s[2] = {4, 1};
        double phi[4] = {0, 10, 9, 1}, t[4] = {1, 1, 0, 0};
        blo_tensor *f = blo__causal_ipm(ctx, &c, blo_from_f64(ctx, BLO_F64, 2, s, phi),
                                        blo_from_f64(ctx, BLO_F64, 2, s, t));
        TU_CHECK(f && fabs(blo_tensor_item(f) - 1) < 5e-4, "wass IPM of the crossed pairs %g, want 1",
                 f ? blo_tensor_item(f) : NAN);
        blo_ctx_free(ctx);
    }
    blo_causal_net_config c = blo_causal_net_default();
    c.ipm = BLO_CAUSAL_IPM_WASS;
    check_gradient(&c, "wass");
    c.ipm = BLO_CAUSAL_IPM_RBF;
    c.rbf_sigma = 1.5;
    check_gradient(&c, "rbf");
    c.ipm = BLO_CAUSAL_IPM_MMD;
    check_gradient(&c, "mmd");
    return tu_finish("test_causal_ipm");
}
