/* testutil.h — assertions and derivative oracles shared by the tests.
 *
 * Every check counts as passed or failed; tu_finish() prints "N passed, M failed" and
 * returns the process exit code (non-zero when anything failed), so CTest sees failures. */
#ifndef BLO_TESTUTIL_H
#define BLO_TESTUTIL_H

#include "blo/blo.h"

#include <stdio.h>

extern int tu_passed, tu_failed;

#define TU_CHECK(cond, ...)                                                                  \
    do {                                                                                     \
        if (cond) {                                                                          \
            tu_passed++;                                                                     \
        } else {                                                                             \
            tu_failed++;                                                                     \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                             \
            fprintf(stderr, __VA_ARGS__);                                                    \
            fprintf(stderr, "\n");                                                           \
        }                                                                                    \
    } while (0)

/* |a - b| <= atol + rtol |b| */
int tu_close(double a, double b, double rtol, double atol);
/* Checks two tensors elementwise; `what` names the comparison in a failure message. Returns
 * the largest relative error seen. */
double tu_check_close(const blo_tensor *got, const blo_tensor *want, double rtol, double atol,
                      const char *what);
/* Same against a plain array of n doubles. */
double tu_check_close_f64(const blo_tensor *got, const double *want, double rtol, double atol,
                          const char *what);
/* The context must hold no error; prints it otherwise. */
void tu_check_ok(blo_ctx *ctx, const char *what);

/* A scalar function of n tensors built with blo ops (the inputs are given in the context
 * where the result must live). */
typedef blo_tensor *(*tu_fn)(blo_ctx *ctx, blo_tensor *const *in, void *env);

/* First order: blo_grad against central differences (float64 inputs), every element of every
 * input. Second order: for a random direction v, blo_hvp against central differences of the
 * gradient, (∇f(x + εv) - ∇f(x - εv)) / 2ε, and the symmetry ⟨u, Hv⟩ = ⟨Hu, v⟩.
 * check_hvp = 0 skips the second order. */
void tu_gradcheck(blo_ctx *ctx, const char *name, tu_fn f, void *env, int n,
                  blo_tensor *const *inputs, int check_hvp);

/* Random tensor in ctx, values uniform in [lo, hi), marked requires_grad. */
blo_tensor *tu_rand(blo_ctx *ctx, blo_rng *r, blo_dtype dt, int ndim, const int64_t *shape,
                    double lo, double hi);

/* max_i |a_i − b_i| / max_i |b_i| over n values. */
double tu_max_rel(int n, const double *a, const double *b);
/* blo_solver_new must refuse (p, c) with a message containing `needle`. */
void tu_expect_refused(const blo_problem *p, blo_config c, const char *needle);

int tu_finish(const char *suite);

#endif
