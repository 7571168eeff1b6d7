/* blocks.c — upper-level gradients at a point, the lower value, and the Hessian-vector and
 * mixed products of implicit methods (see blocks.h). */
#include "blocks.h"

#include <math.h>
#include <string.h>

blo_status blo__upper_grads(blo_method_env *e, blo_tensor *const *y, int64_t step, blo_tensor **dx,
                            blo_tensor **dy) {
    int nx = e->nx, ny = e->ny;
    blo_tensor *F = blo__upper(e, y, step);
    if (!F) return blo__method_ctx_fail(e, "the upper objective");
    e->last_upper = blo_tensor_item(F);
    blo_tensor **in = blo__list(e, nx + ny), **out = blo__list(e, nx + ny);
    if (!in || !out) return blo__method_ctx_fail(e, "the upper gradient");
    memcpy(in, e->x, sizeof(blo_tensor *) * (size_t)nx);
    memcpy(in + nx, y, sizeof(blo_tensor *) * (size_t)ny);
    if (!F->requires_grad) { /* F depends on neither x nor y */
        blo_status st = blo__zeros_like(e, nx + ny, in, out);
        if (st) return st;
    } else if (blo_grad(e->sctx, 1, &F, NULL, nx + ny, in, 0, out)) {
        return blo__method_ctx_fail(e, "the upper gradient");
    }
    memcpy(dx, out, sizeof(blo_tensor *) * (size_t)nx);
    memcpy(dy, out + nx, sizeof(blo_tensor *) * (size_t)ny);
    return BLO_OK;
}

blo_status blo__lower_value(blo_method_env *e, blo_tensor *const *y, int64_t step) {
    blo_mark mk = blo_ctx_mark(e->sctx);
    int old = blo_ctx_set_recording(e->sctx, 0);
    blo_tensor *f = blo__lower(e, y, step);
    blo_ctx_set_recording(e->sctx, old);
    if (!f) return blo__method_ctx_fail(e, "the lower objective");
    e->last_lower = blo_tensor_item(f);
    blo_ctx_rewind(e->sctx, mk);
    return BLO_OK;
}

/* Σ_i ⟨a_i, b_i⟩ as a recorded scalar (NULL on failure). */
static blo_tensor *dot_sum(blo_ctx *c, int n, blo_tensor *const *a, blo_tensor *const *b) {
    blo_tensor *acc = NULL;
    for (int i = 0; i < n; i++) {
        blo_tensor *d = blo_dot(c, a[i], b[i]);
        acc = acc ? blo_add(c, acc, d) : d;
        if (!acc) return NULL;
    }
    return acc;
}

blo_status blo__hess_vec(blo_method_env *e, blo_tensor *const *g, blo_tensor *const *y,
                         blo_tensor *const *p, blo_tensor *const *out) {
    blo_ctx *c = e->sctx;
    blo_mark mk = blo_ctx_mark(c);
    blo_tensor *dot = dot_sum(c, e->ny, g, p);
    blo_tensor **hv = blo__list(e, e->ny);
    if (!dot || !hv) return blo__method_ctx_fail(e, "Hessian-vector product");
    if (!dot->requires_grad) { /* ∇_y f carries no history: f is at most linear in y, H = 0 */
        for (int i = 0; i < e->ny; i++)
            blo_fill(out[i], 0);
    } else {
        if (blo_grad(c, 1, &dot, NULL, e->ny, y, 0, hv))
            return blo__method_ctx_fail(e, "Hessian-vector product");
        for (int i = 0; i < e->ny; i++)
            blo_copy_into(out[i], hv[i]);
    }
    blo_ctx_rewind(c, mk);
    return BLO_OK;
}

static blo_status hess_apply(blo_ctx *c, blo_tensor *const *p, blo_tensor *const *out, void *user) {
    (void)c;
    blo__hess_op *op = user;
    blo_status st = blo__hess_vec(op->e, op->g, op->y, p, out);
    /* (H + wd I + δI) p: the inner steps' weight decay is part of the lower level. */
    double shift = op->damping + blo__ll_weight_decay(op->e);
    if (!st && shift != 0) blo__axpy_list(op->e->ny, shift, p, out);
    return st;
}

