/* solver.c — the outer loop: the solver's state, one hypergradient, the outer optimizer
 * step with projection, stopping and divergence rules, the per-iteration record, and
 * checkpoint / resume of the whole state. */
#include "solver.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- Errors --------------------------------------------------------------------------------- */

const char *blo_solver_error(const blo_solver *s) {
    return s ? s->err : "no solver";
}

/* ---- Construction ------------------------------------------------------------------------------
 */

static bool check_opt(const blo_opt *o, const char *what, char *err, size_t n) {
    const char *why = blo_opt_check(o);
    if (why) snprintf(err, n, "%s: %s", what, why);
    return !why;
}

static blo_tensor **plist(blo_solver *s, int n) {
    blo_tensor **l = blo__ctx_alloc(s->pctx, sizeof(blo_tensor *) * (size_t)(n > 0 ? n : 1));
    if (l) memset(l, 0, sizeof(blo_tensor *) * (size_t)(n > 0 ? n : 1));
    return l;
}

/* Zeroed copies of the shapes of ts into a new list in pctx. */
static blo_tensor **zeros_list(blo_solver *s, int n, blo_tensor *const *ts) {
    blo_tensor **l = plist(s, n);
    for (int i = 0; l && i < n; i++)
        if (!(l[i] = blo_zeros(s->pctx, ts[i]->dtype, ts[i]->ndim, ts[i]->shape))) return NULL;
    return l;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* a broadcasts against b numpy-style without growing b (trailing axes equal or 1). */
static int lr_broadcasts(const blo_tensor *a, const blo_tensor *b) {
    if (a->ndim > b->ndim) return 0;
    for (int k = 1; k <= a->ndim; k++) {
        int64_t da = a->shape[a->ndim - k], db = b->shape[b->ndim - k];
        if (da != db && da != 1) return 0;
    }
    return 1;
}

/* The environment a method sees (method.h), from the solver's state: the method gets the
 * problem, the configuration, the scratch context, x, y, y_0, its state, the RNG and the
 * iteration — not the outer optimizer — and writes its messages into the solver's. */
static void env_begin(blo_solver *s) {
    blo_method_env *e = &s->env;
    e->p = s->p;
    e->c = s->c;
    e->m = s->m;
    e->sctx = s->sctx;
    e->nx = s->nx;
    e->ny = s->ny;
    e->x = s->x;
    e->y = s->y;
    e->y0 = s->y0;
    e->ms = s->ms;
    e->rng = s->rng;
    e->iter = s->iter;
    e->last_upper = s->last_upper;
    e->last_lower = s->last_lower;
    e->solve_residual = NAN;
    e->solve_iters = -1;
    e->err = s->err;
    e->errlen = sizeof s->err;
    e->cm = s->cm;
    e->cv = s->cv;
    e->inner_t = s->inner_t;
    e->fin = NULL;
}

/* What the method changed: the RNG's draws and F, f at its y_T. */
static void env_end(blo_solver *s) {
    s->rng = s->env.rng;
    s->last_upper = s->env.last_upper;
    s->last_lower = s->env.last_lower;
    s->last_solve_residual = s->env.solve_residual;
    s->last_solve_iters = s->env.solve_iters;
    s->inner_t = s->env.inner_t;
}

blo_solver *blo_solver_new(const blo_problem *p, const blo_config *c, char *err, size_t errlen) {
    char tmp[512];
    if (!err) {
        err = tmp;
        errlen = sizeof tmp;
    }
    if (errlen) err[0] = 0;
    if (!p || !c) {
        snprintf(err, errlen, "blo_solver_new: problem and configuration are required");
        return NULL;
    }
    if (p->nx < 1 || p->ny < 1 || !p->x || !p->y || !p->upper || !p->lower) {
        snprintf(err, errlen, "problem: needs at least one x and one y tensor and both objectives");
        return NULL;
    }
    const blo_method *m = blo__method_find(c->method);
    if (!m) {
        snprintf(err, errlen, "unknown method '%s' (blo methods lists them)",
                 c->method ? c->method : "(null)");
        return NULL;
    }
    if (!check_opt(&c->inner, "inner optimizer", err, errlen) ||
        !check_opt(&c->outer, "outer optimizer", err, errlen) ||
        (c->init == BLO_INIT_LEARNED && !check_opt(&c->init_opt, "y0 optimizer", err, errlen)))
        return NULL;
    if (c->inner_steps < 0 || c->outer_iters < 0 || c->check_rhg_steps < 0 ||
        (unsigned)c->init > BLO_INIT_FROM_X) {
        snprintf(err, errlen,
                 "configuration: inner_steps, outer_iters, check_rhg_steps must be >= 0 and "
                 "init known");
        return NULL;
    }
    if ((unsigned)c->inner_state > BLO_INNER_STATE_CARRY) {
        snprintf(err, errlen, "configuration: inner_state %d is not reset (0) or carry (1)",
                 (int)c->inner_state);
        return NULL;
    }
    if (c->inner_state == BLO_INNER_STATE_CARRY && c->init != BLO_INIT_WARM) {
        snprintf(err, errlen,
                 "configuration: inner_state carry continues the inner optimizer from the last "
                 "outer iteration's trajectory, which only a warm start continues; it needs "
                 "init = warm, got %s",
                 blo_init_kind_name(c->init));
        return NULL;
    }
    if (c->inner_state == BLO_INNER_STATE_CARRY && c->inner_update) {
        snprintf(err, errlen,
                 "configuration: inner_state carry needs the configured inner optimizer: a "
                 "user-defined inner update (inner_update) keeps no state to carry");
        return NULL;
    }
    if (c->lr_x >= p->nx) {
        snprintf(err, errlen, "configuration: lr_x %d is not an x index (nx = %d)", c->lr_x, p->nx);
        return NULL;
    }
    if (!(p->x_lo <= p->x_hi)) {
        snprintf(err, errlen, "problem: box bounds [%g, %g] are empty", p->x_lo, p->x_hi);
        return NULL;
    }
    if (!p->x_lo_each != !p->x_hi_each) {
        snprintf(err, errlen, "problem: per-tensor bounds need both x_lo_each and x_hi_each");
        return NULL;
    }
    for (int i = 0; p->x_lo_each && i < p->nx; i++)
        if (!(p->x_lo_each[i] <= p->x_hi_each[i])) {
            snprintf(err, errlen, "problem: the bounds [%g, %g] of x[%d] are empty",
                     p->x_lo_each[i], p->x_hi_each[i], i);
            return NULL;
        }
    for (int i = 0; i < p->nx; i++)
        if (!p->x[i] || p->x[i]->dtype == BLO_I64) {
            snprintf(err, errlen, "problem: x[%d] is missing or not a float tensor", i);
            return NULL;
        }
    for (int i = 0; i < p->ny; i++)
        if (!p->y[i] || p->y[i]->dtype == BLO_I64) {
            snprintf(err, errlen, "problem: y[%d] is missing or not a float tensor", i);
            return NULL;
        }
    if (c->init == BLO_INIT_FROM_X && !p->init_y) {
        snprintf(err, errlen, "configuration: init from_x needs the problem's init_y callback");
        return NULL;
    }
    if (c->lr_x >= 0 && c->lr_x_per_y) {
        if (c->lr_x + p->ny > p->nx) {
            snprintf(err, errlen,
                     "configuration: per-parameter step sizes need x[%d .. %d], "
                     "but nx = %d",
                     c->lr_x, c->lr_x + p->ny - 1, p->nx);
            return NULL;
        }
        for (int i = 0; i < p->ny; i++)
            if (!lr_broadcasts(p->x[c->lr_x + i], p->y[i])) {
                snprintf(err, errlen,
                         "configuration: the step sizes x[%d] do not broadcast "
                         "against y[%d]",
                         c->lr_x + i, i);
                return NULL;
            }
    } else if (c->lr_x >= 0 && blo_tensor_numel(p->x[c->lr_x]) != 1) {
        snprintf(err, errlen, "configuration: the learned step size x[%d] must have one element",
                 c->lr_x);
        return NULL;
    }

    blo_solver *s = blo_calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->p = *p;
    s->c = *c;
    s->m = m;
    s->nx = p->nx;
    s->ny = p->ny;
    s->pctx = blo_ctx_new(0);
    s->sctx = blo_ctx_new(0);
    if (!s->pctx || !s->sctx) goto nomem;
    env_begin(s);       /* failures are recorded through it from here on */
    if (p->x_lo_each) { /* the solver's own copies of the per-tensor bounds */
        double *b = blo__ctx_alloc(s->pctx, sizeof(double) * 2 * (size_t)s->nx);
        if (!b) goto nomem;
        memcpy(b, p->x_lo_each, sizeof(double) * (size_t)s->nx);
        memcpy(b + s->nx, p->x_hi_each, sizeof(double) * (size_t)s->nx);
        s->p.x_lo_each = b;
        s->p.x_hi_each = b + s->nx;
    }
    s->x = plist(s, s->nx);
    s->y = plist(s, s->ny);
    s->y0 = plist(s, s->ny);
    if (!s->x || !s->y || !s->y0) goto nomem;
    for (int i = 0; i < s->nx; i++) {
        if (!(s->x[i] = blo_clone(s->pctx, p->x[i]))) goto nomem;
        s->x[i]->requires_grad = true;
    }
    for (int i = 0; i < s->ny; i++) {
        if (!(s->y[i] = blo_clone(s->pctx, p->y[i]))) goto nomem;
        if (!(s->y0[i] = blo_clone(s->pctx, p->y[i]))) goto nomem;
        s->y0[i]->requires_grad = c->init == BLO_INIT_LEARNED;
    }
    if (!(s->xm = zeros_list(s, s->nx, s->x)) || !(s->xv = zeros_list(s, s->nx, s->x))) goto nomem;
    if (c->init == BLO_INIT_LEARNED &&
        (!(s->y0m = zeros_list(s, s->ny, s->y)) || !(s->y0v = zeros_list(s, s->ny, s->y))))
        goto nomem;
    int ng = m->n_state_groups;
    if (ng > 0) {
        s->ms = plist(s, ng * s->ny);
        if (!s->ms) goto nomem;
        for (int gi = 0; gi < ng; gi++)
            for (int i = 0; i < s->ny; i++)
                if (!(s->ms[gi * s->ny + i] =
                          blo_zeros(s->pctx, s->y[i]->dtype, s->y[i]->ndim, s->y[i]->shape)))
                    goto nomem;
    }
    if (c->inner_state == BLO_INNER_STATE_CARRY) {
        blo_opt_kind k = c->inner.kind;
        s->cm = k != BLO_OPT_SGD ? zeros_list(s, s->ny, s->y) : plist(s, s->ny);
        s->cv = k == BLO_OPT_ADAM ? zeros_list(s, s->ny, s->y) : plist(s, s->ny);
        s->cs = plist(s, 2 * s->ny);
        if (!s->cm || !s->cv || !s->cs) goto nomem;
        for (int i = 0; i < s->ny; i++)
            if (s->cm[i]) s->cs[s->n_cs++] = s->cm[i];
        for (int i = 0; i < s->ny; i++)
            if (s->cv[i]) s->cs[s->n_cs++] = s->cv[i];
    }
    blo_rng_seed(&s->rng, c->seed);
    s->last_upper = s->last_lower = NAN;
    s->last_solve_residual = NAN;
    s->last_solve_iters = -1;
    clock_gettime(CLOCK_MONOTONIC, &s->t0);
    env_begin(s);
    if (m->check && m->check(&s->env)) {
        snprintf(err, errlen, "%s", s->err);
        blo_solver_free(s);
        return NULL;
    }
    return s;
nomem:
    snprintf(err, errlen, "out of memory setting up the solver");
    blo_solver_free(s);
    return NULL;
}

static void free_bufs(int n, double **b);

void blo_solver_free(blo_solver *s) {
    if (!s) return;
    free_bufs(s->nx, s->hx);
    free_bufs(s->ny, s->hy0);
    blo_ctx_free(s->pctx);
    blo_ctx_free(s->sctx);
    blo_free(s);
}

/* ---- One hypergradient ------------------------------------------------------------------------
 */

/* Runs the method in a fresh scratch window; on success copies the results to out (double). */
static blo_status hypergrad_into(blo_solver *s, double **hx_out, double **hy0_out, double *norm) {
    blo_ctx_rewind(s->sctx, (blo_mark){0, 0, 0, 0});
    s->sctx->peak = 0; /* the record reports each iteration's own peak */
    blo_ctx_clear_error(s->sctx);
    blo_ctx_set_recording(s->sctx, 1);
    s->err[0] = 0;
    blo_tensor *hx[64], *hy0[64];
    blo_tensor **hxl =
        s->nx <= 64 ? hx : blo__ctx_alloc(s->sctx, sizeof(blo_tensor *) * (size_t)s->nx);
    blo_tensor **hyl =
        s->ny <= 64 ? hy0 : blo__ctx_alloc(s->sctx, sizeof(blo_tensor *) * (size_t)s->ny);
    if (!hxl || !hyl) return blo__method_ctx_fail(&s->env, "hypergradient");
    for (int i = 0; i < s->ny; i++)
        hyl[i] = NULL;
    env_begin(s);
    blo_status st = s->m->hypergrad(&s->env, hxl, hyl);
    env_end(s);
    if (st) {
        if (!s->err[0]) blo__method_ctx_fail(&s->env, s->m->info.name);
        /* Name the iteration, so a long run's failure can be found in its log. */
        if (strncmp(s->err, "iteration ", 10)) {
            char head[40];
            int k = snprintf(head, sizeof head, "iteration %lld: ", (long long)s->iter);
            size_t n = strlen(s->err), room = sizeof s->err - 1 - (size_t)k;
            memmove(s->err + k, s->err, n < room ? n + 1 : room);
            s->err[sizeof s->err - 1] = 0;
            memcpy(s->err, head, (size_t)k);
        }
        return st;
    }
    double sq = 0;
    for (int i = 0; i < s->nx; i++) {
        int64_t n = blo_tensor_numel(s->x[i]);
        if (!hxl[i] || blo_tensor_numel(hxl[i]) != n)
            return blo__method_fail(&s->env, BLO_ERR_INVALID, "%s returned no gradient for x[%d]",
                                    s->m->info.name, i);
        blo_tensor_to_f64(hxl[i], hx_out[i]);
        for (int64_t k = 0; k < n; k++) {
            if (!isfinite(hx_out[i][k]))
                return blo__method_fail(&s->env, BLO_ERR_NUMERIC,
                                        "iteration %lld: the hypergradient of x[%d] is not finite "
                                        "(element %lld); lower the step sizes",
                                        (long long)s->iter, i, (long long)k);
            sq += hx_out[i][k] * hx_out[i][k];
        }
    }
    if (hy0_out)
        for (int i = 0; i < s->ny; i++) {
            if (hyl[i])
                blo_tensor_to_f64(hyl[i], hy0_out[i]);
            else
                memset(hy0_out[i], 0, sizeof(double) * (size_t)blo_tensor_numel(s->y[i]));
        }
    if (norm) *norm = sqrt(sq);
    return BLO_OK;
}

/* Per-tensor double buffers matching a list of tensors. Freed with free_bufs. */
static double **alloc_bufs(int n, blo_tensor *const *ts) {
    double **b = blo_calloc((size_t)n, sizeof *b);
    for (int i = 0; b && i < n; i++) {
        b[i] = blo_malloc(sizeof(double) * (size_t)(blo_tensor_numel(ts[i]) + 1));
        if (!b[i]) {
            for (int j = 0; j < i; j++)
                blo_free(b[j]);
            blo_free(b);
            return NULL;
        }
    }
    return b;
}

static void free_bufs(int n, double **b) {
    if (!b) return;
    for (int i = 0; i < n; i++)
        blo_free(b[i]);
    blo_free(b);
}

blo_status blo_solver_hypergrad(blo_solver *s, double **out) {
    if (!s || !out) return BLO_ERR_INVALID;
    return hypergrad_into(s, out, NULL, NULL);
}

/* ---- The hypergradient check (blo/bilevel.h) ------------------------------------------------ */

/* Φ(x) = F(x, y_T(x)): T steps of the configured dynamics from the configured start, values
 * only, every evaluation on the draws `draw`. */
static blo_status unrolled_upper(blo_solver *s, const blo_rng *draw, double *out) {
    blo_method_env *e = &s->env;
    blo_mark mk = blo_ctx_mark(s->sctx);
    int old = blo_ctx_set_recording(s->sctx, 1); /* the inner steps take gradients of f */
    e->rng = *draw;
    blo_traj tr;
    blo_status st = blo__traj_start(e, &tr, 0);
    if (!st) st = blo__unroll(e, &tr, s->c.inner_steps, 0);
    if (!st) {
        blo_tensor *F = blo__upper(e, tr.y, tr.t);
        if (!F)
            st = blo__method_ctx_fail(e, "the hypergradient check: the upper objective");
        else
            *out = blo_tensor_item(F);
    }
    blo_ctx_set_recording(s->sctx, old);
    blo_ctx_rewind(s->sctx, mk);
    return st;
}

/* Copies between a list of tensors and double buffers (to: 1 tensors → buffers). */
static void bufs_copy(int n, blo_tensor *const *ts, double **b, int to) {
    for (int i = 0; i < n; i++) {
        if (to) {
            blo_tensor_to_f64(ts[i], b[i]);
        } else {
            int64_t m = blo_tensor_numel(ts[i]);
            for (int64_t k = 0; k < m; k++)
                blo_tensor_set(ts[i], k, b[i][k]);
        }
    }
}

blo_status blo_solver_check_hypergrad(blo_solver *s, int directions, blo_hypergrad_check *out) {
    if (!s || !out) return BLO_ERR_INVALID;
    if (directions < 1)
        return blo__method_fail(&s->env, BLO_ERR_INVALID,
                                "the hypergradient check needs at least one direction, got %d",
                                directions);
    int nx = s->nx, ny = s->ny, nms = s->ms ? s->m->n_state_groups * ny : 0, ncs = s->n_cs;
    /* The state the method may change, to put back afterwards. */
    blo_rng rng0 = s->rng;
    int64_t inner_t0 = s->inner_t;
    double up0 = s->last_upper, lo0 = s->last_lower, res0 = s->last_solve_residual;
    int64_t it0 = s->last_solve_iters;
    int64_t T_rhg = s->c.check_rhg_steps;
    double **g = alloc_bufs(nx, s->x), **x0 = alloc_bufs(nx, s->x), **u = alloc_bufs(nx, s->x);
    double **y0 = alloc_bufs(ny, s->y), **ms0 = nms ? alloc_bufs(nms, s->ms) : NULL;
    double **cs0 = ncs ? alloc_bufs(ncs, s->cs) : NULL;
    double **gr = T_rhg > 0 ? alloc_bufs(nx, s->x) : NULL;
    blo_status st = BLO_OK;
    int saved = 0;
    if (!g || !x0 || !u || !y0 || (nms && !ms0) || (ncs && !cs0) || (T_rhg > 0 && !gr)) {
        st = blo__method_fail(&s->env, BLO_ERR_NOMEM, "out of memory");
        goto done;
    }
    bufs_copy(nx, s->x, x0, 1);
    bufs_copy(ny, s->y, y0, 1);
    if (nms) bufs_copy(nms, s->ms, ms0, 1);
    if (ncs) bufs_copy(ncs, s->cs, cs0, 1);
    saved = 1;
    double norm = 0;
    st = hypergrad_into(s, g, NULL, &norm);
    bufs_copy(ny, s->y, y0, 0); /* undo what the method moved */
    if (nms) bufs_copy(nms, s->ms, ms0, 0);
    if (ncs) bufs_copy(ncs, s->cs, cs0, 0);
    s->inner_t = inner_t0;
    if (st) goto done;
    if (T_rhg > 0) { /* the long-horizon reference: rhg from the same state and draws */
        const blo_method *m = s->m;
        blo_config c = s->c;
        s->m = blo__method_find("rhg");
        s->c.method = "rhg";
        s->c.inner_steps = T_rhg;
        s->rng = rng0;
        st = hypergrad_into(s, gr, NULL, NULL);
        s->m = m;
        s->c = c;
        bufs_copy(ny, s->y, y0, 0);
        if (nms) bufs_copy(nms, s->ms, ms0, 0);
        if (ncs) bufs_copy(ncs, s->cs, cs0, 0);
        s->inner_t = inner_t0;
        if (st) {
            char why[sizeof s->err];
            snprintf(why, sizeof why, "%s", s->err);
            s->err[0] = 0;
            blo__method_fail(&s->env, st,
                             "the hypergradient check's rhg reference (%lld steps): %s",
                             (long long)T_rhg, why);
            goto done;
        }
    }

    double eps = 2.220446049250313e-16, xmax = 1;
    for (int i = 0; i < nx; i++) {
        if (s->x[i]->dtype != BLO_F64) eps = 1.1920928955078125e-07;
        for (int64_t k = 0; k < blo_tensor_numel(s->x[i]); k++)
            xmax = fmax(xmax, fabs(x0[i][k]));
    }
    double h = cbrt(eps) * xmax, dd = 0, rr = 0, dr = 0, diff = 0;
    double gg = 0, dg = 0, gdiff = 0; /* against rhg's directional derivatives */
    blo_rng dir;
    blo_rng_seed(&dir, s->c.seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(s->iter + 1)));
    for (int j = 0; j < directions && !st; j++) {
        double un = 0, dm = 0, dg_j = 0, fp = 0, fm = 0;
        for (int i = 0; i < nx; i++)
            for (int64_t k = 0; k < blo_tensor_numel(s->x[i]); k++) {
                u[i][k] = blo_rng_normal(&dir);
                un += u[i][k] * u[i][k];
            }
        un = sqrt(un);
        for (int sign = 1; sign >= -1 && !st; sign -= 2) {
            for (int i = 0; i < nx; i++)
                for (int64_t k = 0; k < blo_tensor_numel(s->x[i]); k++)
                    blo_tensor_set(s->x[i], k, x0[i][k] + sign * h * u[i][k] / un);
            st = unrolled_upper(s, &rng0, sign > 0 ? &fp : &fm);
        }
        bufs_copy(nx, s->x, x0, 0);
        for (int i = 0; i < nx; i++)
            for (int64_t k = 0; k < blo_tensor_numel(s->x[i]); k++) {
                dm += g[i][k] * u[i][k] / un;
                if (gr) dg_j += gr[i][k] * u[i][k] / un;
            }
        double ref = (fp - fm) / (2 * h);
        gg += dg_j * dg_j;
        dg += dm * dg_j;
        gdiff += (dm - dg_j) * (dm - dg_j);
        dd += dm * dm;
        rr += ref * ref;
        dr += dm * ref;
        diff += (dm - ref) * (dm - ref);
    }
    if (!st) {
        out->directions = directions;
        out->cosine = dd > 0 && rr > 0 ? dr / sqrt(dd * rr) : NAN;
        out->rel_error = rr > 0 ? sqrt(diff / rr) : sqrt(dd);
        out->fd_step = h;
        out->norm = norm;
        out->rhg_steps = T_rhg > 0 ? T_rhg : 0;
        out->rhg_cosine = T_rhg > 0 && dd > 0 && gg > 0 ? dg / sqrt(dd * gg) : NAN;
        out->rhg_rel_error = T_rhg <= 0 ? NAN : gg > 0 ? sqrt(gdiff / gg) : sqrt(dd);
    }
done:
    if (saved) bufs_copy(nx, s->x, x0, 0);
    s->rng = rng0;
    s->last_upper = up0;
    s->last_lower = lo0;
    s->last_solve_residual = res0;
    s->last_solve_iters = it0;
    free_bufs(nx, g);
    free_bufs(nx, x0);
    free_bufs(nx, u);
    free_bufs(ny, y0);
    free_bufs(nms, ms0);
    free_bufs(ncs, cs0);
    free_bufs(nx, gr);
    return st;
}

