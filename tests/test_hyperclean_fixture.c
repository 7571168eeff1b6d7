/* test_hyperclean_fixture.c — blo's data hyper-cleaning hypergradient against PyTorch.
 *
 * tests/fixtures/hyperclean_fixture.txt (written by gen_hyperclean_fixture.py; format below)
 * holds a small problem — 300 training examples with half the labels corrupted, 200
 * validation examples, 20 features, 4 classes — the per-example weights x, and torch's
 * float64 F(x, y_T) and dF/dx through T = 20 unrolled SGD steps (lr 0.1) from W = 0, b = 0.
 * The problem itself comes from src/tasks/hyperclean/problem.c. Checks:
 *   - rhg in float32 against torch: |got − want| ≤ 1e-5 |want| + 1e-6 max|want| per entry
 *     (the absolute floor, 1e-6 of the largest entry, covers near-zero entries: the smallest
 *     is ~0.5 % of the largest, and torch's own float32 result misses float64 by ~3e-7 of the
 *     largest entry); F to 1e-5 relative;
 *   - rhg in float64 against torch to 1e-9 relative (an oracle that precision cannot blur);
 *   - trhg with K = T equals rhg (same arithmetic: to 1e-12 of the largest entry);
 *   - cg (this lower level is not quadratic, so only direction): at T = 500 with K = 20 CG
 *     iterations, cosine > 0.99 with rhg at the same T (measured: 0.9991).
 * A missing or malformed fixture fails the test with a message naming the file position.
 *
 * Fixture format (whitespace separated; lines starting with '#' are comments):
 *     blo-hyperclean-fixture 1
 *     n <n> nv <nv> d <d> classes <C> T <T> lr <lr>
 *     X <n*d> values...  labels <n> ints...  Xv <nv*d> values...  labels_v <nv> ints...
 *     x <n> values...  F 1 value  hypergrad <n> values...
 *     end
 */
#include "../src/tasks/hyperclean/hyperclean.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE BLO_SOURCE_DIR "/tests/fixtures/hyperclean_fixture.txt"

typedef struct fixture {
    int64_t n, nv, d, classes, T;
    double lr;
    double *X, *Xv, *x, *hg, F;
    int64_t *labels, *labels_v;
} fixture;

typedef struct reader {
    FILE *f;
    const char *path;
    char err[256];
} reader;