blo_linop blo__hess_linop(blo__hess_op *op) {
    blo_linop A = {op->e->ny, hess_apply, op};
    return A;
}

blo_status blo__linalg_fail(blo_method_env *e, blo_status st) {
    if (!e->err[0]) blo__method_fail(e, st, "%s", blo_ctx_error(e->sctx));
    return st;
}

blo_status blo__implicit_finish(blo_method_env *e, blo_tensor *const *g, blo_tensor *const *v,
                                blo_tensor *const *dx, blo_tensor **hx) {
    blo_ctx *c = e->sctx;
    int nx = e->nx;
    blo_tensor *dot = dot_sum(c, e->ny, g, v);
    blo_tensor **mixed = blo__list(e, nx);
    if (!dot || !mixed) return blo__method_ctx_fail(e, "mixed product");
    if (dot->requires_grad) {
        /* ⟨∇_y f, v⟩ may not reach every x: blo_grad gives zeros for those. */
        if (blo_grad(c, 1, &dot, NULL, nx, e->x, 0, mixed))
            return blo__method_ctx_fail(e, "mixed product");
    } else {
        blo_status st = blo__zeros_like(e, nx, e->x, mixed);
        if (st) return st;
    }
    for (int i = 0; i < nx; i++) {
        hx[i] = blo_sub(c, dx[i], mixed[i]);
        if (!hx[i]) return blo__method_ctx_fail(e, "mixed product");
    }
    return BLO_OK;
}

int blo__traj_tensors(int ny, const blo_traj *tr, blo_tensor **out) {
    int n = 0;
    for (int i = 0; i < ny; i++)
        out[n++] = tr->y[i];
    for (int i = 0; i < ny; i++)
        if (tr->m[i]) out[n++] = tr->m[i];
    for (int i = 0; i < ny; i++)
        if (tr->v[i]) out[n++] = tr->v[i];
    return n;
}

double blo__ll_weight_decay(const blo_method_env *e) {
    return e->c.inner_update ? 0.0 : e->c.inner.weight_decay;
}

blo_status blo__refuse_learned_start(blo_method_env *e, const char *method) {
    if (e->c.init != BLO_INIT_LEARNED) return BLO_OK;
    return blo__method_fail(e, BLO_ERR_INVALID,
                            "%s: a learned start (init = learned) would never move: this method "
                            "takes no derivative through y_0 (dF/dy_0 = 0). Learn the start with "
                            "rhg, trhg (window = T), rhg_ckpt, fhg, bda, iaptt or first_order, or "
                            "use init fixed, warm or from_x",
                            method);
}

blo_status blo__check_carried_y(blo_method_env *e, const char *method, int need_sgd) {
    if (e->c.inner_state == BLO_INNER_STATE_CARRY)
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "%s: inner_state carry continues an inner optimizer from one "
                                "warm-started trajectory to the next; this method carries y "
                                "itself and restarts its inner steps from it — use inner_state "
                                "reset",
                                method);
    if (need_sgd && (e->c.inner.kind != BLO_OPT_SGD || e->c.inner_update))
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "%s: y takes plain steps of size inner.lr; the inner optimizer "
                                "must be sgd, got %s",
                                method,
                                e->c.inner_update ? "a user-defined inner update"
                                                  : blo_opt_kind_name(e->c.inner.kind));
    if (e->c.lr_x >= 0)
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "%s: a learned inner step size (lr_x) needs a method that "
                                "differentiates through the inner steps (rhg, bda, iaptt)",
                                method);
    if (e->c.init == BLO_INIT_LEARNED)
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "%s: y is carried from one outer iteration to the next; a "
                                "learned start (init = learned) has no meaning here",
                                method);
    if (e->c.init == BLO_INIT_FROM_X)
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "%s: y is carried from one outer iteration to the next from the "
                                "problem's y_0; a start built from x (init = from_x) is not "
                                "used — set the problem's y to the start, or use rhg, bda or "
                                "first_order",
                                method);
    return BLO_OK;
}
