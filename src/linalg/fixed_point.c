/* fixed_point.c — fixed-point iteration u ← G(u), plain or with Anderson acceleration.
 *
 * Plain (Picard): f_k = G(u_k) − u_k, u_{k+1} = u_k + f_k; converges linearly at the rate of
 * the contraction. Anderson, type II (Anderson, J. ACM 12, 1965; Walker & Ni, SIAM J. Numer.
 * Anal. 49, 2011, eq. 4): keep the last m differences ΔU_j = u_{j+1} − u_j and
 * ΔF_j = f_{j+1} − f_j, take γ = argmin ‖f_k − ΔF γ‖₂ (normal equations, lightly
 * regularised), and step
 *
 *     u_{k+1} = u_k + β f_k − (ΔU + β ΔF) γ,
 *
 * β the mixing (1: undamped). For a linear G this is GMRES-like; Bai, Kolter & Koltun (deep
 * equilibrium models, NeurIPS 2019) use it for the forward and backward fixed points.
 */
#include "lists.h"

#include <math.h>
#include <string.h>

#define MAX_M 32

/* Solves the m×m normal equations H γ = c (H positive semidefinite, overwritten) after
 * adding λ I, λ relative to H's trace; γ = 0 when H is numerically zero. */
static void small_solve(int m, double *H, double *c, double *gamma) {
    double tr = 0;
    for (int i = 0; i < m; i++)
        tr += H[i * m + i];
    if (!(tr > 0)) {
        memset(gamma, 0, sizeof(double) * (size_t)m);
        return;
    }
    for (int i = 0; i < m; i++)
        H[i * m + i] += 1e-10 * tr / m;
    blo__dense_solve(m, H, c, 1);
    memcpy(gamma, c, sizeof(double) * (size_t)m);
}

blo_status blo_linalg_fixed_point(blo_ctx *ctx, const blo_linop *G, blo_tensor *const *x,
                                  const blo_linalg_opts *o, blo_linalg_result *res) {
    blo_linalg_result r0 = {0, NAN, NAN, 0, NAN}, *rs = res ? res : &r0;
    *rs = r0;
    blo_status st = blo__linalg_check(ctx, G, x, o, "fixed_point");
    if (st) return st;
    int m = o->anderson_m;
    double beta = o->anderson_beta;
    if (m < 0 || m > MAX_M || (m > 0 && (!(beta > 0) || !isfinite(beta))))
        return blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                                 "fixed_point: Anderson memory %d must lie in [0, %d] and the "
                                 "mixing %g be positive",
                                 m, MAX_M, beta);
    int n = G->n;
    blo_mark mk = blo_ctx_mark(ctx);
    blo_tensor *const *f = blo__zeros_list(ctx, n, x), *const *u = x;
    blo_tensor **uprev = NULL, **fprev = NULL, **dU[MAX_M], **dF[MAX_M];
    if (!f) goto nomem;
    if (m > 0) {
        if (!(uprev = blo__zeros_list(ctx, n, x)) || !(fprev = blo__zeros_list(ctx, n, x)))
            goto nomem;
        for (int j = 0; j < m; j++)
            if (!(dU[j] = blo__zeros_list(ctx, n, x)) || !(dF[j] = blo__zeros_list(ctx, n, x)))
                goto nomem;
    }
    double u0 = blo__norm_list(n, u), bound = 1e6 * (u0 > 0 ? u0 : 1);
    double un = u0; /* plain iteration: ‖u‖ bounded by the triangle inequality, see below */
    rs->residual0 = u0;
    int kept = 0, head = 0; /* differences stored, and the slot the next one goes to */
    for (int k = 0; k < o->max_iter; k++) {
        double du;
        if (m == 0) {
            /* Plain: f ← G(u), u ← u − f (= −step), ‖step‖, then the two swap roles: two
             * passes over the vector besides the operator's, no copy. */
            if ((st = blo__linop_apply(ctx, G, u, f, "fixed_point"))) goto out;
            blo__axpy_list(n, -1.0, f, u);
            du = blo__norm_list(n, u);
            blo_tensor *const *t = u;
            u = f, f = t;
            un += du; /* ‖u_{k+1}‖ <= ‖u_k‖ + ‖step‖: the norm is taken only past the bound */
            if (!(un <= bound)) un = blo__norm_list(n, u);
        } else {
            /* f ← G(u) − u. */
            if ((st = blo__linop_apply(ctx, G, u, f, "fixed_point"))) goto out;
            blo__axpy_list(n, -1.0, u, f);
            du = blo__norm_list(n, f);
            if (k > 0) { /* the newest differences: u − u_prev, f − f_prev */
                blo__copy_list(n, u, dU[head]);
                blo__axpy_list(n, -1.0, uprev, dU[head]);
                blo__copy_list(n, f, dF[head]);
                blo__axpy_list(n, -1.0, fprev, dF[head]);
                head = (head + 1) % m;
                if (kept < m) kept++;
            }
            blo__copy_list(n, u, uprev);
            blo__copy_list(n, f, fprev);
            double H[MAX_M * MAX_M], c[MAX_M], gamma[MAX_M];
            for (int i = 0; i < kept; i++) {
                c[i] = blo__dot_list(n, dF[i], f);
                for (int j = 0; j <= i; j++)
                    H[i * kept + j] = H[j * kept + i] = blo__dot_list(n, dF[i], dF[j]);
            }
            if (kept) small_solve(kept, H, c, gamma);
            blo__axpy_list(n, beta, f, u);
            for (int j = 0; j < kept; j++) {
                blo__axpy_list(n, -gamma[j], dU[j], u);
                blo__axpy_list(n, -beta * gamma[j], dF[j], u);
            }
            un = blo__norm_list(n, u);
        }
        rs->iters = k + 1;
        rs->residual = du;
        if (!isfinite(un) || un > bound) {
            st = blo_ctx_set_error(ctx, BLO_ERR_NUMERIC,
                                   "fixed_point: u ← G(u) diverges (‖u‖ = %.3g at iteration %d): "
                                   "G is not a contraction",
                                   un, k);
            goto out;
        }
        if (du <= o->tol) break;
    }
    rs->converged = rs->residual <= o->tol;
    if (u != x) blo__copy_list(n, u, x); /* plain iteration ended on the solver's vector */
    goto out;
nomem:
    st = blo_ctx_status(ctx) ? blo_ctx_status(ctx) : BLO_ERR_NOMEM;
out:
    blo_ctx_rewind(ctx, mk);
    return st;
}