/* Next whitespace-separated token, skipping '#' comments; 0 at end of file. */
static int next_token(reader *r, char *buf, size_t n) {
    int ch;
    for (;;) {
        while ((ch = fgetc(r->f)) != EOF && (ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r')) {
        }
        if (ch == '#') {
            while ((ch = fgetc(r->f)) != EOF && ch != '\n') {
            }
            continue;
        }
        break;
    }
    if (ch == EOF) return 0;
    size_t k = 0;
    while (ch != EOF && ch != ' ' && ch != '\n' && ch != '\t' && ch != '\r') {
        if (k + 1 < n) buf[k++] = (char)ch;
        ch = fgetc(r->f);
    }
    buf[k] = 0;
    return 1;
}

static int bad(reader *r, const char *what) {
    if (!r->err[0]) snprintf(r->err, sizeof r->err, "%s: byte %ld: %s", r->path, ftell(r->f), what);
    return 0;
}

static int expect(reader *r, const char *word) {
    char tok[64];
    if (!next_token(r, tok, sizeof tok) || strcmp(tok, word)) {
        char m[160];
        snprintf(m, sizeof m, "expected '%s'", word);
        return bad(r, m);
    }
    return 1;
}

static int read_double(reader *r, double *v) {
    char tok[64], *end;
    if (!next_token(r, tok, sizeof tok)) return bad(r, "unexpected end of file");
    *v = strtod(tok, &end);
    if (*end || end == tok || !isfinite(*v)) return bad(r, "not a finite number");
    return 1;
}

static int read_int(reader *r, int64_t *v) {
    char tok[64], *end;
    if (!next_token(r, tok, sizeof tok)) return bad(r, "unexpected end of file");
    *v = strtoll(tok, &end, 10);
    if (*end || end == tok) return bad(r, "not an integer");
    return 1;
}

/* "<name> <count>" with count == want, then count values. */
static int read_block(reader *r, const char *name, int64_t want, double *vals, int64_t *ints) {
    int64_t count;
    if (!expect(r, name) || !read_int(r, &count)) return 0;
    if (count != want) {
        char m[160];
        snprintf(m, sizeof m, "block %s has %lld values, expected %lld", name, (long long)count,
                 (long long)want);
        return bad(r, m);
    }
    for (int64_t i = 0; i < want; i++)
        if (vals ? !read_double(r, &vals[i]) : !read_int(r, &ints[i])) return 0;
    return 1;
}

static int read_fixture(fixture *fx, char *err, size_t errlen) {
    reader r = {fopen(FIXTURE, "r"), FIXTURE, ""};
    memset(fx, 0, sizeof *fx);
    if (!r.f) {
        snprintf(err, errlen,
                 "%s: cannot open (regenerate it with "
                 "tests/fixtures/gen_hyperclean_fixture.py)",
                 FIXTURE);
        return 0;
    }
    int64_t version = 0;
    int ok = expect(&r, "blo-hyperclean-fixture") && read_int(&r, &version);
    if (ok && version != 1) ok = bad(&r, "unknown fixture version");
    ok = ok && expect(&r, "n") && read_int(&r, &fx->n) && expect(&r, "nv") &&
         read_int(&r, &fx->nv) && expect(&r, "d") && read_int(&r, &fx->d) &&
         expect(&r, "classes") && read_int(&r, &fx->classes) && expect(&r, "T") &&
         read_int(&r, &fx->T) && expect(&r, "lr") && read_double(&r, &fx->lr);
    if (ok && (fx->n < 1 || fx->n > 100000 || fx->nv < 1 || fx->nv > 100000 || fx->d < 1 ||
               fx->d > 10000 || fx->classes < 2 || fx->T < 1 || !(fx->lr > 0)))
        ok = bad(&r, "sizes out of range");
    if (ok) {
        fx->X = malloc(sizeof(double) * (size_t)(fx->n * fx->d));
        fx->Xv = malloc(sizeof(double) * (size_t)(fx->nv * fx->d));
        fx->x = malloc(sizeof(double) * (size_t)fx->n);
        fx->hg = malloc(sizeof(double) * (size_t)fx->n);
        fx->labels = malloc(sizeof(int64_t) * (size_t)fx->n);
        fx->labels_v = malloc(sizeof(int64_t) * (size_t)fx->nv);
        if (!fx->X || !fx->Xv || !fx->x || !fx->hg || !fx->labels || !fx->labels_v)
            ok = bad(&r, "out of memory");
    }
    ok = ok && read_block(&r, "X", fx->n * fx->d, fx->X, NULL) &&
         read_block(&r, "labels", fx->n, NULL, fx->labels) &&
         read_block(&r, "Xv", fx->nv * fx->d, fx->Xv, NULL) &&
         read_block(&r, "labels_v", fx->nv, NULL, fx->labels_v) &&
         read_block(&r, "x", fx->n, fx->x, NULL) && read_block(&r, "F", 1, &fx->F, NULL) &&
         read_block(&r, "hypergrad", fx->n, fx->hg, NULL) && expect(&r, "end");
    char extra[64];
    if (ok && next_token(&r, extra, sizeof extra)) ok = bad(&r, "data after 'end'");
    fclose(r.f);
    if (!ok) snprintf(err, errlen, "%s", r.err);
    return ok;
}

static void fixture_free(fixture *fx) {
    free(fx->X);
    free(fx->Xv);
    free(fx->x);
    free(fx->hg);
    free(fx->labels);
    free(fx->labels_v);
}

/* The fixture's data as blo tensors of one dtype, and the problem over them. */
typedef struct setup {
    blo_ctx *ctx;
    blo_hyperclean h;
    blo_tensor *x; /* the fixture's weights */
    blo_problem p;
} setup;

static int setup_make(setup *s, const fixture *fx, blo_dtype dt) {
    s->ctx = blo_ctx_new(0);
    int64_t sx[2] = {fx->n, fx->d}, sxv[2] = {fx->nv, fx->d};
    blo_tensor *X = blo_from_f64(s->ctx, dt, 2, sx, fx->X);
    blo_tensor *Xv = blo_from_f64(s->ctx, dt, 2, sxv, fx->Xv);
    blo_tensor *lab = blo_from_i64(s->ctx, 1, &fx->n, fx->labels);
    blo_tensor *labv = blo_from_i64(s->ctx, 1, &fx->nv, fx->labels_v);
    s->x = blo_from_f64(s->ctx, dt, 1, &fx->n, fx->x);
    tu_check_ok(s->ctx, "fixture tensors");
    char err[256];
    blo_status st =
        blo_hyperclean_init(&s->h, X, lab, Xv, labv, fx->classes, NULL, NULL, err, sizeof err);
    TU_CHECK(st == BLO_OK, "blo_hyperclean_init: %s", err);
    if (st) return 0;
    s->p = blo_hyperclean_problem(&s->h);
    s->p.x = &s->x; /* the solver copies it */
    return 1;
}

static void setup_free(setup *s) {
    blo_hyperclean_free(&s->h);
    blo_ctx_free(s->ctx);
}

/* dF/dx (into out[n]) and F(x, y_T) with the given method; 0 on failure (already reported). */
static int run_method(setup *s, const char *method, int T, int K, double *out, double *F) {
    blo_config c = blo_config_default();
    c.method = method;
    c.inner = blo_opt_sgd(0.1);
    c.inner_steps = T;
    c.trhg_window = c.neumann_terms = c.solve_iters = K;
    char err[512];
    blo_solver *sv = blo_solver_new(&s->p, &c, err, sizeof err);
    TU_CHECK(sv != NULL, "%s solver: %s", method, err);
    if (!sv) return 0;
    double *o[1] = {out};
    blo_status st = blo_solver_hypergrad(sv, o);
    TU_CHECK(st == BLO_OK, "%s hypergradient: %s", method, blo_solver_error(sv));
    blo_record rec;
    if (!st) {
        st = blo_solver_step(sv, &rec); /* F(x, y_T) is in the iteration's record */
        TU_CHECK(st == BLO_OK, "%s step: %s", method, blo_solver_error(sv));
        *F = rec.upper;
    }
    blo_solver_free(sv);
    return st == BLO_OK;
}

static double max_abs(int64_t n, const double *a) {
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        m = fmax(m, fabs(a[i]));
    return m;
}

/* Checks got against want entry by entry: |got − want| ≤ rtol |want| + atol. */
static void check_vec(int64_t n, const double *got, const double *want, double rtol, double atol,
                      const char *what) {
    int64_t bad_i = -1, nbad = 0;
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]);
        if (!(e <= rtol * fabs(want[i]) + atol)) {
            if (bad_i < 0) bad_i = i;
            nbad++;
        }
        worst = fmax(worst, e / (fabs(want[i]) + atol / rtol));
    }
    TU_CHECK(nbad == 0,
             "%s: %lld of %lld entries off (first: [%lld] = %.10g, expected %.10g; "
             "rtol %g, atol %g)",
             what, (long long)nbad, (long long)n, (long long)bad_i, bad_i >= 0 ? got[bad_i] : 0.0,
             bad_i >= 0 ? want[bad_i] : 0.0, rtol, atol);
    printf("  %-34s worst |err| / (|want| + atol/rtol) = %.3g\n", what, worst);
}