/* One outer optimizer step (blo_opt_step) of the tensors v by the gradients g (float64
 * values, as the hypergradient was checked), the moments m / sq and the step count t held by
 * the solver. */
static blo_status outer_step(blo_solver *s, const blo_opt *o, int64_t t, int n, blo_tensor **v,
                             double **g, blo_tensor **m, blo_tensor **sq, const char *what) {
    blo_ctx *c = s->sctx;
    blo_mark mk = blo_ctx_mark(c);
    blo_tensor **gt = blo__ctx_alloc(c, sizeof(blo_tensor *) * (size_t)n);
    for (int i = 0; gt && i < n; i++)
        if (!(gt[i] = blo_from_f64(c, v[i]->dtype, v[i]->ndim, v[i]->shape, g[i]))) gt = NULL;
    blo_opt_state os = {n, m, sq, t - 1};
    blo_status st = gt ? blo_opt_step(c, o, &os, n, v, gt) : blo_ctx_status(c);
    blo_ctx_rewind(c, mk);
    return st ? blo__method_ctx_fail(&s->env, what) : BLO_OK;
}

/* A learned start is a point of the LL's feasible set like every y_t, so it is projected
 * too; left outside, it could sit where the projection's derivative is zero and never move
 * again. Values only, in the scratch context (rewound by the next hypergradient). */
