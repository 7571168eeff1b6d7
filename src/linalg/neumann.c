/* neumann.c — the truncated Neumann series for A⁻¹ b (Lorraine, Vicol & Duvenaud, AISTATS
 * 2020, alg. 3): for 0 < α < 2/λ_max(A) and A ≻ 0, A⁻¹ = α Σ_{k≥0} (I − αA)^k, so
 *
 *     p_0 = b,  p_{k+1} = p_k − α A p_k,  x = α Σ_{k=0}^{K} p_k,
 *
 * K products; the error shrinks like (1 − α λ_min)^K. Truncation regularises when A is only
 * positive semidefinite.
 */
#include "lists.h"

#include <math.h>

blo_status blo_linalg_neumann(blo_ctx *ctx, const blo_linop *A, blo_tensor *const *b,
                              blo_tensor *const *x, const blo_linalg_opts *o,
                              blo_linalg_result *res) {
    blo_linalg_result r0 = {0, NAN, NAN, 0, NAN}, *rs = res ? res : &r0;
    *rs = r0;
    blo_status st = blo__linalg_check(ctx, A, x, o, "neumann");
    if (st) return st;
    if (!b)
        return blo_ctx_set_error(ctx, BLO_ERR_INVALID, "neumann: the right-hand side is missing");
    if (!(o->alpha > 0) || !isfinite(o->alpha))
        return blo_ctx_set_error(ctx, BLO_ERR_INVALID, "neumann: alpha must be positive, got %g",
                                 o->alpha);
    int n = A->n;
    blo_mark mk = blo_ctx_mark(ctx);
    blo_tensor **p = blo__zeros_list(ctx, n, x), **ap = blo__zeros_list(ctx, n, x);
    if (!p || !ap) {
        st = blo_ctx_status(ctx);
        goto out;
    }
    blo__copy_list(n, b, p);
    blo__copy_list(n, b, x);
    double p0 = blo__norm_list(n, p);
    rs->residual0 = rs->residual = p0;
    for (int k = 1; k <= o->max_iter; k++) {
        if ((st = blo__linop_apply(ctx, A, p, ap, "neumann"))) goto out;
        blo__axpy_list(n, -o->alpha, ap, p);
        blo__axpy_list(n, 1.0, p, x);
        /* With α < 2/λ_max and A ⪰ 0 the terms never grow; growth means the series diverges. */
        double pk = blo__norm_list(n, p);
        rs->iters = k;
        rs->residual = pk;
        if (!isfinite(pk) || pk > 1e6 * p0) {
            st = blo_ctx_set_error(ctx, BLO_ERR_NUMERIC,
                                   "neumann: the series diverges (term %d is %.3g times the "
                                   "first); alpha = %g must be below 2/λ_max(A)",
                                   k, pk / p0, o->alpha);
            goto out;
        }
    }
    blo__scale_list(n, o->alpha, x);
out:
    blo_ctx_rewind(ctx, mk);
    return st;
}
