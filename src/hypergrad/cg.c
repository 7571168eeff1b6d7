/* cg.c — implicit hypergradient by conjugate gradients (implicit function theorem).
 *
 * At a lower-level solution ∇_y f(x, y*) = 0, so d y*(x) / dx = -(∇²_yy f)⁻¹ ∇²_yx f and
 *
 *     dF/dx = ∂F/∂x - ∇²_xy f · v,   where   ∇²_yy f · v = ∂F/∂y   (at y = y_T ≈ y*).
 *
 * The linear system is solved matrix-free by CG on Hessian-vector products (the inner
 * gradient is recorded once; each product is one reverse pass over it), for at most K
 * iterations or until ‖r‖ ≤ tol. y_T comes from T inner steps run without a graph.
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
#include "../solve/solver.h"

#include <math.h>
#include <string.h>

static blo_status cg_check(blo_solver *s) {
    if (s->c.K < 1)
        return blo__solver_fail(s, BLO_ERR_INVALID, "cg: K (iterations) must be >= 1, got %d",
                                s->c.K);
    if (!(s->c.damping >= 0) || !isfinite(s->c.damping))
        return blo__solver_fail(s, BLO_ERR_INVALID, "cg: damping must be finite and >= 0, got %g",
                                s->c.damping);
    return BLO_OK;
}

/* out = (H + δI) p with H = ∇²_yy f, from the recorded inner gradient g (values copied into
 * out), δ = the damping. */
static blo_status hess_vec(blo_solver *s, blo_tensor **g, blo_tensor **y, blo_tensor **p,
                           blo_tensor **out) {
    blo_ctx *c = s->sctx;
    blo_mark mk = blo_ctx_mark(c);
    blo_tensor *dot = NULL;
    for (int i = 0; i < s->ny; i++) {
        blo_tensor *d = blo_dot(c, g[i], p[i]);
        dot = dot ? blo_add(c, dot, d) : d;
    }
    if (!dot) return blo__solver_ctx_fail(s, "cg: Hessian-vector product");
    blo_tensor **hv = blo__list(s, s->ny);
    if (!hv) return blo__solver_ctx_fail(s, "cg");
    if (!dot->requires_grad) { /* f is linear in y: H = 0 */
        for (int i = 0; i < s->ny; i++) blo_fill(out[i], 0);
    } else {
        if (blo_grad(c, 1, &dot, NULL, s->ny, y, 0, hv))
            return blo__solver_ctx_fail(s, "cg: Hessian-vector product");
        for (int i = 0; i < s->ny; i++) blo_copy_into(out[i], hv[i]);
    }
    if (s->c.damping > 0) blo__axpy_list(s->ny, s->c.damping, p, out);
    blo_ctx_rewind(c, mk);
    return BLO_OK;
}

