/* fhg.c — forward-mode hypergradient: carry the Jacobian of the inner state with respect to
 * the hyper-variables along the T inner steps.
 *
 *   s_t = (y_t, m_t, v_t),  s_{t+1} = Φ(x, s_t),  Z_t = ds_t/dx,  Z_0 = 0,
 *   Z_{t+1} = A_t Z_t + B_t,  A_t = ∂Φ/∂s_t,  B_t = ∂Φ/∂x,
 *   dF/dx = ∂F/∂x + Z_T(y)ᵀ ∂F/∂y_T.
 * Franceschi, Donini, Frasconi & Pontil, "Forward and reverse gradient-based hyperparameter
 * optimization", ICML 2017 (the real-time / forward algorithm).
 *
 * Z has one column per element of x; column j is the directional derivative of the state
 * along e_j, so step t maps it to A_t Z_t e_j + B_t e_j: one Jacobian-vector product of the
 * step map with tangents (Z_t e_j, e_j). The JVP is the double-VJP trick: with a dummy
 * cotangent u, G(u) = (∂Φ/∂(e, x))ᵀ u is linear in u and ∇_u ⟨G(u), (Z e_j, e_j)⟩ = J (Z e_j, e_j).
 * The first pass G(u) depends on the step only, not on the tangent, so it is recorded once
 * per step and shared by all columns; each column then costs one reverse pass through it.
 * Memory stays flat in T (one step's graph at a time), but the work is dim x passes per
 * step, so check() refuses dim x above max_fhg_dim and points to rhg / cg.
 *
 * A learned start adds the columns dy_T/dy_0 (Z_0 = I on the y part) for dF/dy_0: dim y
 * more products per step, counted against the same limit.
 */
#include "blocks.h"

#include <string.h>

static int64_t numel_list(int n, blo_tensor *const *ts) {
    int64_t k = 0;
    for (int i = 0; i < n; i++)
        k += blo_tensor_numel(ts[i]);
    return k;
}

static blo_status fhg_check(blo_method_env *e) {
    if (e->c.init == BLO_INIT_FROM_X)
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "fhg: a start built from x (init from_x) is not supported (Z_0 "
                                "would be the start's Jacobian); use rhg or rhg_ckpt");
    int64_t dx = numel_list(e->nx, e->x);
    int64_t dy = e->c.init == BLO_INIT_LEARNED ? numel_list(e->ny, e->y) : 0;
    if (dx + dy > e->c.max_fhg_dim)
        return blo__method_fail(
            e, BLO_ERR_INVALID,
            "fhg: forward mode carries one tangent per hyper-variable element and costs dim x "
            "Jacobian-vector products per inner step; here %lld tangents (dim x = %lld, learned "
            "start dim y0 = %lld) exceed max_fhg_dim = %lld. Use rhg (reverse mode: one "
            "backward pass whatever dim x) or cg (implicit), or raise max_fhg_dim",
            (long long)(dx + dy), (long long)dx, (long long)dy, (long long)e->c.max_fhg_dim);
    return BLO_OK;
}