static double cosine(int64_t n, const double *a, const double *b) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < n; i++) {
        ab += a[i] * b[i];
        aa += a[i] * a[i];
        bb += b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

int main(void) {
    fixture fx;
    char err[512];
    if (!read_fixture(&fx, err, sizeof err)) {
        fprintf(stderr, "FAIL: fixture: %s\n", err);
        fixture_free(&fx);
        return 1;
    }
    int64_t n = fx.n;
    int T = (int)fx.T;
    double scale = max_abs(n, fx.hg);
    TU_CHECK(scale > 0, "the fixture's hypergradient is all zeros");
    TU_CHECK(fabs(fx.lr - 0.1) < 1e-15, "fixture lr %g: this test runs SGD with lr 0.1", fx.lr);
    double *got = malloc(sizeof(double) * (size_t)n), *ref = malloc(sizeof(double) * (size_t)n);
    double F = NAN;

    /* float64: tight. */
    setup s64;
    if (setup_make(&s64, &fx, BLO_F64)) {
        if (run_method(&s64, "rhg", T, 10, got, &F)) {
            check_vec(n, got, fx.hg, 1e-9, 1e-12 * scale, "rhg f64 vs torch f64");
            TU_CHECK(tu_close(F, fx.F, 1e-12, 0), "F f64: %.15g, torch %.15g", F, fx.F);
        }
    }
    setup_free(&s64);

    /* float32: the precision the benchmarks run in. */
    setup s;
    if (setup_make(&s, &fx, BLO_F32)) {
        if (run_method(&s, "rhg", T, 10, ref, &F)) {
            check_vec(n, ref, fx.hg, 1e-5, 1e-6 * scale, "rhg f32 vs torch f64");
            TU_CHECK(tu_close(F, fx.F, 1e-5, 0), "F f32: %.9g, torch %.9g", F, fx.F);
            printf("  F f32 = %.9g, torch f64 = %.9g\n", F, fx.F);
        }
        /* trhg keeping all T steps is rhg. */
        if (run_method(&s, "trhg", T, T, got, &F))
            check_vec(n, got, ref, 0, 1e-12 * scale, "trhg K=T vs rhg f32");

        /* cg at a (near) lower-level solution points where rhg does. The linear softmax
         * model's Hessian is singular along W·1 and b·1 (adding a constant to every logit),
         * but ∂F/∂y is orthogonal to that null space, so CG's Krylov space stays out of it. */
        const int T_big = 500;
        double *rhg_big = malloc(sizeof(double) * (size_t)n);
        if (run_method(&s, "rhg", T_big, 10, rhg_big, &F) &&
            run_method(&s, "cg", T_big, 20, got, &F)) {
            double cs = cosine(n, got, rhg_big);
            printf("  cosine(cg K=20, rhg) at T=%d: %.6f\n", T_big, cs);
            TU_CHECK(cs > 0.99, "cg vs rhg at T=%d: cosine %.4f, expected > 0.99", T_big, cs);
        }
        free(rhg_big);
    }
    setup_free(&s);

    /* Bad data is refused with a message, not a crash. */
    {
        blo_ctx *c = blo_ctx_new(0);
        int64_t sx[2] = {3, 2}, three = 3, two = 2;
        double xv[6] = {0};
        int64_t lab[3] = {0, 1, 5}, labv[2] = {0, 1};
        blo_tensor *X = blo_from_f64(c, BLO_F32, 2, sx, xv);
        blo_tensor *L = blo_from_i64(c, 1, &three, lab), *Lv = blo_from_i64(c, 1, &two, labv);
        blo_tensor *Xv64 = blo_from_f64(c, BLO_F64, 2, (int64_t[2]){2, 2}, xv);
        blo_tensor *Xv = blo_from_f64(c, BLO_F32, 2, (int64_t[2]){2, 2}, xv);
        blo_hyperclean h;
        TU_CHECK(blo_hyperclean_init(&h, X, L, Xv, Lv, 3, NULL, NULL, err, sizeof err) ==
                         BLO_ERR_INVALID &&
                     strstr(err, "classes"),
                 "a label beyond the classes must be refused (got '%s')", err);
        TU_CHECK(blo_hyperclean_init(&h, X, L, Xv64, Lv, 0, NULL, NULL, err, sizeof err) ==
                     BLO_ERR_DTYPE,
                 "mixed dtypes must be refused (got '%s')", err);
        TU_CHECK(blo_hyperclean_init(&h, X, Lv, Xv, Lv, 0, NULL, NULL, err, sizeof err) ==
                     BLO_ERR_SHAPE,
                 "labels of the wrong length must be refused (got '%s')", err);
        TU_CHECK(blo_hyperclean_init(&h, X, L, Xv, Lv, 0, NULL, NULL, err, sizeof err) == BLO_OK,
                 "inferred classes: %s", err);
        TU_CHECK(h.classes == 6 && blo_tensor_dim(h.y0[0], 1) == 6, "classes inferred as %lld",
                 (long long)h.classes);
        blo_hyperclean_free(&h);
        /* A given start is copied (converted to X's dtype); a misshapen one is refused. */
        double wv[12], bv[6] = {1, 2, 3, 4, 5, 6};
        for (int i = 0; i < 12; i++)
            wv[i] = 0.5 * i;
        blo_tensor *W0 = blo_from_f64(c, BLO_F64, 2, (int64_t[2]){2, 6}, wv);
        blo_tensor *b0 = blo_from_f64(c, BLO_F64, 1, (int64_t[1]){6}, bv);
        TU_CHECK(blo_hyperclean_init(&h, X, L, Xv, Lv, 0, W0, b0, err, sizeof err) == BLO_OK,
                 "given start: %s", err);
        TU_CHECK(blo_tensor_dtype(h.y0[0]) == BLO_F32 && blo_tensor_get(h.y0[0], 11) == 5.5 &&
                     blo_tensor_get(h.y0[1], 5) == 6,
                 "the given start was not copied into f32");
        blo_hyperclean_free(&h);
        TU_CHECK(blo_hyperclean_init(&h, X, L, Xv, Lv, 0, b0, NULL, err, sizeof err) ==
                         BLO_ERR_SHAPE &&
                     strstr(err, "[2, 6]"),
                 "a misshapen start W must be refused (got '%s')", err);
        blo_ctx_free(c);
    }

    free(got);
    free(ref);
    fixture_free(&fx);
    return tu_finish("hyperclean_fixture");
}
