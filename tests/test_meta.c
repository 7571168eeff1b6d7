/* test_meta.c — meta-learning an initialisation as a bilevel problem (src/tasks/meta_problem.c)
 * and the core pieces it rests on (BLO_INIT_FROM_X, per-parameter step sizes):
 *   - rhg's meta-gradient (second-order MAML, 2 tasks, T = 2 inner steps, a small MLP)
 *     against central finite differences in float64 of the meta-objective, computed by a hand
 *     loop that adapts each task on its own (unbatched, no second-order graph);
 *   - rhg_ckpt and trhg with K = T equal rhg (the start's path to x through λ_0);
 *   - first_order equals the hand-computed FOMAML gradient Σ_b ∂F/∂y_T,b;
 *   - Meta-SGD (lr_x_per_y): rhg against finite differences in θ and in the step sizes α;
 *   - iMAML: with the proximal term, cg's implicit meta-gradient equals rhg's through a long,
 *     converged inner loop, and in float32 equals the float64 one to rounding;
 *   - a PyTorch fixture (tests/fixtures/gen_maml_fixture.py, float64): the batched problem in
 *     float32 reproduces F, the second-order MAML meta-gradient and FOMAML's to 1e-5;
 *   - the sinusoid sampler's ranges and moments;
 *   - refusals: from_x without init_y, fhg with from_x, step sizes that do not broadcast. */
#include "../src/tasks/meta/meta.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846
#define NP BLO_META_NPARAM

/* A tiny problem: B tasks of random data (x in [-2, 2], targets sin-like). */
static void make_meta(blo_meta *m, int64_t B, int64_t H, double prox, int meta_sgd, double a0,
                      uint64_t seed) {
    blo_rng r;
    blo_rng_seed(&r, seed);
    char err[256];
    blo_status st = blo_meta_init(m, B, H, 3, 4, prox, meta_sgd, a0, BLO_F64, &r, err, sizeof err);
    TU_CHECK(st == BLO_OK, "blo_meta_init: %s", err);
    blo_init_uniform(m->xs, &r, -2, 2);
    blo_init_uniform(m->xq, &r, -2, 2);
    for (int64_t k = 0; k < blo_tensor_numel(m->xs); k++)
        blo_tensor_set(m->ys, k, 1.5 * sin(blo_tensor_get(m->xs, k)) + 0.3 * (double)(k % 3));
    for (int64_t k = 0; k < blo_tensor_numel(m->xq); k++)
        blo_tensor_set(m->yq, k, 1.5 * sin(blo_tensor_get(m->xq, k)) + 0.3 * (double)(k % 3));
}

/* The meta-objective by hand: each task b adapted on its own from θ (nx values in th[],
 * α in th[NP ..] when meta_sgd) with T steps of w ← w − lr ∇(MSE_b + λ/2‖w − θ‖²), then
 * F = (1/B) Σ_b query MSE_b. When gy != NULL also gy[i] = Σ_b ∂F/∂w_T,b (FOMAML). */
