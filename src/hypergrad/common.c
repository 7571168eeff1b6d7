/* common.c — the pieces every hypergradient method is made of: starting a trajectory,
 * the lower objective's gradient, one differentiable inner step y_{t+1} = Φ(x, y_t),
 * unrolling T of them (recorded for reverse mode, or values only with flat memory), and
 * finishing a reverse pass. */
#include "../solve/solver.h"

#include <math.h>
#include <string.h>

static blo_tensor **alloc_list(blo_solver *s, int n);

blo_status blo__leaf_copies(blo_solver *s, int n, blo_tensor *const *ts, blo_tensor **out) {
    for (int i = 0; i < n; i++) {
        out[i] = blo_clone(s->sctx, ts[i]);
        if (!out[i]) return blo__solver_ctx_fail(s, "copying the LL state");
        out[i]->requires_grad = true;
    }
    return BLO_OK;
}

blo_status blo__zeros_like(blo_solver *s, int n, blo_tensor *const *ts, blo_tensor **out) {
    for (int i = 0; i < n; i++) {
        out[i] = blo_zeros(s->sctx, ts[i]->dtype, ts[i]->ndim, ts[i]->shape);
        if (!out[i]) return blo__solver_ctx_fail(s, "allocating optimizer state");
    }
    return BLO_OK;
}

blo_tensor **blo__list(blo_solver *s, int n) {
    return alloc_list(s, n);
}

static blo_tensor **alloc_list(blo_solver *s, int n) {
    blo_tensor **l = blo__ctx_alloc(s->sctx, sizeof(blo_tensor *) * (size_t)(n > 0 ? n : 1));
    if (l) memset(l, 0, sizeof(blo_tensor *) * (size_t)(n > 0 ? n : 1));
    return l;
}

static blo_status traj_lists(blo_solver *s, blo_traj *tr);
static blo_status traj_buffers(blo_solver *s, blo_traj *tr);

/* y_0 = init_y(x) in s->sctx (recorded when the context records), shapes checked; its values
 * also go to s->y0, the start the solver reports. */
static blo_status build_y0(blo_solver *s, blo_tensor **y0) {
    for (int i = 0; i < s->ny; i++) {
        y0[i] = s->p.init_y(s->sctx, i, s->x, s->p.user);
        if (!y0[i]) {
            if (blo_ctx_status(s->sctx) == BLO_OK)
                blo_ctx_set_error(s->sctx, BLO_ERR_INVALID, "init_y returned NULL for y[%d]", i);
            return blo__solver_ctx_fail(s, "building y_0 from x");
        }
        int same = y0[i]->ndim == s->y0[i]->ndim && y0[i]->dtype == s->y0[i]->dtype;
        for (int k = 0; same && k < y0[i]->ndim; k++) same = y0[i]->shape[k] == s->y0[i]->shape[k];
        if (!same) {
            char a[64], b[64];
            return blo__solver_fail(s, BLO_ERR_SHAPE, "init_y built %s for y[%d], expected %s",
                                    blo__desc(y0[i], a, sizeof a), i,
                                    blo__desc(s->y0[i], b, sizeof b));
        }
        blo_copy_into(s->y0[i], y0[i]);
    }
    return BLO_OK;
}

blo_status blo__traj_start(blo_solver *s, blo_traj *tr, int differentiate) {
    if (s->c.init == BLO_INIT_FROM_X) {
        blo_status st = traj_lists(s, tr);
        if (st) return st;
        int old = blo_ctx_set_recording(s->sctx, differentiate);
        st = build_y0(s, tr->y);
        blo_ctx_set_recording(s->sctx, old);
        if (st) return st;
        /* Without history (not differentiated, or a start that ignores x) the inner gradient
         * still needs leaves with requires_grad. */
        for (int i = 0; i < s->ny; i++)
            if (!tr->y[i]->requires_grad && (st = blo__leaf_copies(s, 1, &tr->y[i], &tr->y[i])))
                return st;
        return traj_buffers(s, tr);
    }
    if (s->c.init == BLO_INIT_LEARNED && differentiate) {
        blo_status st = traj_lists(s, tr);
        if (st) return st;
        for (int i = 0; i < s->ny; i++) tr->y[i] = s->y0[i];
        return traj_buffers(s, tr);
    }
    return blo__traj_start_from(s, tr, s->c.init == BLO_INIT_WARM ? s->y : s->y0);
}

blo_status blo__traj_start_from(blo_solver *s, blo_traj *tr, blo_tensor *const *y) {
    blo_status st = traj_lists(s, tr);
    if (!st) st = blo__leaf_copies(s, s->ny, y, tr->y);
    return st ? st : traj_buffers(s, tr);
}

static blo_status traj_lists(blo_solver *s, blo_traj *tr) {
    tr->y = alloc_list(s, s->ny);
    tr->m = alloc_list(s, s->ny);
    tr->v = alloc_list(s, s->ny);
    tr->t = 0;
    return tr->y && tr->m && tr->v ? BLO_OK : blo__solver_ctx_fail(s, "starting the LL");
}

