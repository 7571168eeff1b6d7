/* darts.c — DARTS' second-order approximation: one virtual inner step, differentiated with a
 * finite-difference mixed product.
 *
 *   y  = y_T (T inner steps, no graph),   y' = y − ξ (∇_y f(x, y) + wd·y)   (the virtual step),
 *   v  = ∇_{y'} F(x, y'),                  ε = η / ‖v‖,   y± = y ± ε v,
 *   dF/dx ≈ ∂F/∂x(x, y') − ξ [∇_x f(x, y⁺) − ∇_x f(x, y⁻)] / (2ε).
 *
 * The bracket is a central difference for ∇²_xy f(x, y) · v, so the result approximates the
 * exact derivative of F(x, y − ξ∇_y f(x, y)) with y held fixed, i.e. reverse mode through
 * that one step, at the cost of two gradients of f instead of second derivatives.
 * ξ is the inner learning rate (the value of the learned one when lr_x is set, treated as a
 * constant), wd its weight decay; the virtual step is a plain gradient step whatever the inner
 * optimizer. Liu, Simonyan & Yang, "DARTS: differentiable architecture search", ICLR 2019
 * (eq. 7 and 8).
 *
 * η (blo_config.fd_radius, default 0.01 as in DARTS) is the radius of the perturbation:
 * ‖y± − y‖ = η. The error is O(η²) (exact when f is quadratic in y) plus a round-off of
 * O(u/η), so the radius must be small relative to the scale of y but well above √u.
 *
 * The three evaluations of f at y, y⁺, y⁻ see the same draws of the solver's RNG (a sampled
 * minibatch stays the same, as in DARTS), and the record reports F and f at y_T.
 */
#include "blocks.h"

#include <math.h>

static blo_status darts_check(blo_method_env *e) {
    if (blo__refuse_learned_start(e, "darts")) return BLO_ERR_INVALID;
    if (e->c.lr_x >= 0 && e->c.lr_x_per_y)
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "darts: the virtual step uses one step size ξ; per-parameter "
                                "step sizes (lr_x_per_y) are not supported — use one learned "
                                "step size, or rhg / bda / iaptt, which differentiate through "
                                "per-parameter steps");
    if (!(e->c.fd_radius > 0) || !isfinite(e->c.fd_radius))
        return blo__method_fail(
            e, BLO_ERR_INVALID,
            "darts: fd_radius (the finite-difference radius; DARTS uses 0.01) must "
            "be positive, got %g",
            e->c.fd_radius);
    return BLO_OK;
}

/* out = ∇_x f(x, y), values only. */
static blo_status lower_grad_x(blo_method_env *e, blo_tensor *const *y, int64_t step,
                               blo_tensor **out) {
    blo_tensor *f = blo__lower(e, y, step);
    if (!f) return blo__method_ctx_fail(e, "darts: the lower objective");
    if (!f->requires_grad) return blo__zeros_like(e, e->nx, e->x, out); /* f has no x */
    if (blo_grad(e->sctx, 1, &f, NULL, e->nx, e->x, 0, out))
        return blo__method_ctx_fail(e, "darts: ∇_x f");
    return BLO_OK;
}

static blo_status darts_hypergrad(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    (void)hy0; /* a learned start is refused by the check */
    blo_ctx *c = e->sctx;
    int nx = e->nx, ny = e->ny;
    int64_t T = e->c.inner_steps;
    blo_traj tr;
    blo_status st = blo__traj_start(e, &tr, 0);
    if (!st) st = blo__unroll(e, &tr, T, 0);
    if (st) return st;
    blo_tensor **y = tr.y;
    double xi = e->c.lr_x >= 0 ? blo_tensor_item(e->x[e->c.lr_x]) : e->c.inner.lr;

    /* The virtual step y' = y − ξ (∇_y f + wd y). */
    blo_tensor **g = blo__list(e, ny), **yv = blo__list(e, ny), **dx = blo__list(e, nx),
               **v = blo__list(e, ny);
    blo_tensor **yp = blo__list(e, ny), **ym = blo__list(e, ny), **gp = blo__list(e, nx),
               **gm = blo__list(e, nx);
    if (!g || !yv || !dx || !v || !yp || !ym || !gp || !gm) return blo__method_ctx_fail(e, "darts");
    blo_rng batch = e->rng; /* replayed for y⁺ and y⁻: the same minibatch */
    if ((st = blo__ll_grad(e, y, T, 0, g, NULL))) return st;
    if ((st = blo__leaf_copies(e, ny, y, yv))) return st;
    blo__axpy_list(ny, -xi, g, yv);
    if (e->c.inner.weight_decay != 0) blo__axpy_list(ny, -xi * e->c.inner.weight_decay, y, yv);

    /* ∂F/∂x and v = ∇_{y'} F at y'. */
    if ((st = blo__upper_grads(e, yv, T, dx, v))) return st;
    blo_rng after = e->rng;
    for (int i = 0; i < nx; i++)
        if (!(hx[i] = blo_clone(c, dx[i]))) return blo__method_ctx_fail(e, "darts");
    double vn = blo__norm_list(ny, v);
    if (vn > 0) { /* v = 0: the second-order term vanishes */
        double eps = e->c.fd_radius / vn;
        for (int i = 0; i < ny; i++) {
            yp[i] = blo_clone(c, y[i]);
            ym[i] = blo_clone(c, y[i]);
            if (!yp[i] || !ym[i]) return blo__method_ctx_fail(e, "darts");
        }
        blo__axpy_list(ny, eps, v, yp);
        blo__axpy_list(ny, -eps, v, ym);
        e->rng = batch;
        if ((st = lower_grad_x(e, yp, T, gp))) return st;
        e->rng = batch;
        if ((st = lower_grad_x(e, ym, T, gm))) return st;
        blo__axpy_list(nx, -xi / (2 * eps), gp, hx);
        blo__axpy_list(nx, xi / (2 * eps), gm, hx);
    }
    e->rng = after;

    /* The record: F and f at y_T, the state the lower level actually reached. */
    blo_mark mk = blo_ctx_mark(c);
    int old = blo_ctx_set_recording(c, 0);
    blo_tensor *F = blo__upper(e, y, T);
    blo_ctx_set_recording(c, old);
    if (!F) return blo__method_ctx_fail(e, "darts: the upper objective");
    e->last_upper = blo_tensor_item(F);
    blo_ctx_rewind(c, mk);
    if ((st = blo__lower_value(e, y, T))) return st;
    blo__keep_state(e, &tr);
    return BLO_OK;
}

const blo_method blo__method_darts = {
    {"darts",
     "one virtual step y' = y − ξ∇_y f; dF/dx ≈ ∂F/∂x(y') − ξ[∇_x f(y⁺) − ∇_x f(y⁻)]/2ε, "
     "y± = y ± ε∇_{y'}F",
     "Liu, Simonyan & Yang, ICLR 2019", "inner (lr = ξ), inner_steps, fd_radius"},
    darts_check,
    darts_hypergrad,
    0};