static double hand_meta(const blo_meta *m, blo_tensor *const *th, int T, double lr,
                        double **gy) {
    blo_ctx *c = blo_ctx_new(0);
    double F = 0;
    if (gy)
        for (int i = 0; i < NP; i++) memset(gy[i], 0, sizeof(double) * (size_t)blo_tensor_numel(th[i]));
    for (int64_t b = 0; b < m->B; b++) {
        blo_tensor *w[NP], *thb[NP], *al[NP];
        for (int i = 0; i < NP; i++) {
            int64_t sh[3] = {1, blo_tensor_dim(th[i], 0), blo_tensor_dim(th[i], 1)};
            thb[i] = blo_reshape(c, blo_detach(c, th[i]), 3, sh);
            w[i] = blo_clone(c, thb[i]);
            blo_set_requires_grad(w[i], 1);
            al[i] = m->meta_sgd ? blo_reshape(c, blo_detach(c, th[NP + i]), 3, sh) : NULL;
        }
        blo_tensor *xs = blo_contiguous(c, blo_slice(c, m->xs, 0, b, b + 1, 1));
        blo_tensor *ys = blo_contiguous(c, blo_slice(c, m->ys, 0, b, b + 1, 1));
        blo_tensor *xq = blo_contiguous(c, blo_slice(c, m->xq, 0, b, b + 1, 1));
        blo_tensor *yq = blo_contiguous(c, blo_slice(c, m->yq, 0, b, b + 1, 1));
        for (int t = 0; t < T; t++) {
            blo_tensor *f = blo_mse(c, blo_meta_net(c, xs, w), ys, BLO_REDUCE_MEAN), *g[NP];
            for (int i = 0; i < NP && m->prox > 0; i++) {
                blo_tensor *d = blo_sub(c, w[i], thb[i]);
                f = blo_add(c, f, blo_scale(c, blo_dot(c, d, d), 0.5 * m->prox));
            }
            TU_CHECK(blo_grad(c, 1, &f, NULL, NP, w, 0, g) == BLO_OK, "hand inner gradient");
            for (int i = 0; i < NP; i++) {
                blo_tensor *step = al[i] ? blo_mul(c, g[i], al[i]) : blo_scale(c, g[i], lr);
                w[i] = blo_clone(c, blo_sub(c, blo_detach(c, w[i]), step));
                blo_set_requires_grad(w[i], 1);
            }
        }
        blo_tensor *q = blo_scale(c, blo_mse(c, blo_meta_net(c, xq, w), yq, BLO_REDUCE_MEAN),
                                  1.0 / (double)m->B);
        F += blo_tensor_item(q);
        if (gy) {
            blo_tensor *g[NP];
            TU_CHECK(blo_grad(c, 1, &q, NULL, NP, w, 0, g) == BLO_OK, "hand query gradient");
            for (int i = 0; i < NP; i++)
                for (int64_t k = 0; k < blo_tensor_numel(g[i]); k++) gy[i][k] += blo_tensor_get(g[i], k);
        }
    }
    tu_check_ok(c, "hand meta-objective");
    blo_ctx_free(c);
    return F;
}

static blo_solver *solver_for(blo_meta *m, const char *method, int T, double lr) {
    blo_problem p = blo_meta_problem(m);
    blo_config c = blo_config_default();
    c.method = method;
    c.inner = blo_opt_sgd(lr);
    c.inner_steps = T;
    c.init = BLO_INIT_FROM_X;
    c.trhg_window = c.neumann_terms = c.solve_iters = 200;
    c.tol = 1e-14;
    if (m->meta_sgd) {
        c.lr_x = NP;
        c.lr_x_per_y = 1;
    }
    char err[512];
    blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
    TU_CHECK(s != NULL, "solver %s: %s", method, err);
    return s;
}

/* The hypergradient of a solver into freshly allocated arrays (nx of them). */
static double **hypergrad(blo_solver *s, const blo_meta *m, int nx) {
    double **h = calloc((size_t)nx, sizeof *h);
    for (int i = 0; i < nx; i++) h[i] = calloc((size_t)blo_tensor_numel(m->x0[i]), sizeof(double));
    blo_status st = blo_solver_hypergrad(s, h);
    TU_CHECK(st == BLO_OK, "hypergradient: %s", blo_solver_error(s));
    return h;
}

static void free_grads(double **h, int nx) {
    for (int i = 0; i < nx; i++) free(h[i]);
    free(h);
}