/* Zeroed optimizer buffers for the configured inner optimizer (NULL entries for SGD). */
static blo_status traj_buffers(blo_solver *s, blo_traj *tr) {
    blo_opt_kind k = s->c.inner.kind;
    if (k != BLO_OPT_SGD) {
        blo_status st = blo__zeros_like(s, s->ny, tr->y, tr->m);
        if (st) return st;
    }
    if (k == BLO_OPT_ADAM) {
        blo_status st = blo__zeros_like(s, s->ny, tr->y, tr->v);
        if (st) return st;
    }
    return BLO_OK;
}

static blo_tensor *objective(blo_solver *s, int level, blo_tensor *const *y, int64_t step) {
    blo_eval ev = {level, s->iter, step, &s->rng};
    blo_objective_fn fn = level == 0 ? s->p.upper : s->p.lower;
    blo_tensor *v = fn(s->sctx, s->x, y, &ev, s->p.user);
    if (v && blo_tensor_numel(v) != 1) {
        char d[64];
        blo_ctx_set_error(s->sctx, BLO_ERR_SHAPE, "the %s objective returned %s, not a scalar",
                          level == 0 ? "upper" : "lower", blo__desc(v, d, sizeof d));
        return NULL;
    }
    if (!v && blo_ctx_status(s->sctx) == BLO_OK)
        blo_ctx_set_error(s->sctx, BLO_ERR_INVALID, "the %s objective returned NULL",
                          level == 0 ? "upper" : "lower");
    return v;
}

blo_tensor *blo__upper(blo_solver *s, blo_tensor *const *y, int64_t step) {
    return objective(s, 0, y, step);
}

blo_tensor *blo__lower(blo_solver *s, blo_tensor *const *y, int64_t step) {
    return objective(s, 1, y, step);
}

blo_status blo__ll_grad(blo_solver *s, blo_tensor *const *y, int64_t step, int create,
                        blo_tensor **g, double *f) {
    blo_tensor *fv = objective(s, 1, y, step);
    if (!fv) return blo__solver_ctx_fail(s, "the lower objective");
    if (f) *f = blo_tensor_item(fv);
    if (!fv->requires_grad) { /* f does not depend on y: its gradient is zero */
        return blo__zeros_like(s, s->ny, y, g);
    }
    blo_status st = blo_grad(s->sctx, 1, &fv, NULL, s->ny, y, create ? BLO_GRAD_CREATE_GRAPH : 0, g);
    return st ? blo__solver_ctx_fail(s, "the lower gradient") : BLO_OK;
}

blo_status blo__init_vjp(blo_solver *s, blo_tensor *const *dy0, blo_tensor **hx) {
    if (s->c.init != BLO_INIT_FROM_X) return BLO_OK;
    blo_tensor **y0 = alloc_list(s, s->ny), **g = alloc_list(s, s->nx);
    if (!y0 || !g) return blo__solver_ctx_fail(s, "the start's gradient");
    int old = blo_ctx_set_recording(s->sctx, 1);
    blo_status st = build_y0(s, y0);
    blo_ctx_set_recording(s->sctx, old);
    if (st) return st;
    int any = 0;
    for (int i = 0; i < s->ny; i++) any |= y0[i]->requires_grad;
    if (!any) return BLO_OK; /* a start that does not depend on x */
    if (blo_grad(s->sctx, s->ny, y0, dy0, s->nx, s->x, 0, g))
        return blo__solver_ctx_fail(s, "the start's gradient");
    for (int j = 0; j < s->nx; j++)
        if (!(hx[j] = blo_add(s->sctx, hx[j], g[j])))
            return blo__solver_ctx_fail(s, "the start's gradient");
    return BLO_OK;
}

blo_status blo__grad_or_zeros(blo_solver *s, blo_tensor *out, int n, blo_tensor *const *in,
                              unsigned flags, blo_tensor **g, const char *where) {
    if (!out->requires_grad) return blo__zeros_like(s, n, in, g);
    return blo_grad(s->sctx, 1, &out, NULL, n, in, flags, g) ? blo__solver_ctx_fail(s, where)
                                                              : BLO_OK;
}

blo_status blo__inner_step(blo_solver *s, blo_traj *tr, blo_tensor *const *g) {
    blo_ctx *c = s->sctx;
    blo_tensor **lr = NULL, **ny = alloc_list(s, s->ny);
    if (!ny) return blo__solver_ctx_fail(s, "the inner step");
    if (s->c.lr_x >= 0) { /* the learned one-element step size, or y_i's own (broadcast) */
        if (!(lr = alloc_list(s, s->ny))) return blo__solver_ctx_fail(s, "the inner step");
        for (int i = 0; i < s->ny; i++) lr[i] = s->x[s->c.lr_x + (s->c.lr_x_per_y ? i : 0)];
    }
    blo_opt_state os = {s->ny, tr->m, tr->v, tr->t};
    if (blo_opt_apply(c, &s->c.inner, &os, s->ny, tr->y, g, lr, ny))
        return blo__solver_ctx_fail(s, "the inner step");
    for (int i = 0; i < s->ny; i++) {
        if (s->p.project_y && !(ny[i] = s->p.project_y(c, i, ny[i], s->p.user)))
            return blo__solver_ctx_fail(s, "the inner step");
        tr->y[i] = ny[i];
    }
    tr->t = os.t;
    return BLO_OK;
}

