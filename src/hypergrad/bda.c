/* bda.c — Bilevel Descent Aggregation: inner steps that descend both levels at once, for
 * lower levels whose solution set is not a singleton.
 *
 *   y_{t+1} = y_t − [ μ_t s_u ∇_y F(x, y_t) + (1 − μ_t) s_l ∇_y f(x, y_t) ],   t = 0 .. T-1,
 *   μ_t = α / (t + 1),                     dF/dx = d F(x, y_T(x)) / dx  (reverse mode)
 *
 * Liu, Mu, Yuan, Zeng & Zhang, "A generic first-order algorithmic framework for bi-level
 * programming beyond lower-level singleton", ICML 2020. When argmin_y f(x, ·) is a set, the
 * plain inner descent (rhg) lands on whichever minimizer its start leads to, and the UL cannot
 * choose among them (the optimistic problem min_{x, y ∈ S(x)} F is not what it solves). Adding
 * the UL descent direction with a weight μ_t that vanishes but is not summable (Σ μ_t = ∞)
 * moves y inside the solution set towards the UL's preferred point while the LL term keeps
 * it converging to S(x); the paper's convergence theory asks exactly for μ_t ∈ (0, 1),
 * μ_t ↓ 0, Σ μ_t = ∞, which α/(t + 1) meets. (The authors' TensorFlow code decays the UL
 * weight geometrically instead, α·0.9^t; that sum is finite, so we keep the schedule the
 * theory covers.)
 *
 * Settings: α = c.alpha ∈ (0, 1), s_u = c.upper_lr, s_l = the inner step (inner.lr, or the
 * learned x[lr_x]). The aggregated direction (1 − μ_t) ∇_y f + μ_t (s_u / s_l) ∇_y F is fed to
 * the configured inner optimizer, so with SGD the step is exactly the update above; momentum
 * or Adam act on the aggregated direction (the paper allows any first-order LL module).
 * Projection (project_y) follows every step. The whole trajectory is recorded, ∇_y F(x, y_t)
 * included, and one reverse pass gives dF/dx and, with a learned start, dF/dy_0 — as in rhg,
 * memory grows with T.
 */
#include "method.h"

#include <math.h>

static blo_status bda_check(blo_method_env *e) {
    if (!(e->c.alpha > 0 && e->c.alpha < 1))
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "bda: alpha (the aggregation weight μ_0; μ_t = alpha/(t+1)) must "
                                "lie in (0, 1), got %g",
                                e->c.alpha);
    if (!(e->c.upper_lr > 0) || !isfinite(e->c.upper_lr))
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "bda: upper_lr (s_u, the step on ∇_y F) must be positive, got %g",
                                e->c.upper_lr);
    return BLO_OK;
}

/* The aggregated direction at step t into agg (recorded: it is differentiated later). */
static blo_status aggregate(blo_method_env *e, blo_traj *tr, blo_tensor **gf, blo_tensor **gF,
                            blo_tensor **agg) {
    blo_ctx *c = e->sctx;
    int ny = e->ny;
    blo_status st = blo__ll_grad(e, tr->y, tr->t, 1, gf, NULL);
    if (st) return st;
    blo_tensor *F = blo__upper(e, tr->y, tr->t);
    if (!F) return blo__method_ctx_fail(e, "bda: the upper objective");
    st = blo__grad_or_zeros(e, F, ny, tr->y, BLO_GRAD_CREATE_GRAPH, gF, "bda: ∇_y F");
    if (st) return st;
    double mu = e->c.alpha / (double)(tr->t + 1);
    for (int i = 0; i < ny; i++) {
        /* The inner step multiplies by s_l (y_i's own with per-parameter step sizes); the UL
         * part must come out as μ s_u ∇F. */
        blo_tensor *up =
            e->c.lr_x >= 0
                ? blo_scale(c, blo_div(c, gF[i], e->x[e->c.lr_x + (e->c.lr_x_per_y ? i : 0)]),
                            mu * e->c.upper_lr)
                : blo_scale(c, gF[i], mu * e->c.upper_lr / e->c.inner.lr);
        agg[i] = blo_add(c, blo_scale(c, gf[i], 1 - mu), up);
        if (!agg[i]) return blo__method_ctx_fail(e, "bda: the aggregated step");
    }
    return BLO_OK;
}

static blo_status bda_hypergrad(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    int ny = e->ny;
    blo_traj tr;
    blo_status st = blo__traj_start(e, &tr, 1);
    if (st) return st;
    blo_tensor **gf = blo__list(e, ny), **gF = blo__list(e, ny), **agg = blo__list(e, ny);
    if (!gf || !gF || !agg) return blo__method_ctx_fail(e, "bda");
    while (tr.t < e->c.inner_steps) {
        if ((st = aggregate(e, &tr, gf, gF, agg)) || (st = blo__inner_step(e, &tr, agg))) return st;
    }
    st = blo__finish_reverse(e, tr.y, tr.t, hx, hy0, e->c.init == BLO_INIT_LEARNED);
    if (!st) blo__keep_opt_state(e, &tr);
    return st;
}

const blo_method blo__method_bda = {
    {"bda",
     "reverse mode through y ← y − [μ_t s_u ∇_y F + (1−μ_t) s_l ∇_y f], μ_t = α/(t+1) "
     "(LL solution sets that are not singletons)",
     "Liu, Mu, Yuan, Zeng & Zhang, ICML 2020", "inner, inner_steps, init, alpha, upper_lr"},
    bda_check,
    bda_hypergrad,
    0};