/* Central differences of hand_meta in every element of every x tensor, against h. */
static void check_fd(blo_meta *m, int nx, int T, double lr, double **h, const char *what) {
    const double eps = 1e-6;
    double worst = 0;
    int bad = 0;
    for (int i = 0; i < nx; i++)
        for (int64_t k = 0; k < blo_tensor_numel(m->x0[i]); k++) {
            double v = blo_tensor_get(m->x0[i], k);
            blo_tensor_set(m->x0[i], k, v + eps);
            double fp = hand_meta(m, m->x0, T, lr, NULL);
            blo_tensor_set(m->x0[i], k, v - eps);
            double fm = hand_meta(m, m->x0, T, lr, NULL);
            blo_tensor_set(m->x0[i], k, v);
            double fd = (fp - fm) / (2 * eps), err = fabs(fd - h[i][k]);
            if (err > worst) worst = err;
            if (!tu_close(h[i][k], fd, 1e-5, 1e-7)) {
                if (bad++ < 5)
                    TU_CHECK(0, "%s: dF/dx[%d][%lld] = %.10g, finite differences %.10g", what, i,
                             (long long)k, h[i][k], fd);
            }
        }
    TU_CHECK(bad == 0, "%s: %d elements off (worst abs error %.3g)", what, bad, worst);
}

static double max_rel_diff(double **a, double **b, const blo_meta *m, int nx) {
    double w = 0, scale = 0;
    for (int i = 0; i < nx; i++)
        for (int64_t k = 0; k < blo_tensor_numel(m->x0[i]); k++) {
            w = fmax(w, fabs(a[i][k] - b[i][k]));
            scale = fmax(scale, fabs(b[i][k]));
        }
    return w / (scale > 0 ? scale : 1);
}

static void test_maml_second_order(void) {
    blo_meta m;
    make_meta(&m, 2, 4, 0, 0, 0, 11);
    const int T = 2;
    const double lr = 0.1;
    blo_solver *s = solver_for(&m, "rhg", T, lr);
    if (!s) return;
    double **h = hypergrad(s, &m, NP);
    /* F at y_T is the hand loop's F: the batched problem is B independent ones. */
    double up, lo;
    blo_solver_values(s, &up, &lo);
    TU_CHECK(tu_close(up, hand_meta(&m, m.x0, T, lr, NULL), 1e-12, 1e-14),
             "F(y_T) %.15g vs the per-task hand loop", up);
    check_fd(&m, NP, T, lr, h, "rhg (MAML)");
    /* The second-order term matters here: rhg differs from FOMAML. */
    blo_solver *sf = solver_for(&m, "first_order", T, lr);
    double **hf = hypergrad(sf, &m, NP);
    TU_CHECK(max_rel_diff(hf, h, &m, NP) > 1e-3, "MAML and FOMAML agree: the test is too weak");
    /* Checkpointed and full-truncation reverse passes reach x through λ_0 too. */
    const char *same[] = {"rhg_ckpt", "trhg"};
    for (int q = 0; q < 2; q++) {
        blo_solver *s2 = solver_for(&m, same[q], T, lr);
        double **h2 = hypergrad(s2, &m, NP);
        double d = max_rel_diff(h2, h, &m, NP);
        TU_CHECK(d < 1e-12, "%s differs from rhg by %.3g (relative)", same[q], d);
        free_grads(h2, NP);
        blo_solver_free(s2);
    }
    free_grads(hf, NP);
    blo_solver_free(sf);
    free_grads(h, NP);
    blo_solver_free(s);
    blo_meta_free(&m);
}

static void test_fomaml(void) {
    blo_meta m;
    make_meta(&m, 3, 4, 0, 0, 0, 12);
    const int T = 2;
    const double lr = 0.1;
    blo_solver *s = solver_for(&m, "first_order", T, lr);
    if (!s) return;
    double **h = hypergrad(s, &m, NP);
    double *gy[NP];
    for (int i = 0; i < NP; i++) gy[i] = calloc((size_t)blo_tensor_numel(m.x0[i]), sizeof(double));
    hand_meta(&m, m.x0, T, lr, gy);
    double worst = 0, norm = 0;
    for (int i = 0; i < NP; i++)
        for (int64_t k = 0; k < blo_tensor_numel(m.x0[i]); k++) {
            worst = fmax(worst, fabs(h[i][k] - gy[i][k]));
            norm = fmax(norm, fabs(gy[i][k]));
        }
    TU_CHECK(norm > 1e-3, "FOMAML gradient is trivially small (%g)", norm);
    TU_CHECK(worst <= 1e-12 * norm, "first_order vs Σ_b ∂F/∂y_T,b: max error %.3g (scale %.3g)",
             worst, norm);
    for (int i = 0; i < NP; i++) free(gy[i]);
    free_grads(h, NP);
    blo_solver_free(s);
    blo_meta_free(&m);
}

