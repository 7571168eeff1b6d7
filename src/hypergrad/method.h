/* method.h — what a hypergradient method sees, and the toolkit methods are made of. Internal
 * to the library; user-written methods see the same environment through the accessors of
 * blo/bilevel.h.
 *
 * A method receives an environment (blo_method_env): the problem, the configuration, a
 * scratch context rewound before every hypergradient, the hyper-variables x, the LL start y_0,
 * the last y_T (values, the warm start), its own state tensors, the RNG and the outer
 * iteration; it writes dF/dx (and dF/dy_0 for a learned start), F and f at the y it ends on,
 * and that y. It never sees the outer loop (solve/), its optimizer or its checkpoints. */
#ifndef BLO_HYPERGRAD_METHOD_H
#define BLO_HYPERGRAD_METHOD_H

#include "../internal.h"
#include "../linalg/lists.h"
#include "blo/bilevel.h"

#include <stdarg.h>

/* A method: its registry entry (see blo_method_def in blo/bilevel.h). */
typedef blo_method_def blo_method;

struct blo_method_env {
    blo_problem p;
    blo_config c;
    const blo_method *m;
    blo_ctx *sctx; /* scratch: rewound at every hypergradient */
    int nx, ny;
    blo_tensor **x;  /* leaves with requires_grad (the outer loop's, do not write) */
    blo_tensor **y;  /* the last y_T (values): the warm start; the method leaves its y_T here */
    blo_tensor **y0; /* the LL start; leaves with requires_grad when learned */
    blo_tensor **ms; /* the method's own state: n_state_groups groups of ny tensors */
    blo_rng rng;     /* the run's generator (the outer loop saves it in checkpoints) */
    int64_t iter;    /* the outer iteration */
    double last_upper, last_lower; /* F and f at the y the hypergradient ends on (outputs) */
    double solve_residual;         /* an implicit method's linear solve: last residual norm */
    int64_t solve_iters;           /* and iterations (NAN and -1: no solve; outputs) */
    char *err;                     /* the message of a failure (errlen bytes, the owner's) */
    size_t errlen;
    /* inner_state = carry: the inner optimizer's state a warm trajectory starts from and its
     * end is kept in (the owner's tensors; NULL entries where the optimizer keeps none), and
     * its step count. */
    blo_tensor **cm, **cv;
    int64_t inner_t;
    struct blo_traj *fin; /* blo_env_unroll's last trajectory (in sctx), for blo_env_keep_y */
};

/* The registry (src/hypergrad/registry.c): built-in and registered methods. */
const blo_method *blo__method_find(const char *name);

