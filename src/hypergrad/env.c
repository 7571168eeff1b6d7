/* env.c — the public face of the method environment (blo/bilevel.h): accessors and the
 * toolkit for methods written outside the library, on top of method.h. */
#include "method.h"

blo_ctx *blo_env_ctx(blo_method_env *e) {
    return e ? e->sctx : NULL;
}

const blo_problem *blo_env_problem(const blo_method_env *e) {
    return e ? &e->p : NULL;
}

const blo_config *blo_env_config(const blo_method_env *e) {
    return e ? &e->c : NULL;
}

int blo_env_nx(const blo_method_env *e) {
    return e ? e->nx : 0;
}

int blo_env_ny(const blo_method_env *e) {
    return e ? e->ny : 0;
}

blo_tensor *blo_env_x(const blo_method_env *e, int i) {
    return e && i >= 0 && i < e->nx ? e->x[i] : NULL;
}

blo_tensor *blo_env_y(const blo_method_env *e, int i) {
    return e && i >= 0 && i < e->ny ? e->y[i] : NULL;
}

blo_tensor *blo_env_y0(const blo_method_env *e, int i) {
    return e && i >= 0 && i < e->ny ? e->y0[i] : NULL;
}

blo_tensor *blo_env_state(const blo_method_env *e, int group, int i) {
    if (!e || !e->ms || group < 0 || group >= e->m->n_state_groups || i < 0 || i >= e->ny)
        return NULL;
    return e->ms[group * e->ny + i];
}

blo_rng *blo_env_rng(blo_method_env *e) {
    return e ? &e->rng : NULL;
}

int64_t blo_env_iter(const blo_method_env *e) {
    return e ? e->iter : 0;
}

blo_status blo_env_fail(blo_method_env *e, blo_status st, const char *fmt, ...) {
    if (!e) return st;
    va_list ap;
    va_start(ap, fmt);
    blo__method_vfail(e, st, fmt, ap);
    va_end(ap);
    return st;
}

blo_status blo_env_unroll(blo_method_env *e, int differentiate, blo_tensor **yT) {
    if (!e || !yT) return BLO_ERR_INVALID;
    blo_traj tr;
    blo_status st = blo__traj_start(e, &tr, differentiate);
    if (!st) st = blo__unroll(e, &tr, e->c.inner_steps, differentiate);
    for (int i = 0; !st && i < e->ny; i++)
        yT[i] = tr.y[i];
    if (!st && (e->fin = blo__ctx_alloc(e->sctx, sizeof *e->fin))) /* for blo_env_keep_y */
        *e->fin = tr;
    return st;
}

blo_tensor *blo_env_upper(blo_method_env *e, blo_tensor *const *y) {
    return e && y ? blo__upper(e, y, e->c.inner_steps) : NULL;
}

blo_tensor *blo_env_lower(blo_method_env *e, blo_tensor *const *y) {
    return e && y ? blo__lower(e, y, e->c.inner_steps) : NULL;
}

blo_status blo_env_lower_grad(blo_method_env *e, blo_tensor *const *y, int create, blo_tensor **g) {
    if (!e || !y || !g) return BLO_ERR_INVALID;
    return blo__ll_grad(e, y, e->c.inner_steps, create, g, NULL);
}

blo_status blo_env_finish_reverse(blo_method_env *e, blo_tensor *const *yT, blo_tensor **hx,
                                  blo_tensor **hy0) {
    if (!e || !yT || !hx) return BLO_ERR_INVALID;
    int with_y0 = e->c.init == BLO_INIT_LEARNED && hy0;
    blo_status st = blo__finish_reverse(e, yT, e->c.inner_steps, hx, hy0, with_y0);
    if (!st && e->fin) blo__keep_opt_state(e, e->fin);
    return st;
}

void blo_env_set_values(blo_method_env *e, double upper, double lower) {
    if (!e) return;
    e->last_upper = upper;
    e->last_lower = lower;
}

void blo_env_keep_y(blo_method_env *e, blo_tensor *const *y) {
    if (!e || !y) return;
    blo__keep_y(e, y);
    if (e->fin) blo__keep_opt_state(e, e->fin);
}

void blo_env_report_solve(blo_method_env *e, double residual, int64_t iters) {
    if (!e) return;
    e->solve_residual = residual;
    e->solve_iters = iters;
}