static blo_status fhg_hypergrad(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    blo_ctx *c = e->sctx;
    int nx = e->nx, ny = e->ny;
    int learned = e->c.init == BLO_INIT_LEARNED;
    int64_t T = e->c.inner_steps;
    int64_t ndx = numel_list(nx, e->x), ndir = ndx + (learned ? numel_list(ny, e->y) : 0);

    /* The state as leaves whose values advance in place, step after step. */
    blo_traj tr;
    blo_status st = blo__traj_start(e, &tr, 0);
    if (st) return st;
    blo_tensor **sv = blo__list(e, 3 * ny);
    if (!sv) return blo__method_ctx_fail(e, "fhg");
    int nst = blo__traj_tensors(ny, &tr, sv);
    for (int q = 0; q < nst; q++)
        sv[q]->requires_grad = true;

    /* Z: column j's state tangents at Z[j nst + q]; one-hot x tangents reused by every
     * column (set before its product, cleared after). */
    blo_tensor **Z = blo__list(e, (int)(ndir * nst)), **onehot = blo__list(e, nx);
    blo_tensor **in = blo__list(e, nst + nx), **out = blo__list(e, nst), **u = blo__list(e, nst);
    blo_tensor **G = blo__list(e, nst + nx), **jv = blo__list(e, nst), **g = blo__list(e, ny);
    if (!Z || !onehot || !in || !out || !u || !G || !jv || !g)
        return blo__method_ctx_fail(e, "fhg: tangents");
    for (int64_t j = 0; j < ndir; j++)
        if ((st = blo__zeros_like(e, nst, sv, Z + j * nst))) return st;
    if ((st = blo__zeros_like(e, nx, e->x, onehot))) return st;
    int64_t col = ndx; /* learned start: Z_0 = I on the y part of the columns after x's */
    for (int i = 0; learned && i < ny; i++)
        for (int64_t k = 0; k < blo_tensor_numel(e->y[i]); k++, col++)
            blo_tensor_set(Z[col * nst + i], k, 1.0);
    memcpy(in, sv, sizeof(blo_tensor *) * (size_t)nst);
    memcpy(in + nst, e->x, sizeof(blo_tensor *) * (size_t)nx);

    for (int64_t t = 0; t < T; t++) {
        blo_mark mk = blo_ctx_mark(c);
        blo_traj step = {blo__list(e, ny), blo__list(e, ny), blo__list(e, ny), t, tr.t0};
        if (!step.y || !step.m || !step.v) return blo__method_ctx_fail(e, "fhg");
        memcpy(step.y, tr.y, sizeof(blo_tensor *) * (size_t)ny);
        memcpy(step.m, tr.m, sizeof(blo_tensor *) * (size_t)ny);
        memcpy(step.v, tr.v, sizeof(blo_tensor *) * (size_t)ny);
        if ((st = blo__ll_grad(e, step.y, t, 1, g, NULL))) return st;
        if ((st = blo__inner_step(e, &step, g))) return st;
        blo__traj_tensors(ny, &step, out);
        for (int q = 0; q < nst; q++) {
            u[q] = blo_zeros(c, out[q]->dtype, out[q]->ndim, out[q]->shape);
            if (!u[q]) return blo__method_ctx_fail(e, "fhg");
            u[q]->requires_grad = true;
        }
        /* G(u) = (∂Φ/∂(e, x))ᵀ u, recorded: the shared first pass of every JVP. */
        if (blo_grad(c, nst, out, u, nst + nx, in, BLO_GRAD_CREATE_GRAPH, G))
            return blo__method_ctx_fail(e, "fhg: Jacobian of the inner step");
        for (int64_t j = 0, xi = 0, xk = 0; j < ndir; j++) {
            blo_mark mj = blo_ctx_mark(c);
            blo_tensor *dot = NULL;
            for (int q = 0; q < nst; q++) {
                if (!G[q]->requires_grad) continue; /* no path from u: contributes 0 */
                blo_tensor *d = blo_dot(c, G[q], Z[j * nst + q]);
                dot = dot ? blo_add(c, dot, d) : d;
            }
            if (j < ndx) { /* the column of x[xi], element xk: tangent e_j */
                blo_tensor_set(onehot[xi], xk, 1.0);
                if (G[nst + xi]->requires_grad) {
                    blo_tensor *d = blo_dot(c, G[nst + xi], onehot[xi]);
                    dot = dot ? blo_add(c, dot, d) : d;
                }
            }
            if (blo_ctx_status(c)) return blo__method_ctx_fail(e, "fhg: Jacobian-vector product");
            if (dot && dot->requires_grad) {
                if (blo_grad(c, 1, &dot, NULL, nst, u, 0, jv))
                    return blo__method_ctx_fail(e, "fhg: Jacobian-vector product");
                for (int q = 0; q < nst; q++)
                    blo_copy_into(Z[j * nst + q], jv[q]);
            } else { /* the step does not depend on the state nor on this x element */
                for (int q = 0; q < nst; q++)
                    blo_fill(Z[j * nst + q], 0);
            }
            if (j < ndx) {
                blo_tensor_set(onehot[xi], xk, 0.0);
                if (++xk == blo_tensor_numel(e->x[xi])) {
                    xi++;
                    xk = 0;
                }
            }
            blo_ctx_rewind(c, mj);
        }
        for (int q = 0; q < nst; q++)
            blo_copy_into(sv[q], out[q]);
        blo_ctx_rewind(c, mk);
    }

    /* dF/dx = ∂F/∂x + Z_T(y)ᵀ ∂F/∂y (and dF/dy_0 from the learned-start columns). */
    blo_tensor **dx = blo__list(e, nx), **dy = blo__list(e, ny);
    if (!dx || !dy) return blo__method_ctx_fail(e, "fhg");
    if ((st = blo__upper_grads(e, tr.y, T, dx, dy))) return st;
    for (int i = 0; i < nx; i++)
        if (!(hx[i] = blo_clone(c, dx[i]))) return blo__method_ctx_fail(e, "fhg");
    if (learned && (st = blo__zeros_like(e, ny, e->y0, hy0))) return st;
    /* Column order: the elements of x[0], x[1], …, then those of y0[0], … (learned start). */
    int64_t j = 0;
    for (int i = 0; i < nx; i++)
        for (int64_t k = 0; k < blo_tensor_numel(hx[i]); k++, j++)
            blo_tensor_set(hx[i], k, blo_tensor_get(hx[i], k) + blo__dot_list(ny, Z + j * nst, dy));
    for (int i = 0; learned && i < ny; i++)
        for (int64_t k = 0; k < blo_tensor_numel(hy0[i]); k++, j++)
            blo_tensor_set(hy0[i], k, blo__dot_list(ny, Z + j * nst, dy));
    if ((st = blo__lower_value(e, tr.y, T))) return st;
    tr.t = T; /* the loop stepped tr's tensors in place */
    blo__keep_state(e, &tr);
    return BLO_OK;
}

const blo_method blo__method_fhg = {
    {"fhg", "forward mode: Z_{t+1} = A_t Z_t + B_t (Z = dy_t/dx), dF/dx = ∂F/∂x + Z_Tᵀ ∂F/∂y",
     "Franceschi et al., ICML 2017", "inner, inner_steps, init, max_fhg_dim"},
    fhg_check,
    fhg_hypergrad,
    0};
