/* solver.h — the outer loop's state. Internal to the library. */
#ifndef BLO_SOLVER_H
#define BLO_SOLVER_H

#include "../hypergrad/method.h"

#include <time.h>

struct blo_solver {
    blo_problem p;
    blo_config c;
    const blo_method *m;
    blo_ctx *pctx; /* persistent: x, y, y0, optimizer and method state */
    blo_ctx *sctx; /* scratch: rewound at every hypergradient */
    int nx, ny;
    blo_tensor **x;          /* leaves with requires_grad */
    blo_tensor **y;          /* the last y_T (values) */
    blo_tensor **y0;         /* the LL start; leaves with requires_grad when learned */
    blo_tensor **ms;         /* method state: n_state_groups groups of ny tensors (y's shapes) */
    blo_tensor **xm, **xv;   /* outer optimizer moments for x */
    blo_tensor **y0m, **y0v; /* for a learned y_0 */
    int64_t outer_t;         /* outer optimizer steps taken */
    blo_rng rng;
    int64_t iter;
    double seconds_before; /* time spent before a resume */
    struct timespec t0;
    double last_upper, last_lower;
    double last_solve_residual; /* the last hypergradient's linear solve (NAN: none) */
    int64_t last_solve_iters;
    /* inner_state = carry: the inner optimizer's state (cm, cv: ny entries each, NULL where
     * it keeps none; cs: the n_cs tensors that exist, m's then v's) and its step count. */
    blo_tensor **cm, **cv, **cs;
    int n_cs;
    int64_t inner_t;
    blo_method_env env; /* what the method sees, refreshed every hypergradient */
    double **hx, **hy0; /* a step's hypergradients in double, kept from step to step: for a
                           large x (LDS's θ, 7.3 M entries) fresh buffers were faulted in anew
                           every step */
    char err[512];
};

#endif
