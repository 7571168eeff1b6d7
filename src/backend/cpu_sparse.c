/* cpu_sparse.c — CSR sparse times dense.
 *
 *   out [rows, K] = A b,  A in CSR (rowptr [rows + 1], colidx [nnz], values [nnz]),
 *   b [cols, K] (any strides), values any stride, out fresh and contiguous.
 *
 * Rows are spread over OpenMP threads with a static schedule; each output row is written by
 * one thread, accumulating its entries in pattern order, so the result does not depend on
 * the thread count at all.
 */
#include "cpu.h"

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

void blo__cpu_spmm(int64_t rows, const int64_t *rowptr, const int64_t *colidx,
                   const blo_tensor *values, const blo_tensor *b, blo_tensor *out) {
    int64_t k = out->shape[1];
    int64_t vs = values->stride[0], bs0 = b->stride[0], bs1 = b->stride[1];
    int64_t work = (rowptr[rows] + rows) * k;
    if (out->dtype == BLO_F32)
        SPMM(float);
    else
        SPMM(double);
}
