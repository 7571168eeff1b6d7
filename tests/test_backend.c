/* test_backend.c — the CPU backend below the ops: the BLAS gemm path against the reference
 * loops, determinism of threaded reductions and maps (same bits run to run for a thread count,
 * agreement to rounding across thread counts), strided copies, and the arena: mark/rewind
 * frees and reuses memory, blo_wrap neither copies nor frees; the registry of backends and
 * the host copies through it. */
#include "testutil.h"

#include "backend/backend.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- gemm ------------------------------------------------------------------------------------ */

static void fill_rand(blo_rng *r, blo_dtype dt, void *p, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double v = blo_rng_uniform(r) * 2 - 1;
        if (dt == BLO_F32)
            ((float *)p)[i] = (float)v;
        else
            ((double *)p)[i] = v;
    }
}

static double get(blo_dtype dt, const void *p, int64_t i) {
    return dt == BLO_F32 ? ((const float *)p)[i] : ((const double *)p)[i];
}

/* C = alpha op(A) op(B) + beta C with padded leading dimensions, through the backend and
 * through the reference; the padding of C must stay untouched. */
static void check_gemm_beta(blo_rng *r, blo_dtype dt, int ta, int tb, int64_t m, int64_t n,
                            int64_t k, double beta) {
    const blo_backend *be = blo_backend_cpu();
    int64_t a_rows = ta ? k : m, a_cols = ta ? m : k;
    int64_t b_rows = tb ? n : k, b_cols = tb ? k : n;
    int64_t lda = a_cols + 3, ldb = b_cols + 1, ldc = n + 2;
    size_t es = blo_dtype_size(dt);
    void *a = malloc((size_t)(a_rows * lda) * es), *b = malloc((size_t)(b_rows * ldb) * es);
    void *c1 = malloc((size_t)(m * ldc) * es), *c2 = malloc((size_t)(m * ldc) * es);
    fill_rand(r, dt, a, a_rows * lda);
    fill_rand(r, dt, b, b_rows * ldb);
    fill_rand(r, dt, c1, m * ldc);
    if (beta == 0) /* β = 0 ignores what C held, even NaN */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                if (dt == BLO_F32)
                    ((float *)c1)[i * ldc + j] = NAN;
                else
                    ((double *)c1)[i * ldc + j] = NAN;
            }
    memcpy(c2, c1, (size_t)(m * ldc) * es);
    double alpha = 0.75;
    /* The table's gemm takes tensors (here wrapping the raw buffers) and element offsets. */
    blo_ctx *ctx = blo_ctx_new(0);
    int64_t na = a_rows * lda, nb = b_rows * ldb, nc = m * ldc;
    blo_tensor *ta_ = blo_wrap(ctx, dt, 1, &na, a), *tb_ = blo_wrap(ctx, dt, 1, &nb, b);
    blo_tensor *tc_ = blo_wrap(ctx, dt, 1, &nc, c1);
    be->gemm(ta, tb, m, n, k, alpha, ta_, 0, lda, tb_, 0, ldb, beta, tc_, 0, ldc);
    blo_ctx_free(ctx);
    blo__gemm_ref(dt, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c2, ldc);
    double tol = dt == BLO_F32 ? 1e-5 : 1e-13;
    int64_t bad = -1;
    for (int64_t i = 0; i < m && bad < 0; i++)
        for (int64_t j = 0; j < ldc; j++) {
            double x = get(dt, c1, i * ldc + j), y = get(dt, c2, i * ldc + j);
            /* Inside the matrix: to rounding. In the padding: bit for bit (untouched). */
            if (j < n ? !tu_close(x, y, tol, tol) : x != y) {
                bad = i * ldc + j;
                break;
            }
        }
    TU_CHECK(bad < 0, "gemm %s ta=%d tb=%d %lldx%lldx%lld beta %g: element %lld is %.10g, "
             "reference %.10g", blo_dtype_name(dt), ta, tb, (long long)m, (long long)n,
             (long long)k, beta, (long long)bad,
             bad >= 0 ? get(dt, c1, bad) : 0.0, bad >= 0 ? get(dt, c2, bad) : 0.0);
    free(a);
    free(b);
    free(c1);
    free(c2);
}

static void check_gemm(blo_rng *r, blo_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k) {
    check_gemm_beta(r, dt, ta, tb, m, n, k, -0.5);
}