static blo_status project_y0(blo_solver *s) {
    int old = blo_ctx_set_recording(s->sctx, 0);
    blo_status st = BLO_OK;
    for (int i = 0; i < s->ny && !st; i++) {
        blo_tensor *p = s->p.project_y(s->sctx, i, s->y0[i], s->x, s->p.user);
        if (!p)
            st = blo__method_ctx_fail(&s->env, "projecting the learned y_0");
        else if (p != s->y0[i])
            st = blo_copy_into(s->y0[i], p);
    }
    blo_ctx_set_recording(s->sctx, old);
    return st;
}

static double elapsed(const blo_solver *s) {
    double t0 = (double)s->t0.tv_sec + 1e-9 * (double)s->t0.tv_nsec;
    return s->seconds_before + now() - t0;
}

blo_status blo_solver_step(blo_solver *s, blo_record *rec) {
    if (!s) return BLO_ERR_INVALID;
    blo_status st = BLO_OK;
    if (!s->hx) s->hx = alloc_bufs(s->nx, s->x);
    if (!s->hy0 && s->c.init == BLO_INIT_LEARNED) s->hy0 = alloc_bufs(s->ny, s->y);
    double **hx = s->hx, **hy0 = s->c.init == BLO_INIT_LEARNED ? s->hy0 : NULL;
    if (!hx || (s->c.init == BLO_INIT_LEARNED && !hy0)) {
        st = blo__method_fail(&s->env, BLO_ERR_NOMEM, "out of memory");
        goto done;
    }
    blo_hypergrad_check chk = {0, NAN, NAN, NAN, NAN, 0, NAN, NAN};
    if (s->c.check_hypergrad > 0 && s->iter % s->c.check_hypergrad == 0 &&
        (st = blo_solver_check_hypergrad(s, s->c.check_directions, &chk)))
        goto done;
    double norm = 0;
    st = hypergrad_into(s, hx, hy0, &norm);
    if (st) goto done;
    if (!isfinite(s->last_upper) ||
        (s->c.diverge_limit > 0 && fabs(s->last_upper) > s->c.diverge_limit)) {
        st = blo__method_fail(&s->env, BLO_ERR_NUMERIC,
                              "iteration %lld: the upper objective is %g%s; the run diverged "
                              "(lower the step sizes)",
                              (long long)s->iter, s->last_upper,
                              isfinite(s->last_upper) ? ", beyond the divergence limit" : "");
        goto done;
    }
    s->outer_t++;
    if ((st = outer_step(s, &s->c.outer, s->outer_t, s->nx, s->x, hx, s->xm, s->xv,
                         "the outer step")))
        goto done;
    for (int i = 0; i < s->nx; i++) {
        double lo = s->p.x_lo_each ? s->p.x_lo_each[i] : s->p.x_lo;
        double hi = s->p.x_hi_each ? s->p.x_hi_each[i] : s->p.x_hi;
        if (isfinite(lo) || isfinite(hi)) { /* values only, in the scratch context */
            blo_mark mk = blo_ctx_mark(s->sctx);
            int old = blo_ctx_set_recording(s->sctx, 0);
            blo_tensor *cl = blo_clamp(s->sctx, s->x[i], lo, hi);
            st = cl ? blo_copy_into(s->x[i], cl) : blo_ctx_status(s->sctx);
            blo_ctx_set_recording(s->sctx, old);
            blo_ctx_rewind(s->sctx, mk);
            if (st) {
                blo__method_ctx_fail(&s->env, "the bounds on x");
                goto done;
            }
        }
    }
    if (s->p.project_x && (st = s->p.project_x(s->nx, s->x, s->p.user))) {
        blo__method_fail(&s->env, st, "iteration %lld: the projection of x failed",
                         (long long)s->iter);
        goto done;
    }
    if (hy0 && (st = outer_step(s, &s->c.init_opt, s->outer_t, s->ny, s->y0, hy0, s->y0m, s->y0v,
                                "the step of the learned y_0")))
        goto done;
    if (hy0 && s->p.project_y && (st = project_y0(s))) goto done;
    if (rec) {
        rec->iter = s->iter;
        rec->upper = s->last_upper;
        rec->lower = s->last_lower;
        rec->hypergrad_norm = norm;
        rec->seconds = elapsed(s);
        rec->peak_bytes = blo_ctx_peak_bytes(s->sctx);
        rec->solve_residual = s->last_solve_residual;
        rec->solve_iters = s->last_solve_iters;
        rec->check_cosine = chk.cosine;
        rec->check_rel_error = chk.rel_error;
        rec->check_rhg_cosine = chk.rhg_cosine;
        rec->check_rhg_rel_error = chk.rhg_rel_error;
    }
    s->iter++;
done:
    return st;
}

