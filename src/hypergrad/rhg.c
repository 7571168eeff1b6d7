/* rhg.c — reverse-mode hypergradient through the unrolled lower level (ITD), and its
 * truncated variant.
 *
 *   y_{t+1} = Φ(x, y_t),  t = 0 .. T-1,      dF/dx = ∂F/∂x(x, y_T) + Σ_t B_tᵀ λ_{t+1},
 *   λ_T = ∂F/∂y(x, y_T),  λ_t = A_tᵀ λ_{t+1}, A_t = ∂Φ/∂y_t, B_t = ∂Φ/∂x
 *
 * The whole trajectory is recorded (the inner gradients with create-graph) and one reverse
 * pass computes the sum: Maclaurin, Duvenaud & Adams, ICML 2015; Franceschi, Donini,
 * Frasconi & Pontil, "Forward and reverse gradient-based hyperparameter optimization",
 * ICML 2017. Memory grows with T.
 *
 * trhg keeps only the last K steps in the reverse pass (the first T-K run without a graph):
 * Shaban, Cheng, Hatch & Boots, "Truncated back-propagation for bilevel optimization",
 * AISTATS 2019. With K = T it is rhg.
 *
 * A learned start (BLO_INIT_LEARNED) also gets dF/dy_0 = λ_0 from the same pass (rhg only:
 * the truncated pass does not reach y_0).
 */
#include "method.h"

static blo_status rhg_hypergrad(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    blo_traj tr;
    blo_status st = blo__traj_start(e, &tr, 1);
    if (!st) st = blo__unroll(e, &tr, e->c.inner_steps, 1);
    if (st) return st;
    return blo__finish_reverse(e, tr.y, tr.t, hx, hy0, e->c.init == BLO_INIT_LEARNED);
}

static blo_status trhg_check(blo_method_env *e) {
    if (e->c.K < 1)
        return blo__method_fail(e, BLO_ERR_INVALID, "trhg: K (steps kept) must be >= 1, got %d",
                                e->c.K);
    return BLO_OK;
}

static blo_status trhg_hypergrad(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    int64_t T = e->c.inner_steps, K = e->c.K < T ? e->c.K : T;
    blo_traj tr;
    blo_status st = blo__traj_start(e, &tr, K == T);
    if (!st) st = blo__unroll(e, &tr, T - K, 0); /* no graph: truncated away */
    if (!st) st = blo__unroll(e, &tr, T, 1);
    if (st) return st;
    int with_y0 = e->c.init == BLO_INIT_LEARNED && K == T;
    st = blo__finish_reverse(e, tr.y, tr.t, hx, hy0, with_y0);
    if (!st && e->c.init == BLO_INIT_LEARNED && !with_y0) /* λ_0 is truncated away: zero */
        st = blo__zeros_like(e, e->ny, e->y0, hy0);
    return st;
}

const blo_method blo__method_rhg = {
    {"rhg", "dF/dx by reverse mode through all T unrolled inner steps (ITD)",
     "Franceschi et al., ICML 2017; Maclaurin et al., ICML 2015", "inner, inner_steps, init"},
    NULL,
    rhg_hypergrad,
    0};

const blo_method blo__method_trhg = {{"trhg",
                                      "reverse mode through the last K of T inner steps only",
                                      "Shaban et al., AISTATS 2019", "inner, inner_steps, K"},
                                     trhg_check,
                                     trhg_hypergrad,
                                     0};