static void check_gemms(blo_rng *r) {
    /* One output row or column (matrix-vector products, gemv on BLAS), including both and a
     * single-term product, besides general shapes. */
    const int64_t sizes[7][3] = {{7, 13, 5}, {33, 17, 19}, {1, 9, 64}, {40, 1, 23},
                                 {1, 1, 17}, {6, 1, 1},    {1, 30, 1}};
    for (int d = 0; d < 2; d++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int s = 0; s < 7; s++) {
                    blo_dtype dt = d ? BLO_F64 : BLO_F32;
                    check_gemm(r, dt, ta, tb, sizes[s][0], sizes[s][1], sizes[s][2]);
                    check_gemm_beta(r, dt, ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], 0.0);
                }
    /* The reference itself against a hand product: [1 2; 3 4] [5; 6] = [17; 39]. */
    double a[4] = {1, 2, 3, 4}, b[2] = {5, 6}, c[2] = {0, 0};
    blo__gemm_ref(BLO_F64, 0, 0, 2, 1, 2, 1.0, a, 2, b, 1, 0.0, c, 1);
    TU_CHECK(c[0] == 17 && c[1] == 39, "reference gemm: %g %g", c[0], c[1]);
    blo__gemm_ref(BLO_F64, 1, 0, 2, 1, 2, 1.0, a, 2, b, 1, 0.0, c, 1); /* Aᵀ b = [23; 34] */
    TU_CHECK(c[0] == 23 && c[1] == 34, "reference gemm transposed: %g %g", c[0], c[1]);
}

/* ---- Registry ---------------------------------------------------------------------------------- */

static void check_registry(void) {
    int n = blo_backend_count();
    TU_CHECK(n >= 1, "blo_backend_count() = %d", n);
    int has_cpu = 0;
    for (int i = 0; i < n; i++) has_cpu |= blo_backend_name_at(i) && !strcmp(blo_backend_name_at(i), "cpu");
    TU_CHECK(has_cpu, "the registry lists \"cpu\"");
    TU_CHECK(!blo_backend_name_at(-1) && !blo_backend_name_at(n), "names out of range are NULL");

    blo_ctx *ctx = blo_ctx_new(0);
    TU_CHECK(!strcmp(blo_ctx_backend_name(ctx), "cpu"), "default backend %s",
             blo_ctx_backend_name(ctx));
    blo_status st = blo_ctx_set_backend(ctx, "no-such-device");
    TU_CHECK(st == BLO_ERR_INVALID && strstr(blo_ctx_error(ctx), "no-such-device") &&
                 strstr(blo_ctx_error(ctx), "cpu"),
             "an unknown backend is refused, naming it and the known ones: %s",
             blo_ctx_error(ctx));
    blo_ctx_clear_error(ctx);
    TU_CHECK(blo_ctx_set_backend(ctx, "cpu") == BLO_OK, "selecting cpu on an empty context");
    int64_t n3 = 3;
    blo_tensor *t = blo_full(ctx, BLO_F32, 1, &n3, 2.0);
    TU_CHECK(t && blo_tensor_item(blo_sum_all(ctx, t)) == 6, "a tensor on the selected backend");
    st = blo_ctx_set_backend(ctx, "cpu");
    TU_CHECK(st == BLO_ERR_INVALID && strstr(blo_ctx_error(ctx), "already holds tensors"),
             "selecting once the context holds tensors is refused: %s", blo_ctx_error(ctx));
    TU_CHECK(!strcmp(blo_ctx_backend_name(ctx), "cpu"), "the backend is kept on failure");
    blo_ctx_free(ctx);
}

/* ---- Host copies ----------------------------------------------------------------------------- */

/* Round trips between host buffers and tensors of every dtype, converting, through a strided
 * view (a transpose), against values written by hand. */
