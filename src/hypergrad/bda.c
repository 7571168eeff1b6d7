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
#include "../solve/solver.h"

#include <math.h>

static blo_status bda_check(blo_solver *s) {
    if (!(s->c.alpha > 0 && s->c.alpha < 1))
        return blo__solver_fail(s, BLO_ERR_INVALID,
                                "bda: alpha (the aggregation weight μ_0; μ_t = alpha/(t+1)) must "
                                "lie in (0, 1), got %g",
                                s->c.alpha);
    if (!(s->c.upper_lr > 0) || !isfinite(s->c.upper_lr))
        return blo__solver_fail(s, BLO_ERR_INVALID,
                                "bda: upper_lr (s_u, the step on ∇_y F) must be positive, got %g",
                                s->c.upper_lr);
    return BLO_OK;
}

/* The aggregated direction at step t into agg (recorded: it is differentiated later). */
static blo_status aggregate(blo_solver *s, blo_traj *tr, blo_tensor **gf, blo_tensor **gF,
                            blo_tensor **agg) {
    blo_ctx *c = s->sctx;
    int ny = s->ny;
    blo_status st = blo__ll_grad(s, tr->y, tr->t, 1, gf, NULL);
    if (st) return st;
    blo_tensor *F = blo__upper(s, tr->y, tr->t);
    if (!F) return blo__solver_ctx_fail(s, "bda: the upper objective");
    st = blo__grad_or_zeros(s, F, ny, tr->y, BLO_GRAD_CREATE_GRAPH, gF, "bda: ∇_y F");
    if (st) return st;
    double mu = s->c.alpha / (double)(tr->t + 1);
    for (int i = 0; i < ny; i++) {
        /* The inner step multiplies by s_l; the UL part must come out as μ s_u ∇F. */
        blo_tensor *up = s->c.lr_x >= 0
                             ? blo_scale(c, blo_div(c, gF[i], s->x[s->c.lr_x]), mu * s->c.upper_lr)
                             : blo_scale(c, gF[i], mu * s->c.upper_lr / s->c.inner.lr);
        agg[i] = blo_add(c, blo_scale(c, gf[i], 1 - mu), up);
        if (!agg[i]) return blo__solver_ctx_fail(s, "bda: the aggregated step");
    }
    return BLO_OK;
}

static blo_status bda_hypergrad(blo_solver *s, blo_tensor **hx, blo_tensor **hy0) {
    int ny = s->ny;
    blo_traj tr;
    blo_status st = blo__traj_start(s, &tr, 1);
    if (st) return st;
    blo_tensor **gf = blo__list(s, ny), **gF = blo__list(s, ny), **agg = blo__list(s, ny);
    if (!gf || !gF || !agg) return blo__solver_ctx_fail(s, "bda");
    while (tr.t < s->c.inner_steps) {
        if ((st = aggregate(s, &tr, gf, gF, agg)) || (st = blo__inner_step(s, &tr, agg))) return st;
    }
    return blo__finish_reverse(s, tr.y, tr.t, hx, hy0, s->c.init == BLO_INIT_LEARNED);
}

const blo_method blo__method_bda = {
    {"bda",
     "reverse mode through y ← y − [μ_t s_u ∇_y F + (1−μ_t) s_l ∇_y f], μ_t = α/(t+1) "
     "(LL solution sets that are not singletons)",
     "Liu, Mu, Yuan, Zeng & Zhang, ICML 2020", "inner, inner_steps, init, alpha, upper_lr"},
    bda_check,
    bda_hypergrad,
    0};
