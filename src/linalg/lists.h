/* lists.h — vector algebra on lists of tensors (a model's parameter groups as one vector),
 * values only, through each tensor's backend (blo__vec_dot / axpy / scale). Same shapes and
 * float dtypes are the caller's to ensure. Internal to the library. */
#ifndef BLO_LINALG_LISTS_H
#define BLO_LINALG_LISTS_H

#include "../internal.h"

/* Σ ⟨a_i, b_i⟩ in double. */
double blo__dot_list(int n, blo_tensor *const *a, blo_tensor *const *b);
/* ‖(t_0, …, t_{n-1})‖₂ as one vector. */
double blo__norm_list(int n, blo_tensor *const *t);
/* y_i += a x_i and y_i *= a, in place. */
void blo__axpy_list(int n, double a, blo_tensor *const *x, blo_tensor *const *y);
void blo__scale_list(int n, double a, blo_tensor *const *y);
/* y_i ← x_i's values. */
void blo__copy_list(int n, blo_tensor *const *x, blo_tensor *const *y);
/* Solves M Z = R in place for k right-hand sides (n×n row-major M, overwritten; Z [n, k]
 * row-major holds R on entry) by Gaussian elimination with partial pivoting. Returns the
 * smallest |pivot|: 0 for a singular M (Z is then left partly eliminated). */
double blo__dense_solve(int n, double *M, double *Z, int k);
/* A list of n new tensors in ctx shaped like `like`, zeroed; NULL on failure (error in ctx). */
blo_tensor **blo__zeros_list(blo_ctx *ctx, int n, blo_tensor *const *like);

#include "blo/linalg.h"

/* out ← A(in), the callback's temporaries released (ctx rewound to where it was); a failure
 * without a message in ctx gets one naming `who`. */
blo_status blo__linop_apply(blo_ctx *ctx, const blo_linop *A, blo_tensor *const *in,
                            blo_tensor *const *out, const char *who);
/* Checks the arguments the solvers share; records a message naming `who`. */
blo_status blo__linalg_check(blo_ctx *ctx, const blo_linop *A, blo_tensor *const *x,
                             const blo_linalg_opts *o, const char *who);
#endif
