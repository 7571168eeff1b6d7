/* sparse.c — CSR sparsity patterns and the sparse-times-dense product.
 *
 *   out[i, :] = Σ_{e in row i} values[e] · b[col(e), :]          A [rows, cols], b [cols, K]
 *
 * The product is bilinear in (values, b), so its backward is two more products of the same
 * kind, both written with blo ops and therefore differentiable again:
 *
 *   gb      = Aᵀ g = spmm(Aᵀ, values[perm], g)
 *   gvalues = Σ_k g[row(e), k] · b[col(e), k]
 *           = sum over axis 1 of index_select(g, 0, row_of) ⊙ index_select(b, 0, col_of)
 *
 * Aᵀ is a pattern of its own, built once by blo_csr_new and linked both ways (the transpose
 * of the transpose is the original), with `perm` mapping each entry of the transposed pattern
 * to the original entry that holds its value. So the backward of the backward finds every
 * pattern it needs without rebuilding one.
 */
#include "ops_util.h"

#include <string.h>

struct blo_csr {
    int64_t rows, cols, nnz;
    int64_t *rowptr;       /* [rows + 1] */
    blo_tensor *col_of;    /* i64 [nnz]: column of each entry (the CSR column indices) */
    blo_tensor *row_of;    /* i64 [nnz]: row of each entry */
    blo_tensor *perm;      /* i64 [nnz]: entry k of this pattern is entry perm[k] of `t` */
    const struct blo_csr *t; /* the transposed pattern */
};

/* An uninitialised i64 vector of n elements in ctx. */
static blo_tensor *index_vec(blo_ctx *ctx, int64_t n) {
    return blo__alloc(ctx, BLO_I64, 1, &n);
}

/* Checks the pattern; records a message naming the offending row or entry. */
static bool check_pattern(blo_ctx *ctx, int64_t rows, int64_t cols, int64_t nnz,
                          const int64_t *rowptr, const int64_t *colidx) {
    /* Keep every array size (count + 1) * 8 bytes representable. */
    const int64_t lim = INT64_MAX / 16;
    if (rows < 0 || cols < 0 || nnz < 0 || rows >= lim || cols >= lim || nnz >= lim) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                          "blo_csr_new: bad sizes rows %lld, cols %lld, nnz %lld", (long long)rows,
                          (long long)cols, (long long)nnz);
        return false;
    }
    if (!rowptr || (nnz > 0 && !colidx)) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_csr_new: rowptr%s is NULL",
                          rowptr ? " or colidx" : "");
        return false;
    }
    if (rowptr[0] != 0) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_csr_new: rowptr[0] is %lld, expected 0",
                          (long long)rowptr[0]);
        return false;
    }
    if (rowptr[rows] != nnz) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                          "blo_csr_new: rowptr[%lld] (the last) is %lld, expected nnz = %lld",
                          (long long)rows, (long long)rowptr[rows], (long long)nnz);
        return false;
    }
    for (int64_t i = 0; i < rows; i++) {
        if (rowptr[i + 1] < rowptr[i] || rowptr[i + 1] > nnz) {
            blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                              "blo_csr_new: row %lld: rowptr goes from %lld to %lld (must be "
                              "nondecreasing and within [0, %lld])",
                              (long long)i, (long long)rowptr[i], (long long)rowptr[i + 1],
                              (long long)nnz);
            return false;
        }
        for (int64_t e = rowptr[i]; e < rowptr[i + 1]; e++) {
            if (colidx[e] < 0 || colidx[e] >= cols) {
                blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                                  "blo_csr_new: entry %lld (row %lld) has column %lld outside "
                                  "[0, %lld)",
                                  (long long)e, (long long)i, (long long)colidx[e],
                                  (long long)cols);
                return false;
            }
            if (e > rowptr[i] && colidx[e] <= colidx[e - 1]) {
                blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                                  "blo_csr_new: entry %lld (row %lld) has column %lld after "
                                  "column %lld: columns must strictly increase within a row",
                                  (long long)e, (long long)i, (long long)colidx[e],
                                  (long long)colidx[e - 1]);
                return false;
            }
        }
    }
    return true;
}

