/* common.c — the toolkit every hypergradient method is made of (method.h): failures, starting a
 * trajectory, the lower objective's gradient, one differentiable inner step y_{t+1} = Φ(x, y_t),
 * unrolling T of them (recorded for reverse mode, or values only with flat memory), and
 * finishing a reverse pass. */
#include "method.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

blo_status blo__method_vfail(blo_method_env *e, blo_status st, const char *fmt, va_list ap) {
    if (e->err && e->errlen && !e->err[0]) vsnprintf(e->err, e->errlen, fmt, ap);
    return st;
}

blo_status blo__method_fail(blo_method_env *e, blo_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    blo__method_vfail(e, st, fmt, ap);
    va_end(ap);
    return st;
}

void blo__method_solve_report(blo_method_env *e, const blo_linalg_result *r) {
    blo_env_report_solve(e, r->residual, r->iters);
}

blo_status blo__method_ctx_fail(blo_method_env *e, const char *where) {
    blo_status st = blo_ctx_status(e->sctx);
    if (!st) st = BLO_ERR_INVALID;
    return blo__method_fail(e, st, "%s: %s", where, blo_ctx_error(e->sctx));
}

static blo_tensor **alloc_list(blo_method_env *e, int n);

blo_status blo__leaf_copies(blo_method_env *e, int n, blo_tensor *const *ts, blo_tensor **out) {
    for (int i = 0; i < n; i++) {
        out[i] = blo_clone(e->sctx, ts[i]);
        if (!out[i]) return blo__method_ctx_fail(e, "copying the LL state");
        out[i]->requires_grad = true;
    }
    return BLO_OK;
}

blo_status blo__zeros_like(blo_method_env *e, int n, blo_tensor *const *ts, blo_tensor **out) {
    for (int i = 0; i < n; i++) {
        out[i] = blo_zeros(e->sctx, ts[i]->dtype, ts[i]->ndim, ts[i]->shape);
        if (!out[i]) return blo__method_ctx_fail(e, "allocating optimizer state");
    }
    return BLO_OK;
}

blo_tensor **blo__list(blo_method_env *e, int n) {
    return alloc_list(e, n);
}

static blo_tensor **alloc_list(blo_method_env *e, int n) {
    blo_tensor **l = blo__ctx_alloc(e->sctx, sizeof(blo_tensor *) * (size_t)(n > 0 ? n : 1));
    if (l) memset(l, 0, sizeof(blo_tensor *) * (size_t)(n > 0 ? n : 1));
    return l;
}

static blo_status traj_lists(blo_method_env *e, blo_traj *tr);
static blo_status traj_buffers(blo_method_env *e, blo_traj *tr);

/* Same dtype and shape. */
static int same_shape(const blo_tensor *a, const blo_tensor *b) {
    int same = a->ndim == b->ndim && a->dtype == b->dtype;
    for (int k = 0; same && k < a->ndim; k++)
        same = a->shape[k] == b->shape[k];
    return same;
}

/* y_0 = init_y(x) in e->sctx (recorded when the context records), shapes checked; its values
 * also go to e->y0, the start the solver reports. */
static blo_status build_y0(blo_method_env *e, blo_tensor **y0) {
    for (int i = 0; i < e->ny; i++) {
        y0[i] = e->p.init_y(e->sctx, i, e->x, e->p.user);
        if (!y0[i]) {
            if (blo_ctx_status(e->sctx) == BLO_OK)
                blo_ctx_set_error(e->sctx, BLO_ERR_INVALID, "init_y returned NULL for y[%d]", i);
            return blo__method_ctx_fail(e, "building y_0 from x");
        }
        if (!same_shape(y0[i], e->y0[i])) {
            char a[64], b[64];
            return blo__method_fail(e, BLO_ERR_SHAPE, "init_y built %s for y[%d], expected %s",
                                    blo__desc(y0[i], a, sizeof a), i,
                                    blo__desc(e->y0[i], b, sizeof b));
        }
        blo_copy_into(e->y0[i], y0[i]);
    }
    return BLO_OK;
}

