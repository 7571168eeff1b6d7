/* test_reweight.c — the reweighting task's pieces against oracles:
 *   - the weighting network's meta gradient ∂F(ŵ(φ))/∂φ, ŵ(φ) = w − α ∇_w f(φ, w), against
 *     float64 central differences of F(ŵ(φ)) (each entry of φ), on a tiny problem, with the
 *     weights normalised by the batch size and by their sum, and through the convolutional
 *     classifier (second order through conv and pooling); the same for learning to
 *     reweight's ∂F/∂ε at ε = 0; and rhg through the solver with T = 1 inner SGD step from a
 *     fixed start, which computes the same quantity, equal to it;
 *   - the lower level's value against Σ V(ℓ_i) ℓ_i / B (and / Σ V(ℓ_i)) summed by hand;
 *   - label noise: pair flip maps exactly the first round(rate n) labels c → (c + 1) mod C;
 *     uniform noise changes exactly those rows, to the generator's draws; bad settings refused;
 *   - the long-tailed class sizes against their formula.
 */
#include "../src/tasks/reweight/reweight.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N = 12, NM = 6, D = 3, C = 3, H = 4, HV = 5, S = 5 };
static const double ALPHA = 0.3;

/* F(ŵ(x)) by the problem's own callbacks, values only (x fixed). */
static double meta_value(blo__reweight *h, blo_tensor *const *w0, blo_tensor *const *x) {
    blo_ctx *sc = blo_ctx_new(0);
    blo_problem p = blo__reweight_problem(h);
    blo_tensor *w[BLO__RW_MAXY], *g[BLO__RW_MAXY], *what[BLO__RW_MAXY];
    for (int i = 0; i < h->ny; i++) {
        w[i] = blo_clone(sc, w0[i]);
        blo_set_requires_grad(w[i], 1);
    }
    blo_tensor *xs[4];
    for (int i = 0; i < h->nx; i++) xs[i] = blo_clone(sc, x[i]);
    blo_tensor *f = p.lower(sc, xs, w, NULL, h);
    double F = NAN;
    if (f && !blo_grad(sc, 1, &f, NULL, h->ny, w, 0, g)) {
        for (int i = 0; i < h->ny; i++) what[i] = blo_sub(sc, w[i], blo_scale(sc, g[i], ALPHA));
        blo_tensor *Ft = p.upper(sc, xs, what, NULL, h);
        if (Ft) F = blo_tensor_item(Ft);
    }
    blo_ctx_free(sc);
    return F;
}

/* The meta gradient against central differences, every entry of x; returns the flat gradient
 * (n values) into got. */
static void check_meta_grad(blo__reweight *h, const char *what, double *got, int64_t *nout) {
    blo_ctx *lc = blo_ctx_new(0), *sc = blo_ctx_new(0);
    blo__reweight_online o;
    memset(&o, 0, sizeof o);
    o.opt = blo_opt_sgd(ALPHA);
    blo_tensor *x[4], *gx[4];
    for (int i = 0; i < h->ny; i++) {
        o.w[i] = blo_clone(lc, h->y0[i]);
        blo_set_requires_grad(o.w[i], 1);
    }
    for (int i = 0; i < h->nx; i++) {
        x[i] = blo_clone(lc, h->x0[i]);
        blo_set_requires_grad(x[i], 1);
    }
    TU_CHECK(blo__reweight_meta_grad(h, &o, sc, x, gx) == BLO_OK, "%s: meta gradient: %s", what,
             blo_ctx_error(sc));
    int64_t k = 0;
    double worst = 0, scale = 0;
    for (int i = 0; i < h->nx; i++) {
        int64_t m = blo_tensor_numel(x[i]);
        double g[64];
        blo_tensor_to_f64(gx[i], g);
        for (int64_t j = 0; j < m; j++, k++) {
            double v = blo_tensor_get(x[i], j), e = 1e-6;
            blo_tensor_set(x[i], j, v + e);
            double fp = meta_value(h, o.w, x);
            blo_tensor_set(x[i], j, v - e);
            double fm = meta_value(h, o.w, x);
            blo_tensor_set(x[i], j, v);
            double fd = (fp - fm) / (2 * e);
            got[k] = g[j];
            if (fabs(g[j] - fd) > worst) worst = fabs(g[j] - fd);
            if (fabs(fd) > scale) scale = fabs(fd);
        }
    }
    *nout = k;
    TU_CHECK(scale > 1e-6 && worst <= 1e-6 * scale,
             "%s: meta gradient against central differences: worst error %.3g of %.3g", what,
             worst, scale);
    blo_ctx_free(sc);
    blo_ctx_free(lc);
}

