/* soba.c — SOBA: a single loop in which y, the adjoint v and x each take one step per outer
 * iteration, all three directions taken at the same point (x_k, y_k, v_k):
 *
 *   D_y = ∇_y f(x, y)
 *   D_v = ∇²_yy f(x, y) v − ∇_y F(x, y)
 *   D_x = ∇_x F(x, y) − ∇²_xy f(x, y) v        (returned as the hypergradient)
 *   y ← y − ρ D_y,   v ← v − ρ D_v,   x ← the outer optimizer's step on D_x
 *
 * Dagréou, Ablin, Vaiter & Moreau, "A framework for bilevel optimization that enables
 * stochastic and global variance reduction algorithms", NeurIPS 2022. v tracks the solution
 * of ∇²_yy f v = ∇_y F (the linear system cg solves from scratch) by one gradient step on
 * ½ vᵀ∇²_yy f v − ⟨∇_y F, v⟩ per iteration, while y tracks y*(x) by one step on f; at a joint
 * fixed point y = y*(x), v = (∇²_yy f)⁻¹ ∇_y F and D_x is the exact hypergradient, so with
 * steps small enough for the three tracking problems SOBA converges to a stationary point of
 * F(x, y*(x)) without inner loops. (The paper writes v with the opposite sign; this is the
 * same algorithm.) Needs ∇²_yy f positive definite near the path (a strongly convex LL).
 *
 * State: y is the solver's y (e->y: the run starts from the problem's y_0 and carries it on;
 * init and inner_steps are not used), v is method state (one group shaped like y, zero at the
 * start, saved in checkpoints). ρ = inner.lr for both y and v; the inner optimizer must be
 * plain SGD (a momentum or Adam state would have to persist across outer iterations too, and
 * SOBA's analysis is for plain steps). inner.weight_decay adds ½ wd ‖y‖² to f, in D_y and in
 * the Hessian product alike. The y step is followed by project_y. The record's F and f are
 * those at (x_k, y_k), where the directions were taken.
 */
#include "blocks.h"

#include <string.h>

static blo_status soba_check(blo_method_env *e) {
    return blo__check_carried_y(e, "soba", 1);
}

static blo_status soba_hypergrad(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    (void)hy0;
    blo_ctx *c = e->sctx;
    int nx = e->nx, ny = e->ny;
    double rho = e->c.inner.lr, wd = e->c.inner.weight_decay;
    blo_tensor **v = e->ms; /* group 0: the adjoint */
    blo_traj tr;
    blo_status st = blo__traj_start_from(e, &tr, e->y);
    blo_tensor **in = blo__list(e, nx + ny), **dF = blo__list(e, nx + ny),
               **d2 = blo__list(e, nx + ny), **gf = blo__list(e, ny);
    if (!st && (!in || !dF || !d2 || !gf)) st = blo__method_ctx_fail(e, "soba");
    if (st) return st;
    memcpy(in, e->x, sizeof(blo_tensor *) * (size_t)nx);
    memcpy(in + nx, tr.y, sizeof(blo_tensor *) * (size_t)ny);

    /* ∇_x F and ∇_y F at (x_k, y_k). */
    blo_tensor *F = blo__upper(e, tr.y, 0);
    if (!F) return blo__method_ctx_fail(e, "soba: the upper objective");
    e->last_upper = blo_tensor_item(F);
    if ((st = blo__grad_or_zeros(e, F, nx + ny, in, 0, dF, "soba: gradient of F"))) return st;

    /* ∇_y f recorded, then one reverse pass of ⟨∇_y f, v⟩ gives ∇²_xy f v and ∇²_yy f v. */
    if ((st = blo__ll_grad(e, tr.y, 0, 1, gf, &e->last_lower))) return st;
    blo_tensor *dot = NULL;
    for (int i = 0; i < ny; i++) {
        blo_tensor *d = blo_dot(c, gf[i], v[i]);
        dot = dot ? blo_add(c, dot, d) : d;
    }
    if (!dot) return blo__method_ctx_fail(e, "soba: ⟨∇_y f, v⟩");
    if ((st = blo__grad_or_zeros(e, dot, nx + ny, in, 0, d2, "soba: second derivatives")))
        return st;

    for (int i = 0; i < nx; i++)
        if (!(hx[i] = blo_sub(c, dF[i], d2[i]))) return blo__method_ctx_fail(e, "soba: D_x");

    /* The steps, values only: v ← v − ρ (H v + wd v − ∇_y F), y ← y − ρ (∇_y f + wd y). */
    int old = blo_ctx_set_recording(c, 0);
    for (int i = 0; i < ny && !st; i++) {
        blo_tensor *hv = d2[nx + i];
        if (wd != 0) hv = blo_add(c, hv, blo_scale(c, v[i], wd));
        blo_tensor *nv = blo_sub(c, v[i], blo_scale(c, blo_sub(c, hv, dF[nx + i]), rho));
        if (!nv)
            st = blo__method_ctx_fail(e, "soba: the adjoint step");
        else
            blo_copy_into(v[i], nv);
    }
    if (!st) st = blo__inner_step(e, &tr, gf);
    blo_ctx_set_recording(c, old);
    if (st) return st;
    blo__keep_state(e, &tr);
    return BLO_OK;
}

const blo_method blo__method_soba = {
    {"soba", "single loop: y ← y − ρ∇_y f, v ← v − ρ(∇²_yy f·v − ∇_y F), dF/dx ≈ ∇_x F − ∇²_xy f·v",
     "Dagréou, Ablin, Vaiter & Moreau, NeurIPS 2022", "inner (sgd: ρ = lr)"},
    soba_check,
    soba_hypergrad,
    1};