static void test_meta_sgd(void) {
    blo_meta m;
    make_meta(&m, 2, 3, 0, 1, 0.08, 13);
    /* Different step sizes per element, so a broadcast mistake shows. */
    for (int i = 0; i < NP; i++)
        for (int64_t k = 0; k < blo_tensor_numel(m.x0[NP + i]); k++)
            blo_tensor_set(m.x0[NP + i], k, 0.05 + 0.01 * (double)((k + i) % 4));
    const int T = 2;
    blo_solver *s = solver_for(&m, "rhg", T, 1.0 /* unused: α */);
    if (!s) return;
    double **h = hypergrad(s, &m, 2 * NP);
    check_fd(&m, 2 * NP, T, 0, h, "rhg (Meta-SGD, θ and α)");
    free_grads(h, 2 * NP);
    blo_solver_free(s);
    blo_meta_free(&m);
}

static void test_imaml(void) {
    blo_meta m;
    make_meta(&m, 2, 3, 4.0, 0, 0, 14);
    /* λ = 4 makes the lower level strongly convex around θ; 100 steps of 0.1 converge it
     * (contraction about 0.6 per step), so the unrolled and implicit meta-gradients agree. */
    const int T = 100;
    const double lr = 0.1;
    blo_solver *sr = solver_for(&m, "rhg", T, lr), *sc = solver_for(&m, "cg", T, lr);
    if (!sr || !sc) return;
    double **hr = hypergrad(sr, &m, NP), **hc = hypergrad(sc, &m, NP);
    double d = max_rel_diff(hc, hr, &m, NP);
    TU_CHECK(d < 1e-6, "iMAML: cg vs converged rhg differ by %.3g (relative)", d);
    /* ... and the implicit one is the finite-difference derivative of the converged loop. */
    check_fd(&m, NP, T, lr, hc, "cg (iMAML)");
    /* The same problem in float32 (CG's vector updates then run on f32 tensors): the f64
     * implicit meta-gradient to float rounding. */
    blo_meta m32;
    blo_rng r;
    blo_rng_seed(&r, 3);
    char err[256];
    if (blo_meta_init(&m32, 2, 3, 3, 4, 4.0, 0, 0, BLO_F32, &r, err, sizeof err) == BLO_OK) {
        blo_tensor *const from[4] = {m.xs, m.ys, m.xq, m.yq}, *const to[4] = {m32.xs, m32.ys,
                                                                           m32.xq, m32.yq};
        for (int q = 0; q < 4; q++) blo_copy_into(to[q], from[q]);
        for (int i = 0; i < NP; i++) blo_copy_into(m32.x0[i], m.x0[i]);
        blo_solver *s32 = solver_for(&m32, "cg", T, lr);
        if (s32) {
            double **h32 = hypergrad(s32, &m32, NP);
            double d32 = max_rel_diff(h32, hc, &m, NP);
            TU_CHECK(d32 < 1e-3, "iMAML: cg in float32 vs float64 differ by %.3g (relative)", d32);
            free_grads(h32, NP);
            blo_solver_free(s32);
        }
        blo_meta_free(&m32);
    } else {
        TU_CHECK(0, "blo_meta_init (f32): %s", err);
    }
    free_grads(hr, NP);
    free_grads(hc, NP);
    blo_solver_free(sr);
    blo_solver_free(sc);
    blo_meta_free(&m);
}

/* Reads `name count values...` lines of the fixture; returns the values of `name` (count
 * checked against want) in a malloc'd array, or NULL. */