/* f = p.lower at (x0, y0) against Σ V(ℓ_i) ℓ_i / B (h->norm batch) or / Σ V(ℓ_i) (sum), with
 * ℓ_i and V(ℓ_i) read out and summed here. */
static void check_lower_value(blo__reweight *h, const char *what) {
    blo_ctx *sc = blo_ctx_new(0);
    blo_problem p = blo__reweight_problem(h);
    blo_tensor *f = p.lower(sc, h->x0, h->y0, NULL, h);
    blo_tensor *Xb = blo_index_select(sc, h->X, 0, blo_from_i64(sc, 1, &h->batch, h->batch_rows));
    int64_t yb[N];
    for (int64_t i = 0; i < h->batch; i++) yb[i] = h->lab[h->batch_rows[i]];
    blo_tensor *l = blo_cross_entropy(sc, blo__reweight_logits(sc, h, Xb, h->y0),
                                      blo_from_i64(sc, 1, &h->batch, yb), NULL, BLO_REDUCE_NONE);
    double lv[N], vv[N], num = 0, den = 0;
    TU_CHECK(f && l && !blo_tensor_to_f64(l, lv) &&
                 !blo_tensor_to_f64(blo__reweight_vnet(sc, h->x0, l), vv),
             "%s: the lower level's pieces: %s", what, blo_ctx_error(sc));
    for (int64_t i = 0; i < h->batch; i++) num += vv[i] * lv[i], den += vv[i];
    double want = num / (h->norm == BLO_REWEIGHT_NORM_SUM ? den : (double)h->batch);
    double got = f ? blo_tensor_item(f) : NAN;
    TU_CHECK(fabs(got - want) <= 1e-13 * fabs(want),
             "%s: f = %.17g, the weighted losses summed by hand %.17g", what, got, want);
    blo_ctx_free(sc);
}