/* Records a message in e->err (unless one is there) and returns st. */
blo_status blo__method_fail(blo_method_env *e, blo_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* The same with a va_list (for blo_env_fail). */
blo_status blo__method_vfail(blo_method_env *e, blo_status st, const char *fmt, va_list ap);
/* Reports a linear solve's result in the record (e->solve_residual, e->solve_iters). */
void blo__method_solve_report(blo_method_env *e, const blo_linalg_result *r);
/* Copies the scratch context's error into e->err, prefixed by `where`, and returns its status. */
blo_status blo__method_ctx_fail(blo_method_env *e, const char *where);

/* ---- The toolkit (src/hypergrad/common.c)
 * ----------------------------------------------------------- All tensors live in e->sctx unless
 * said otherwise. */

/* The inner optimizer's state along a trajectory: y and the moment buffers. */
typedef struct blo_traj {
    blo_tensor **y; /* ny tensors */
    blo_tensor **m; /* momentum / Adam first moment, or NULL entries */
    blo_tensor **v; /* Adam second moment, or NULL entries */
    int64_t t;      /* steps taken */
    int64_t t0;     /* the optimizer's steps before y_0 (a carried state; else 0): step t of the
                       trajectory is the optimizer's step t0 + t (Adam's bias correction) */
} blo_traj;

/* A trajectory starting at the LL start. learned y_0 and differentiate: the y0 leaves
 * themselves; otherwise fresh leaves holding y_0's values (requires_grad, so the inner
 * gradient can be taken). Buffers are zeros, or with inner_state = carry (warm starts only)
 * copies of the carried state's values (not differentiated, as the warm y is not). */
blo_status blo__traj_start(blo_method_env *e, blo_traj *tr, int differentiate);
/* A trajectory starting from copies of y's values (fresh leaves with requires_grad), whatever
 * the configured start; buffers are zeros. For methods that carry their own LL iterate. */
blo_status blo__traj_start_from(blo_method_env *e, blo_traj *tr, blo_tensor *const *y);
/* With init = BLO_INIT_FROM_X: hx[j] += (∂y_0/∂x_j)ᵀ dy0 (y_0 = init_y(x) rebuilt with a
 * graph), the path from x through the LL start that a method starting from y_0's values has
 * cut; hx[j] become new tensors. Does nothing for other starts. */
blo_status blo__init_vjp(blo_method_env *e, blo_tensor *const *dy0, blo_tensor **hx);
/* g[i] = ∂out/∂in[i] for a scalar out (zeros when out depends on none of in; in that
 * blo_grad leaves unreached inputs at zero too). `where` names the failure. */
blo_status blo__grad_or_zeros(blo_method_env *e, blo_tensor *out, int n, blo_tensor *const *in,
                              unsigned flags, blo_tensor **g, const char *where);
/* The lower objective's gradient g = ∇_y f(x, y) (with f's value in *f when f != NULL).
 * create: record the gradient's graph (to differentiate through it). */
blo_status blo__ll_grad(blo_method_env *e, blo_tensor *const *y, int64_t step, int create,
                        blo_tensor **g, double *f);
/* One inner step y ← Φ(y, g) with the configured optimizer, built with blo ops (recorded
 * when the context records), then project_y. */
blo_status blo__inner_step(blo_method_env *e, blo_traj *tr, blo_tensor *const *g);
/* Steps t = tr->t .. to-1. create = 1 records the whole trajectory (for reverse mode);
 * create = 0 computes values only and keeps memory flat (each new y is a fresh leaf). */
blo_status blo__unroll(blo_method_env *e, blo_traj *tr, int64_t to, int create);
/* F(x, y) as a tensor (recorded). */
blo_tensor *blo__upper(blo_method_env *e, blo_tensor *const *y, int64_t step);
/* f(x, y) as a tensor (recorded). */
blo_tensor *blo__lower(blo_method_env *e, blo_tensor *const *y, int64_t step);
/* Copies y's values into e->y (the state reported and warm-started from). */
void blo__keep_y(blo_method_env *e, blo_tensor *const *y);
/* With inner_state = carry: copies tr's optimizer state (m, v and t0 + t) into the carried
 * state the next warm trajectory starts from; nothing otherwise. */
void blo__keep_opt_state(blo_method_env *e, const blo_traj *tr);
/* blo__keep_y(tr->y) and blo__keep_opt_state(tr): a method ending on trajectory tr. */
void blo__keep_state(blo_method_env *e, const blo_traj *tr);
/* Fresh leaves in e->sctx holding copies of ts' values, with requires_grad. */
blo_status blo__leaf_copies(blo_method_env *e, int n, blo_tensor *const *ts, blo_tensor **out);
/* A zeroed array of n tensor pointers in e->sctx (NULL on failure). */
blo_tensor **blo__list(blo_method_env *e, int n);
/* Zeros shaped like ts, in e->sctx. */
blo_status blo__zeros_like(blo_method_env *e, int n, blo_tensor *const *ts, blo_tensor **out);
/* Finishes a method that went through a recorded trajectory: F at y_T, grads w.r.t. x (and
 * the learned y0 leaves when `with_y0`), f at y_T for the record, keep y_T. */
blo_status blo__finish_reverse(blo_method_env *e, blo_tensor *const *yT, int64_t step,
                               blo_tensor **hx, blo_tensor **hy0, int with_y0);

#endif
