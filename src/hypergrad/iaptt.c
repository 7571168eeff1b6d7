/* iaptt.c — IAPTT-GM: initialization auxiliary and pessimistic trajectory truncation.
 *
 *   y_{t+1} = Φ(x, y_t),  t = 0 .. T-1,  from the learned start y_0,
 *   t* = argmax_{t ∈ 1..T} F(x, y_t),
 *   hypergradients  dF(x, y_{t*}) / dx  and  dF(x, y_{t*}) / dy_0   (one reverse pass)
 *
 * Liu, Liu, Yuan, Zeng & Zhang, "Towards gradient-based bilevel optimization with non-convex
 * followers and beyond", NeurIPS 2021. With a non-convex lower level, T steps from a fixed
 * start reach whatever local minimizer the start leads to. IA makes the start a hyper-variable
 * updated on dF/dy_0, so the UL chooses the basin; PTT back-propagates from the step where the
 * UL objective is worst along the trajectory, a cheap stand-in for the pessimistic
 * max_{y ∈ trajectory} F that the paper's convergence analysis needs, and it shortens the
 * reverse pass to t* steps. As in the authors' code (experiment/Numerical.py and
 * Data_hyper_cleaning.py: F is evaluated after every inner step, t* is the first maximizer,
 * and the start is trained by SGD on the gradient of F(x, y_{t*})), ties keep the earliest t.
 *
 * The start must be learned: c.init = BLO_INIT_LEARNED (its optimizer: c.init_opt). The check
 * refuses anything else rather than silently dropping the IA half of the method; the solver
 * has to know at construction that y_0 is a hyper-variable (requires_grad, optimizer state,
 * checkpoints). The trajectory is recorded up to T (the scan needs every y_t; only the part up
 * to t* is reached by the reverse pass). The record reports F and f at y_T and keeps y_T, the
 * LL iterate, like the other trajectory methods; the hypergradient is that of F(x, y_{t*}).
 */
#include "method.h"

#include <math.h>
#include <string.h>

static blo_status iaptt_check(blo_method_env *e) {
    if (e->c.init != BLO_INIT_LEARNED)
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "iaptt: the initialization auxiliary makes the LL start y_0 a "
                                "hyper-variable; set init = learned (BLO_INIT_LEARNED, --init "
                                "learned), got %s",
                                blo_init_kind_name(e->c.init));
    if (e->c.inner_steps < 1)
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "iaptt: needs at least one inner step (t* ranges over 1..T), got "
                                "T = %d",
                                e->c.inner_steps);
    return BLO_OK;
}

static blo_status iaptt_hypergrad(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    blo_ctx *c = e->sctx;
    int ny = e->ny;
    blo_traj tr;
    blo_status st = blo__traj_start(e, &tr, 1);
    blo_tensor **worst = blo__list(e, ny);
    if (!st && !worst) st = blo__method_ctx_fail(e, "iaptt");
    if (st) return st;
    double F_worst = -INFINITY, F_T = NAN;
    blo_rng at_worst = e->rng; /* the draw t* was scored on: differentiated on the same */
    int64_t t_worst = 0;
    while (tr.t < e->c.inner_steps) {
        if ((st = blo__unroll(e, &tr, tr.t + 1, 1))) return st;
        /* F(x, y_t) as a value: nothing of it is kept, so it is released at once. */
        blo_mark mk = blo_ctx_mark(c);
        int old = blo_ctx_set_recording(c, 0);
        blo_rng draw = e->rng;
        blo_tensor *F = blo__upper(e, tr.y, tr.t);
        blo_ctx_set_recording(c, old);
        if (!F) return blo__method_ctx_fail(e, "iaptt: the upper objective");
        F_T = blo_tensor_item(F);
        blo_ctx_rewind(c, mk);
        if (!isfinite(F_T))
            return blo__method_fail(e, BLO_ERR_NUMERIC,
                                    "iaptt: F(x, y_t) is %g at inner step %lld; lower the inner "
                                    "step size",
                                    F_T, (long long)tr.t);
        if (F_T > F_worst) { /* strict: the first maximizer, as the authors' list.index(max) */
            F_worst = F_T;
            t_worst = tr.t;
            at_worst = draw;
            memcpy(worst, tr.y, sizeof(blo_tensor *) * (size_t)ny);
        }
    }
    blo_rng end = e->rng;
    e->rng = at_worst;
    st = blo__finish_reverse(e, worst, t_worst, hx, hy0, 1);
    e->rng = end;
    if (st) return st;
    /* Report the LL iterate y_T (finish_reverse kept y_{t*}). */
    int old = blo_ctx_set_recording(c, 0);
    blo_tensor *f = blo__lower(e, tr.y, tr.t);
    blo_ctx_set_recording(c, old);
    if (!f) return blo__method_ctx_fail(e, "iaptt: the lower objective");
    e->last_upper = F_T;
    e->last_lower = blo_tensor_item(f);
    blo__keep_state(e, &tr);
    return BLO_OK;
}

const blo_method blo__method_iaptt = {
    {"iaptt",
     "learned start y_0 (IA) + reverse mode from the worst UL step t* = argmax_t F(x, y_t) "
     "(PTT) to x and y_0",
     "Liu, Liu, Yuan, Zeng & Zhang, NeurIPS 2021", "inner, inner_steps, init = learned, init_opt"},
    iaptt_check,
    iaptt_hypergrad,
    0};
