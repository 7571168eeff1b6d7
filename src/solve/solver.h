/* solver.h — the solver's state and the interface every hypergradient method implements.
 * Internal to the library. */
#ifndef BLO_SOLVER_H
#define BLO_SOLVER_H

#include "../internal.h"
#include "../linalg/lists.h"
#include "blo/bilevel.h"

#include <time.h>

typedef struct blo_method {
    blo_method_info info;
    /* Optional check at blo_solver_new (e.g. fhg's size limit); writes s->err on failure. */
    blo_status (*check)(blo_solver *s);
    /* Computes, in s->sctx, hx[i] = dF/dx_i for every hyper-variable and, when the start is
     * learned, hy0[i] = dF/dy0_i. Must set s->last_upper / s->last_lower (F and f at the
     * y it ends on) and leave that y's values in s->y (blo__keep_y). Methods that move y
     * themselves (single-loop ones) do so here. */
    blo_status (*hypergrad)(blo_solver *s, blo_tensor **hx, blo_tensor **hy0);
    /* Number of method-state tensor groups of y's shapes it keeps in s->mstate (saved in
     * checkpoints), allocated zeroed by the solver. */
    int n_state_groups;
} blo_method;

/* The registry (src/hypergrad/registry.c). */
const blo_method *blo__method_find(const char *name);

struct blo_solver {
    blo_problem p;
    blo_config c;
    const blo_method *m;
    blo_ctx *pctx; /* persistent: x, y, y0, optimizer and method state */
    blo_ctx *sctx; /* scratch: rewound at every hypergradient */
    int nx, ny;
    blo_tensor **x;   /* leaves with requires_grad */
    blo_tensor **y;   /* the last y_T (values) */
    blo_tensor **y0;  /* the LL start; leaves with requires_grad when learned */
    blo_tensor **ms;  /* method state: n_state_groups groups of ny tensors (y's shapes) */
    blo_tensor **xm, **xv;   /* outer optimizer moments for x */
    blo_tensor **y0m, **y0v; /* for a learned y_0 */
    int64_t outer_t;         /* outer optimizer steps taken */
    blo_rng rng;
    int64_t iter;
    double seconds_before; /* time spent before a resume */
    struct timespec t0;
    double last_upper, last_lower;
    char err[512];
};

/* Records a message in s->err and returns st. */
blo_status blo__solver_fail(blo_solver *s, blo_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Copies the scratch context's error into s->err and returns its status. */
blo_status blo__solver_ctx_fail(blo_solver *s, const char *where);

/* ---- Building blocks for methods (src/hypergrad/common.c) --------------------------------------
 * All tensors live in s->sctx unless said otherwise. */

/* The inner optimizer's state along a trajectory: y and the moment buffers. */
typedef struct blo_traj {
    blo_tensor **y; /* ny tensors */
    blo_tensor **m; /* momentum / Adam first moment, or NULL entries */
    blo_tensor **v; /* Adam second moment, or NULL entries */
    int64_t t;      /* steps taken */
} blo_traj;

/* A trajectory starting at the LL start. learned y_0 and differentiate: the y0 leaves
 * themselves; otherwise fresh leaves holding y_0's values (requires_grad, so the inner
 * gradient can be taken). Buffers are zeros. */
blo_status blo__traj_start(blo_solver *s, blo_traj *tr, int differentiate);
/* A trajectory starting from copies of y's values (fresh leaves with requires_grad), whatever
 * the configured start; buffers are zeros. For methods that carry their own LL iterate. */
blo_status blo__traj_start_from(blo_solver *s, blo_traj *tr, blo_tensor *const *y);
/* With init = BLO_INIT_FROM_X: hx[j] += (∂y_0/∂x_j)ᵀ dy0 (y_0 = init_y(x) rebuilt with a
 * graph), the path from x through the LL start that a method starting from y_0's values has
 * cut; hx[j] become new tensors. Does nothing for other starts. */
blo_status blo__init_vjp(blo_solver *s, blo_tensor *const *dy0, blo_tensor **hx);
/* g[i] = ∂out/∂in[i] for a scalar out (zeros when out depends on none of in; in that
 * blo_grad leaves unreached inputs at zero too). `where` names the failure. */
blo_status blo__grad_or_zeros(blo_solver *s, blo_tensor *out, int n, blo_tensor *const *in,
                              unsigned flags, blo_tensor **g, const char *where);
/* The lower objective's gradient g = ∇_y f(x, y) (with f's value in *f when f != NULL).
 * create: record the gradient's graph (to differentiate through it). */
blo_status blo__ll_grad(blo_solver *s, blo_tensor *const *y, int64_t step, int create,
                        blo_tensor **g, double *f);
/* One inner step y ← Φ(y, g) with the configured optimizer, built with blo ops (recorded
 * when the context records), then project_y. */
blo_status blo__inner_step(blo_solver *s, blo_traj *tr, blo_tensor *const *g);
/* Steps t = tr->t .. to-1. create = 1 records the whole trajectory (for reverse mode);
 * create = 0 computes values only and keeps memory flat (each new y is a fresh leaf). */
blo_status blo__unroll(blo_solver *s, blo_traj *tr, int64_t to, int create);
/* F(x, y) as a tensor (recorded). */
blo_tensor *blo__upper(blo_solver *s, blo_tensor *const *y, int64_t step);
/* f(x, y) as a tensor (recorded). */
blo_tensor *blo__lower(blo_solver *s, blo_tensor *const *y, int64_t step);
/* Copies y's values into s->y (the state reported and warm-started from). */
void blo__keep_y(blo_solver *s, blo_tensor *const *y);
/* Fresh leaves in s->sctx holding copies of ts' values, with requires_grad. */
blo_status blo__leaf_copies(blo_solver *s, int n, blo_tensor *const *ts, blo_tensor **out);
/* A zeroed array of n tensor pointers in s->sctx (NULL on failure). */
blo_tensor **blo__list(blo_solver *s, int n);
/* Zeros shaped like ts, in s->sctx. */
blo_status blo__zeros_like(blo_solver *s, int n, blo_tensor *const *ts, blo_tensor **out);
/* Finishes a method that went through a recorded trajectory: F at y_T, grads w.r.t. x (and
 * the learned y0 leaves when `with_y0`), f at y_T for the record, keep y_T. */
blo_status blo__finish_reverse(blo_solver *s, blo_tensor *const *yT, int64_t step,
                               blo_tensor **hx, blo_tensor **hy0, int with_y0);

#endif