blo_status blo__traj_start(blo_method_env *e, blo_traj *tr, int differentiate) {
    if (e->c.init == BLO_INIT_FROM_X) {
        blo_status st = traj_lists(e, tr);
        if (st) return st;
        int old = blo_ctx_set_recording(e->sctx, differentiate);
        st = build_y0(e, tr->y);
        blo_ctx_set_recording(e->sctx, old);
        if (st) return st;
        /* Without history (not differentiated, or a start that ignores x) the inner gradient
         * still needs leaves with requires_grad. */
        for (int i = 0; i < e->ny; i++)
            if (!tr->y[i]->requires_grad && (st = blo__leaf_copies(e, 1, &tr->y[i], &tr->y[i])))
                return st;
        return traj_buffers(e, tr);
    }
    if (e->c.init == BLO_INIT_LEARNED && differentiate) {
        blo_status st = traj_lists(e, tr);
        if (st) return st;
        for (int i = 0; i < e->ny; i++)
            tr->y[i] = e->y0[i];
        return traj_buffers(e, tr);
    }
    blo_status st = blo__traj_start_from(e, tr, e->c.init == BLO_INIT_WARM ? e->y : e->y0);
    if (st || e->c.init != BLO_INIT_WARM || e->c.inner_state != BLO_INNER_STATE_CARRY) return st;
    for (int i = 0; i < e->ny; i++) { /* the carried optimizer state, as values */
        if (tr->m[i] && e->cm[i]) blo_copy_into(tr->m[i], e->cm[i]);
        if (tr->v[i] && e->cv[i]) blo_copy_into(tr->v[i], e->cv[i]);
    }
    tr->t0 = e->inner_t;
    return BLO_OK;
}

blo_status blo__traj_start_from(blo_method_env *e, blo_traj *tr, blo_tensor *const *y) {
    blo_status st = traj_lists(e, tr);
    if (!st) st = blo__leaf_copies(e, e->ny, y, tr->y);
    return st ? st : traj_buffers(e, tr);
}

static blo_status traj_lists(blo_method_env *e, blo_traj *tr) {
    tr->y = alloc_list(e, e->ny);
    tr->m = alloc_list(e, e->ny);
    tr->v = alloc_list(e, e->ny);
    tr->t = tr->t0 = 0;
    return tr->y && tr->m && tr->v ? BLO_OK : blo__method_ctx_fail(e, "starting the LL");
}

/* Zeroed optimizer buffers for the configured inner optimizer (NULL entries for SGD). */
static blo_status traj_buffers(blo_method_env *e, blo_traj *tr) {
    blo_opt_kind k = e->c.inner_update ? BLO_OPT_SGD : e->c.inner.kind; /* Φ keeps no state */
    if (k != BLO_OPT_SGD) {
        blo_status st = blo__zeros_like(e, e->ny, tr->y, tr->m);
        if (st) return st;
    }
    if (k == BLO_OPT_ADAM) {
        blo_status st = blo__zeros_like(e, e->ny, tr->y, tr->v);
        if (st) return st;
    }
    return BLO_OK;
}

static blo_tensor *objective(blo_method_env *e, int level, blo_tensor *const *y, int64_t step) {
    blo_eval ev = {level, e->iter, step, &e->rng};
    blo_objective_fn fn = level == 0 ? e->p.upper : e->p.lower;
    blo_tensor *v = fn(e->sctx, e->x, y, &ev, e->p.user);
    if (v && blo_tensor_numel(v) != 1) {
        char d[64];
        blo_ctx_set_error(e->sctx, BLO_ERR_SHAPE, "the %s objective returned %s, not a scalar",
                          level == 0 ? "upper" : "lower", blo__desc(v, d, sizeof d));
        return NULL;
    }
    if (!v && blo_ctx_status(e->sctx) == BLO_OK)
        blo_ctx_set_error(e->sctx, BLO_ERR_INVALID, "the %s objective returned NULL",
                          level == 0 ? "upper" : "lower");
    return v;
}

blo_tensor *blo__upper(blo_method_env *e, blo_tensor *const *y, int64_t step) {
    return objective(e, 0, y, step);
}

blo_tensor *blo__lower(blo_method_env *e, blo_tensor *const *y, int64_t step) {
    return objective(e, 1, y, step);
}

blo_status blo__ll_grad(blo_method_env *e, blo_tensor *const *y, int64_t step, int create,
                        blo_tensor **g, double *f) {
    blo_tensor *fv = objective(e, 1, y, step);
    if (!fv) return blo__method_ctx_fail(e, "the lower objective");
    if (f) *f = blo_tensor_item(fv);
    if (!fv->requires_grad) { /* f does not depend on y: its gradient is zero */
        return blo__zeros_like(e, e->ny, y, g);
    }
    blo_status st =
        blo_grad(e->sctx, 1, &fv, NULL, e->ny, y, create ? BLO_GRAD_CREATE_GRAPH : 0, g);
    return st ? blo__method_ctx_fail(e, "the lower gradient") : BLO_OK;
}

