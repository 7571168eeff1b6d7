/* test_ops_sparse.c — CSR patterns and blo_spmm: the product against a dense matmul of the
 * same matrix (small and hand-made, and large and random on the threaded path), gradients and
 * Hessian-vector products in values and b against finite differences, and rejection of
 * malformed patterns with a message naming the offending row or entry. */
#include "testutil.h"

#include <math.h>
#include <string.h>

/* A 4 x 5 pattern with an empty row (2) and an empty column (3):
 *   row 0: cols 0, 2      row 1: cols 1, 2, 4      row 2: -      row 3: cols 0, 4 */
static const int64_t ROWPTR[5] = {0, 2, 5, 5, 7};
static const int64_t COLIDX[7] = {0, 2, 1, 2, 4, 0, 4};

/* The dense [rows, cols] matrix of a pattern and its values, as f64 numbers. */
static void densify(int64_t rows, int64_t cols, const int64_t *rowptr, const int64_t *colidx,
                    const double *v, double *dense) {
    memset(dense, 0, sizeof(double) * (size_t)(rows * cols));
    for (int64_t i = 0; i < rows; i++)
        for (int64_t e = rowptr[i]; e < rowptr[i + 1]; e++) dense[i * cols + colidx[e]] = v[e];
}

static void check_forward_small(blo_ctx *ctx, blo_rng *r, blo_dtype dt) {
    const char *what = dt == BLO_F32 ? "spmm forward f32" : "spmm forward f64";
    blo_csr *a = blo_csr_new(ctx, 4, 5, 7, ROWPTR, COLIDX);
    TU_CHECK(a && blo_csr_rows(a) == 4 && blo_csr_cols(a) == 5 && blo_csr_nnz(a) == 7,
             "%s: pattern sizes", what);
    double v[7], bv[15], dense[20];
    for (int i = 0; i < 7; i++) v[i] = blo_rng_uniform(r) * 2 - 1;
    for (int i = 0; i < 15; i++) bv[i] = blo_rng_uniform(r) * 2 - 1;
    densify(4, 5, ROWPTR, COLIDX, v, dense);
    int64_t nnz = 7, sb[2] = {5, 3}, sd[2] = {4, 5};
    blo_tensor *vals = blo_from_f64(ctx, dt, 1, &nnz, v);
    blo_tensor *b = blo_from_f64(ctx, dt, 2, sb, bv);
    blo_tensor *d = blo_from_f64(ctx, dt, 2, sd, dense);
    blo_tensor *got = blo_spmm(ctx, a, vals, b);
    blo_tensor *want = blo_matmul(ctx, d, b);
    TU_CHECK(got && blo_tensor_ndim(got) == 2 && blo_tensor_dim(got, 0) == 4 &&
                 blo_tensor_dim(got, 1) == 3,
             "%s: result shape", what);
    tu_check_close(got, want, dt == BLO_F32 ? 1e-6 : 1e-14, dt == BLO_F32 ? 1e-6 : 1e-15, what);
    /* The empty row is zero. */
    for (int j = 0; j < 3; j++)
        TU_CHECK(blo_tensor_get(got, 2 * 3 + j) == 0.0, "%s: empty row 2 must be 0", what);
    /* A hand-computed entry: out[3][1] = v5 b[0][1] + v6 b[4][1]. */
    double h = v[5] * bv[0 * 3 + 1] + v[6] * bv[4 * 3 + 1];
    TU_CHECK(tu_close(blo_tensor_get(got, 3 * 3 + 1), h, dt == BLO_F32 ? 1e-6 : 1e-15, 1e-7),
             "%s: out[3][1] = %.10g, expected %.10g", what, blo_tensor_get(got, 10), h);

    /* Strided operands: b as a transposed view, values as every other element. */
    int64_t n2 = 14;
    blo_tensor *bt = blo_transpose(ctx, blo_contiguous(ctx, blo_transpose(ctx, b, 0, 1)), 0, 1);
    double v2[14];
    for (int i = 0; i < 14; i++) v2[i] = i % 2 == 0 ? v[i / 2] : 99.0;
    blo_tensor *vs = blo_slice(ctx, blo_from_f64(ctx, dt, 1, &n2, v2), 0, 0, 14, 2);
    TU_CHECK(bt && !blo_tensor_is_contiguous(bt) && vs && !blo_tensor_is_contiguous(vs),
             "%s: strided views", what);
    tu_check_close(blo_spmm(ctx, a, vs, bt), want, dt == BLO_F32 ? 1e-6 : 1e-14, 1e-6,
                   "spmm with strided values and b");
    tu_check_ok(ctx, what);
}