blo_status blo_solver_run(blo_solver *s) {
    if (!s) return BLO_ERR_INVALID;
    blo_status st = BLO_OK;
    while (s->iter < s->c.outer_iters) {
        blo_record rec;
        st = blo_solver_step(s, &rec);
        if (st) break;
        int stop = s->c.on_record ? s->c.on_record(&rec, s->c.record_user) : 0;
        if (s->c.checkpoint_path && s->c.checkpoint_every > 0 &&
            s->iter % s->c.checkpoint_every == 0 && (st = blo_solver_save(s, s->c.checkpoint_path)))
            break;
        if (stop || (s->c.stop_hypergrad > 0 && rec.hypergrad_norm < s->c.stop_hypergrad)) break;
    }
    if (s->c.checkpoint_path) {
        blo_status st2 = blo_solver_save(s, s->c.checkpoint_path);
        if (!st) st = st2;
    }
    return st;
}

/* ---- Checkpoints -------------------------------------------------------------------------------
 * Layout (little-endian host order): magic "BLOCKPT1", method name (64 bytes), then int64
 * counts nx, ny, n_state; iter, outer_t; double seconds; the RNG state; then every tensor
 * group as [dtype, ndim, shape..., raw data]; with inner_state = carry the carried inner
 * optimizer's moments are the last group and its step count (int64) follows them. */