static blo_status cg_hypergrad(blo_solver *s, blo_tensor **hx, blo_tensor **hy0) {
    blo_ctx *c = s->sctx;
    int nx = s->nx, ny = s->ny;
    blo_traj tr;
    blo_status st = blo__traj_start(s, &tr, 0);
    if (!st) st = blo__unroll(s, &tr, s->c.inner_steps, 0);
    if (st) return st;
    blo_tensor **y = tr.y; /* leaves holding y_T */

    /* ∂F/∂x and ∂F/∂y at y_T. */
    blo_tensor *F = blo__upper(s, y, tr.t);
    if (!F) return blo__solver_ctx_fail(s, "the upper objective");
    s->last_upper = blo_tensor_item(F);
    blo_tensor **in = blo__list(s, nx + ny), **dF = blo__list(s, nx + ny);
    if (!in || !dF) return blo__solver_ctx_fail(s, "cg");
    memcpy(in, s->x, sizeof(blo_tensor *) * (size_t)nx);
    memcpy(in + nx, y, sizeof(blo_tensor *) * (size_t)ny);
    if (!F->requires_grad) {
        if ((st = blo__zeros_like(s, nx + ny, in, dF))) return st;
    } else if (blo_grad(c, 1, &F, NULL, nx + ny, in, 0, dF)) {
        return blo__solver_ctx_fail(s, "cg: gradient of the upper objective");
    }
    blo_tensor **gy = dF + nx;

    /* The inner gradient, recorded so it can be differentiated in y and in x. */
    blo_tensor **g = blo__list(s, ny);
    double fval;
    if (!g || (st = blo__ll_grad(s, y, tr.t, 1, g, &fval))) return st ? st : blo__solver_ctx_fail(s, "cg");
    s->last_lower = fval;

    /* CG on H v = gy from v = 0. */
    blo_tensor **v = blo__list(s, ny), **r = blo__list(s, ny), **p = blo__list(s, ny),
               **hp = blo__list(s, ny);
    if (!v || !r || !p || !hp) return blo__solver_ctx_fail(s, "cg");
    if ((st = blo__zeros_like(s, ny, y, v)) || (st = blo__zeros_like(s, ny, y, hp))) return st;
    for (int i = 0; i < ny; i++) {
        r[i] = blo_clone(c, gy[i]);
        p[i] = blo_clone(c, gy[i]);
        if (!r[i] || !p[i]) return blo__solver_ctx_fail(s, "cg");
    }
    double rr = blo__dot_list(ny, r, r);
    for (int k = 0; k < s->c.K && sqrt(rr) > s->c.tol; k++) {
        if ((st = hess_vec(s, g, y, p, hp))) return st;
        double php = blo__dot_list(ny, p, hp);
        if (!isfinite(php))
            return blo__solver_fail(s, BLO_ERR_NUMERIC,
                                    "cg: a Hessian-vector product is not finite at iteration %d", k);
        if (!(php > 0)) {
            /* A direction of zero or negative curvature: a singular (or, in float32, rounded
             * below zero) Hessian. Stop with the solution so far, as truncated CG does; with
             * no step taken yet there is none, and the lower level is not strongly convex. */
            if (k == 0) /* p = ∂F/∂y: its Rayleigh quotient bounds λ_min(H) + δ from above */
                return blo__solver_fail(s, BLO_ERR_NUMERIC,
                                        "cg: the lower-level Hessian is not positive definite at "
                                        "y_T (pᵀ(H + %g I)p / pᵀp = %g along p = dF/dy, so the "
                                        "damping must exceed %g); use more inner steps, a "
                                        "regularised lower level, a larger damping, or neumann",
                                        s->c.damping, php / rr, s->c.damping - php / rr);
            break;
        }
        double a = rr / php;
        blo__axpy_list(ny, a, p, v);
        blo__axpy_list(ny, -a, hp, r);
        double rr_new = blo__dot_list(ny, r, r);
        blo__scale_list(ny, rr_new / rr, p);
        blo__axpy_list(ny, 1.0, r, p);
        rr = rr_new;
    }

    /* dF/dx = ∂F/∂x - ∇_x ⟨∇_y f, v⟩. */
    blo_tensor *dot = NULL;
    for (int i = 0; i < ny; i++) {
        blo_tensor *d = blo_dot(c, g[i], v[i]);
        dot = dot ? blo_add(c, dot, d) : d;
    }
    if (!dot) return blo__solver_ctx_fail(s, "cg: mixed product");
    blo_tensor **mixed = blo__list(s, nx);
    if (!mixed) return blo__solver_ctx_fail(s, "cg");
    int any_x = 0;
    for (int i = 0; i < nx; i++) any_x |= s->x[i]->requires_grad;
    if (dot->requires_grad && any_x) {
        /* ⟨∇_y f, v⟩ may not reach every x: missing ones get zeros from blo_grad. */
        if (blo_grad(c, 1, &dot, NULL, nx, s->x, 0, mixed))
            return blo__solver_ctx_fail(s, "cg: mixed product");
    } else if ((st = blo__zeros_like(s, nx, s->x, mixed))) {
        return st;
    }
    for (int i = 0; i < nx; i++) {
        hx[i] = blo_sub(c, dF[i], mixed[i]);
        if (!hx[i]) return blo__solver_ctx_fail(s, "cg");
    }
    if (s->c.init == BLO_INIT_LEARNED && (st = blo__zeros_like(s, ny, s->y0, hy0))) return st;
    blo__keep_y(s, y);
    return BLO_OK;
}

const blo_method blo__method_cg = {
    {"cg", "implicit: solve (∇²_yy f + δI)·v = ∂F/∂y by CG (δ: damping, 0 by default), dF/dx = ∂F/∂x − ∇²_xy f·v",
     "Pedregosa, ICML 2016; Rajeswaran et al., NeurIPS 2019", "inner, inner_steps, K, tol, damping"},
    cg_check, cg_hypergrad, 0};