blo_status blo__init_vjp(blo_method_env *e, blo_tensor *const *dy0, blo_tensor **hx) {
    if (e->c.init != BLO_INIT_FROM_X) return BLO_OK;
    blo_tensor **y0 = alloc_list(e, e->ny), **g = alloc_list(e, e->nx);
    if (!y0 || !g) return blo__method_ctx_fail(e, "the start's gradient");
    int old = blo_ctx_set_recording(e->sctx, 1);
    blo_status st = build_y0(e, y0);
    blo_ctx_set_recording(e->sctx, old);
    if (st) return st;
    int any = 0;
    for (int i = 0; i < e->ny; i++)
        any |= y0[i]->requires_grad;
    if (!any) return BLO_OK; /* a start that does not depend on x */
    if (blo_grad(e->sctx, e->ny, y0, dy0, e->nx, e->x, 0, g))
        return blo__method_ctx_fail(e, "the start's gradient");
    for (int j = 0; j < e->nx; j++)
        if (!(hx[j] = blo_add(e->sctx, hx[j], g[j])))
            return blo__method_ctx_fail(e, "the start's gradient");
    return BLO_OK;
}

blo_status blo__grad_or_zeros(blo_method_env *e, blo_tensor *out, int n, blo_tensor *const *in,
                              unsigned flags, blo_tensor **g, const char *where) {
    if (!out->requires_grad) return blo__zeros_like(e, n, in, g);
    return blo_grad(e->sctx, 1, &out, NULL, n, in, flags, g) ? blo__method_ctx_fail(e, where)
                                                             : BLO_OK;
}

blo_status blo__inner_step(blo_method_env *e, blo_traj *tr, blo_tensor *const *g) {
    blo_ctx *c = e->sctx;
    blo_tensor **lr = NULL, **ny = alloc_list(e, e->ny);
    if (!ny) return blo__method_ctx_fail(e, "the inner step");
    if (e->c.lr_x >= 0) { /* the learned one-element step size, or y_i's own (broadcast) */
        if (!(lr = alloc_list(e, e->ny))) return blo__method_ctx_fail(e, "the inner step");
        for (int i = 0; i < e->ny; i++)
            lr[i] = e->x[e->c.lr_x + (e->c.lr_x_per_y ? i : 0)];
    }
    blo_opt_state os = {e->ny, tr->m, tr->v, tr->t0 + tr->t};
    if (e->c.inner_update) { /* the user's Φ(x, y_t) */
        if (e->c.inner_update(c, e->nx, e->x, e->ny, tr->y, g, tr->t, ny, e->c.inner_update_user)) {
            if (!blo_ctx_status(c)) blo_ctx_set_error(c, BLO_ERR_INVALID, "inner_update failed");
            return blo__method_ctx_fail(e, "the user's inner update");
        }
        for (int i = 0; i < e->ny; i++)
            if (!ny[i] || !same_shape(ny[i], tr->y[i])) {
                char a[64], b[64];
                return blo__method_fail(e, BLO_ERR_SHAPE,
                                        "the user's inner update built %s for y[%d], expected %s",
                                        ny[i] ? blo__desc(ny[i], a, sizeof a) : "nothing", i,
                                        blo__desc(tr->y[i], b, sizeof b));
            }
        os.t++;
    } else if (blo_opt_apply(c, &e->c.inner, &os, e->ny, tr->y, g, lr, ny)) {
        return blo__method_ctx_fail(e, "the inner step");
    }
    for (int i = 0; i < e->ny; i++) {
        if (e->p.project_y && !(ny[i] = e->p.project_y(c, i, ny[i], e->x, e->p.user)))
            return blo__method_ctx_fail(e, "the inner step");
        tr->y[i] = ny[i];
    }
    tr->t = os.t - tr->t0;
    return BLO_OK;
}