static void check_host_copies(void) {
    blo_ctx *ctx = blo_ctx_new(0);
    const int64_t sh[2] = {2, 3};
    const double vals[6] = {1.5, -2.25, 3, 4.75, -5.5, 1e6};
    const blo_dtype dts[3] = {BLO_F32, BLO_F64, BLO_I64};
    for (int a = 0; a < 3; a++) {     /* tensor dtype */
        for (int b = 0; b < 3; b++) { /* host dtype */
            blo_tensor *t = blo_tensor_new(ctx, dts[a], 2, sh);
            char host[6 * 8], back[6 * 8];
            for (int i = 0; i < 6; i++) {
                if (dts[b] == BLO_F32) ((float *)host)[i] = (float)vals[i];
                else if (dts[b] == BLO_F64) ((double *)host)[i] = vals[i];
                else ((int64_t *)host)[i] = (int64_t)vals[i];
            }
            blo_status s1 = blo_tensor_copy_from_host(t, dts[b], host);
            /* Each element, converted to the tensor's dtype then read back as double. */
            int bad = -1;
            for (int i = 0; i < 6 && t; i++) {
                double want = dts[b] == BLO_I64 || dts[a] == BLO_I64 ? (double)(int64_t)vals[i]
                                                                     : vals[i];
                if (blo_tensor_get(t, i) != want) bad = i;
            }
            TU_CHECK(!s1 && bad < 0, "from host %s into %s: element %d",
                     blo_dtype_name(dts[b]), blo_dtype_name(dts[a]), bad);
            /* Out again through the transposed view: row-major order of the view. */
            blo_tensor *tt = blo_transpose(ctx, t, 0, 1);
            blo_status s2 = blo_tensor_copy_to_host(tt, dts[b], back);
            bad = -1;
            for (int r = 0; r < 3; r++)
                for (int c = 0; c < 2; c++) {
                    double got = dts[b] == BLO_F32   ? ((float *)back)[r * 2 + c]
                                 : dts[b] == BLO_F64 ? ((double *)back)[r * 2 + c]
                                                     : (double)((int64_t *)back)[r * 2 + c];
                    if (got != blo_tensor_get(t, c * 3 + r)) bad = r * 2 + c;
                }
            TU_CHECK(!s2 && bad < 0, "to host %s from a transposed %s: element %d",
                     blo_dtype_name(dts[b]), blo_dtype_name(dts[a]), bad);
        }
    }
    /* i64 keeps all 64 bits, also through a strided view (not via double). */
    int64_t big[2] = {((int64_t)1 << 53) + 1, -(((int64_t)1 << 62) + 3)}, got[2] = {0, 0};
    int64_t n4 = 4, two = 2;
    blo_tensor *w = blo_zeros(ctx, BLO_I64, 1, &n4);
    blo_tensor *every2 = blo_slice(ctx, w, 0, 0, 4, 2);
    blo_status s = blo_tensor_copy_from_host(every2, BLO_I64, big);
    s = s ? s : blo_tensor_copy_to_host(every2, BLO_I64, got);
    TU_CHECK(!s && got[0] == big[0] && got[1] == big[1] && blo_tensor_numel(every2) == two,
             "i64 through a strided view: %lld %lld", (long long)got[0], (long long)got[1]);
    /* Errors: a NULL buffer, an unknown dtype (named). */
    TU_CHECK(blo_tensor_copy_to_host(w, BLO_F64, NULL) == BLO_ERR_INVALID, "NULL buffer");
    TU_CHECK(blo_tensor_copy_from_host(w, (blo_dtype)7, big) == BLO_ERR_DTYPE &&
                 strstr(blo_ctx_error(ctx), "dtype 7"),
             "unknown host dtype: %s", blo_ctx_error(ctx));
    blo_ctx_free(ctx);
}

/* ---- Threads --------------------------------------------------------------------------------- */

#define NOPS 6

/* Runs a fixed set of reductions and maps on large inputs; results into out[k] (fresh). */
static void run_ops(blo_ctx *ctx, blo_tensor *x, blo_tensor *row, blo_tensor **out) {
    int ax0 = 0, ax1 = 1;
    out[0] = blo_sum_all(ctx, x);
    out[1] = blo_sum(ctx, x, 1, &ax1, 0);
    out[2] = blo_sum(ctx, x, 1, &ax0, 0);
    out[3] = blo_max(ctx, blo_transpose(ctx, x, 0, 1), 0, NULL, 0);
    out[4] = blo_mul(ctx, blo_exp(ctx, x), row); /* broadcast row */
    out[5] = blo_mean(ctx, blo_tanh(ctx, blo_transpose(ctx, x, 0, 1)), 1, &ax0, 0);
}

static int same_bits(const blo_tensor *a, const blo_tensor *b) {
    int64_t n = blo_tensor_numel(a);
    if (!a || !b || n != blo_tensor_numel(b)) return 0;
    size_t es = blo_dtype_size(blo_tensor_dtype(a));
    return memcmp(blo_tensor_data(a), blo_tensor_data(b), (size_t)n * es) == 0;
}