#define CKPT_MAGIC "BLOCKPT1"

/* Every tensor group of the state, in file order. */
static int state_groups(blo_solver *s, blo_tensor **const *groups, int *sizes) {
    int g = 0;
    blo_tensor **const list[] = {s->x, s->y, s->y0, s->xm, s->xv, s->y0m, s->y0v, s->ms, s->cs};
    int n[] = {s->nx,
               s->ny,
               s->ny,
               s->nx,
               s->nx,
               s->y0m ? s->ny : 0,
               s->y0v ? s->ny : 0,
               s->ms ? s->m->n_state_groups * s->ny : 0,
               s->n_cs};
    for (int i = 0; i < 9; i++) {
        ((blo_tensor ***)groups)[g] = list[i];
        sizes[g++] = n[i];
    }
    return g;
}

blo_status blo_solver_save(blo_solver *s, const char *path) {
    if (!s || !path) return BLO_ERR_INVALID;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return blo__method_fail(&s->env, BLO_ERR_INVALID, "checkpoint path too long");
    FILE *f = fopen(tmp, "wb");
    if (!f) return blo__method_fail(&s->env, BLO_ERR_IO, "%s: cannot write the checkpoint", tmp);
    char name[64] = {0};
    snprintf(name, sizeof name, "%s", s->m->info.name);
    int64_t counts[5] = {s->nx, s->ny, s->m->n_state_groups, s->iter, s->outer_t};
    double secs = elapsed(s);
    bool ok = fwrite(CKPT_MAGIC, 1, 8, f) == 8 && fwrite(name, 1, 64, f) == 64 &&
              fwrite(counts, sizeof counts, 1, f) == 1 && fwrite(&secs, sizeof secs, 1, f) == 1 &&
              fwrite(&s->rng, sizeof s->rng, 1, f) == 1;
    blo_tensor **groups[9];
    int sizes[9];
    int ng = state_groups(s, groups, sizes);
    for (int g = 0; ok && g < ng; g++)
        for (int i = 0; ok && i < sizes[g]; i++)
            ok = blo__tensor_write(f, groups[g][i]);
    if (ok && s->c.inner_state == BLO_INNER_STATE_CARRY)
        ok = fwrite(&s->inner_t, sizeof s->inner_t, 1, f) == 1;
    ok = (fflush(f) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return blo__method_fail(&s->env, BLO_ERR_IO, "%s: writing the checkpoint failed", path);
    }
    return BLO_OK;
}

