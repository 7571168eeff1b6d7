/* test_learnopt.c — the learned optimizer (blo/learnopt.h), in float64 on a tiny fixed sample:
 *   - at its start (blo_learnopt_init) the update is Adam's: T steps equal optim/'s Adam;
 *   - one step with random weights equals the formula of the header computed in plain C;
 *   - the meta-gradient through T recorded steps (rhg, and trhg with a window of T) of the
 *     mean loss along the trajectory against central finite differences of the same unroll
 *     run values-only, every weight of the optimizer;
 *   - save / load round-trips float64 and float32 weights bit for bit, and a saved file loads
 *     and saves to the same bytes;
 *   - malformed files (header, version, sizes, truncation, trailing bytes, checksum, a
 *     non-finite value, a missing file) are refused with a message naming the problem. */
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { N = 12, D = 5, HID = 4, C = 3, NP = 4, NY = 4 * NP + 2, OH = 3, T = 4 };

typedef struct fixture {
    blo_ctx *ctx;
    blo_tensor *X, *lab;
} fixture;

/* The optimizee: Linear(D, HID) → tanh → Linear(HID, C), mean cross-entropy on all N rows. */
static blo_tensor *loss_fn(blo_ctx *ctx, blo_tensor *const *th, void *user) {
    const fixture *f = user;
    blo_tensor *h = blo_tanh(ctx, blo_linear(ctx, f->X, th[0], th[1]));
    return blo_cross_entropy(ctx, blo_linear(ctx, h, th[2], th[3]), f->lab, NULL, BLO_REDUCE_MEAN);
}

static blo_tensor *lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                         const blo_eval *ev, void *user) {
    (void)x, (void)ev;
    return loss_fn(ctx, y, user);
}

static blo_tensor *upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                         const blo_eval *ev, void *user) {
    (void)x, (void)ev, (void)user;
    return blo_scale(ctx, y[4 * NP + 1], 1.0 / T);
}

static void make_fixture(fixture *f, blo_rng *r) {
    f->ctx = blo_ctx_new(0);
    int64_t xs[2] = {N, D}, n = N, lab[N];
    f->X = tu_rand(f->ctx, r, BLO_F64, 2, xs, -1, 1);
    blo_set_requires_grad(f->X, 0);
    for (int i = 0; i < N; i++)
        lab[i] = (int64_t)blo_rng_below(r, C);
    f->lab = blo_from_i64(f->ctx, 1, &n, lab);
}

static void make_params(blo_ctx *ctx, blo_rng *r, blo_tensor **th) {
    int64_t s0[2] = {HID, D}, s1 = HID, s2[2] = {C, HID}, s3 = C;
    th[0] = tu_rand(ctx, r, BLO_F64, 2, s0, -0.5, 0.5);
    th[1] = tu_rand(ctx, r, BLO_F64, 1, &s1, -0.1, 0.1);
    th[2] = tu_rand(ctx, r, BLO_F64, 2, s2, -0.5, 0.5);
    th[3] = tu_rand(ctx, r, BLO_F64, 1, &s3, -0.1, 0.1);
}

/* Random optimizer weights: the init's shapes, every value drawn (W₂ ≠ 0, so the MLP acts). */
static void random_weights(blo_ctx *ctx, blo_rng *r, blo_tensor **x) {
    TU_CHECK(blo_learnopt_init(ctx, BLO_F64, OH, 1e-2, r, x) == BLO_OK, "init: %s",
             blo_ctx_error(ctx));
    for (int i = 0; i < 5; i++)
        for (int64_t k = 0; k < blo_tensor_numel(x[i]); k++)
            blo_tensor_set(x[i], k, blo_rng_uniform(r) - 0.5);
}

