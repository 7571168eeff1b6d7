/* cg.c — conjugate gradients on a matrix-free operator (Hestenes & Stiefel, J. Res. NBS 49,
 * 1952; Nocedal & Wright, Numerical Optimization, alg. 5.2):
 *
 *     r = b − A x,  p = r;  repeat:  α = rᵀr / pᵀAp,  x += α p,  r −= α A p,
 *                                    p = r + (r'ᵀr' / rᵀr) p
 *
 * until ‖r‖ <= tol or max_iter products. pᵀAp <= 0 means A is not positive definite along p:
 * the iteration stops there (truncated CG) and reports the curvature.
 */
#include "lists.h"

#include <math.h>

blo_status blo_linalg_cg(blo_ctx *ctx, const blo_linop *A, blo_tensor *const *b,
                         blo_tensor *const *x, const blo_linalg_opts *o, blo_linalg_result *res) {
    blo_linalg_result r0 = {0, NAN, NAN, 0, NAN}, *rs = res ? res : &r0;
    *rs = r0;
    blo_status st = blo__linalg_check(ctx, A, x, o, "cg");
    if (st) return st;
    if (!b) return blo_ctx_set_error(ctx, BLO_ERR_INVALID, "cg: the right-hand side is missing");
    int n = A->n;
    blo_mark mk = blo_ctx_mark(ctx);
    blo_tensor **r = blo__zeros_list(ctx, n, x), **p = blo__zeros_list(ctx, n, x),
               **ap = blo__zeros_list(ctx, n, x);
    if (!r || !p || !ap) {
        st = blo_ctx_status(ctx);
        goto out;
    }
    blo__copy_list(n, b, r);
    if (blo__dot_list(n, x, x) != 0) { /* r = b − A x; a zero start needs no product */
        if ((st = blo__linop_apply(ctx, A, x, ap, "cg"))) goto out;
        blo__axpy_list(n, -1.0, ap, r);
    }
    blo__copy_list(n, r, p);
    double rr = blo__dot_list(n, r, r);
    rs->residual0 = rs->residual = sqrt(rr);
    for (int k = 0; k < o->max_iter && sqrt(rr) > o->tol; k++) {
        if ((st = blo__linop_apply(ctx, A, p, ap, "cg"))) goto out;
        double pap = blo__dot_list(n, p, ap), pp = blo__dot_list(n, p, p);
        rs->curvature = pap / pp;
        if (!isfinite(pap)) {
            st = blo_ctx_set_error(ctx, BLO_ERR_NUMERIC,
                                   "cg: the product A·p is not finite at iteration %d", k);
            goto out;
        }
        if (!(pap > 0)) {
            if (k == 0)
                st = blo_ctx_set_error(ctx, BLO_ERR_NUMERIC,
                                       "cg: the operator is not positive definite (pᵀAp / pᵀp = "
                                       "%g along p = b)",
                                       rs->curvature);
            goto out;
        }
        double a = rr / pap;
        blo__axpy_list(n, a, p, x);
        blo__axpy_list(n, -a, ap, r);
        double rr_new = blo__dot_list(n, r, r);
        blo__scale_list(n, rr_new / rr, p);
        blo__axpy_list(n, 1.0, r, p);
        rr = rr_new;
        rs->iters = k + 1;
        rs->residual = sqrt(rr);
    }
out:
    rs->converged = !st && rs->residual <= o->tol;
    blo_ctx_rewind(ctx, mk);
    return st;
}