static double *fixture(const char *name, int64_t want) {
    FILE *f = fopen(BLO_SOURCE_DIR "/tests/fixtures/maml_sinusoid.txt", "r");
    TU_CHECK(f != NULL, "cannot open the MAML fixture");
    if (!f) return NULL;
    char key[64];
    long long n;
    double *v = NULL;
    for (;;) {
        int c = fgetc(f);
        if (c == EOF) break;
        if (c == '#') {
            while (c != '\n' && c != EOF) c = fgetc(f);
            continue;
        }
        ungetc(c, f);
        if (fscanf(f, "%63s %lld", key, &n) != 2) break;
        int mine = !strcmp(key, name);
        if (mine) v = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
        for (long long k = 0; k < n; k++) {
            double x;
            if (fscanf(f, "%lf", &x) != 1) break;
            if (mine) v[k] = x;
        }
        fgetc(f); /* the newline */
        if (mine) {
            TU_CHECK(n == want, "fixture %s: %lld values, expected %lld", name, n, (long long)want);
            break;
        }
    }
    fclose(f);
    TU_CHECK(v != NULL, "fixture has no %s", name);
    return v;
}

static void set_values(blo_tensor *t, const double *v) {
    for (int64_t k = 0; v && k < blo_tensor_numel(t); k++) blo_tensor_set(t, k, v[k]);
}

static void test_pytorch_fixture(void) {
    double *dims = fixture("dims", 5), *lr = fixture("lr", 1);
    if (!dims || !lr) return;
    int64_t B = (int64_t)dims[0], K = (int64_t)dims[1], Q = (int64_t)dims[2], H = (int64_t)dims[3];
    int T = (int)dims[4];
    blo_meta m;
    blo_rng r;
    blo_rng_seed(&r, 1);
    char err[256];
    if (blo_meta_init(&m, B, H, K, Q, 0, 0, 0, BLO_F32, &r, err, sizeof err)) {
        TU_CHECK(0, "blo_meta_init: %s", err);
        return;
    }
    for (int i = 0; i < NP; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "theta%d", i);
        double *v = fixture(nm, blo_tensor_numel(m.x0[i]));
        set_values(m.x0[i], v);
        free(v);
    }
    blo_tensor *data[4] = {m.xs, m.ys, m.xq, m.yq};
    const char *dn[4] = {"xs", "ys", "xq", "yq"};
    for (int q = 0; q < 4; q++) {
        double *v = fixture(dn[q], blo_tensor_numel(data[q]));
        set_values(data[q], v);
        free(v);
    }
    const char *methods[2] = {"rhg", "first_order"}, *prefix[2] = {"maml", "fomaml"};
    for (int q = 0; q < 2; q++) {
        blo_solver *s = solver_for(&m, methods[q], T, lr[0]);
        if (!s) continue;
        double **h = hypergrad(s, &m, NP);
        if (q == 0) {
            double up, lo, *F = fixture("F", 1);
            blo_solver_values(s, &up, &lo);
            TU_CHECK(F && tu_close(up, F[0], 1e-5, 1e-6), "F %.8g vs PyTorch %.8g", up, F ? F[0] : NAN);
            free(F);
        }
        int bad = 0;
        double worst = 0;
        for (int i = 0; i < NP; i++) {
            char nm[16];
            snprintf(nm, sizeof nm, "%s%d", prefix[q], i);
            double *want = fixture(nm, blo_tensor_numel(m.x0[i]));
            for (int64_t k = 0; want && k < blo_tensor_numel(m.x0[i]); k++) {
                worst = fmax(worst, fabs(h[i][k] - want[k]));
                bad += !tu_close(h[i][k], want[k], 1e-5, 1e-5);
            }
            free(want);
        }
        TU_CHECK(bad == 0, "%s vs PyTorch: %d elements beyond 1e-5 (worst abs error %.3g)",
                 methods[q], bad, worst);
        free_grads(h, NP);
        blo_solver_free(s);
    }
    free(dims);
    free(lr);
    blo_meta_free(&m);
}