/* F after `steps` values-only steps of the learned update from the start y0 (a copy). */
static double unroll_values(const fixture *f, blo_tensor *const *x, blo_tensor *const *y0) {
    blo_ctx *c = blo_ctx_new(0);
    blo_tensor *y[NY], *yn[NY], *g[NP];
    for (int i = 0; i < NY; i++) {
        y[i] = blo_clone(c, y0[i]);
        blo_set_requires_grad(y[i], 1);
    }
    blo_learnopt_update_user u = {NP, loss_fn, (void *)f};
    for (int t = 0; t < T; t++) {
        blo_tensor *L = loss_fn(c, y, (void *)f);
        blo_grad(c, 1, &L, NULL, NP, y, 0, g);
        blo_ctx_set_recording(c, 0);
        blo_learnopt_update(c, BLO_LEARNOPT_NX, x, NY, y, g, t, yn, &u);
        for (int i = 0; i < NY; i++)
            blo_copy_into(y[i], yn[i]);
        blo_ctx_set_recording(c, 1);
    }
    tu_check_ok(c, "values-only unroll");
    double F = blo_tensor_item(y[4 * NP + 1]) / T;
    blo_ctx_free(c);
    return F;
}

static void test_start_is_adam(void) {
    blo_rng r;
    blo_rng_seed(&r, 3);
    fixture f;
    make_fixture(&f, &r);
    blo_ctx *c = f.ctx;
    blo_tensor *x[BLO_LEARNOPT_NX], *th[NP], *y[NY], *yn[NY], *g[NP], *g2[NP];
    TU_CHECK(blo_learnopt_init(c, BLO_F64, OH, 0.01, &r, x) == BLO_OK, "init");
    make_params(c, &r, th);
    blo_learnopt_state(c, NP, th, y);
    blo_opt adam = blo_opt_adam(0.01);
    blo_opt_state st;
    blo_opt_state_init(c, &adam, NP, th, &st);
    blo_learnopt_update_user u = {NP, NULL, NULL};
    double worst = 0;
    for (int t = 0; t < 5; t++) {
        blo_tensor *L = loss_fn(c, y, &f), *L2 = loss_fn(c, th, &f);
        blo_grad(c, 1, &L, NULL, NP, y, 0, g);
        blo_grad(c, 1, &L2, NULL, NP, th, 0, g2);
        blo_learnopt_update(c, BLO_LEARNOPT_NX, x, NY, y, g, t, yn, &u);
        blo_opt_step(c, &adam, &st, NP, th, g2);
        for (int i = 0; i < NY; i++)
            blo_copy_into(y[i], yn[i]);
        for (int i = 0; i < NP; i++)
            worst = fmax(worst, blo_tensor_item(blo_max(
                                    c, blo_abs(c, blo_sub(c, y[i], th[i])), 0, NULL, 0)));
    }
    tu_check_ok(c, "start is adam");
    TU_CHECK(worst < 1e-14, "the initial learned optimizer is Adam: largest difference %.3g",
             worst);
    blo_ctx_free(c);
}

