/* cpu_sparse.c — CSR sparse times dense, and the transpose of a CSR pattern.
 *
 *   out [rows, K] = A b,  A in CSR (rowptr [rows + 1], colidx [nnz], values [nnz]),
 *   b [cols, K] (any strides), values any stride, out fresh and contiguous.
 *
 * Rows are spread over OpenMP threads with a static schedule; each output row is written by
 * one thread, accumulating its entries in pattern order, so the result does not depend on
 * the thread count at all.
 */
#include "cpu.h"

#include <string.h>

/* One output row i. */
#define SPMM_ROW(T)                                                                          \
    do {                                                                                     \
        T *oi = o + i * k;                                                                   \
        for (int64_t j = 0; j < k; j++) oi[j] = 0;                                           \
        for (int64_t e = rowptr[i]; e < rowptr[i + 1]; e++) {                                \
            T a = v[e * vs];                                                                 \
            const T *br = bd + colidx[e] * bs0;                                              \
            if (bs1 == 1)                                                                    \
                for (int64_t j = 0; j < k; j++) oi[j] += a * br[j];                          \
            else                                                                             \
                for (int64_t j = 0; j < k; j++) oi[j] += a * br[j * bs1];                    \
        }                                                                                    \
    } while (0)

/* Small work (or one thread) runs a plain loop: a parallel region with a false if clause
 * still costs a libgomp team, about 1.4 µs. */
#define SPMM(T)                                                                              \
    do {                                                                                     \
        const T *v = (const T *)values->data;                                                \
        const T *bd = (const T *)b->data;                                                    \
        T *o = (T *)out->data;                                                               \
        if (work < 32768 || blo_num_threads() <= 1) {                                        \
            for (int64_t i = 0; i < rows; i++) SPMM_ROW(T);                                  \
        } else {                                                                             \
            _Pragma("omp parallel for schedule(static)")                                     \
            for (int64_t i = 0; i < rows; i++) SPMM_ROW(T);                                  \
        }                                                                                    \
    } while (0)

void blo__cpu_spmm(int64_t rows, const int64_t *rowptr, const blo_tensor *colidx_t,
                   const blo_tensor *values, const blo_tensor *b, blo_tensor *out) {
    const int64_t *colidx = colidx_t->data; /* fresh and contiguous: made by blo_csr_new */
    int64_t k = out->shape[1];
    int64_t vs = values->stride[0], bs0 = b->stride[0], bs1 = b->stride[1];
    int64_t work = (rowptr[rows] + rows) * k;
    if (out->dtype == BLO_F32)
        SPMM(float);
    else
        SPMM(double);
}

/* Transpose by counting sort on the column: count entries per column, turn the counts into
 * starts, then place each entry at its column's cursor (tptr[c] advances as it fills, ending
 * at the next column's start, so one shift restores the starts). Rows are visited in
 * increasing order, so each transposed row's columns strictly increase. */
void blo__cpu_csr_transpose(int64_t rows, int64_t cols, int64_t nnz, const int64_t *rowptr,
                            const int64_t *colidx, blo_tensor *a_col, blo_tensor *a_row,
                            blo_tensor *a_perm, int64_t *tptr, blo_tensor *t_col,
                            blo_tensor *t_row, blo_tensor *t_perm) {
    int64_t *acol = a_col->data, *arow = a_row->data, *aperm = a_perm->data;
    int64_t *tcol = t_col->data, *trow = t_row->data, *tperm = t_perm->data;
    if (nnz > 0) memcpy(acol, colidx, (size_t)nnz * sizeof(int64_t));
    for (int64_t i = 0; i < rows; i++)
        for (int64_t e = rowptr[i]; e < rowptr[i + 1]; e++) arow[e] = i;
    memset(tptr, 0, (size_t)(cols + 1) * sizeof(int64_t));
    for (int64_t e = 0; e < nnz; e++) tptr[acol[e] + 1]++;
    for (int64_t c = 0; c < cols; c++) tptr[c + 1] += tptr[c];
    for (int64_t e = 0; e < nnz; e++) {
        int64_t k = tptr[acol[e]]++;
        tcol[k] = arow[e];
        trow[k] = acol[e];
        tperm[k] = e;
        aperm[e] = k;
    }
    for (int64_t c = cols; c > 0; c--) tptr[c] = tptr[c - 1];
    tptr[0] = 0;
}
