/* inverse.c — the inverse of a small dense matrix by Gaussian elimination with partial pivoting
 * (blo__dense_solve with the identity as its right-hand sides), in double on the host. For the
 * resolvents of operator-splitting solvers, (I + α(I − W))⁻¹, which are factored once and then
 * applied to a whole batch by one matrix product. */
#include "lists.h"

#include <math.h>
#include <string.h>

blo_tensor *blo_linalg_inverse(blo_ctx *ctx, blo_tensor *A) {
    if (!ctx || !A) return NULL;
    if (!blo__check_float(ctx, "blo_linalg_inverse", A)) return NULL;
    if (blo_tensor_ndim(A) != 2 || blo_tensor_dim(A, 0) != blo_tensor_dim(A, 1) ||
        blo_tensor_dim(A, 0) < 1 || blo_tensor_dim(A, 0) > 8192) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                          "blo_linalg_inverse: needs a square [n, n] matrix, 1 <= n <= 8192");
        return NULL;
    }
    int n = (int)blo_tensor_dim(A, 0);
    size_t nn = (size_t)n * (size_t)n;
    double *M = blo_malloc(sizeof(double) * nn), *Z = blo_malloc(sizeof(double) * nn);
    blo_tensor *out = NULL;
    if (!M || !Z) {
        blo_ctx_set_error(ctx, BLO_ERR_NOMEM, "blo_linalg_inverse: out of memory (n = %d)", n);
        goto done;
    }
    if (blo_tensor_to_f64(A, M)) goto done;
    double scale = 0;
    for (size_t i = 0; i < nn; i++)
        scale = fmax(scale, fabs(M[i]));
    memset(Z, 0, sizeof(double) * nn);
    for (int i = 0; i < n; i++)
        Z[(size_t)i * (size_t)n + (size_t)i] = 1;
    double piv = blo__dense_solve(n, M, Z, n);
    if (!(piv > 1e-13 * scale) || !isfinite(piv)) {
        blo_ctx_set_error(ctx, BLO_ERR_NUMERIC,
                          "blo_linalg_inverse: the [%d, %d] matrix is singular (smallest pivot "
                          "%.3g, largest entry %.3g)",
                          n, n, piv, scale);
        goto done;
    }
    out = blo_from_f64(ctx, blo_tensor_dtype(A), 2, blo_tensor_shape(A), Z);
done:
    blo_free(M);
    blo_free(Z);
    return out;
}