static void check_threads(blo_ctx *ctx, blo_rng *r) {
    const int64_t shape[2] = {601, 503}; /* 302303 elements, odd sizes: uneven thread splits */
    for (int d = 0; d < 2; d++) {
        blo_dtype dt = d ? BLO_F64 : BLO_F32;
        blo_tensor *x = blo_tensor_new(ctx, dt, 2, shape);
        blo_tensor *row = blo_tensor_new(ctx, dt, 1, shape + 1);
        blo_init_uniform(x, r, -1, 1);
        blo_init_uniform(row, r, -1, 1);
        blo_tensor *res[2][2][NOPS]; /* [thread setting][run][op] */
        int old = blo_num_threads();
        for (int t = 0; t < 2; t++) {
            blo_set_num_threads(t + 1);
            TU_CHECK(blo_num_threads() == t + 1, "blo_set_num_threads(%d)", t + 1);
            for (int run = 0; run < 2; run++) run_ops(ctx, x, row, res[t][run]);
        }
        blo_set_num_threads(old);
        tu_check_ok(ctx, "threaded ops");
        if (blo_ctx_status(ctx)) return;
        double tol = dt == BLO_F32 ? 1e-6 : 1e-12;
        for (int k = 0; k < NOPS; k++) {
            for (int t = 0; t < 2; t++)
                TU_CHECK(same_bits(res[t][0][k], res[t][1][k]),
                         "%s op %d with %d thread(s): runs differ", blo_dtype_name(dt), k, t + 1);
            char what[64];
            snprintf(what, sizeof what, "%s op %d: 1 vs 2 threads", blo_dtype_name(dt), k);
            tu_check_close(res[1][0][k], res[0][0][k], tol, tol, what);
        }
        /* The total against a plain double sum. */
        double s = 0;
        for (int64_t i = 0; i < shape[0] * shape[1]; i++) s += blo_tensor_get(x, i);
        TU_CHECK(tu_close(blo_tensor_item(res[1][0][0]), s, dt == BLO_F32 ? 1e-6 : 1e-12, 1e-9),
                 "%s sum %.12g vs %.12g", blo_dtype_name(dt), blo_tensor_item(res[1][0][0]), s);
    }
}

/* ---- Element-wise maps, bit for bit ---------------------------------------------------------- */

/* The row kernels may run a vector build chosen at load time (AVX2 on x86-64); they must give
 * the bits of the plain IEEE operations, for lengths that leave every remainder and for a
 * broadcast operand. */
static void check_map_bits(blo_ctx *ctx, blo_rng *r) {
    const int64_t lens[4] = {1, 7, 40, 1003};
    for (int d = 0; d < 2; d++)
        for (int li = 0; li < 4; li++) {
            blo_dtype dt = d ? BLO_F64 : BLO_F32;
            int64_t n = lens[li], s2[2] = {3, n}, s1[2] = {1, n};
            blo_tensor *a = blo_tensor_new(ctx, dt, 2, s2), *b = blo_tensor_new(ctx, dt, 2, s2);
            blo_tensor *row = blo_tensor_new(ctx, dt, 2, s1);
            blo_init_uniform(a, r, -2, 2);
            blo_init_uniform(b, r, 0.5, 2);
            blo_init_uniform(row, r, -1, 1);
            blo_tensor *got[6] = {blo_add(ctx, a, b), blo_mul(ctx, a, b), blo_div(ctx, a, b),
                                  blo_sub(ctx, a, row), blo_relu(ctx, a), blo_scale(ctx, a, 0.3)};
            int bad = -1;
            for (int64_t i = 0; i < 3 * n && bad < 0; i++) {
                double x = blo_tensor_get(a, i), y = blo_tensor_get(b, i);
                double w = blo_tensor_get(row, i % n), want[6];
                if (dt == BLO_F32) {
                    float xf = (float)x, yf = (float)y, wf = (float)w;
                    want[0] = xf + yf, want[1] = xf * yf, want[2] = xf / yf, want[3] = xf - wf;
                    want[4] = xf > 0 ? xf : 0.0f, want[5] = 0.3f * xf;
                } else {
                    want[0] = x + y, want[1] = x * y, want[2] = x / y, want[3] = x - w;
                    want[4] = x > 0 ? x : 0.0, want[5] = 0.3 * x;
                }
                for (int q = 0; q < 6; q++)
                    if (!got[q] || blo_tensor_get(got[q], i) != want[q]) bad = q;
            }
            TU_CHECK(bad < 0, "%s map %d of length %lld: not the bits of the plain operation",
                     blo_dtype_name(dt), bad, (long long)n);
        }
    tu_check_ok(ctx, "element-wise maps");
}

/* ---- float32 tanh -------------------------------------------------------------------------- */