static void test_sampler(void) {
    enum { NT = 2000, NPT = 10 };
    static double amp[NT], ph[NT], x[NT * NPT], y[NT * NPT];
    blo_rng r;
    blo_rng_seed(&r, 5);
    blo_sinusoid_sample(&r, NT, NPT, amp, ph, x, y);
    double ma = 0, mp = 0, mx = 0, lo_a = 1e9, hi_a = -1e9, lo_p = 1e9, hi_p = -1e9, lo_x = 1e9,
           hi_x = -1e9;
    int bad = 0;
    for (int t = 0; t < NT; t++) {
        ma += amp[t] / NT;
        mp += ph[t] / NT;
        lo_a = fmin(lo_a, amp[t]);
        hi_a = fmax(hi_a, amp[t]);
        lo_p = fmin(lo_p, ph[t]);
        hi_p = fmax(hi_p, ph[t]);
        for (int k = 0; k < NPT; k++) {
            double u = x[t * NPT + k];
            mx += u / (NT * NPT);
            lo_x = fmin(lo_x, u);
            hi_x = fmax(hi_x, u);
            bad += fabs(y[t * NPT + k] - amp[t] * sin(u - ph[t])) > 1e-12;
        }
    }
    TU_CHECK(lo_a >= 0.1 && hi_a <= 5 && lo_a < 0.2 && hi_a > 4.9, "amplitude range [%g, %g]",
             lo_a, hi_a);
    TU_CHECK(lo_p >= 0 && hi_p <= PI && lo_p < 0.05 && hi_p > PI - 0.05, "phase range [%g, %g]",
             lo_p, hi_p);
    TU_CHECK(lo_x >= -5 && hi_x <= 5 && lo_x < -4.99 && hi_x > 4.99, "input range [%g, %g]", lo_x,
             hi_x);
    /* Means of uniforms: 2.55 ± 1.41/√2000 = 0.032; π/2 ± 0.9/√2000; 0 ± 2.9/√20000. */
    TU_CHECK(fabs(ma - 2.55) < 0.13, "amplitude mean %g", ma);
    TU_CHECK(fabs(mp - PI / 2) < 0.08, "phase mean %g", mp);
    TU_CHECK(fabs(mx) < 0.08, "input mean %g", mx);
    TU_CHECK(bad == 0, "%d targets are not A sin(x - phase)", bad);
}

static void expect_refused(blo_problem *p, blo_config c, const char *needle) {
    char err[512] = "";
    blo_solver *s = blo_solver_new(p, &c, err, sizeof err);
    TU_CHECK(s == NULL && strstr(err, needle), "expected a refusal naming '%s', got '%s'", needle,
             s ? "(accepted)" : err);
    blo_solver_free(s);
}

static void test_refusals(void) {
    blo_meta m;
    make_meta(&m, 2, 3, 0, 1, 0.01, 15);
    blo_problem p = blo_meta_problem(&m);
    blo_config c = blo_config_default();
    c.init = BLO_INIT_FROM_X;
    c.lr_x = NP;
    c.lr_x_per_y = 1;
    c.method = "fhg";
    expect_refused(&p, c, "from_x");
    c.method = "rhg";
    c.lr_x = NP + 1; /* x[12] does not exist */
    expect_refused(&p, c, "per-parameter");
    c.lr_x = 1; /* x[1 + i] against y[i]: b1 [1,H] vs W1 [B,1,H] broadcasts, W2 [H,H] vs b1 not */
    expect_refused(&p, c, "broadcast");
    c.lr_x = NP;
    p.init_y = NULL;
    expect_refused(&p, c, "init_y");
    TU_CHECK(blo_init_kind_parse("from_x") == BLO_INIT_FROM_X, "from_x parses");
    TU_CHECK(!strcmp(blo_init_kind_name(BLO_INIT_FROM_X), "from_x"), "from_x's name");
    blo_meta_free(&m);
}

int main(void) {
    test_maml_second_order();
    test_fomaml();
    test_meta_sgd();
    test_imaml();
    test_pytorch_fixture();
    test_sampler();
    test_refusals();
    return tu_finish("meta");
}