/* A random pattern big enough for the threaded path, against dense matmul, and the same bits
 * for 1 and 2 threads. */
static void check_forward_large(blo_ctx *ctx, blo_rng *r) {
    const int64_t rows = 300, cols = 200, k = 64;
    static int64_t rowptr[301], colidx[300 * 200];
    static double v[300 * 200], dense[300 * 200];
    int64_t nnz = 0;
    rowptr[0] = 0;
    for (int64_t i = 0; i < rows; i++) {
        for (int64_t c = 0; c < cols; c++)
            if (blo_rng_uniform(r) < 0.1) {
                colidx[nnz] = c;
                v[nnz] = blo_rng_uniform(r) * 2 - 1;
                nnz++;
            }
        rowptr[i + 1] = nnz;
    }
    densify(rows, cols, rowptr, colidx, v, dense);
    blo_csr *a = blo_csr_new(ctx, rows, cols, nnz, rowptr, colidx);
    int64_t sb[2] = {cols, k}, sd[2] = {rows, cols};
    blo_tensor *vals = blo_from_f64(ctx, BLO_F64, 1, &nnz, v);
    blo_tensor *b = blo_tensor_new(ctx, BLO_F64, 2, sb);
    blo_init_uniform(b, r, -1, 1);
    blo_tensor *want = blo_matmul(ctx, blo_from_f64(ctx, BLO_F64, 2, sd, dense), b);
    int old = blo_num_threads();
    blo_set_num_threads(1);
    blo_tensor *y1 = blo_spmm(ctx, a, vals, b);
    blo_set_num_threads(2);
    blo_tensor *y2 = blo_spmm(ctx, a, vals, b);
    blo_set_num_threads(old);
    tu_check_close(y1, want, 1e-12, 1e-13, "large spmm vs dense matmul");
    tu_check_close(y2, y1, 0, 0, "large spmm: 2 threads give the 1-thread bits");
    tu_check_ok(ctx, "large spmm");
}

/* f(values, b) = Σ r ⊙ y² + Σ r ⊙ y with y = spmm(A, v, tanh(spmm(A, v, b))) for a square A
 * (a two-layer graph convolution). Squares and the second layer make every second derivative
 * (values-values, values-b, b-b) non-zero and send the HVP through the backward's own spmm
 * and index_select. */
typedef struct {
    blo_csr *a;
    blo_tensor *r;
    int layers;
} sp_env;

static blo_tensor *f_spmm(blo_ctx *ctx, blo_tensor *const *in, void *e) {
    sp_env *env = e;
    blo_tensor *y = blo_spmm(ctx, env->a, in[0], in[1]);
    if (env->layers == 2) y = blo_spmm(ctx, env->a, in[0], blo_tanh(ctx, y));
    blo_tensor *w = blo_mul(ctx, y, env->r);
    return blo_add(ctx, blo_sum_all(ctx, blo_mul(ctx, w, y)), blo_sum_all(ctx, w));
}