/* The spacing of floats at |v| (the subnormal spacing below FLT_MIN): errors in ulps. */
static double ulp_f32(double v) {
    float f = (float)fabs(v);
    if (f < FLT_MIN) return 0x1p-149;
    int e;
    frexpf(f, &e);
    return ldexp(1.0, e - 24);
}

/* blo_tanh of n floats (wrapped, contiguous); NULL on failure. */
static const float *tanh_of(blo_ctx *ctx, float *in, int64_t n) {
    int64_t sh[1] = {n};
    blo_tensor *y = blo_tanh(ctx, blo_wrap(ctx, BLO_F32, 1, sh, in));
    return y ? blo_tensor_data(y) : NULL;
}

/* The f32 kernel is its own approximation (not libm's tanhf): against double tanh, at most
 * 2 ulp, on a dense sweep of [-20, 20] and on a stride through every float's bit pattern;
 * odd to the bit; non-decreasing; exact where floats can be (±0, tiny, saturated, ±inf), NaN
 * through; and the strided loop gives the contiguous loop's bits. */
static void check_tanh_f32(blo_ctx *ctx) {
    blo_mark m0 = blo_ctx_mark(ctx);
    const int64_t nd = 4000001; /* -20 to 20 by 1e-5 */
    const int64_t stride = 211; /* through the non-negative bit patterns up to +inf */
    const int64_t nb = 0x7f800000 / stride + 1;
    float *in = malloc((size_t)(2 * nd + nb) * sizeof *in);
    for (int64_t i = 0; i < nd; i++) {
        in[i] = (float)(-20 + 40 * (double)i / (double)(nd - 1));
        in[nd + i] = -in[i];
    }
    for (int64_t i = 0; i < nb; i++) {
        uint32_t b = (uint32_t)(i * stride);
        memcpy(&in[2 * nd + i], &b, sizeof b);
    }
    const float *y = tanh_of(ctx, in, 2 * nd + nb);
    tu_check_ok(ctx, "tanh f32");
    if (!y) {
        free(in);
        return;
    }
    double maxulp = 0, maxerr = 0;
    float worst = 0;
    int64_t odd_bad = -1, mono_bad = -1;
    for (int64_t i = 0; i < 2 * nd + nb; i++) {
        double want = tanh((double)in[i]), d = fabs((double)y[i] - want), u = d / ulp_f32(want);
        if (u > maxulp) maxulp = u, worst = in[i];
        if (d / (1 + fabs(want)) > maxerr) maxerr = d / (1 + fabs(want));
    }
    for (int64_t i = 0; i < nd; i++) {
        if (odd_bad < 0 && y[nd + i] != -y[i]) odd_bad = i;
        if (mono_bad < 0 && i > 0 && y[i] < y[i - 1]) mono_bad = i;
    }
    printf("tanh f32 against double tanh, %lld points: max error %.3f ulp (at x = %.9g), "
           "%.3g relative+absolute\n",
           (long long)(2 * nd + nb), maxulp, (double)worst, maxerr);
    TU_CHECK(maxulp <= 2, "tanh f32: %.3f ulp from double tanh at x = %.9g", maxulp,
             (double)worst);
    TU_CHECK(maxerr <= 1e-6, "tanh f32: error %.3g relative+absolute", maxerr);
    TU_CHECK(odd_bad < 0, "tanh f32 not odd at x = %.9g", odd_bad < 0 ? 0.0 : (double)in[odd_bad]);
    TU_CHECK(mono_bad < 0, "tanh f32 decreases at x = %.9g",
             mono_bad < 0 ? 0.0 : (double)in[mono_bad]);

    /* Special values, and what each must give exactly (NaN: any NaN). */
    float sp[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-30f, -1e-30f, 1e-40f, -1e-40f,
                  FLT_MIN, 0x1p-13f, 9.5f, -10.0f, 20.0f, 1e30f, -FLT_MAX};
    float want[] = {0.0f, -0.0f, 1.0f, -1.0f, NAN, 1e-30f, -1e-30f, 1e-40f, -1e-40f,
                    FLT_MIN, (float)tanh(0x1p-13), 1.0f, -1.0f, 1.0f, 1.0f, -1.0f};
    int nsp = (int)(sizeof sp / sizeof *sp);
    const float *ys = tanh_of(ctx, sp, nsp);
    for (int i = 0; ys && i < nsp; i++) {
        int ok = isnan(want[i]) ? isnan(ys[i])
                                : (ys[i] == want[i] && signbit(ys[i]) == signbit(want[i]));
        TU_CHECK(ok, "tanh f32 of %.9g gives %.9g, not %.9g", (double)sp[i], (double)ys[i],
                 (double)want[i]);
    }

    /* A strided view (every third of the sweep) through the strided loop. */
    int64_t s2[2] = {nd / 3, 3};
    blo_tensor *col = blo_slice(ctx, blo_wrap(ctx, BLO_F32, 2, s2, in), 1, 1, 2, 1);
    blo_tensor *yc = blo_tanh(ctx, col);
    int64_t str_bad = -1;
    for (int64_t i = 0; yc && i < nd / 3 && str_bad < 0; i++)
        if ((float)blo_tensor_get(yc, i) != y[3 * i + 1]) str_bad = i;
    TU_CHECK(yc && str_bad < 0, "tanh f32 of a strided view differs at row %lld",
             (long long)str_bad);
    tu_check_ok(ctx, "tanh f32 special values");
    free(in);
    blo_ctx_rewind(ctx, m0);
}

