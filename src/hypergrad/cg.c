/* cg.c — implicit hypergradient by conjugate gradients (implicit function theorem).
 *
 * At a lower-level solution ∇_y f(x, y*) = 0, so d y*(x) / dx = -(∇²_yy f)⁻¹ ∇²_yx f and
 *
 *     dF/dx = ∂F/∂x - ∇²_xy f · v,   where   ∇²_yy f · v = ∂F/∂y   (at y = y_T ≈ y*).
 *
 * The linear system is solved matrix-free by CG on Hessian-vector products (the inner
 * gradient is recorded once; each product is one reverse pass over it), for at most
 * solve_iters iterations or until ‖r‖ ≤ tol. y_T comes from T inner steps run without a graph.
 * Pedregosa, "Hyperparameter optimization with approximate gradient", ICML 2016 (HOAG);
 * Rajeswaran, Finn, Kakade & Levine, "Meta-learning with implicit gradients", NeurIPS 2019.
 * Needs ∇²_yy f positive definite at y_T (a strongly convex lower level).
 *
 * Damping (opt in, blo_config.damping = δ > 0): solve (H + δI) v = ∂F/∂y instead. This is the
 * implicit hypergradient of the proximally regularised lower level
 *     f_δ(x, y) = f(x, y) + ½ δ ‖y − y_T‖²   (y_T held fixed, so ∇_y f_δ = ∇_y f at y = y_T
 *                                            and ∇²_xy f_δ = ∇²_xy f),
 * whose Hessian H + δI is positive definite once δ > −λ_min(H): with an indefinite H (a deep
 * network's, e.g. the DARTS supernet) the undamped system has no meaningful solution, the
 * damped one does, and it tends to ∂F/∂x as δ → ∞ (v ≈ ∂F/∂y / δ → 0), so δ trades the
 * curvature information against stability (as the Levenberg–Marquardt step does). δ = 0 is
 * the plain method.
 */
#include "blocks.h"

#include <math.h>

static blo_status cg_check(blo_method_env *e) {
    if (blo__refuse_learned_start(e, "cg")) return BLO_ERR_INVALID;
    if (e->c.solve_iters < 1)
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "cg: solve_iters (CG iterations) must be >= 1, got %d",
                                e->c.solve_iters);
    if (!(e->c.damping >= 0) || !isfinite(e->c.damping))
        return blo__method_fail(e, BLO_ERR_INVALID, "cg: damping must be finite and >= 0, got %g",
                                e->c.damping);
    return BLO_OK;
}

static blo_status cg_hypergrad(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    (void)hy0; /* a learned start is refused by the check */
    int nx = e->nx, ny = e->ny;
    blo_traj tr;
    blo_status st = blo__traj_start(e, &tr, 0);
    if (!st) st = blo__unroll(e, &tr, e->c.inner_steps, 0);
    if (st) return st;
    blo_tensor **y = tr.y; /* leaves holding y_T */
    blo_tensor **dx = blo__list(e, nx), **dy = blo__list(e, ny), **g = blo__list(e, ny);
    if (!dx || !dy || !g) return blo__method_ctx_fail(e, "cg");
    if ((st = blo__upper_grads(e, y, tr.t, dx, dy))) return st;
    double fval;
    if ((st = blo__ll_grad(e, y, tr.t, 1, g, &fval))) return st; /* recorded: H and ∇²_xy */
    e->last_lower = fval;

    /* CG on (H + δI) v = ∂F/∂y from v = 0. */
    blo_tensor **v = blo__list(e, ny);
    if (!v || (st = blo__zeros_like(e, ny, y, v))) return st ? st : blo__method_ctx_fail(e, "cg");
    blo__hess_op op = {e, g, y, e->c.damping};
    blo_linop A = blo__hess_linop(&op);
    blo_linalg_opts o = {e->c.solve_iters, e->c.tol, 0, 0, 0};
    blo_linalg_result r = {0};
    st = blo_linalg_cg(e->sctx, &A, dy, v, &o, &r);
    blo__method_solve_report(e, &r);
    if (st) {
        if (st == BLO_ERR_NUMERIC && r.iters == 0 && isfinite(r.curvature))
            /* p = ∂F/∂y: its Rayleigh quotient bounds λ_min(H) + δ from above */
            return blo__method_fail(e, BLO_ERR_NUMERIC,
                                    "cg: the lower-level Hessian is not positive definite at "
                                    "y_T (pᵀ(H + %g I)p / pᵀp = %g along p = dF/dy, so the "
                                    "damping must exceed %g); use more inner steps, a "
                                    "regularised lower level, a larger damping, or neumann",
                                    e->c.damping, r.curvature, e->c.damping - r.curvature);
        return blo__linalg_fail(e, st);
    }

    /* dF/dx = ∂F/∂x − ∇_x ⟨∇_y f, v⟩. */
    if ((st = blo__implicit_finish(e, g, v, dx, hx))) return st;
    blo__keep_state(e, &tr);
    return BLO_OK;
}

const blo_method blo__method_cg = {{"cg",
                                    "implicit: solve (∇²_yy f + δI)·v = ∂F/∂y by CG (δ: damping, 0 "
                                    "by default), dF/dx = ∂F/∂x − ∇²_xy f·v",
                                    "Pedregosa, ICML 2016; Rajeswaran et al., NeurIPS 2019",
                                    "inner, inner_steps, solve_iters, tol, damping"},
                                   cg_check,
                                   cg_hypergrad,
                                   0};