static void test_meta_grad(void) {
    blo_ctx *ctx = blo_ctx_new(0);
    blo_rng r;
    blo_rng_seed(&r, 7);
    blo_tensor *X = tu_rand(ctx, &r, BLO_F64, 2, (int64_t[]){N, D}, -2, 2);
    blo_tensor *Xm = tu_rand(ctx, &r, BLO_F64, 2, (int64_t[]){NM, D}, -2, 2);
    int64_t lab[N], lab_m[NM], rows[N], mrows[NM];
    for (int i = 0; i < N; i++) lab[i] = (int64_t)blo_rng_below(&r, C), rows[i] = N - 1 - i;
    for (int i = 0; i < NM; i++) lab_m[i] = i % C, mrows[i] = (i * 5) % NM;
    blo_tensor *y = blo_from_i64(ctx, 1, (int64_t[]){N}, lab);
    blo_tensor *ym = blo_from_i64(ctx, 1, (int64_t[]){NM}, lab_m);
    blo_set_requires_grad(X, 0);
    blo_set_requires_grad(Xm, 0);
    char err[256];

    blo__reweight h;
    blo_rng g;
    blo_rng_seed(&g, 3);
    TU_CHECK(blo__reweight_init(&h, X, y, Xm, ym, C, BLO_REWEIGHT_MLP, H, HV, N, NM, BLO_REWEIGHT_NETWORK, &g, err,
                                sizeof err) == BLO_OK,
             "init: %s", err);
    /* A weighting network whose output is not flat on these losses: larger first layer. */
    blo_init_uniform(h.x0[0], &g, -2, 2);
    blo_init_uniform(h.x0[2], &g, -2, 2);
    h.batch_rows = rows;
    h.meta_rows = mrows;
    double online[64];
    int64_t n = 0;
    check_lower_value(&h, "batch");
    h.norm = BLO_REWEIGHT_NORM_SUM;
    check_lower_value(&h, "sum");
    check_meta_grad(&h, "network, weights / their sum", online, &n);
    h.norm = BLO_REWEIGHT_NORM_BATCH;
    check_meta_grad(&h, "network, weights / B", online, &n);

    /* rhg through the solver, one SGD step from the fixed start: the same gradient. */
    blo_problem p = blo__reweight_problem(&h);
    blo_config c = blo_config_default();
    c.method = "rhg";
    c.inner = blo_opt_sgd(ALPHA);
    c.inner_steps = 1;
    c.init = BLO_INIT_FIXED;
    blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
    TU_CHECK(s != NULL, "solver: %s", err);
    double *hg[4] = {0};
    int64_t sizes[4], k = 0;
    for (int i = 0; i < 4; i++) {
        sizes[i] = blo_tensor_numel(h.x0[i]);
        hg[i] = malloc(sizeof(double) * (size_t)sizes[i]);
    }
    TU_CHECK(s && blo_solver_hypergrad(s, hg) == BLO_OK, "rhg hypergradient: %s",
             s ? blo_solver_error(s) : "");
    double worst = 0, scale = 0;
    for (int i = 0; i < 4; i++)
        for (int64_t j = 0; j < sizes[i]; j++, k++) {
            worst = fmax(worst, fabs(hg[i][j] - online[k]));
            scale = fmax(scale, fabs(online[k]));
        }
    TU_CHECK(k == n && worst <= 1e-12 * scale,
             "rhg with T = 1 equals the online meta gradient: %.3g of %.3g", worst, scale);
    for (int i = 0; i < 4; i++) free(hg[i]);
    blo_solver_free(s);
    blo__reweight_free(&h);

    /* Learning to reweight: ∂F/∂ε at ε = 0. */
    blo_rng_seed(&g, 3);
    TU_CHECK(blo__reweight_init(&h, X, y, Xm, ym, C, BLO_REWEIGHT_MLP, H, HV, N, NM, BLO_REWEIGHT_PER_EXAMPLE, &g,
                                err, sizeof err) == BLO_OK,
             "init: %s", err);
    h.batch_rows = rows;
    h.meta_rows = mrows;
    check_meta_grad(&h, "per-example", online, &n);
    TU_CHECK(n == N, "one weight per batch example: %lld", (long long)n);
    blo__reweight_free(&h);
    blo_ctx_free(ctx);
}

/* The convolutional classifier on 5×5 images (q = 1): the meta gradient through the virtual
 * step, second order through conv, ReLU and max pooling, against central differences. */