blo_status blo__unroll(blo_solver *s, blo_traj *tr, int64_t to, int create) {
    blo_ctx *c = s->sctx;
    if (tr->t >= to) return BLO_OK;
    blo_tensor **g = alloc_list(s, s->ny);
    if (!g) return blo__solver_ctx_fail(s, "unrolling");
    if (create) {
        while (tr->t < to) {
            blo_status st = blo__ll_grad(s, tr->y, tr->t, 1, g, NULL);
            if (!st) st = blo__inner_step(s, tr, g);
            if (st) return st;
        }
        return BLO_OK;
    }
    /* Values only: the state lives in fresh leaves, overwritten in place after every step,
     * and everything a step makes is released by rewinding to the mark. */
    blo_traj cur = *tr;
    cur.y = alloc_list(s, s->ny);
    cur.m = alloc_list(s, s->ny);
    cur.v = alloc_list(s, s->ny);
    if (!cur.y || !cur.m || !cur.v) return blo__solver_ctx_fail(s, "unrolling");
    blo_status st = blo__leaf_copies(s, s->ny, tr->y, cur.y);
    for (int i = 0; i < s->ny && !st; i++) {
        if (tr->m[i] && !(cur.m[i] = blo_clone(c, tr->m[i]))) st = blo__solver_ctx_fail(s, "unrolling");
        if (tr->v[i] && !(cur.v[i] = blo_clone(c, tr->v[i]))) st = blo__solver_ctx_fail(s, "unrolling");
    }
    if (st) return st;
    blo_traj nxt = cur;
    nxt.y = alloc_list(s, s->ny);
    nxt.m = alloc_list(s, s->ny);
    nxt.v = alloc_list(s, s->ny);
    if (!nxt.y || !nxt.m || !nxt.v) return blo__solver_ctx_fail(s, "unrolling");
    while (cur.t < to && !st) {
        blo_mark mk = blo_ctx_mark(c);
        memcpy(nxt.y, cur.y, sizeof(blo_tensor *) * (size_t)s->ny);
        memcpy(nxt.m, cur.m, sizeof(blo_tensor *) * (size_t)s->ny);
        memcpy(nxt.v, cur.v, sizeof(blo_tensor *) * (size_t)s->ny);
        nxt.t = cur.t;
        st = blo__ll_grad(s, cur.y, cur.t, 0, g, NULL);
        if (!st) {
            int old = blo_ctx_set_recording(c, 0);
            st = blo__inner_step(s, &nxt, g);
            blo_ctx_set_recording(c, old);
        }
        for (int i = 0; i < s->ny && !st; i++) {
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

void blo__keep_y(blo_solver *s, blo_tensor *const *y) {
    for (int i = 0; i < s->ny; i++) blo_copy_into(s->y[i], y[i]);
}

blo_status blo__finish_reverse(blo_solver *s, blo_tensor *const *yT, int64_t step,
                               blo_tensor **hx, blo_tensor **hy0, int with_y0) {
    blo_ctx *c = s->sctx;
    blo_tensor *F = blo__upper(s, yT, step);
    if (!F) return blo__solver_ctx_fail(s, "the upper objective");
    s->last_upper = blo_tensor_item(F);
    int n = s->nx + (with_y0 ? s->ny : 0);
    blo_tensor **in = alloc_list(s, n), **out = alloc_list(s, n);
    if (!in || !out) return blo__solver_ctx_fail(s, "the reverse pass");
    memcpy(in, s->x, sizeof(blo_tensor *) * (size_t)s->nx);
    if (with_y0) memcpy(in + s->nx, s->y0, sizeof(blo_tensor *) * (size_t)s->ny);
    if (!F->requires_grad) { /* F depends on neither x nor y_T */
        blo_status st = blo__zeros_like(s, n, in, out);
        if (st) return st;
    } else if (blo_grad(c, 1, &F, NULL, n, in, 0, out)) {
        return blo__solver_ctx_fail(s, "the reverse pass");
    }
    memcpy(hx, out, sizeof(blo_tensor *) * (size_t)s->nx);
    if (with_y0) memcpy(hy0, out + s->nx, sizeof(blo_tensor *) * (size_t)s->ny);
    int old = blo_ctx_set_recording(c, 0);
    blo_tensor *f = blo__lower(s, yT, step);
    blo_ctx_set_recording(c, old);
    if (!f) return blo__solver_ctx_fail(s, "the lower objective");
    s->last_lower = blo_tensor_item(f);
    blo__keep_y(s, yT);
    return BLO_OK;
}
