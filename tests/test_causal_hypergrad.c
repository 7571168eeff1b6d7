/* test_causal_hypergrad.c — the hypergradients of `blo causal --tune hyper|weights` on a tiny
 * problem in float64: rhg through T SGD steps of the network's training loss, with respect to
 * (log α, log λ_l) and to the log unit weights, against central finite differences of the
 * upper criterion after the same T steps (both criteria), also with each inner step on a
 * minibatch drawn from the solver's generator (the differences replay the draws). */
#include "../src/tasks/causal/causal_internal.h"
#include "blo/autodiff.h"
#include "blo/ops.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

enum { N = 14, D = 2, K = 8, KV = 6, T = 4 };
static const double LR = 0.2;

enum { SEED = 9 }; /* the solver's generator: with a minibatch, the differences replay its draws */

/* F(x) after T plain SGD steps on f from the problem's y0, all in float64. */
static double upper_after(blo__causal_bilevel *b, blo_tensor *x, int np, blo_tensor *const *y0) {
    blo_ctx *c = blo_ctx_new(0);
    blo_rng rng;
    blo_rng_seed(&rng, SEED);
    blo_tensor *y[64], *g[64];
    for (int i = 0; i < np; i++) {
        y[i] = blo_clone(c, y0[i]);
        blo_set_requires_grad(y[i], 1);
    }
    blo_eval ev = {1, 0, 0, &rng};
    for (int t = 0; t < T; t++) {
        ev.inner_step = t;
        blo_tensor *f = b->prob.lower(c, &x, y, &ev, b);
        blo_grad(c, 1, &f, NULL, np, y, 0, g);
        for (int i = 0; i < np; i++) {
            y[i] = blo_detach(c, blo_sub(c, y[i], blo_scale(c, g[i], LR)));
            blo_set_requires_grad(y[i], 1);
        }
    }
    ev.level = 0;
    double F = blo_tensor_item(b->prob.upper(c, &x, y, &ev, b));
    blo_ctx_free(c);
    return F;
}

static void check(blo_causal_tune tune, blo_causal_criterion crit, blo_causal_ipm ipm,
                  int64_t batch, const blo_causal_data *d) {
    blo_ctx *ctx = blo_ctx_new(0);
    blo__causal_bilevel b;
    memset(&b, 0, sizeof b);
    b.net = (blo_causal_net_config){1, 3, 1, 2, 0.5, 0.01, 1e-3, 0, 0, 1, 1, 0, ipm, 10, 10, 0.7};
    b.tune = tune;
    b.criterion = crit;
    int64_t tr[K], va[KV], idx[K];
    b.batch = batch, b.idx = idx;
    for (int i = 0; i < K; i++) tr[i] = i;
    for (int i = 0; i < KV; i++) va[i] = K + i;
    TU_CHECK(blo__causal_bilevel_init(&b, ctx, d, tr, K, va, KV, 0.5, 2.0, BLO_F64) == BLO_OK,
             "bilevel init");
    int np = blo__causal_nparams(&b.net), L = blo__causal_nweights(&b.net);
    blo_tensor *y0[64];
    blo_rng rng;
    blo_rng_seed(&rng, 3);
    blo__causal_params(ctx, &b.net, D, BLO_F64, &rng, y0);
    int64_t nx = tune == BLO_CAUSAL_TUNE_HYPER ? 1 + L : tune == BLO_CAUSAL_TUNE_ALPHA ? 1 : K;
    blo_tensor *x = blo_zeros(ctx, BLO_F64, 1, &nx);
    for (int64_t j = 0; j < nx; j++)
        blo_tensor_set(x, j, tune != BLO_CAUSAL_TUNE_WEIGHTS ? (j ? log(0.05) : log(0.5)) : 0.3 * sin((double)j));
    b.prob.nx = 1;
    b.prob.x = &x;
    b.prob.ny = np;
    b.prob.y = y0;
    blo_config c = blo_config_default();
    c.method = "rhg";
    c.inner = blo_opt_sgd(LR);
    c.inner_steps = T;
    c.seed = SEED;
    char err[256];
    blo_solver *s = blo_solver_new(&b.prob, &c, err, sizeof err);
    TU_CHECK(s != NULL, "solver: %s", err);
    double *hg = blo_malloc(sizeof(double) * (size_t)nx);
    if (s && blo_solver_hypergrad(s, &hg) == BLO_OK) {
        double worst = 0, h = 1e-5;
        for (int64_t j = 0; j < nx; j++) {
            double v = blo_tensor_get(x, j);
            blo_tensor_set(x, j, v + h);
            double fp = upper_after(&b, x, np, y0);
            blo_tensor_set(x, j, v - h);
            double fm = upper_after(&b, x, np, y0);
            blo_tensor_set(x, j, v);
            double fd = (fp - fm) / (2 * h), e = fabs(hg[j] - fd) / (1e-8 + fabs(fd));
            if (e > worst) worst = e;
            TU_CHECK(tu_close(hg[j], fd, 1e-5, 1e-9), "%s/%s/ipm %d/batch %lld: dF/dx[%lld] %.10g vs fd %.10g",
                     tune == BLO_CAUSAL_TUNE_HYPER ? "hyper" : tune == BLO_CAUSAL_TUNE_ALPHA ? "alpha" : "weights",
                     crit == BLO_CAUSAL_NN ? "nn" : "factual", (int)ipm, (long long)batch, (long long)j, hg[j], fd);
        }
        double n2 = 0;
        for (int64_t j = 0; j < nx; j++) n2 += hg[j] * hg[j];
        TU_CHECK(n2 > 1e-12, "the hypergradient is not zero (%g)", n2);
    } else {
        TU_CHECK(0, "hypergradient: %s", s ? blo_solver_error(s) : "no solver");
    }
    blo_free(hg);
    blo_solver_free(s);
    blo_ctx_free(ctx);
}

