/* bome.c — BOME!: a first-order value-function method; no second derivatives, no
 * differentiation through the inner loop.
 *
 *   θ_T = T inner steps on f(x, ·) from y (values only, held constant below)
 *   q(x, y) = f(x, y) − f(x, θ_T)          ≈ f(x, y) − min_y f(x, ·) ≥ 0
 *   d = ∇F + λ ∇q,   λ = max((φ − ⟨∇F, ∇q⟩) / ‖∇q‖², 0),   φ = η ‖∇q‖²
 *   (x, y) ← (x, y) − ξ d          (gradients over the pair (x, y))
 *
 * Liu, Ye, Wright, Stone & Liu, "BOME! Bilevel optimization made easy: a simple first-order
 * approach", NeurIPS 2022. The bilevel problem is read as min_{x,y} F s.t. q(x, y) ≤ 0, and
 * d is the minimum-norm change of ∇F that makes q decrease at least at rate φ (dynamic
 * barrier): when ∇F already decreases q enough, λ = 0 and d = ∇F. With φ = η‖∇q‖² the rule
 * reads λ = max(η − ⟨∇F, ∇q⟩/‖∇q‖², 0) (the authors' toy code); their data-cleaning script
 * uses φ = η q instead — we keep the paper's default. ∇q = 0 (y already minimizes f and q
 * has no slope in x) leaves d = ∇F.
 *
 * This method moves y itself: y is the solver's y (e->y; the run starts from the problem's
 * y_0 and carries it on, so init is not used), and each call steps y ← project_y(y − ξ d_y)
 * with ξ = c.outer.lr, a plain step, while d_x is returned as the "hypergradient" for the
 * solver's outer optimizer to apply to x. With an SGD outer optimizer this is exactly the
 * paper's joint update of (x, y); with Adam or momentum x gets the adaptive step and y the
 * plain one. θ_T uses the configured inner optimizer (inner, inner_steps ≥ 1);
 * inner.weight_decay counts as ½ wd ‖y‖² in f. The record's F and f are those at (x_k, y_k),
 * where d was taken.
 */
#include "blocks.h"

#include <math.h>
#include <string.h>

static blo_status bome_check(blo_method_env *e) {
    if (!(e->c.eta > 0) || !isfinite(e->c.eta))
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "bome: eta (φ = eta·‖∇q‖²) must be positive, got %g", e->c.eta);
    if (e->c.inner_steps < 1)
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "bome: needs at least one inner step to estimate the value "
                                "function (q ≡ 0 with T = 0), got T = %d",
                                e->c.inner_steps);
    return blo__check_carried_y(e, "bome", 0);
}

static blo_status bome_hypergrad(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    (void)hy0;
    blo_ctx *c = e->sctx;
    int nx = e->nx, ny = e->ny, n = nx + ny;
    int64_t T = e->c.inner_steps;

    /* θ_T from y_k, values only; then held constant (fresh leaves without requires_grad). */
    blo_traj tr;
    blo_status st = blo__traj_start_from(e, &tr, e->y);
    if (!st) st = blo__unroll(e, &tr, T, 0);
    if (st) return st;
    blo_tensor **theta = blo__list(e, ny), **y = blo__list(e, ny), **in = blo__list(e, n),
               **dF = blo__list(e, n), **dq = blo__list(e, n);
    if (!theta || !y || !in || !dF || !dq) return blo__method_ctx_fail(e, "bome");
    for (int i = 0; i < ny; i++)
        if (!(theta[i] = blo_clone(c, tr.y[i]))) return blo__method_ctx_fail(e, "bome");
    if ((st = blo__leaf_copies(e, ny, e->y, y))) return st;
    memcpy(in, e->x, sizeof(blo_tensor *) * (size_t)nx);
    memcpy(in + nx, y, sizeof(blo_tensor *) * (size_t)ny);

    blo_tensor *F = blo__upper(e, y, 0);
    if (!F) return blo__method_ctx_fail(e, "bome: the upper objective");
    e->last_upper = blo_tensor_item(F);
    if ((st = blo__grad_or_zeros(e, F, n, in, 0, dF, "bome: gradient of F"))) return st;

    blo_rng batch = e->rng; /* q's two terms on the same draw, so that q ≥ 0 holds */
    blo_tensor *fy = blo__lower(e, y, 0);
    e->rng = batch;
    blo_tensor *ft = blo__lower(e, theta, T);
    if (!fy || !ft) return blo__method_ctx_fail(e, "bome: the lower objective");
    e->last_lower = blo_tensor_item(fy);
    blo_tensor *q = blo_sub(c, fy, ft);
    if (!q) return blo__method_ctx_fail(e, "bome: q");
    if ((st = blo__grad_or_zeros(e, q, n, in, 0, dq, "bome: gradient of q"))) return st;
    if (e->c.inner.weight_decay != 0) /* q includes ½ wd (‖y‖² − ‖θ_T‖²) */
        blo__axpy_list(ny, e->c.inner.weight_decay, y, dq + nx);

    double nq2 = blo__dot_list(n, dq, dq), dot = blo__dot_list(n, dF, dq);
    double lambda = nq2 > 0 ? fmax((e->c.eta * nq2 - dot) / nq2, 0.0) : 0.0;

    /* d = ∇F + λ ∇q: hx = d_x; y ← project_y(y − ξ d_y). */
    int old = blo_ctx_set_recording(c, 0);
    for (int i = 0; i < n && !st; i++) {
        blo_tensor *d = blo_add(c, dF[i], blo_scale(c, dq[i], lambda));
        if (i < nx) {
            hx[i] = d;
        } else {
            int k = i - nx;
            d = blo_sub(c, y[k], blo_scale(c, d, e->c.outer.lr));
            if (d && e->p.project_y) d = e->p.project_y(c, k, d, e->x, e->p.user);
            if (d) blo_copy_into(e->y[k], d);
        }
        if (!d) st = blo__method_ctx_fail(e, "bome: the step");
    }
    blo_ctx_set_recording(c, old);
    return st;
}

const blo_method blo__method_bome = {
    {"bome",
     "first order, value function: d = ∇F + λ∇q, q = f(x,y) − f(x,θ_T), "
     "λ = max(η − ⟨∇F,∇q⟩/‖∇q‖², 0); x and y both step",
     "Liu, Ye, Wright, Stone & Liu, NeurIPS 2022", "inner, inner_steps, eta, outer.lr (y step)"},
    bome_check,
    bome_hypergrad,
    0};