blo_status blo_solver_load(blo_solver *s, const char *path) {
    if (!s || !path) return BLO_ERR_INVALID;
    FILE *f = fopen(path, "rb");
    if (!f) return blo__method_fail(&s->env, BLO_ERR_IO, "%s: cannot open the checkpoint", path);
    char magic[8], name[64];
    int64_t counts[5];
    double secs;
    blo_rng rng;
    int64_t inner_t = 0;
    char why[128] = "truncated";
    bool ok = fread(magic, 1, 8, f) == 8 && fread(name, 1, 64, f) == 64 &&
              fread(counts, sizeof counts, 1, f) == 1 && fread(&secs, sizeof secs, 1, f) == 1 &&
              fread(&rng, sizeof rng, 1, f) == 1;
    if (ok && memcmp(magic, CKPT_MAGIC, 8)) {
        snprintf(why, sizeof why, "not a blo checkpoint (bad magic)");
        ok = false;
    }
    name[63] = 0;
    if (ok && strcmp(name, s->m->info.name)) {
        snprintf(why, sizeof why, "it was written by method '%s', this run uses '%s'", name,
                 s->m->info.name);
        ok = false;
    }
    if (ok && (counts[0] != s->nx || counts[1] != s->ny || counts[2] != s->m->n_state_groups)) {
        snprintf(why, sizeof why, "it holds %lld x and %lld y tensors, the problem %d and %d",
                 (long long)counts[0], (long long)counts[1], s->nx, s->ny);
        ok = false;
    }
    blo_tensor **groups[9];
    int sizes[9];
    int ng = state_groups(s, groups, sizes);
    /* Two passes: check every header and size first, then read, so that a malformed file
     * leaves the solver's state as it was. */
    long start = ftell(f), end = -1;
    if (ok &&
        (start < 0 || fseek(f, 0, SEEK_END) || (end = ftell(f)) < 0 || fseek(f, start, SEEK_SET))) {
        snprintf(why, sizeof why, "cannot seek in the file");
        ok = false;
    }
    for (int pass = 1; pass >= 0 && ok; pass--) {
        if (!pass && fseek(f, start, SEEK_SET)) {
            snprintf(why, sizeof why, "cannot seek in the file");
            ok = false;
        }
        int g = 0;
        for (; ok && g < ng; g++)
            for (int i = 0; ok && i < sizes[g]; i++)
                ok = blo__tensor_read(f, groups[g][i], pass, end, why, sizeof why);
        if (s->c.inner_state == BLO_INNER_STATE_CARRY &&
            ((!ok && g == ng && !strcmp(why, "truncated")) ||
             (ok && fread(&inner_t, sizeof inner_t, 1, f) != 1))) {
            ok = false;
            snprintf(why, sizeof why,
                     "it holds no carried inner optimizer state (written with inner_state "
                     "reset?)");
        }
    }
    fclose(f);
    if (!ok) return blo__method_fail(&s->env, BLO_ERR_FORMAT, "%s: %s", path, why);
    s->iter = counts[3];
    s->outer_t = counts[4];
    s->rng = rng;
    if (s->c.inner_state == BLO_INNER_STATE_CARRY) s->inner_t = inner_t;
    s->seconds_before = secs;
    clock_gettime(CLOCK_MONOTONIC, &s->t0);
    return BLO_OK;
}