/* A pattern header with its arrays allocated (not filled). */
static struct blo_csr *csr_alloc(blo_ctx *ctx, int64_t rows, int64_t cols, int64_t nnz) {
    struct blo_csr *a = blo__ctx_alloc(ctx, sizeof *a);
    if (!a) return NULL;
    memset(a, 0, sizeof *a);
    a->rows = rows;
    a->cols = cols;
    a->nnz = nnz;
    a->rowptr = blo__ctx_alloc(ctx, (size_t)(rows + 1) * sizeof(int64_t));
    a->col_of = index_vec(ctx, nnz);
    a->row_of = index_vec(ctx, nnz);
    a->perm = index_vec(ctx, nnz);
    if (!a->rowptr || !a->col_of || !a->row_of || !a->perm) return NULL;
    return a;
}

blo_csr *blo_csr_new(blo_ctx *ctx, int64_t rows, int64_t cols, int64_t nnz,
                     const int64_t *rowptr, const int64_t *colidx) {
    BLO_GUARD(ctx);
    if (!check_pattern(ctx, rows, cols, nnz, rowptr, colidx)) return NULL;
    struct blo_csr *a = csr_alloc(ctx, rows, cols, nnz);
    struct blo_csr *t = a ? csr_alloc(ctx, cols, rows, nnz) : NULL;
    if (!t) return NULL;
    a->t = t;
    t->t = a;

    ctx->be->csr_transpose(rows, cols, nnz, rowptr, colidx, a->col_of, a->row_of, a->perm,
                           t->rowptr, t->col_of, t->row_of, t->perm);
    memcpy(a->rowptr, rowptr, (size_t)(rows + 1) * sizeof(int64_t));
    return a;
}

int64_t blo_csr_rows(const blo_csr *a) {
    return a ? a->rows : 0;
}

int64_t blo_csr_cols(const blo_csr *a) {
    return a ? a->cols : 0;
}

int64_t blo_csr_nnz(const blo_csr *a) {
    return a ? a->nnz : 0;
}

/* Node: in[0] values, in[1] b; ptr the pattern. */
static blo_status spmm_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                          const bool *need, blo_tensor **gin) {
    (void)out;
    const blo_csr *a = n->ptr;
    blo_tensor *values = n->in[0], *b = n->in[1];
    if (need[1]) gin[1] = blo_spmm(ctx, a->t, blo_index_select(ctx, values, 0, a->t->perm), g);
    if (need[0]) {
        int ax = 1;
        blo_tensor *gr = blo_index_select(ctx, g, 0, a->row_of);
        blo_tensor *bc = blo_index_select(ctx, b, 0, a->col_of);
        gin[0] = blo_sum(ctx, blo_mul(ctx, gr, bc), 1, &ax, 0);
    }
    return ctx->status;
}
static const blo_op_def SPMM = {"spmm", spmm_bw, 1};

blo_tensor *blo_spmm(blo_ctx *ctx, const blo_csr *a, blo_tensor *values, blo_tensor *b) {
    BLO_GUARD(ctx);
    if (!a || !values || !b) return NULL;
    if (!blo__check_same_dtype(ctx, "blo_spmm", values, b)) return NULL;
    char x[64], y[64];
    if (values->ndim != 1 || values->shape[0] != a->nnz) {
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE,
                          "blo_spmm: values %s do not match the pattern's %lld entries",
                          blo__desc(values, x, sizeof x), (long long)a->nnz);
        return NULL;
    }
    if (b->ndim != 2 || b->shape[0] != a->cols) {
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE,
                          "blo_spmm: pattern [%lld, %lld] times %s: expected b [%lld, K]",
                          (long long)a->rows, (long long)a->cols, blo__desc(b, y, sizeof y),
                          (long long)a->cols);
        return NULL;
    }
    int64_t sh[2] = {a->rows, b->shape[1]};
    blo_tensor *out = blo__alloc(ctx, b->dtype, 2, sh);
    if (!out) return NULL;
    ctx->be->spmm(a->rows, a->rowptr, a->col_of, values, b, out);
    blo_node *n;
    BLO_RECORD(n, ctx, out, &SPMM, 2, values, b);
    if (n) n->ptr = a;
    return out;
}
