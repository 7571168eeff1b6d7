/* amm.c — sl-BAMM, the single-loop bi-level averaged method of multipliers: for lower levels
 * without strong convexity (a merely convex f, a Hessian ∇²_yy f that is only semidefinite).
 *
 * Per outer iteration k, all directions taken at the same point (x_k, y_k, v_k):
 *
 *   D_x = ∇_x F − ∇²_xy f · v_k                          (returned as the hypergradient)
 *   r   = ∇²_yy f · v_k − ∇_y F,   η_k = min(‖r‖² / ⟨r, ∇²_yy f r⟩, s_k)   (line search)
 *   v  ← v − η_k r                        (one step on ½ vᵀ∇²_yy f v − vᵀ∇_y F)
 *   y  ← y − s_k [(1 − μ_k) ∇_y f + μ_k ∇_y F]           (one step on the averaged objective)
 *   x  ← the outer optimizer's step on D_x
 *
 * Liu, Liu, Yao, Zeng & Zhang, "Averaged method of multipliers for bi-level optimization
 * without lower-level strong convexity", ICML 2023. Averaging the upper objective into the
 * lower-level step with a weight μ_k that vanishes (but not too fast) selects, among the lower
 * level's minimizers, the one the upper level prefers — the role of bda's aggregation — and
 * the multiplier v tracks the solution of ∇²_yy f v = ∇_y F as soba's does, so no inner loop
 * and no inverse of a possibly singular Hessian is needed. The exact step is capped at s_k, the
 * lower level's step: where ∇_y F has a part in the Hessian's null space (a lower level that is
 * not strongly convex, y₂ of the toy below) ½ vᵀ∇²_yy f v − vᵀ∇_y F is unbounded below,
 * ‖r‖² / ⟨r, ∇²_yy f r⟩ grows without bound and the uncapped step throws the part of v that
 * matters past its minimum (on the toy, v diverges within 64 iterations); s_k < 2 / λ_max is
 * the step that keeps the range part stable, as it keeps y's.
 *
 * Two schedules (blo_config.amm_schedule):
 *   0, the paper's Theorem (the default): μ_k = μ_0 / (k + 1)^{1/p}, s_k = s (k + 1)^{−τ/2}
 *      (s = inner.lr) and, with an sgd outer optimizer, x's step β_k = s μ_k³ (k + 1)^{−3τ/2}
 *      in place of outer.lr (the returned D_x is scaled by β_k / outer.lr); p = 10 and
 *      τ = 1/40 as in the authors' code. With another outer optimizer its own step stands in
 *      for β_k.
 *   1, the authors' code (vis-opt-group/sl-BAMM, merely_convex/strategy3.py, the BAMM branches
 *      without --thelr): μ_k = μ_0 / (k + 2), s_k = s, x's step the outer optimizer's.
 * The Theorem's schedule is the default because it is the one that solves the merely convex
 * toy (tests/test_hypergrad_amm.c): a part of y the lower level leaves free moves only through
 * the μ_k ∇_y F term, at a total rate Σ s μ_k, which grows like k^{1 − 1/p} for the Theorem's
 * μ_k but only like log k for the code's; from x = y = 0.01 with s = 0.5, μ_0 = 0.9 and an sgd
 * outer step, 3000 iterations end 3.6e-15 from the optimum with the Theorem's schedule and
 * 0.26 from it with the code's.
 * μ_0 = blo_config.alpha.
 *
 * State: y is the solver's y (e->y, carried from the problem's y_0; init and inner_steps are not
 * used), v is method state (one group shaped like y, zero at the start, saved in checkpoints).
 * The inner optimizer must be sgd; inner.weight_decay adds ½ wd ‖y‖² to f, in ∇_y f and in every
 * Hessian product. project_y follows the y step. The record's F and f are those at (x_k, y_k).
 */
#include "blocks.h"

#include <math.h>
#include <string.h>

#define AMM_P 10.0          /* the Theorem's schedule: μ_k = μ_0 / (k + 1)^{1/p} */
#define AMM_TAU (1.0 / 40.) /* and its step exponents */

static blo_status amm_check(blo_method_env *e) {
    blo_status st = blo__check_carried_y(e, "amm", 1);
    if (st) return st;
    if (!(e->c.alpha > 0 && e->c.alpha < 1))
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "amm: alpha (μ_0, the weight of F in the averaged lower-level "
                                "step) must lie in (0, 1), got %g",
                                e->c.alpha);
    if (e->c.amm_schedule != 0 && e->c.amm_schedule != 1)
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "amm: amm_schedule must be 0 (the paper's Theorem) or 1 (the "
                                "authors' code), got %d",
                                e->c.amm_schedule);
    return BLO_OK;
}