static void check_grads(blo_ctx *ctx, blo_rng *r) {
    /* Rectangular, one layer. */
    blo_csr *a = blo_csr_new(ctx, 4, 5, 7, ROWPTR, COLIDX);
    int64_t nnz = 7, sb[2] = {5, 3}, so[2] = {4, 3};
    blo_tensor *in[2] = {tu_rand(ctx, r, BLO_F64, 1, &nnz, -1, 1),
                         tu_rand(ctx, r, BLO_F64, 2, sb, -1, 1)};
    sp_env env = {a, tu_rand(ctx, r, BLO_F64, 2, so, -1, 1), 1};
    tu_gradcheck(ctx, "spmm values and b", f_spmm, &env, 2, in, 1);

    /* Square 5 x 5 with an empty row and column, two layers. */
    const int64_t rp[6] = {0, 2, 3, 3, 6, 8}, ci[8] = {1, 4, 0, 0, 1, 4, 3, 4};
    blo_csr *sq = blo_csr_new(ctx, 5, 5, 8, rp, ci);
    int64_t n8 = 8, s52[2] = {5, 2};
    blo_tensor *in2[2] = {tu_rand(ctx, r, BLO_F64, 1, &n8, -1, 1),
                          tu_rand(ctx, r, BLO_F64, 2, s52, -1, 1)};
    sp_env env2 = {sq, tu_rand(ctx, r, BLO_F64, 2, s52, -1, 1), 2};
    tu_gradcheck(ctx, "two-layer spmm values and b", f_spmm, &env2, 2, in2, 1);

    /* Only one of the two a variable: the other gets no gradient and needs none. */
    blo_tensor *vals = blo_clone(ctx, in[0]), *b = in[1];
    blo_tensor *y = blo_sum_all(ctx, blo_spmm(ctx, a, vals, b));
    blo_tensor *gb;
    blo_status s = blo_grad(ctx, 1, &y, NULL, 1, &b, 0, &gb);
    /* d Σ(A b) / d b[c, k] = Σ of column c of A. */
    double colsum[5] = {0};
    for (int64_t i = 0; i < 4; i++)
        for (int64_t e = ROWPTR[i]; e < ROWPTR[i + 1]; e++)
            colsum[COLIDX[e]] += blo_tensor_get(vals, e);
    double want[15];
    for (int c = 0; c < 5; c++)
        for (int k = 0; k < 3; k++) want[c * 3 + k] = colsum[c];
    TU_CHECK(s == BLO_OK, "grad in b only: %s", blo_ctx_error(ctx));
    if (!s) tu_check_close_f64(gb, want, 1e-14, 1e-15, "grad in b = column sums of A");
    tu_check_ok(ctx, "spmm grads");
}

static void expect_bad(blo_ctx *ctx, const char *what, int64_t rows, int64_t cols, int64_t nnz,
                       const int64_t *rowptr, const int64_t *colidx, const char *needle) {
    blo_csr *a = blo_csr_new(ctx, rows, cols, nnz, rowptr, colidx);
    TU_CHECK(!a && blo_ctx_status(ctx) == BLO_ERR_INVALID, "%s: must be rejected (%s)", what,
             blo_status_name(blo_ctx_status(ctx)));
    TU_CHECK(strstr(blo_ctx_error(ctx), needle) != NULL, "%s: message '%s' lacks '%s'", what,
             blo_ctx_error(ctx), needle);
    blo_ctx_clear_error(ctx);
}