/* One step by the header's formula in plain C, on every coordinate, against the op version. */
static void test_step_formula(void) {
    blo_rng r;
    blo_rng_seed(&r, 5);
    blo_ctx *c = blo_ctx_new(0);
    blo_tensor *x[BLO_LEARNOPT_NX], *th[1], *y[6], *yn[6], *g[1];
    random_weights(c, &r, x);
    int64_t s = 7;
    th[0] = tu_rand(c, &r, BLO_F64, 1, &s, -1, 1);
    blo_learnopt_state(c, 1, th, y);
    /* a state some steps in: moments and k = 3 */
    double m1[7], m2[7], v[7], gv[7], tv[7], xv[BLO_LEARNOPT_NX][16];
    for (int k = 0; k < 7; k++) {
        m1[k] = blo_rng_uniform(&r) - 0.5, m2[k] = blo_rng_uniform(&r) - 0.5;
        v[k] = blo_rng_uniform(&r), gv[k] = blo_rng_uniform(&r) - 0.5;
    }
    blo_tensor_copy_from_host(y[1], BLO_F64, m1);
    blo_tensor_copy_from_host(y[2], BLO_F64, m2);
    blo_tensor_copy_from_host(y[3], BLO_F64, v);
    blo_tensor_set(y[4], 0, 3);
    g[0] = blo_from_f64(c, BLO_F64, 1, &s, gv);
    blo_tensor_to_f64(th[0], tv);
    for (int i = 0; i < BLO_LEARNOPT_NX; i++)
        blo_tensor_to_f64(x[i], xv[i]);
    blo_learnopt_update_user u = {1, NULL, NULL};
    TU_CHECK(blo_learnopt_update(c, BLO_LEARNOPT_NX, x, 6, y, g, 0, yn, &u) == BLO_OK, "update");
    double got[7], worst = 0, kk = 4;
    blo_tensor_to_f64(yn[0], got);
    for (int k = 0; k < 7; k++) {
        double a = 0.9 * m1[k] + 0.1 * gv[k], b = 0.99 * m2[k] + 0.01 * gv[k],
               w = 0.999 * v[k] + 0.001 * gv[k] * gv[k];
        double rr = sqrt(w / (1 - pow(0.999, kk)) + 1e-16) + 1e-8;
        double in[4] = {gv[k] / rr, a / (1 - pow(0.9, kk)) / rr, b / (1 - pow(0.99, kk)) / rr,
                        tv[k]};
        double d = xv[3][0];
        for (int j = 0; j < OH; j++) {
            double z = xv[1][j];
            for (int q = 0; q < 4; q++)
                z += xv[0][j * 4 + q] * in[q];
            d += xv[2][j] * tanh(z);
        }
        for (int q = 0; q < 4; q++)
            d += xv[4][q] * in[q];
        double want = tv[k] - exp(xv[5][0]) * d;
        worst = fmax(worst, fabs(got[k] - want) / fmax(1e-12, fabs(want)));
    }
    TU_CHECK(worst < 1e-13, "one learned step against the formula: relative error %.3g", worst);
    TU_CHECK(blo_tensor_item(yn[4]) == 4, "the step count advances: %g", blo_tensor_item(yn[4]));
    blo_ctx_free(c);
}

static void test_meta_gradient(void) {
    blo_rng r;
    blo_rng_seed(&r, 7);
    fixture f;
    make_fixture(&f, &r);
    blo_ctx *c = f.ctx;
    blo_tensor *x[BLO_LEARNOPT_NX], *th[NP], *y[NY];
    random_weights(c, &r, x);
    blo_tensor_set(x[5], 0, log(0.05));
    make_params(c, &r, th);
    blo_learnopt_state(c, NP, th, y);
    blo_problem p = {.nx = BLO_LEARNOPT_NX, .x = x, .ny = NY, .y = y, .upper = upper,
                     .lower = lower, .user = &f, .x_lo = -INFINITY, .x_hi = INFINITY};
    blo_learnopt_update_user u = {NP, loss_fn, &f};
    int64_t total = 0, off[BLO_LEARNOPT_NX + 1] = {0};
    for (int i = 0; i < BLO_LEARNOPT_NX; i++)
        off[i + 1] = total += blo_tensor_numel(x[i]);
    double *hg = calloc((size_t)total, sizeof(double)), *ht = calloc((size_t)total, sizeof(double));
    const char *methods[2] = {"rhg", "trhg"};
    for (int mth = 0; mth < 2; mth++) {
        blo_config cfg = blo_config_default();
        cfg.method = methods[mth];
        cfg.inner_steps = T;
        cfg.trhg_window = T;
        cfg.inner_update = blo_learnopt_update;
        cfg.inner_update_user = &u;
        char err[256];
        blo_solver *s = blo_solver_new(&p, &cfg, err, sizeof err);
        TU_CHECK(s != NULL, "solver: %s", err);
        if (!s) continue;
        double *out[BLO_LEARNOPT_NX];
        for (int i = 0; i < BLO_LEARNOPT_NX; i++)
            out[i] = (mth ? ht : hg) + off[i];
        TU_CHECK(blo_solver_hypergrad(s, out) == BLO_OK, "%s: %s", methods[mth],
                 blo_solver_error(s));
        double Fs, fs;
        blo_solver_values(s, &Fs, &fs);
        TU_CHECK(tu_close(Fs, unroll_values(&f, x, y), 1e-12, 0),
                 "%s: F = %.15g is the mean loss along the values-only unroll", methods[mth], Fs);
        blo_solver_free(s);
    }
    /* central differences of the values-only unroll in every weight */
    double *fd = calloc((size_t)total, sizeof(double)), h = 1e-6;
    for (int i = 0; i < BLO_LEARNOPT_NX; i++)
        for (int64_t k = 0; k < blo_tensor_numel(x[i]); k++) {
            double v = blo_tensor_get(x[i], k);
            blo_tensor_set(x[i], k, v + h);
            double Fp = unroll_values(&f, x, y);
            blo_tensor_set(x[i], k, v - h);
            double Fm = unroll_values(&f, x, y);
            blo_tensor_set(x[i], k, v);
            fd[off[i] + k] = (Fp - Fm) / (2 * h);
        }
    double e_rhg = tu_max_rel((int)total, hg, fd), e_trhg = tu_max_rel((int)total, ht, hg);
    TU_CHECK(e_rhg < 1e-7, "rhg through %d learned steps vs finite differences: %.3g", T, e_rhg);
    TU_CHECK(e_trhg < 1e-12, "trhg (window T) vs rhg: %.3g", e_trhg);
    double norm = 0;
    for (int64_t k = 0; k < total; k++)
        norm += fd[k] * fd[k];
    TU_CHECK(sqrt(norm) > 1e-4, "the meta-gradient is not trivially zero: %.3g", sqrt(norm));
    printf("learned-optimizer meta-gradient (%lld weights, T = %d): rhg vs central differences "
           "%.2e, trhg vs rhg %.2e\n",
           (long long)total, T, e_rhg, e_trhg);
    free(hg), free(ht), free(fd);
    blo_ctx_free(c);
}