/* ---- Sums over any set of axes ------------------------------------------------------------ */

/* blo_sum over every non-empty set of axes of strided views of a 4-d tensor (kept and reduced
 * axes interleaved, the innermost kept axis unit-stride or not, rows longer than the kernel's
 * column tile), against a plain double sum; with one thread and with two. */
static void check_sums(blo_ctx *ctx, blo_rng *r) {
    const int64_t shape[4] = {4, 3, 5, 530}; /* 31800 elements: rows of 530 > one tile */
    const int perms[3][4] = {{0, 1, 2, 3}, {0, 2, 1, 3}, {3, 1, 2, 0}};
    int old = blo_num_threads();
    for (int d = 0; d < 2; d++) {
        blo_dtype dt = d ? BLO_F64 : BLO_F32;
        blo_tensor *base = blo_tensor_new(ctx, dt, 4, shape);
        blo_init_uniform(base, r, -1, 1);
        for (int v = 0; v < 4; v++) {
            blo_mark mk = blo_ctx_mark(ctx);
            /* views 0-2: permutations; 3: every other entry of axis 1 of the second one */
            blo_tensor *x = blo_permute(ctx, base, perms[v < 3 ? v : 1]);
            if (v == 3) x = blo_slice(ctx, x, 1, 0, 5, 2);
            int64_t xs[4], n = blo_tensor_numel(x);
            for (int i = 0; i < 4; i++) xs[i] = blo_tensor_dim(x, i);
            double *want = malloc(sizeof(double) * (size_t)n);
            for (int set = 1; set < 16; set++) {
                int axes[4], na = 0;
                for (int i = 0; i < 4; i++)
                    if (set >> i & 1) axes[na++] = i;
                /* Reference: every element added into its output cell, in double. */
                int64_t os[4], nout = 1;
                for (int i = 0; i < 4; i++) nout *= os[i] = set >> i & 1 ? 1 : xs[i];
                for (int64_t o = 0; o < nout; o++) want[o] = 0;
                for (int64_t f = 0; f < n; f++) {
                    int64_t rem = f, o = 0, mul = 1;
                    for (int i = 3; i >= 0; i--) {
                        int64_t c = rem % xs[i];
                        rem /= xs[i];
                        if (!(set >> i & 1)) o += c * mul;
                        mul *= os[i];
                    }
                    want[o] += blo_tensor_get(x, f);
                }
                for (int t = 1; t <= 2; t++) {
                    blo_set_num_threads(t);
                    blo_tensor *got = blo_sum(ctx, x, na, axes, 1);
                    char what[96];
                    snprintf(what, sizeof what, "%s sum, view %d, axes set %d, %d thread(s)",
                             blo_dtype_name(dt), v, set, t);
                    TU_CHECK(got && blo_tensor_numel(got) == nout, "%s: shape", what);
                    if (got) tu_check_close_f64(got, want, d ? 1e-12 : 1e-6, d ? 1e-12 : 1e-5, what);
                }
            }
            free(want);
            blo_ctx_rewind(ctx, mk);
        }
    }
    blo_set_num_threads(old);
    tu_check_ok(ctx, "sums over axes");
}

/* ---- Strided copies -------------------------------------------------------------------------- */

