/* neumann.c — implicit hypergradient with the inverse Hessian replaced by a truncated Neumann
 * series.
 *
 * At a lower-level solution, dF/dx = ∂F/∂x − ∇²_xy f · H⁻¹ ∂F/∂y with H = ∇²_yy f. For
 * 0 < α < 2/λ_max(H), H⁻¹ = α Σ_{k≥0} (I − αH)^k, so
 *
 *     v = α Σ_{k=0}^{K} (I − αH)^k ∂F/∂y,        dF/dx ≈ ∂F/∂x − ∇²_xy f · v,
 *
 * built term by term by blo_linalg_neumann: p_0 = ∂F/∂y, p_{k+1} = p_k − α H p_k,
 * v = α Σ p_k (K = neumann_terms Hessian-vector products through the inner gradient recorded once
 * at y_T). y_T comes from T inner steps without a graph. The error shrinks like (1 − α λ_min(H))^K;
 * truncation acts as a regulariser when H is only positive semidefinite. Lorraine, Vicol &
 * Duvenaud, "Optimizing millions of hyperparameters by implicit differentiation", AISTATS 2020.
 */
#include "blocks.h"

#include <math.h>

static blo_status neumann_check(blo_method_env *e) {
    if (blo__refuse_learned_start(e, "neumann")) return BLO_ERR_INVALID;
    if (e->c.neumann_terms < 0)
        return blo__method_fail(e, BLO_ERR_INVALID, "neumann: neumann_terms must be >= 0, got %d",
                                e->c.neumann_terms);
    if (!(e->c.alpha > 0) || !isfinite(e->c.alpha))
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "neumann: alpha must be positive (below 2/λ_max of ∇²_yy f), "
                                "got %g",
                                e->c.alpha);
    return BLO_OK;
}

static blo_status neumann_hypergrad(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    (void)hy0; /* a learned start is refused by the check */
    int nx = e->nx, ny = e->ny;
    double alpha = e->c.alpha;
    blo_traj tr;
    blo_status st = blo__traj_start(e, &tr, 0);
    if (!st) st = blo__unroll(e, &tr, e->c.inner_steps, 0);
    if (st) return st;
    blo_tensor **y = tr.y; /* leaves holding y_T */

    blo_tensor **dx = blo__list(e, nx), **dy = blo__list(e, ny), **g = blo__list(e, ny);
    blo_tensor **v = blo__list(e, ny);
    if (!dx || !dy || !g || !v || (st = blo__zeros_like(e, ny, y, v)))
        return st ? st : blo__method_ctx_fail(e, "neumann");
    if ((st = blo__upper_grads(e, y, tr.t, dx, dy))) return st;
    double fval;
    if ((st = blo__ll_grad(e, y, tr.t, 1, g, &fval))) return st; /* recorded: H and ∇²_xy */
    e->last_lower = fval;

    blo__hess_op op = {e, g, y, 0};
    blo_linop A = blo__hess_linop(&op);
    blo_linalg_opts o = {e->c.neumann_terms, 0, alpha, 0, 0};
    blo_linalg_result r = {0};
    st = blo_linalg_neumann(e->sctx, &A, dy, v, &o, &r);
    blo__method_solve_report(e, &r);
    if (st) {
        /* With α < 2/λ_max and H ⪰ 0 the terms never grow; growth means α is too large (or
         * H has negative curvature) and the series diverges. */
        if (st == BLO_ERR_NUMERIC && r.iters > 0)
            return blo__method_fail(e, BLO_ERR_NUMERIC,
                                    "neumann: the series Σ(I − αH)^k ∂F/∂y diverges (term %d is "
                                    "%.3g times the first); alpha = %g must be below "
                                    "2/λ_max(∇²_yy f) and the lower level convex near y_T — "
                                    "lower alpha (the inner learning rate is a safe choice)",
                                    r.iters, r.residual / r.residual0, alpha);
        return blo__linalg_fail(e, st);
    }

    if ((st = blo__implicit_finish(e, g, v, dx, hx))) return st;
    blo__keep_state(e, &tr);
    return BLO_OK;
}

const blo_method blo__method_neumann = {
    {"neumann", "implicit: v = α Σ_{k≤K} (I − α∇²_yy f)^k ∂F/∂y, dF/dx = ∂F/∂x − ∇²_xy f·v",
     "Lorraine, Vicol & Duvenaud, AISTATS 2020", "inner, inner_steps, neumann_terms (K), alpha"},
    neumann_check,
    neumann_hypergrad,
    0};