int main(void) {
    float x[N * D], t[N], y[N];
    blo_rng r;
    blo_rng_seed(&r, 7);
    for (int i = 0; i < N; i++) {
        x[i * D] = (float)blo_rng_normal(&r);
        x[i * D + 1] = (float)blo_rng_normal(&r);
        t[i] = (float)(i % 3 == 0 || i % 3 == 1 ? i % 2 : 0);
        y[i] = x[i * D] + 2 * t[i] * (1 + x[i * D + 1]) + 0.1f * (float)blo_rng_normal(&r);
    }
    blo_causal_data d = {N, D, x, t, y, NULL, NULL, 0};
    for (int i = 0; i < N; i++) d.treated += t[i] == 1;
    check(BLO_CAUSAL_TUNE_HYPER, BLO_CAUSAL_NN, BLO_CAUSAL_IPM_MMD, 0, &d);
    check(BLO_CAUSAL_TUNE_HYPER, BLO_CAUSAL_FACTUAL, BLO_CAUSAL_IPM_MMD, 0, &d);
    check(BLO_CAUSAL_TUNE_WEIGHTS, BLO_CAUSAL_NN, BLO_CAUSAL_IPM_MMD, 0, &d);
    /* The RBF-kernel IPM is differentiable throughout (the Wasserstein one holds its plan
     * constant, so differences of the loss would see the plan move: test_causal_ipm checks
     * it with the plan fixed). */
    check(BLO_CAUSAL_TUNE_HYPER, BLO_CAUSAL_NN, BLO_CAUSAL_IPM_RBF, 0, &d);
    check(BLO_CAUSAL_TUNE_ALPHA, BLO_CAUSAL_NN, BLO_CAUSAL_IPM_MMD, 0, &d);
    /* inner_batch: each inner step on 5 of the 8 training units, drawn from the solver's
     * generator; the differences replay the same draws. */
    check(BLO_CAUSAL_TUNE_HYPER, BLO_CAUSAL_NN, BLO_CAUSAL_IPM_RBF, 5, &d);
    check(BLO_CAUSAL_TUNE_WEIGHTS, BLO_CAUSAL_NN, BLO_CAUSAL_IPM_MMD, 5, &d);
    return tu_finish("test_causal_hypergrad");
}
