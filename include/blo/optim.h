/* blo/optim.h — first-order optimizers written once, used two ways, and L-BFGS.
 *
 * SGD, momentum, Nesterov and Adam are written once with blo ops (src/optim/optim.c) and used
 *   - recorded (blo_opt_apply): y_new is built in a context with blo ops, so with recording
 *     on the step is differentiable — the inner dynamics y_{t+1} = Φ(x, y_t) of a bilevel
 *     problem, differentiated by rhg and its relatives;
 *   - values only (blo_opt_step): parameters and moments updated in place — the outer step of
 *     x, a learned LL start, baselines, pretraining.
 * With g the gradient plus weight decay (g + wd·y), lr the step size and t the step number
 * (1-based):
 *     SGD        y ← y − lr g
 *     momentum   m ← μ m + g;                 y ← y − lr m
 *     Nesterov   m ← μ m + g;                 y ← y − lr (g + μ m)
 *     Adam       m ← β₁ m + (1−β₁) g;  v ← β₂ v + (1−β₂) g²;
 *                y ← y − lr m̂ / (sqrt(v̂ + ε_root) + ε),  m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)
 * (Kingma & Ba, ICLR 2015; Nesterov as in Sutskever et al., ICML 2013 / PyTorch). ε_root =
 * 1e-16 keeps the derivative of the square root finite at v = 0 so that the recorded step can
 * be differentiated; the values-only step uses the same formula.
 *
 * L-BFGS (Nocedal, Math. Comp. 1980; Nocedal & Wright, Numerical Optimization, alg. 7.4):
 * limited-memory quasi-Newton minimisation of a smooth function of a flat double vector with
 * an Armijo backtracking line search.
 */
#ifndef BLO_OPTIM_H
#define BLO_OPTIM_H
#pragma GCC visibility push(default)

#include "blo/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum blo_opt_kind {
    BLO_OPT_SGD = 0,  /* y - lr g */
    BLO_OPT_MOMENTUM, /* m = μ m + g; y - lr m */
    BLO_OPT_NESTEROV, /* m = μ m + g; y - lr (g + μ m) */
    BLO_OPT_ADAM      /* bias-corrected; y - lr m̂ / (sqrt(v̂ + eps_root) + eps) */
} blo_opt_kind;

typedef struct blo_opt {
    blo_opt_kind kind;
    double lr;
    double momentum;     /* momentum / Nesterov μ */
    double beta1, beta2; /* Adam */
    double eps;          /* Adam */
    double weight_decay; /* adds wd·y to the gradient */
} blo_opt;

/* SGD with learning rate lr (other fields at their usual defaults: μ 0.9, β 0.9/0.999,
 * eps 1e-8, no weight decay). */
blo_opt blo_opt_sgd(double lr);
/* The same defaults with kind Adam. */
blo_opt blo_opt_adam(double lr);
/* Parses "sgd", "momentum", "nesterov", "adam"; returns -1 for an unknown name. */
int blo_opt_kind_parse(const char *name);
/* The name blo_opt_kind_parse reads ("?" for an unknown kind). Static storage. */
const char *blo_opt_kind_name(blo_opt_kind k);
/* NULL when o is usable (known kind, finite lr > 0, Adam's betas in [0, 1)), else a message
 * (static storage) naming what is wrong. */
const char *blo_opt_check(const blo_opt *o);

/* An optimizer's state for n tensors: the moment buffers (m: momentum / Adam's first moment,
 * v: Adam's second moment; NULL entries where the kind has none) and the steps taken. The
 * lists and tensors belong to whoever made them (blo_opt_state_init: the context it was
 * given). */
typedef struct blo_opt_state {
    int n;
    blo_tensor **m, **v;
    int64_t t;
} blo_opt_state;

/* Zeroed moments shaped like like[0..n) in ctx (m for momentum / Nesterov / Adam, v for Adam;
 * NULL entries otherwise), t = 0. The lists and tensors live in ctx. Returns BLO_OK, or
 * BLO_ERR_INVALID for bad arguments / BLO_ERR_NOMEM (the message in ctx). */
blo_status blo_opt_state_init(blo_ctx *ctx, const blo_opt *o, int n, blo_tensor *const *like,
                              blo_opt_state *st);

/* One differentiable step: y_new[i] = Φ(y[i], g[i]) built with blo ops in ctx (recorded when
 * ctx records and an input requires grad). st->m / st->v entries are replaced by the new
 * moments (tensors in ctx; the old ones are left as they were) and st->t is incremented.
 * lr: NULL for o->lr; else lr[i] multiplies y[i]'s step (a tensor broadcasting against y[i],
 * e.g. a learned step size — its gradient flows through the step). Returns BLO_OK or ctx's
 * error status (message in ctx); on failure st may hold some updated entries. */
blo_status blo_opt_apply(blo_ctx *ctx, const blo_opt *o, blo_opt_state *st, int n,
                         blo_tensor *const *y, blo_tensor *const *g, blo_tensor *const *lr,
                         blo_tensor **y_new);

/* One step on values, in place on params[i] and st's moments (which may live in any
 * long-lived context), not recorded. Temporaries go to `scratch`, which is rewound to where it
 * was before the call returns. grads[i] has params[i]'s shape; a NULL entry is a zero
 * gradient. Returns BLO_OK, or scratch's error status (message in scratch). */
blo_status blo_opt_step(blo_ctx *scratch, const blo_opt *o, blo_opt_state *st, int n,
                        blo_tensor *const *params, blo_tensor *const *grads);

/* ---- L-BFGS ------------------------------------------------------------------------------------
 */

/* f(x) and its gradient g (n doubles) at x. Return BLO_OK, or an error to stop the
 * minimisation with that status. */
typedef blo_status (*blo_lbfgs_fn)(const double *x, double *f, double *g, void *user);

typedef struct blo_lbfgs_opts {
    int memory;       /* pairs (s, y) kept; 0: 10 */
    int64_t max_iter; /* iterations at most (each at least one evaluation) */
    double tol;       /* converged when max_i |g_i| <= tol */
} blo_lbfgs_opts;

typedef struct blo_lbfgs_result {
    int64_t iters;   /* iterations taken */
    int64_t evals;   /* calls of fn */
    double f;        /* f at the returned x */
    double grad_max; /* max_i |g_i| there */
    int converged;   /* 1: tolerance met (or no decrease left at this precision); 0: budget */
} blo_lbfgs_result;

/* Minimises fn from x (n doubles, updated in place to the best point found). Work space is
 * allocated with blo_malloc and freed before it returns. res (optional) receives the figures.
 * Returns BLO_OK (also when the budget ran out: see res->converged), BLO_ERR_INVALID for bad
 * arguments, BLO_ERR_NOMEM, or the first error fn returned. */
blo_status blo_lbfgs(int64_t n, double *x, blo_lbfgs_fn fn, void *user, const blo_lbfgs_opts *opts,
                     blo_lbfgs_result *res);

#ifdef __cplusplus
}
#endif
#pragma GCC visibility pop
#endif
