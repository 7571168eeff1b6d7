/* testutil.c — see testutil.h. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int tu_passed, tu_failed;

int tu_close(double a, double b, double rtol, double atol) {
    if (isnan(a) || isnan(b)) return 0;
    return fabs(a - b) <= atol + rtol * fabs(b);
}

double tu_check_close_f64(const blo_tensor *got, const double *want, double rtol, double atol,
                          const char *what) {
    if (!got) {
        TU_CHECK(0, "%s: tensor is NULL", what);
        return INFINITY;
    }
    int64_t n = blo_tensor_numel(got);
    double worst = 0;
    int64_t bad = -1;
    for (int64_t i = 0; i < n; i++) {
        double a = blo_tensor_get(got, i), b = want[i];
        double rel = fabs(a - b) / (fabs(b) > 1e-300 ? fabs(b) : 1.0);
        if (!tu_close(a, b, rtol, atol) && bad < 0) bad = i;
        if (rel > worst || isnan(rel)) worst = isnan(rel) ? INFINITY : rel;
    }
    if (bad >= 0)
        TU_CHECK(0, "%s: element %lld is %.10g, expected %.10g (rtol %g, atol %g)", what,
                 (long long)bad, blo_tensor_get(got, bad), want[bad], rtol, atol);
    else
        tu_passed++;
    return worst;
}

double tu_check_close(const blo_tensor *got, const blo_tensor *want, double rtol, double atol,
                      const char *what) {
    if (!got || !want) {
        TU_CHECK(0, "%s: tensor is NULL", what);
        return INFINITY;
    }
    int64_t n = blo_tensor_numel(want);
    if (blo_tensor_numel(got) != n) {
        TU_CHECK(0, "%s: %lld elements, expected %lld", what, (long long)blo_tensor_numel(got),
                 (long long)n);
        return INFINITY;
    }
    double *w = malloc(sizeof(double) * (size_t)(n ? n : 1));
    blo_tensor_to_f64(want, w);
    double r = tu_check_close_f64(got, w, rtol, atol, what);
    free(w);
    return r;
}

void tu_check_ok(blo_ctx *ctx, const char *what) {
    TU_CHECK(blo_ctx_status(ctx) == BLO_OK, "%s: %s: %s", what,
             blo_status_name(blo_ctx_status(ctx)), blo_ctx_error(ctx));
}

blo_tensor *tu_rand(blo_ctx *ctx, blo_rng *r, blo_dtype dt, int ndim, const int64_t *shape,
                    double lo, double hi) {
    blo_tensor *t = blo_tensor_new(ctx, dt, ndim, shape);
    if (!t) return NULL;
    blo_init_uniform(t, r, lo, hi);
    blo_set_requires_grad(t, 1);
    return t;
}

/* f at the current inputs, without recording. */
static double eval(blo_ctx *ctx, tu_fn f, void *env, blo_tensor *const *in) {
    blo_mark m = blo_ctx_mark(ctx);
    int old = blo_ctx_set_recording(ctx, 0);
    blo_tensor *y = f(ctx, in, env);
    double v = y ? blo_tensor_item(y) : NAN;
    blo_ctx_set_recording(ctx, old);
    blo_ctx_rewind(ctx, m);
    return v;
}

/* Gradient at the current inputs into out (concatenated). */
static int grad_at(blo_ctx *ctx, tu_fn f, void *env, int n, blo_tensor *const *in, double *out) {
    blo_mark m = blo_ctx_mark(ctx);
    blo_tensor *y = f(ctx, in, env);
    blo_tensor *g[16];
    blo_status s = y ? blo_grad(ctx, 1, &y, NULL, n, in, 0, g) : blo_ctx_status(ctx);
    if (!s) {
        int64_t off = 0;
        for (int i = 0; i < n; i++) {
            blo_tensor_to_f64(g[i], out + off);
            off += blo_tensor_numel(in[i]);
        }
    }
    blo_ctx_rewind(ctx, m);
    return s;
}