static blo_status amm_hypergrad(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    (void)hy0;
    blo_ctx *c = e->sctx;
    int nx = e->nx, ny = e->ny;
    double s = e->c.inner.lr, wd = blo__ll_weight_decay(e), k1 = (double)e->iter + 1;
    int theory = e->c.amm_schedule == 0;
    double mu = theory ? e->c.alpha / pow(k1, 1 / AMM_P) : e->c.alpha / (k1 + 1);
    double sk = theory ? s * pow(k1, -AMM_TAU / 2) : s;
    blo_tensor **v = e->ms; /* group 0: the multiplier */
    blo_traj tr;
    blo_status st = blo__traj_start_from(e, &tr, e->y);
    blo_tensor **in = blo__list(e, nx + ny), **dF = blo__list(e, nx + ny),
               **d2 = blo__list(e, nx + ny), **gf = blo__list(e, ny), **r = blo__list(e, ny),
               **hr = blo__list(e, ny);
    if (!st && (!in || !dF || !d2 || !gf || !r || !hr)) st = blo__method_ctx_fail(e, "amm");
    if (st) return st;
    blo_tensor **y = tr.y;
    memcpy(in, e->x, sizeof(blo_tensor *) * (size_t)nx);
    memcpy(in + nx, y, sizeof(blo_tensor *) * (size_t)ny);

    /* ∇_x F, ∇_y F at (x_k, y_k); ∇_y f recorded; one reverse pass of ⟨∇_y f, v⟩ gives
     * ∇²_xy f v and ∇²_yy f v. */
    blo_tensor *F = blo__upper(e, y, 0);
    if (!F) return blo__method_ctx_fail(e, "amm: the upper objective");
    e->last_upper = blo_tensor_item(F);
    if ((st = blo__grad_or_zeros(e, F, nx + ny, in, 0, dF, "amm: gradient of F"))) return st;
    if ((st = blo__ll_grad(e, y, 0, 1, gf, &e->last_lower))) return st;
    blo_tensor *dot = NULL;
    for (int i = 0; i < ny; i++) {
        blo_tensor *d = blo_dot(c, gf[i], v[i]);
        dot = dot ? blo_add(c, dot, d) : d;
    }
    if (!dot) return blo__method_ctx_fail(e, "amm: ⟨∇_y f, v⟩");
    if ((st = blo__grad_or_zeros(e, dot, nx + ny, in, 0, d2, "amm: second derivatives"))) return st;
    double xscale = theory && e->c.outer.kind == BLO_OPT_SGD
                        ? s * mu * mu * mu * pow(k1, -1.5 * AMM_TAU) / e->c.outer.lr
                        : 1.0;
    for (int i = 0; i < nx; i++)
        if (!(hx[i] = blo_scale(c, blo_sub(c, dF[i], d2[i]), xscale)))
            return blo__method_ctx_fail(e, "amm: D_x");

    /* r = (H + wd I) v − ∇_y F and the exact line-search step along it. */
    int old = blo_ctx_set_recording(c, 0);
    for (int i = 0; i < ny && !st; i++) {
        blo_tensor *hv = d2[nx + i];
        if (wd != 0) hv = blo_add(c, hv, blo_scale(c, v[i], wd));
        if (!(r[i] = blo_sub(c, hv, dF[nx + i])) || !(hr[i] = blo_clone(c, r[i])))
            st = blo__method_ctx_fail(e, "amm: the multiplier's residual");
    }
    blo_ctx_set_recording(c, old);
    if (st || (st = blo__hess_vec(e, gf, y, r, hr))) return st;
    if (wd != 0) blo__axpy_list(ny, wd, r, hr);
    double rr = blo__dot_list(ny, r, r), rhr = blo__dot_list(ny, r, hr);
    double eta = rhr > 0 ? fmin(rr / rhr, sk) : sk;
    if (!isfinite(eta)) return blo__method_fail(e, BLO_ERR_NUMERIC, "amm: the multiplier diverged");
    blo__axpy_list(ny, -eta, r, v);

    /* y ← project_y(y − s_k [(1 − μ) (∇_y f + wd y) + μ ∇_y F]), values only. */
    old = blo_ctx_set_recording(c, 0);
    for (int i = 0; i < ny && !st; i++) {
        blo_tensor *gl = gf[i];
        if (wd != 0) gl = blo_add(c, gl, blo_scale(c, y[i], wd));
        blo_tensor *d = blo_add(c, blo_scale(c, gl, 1 - mu), blo_scale(c, dF[nx + i], mu));
        blo_tensor *ny_ = blo_sub(c, y[i], blo_scale(c, d, sk));
        if (ny_ && e->p.project_y) ny_ = e->p.project_y(c, i, ny_, e->x, e->p.user);
        if (!ny_)
            st = blo__method_ctx_fail(e, "amm: the lower-level step");
        else
            blo_copy_into(e->y[i], ny_);
    }
    blo_ctx_set_recording(c, old);
    return st;
}

const blo_method blo__method_amm = {
    {"amm",
     "single loop: y ← y − s[(1−μ_k)∇_y f + μ_k∇_y F], v ← v − η(∇²_yy f·v − ∇_y F) (η: line "
     "search capped at s), "
     "dF/dx ≈ ∇_x F − ∇²_xy f·v (merely convex lower levels)",
     "Liu, Liu, Yao, Zeng & Zhang, ICML 2023 (sl-BAMM)",
     "inner (sgd: s = lr, weight_decay), alpha (μ_0), amm_schedule, outer"},
    amm_check,
    amm_hypergrad,
    1};