/* ---- Accessors
 * ------------------------------------------------------------------------------------ */

int64_t blo_solver_iter(const blo_solver *s) {
    return s ? s->iter : 0;
}

void blo_solver_values(const blo_solver *s, double *upper, double *lower) {
    if (upper) *upper = s ? s->last_upper : NAN;
    if (lower) *lower = s ? s->last_lower : NAN;
}

blo_tensor *blo_solver_x(const blo_solver *s, int i) {
    return s && i >= 0 && i < s->nx ? s->x[i] : NULL;
}

blo_tensor *blo_solver_y(const blo_solver *s, int i) {
    return s && i >= 0 && i < s->ny ? s->y[i] : NULL;
}

blo_tensor *blo_solver_y0(const blo_solver *s, int i) {
    return s && i >= 0 && i < s->ny ? s->y0[i] : NULL;
}

blo_tensor *blo_solver_inner_state(const blo_solver *s, int which, int i) {
    if (!s || !s->cm || i < 0 || i >= s->ny) return NULL;
    return which == 0 ? s->cm[i] : which == 1 ? s->cv[i] : NULL;
}

int64_t blo_solver_inner_t(const blo_solver *s) {
    return s && s->c.inner_state == BLO_INNER_STATE_CARRY ? s->inner_t : -1;
}

blo_status blo_solver_set_inner_t(blo_solver *s, int64_t t) {
    if (!s) return BLO_ERR_INVALID;
    if (s->c.inner_state != BLO_INNER_STATE_CARRY || t < 0)
        return blo__method_fail(&s->env, BLO_ERR_INVALID, "blo_solver_set_inner_t: %s",
                                t < 0 ? "the step count must be >= 0"
                                      : "the inner optimizer's state is carried only with "
                                        "inner_state carry");
    s->inner_t = t;
    return BLO_OK;
}
