/* cpu_sparse.c — TEMPORARY placeholder while the sparse kernels are written. */
#include "cpu.h"
void blo__cpu_spmm(int64_t rows, const int64_t *rowptr, const int64_t *colidx,
                   const blo_tensor *values, const blo_tensor *b, blo_tensor *out) {
    (void)rows, (void)rowptr, (void)colidx, (void)values, (void)b, (void)out;
}
