/* solver.c — the outer loop: the solver's state, one hypergradient, the outer optimizer
 * step with projection, stopping and divergence rules, the per-iteration record, and
 * checkpoint / resume of the whole state. */
#include "solver.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- Configuration ------------------------------------------------------------------------- */

static const char *const INIT_NAMES[] = {"fixed", "warm", "learned", "from_x"};

int blo_init_kind_parse(const char *name) {
    for (int i = 0; name && i < 4; i++)
        if (!strcmp(name, INIT_NAMES[i])) return i;
    return -1;
}

const char *blo_init_kind_name(blo_init_kind k) {
    return (unsigned)k < 4 ? INIT_NAMES[k] : "?";
}

blo_config blo_config_default(void) {
    blo_config c;
    memset(&c, 0, sizeof c);
    c.method = "rhg";
    c.inner = blo_opt_sgd(0.1);
    c.inner_steps = 20;
    c.lr_x = -1;
    c.init = BLO_INIT_FIXED;
    c.init_opt = blo_opt_sgd(0.03);
    c.outer = blo_opt_adam(0.01);
    c.outer_iters = 100;
    c.K = 10;
    c.tol = 1e-10;
    c.alpha = 0.5;
    c.eta = 0.5;
    c.fd_radius = 0.01;
    c.upper_lr = 0.1;
    c.max_fhg_dim = 4096;
    return c;
}

/* ---- Errors --------------------------------------------------------------------------------- */

blo_status blo__solver_fail(blo_solver *s, blo_status st, const char *fmt, ...) {
    if (!s->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->err, sizeof s->err, fmt, ap);
        va_end(ap);
    }
    return st;
}

blo_status blo__solver_ctx_fail(blo_solver *s, const char *where) {
    blo_status st = blo_ctx_status(s->sctx);
    if (!st) st = BLO_ERR_INVALID;
    return blo__solver_fail(s, st, "%s: %s", where, blo_ctx_error(s->sctx));
}

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
    e->err = s->err;
    e->errlen = sizeof s->err;
}

