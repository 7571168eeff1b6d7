/* blocks.c — upper-level gradients at a point, the lower value, and the Hessian-vector and
 * mixed products of implicit methods (see blocks.h). */
#include "blocks.h"

#include <math.h>
#include <string.h>

blo_status blo__upper_grads(blo_solver *s, blo_tensor *const *y, int64_t step, blo_tensor **dx,
                            blo_tensor **dy) {
    int nx = s->nx, ny = s->ny;
    blo_tensor *F = blo__upper(s, y, step);
    if (!F) return blo__solver_ctx_fail(s, "the upper objective");
    s->last_upper = blo_tensor_item(F);
    blo_tensor **in = blo__list(s, nx + ny), **out = blo__list(s, nx + ny);
    if (!in || !out) return blo__solver_ctx_fail(s, "the upper gradient");
    memcpy(in, s->x, sizeof(blo_tensor *) * (size_t)nx);
    memcpy(in + nx, y, sizeof(blo_tensor *) * (size_t)ny);
    if (!F->requires_grad) { /* F depends on neither x nor y */
        blo_status st = blo__zeros_like(s, nx + ny, in, out);
        if (st) return st;
    } else if (blo_grad(s->sctx, 1, &F, NULL, nx + ny, in, 0, out)) {
        return blo__solver_ctx_fail(s, "the upper gradient");
    }
    memcpy(dx, out, sizeof(blo_tensor *) * (size_t)nx);
    memcpy(dy, out + nx, sizeof(blo_tensor *) * (size_t)ny);
    return BLO_OK;
}

blo_status blo__lower_value(blo_solver *s, blo_tensor *const *y, int64_t step) {
    blo_mark mk = blo_ctx_mark(s->sctx);
    int old = blo_ctx_set_recording(s->sctx, 0);
    blo_tensor *f = blo__lower(s, y, step);
    blo_ctx_set_recording(s->sctx, old);
    if (!f) return blo__solver_ctx_fail(s, "the lower objective");
    s->last_lower = blo_tensor_item(f);
    blo_ctx_rewind(s->sctx, mk);
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

blo_status blo__hess_vec(blo_solver *s, blo_tensor *const *g, blo_tensor *const *y,
                         blo_tensor *const *p, blo_tensor *const *out) {
    blo_ctx *c = s->sctx;
    blo_mark mk = blo_ctx_mark(c);
    blo_tensor *dot = dot_sum(c, s->ny, g, p);
    blo_tensor **hv = blo__list(s, s->ny);
    if (!dot || !hv) return blo__solver_ctx_fail(s, "Hessian-vector product");
    if (!dot->requires_grad) { /* ∇_y f carries no history: f is at most linear in y, H = 0 */
        for (int i = 0; i < s->ny; i++)
            blo_fill(out[i], 0);
    } else {
        if (blo_grad(c, 1, &dot, NULL, s->ny, y, 0, hv))
            return blo__solver_ctx_fail(s, "Hessian-vector product");
        for (int i = 0; i < s->ny; i++)
            blo_copy_into(out[i], hv[i]);
    }
    blo_ctx_rewind(c, mk);
    return BLO_OK;
}

static blo_status hess_apply(blo_ctx *c, blo_tensor *const *p, blo_tensor *const *out, void *user) {
    (void)c;
    blo__hess_op *op = user;
    blo_status st = blo__hess_vec(op->s, op->g, op->y, p, out);
    if (!st && op->damping > 0) blo__axpy_list(op->s->ny, op->damping, p, out);
    return st;
}

blo_linop blo__hess_linop(blo__hess_op *op) {
    blo_linop A = {op->s->ny, hess_apply, op};
    return A;
}

blo_status blo__linalg_fail(blo_solver *s, blo_status st) {
    if (!s->err[0]) blo__solver_fail(s, st, "%s", blo_ctx_error(s->sctx));
    return st;
}

blo_status blo__implicit_finish(blo_solver *s, blo_tensor *const *g, blo_tensor *const *v,
                                blo_tensor *const *dx, blo_tensor **hx) {
    blo_ctx *c = s->sctx;
    int nx = s->nx;
    blo_tensor *dot = dot_sum(c, s->ny, g, v);
    blo_tensor **mixed = blo__list(s, nx);
    if (!dot || !mixed) return blo__solver_ctx_fail(s, "mixed product");
    if (dot->requires_grad) {
        /* ⟨∇_y f, v⟩ may not reach every x: blo_grad gives zeros for those. */
        if (blo_grad(c, 1, &dot, NULL, nx, s->x, 0, mixed))
            return blo__solver_ctx_fail(s, "mixed product");
    } else {
        blo_status st = blo__zeros_like(s, nx, s->x, mixed);
        if (st) return st;
    }
    for (int i = 0; i < nx; i++) {
        hx[i] = blo_sub(c, dx[i], mixed[i]);
        if (!hx[i]) return blo__solver_ctx_fail(s, "mixed product");
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