static const char *tmp_path(const char *name) {
    static char buf[512];
    const char *dir = getenv("TMPDIR");
    snprintf(buf, sizeof buf, "%s/blo_test_learnopt_%d_%s", dir && *dir ? dir : "/tmp",
             (int)getpid(), name);
    return buf;
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len + 16);
    if (fread(b, 1, *len, f) != *len) *len = 0;
    fclose(f);
    return b;
}

static uint64_t fnv(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static void reseal(unsigned char *b, size_t len) {
    uint64_t h = fnv(b, len - 8);
    for (int i = 0; i < 8; i++)
        b[len - 8 + i] = (unsigned char)(h >> (8 * i));
}

static void expect_refused(const unsigned char *b, size_t len, const char *what,
                           const char *needle) {
    blo_ctx *c = blo_ctx_new(0);
    blo_tensor *x[BLO_LEARNOPT_NX];
    char err[512] = "";
    blo_status st = blo_learnopt_parse(b, len, "opt.blo", c, BLO_F64, x, NULL, err, sizeof err);
    TU_CHECK(st == BLO_ERR_FORMAT && strstr(err, needle) && strstr(err, "opt.blo"),
             "%s: status %d, message \"%s\" (expected one naming \"%s\")", what, (int)st, err,
             needle);
    blo_ctx_free(c);
}

static void test_file(void) {
    blo_rng r;
    blo_rng_seed(&r, 11);
    const blo_dtype dts[2] = {BLO_F64, BLO_F32};
    const char *path = tmp_path("opt.blo"), *path2 = NULL;
    char p2[512];
    snprintf(p2, sizeof p2, "%s2", path);
    path2 = p2;
    for (int di = 0; di < 2; di++) {
        blo_ctx *c = blo_ctx_new(0);
        blo_tensor *x[BLO_LEARNOPT_NX], *xl[BLO_LEARNOPT_NX];
        TU_CHECK(blo_learnopt_init(c, dts[di], 5, 3e-3, &r, x) == BLO_OK, "init");
        for (int i = 0; i < BLO_LEARNOPT_NX; i++)
            for (int64_t k = 0; k < blo_tensor_numel(x[i]); k++)
                blo_tensor_set(x[i], k, blo_rng_normal(&r) / 3.0);
        char err[512] = "";
        TU_CHECK(blo_learnopt_save(path, x, err, sizeof err) == BLO_OK, "save: %s", err);
        int64_t H = 0;
        TU_CHECK(blo_learnopt_load(path, c, dts[di], xl, &H, err, sizeof err) == BLO_OK,
                 "load: %s", err);
        TU_CHECK(H == 5, "hidden width read back: %lld", (long long)H);
        int same = 1;
        for (int i = 0; i < BLO_LEARNOPT_NX; i++) {
            size_t bytes = (size_t)blo_tensor_numel(x[i]) * (dts[di] == BLO_F64 ? 8 : 4);
            unsigned char a[64 * 8], b[64 * 8];
            blo_tensor_copy_to_host(x[i], dts[di], a);
            blo_tensor_copy_to_host(xl[i], dts[di], b);
            same &= blo_tensor_numel(x[i]) == blo_tensor_numel(xl[i]) && !memcmp(a, b, bytes);
        }
        TU_CHECK(same, "%s weights round-trip bit for bit", blo_dtype_name(dts[di]));
        TU_CHECK(blo_learnopt_save(path2, xl, err, sizeof err) == BLO_OK, "save again: %s", err);
        size_t la = 0, lb = 0;
        unsigned char *fa = slurp(path, &la), *fb = slurp(path2, &lb);
        TU_CHECK(fa && fb && la == lb && la > 0 && !memcmp(fa, fb, la),
                 "load then save gives the same bytes");
        free(fa), free(fb);
        blo_tensor_set(x[2], 0, NAN);
        TU_CHECK(blo_learnopt_save(path2, x, err, sizeof err) == BLO_ERR_INVALID &&
                     strstr(err, "tensor 2"),
                 "a non-finite weight is not saved: %s", err);
        blo_ctx_free(c);
    }

    /* Malformed files, each derived from the last good one (float32 weights, H = 5). */
    size_t len = 0;
    unsigned char *good = slurp(path, &len), *b = malloc(len + 16);
    TU_CHECK(good && len > 64, "the saved file can be read");
    if (!good || len <= 64) return;
    memcpy(b, good, len);
    b[0] = 'X';
    expect_refused(b, len, "bad magic", "BLOLOPT1");
    memcpy(b, good, len);
    b[8] = 2;
    reseal(b, len);
    expect_refused(b, len, "version 2", "version 2");
    memcpy(b, good, len);
    b[12] = 5;
    reseal(b, len);
    expect_refused(b, len, "5 inputs", "5 inputs");
    memcpy(b, good, len);
    b[16] = 6; /* hidden 6: the sizes no longer agree */
    reseal(b, len);
    expect_refused(b, len, "wrong width", "truncated");
    expect_refused(good, len - 9, "truncated", "truncated");
    memcpy(b, good, len);
    b[len] = 0;
    reseal(b, len + 1);
    expect_refused(b, len + 1, "trailing byte", "trailing");
    memcpy(b, good, len);
    b[50] ^= 0x10; /* inside tensor 0's first value: only the checksum sees it */
    expect_refused(b, len, "flipped bit", "checksum");
    memcpy(b, good, len);
    b[24] = 3; /* tensor 0 claims 3 dimensions */
    reseal(b, len);
    expect_refused(b, len, "dimensions", "offset 24: tensor 0 has 3 dimensions");
    memcpy(b, good, len);
    b[28] = 9; /* tensor 0's first dimension 9, not 5 */
    reseal(b, len);
    expect_refused(b, len, "dimension", "offset 28: tensor 0, dimension 0 is 9");
    memcpy(b, good, len);
    const double nan = NAN;
    memcpy(b + 4 + 24 + 16, &nan, 8); /* tensor 0's first value */
    reseal(b, len);
    expect_refused(b, len, "NaN", "value 0 is not finite");
    expect_refused(good, 3, "three bytes", "BLOLOPT1");
    blo_ctx *c = blo_ctx_new(0);
    blo_tensor *x[BLO_LEARNOPT_NX];
    char err[512] = "";
    blo_status st = blo_learnopt_load(tmp_path("missing.blo"), c, BLO_F32, x, NULL, err, sizeof err);
    TU_CHECK(st == BLO_ERR_IO && strstr(err, "missing.blo"), "a missing file: %d %s", (int)st, err);
    blo_ctx_free(c);
    free(good), free(b);
    remove(path), remove(path2);
}

int main(void) {
    test_start_is_adam();
    test_step_formula();
    test_meta_gradient();
    test_file();
    return tu_finish("learnopt");
}