static void check_errors(blo_ctx *ctx) {
    const int64_t rp_first[3] = {1, 2, 2}, rp_dec[4] = {0, 2, 1, 3}, rp_last[3] = {0, 1, 2};
    const int64_t ci2[2] = {0, 1}, ci3[3] = {0, 1, 2};
    expect_bad(ctx, "rowptr[0] != 0", 2, 3, 2, rp_first, ci2, "rowptr[0]");
    expect_bad(ctx, "decreasing rowptr", 3, 3, 3, rp_dec, ci3, "row 1");
    expect_bad(ctx, "rowptr end != nnz", 2, 3, 3, rp_last, ci3, "expected nnz = 3");
    const int64_t rp[3] = {0, 2, 4};
    const int64_t ci_range[4] = {0, 1, 2, 3}, ci_neg[4] = {0, 1, -1, 2};
    const int64_t ci_dup[4] = {0, 1, 2, 2}, ci_desc[4] = {1, 0, 0, 2};
    expect_bad(ctx, "column out of range", 2, 3, 4, rp, ci_range, "entry 3 (row 1)");
    expect_bad(ctx, "negative column", 2, 3, 4, rp, ci_neg, "entry 2 (row 1)");
    expect_bad(ctx, "repeated column", 2, 3, 4, rp, ci_dup, "entry 3 (row 1)");
    expect_bad(ctx, "decreasing columns", 2, 3, 4, rp, ci_desc, "entry 1 (row 0)");
    expect_bad(ctx, "negative size", -1, 3, 0, rp, ci2, "rows -1");
    expect_bad(ctx, "NULL colidx", 2, 3, 4, rp, NULL, "colidx");
    expect_bad(ctx, "NULL rowptr", 2, 3, 4, NULL, ci2, "rowptr");

    /* A pattern with no entries and one with no rows are valid. */
    const int64_t rp0[3] = {0, 0, 0};
    blo_csr *empty = blo_csr_new(ctx, 2, 3, 0, rp0, NULL);
    int64_t sb[2] = {3, 2}, zero = 0;
    blo_tensor *b = blo_full(ctx, BLO_F64, 2, sb, 1.0);
    blo_tensor *y = blo_spmm(ctx, empty, blo_zeros(ctx, BLO_F64, 1, &zero), b);
    double z[4] = {0, 0, 0, 0};
    tu_check_close_f64(y, z, 0, 0, "empty pattern gives zeros");
    TU_CHECK(blo_csr_new(ctx, 0, 3, 0, rp0, NULL) != NULL, "a 0 x 3 pattern is valid");
    tu_check_ok(ctx, "empty patterns");

    /* Operands that do not fit. */
    blo_csr *a = blo_csr_new(ctx, 4, 5, 7, ROWPTR, COLIDX);
    int64_t n6 = 6, n7 = 7, s43[2] = {4, 3}, s53[2] = {5, 3};
    TU_CHECK(!blo_spmm(ctx, a, blo_zeros(ctx, BLO_F64, 1, &n6), blo_zeros(ctx, BLO_F64, 2, s53)) &&
                 blo_ctx_status(ctx) == BLO_ERR_SHAPE &&
                 strstr(blo_ctx_error(ctx), "f64[6]") != NULL,
             "values of the wrong length: %s", blo_ctx_error(ctx));
    blo_ctx_clear_error(ctx);
    TU_CHECK(!blo_spmm(ctx, a, blo_zeros(ctx, BLO_F64, 1, &n7), blo_zeros(ctx, BLO_F64, 2, s43)) &&
                 blo_ctx_status(ctx) == BLO_ERR_SHAPE &&
                 strstr(blo_ctx_error(ctx), "f64[4, 3]") != NULL,
             "b with the wrong rows: %s", blo_ctx_error(ctx));
    blo_ctx_clear_error(ctx);
    TU_CHECK(!blo_spmm(ctx, a, blo_zeros(ctx, BLO_F32, 1, &n7), blo_zeros(ctx, BLO_F64, 2, s53)) &&
                 blo_ctx_status(ctx) == BLO_ERR_DTYPE,
             "mixed dtypes");
    blo_ctx_clear_error(ctx);
    /* NULL inputs propagate without a new error. */
    blo_tensor *v7 = blo_zeros(ctx, BLO_F64, 1, &n7), *b53 = blo_zeros(ctx, BLO_F64, 2, s53);
    TU_CHECK(!blo_spmm(ctx, NULL, v7, b53) && blo_ctx_status(ctx) == BLO_OK,
             "NULL pattern propagates");
    TU_CHECK(!blo_spmm(ctx, a, NULL, NULL) && blo_ctx_status(ctx) == BLO_OK, "NULL operands");
    TU_CHECK(!blo_csr_new(NULL, 4, 5, 7, ROWPTR, COLIDX), "NULL context");
    TU_CHECK(blo_csr_rows(NULL) == 0 && blo_csr_nnz(NULL) == 0, "NULL pattern sizes");
}

int main(void) {
    blo_ctx *ctx = blo_ctx_new(0);
    blo_rng r;
    blo_rng_seed(&r, 7);
    check_forward_small(ctx, &r, BLO_F64);
    check_forward_small(ctx, &r, BLO_F32);
    check_forward_large(ctx, &r);
    check_grads(ctx, &r);
    check_errors(ctx);
    blo_ctx_free(ctx);
    return tu_finish("test_ops_sparse");
}
