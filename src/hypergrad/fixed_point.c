/* fixed_point.c — implicit hypergradient of a fixed point y = Φ(x, y) of the inner step map.
 *
 * If y* = Φ(x, y*) and ∂Φ/∂y is a contraction there, dy*(x) / dx = (I − ∂Φ/∂y)⁻¹ ∂Φ/∂x, so
 *
 *     u = (I − ∂Φ/∂y)⁻ᵀ ∂F/∂y,   dF/dx = ∂F/∂x + (∂Φ/∂x)ᵀ u,
 *
 * with u found by the fixed-point iteration u ← ∂F/∂y + (∂Φ/∂y)ᵀ u from u = ∂F/∂y
 * (blo_linalg_fixed_point), for at most solve_iters iterations or until ‖Δu‖ ≤ tol, Anderson-
 * accelerated when anderson_m > 0. Each iteration is one
 * vector-Jacobian product through one recorded step Φ(x, y_T) (the inner gradient with
 * create-graph, then the configured step, projection included), with y_T from T inner steps without
 * a graph. For SGD, Φ = y − lr ∇_y f, so this is the implicit-function-theorem gradient of cg
 * solved by Richardson iteration. Grazzi, Franceschi, Pontil & Salzo, "On the iteration complexity
 * of hypergradient computation", ICML 2020; Bai, Kolter & Koltun, "Deep equilibrium models",
 * NeurIPS 2019.
 *
 * Φ must map y alone to y: a momentum or Adam step's fixed point includes its buffers (m, v)
 * and its map depends on the step count, so those inner optimizers are refused.
 */
#include "blocks.h"

#include <math.h>

static blo_status fixed_point_check(blo_method_env *e) {
    if (blo__refuse_learned_start(e, "fixed_point")) return BLO_ERR_INVALID;
    if (!e->c.inner_update && e->c.inner.kind != BLO_OPT_SGD)
        return blo__method_fail(
            e, BLO_ERR_INVALID,
            "fixed_point: the inner optimizer is %s, whose step map carries buffers (its fixed "
            "point is in (y, buffers), not in y); use an sgd inner optimizer, or rhg / cg",
            blo_opt_kind_name(e->c.inner.kind));
    if (e->c.solve_iters < 1)
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "fixed_point: solve_iters (iterations) must be >= 1, got %d",
                                e->c.solve_iters);
    if (e->c.anderson_m < 0 || e->c.anderson_m > 32 ||
        (e->c.anderson_m > 0 && !(e->c.anderson_beta > 0 && e->c.anderson_beta <= 1)))
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "fixed_point: anderson_m must lie in [0, 32] and anderson_beta in "
                                "(0, 1], got %d and %g",
                                e->c.anderson_m, e->c.anderson_beta);
    return BLO_OK;
}

/* The map of the adjoint iteration, G(u) = ∂F/∂y + (∂Φ/∂y)ᵀ u, by one VJP through the
 * recorded step phi = Φ(x, y). */
typedef struct vjp_op {
    blo_method_env *e;
    blo_tensor **phi, **y, **dy;
} vjp_op;

static blo_status vjp_apply(blo_ctx *c, blo_tensor *const *u, blo_tensor *const *out, void *user) {
    vjp_op *op = user;
    int ny = op->e->ny;
    blo_tensor **w = blo__list(op->e, ny);
    if (!w || blo_grad(c, ny, op->phi, u, ny, op->y, 0, w))
        return blo__method_ctx_fail(op->e, "fixed_point: (∂Φ/∂y)ᵀ u");
    blo__copy_list(ny, w, out);
    blo__axpy_list(ny, 1.0, op->dy, out);
    return BLO_OK;
}

static blo_status fixed_point_hypergrad(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    (void)hy0; /* a learned start is refused by the check */
    blo_ctx *c = e->sctx;
    int nx = e->nx, ny = e->ny;
    blo_traj tr;
    blo_status st = blo__traj_start(e, &tr, 0);
    if (!st) st = blo__unroll(e, &tr, e->c.inner_steps, 0);
    if (st) return st;
    blo_tensor **y = blo__list(e, ny); /* the leaves holding y_T (tr.y moves on below) */
    blo_tensor **dx = blo__list(e, nx), **dy = blo__list(e, ny), **g = blo__list(e, ny);
    blo_tensor **u = blo__list(e, ny), **mixed = blo__list(e, nx);
    if (!y || !dx || !dy || !g || !u || !mixed) return blo__method_ctx_fail(e, "fixed_point");
    blo_traj end = tr; /* the state at T (the step below replaces tr's entries) */
    end.y = y;
    end.m = blo__list(e, ny);
    end.v = blo__list(e, ny);
    if (!end.m || !end.v) return blo__method_ctx_fail(e, "fixed_point");
    for (int i = 0; i < ny; i++) {
        y[i] = tr.y[i];
        end.m[i] = tr.m[i];
        end.v[i] = tr.v[i];
    }
    if ((st = blo__upper_grads(e, y, tr.t, dx, dy))) return st;

    /* One recorded step Φ(x, y_T): its VJPs give (∂Φ/∂y)ᵀ u and (∂Φ/∂x)ᵀ u. */
    double fval;
    if ((st = blo__ll_grad(e, y, tr.t, 1, g, &fval))) return st;
    e->last_lower = fval;
    if ((st = blo__inner_step(e, &tr, g))) return st;
    blo_tensor **phi = tr.y;

    for (int i = 0; i < ny; i++)
        if (!(u[i] = blo_clone(c, dy[i]))) return blo__method_ctx_fail(e, "fixed_point");
    vjp_op op = {e, phi, y, dy};
    blo_linop G = {ny, vjp_apply, &op};
    blo_linalg_opts o = {e->c.solve_iters, e->c.tol, 0, e->c.anderson_m, e->c.anderson_beta};
    blo_linalg_result r = {0};
    st = blo_linalg_fixed_point(c, &G, u, &o, &r);
    blo__method_solve_report(e, &r);
    if (st) {
        if (st == BLO_ERR_NUMERIC && !e->err[0])
            return blo__method_fail(e, st, "%s at y_T; lower the inner learning rate or use cg",
                                    blo_ctx_error(c));
        return blo__linalg_fail(e, st);
    }

    if (blo_grad(c, ny, phi, u, nx, e->x, 0, mixed))
        return blo__method_ctx_fail(e, "fixed_point: (∂Φ/∂x)ᵀ u");
    for (int i = 0; i < nx; i++)
        if (!(hx[i] = blo_add(c, dx[i], mixed[i]))) return blo__method_ctx_fail(e, "fixed_point");
    blo__keep_state(e, &end);
    return BLO_OK;
}

const blo_method blo__method_fixed_point = {
    {"fixed_point", "implicit for y = Φ(x, y): u ← ∂F/∂y + (∂Φ/∂y)ᵀu, dF/dx = ∂F/∂x + (∂Φ/∂x)ᵀu",
     "Grazzi et al., ICML 2020; Bai et al., NeurIPS 2019",
     "inner (sgd or a stateless inner_update), inner_steps, solve_iters, tol, anderson_m, "
     "anderson_beta"},
    fixed_point_check,
    fixed_point_hypergrad,
    0};