void tu_gradcheck(blo_ctx *ctx, const char *name, tu_fn f, void *env, int n,
                  blo_tensor *const *in, int check_hvp) {
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += blo_tensor_numel(in[i]);
    double *g = calloc((size_t)total + 1, sizeof(double));
    double *fd = calloc((size_t)total + 1, sizeof(double));
    if (grad_at(ctx, f, env, n, in, g)) {
        TU_CHECK(0, "%s: blo_grad failed: %s", name, blo_ctx_error(ctx));
        blo_ctx_clear_error(ctx);
        free(g);
        free(fd);
        return;
    }
    const double eps = 1e-6;
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        int64_t m = blo_tensor_numel(in[i]);
        for (int64_t j = 0; j < m; j++) {
            double x0 = blo_tensor_get(in[i], j);
            blo_tensor_set(in[i], j, x0 + eps);
            double fp = eval(ctx, f, env, in);
            blo_tensor_set(in[i], j, x0 - eps);
            double fm = eval(ctx, f, env, in);
            blo_tensor_set(in[i], j, x0);
            fd[off + j] = (fp - fm) / (2 * eps);
        }
        off += m;
    }
    int64_t bad = -1;
    for (int64_t k = 0; k < total; k++)
        if (!tu_close(g[k], fd[k], 1e-5, 1e-6) && bad < 0) bad = k;
    TU_CHECK(bad < 0, "%s: gradient element %lld is %.10g, finite differences give %.10g", name,
             (long long)bad, bad >= 0 ? g[bad] : 0, bad >= 0 ? fd[bad] : 0);

    if (check_hvp) {
        blo_rng r;
        blo_rng_seed(&r, 1234);
        blo_mark m0 = blo_ctx_mark(ctx);
        blo_tensor *v[16], *u[16], *hv[16], *hu[16];
        for (int i = 0; i < n; i++) {
            v[i] = blo_tensor_new(ctx, blo_tensor_dtype(in[i]), blo_tensor_ndim(in[i]),
                                  blo_tensor_shape(in[i]));
            u[i] = blo_tensor_new(ctx, blo_tensor_dtype(in[i]), blo_tensor_ndim(in[i]),
                                  blo_tensor_shape(in[i]));
            blo_init_uniform(v[i], &r, -1, 1);
            blo_init_uniform(u[i], &r, -1, 1);
        }
        blo_tensor *y = f(ctx, in, env);
        blo_status s = blo_hvp(ctx, y, n, in, v, 0, hv);
        blo_tensor *y2 = f(ctx, in, env);
        if (!s) s = blo_hvp(ctx, y2, n, in, u, 0, hu);
        if (s) {
            TU_CHECK(0, "%s: blo_hvp failed: %s", name, blo_ctx_error(ctx));
            blo_ctx_clear_error(ctx);
        } else {
            double *gp = calloc((size_t)total + 1, sizeof(double));
            double *gm = calloc((size_t)total + 1, sizeof(double));
            double *x0 = calloc((size_t)total + 1, sizeof(double));
            double uhv = 0, vhu = 0;
            off = 0;
            for (int i = 0; i < n; i++) {
                int64_t mm = blo_tensor_numel(in[i]);
                for (int64_t j = 0; j < mm; j++) {
                    x0[off + j] = blo_tensor_get(in[i], j);
                    uhv += blo_tensor_get(u[i], j) * blo_tensor_get(hv[i], j);
                    vhu += blo_tensor_get(v[i], j) * blo_tensor_get(hu[i], j);
                }
                off += mm;
            }
            const double he = 1e-5;
            for (int sign = -1; sign <= 1; sign += 2) {
                off = 0;
                for (int i = 0; i < n; i++) {
                    int64_t mm = blo_tensor_numel(in[i]);
                    for (int64_t j = 0; j < mm; j++)
                        blo_tensor_set(in[i], j, x0[off + j] + sign * he * blo_tensor_get(v[i], j));
                    off += mm;
                }
                grad_at(ctx, f, env, n, in, sign < 0 ? gm : gp);
            }
            off = 0;
            for (int i = 0; i < n; i++) {
                int64_t mm = blo_tensor_numel(in[i]);
                for (int64_t j = 0; j < mm; j++) blo_tensor_set(in[i], j, x0[off + j]);
                off += mm;
            }
            bad = -1;
            double got_bad = 0, want_bad = 0;
            off = 0;
            for (int i = 0; i < n && bad < 0; i++) {
                int64_t mm = blo_tensor_numel(in[i]);
                for (int64_t j = 0; j < mm; j++) {
                    double want = (gp[off + j] - gm[off + j]) / (2 * he);
                    double got = blo_tensor_get(hv[i], j);
                    if (!tu_close(got, want, 1e-4, 1e-6)) {
                        bad = off + j;
                        got_bad = got;
                        want_bad = want;
                        break;
                    }
                }
                off += mm;
            }
            TU_CHECK(bad < 0, "%s: HVP element %lld is %.10g, finite differences give %.10g",
                     name, (long long)bad, got_bad, want_bad);
            TU_CHECK(tu_close(uhv, vhu, 1e-9, 1e-10), "%s: <u,Hv> = %.12g but <Hu,v> = %.12g",
                     name, uhv, vhu);
            free(gp);
            free(gm);
            free(x0);
        }
        blo_ctx_rewind(ctx, m0);
    }
    free(g);
    free(fd);
}

double tu_max_rel(int n, const double *a, const double *b) {
    double w = 0, scale = 0;
    for (int i = 0; i < n; i++)
        scale = fmax(scale, fabs(b[i]));
    for (int i = 0; i < n; i++)
        w = fmax(w, fabs(a[i] - b[i]) / scale);
    return w;
}

void tu_expect_refused(const blo_problem *p, blo_config c, const char *needle) {
    char err[512] = "";
    blo_solver *s = blo_solver_new(p, &c, err, sizeof err);
    TU_CHECK(!s && strstr(err, needle), "%s must be refused naming '%s': %s", c.method, needle,
             s ? "(accepted)" : err);
    blo_solver_free(s);
}

int tu_finish(const char *suite) {
    printf("%s: %d passed, %d failed\n", suite, tu_passed, tu_failed);
    return tu_failed ? 1 : 0;
}