blo_status blo__unroll(blo_method_env *e, blo_traj *tr, int64_t to, int create) {
    blo_ctx *c = e->sctx;
    if (tr->t >= to) return BLO_OK;
    blo_tensor **g = alloc_list(e, e->ny);
    if (!g) return blo__method_ctx_fail(e, "unrolling");
    if (create) {
        while (tr->t < to) {
            blo_status st = blo__ll_grad(e, tr->y, tr->t, 1, g, NULL);
            if (!st) st = blo__inner_step(e, tr, g);
            if (st) return st;
        }
        return BLO_OK;
    }
    /* Values only: the state lives in fresh leaves, overwritten in place after every step,
     * and everything a step makes is released by rewinding to the mark. */
    blo_traj cur = *tr;
    cur.y = alloc_list(e, e->ny);
    cur.m = alloc_list(e, e->ny);
    cur.v = alloc_list(e, e->ny);
    if (!cur.y || !cur.m || !cur.v) return blo__method_ctx_fail(e, "unrolling");
    blo_status st = blo__leaf_copies(e, e->ny, tr->y, cur.y);
    for (int i = 0; i < e->ny && !st; i++) {
        if (tr->m[i] && !(cur.m[i] = blo_clone(c, tr->m[i])))
            st = blo__method_ctx_fail(e, "unrolling");
        if (tr->v[i] && !(cur.v[i] = blo_clone(c, tr->v[i])))
            st = blo__method_ctx_fail(e, "unrolling");
    }
    if (st) return st;
    blo_traj nxt = cur;
    nxt.y = alloc_list(e, e->ny);
    nxt.m = alloc_list(e, e->ny);
    nxt.v = alloc_list(e, e->ny);
    if (!nxt.y || !nxt.m || !nxt.v) return blo__method_ctx_fail(e, "unrolling");
    while (cur.t < to && !st) {
        blo_mark mk = blo_ctx_mark(c);
        memcpy(nxt.y, cur.y, sizeof(blo_tensor *) * (size_t)e->ny);
        memcpy(nxt.m, cur.m, sizeof(blo_tensor *) * (size_t)e->ny);
        memcpy(nxt.v, cur.v, sizeof(blo_tensor *) * (size_t)e->ny);
        nxt.t = cur.t;
        st = blo__ll_grad(e, cur.y, cur.t, 0, g, NULL);
        if (!st) {
            int old = blo_ctx_set_recording(c, 0);
            st = blo__inner_step(e, &nxt, g);
            blo_ctx_set_recording(c, old);
        }
        for (int i = 0; i < e->ny && !st; i++) {
            blo_copy_into(cur.y[i], nxt.y[i]);
            if (cur.m[i]) blo_copy_into(cur.m[i], nxt.m[i]);
            if (cur.v[i]) blo_copy_into(cur.v[i], nxt.v[i]);
        }
        cur.t = nxt.t;
        if (!st) blo_ctx_rewind(c, mk);
    }
    if (st) return st;
    *tr = cur;
    return BLO_OK;
}

void blo__keep_y(blo_method_env *e, blo_tensor *const *y) {
    for (int i = 0; i < e->ny; i++)
        blo_copy_into(e->y[i], y[i]);
}

void blo__keep_opt_state(blo_method_env *e, const blo_traj *tr) {
    if (e->c.inner_state != BLO_INNER_STATE_CARRY || !e->cm) return;
    for (int i = 0; i < e->ny; i++) {
        if (tr->m[i] && e->cm[i]) blo_copy_into(e->cm[i], tr->m[i]);
        if (tr->v[i] && e->cv[i]) blo_copy_into(e->cv[i], tr->v[i]);
    }
    e->inner_t = tr->t0 + tr->t;
}

void blo__keep_state(blo_method_env *e, const blo_traj *tr) {
    blo__keep_y(e, tr->y);
    blo__keep_opt_state(e, tr);
}

blo_status blo__finish_reverse(blo_method_env *e, blo_tensor *const *yT, int64_t step,
                               blo_tensor **hx, blo_tensor **hy0, int with_y0) {
    blo_ctx *c = e->sctx;
    blo_tensor *F = blo__upper(e, yT, step);
    if (!F) return blo__method_ctx_fail(e, "the upper objective");
    e->last_upper = blo_tensor_item(F);
    int n = e->nx + (with_y0 ? e->ny : 0);
    blo_tensor **in = alloc_list(e, n), **out = alloc_list(e, n);
    if (!in || !out) return blo__method_ctx_fail(e, "the reverse pass");
    memcpy(in, e->x, sizeof(blo_tensor *) * (size_t)e->nx);
    if (with_y0) memcpy(in + e->nx, e->y0, sizeof(blo_tensor *) * (size_t)e->ny);
    if (!F->requires_grad) { /* F depends on neither x nor y_T */
        blo_status st = blo__zeros_like(e, n, in, out);
        if (st) return st;
    } else if (blo_grad(c, 1, &F, NULL, n, in, 0, out)) {
        return blo__method_ctx_fail(e, "the reverse pass");
    }
    memcpy(hx, out, sizeof(blo_tensor *) * (size_t)e->nx);
    if (with_y0) memcpy(hy0, out + e->nx, sizeof(blo_tensor *) * (size_t)e->ny);
    int old = blo_ctx_set_recording(c, 0);
    blo_tensor *f = blo__lower(e, yT, step);
    blo_ctx_set_recording(c, old);
    if (!f) return blo__method_ctx_fail(e, "the lower objective");
    e->last_lower = blo_tensor_item(f);
    blo__keep_y(e, yT);
    return BLO_OK;
}