/* What the method changed: the RNG's draws and F, f at its y_T. */
static void env_end(blo_solver *s) {
    s->rng = s->env.rng;
    s->last_upper = s->env.last_upper;
    s->last_lower = s->env.last_lower;
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
    if (c->inner_steps < 0 || c->outer_iters < 0 || (unsigned)c->init > BLO_INIT_FROM_X) {
        snprintf(err, errlen,
                 "configuration: inner_steps, outer_iters must be >= 0 and init known");
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
    blo_rng_seed(&s->rng, c->seed);
    s->last_upper = s->last_lower = NAN;
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

void blo_solver_free(blo_solver *s) {
    if (!s) return;
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
    if (!hxl || !hyl) return blo__solver_ctx_fail(s, "hypergradient");
    for (int i = 0; i < s->ny; i++)
        hyl[i] = NULL;
    env_begin(s);
    blo_status st = s->m->hypergrad(&s->env, hxl, hyl);
    env_end(s);
    if (st) {
        if (!s->err[0]) blo__solver_ctx_fail(s, s->m->info.name);
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
            return blo__solver_fail(s, BLO_ERR_INVALID, "%s returned no gradient for x[%d]",
                                    s->m->info.name, i);
        blo_tensor_to_f64(hxl[i], hx_out[i]);
        for (int64_t k = 0; k < n; k++) {
            if (!isfinite(hx_out[i][k]))
                return blo__solver_fail(s, BLO_ERR_NUMERIC,
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
    return st ? blo__solver_ctx_fail(s, what) : BLO_OK;
}

/* A learned start is a point of the LL's feasible set like every y_t, so it is projected
 * too; left outside, it could sit where the projection's derivative is zero and never move
 * again. Values only, in the scratch context (rewound by the next hypergradient). */
static blo_status project_y0(blo_solver *s) {
    int old = blo_ctx_set_recording(s->sctx, 0);
    blo_status st = BLO_OK;
    for (int i = 0; i < s->ny && !st; i++) {
        blo_tensor *p = s->p.project_y(s->sctx, i, s->y0[i], s->p.user);
        if (!p)
            st = blo__solver_ctx_fail(s, "projecting the learned y_0");
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
    double **hx = alloc_bufs(s->nx, s->x);
    double **hy0 = s->c.init == BLO_INIT_LEARNED ? alloc_bufs(s->ny, s->y) : NULL;
    if (!hx || (s->c.init == BLO_INIT_LEARNED && !hy0)) {
        st = blo__solver_fail(s, BLO_ERR_NOMEM, "out of memory");
        goto done;
    }
    double norm = 0;
    st = hypergrad_into(s, hx, hy0, &norm);
    if (st) goto done;
    if (!isfinite(s->last_upper) ||
        (s->c.diverge_limit > 0 && fabs(s->last_upper) > s->c.diverge_limit)) {
        st = blo__solver_fail(s, BLO_ERR_NUMERIC,
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
        if (isfinite(s->p.x_lo) || isfinite(s->p.x_hi)) {
            int64_t n = blo_tensor_numel(s->x[i]);
            for (int64_t k = 0; k < n; k++) {
                double v = blo_tensor_get(s->x[i], k);
                blo_tensor_set(s->x[i], k,
                               v < s->p.x_lo ? s->p.x_lo : (v > s->p.x_hi ? s->p.x_hi : v));
            }
        }
    }
    if (s->p.project_x && (st = s->p.project_x(s->nx, s->x, s->p.user))) {
        blo__solver_fail(s, st, "iteration %lld: the projection of x failed", (long long)s->iter);
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
    }
    s->iter++;
done:
    free_bufs(s->nx, hx);
    free_bufs(s->ny, hy0);
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
 * group as [dtype, ndim, shape..., raw data]. */

#define CKPT_MAGIC "BLOCKPT1"

static bool write_tensor(FILE *f, const blo_tensor *t) {
    int64_t hdr[2 + BLO_MAX_DIMS] = {t->dtype, t->ndim};
    for (int i = 0; i < t->ndim; i++)
        hdr[2 + i] = t->shape[i];
    size_t n = (size_t)blo_tensor_numel(t);
    return fwrite(hdr, sizeof(int64_t), 2 + (size_t)t->ndim, f) == 2 + (size_t)t->ndim &&
           fwrite(t->data, blo_dtype_size(t->dtype), n, f) == n;
}

/* Checks the next tensor's header against t; reads its values into t, or with dry = 1 only
 * skips them (checking that the file holds them: end is the file's size). */
static bool read_tensor(FILE *f, blo_tensor *t, int dry, long end, char *why, size_t n) {
    int64_t hdr[2 + BLO_MAX_DIMS];
    if (fread(hdr, sizeof(int64_t), 2, f) != 2) {
        snprintf(why, n, "truncated");
        return false;
    }
    if (hdr[0] != t->dtype || hdr[1] != t->ndim) {
        snprintf(why, n, "a tensor's dtype or rank differs from the problem's");
        return false;
    }
    if (fread(hdr + 2, sizeof(int64_t), (size_t)t->ndim, f) != (size_t)t->ndim) {
        snprintf(why, n, "truncated");
        return false;
    }
    for (int i = 0; i < t->ndim; i++)
        if (hdr[2 + i] != t->shape[i]) {
            snprintf(why, n, "a tensor's shape differs from the problem's");
            return false;
        }
    size_t cnt = (size_t)blo_tensor_numel(t), bytes = cnt * blo_dtype_size(t->dtype);
    if (dry) {
        long pos = ftell(f);
        if (pos < 0 || (size_t)(end - pos) < bytes || fseek(f, (long)bytes, SEEK_CUR)) {
            snprintf(why, n, "truncated");
            return false;
        }
        return true;
    }
    if (fread(t->data, blo_dtype_size(t->dtype), cnt, f) != cnt) {
        snprintf(why, n, "truncated");
        return false;
    }
    return true;
}

/* Every tensor group of the state, in file order. */
static int state_groups(blo_solver *s, blo_tensor **const *groups, int *sizes) {
    int g = 0;
    blo_tensor **const list[] = {s->x, s->y, s->y0, s->xm, s->xv, s->y0m, s->y0v, s->ms};
    int n[] = {s->nx,
               s->ny,
               s->ny,
               s->nx,
               s->nx,
               s->y0m ? s->ny : 0,
               s->y0v ? s->ny : 0,
               s->ms ? s->m->n_state_groups * s->ny : 0};
    for (int i = 0; i < 8; i++) {
        ((blo_tensor ***)groups)[g] = list[i];
        sizes[g++] = n[i];
    }
    return g;
}

blo_status blo_solver_save(blo_solver *s, const char *path) {
    if (!s || !path) return BLO_ERR_INVALID;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return blo__solver_fail(s, BLO_ERR_INVALID, "checkpoint path too long");
    FILE *f = fopen(tmp, "wb");
    if (!f) return blo__solver_fail(s, BLO_ERR_IO, "%s: cannot write the checkpoint", tmp);
    char name[64] = {0};
    snprintf(name, sizeof name, "%s", s->m->info.name);
    int64_t counts[5] = {s->nx, s->ny, s->m->n_state_groups, s->iter, s->outer_t};
    double secs = elapsed(s);
    bool ok = fwrite(CKPT_MAGIC, 1, 8, f) == 8 && fwrite(name, 1, 64, f) == 64 &&
              fwrite(counts, sizeof counts, 1, f) == 1 && fwrite(&secs, sizeof secs, 1, f) == 1 &&
              fwrite(&s->rng, sizeof s->rng, 1, f) == 1;
    blo_tensor **groups[8];
    int sizes[8];
    int ng = state_groups(s, groups, sizes);
    for (int g = 0; ok && g < ng; g++)
        for (int i = 0; ok && i < sizes[g]; i++)
            ok = write_tensor(f, groups[g][i]);
    ok = (fflush(f) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return blo__solver_fail(s, BLO_ERR_IO, "%s: writing the checkpoint failed", path);
    }
    return BLO_OK;
}

blo_status blo_solver_load(blo_solver *s, const char *path) {
    if (!s || !path) return BLO_ERR_INVALID;
    FILE *f = fopen(path, "rb");
    if (!f) return blo__solver_fail(s, BLO_ERR_IO, "%s: cannot open the checkpoint", path);
    char magic[8], name[64];
    int64_t counts[5];
    double secs;
    blo_rng rng;
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
    blo_tensor **groups[8];
    int sizes[8];
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
        for (int g = 0; ok && g < ng; g++)
            for (int i = 0; ok && i < sizes[g]; i++)
                ok = read_tensor(f, groups[g][i], pass, end, why, sizeof why);
    }
    fclose(f);
    if (!ok) return blo__solver_fail(s, BLO_ERR_FORMAT, "%s: %s", path, why);
    s->iter = counts[3];
    s->outer_t = counts[4];
    s->rng = rng;
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