static void test_conv_meta_grad(void) {
    blo_ctx *ctx = blo_ctx_new(0);
    blo_rng r;
    blo_rng_seed(&r, 11);
    blo_tensor *X = tu_rand(ctx, &r, BLO_F64, 2, (int64_t[]){N, S * S}, -1, 1);
    blo_tensor *Xm = tu_rand(ctx, &r, BLO_F64, 2, (int64_t[]){NM, S * S}, -1, 1);
    int64_t lab[N], lab_m[NM], rows[N], mrows[NM];
    for (int i = 0; i < N; i++) lab[i] = (int64_t)blo_rng_below(&r, C), rows[i] = (i * 5) % N;
    for (int i = 0; i < NM; i++) lab_m[i] = i % C, mrows[i] = NM - 1 - i;
    blo_tensor *y = blo_from_i64(ctx, 1, (int64_t[]){N}, lab);
    blo_tensor *ym = blo_from_i64(ctx, 1, (int64_t[]){NM}, lab_m);
    char err[256];
    blo__reweight h;
    blo_rng g;
    blo_rng_seed(&g, 4);
    TU_CHECK(blo__reweight_init(&h, X, y, Xm, ym, C, BLO_REWEIGHT_CONV, 2, HV, N, NM,
                                BLO_REWEIGHT_NETWORK, &g, err, sizeof err) == BLO_OK,
             "conv init: %s", err);
    TU_CHECK(h.ny == 6 && blo_tensor_dim(h.y0[4], 0) == 4 && blo_tensor_dim(h.y0[2], 0) == 4,
             "conv: 6 tensors, 2K = 4 channels, 4 q² = 4 features into the head");
    blo_init_uniform(h.x0[0], &g, -2, 2);
    blo_init_uniform(h.x0[2], &g, -2, 2);
    for (int i = 0; i < 6; i += 2) blo_init_uniform(h.y0[i], &g, -1, 1);
    h.batch_rows = rows;
    h.meta_rows = mrows;
    double got[64];
    int64_t n = 0;
    check_meta_grad(&h, "conv classifier", got, &n);
    blo__reweight_free(&h);
    blo_tensor *X3 = tu_rand(ctx, &r, BLO_F64, 2, (int64_t[]){N, 3 * 3}, -1, 1);
    blo_tensor *Xm3 = tu_rand(ctx, &r, BLO_F64, 2, (int64_t[]){NM, 3 * 3}, -1, 1);
    TU_CHECK(blo__reweight_init(&h, X3, y, Xm3, ym, C, BLO_REWEIGHT_CONV, 2, HV, N, NM,
                                BLO_REWEIGHT_NETWORK, &g, err, sizeof err) == BLO_ERR_INVALID &&
                 strstr(err, "side >= 4"),
             "conv on 3x3 images is refused with a message: %s", err);
    blo_ctx_free(ctx);
}

static void test_noise(void) {
    enum { M = 40, K = 4 };
    int64_t a[M], b[M];
    for (int i = 0; i < M; i++) a[i] = b[i] = i % K;
    blo_rng g;
    blo_rng_seed(&g, 1);
    TU_CHECK(blo_label_noise(&g, a, M, K, 0.3, BLO_NOISE_PAIR) == 12, "pair flip: 12 of 40");
    int ok = 1;
    for (int i = 0; i < M; i++) ok &= a[i] == (i < 12 ? (b[i] + 1) % K : b[i]);
    TU_CHECK(ok, "pair flip maps the first 12 labels c -> (c + 1) mod 4 and keeps the rest");
    blo_rng h;
    blo_rng_seed(&g, 5);
    blo_rng_seed(&h, 5);
    for (int i = 0; i < M; i++) a[i] = b[i];
    TU_CHECK(blo_label_noise(&g, a, M, K, 0.5, BLO_NOISE_UNIFORM) == 20, "uniform: 20 of 40");
    ok = 1;
    for (int i = 0; i < M; i++) ok &= a[i] == (i < 20 ? (int64_t)blo_rng_below(&h, K) : b[i]);
    TU_CHECK(ok, "uniform noise redraws the first 20 labels from the generator, in order");
    TU_CHECK(blo_label_noise(&g, a, M, K, 0.0, BLO_NOISE_PAIR) == 0 &&
                 blo_label_noise(&g, a, M, K, 1.0001, BLO_NOISE_PAIR) == -1 &&
                 blo_label_noise(&g, a, M, 1, 0.5, BLO_NOISE_PAIR) == -1,
             "rate 0 changes nothing; a rate above 1 or one class is refused");
    int64_t cnt[10];
    TU_CHECK(blo_long_tail_counts(10, 1000, 100, cnt) > 0 && cnt[0] == 1000 && cnt[9] == 10 &&
                 cnt[1] == 599 && cnt[5] == 77,
             "long tail, factor 100: %lld %lld %lld %lld (1000 599 77 10)", (long long)cnt[0],
             (long long)cnt[1], (long long)cnt[5], (long long)cnt[9]);
    TU_CHECK(blo_long_tail_counts(10, 1000, 0.5, cnt) == -1, "a factor below 1 is refused");
}

int main(void) {
    test_meta_grad();
    test_conv_meta_grad();
    test_noise();
    return tu_finish("test_reweight");
}