static void check_copies(blo_ctx *ctx) {
    const int64_t s[3] = {3, 4, 5};
    double v[60];
    for (int i = 0; i < 60; i++) v[i] = i;
    blo_tensor *x = blo_from_f64(ctx, BLO_F64, 3, s, v);
    /* permute (2, 0, 1) then slice every other along the new axis 2: [5, 3, 2] */
    int perm[3] = {2, 0, 1};
    blo_tensor *p = blo_slice(ctx, blo_permute(ctx, x, perm), 2, 1, 4, 2);
    blo_tensor *c = blo_contiguous(ctx, p);
    TU_CHECK(c && blo_tensor_is_contiguous(c) && !blo_tensor_is_contiguous(p),
             "contiguous copy of a strided view");
    double want[30];
    int n = 0;
    for (int k = 0; k < 5; k++)
        for (int i = 0; i < 3; i++)
            for (int j = 1; j < 4; j += 2) want[n++] = v[(i * 4 + j) * 5 + k];
    tu_check_close_f64(c, want, 0, 0, "strided copy values");
    /* Copy with dtype conversion into a strided destination: column 1 of a [4, 3] f32. */
    const int64_t s43[2] = {4, 3};
    blo_tensor *dst = blo_full(ctx, BLO_F32, 2, s43, -1.0);
    blo_tensor *col = blo_slice(ctx, dst, 1, 1, 2, 1);
    int64_t s41[2] = {4, 1};
    double src[4] = {0.5, 1.5, 2.5, 3.5};
    TU_CHECK(blo_copy_into(col, blo_from_f64(ctx, BLO_F64, 2, s41, src)) == BLO_OK,
             "copy_into a strided view");
    double dw[12] = {-1, 0.5, -1, -1, 1.5, -1, -1, 2.5, -1, -1, 3.5, -1};
    tu_check_close_f64(dst, dw, 0, 0, "copy_into writes only the view");
    TU_CHECK(blo_copy_into(col, x) == BLO_ERR_SHAPE, "copy_into with a different shape fails");
    blo_ctx_clear_error(ctx);
    /* A broadcast (zero-stride) source. */
    blo_tensor *e = blo_contiguous(ctx, blo_expand(ctx, blo_from_f64(ctx, BLO_F64, 1, s + 0 + 2,
                                                                     v + 10),
                                                   2, (int64_t[]){2, 5}));
    double ew[10] = {10, 11, 12, 13, 14, 10, 11, 12, 13, 14};
    tu_check_close_f64(e, ew, 0, 0, "copy of an expanded view");
    tu_check_ok(ctx, "copies");
}

/* ---- Arena ----------------------------------------------------------------------------------- */

static void check_arena(void) {
    long live0 = blo_alloc_live();
    blo_ctx *ctx = blo_ctx_new(1 << 16); /* 64 KiB chunks: requests over 16 KiB are "big" */
    TU_CHECK(ctx && blo_ctx_bytes(ctx) == 0, "a fresh context holds nothing");
    const int64_t small[1] = {100}, big[1] = {10000};
    blo_tensor *keep = blo_zeros(ctx, BLO_F64, 1, small);
    size_t b0 = blo_ctx_bytes(ctx);
    long live1 = blo_alloc_live();
    TU_CHECK(b0 >= 800 && b0 < 4096, "bytes after one small tensor: %zu", b0);

    blo_mark m = blo_ctx_mark(ctx);
    blo_tensor *s1 = blo_zeros(ctx, BLO_F64, 1, small);
    void *s1_data = blo_tensor_data(s1);
    blo_tensor *b1 = blo_zeros(ctx, BLO_F64, 1, big);
    blo_tensor *b2 = blo_zeros(ctx, BLO_F64, 1, big);
    TU_CHECK(b1 && b2 && blo_ctx_bytes(ctx) >= b0 + 800 + 2 * 80000,
             "bytes grow with big tensors: %zu", blo_ctx_bytes(ctx));
    TU_CHECK(blo_alloc_live() >= live1 + 2, "big tensors are their own blocks");
    size_t peak = blo_ctx_peak_bytes(ctx);
    long live_big = blo_alloc_live();
    blo_ctx_rewind(ctx, m);
    TU_CHECK(blo_ctx_bytes(ctx) == b0, "rewind restores the byte count: %zu vs %zu",
             blo_ctx_bytes(ctx), b0);
    /* The big blocks are kept for reuse, not returned: the next big tensors of the same size
     * take them without a new allocation. */
    TU_CHECK(live_big == blo_alloc_live(), "rewind keeps the two big blocks cached (%ld live, "
             "%ld before)", blo_alloc_live(), live_big);
    {
        blo_mark m2 = blo_ctx_mark(ctx);
        long count = blo_alloc_count();
        blo_tensor *b3 = blo_zeros(ctx, BLO_F64, 1, big);
        blo_tensor *b4 = blo_zeros(ctx, BLO_F64, 1, big);
        TU_CHECK(b3 && b4 && blo_alloc_count() == count,
                 "big tensors after a rewind reuse the cached blocks (%ld new allocations)",
                 blo_alloc_count() - count);
        blo_ctx_rewind(ctx, m2);
    }
    TU_CHECK(blo_ctx_peak_bytes(ctx) == peak, "the peak remembers");
    blo_tensor *s2 = blo_zeros(ctx, BLO_F64, 1, small);
    TU_CHECK(blo_tensor_data(s2) == s1_data, "rewound chunk memory is reused");
    TU_CHECK(blo_tensor_get(keep, 99) == 0.0, "tensors made before the mark stay valid");

    /* Nested marks; filling past a chunk and rewinding keeps the chunks for reuse. */
    blo_mark m1 = blo_ctx_mark(ctx);
    const int64_t mid[1] = {1500}; /* 12 KB: chunk-allocated, five per chunk */
    for (int i = 0; i < 20; i++) blo_zeros(ctx, BLO_F64, 1, mid);
    long live_full = blo_alloc_live();
    blo_mark m2 = blo_ctx_mark(ctx);
    blo_zeros(ctx, BLO_F64, 1, big);
    blo_ctx_rewind(ctx, m2);
    TU_CHECK(blo_alloc_live() == live_full, "inner rewind frees the inner big block");
    blo_ctx_rewind(ctx, m1);
    TU_CHECK(blo_alloc_live() == live_full, "chunks are kept after a rewind");
    for (int i = 0; i < 20; i++) blo_zeros(ctx, BLO_F64, 1, mid);
    TU_CHECK(blo_alloc_live() == live_full, "the same work again takes no new memory (%ld vs %ld)",
             blo_alloc_live(), live_full);
    tu_check_ok(ctx, "arena");
    blo_ctx_free(ctx);
    TU_CHECK(blo_alloc_live() == live0, "blo_ctx_free releases everything");

    /* blo_wrap: the tensor is the caller's buffer, and stays the caller's. */
    double *buf = malloc(sizeof(double) * 6);
    for (int i = 0; i < 6; i++) buf[i] = i + 1;
    ctx = blo_ctx_new(0);
    blo_scalar(ctx, BLO_F64, 0); /* the first chunk, so that what follows is the wrap's alone */
    long live_w = blo_alloc_live();
    size_t bytes_w = blo_ctx_bytes(ctx);
    const int64_t s23[2] = {2, 3};
    blo_tensor *w = blo_wrap(ctx, BLO_F64, 2, s23, buf);
    TU_CHECK(w && blo_tensor_data(w) == buf, "wrap: data is the caller's pointer");
    TU_CHECK(blo_ctx_bytes(ctx) - bytes_w < 6 * sizeof(double) + 512,
             "wrap holds a header only (%zu bytes)", blo_ctx_bytes(ctx) - bytes_w);
    TU_CHECK(blo_alloc_live() == live_w, "wrap allocates no storage");
    buf[4] = 50;
    TU_CHECK(blo_tensor_get(w, 4) == 50, "caller writes are seen");
    blo_tensor_set(w, 0, -7);
    TU_CHECK(buf[0] == -7, "tensor writes reach the caller's buffer");
    blo_tensor *y = blo_sum_all(ctx, w);
    TU_CHECK(y && blo_tensor_item(y) == -7 + 2 + 3 + 4 + 50 + 6, "ops read the wrapped buffer");
    blo_ctx_free(ctx);
    TU_CHECK(buf[1] == 2 && buf[0] == -7, "the buffer outlives the context, unchanged");
    free(buf); /* ours to free: a double free here would be caught by the sanitizers */
    TU_CHECK(blo_alloc_live() == live0, "no blo allocation outlives the contexts");
}

int main(void) {
    blo_rng r;
    blo_rng_seed(&r, 5);
    check_gemms(&r);
    blo_ctx *ctx = blo_ctx_new(0);
    check_threads(ctx, &r);
    check_copies(ctx);
    check_sums(ctx, &r);
    check_map_bits(ctx, &r);
    check_tanh_f32(ctx);
    blo_ctx_free(ctx);
    check_arena();
    check_registry();
    check_host_copies();
    return tu_finish("test_backend");
}
