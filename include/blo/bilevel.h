/* blo/bilevel.h — bilevel problems, their hypergradient methods and the outer loop.
 *
 *     min_x  F(x, y*(x))          upper level (UL)
 *     s.t.   y*(x) ∈ argmin_y f(x, y)   lower level (LL)
 *
 * A user states the problem once (blo_problem: the two objectives as callbacks that build
 * losses with blo ops, and the initial values of x and y), picks a method by name
 * (blo_config.method; blo_method_find lists the registry) and runs the outer loop
 * (blo_solver_run), or asks for one hypergradient (blo_solver_hypergrad).
 *
 * The lower level is approximated by T steps of a differentiable update map
 * y_{t+1} = Φ(x, y_t) — SGD, momentum, Nesterov or Adam on ∇_y f (blo/optim.h), or a map of
 * the user's own (blo_config.inner_update) — from a start y_0 that is fixed, warm-started
 * from the previous outer iteration, learned (a hyper-variable) or built from x. How
 * dF/dx = ∂F/∂x + (dy_T/dx)ᵀ ∂F/∂y is then computed is the method's business; users may
 * register methods of their own (blo_method_register) written on the environment and toolkit
 * declared below.
 */
#ifndef BLO_BILEVEL_H
#define BLO_BILEVEL_H
#pragma GCC visibility push(default)

#include "blo/autodiff.h"
#include "blo/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What an objective callback is being asked for. */
typedef struct blo_eval {
    int level;          /* 0: upper objective F, 1: lower objective f */
    int64_t outer_iter; /* the outer iteration (0-based) */
    int64_t inner_step; /* the inner step t for f; T (the last) for F; -1 outside the loop */
    blo_rng *rng;       /* the solver's generator (saved in checkpoints): use it to sample */
} blo_eval;
/* Sampling contract: every re-evaluation of an objective inside one hypergradient sees the same
 * draws of rng as the evaluation it repeats — a sampled minibatch stays the same — so that a
 * comparison of two values is a comparison on one sample: darts' f at y, y⁺ and y⁻, bome's two
 * terms of q = f(x, y) − f(x, θ_T), iaptt's F at the chosen step t* (scored, then
 * differentiated), the hypergradient check's evaluations of F(x ± h u, y_T). Successive inner
 * steps draw afresh. */

/* Builds a scalar loss (one element) in ctx from the hyper-variables x[0..nx) and the model
 * parameters y[0..ny) with blo ops. Must not keep references to ctx's tensors after it
 * returns. Returns NULL on failure (the error recorded in ctx). */
typedef blo_tensor *(*blo_objective_fn)(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                                        const blo_eval *ev, void *user);

/* A differentiable map applied to y_i after every inner step (a projection onto the LL
 * feasible set, e.g. blo_clamp), built with blo ops in ctx. It may read the hyper-variables
 * x[0..nx) (a feasible set that depends on x, e.g. ‖y‖ ≤ x_0); the methods that differentiate
 * through the inner steps follow that dependence. Returns the projected tensor (y itself when
 * nothing changes), or NULL on failure (the error recorded in ctx). */
typedef blo_tensor *(*blo_project_y_fn)(blo_ctx *ctx, int i, blo_tensor *y, blo_tensor *const *x,
                                        void *user);
/* Builds the LL start y_0[i] from the hyper-variables x with blo ops in ctx, used when
 * blo_config.init = BLO_INIT_FROM_X (MAML: y_0 = θ, broadcast to a meta-batch of tasks). It
 * is differentiated: the methods that reverse through the start (rhg, trhg with K = T,
 * rhg_ckpt, bda) follow its graph back to x, and first_order adds Jᵀ ∂F/∂y_T with J its
 * Jacobian (FOMAML). The result must have y[i]'s shape and dtype. Returns NULL on failure
 * (the error recorded in ctx). */
typedef blo_tensor *(*blo_init_y_fn)(blo_ctx *ctx, int i, blo_tensor *const *x, void *user);
/* An in-place projection of the hyper-variables' values after every outer step (not
 * differentiated). Return BLO_OK or an error. */
typedef blo_status (*blo_project_x_fn)(int nx, blo_tensor *const *x, void *user);

typedef struct blo_problem {
    int nx;
    blo_tensor *const *x; /* initial hyper-variables; the solver copies them */
    int ny;
    blo_tensor *const *y; /* initial LL parameters y_0; the solver copies them */
    blo_objective_fn upper;
    blo_objective_fn lower;
    void *user;
    /* Box bounds applied to every x after each outer step (±INFINITY: none). */
    double x_lo, x_hi;
    /* Optional per-tensor bounds: when set, x[i] is clipped to [x_lo_each[i], x_hi_each[i]]
     * instead of [x_lo, x_hi] (arrays of nx values, ±INFINITY: none; read by blo_solver_new,
     * which copies them). */
    const double *x_lo_each, *x_hi_each;
    blo_project_x_fn project_x; /* optional, after the box */
    blo_project_y_fn project_y; /* optional */
    blo_init_y_fn init_y;       /* the start built from x; required by BLO_INIT_FROM_X */
} blo_problem;

/* The optimizers (blo_opt: SGD, momentum, Nesterov, Adam) are declared in blo/optim.h. */

typedef enum blo_init_kind {
    BLO_INIT_FIXED = 0, /* every outer iteration starts the LL from the problem's y_0 */
    BLO_INIT_WARM,      /* from the last y_T of the previous outer iteration (not differentiated) */
    BLO_INIT_LEARNED,   /* y_0 is a hyper-variable, updated by its own optimizer on dF/dy_0
                           (rhg, trhg with K = T, rhg_ckpt, fhg, bda, iaptt, first_order; the
                           methods that take no derivative through y_0 refuse it) */
    BLO_INIT_FROM_X     /* y_0 = problem.init_y(x), rebuilt (differentiably) every iteration;
                           the implicit methods (cg, neumann, fixed_point, darts) start there
                           but take no gradient through it; the single-loop ones (bome,
                           soba, amm), which carry y from the problem's y_0, and fhg refuse
                           it */
} blo_init_kind;
/* What a warm-started trajectory does with the inner optimizer's state (its momentum or Adam
 * moments m, v and step count t). */
typedef enum blo_inner_state {
    BLO_INNER_STATE_RESET = 0, /* every outer iteration starts the inner optimizer afresh
                                  (m = v = 0, t = 0): with Adam, its first step moves every
                                  coordinate by about inner.lr */
    BLO_INNER_STATE_CARRY      /* with init = warm: the trajectory starts from the state the
                                  last one ended with (m, v, t as values, not differentiated,
                                  as the warm y is not), so K outer iterations of T inner steps
                                  are K·T steps of one run of the inner optimizer while x stays
                                  put. Needs the configured optimizer (not inner_update); the
                                  methods that carry y themselves (bome, soba, amm) refuse it;
                                  a registered method carries it when it unrolls with
                                  blo_env_unroll and ends with blo_env_keep_y or
                                  blo_env_finish_reverse. Seed it with blo_solver_inner_state /
                                  blo_solver_set_inner_t */
} blo_inner_state;
/* Parses "reset", "carry"; returns -1 for an unknown name. */
int blo_inner_state_parse(const char *name);
const char *blo_inner_state_name(blo_inner_state k);
/* Parses "fixed", "warm", "learned", "from_x"; returns -1 for an unknown name. */
int blo_init_kind_parse(const char *name);
const char *blo_init_kind_name(blo_init_kind k);

/* One line of the per-iteration record handed to blo_config.on_record. */
typedef struct blo_record {
    int64_t iter;          /* outer iteration just finished (0-based) */
    double upper;          /* F(x, y_T) at the start of the iteration's update */
    double lower;          /* f(x, y_T) */
    double hypergrad_norm; /* ‖dF/dx‖₂ over all hyper-variables */
    double seconds;        /* wall time since blo_solver_new (or since resume, plus saved) */
    size_t peak_bytes;     /* peak bytes of the iteration's scratch context */
    /* The implicit methods' linear solve (cg, neumann, fixed_point): the last residual norm
     * and the iterations (terms) done; NAN and -1 for a method without one. */
    double solve_residual;
    int64_t solve_iters;
    /* When the hypergradient was checked this iteration (blo_config.check_hypergrad): the
     * cosine and the relative error of the method's directional derivatives against finite
     * differences of the unrolled objective (blo_solver_check_hypergrad); NAN otherwise. */
    double check_cosine, check_rel_error;
    /* The same against rhg with check_rhg_steps inner steps; NAN when not run. */
    double check_rhg_cosine, check_rhg_rel_error;
} blo_record;
/* Return non-zero to stop the run early (e.g. a user's own stopping rule). */
typedef int (*blo_record_fn)(const blo_record *rec, void *user);

/* A user-defined differentiable inner update y_{t+1} = Φ(x, y_t), used instead of the
 * optimizer blo_config.inner by every method that steps the lower level. Build y_new[i]
 * (y[i]'s shape and dtype) in ctx with blo ops from the hyper-variables x[0..nx), the
 * iterate y[0..ny) and the lower gradient g[i] = ∇_{y_i} f(x, y_t) (recorded when the method
 * differentiates through the step); t is the step (0-based). Φ may read x — a learned
 * optimizer's per-coordinate step sizes, say — and the methods that differentiate through
 * the inner steps (rhg, trhg, rhg_ckpt, fhg, bda, iaptt, fixed_point) follow that dependence.
 * Φ keeps no state of its own between steps. Must not keep references to ctx's tensors.
 * Return BLO_OK, or an error with a message in ctx (blo_ctx_set_error). */
typedef blo_status (*blo_inner_update_fn)(blo_ctx *ctx, int nx, blo_tensor *const *x, int ny,
                                          blo_tensor *const *y, blo_tensor *const *g, int64_t t,
                                          blo_tensor **y_new, void *user);

typedef struct blo_config {
    const char *method;               /* registry name: "rhg", "cg", ... (blo_method_find) */
    blo_opt inner;                    /* LL dynamics (unless inner_update is set) */
    blo_inner_update_fn inner_update; /* optional: a user-defined Φ instead of `inner` */
    void *inner_update_user;          /* handed to inner_update */
    int inner_steps;                  /* T */
    int lr_x;       /* -1, or the index of a one-element x tensor used as the inner lr */
    int lr_x_per_y; /* 0: x[lr_x] is one lr for every y_i; 1: x[lr_x + i] is y_i's own
                       lr, broadcast against y_i (Meta-SGD's per-parameter step sizes:
                       shape of θ_i against y_i = [B, θ_i's shape]) */
    blo_init_kind init;
    blo_opt init_opt;    /* optimizer of a learned y_0 */
    blo_opt outer;       /* optimizer of x */
    int64_t outer_iters; /* budget */

    /* Method settings (each method reads the ones it documents). */
    int trhg_window;      /* trhg: the last K inner steps reversed through */
    int neumann_terms;    /* neumann: K, the terms of the series after the first */
    int solve_iters;      /* cg / fixed_point: iterations of the linear solve at most */
    double tol;           /* cg / fixed_point: stop when the residual norm is below tol */
    int anderson_m;       /* fixed_point: Anderson acceleration's memory (0: plain iteration) */
    double anderson_beta; /* fixed_point: Anderson's mixing β in (0, 1] */
    double damping;       /* cg: δ >= 0, solve (∇²_yy f + δI) v = ∂F/∂y (0: plain cg) */
    double alpha;         /* neumann step; bda: μ_0 (weight μ_t = alpha/(t+1)); amm: μ_0 */
    double eta;           /* bome: η */
    double fd_radius;     /* darts: radius of the finite-difference perturbation */
    double upper_lr;      /* bda: s_u, the step on ∇_y F */
    int amm_schedule;     /* amm: 0 the paper's Theorem (μ_k = alpha/(k+1)^0.1, decaying steps;
                             the default), 1 the authors' code (μ_k = alpha/(k+2)) */
    int checkpoints;      /* rhg_ckpt: segment length (0 = ⌈√T⌉) */
    int64_t max_fhg_dim;  /* fhg refuses dim x above this (forward mode costs dim x JVPs) */

    /* The hypergradient check (blo_solver_check_hypergrad): run before the step of every
     * check_hypergrad-th outer iteration (0: never) along check_directions random directions,
     * its figures in the record. */
    int64_t check_hypergrad;
    int check_directions;
    /* With check_rhg_steps > 0 the check also compares with rhg over that many inner steps
     * (same start, dynamics and draws): the long-horizon reference for the methods that
     * approximate the limit y*(x) (implicit, truncated, single-loop), whose answer the finite
     * differences of the T-step objective need not match. It records the whole trajectory:
     * memory grows with check_rhg_steps. 0: off. */
    int64_t check_rhg_steps;

    /* Stopping and safety. */
    double stop_hypergrad; /* stop when ‖dF/dx‖ < this (0: off) */
    double diverge_limit;  /* stop with BLO_ERR_NUMERIC when |F| exceeds this (0: off) */
    uint64_t seed;
    blo_record_fn on_record;
    void *record_user;
    const char *checkpoint_path; /* save the whole state here every checkpoint_every iters */
    int64_t checkpoint_every;
    blo_inner_state inner_state; /* the inner optimizer's state across outer iterations
                                    (reset by default; carry needs init = warm) */
} blo_config;

/* Defaults: rhg, SGD lr 0.1 with T = 20, fixed start, outer Adam lr 0.01, 100 iterations,
 * trhg_window, neumann_terms and solve_iters 10, tol 1e-10, no Anderson (m 0, β 1), damping 0,
 * alpha 0.5, eta 0.5, fd_radius 0.01, upper_lr 0.1, amm_schedule 0, max_fhg_dim 4096, no
 * hypergradient check (check_directions 4), seed 0, inner_state reset. */
blo_config blo_config_default(void);

/* ---- The method registry --------------------------------------------------------------------- */
typedef struct blo_method_info {
    const char *name;
    const char *maths; /* one line */
    const char *paper;
    const char *settings; /* which blo_config fields it reads */
} blo_method_info;
int blo_method_count(void);
const blo_method_info *blo_method_at(int i);
const blo_method_info *blo_method_find(const char *name); /* NULL if unknown */

/* What a method's callbacks receive: the problem, the configuration, a scratch context, x, the
 * LL start and the method's own state (accessors below). Owned by the solver; valid only
 * during the callback. */
typedef struct blo_method_env blo_method_env;

/* A hypergradient method. hypergrad computes, in the environment's scratch context,
 * hx[i] = dF/dx_i for every hyper-variable and, when the start is learned, hy0[i] = dF/dy0_i
 * (NULL entries: zero); it must report F and f at the y it ends on (blo_env_set_values) and
 * leave that y's values as the environment's y (blo_env_keep_y). check (optional) runs once at
 * blo_solver_new and refuses a configuration with blo_env_fail. Both return BLO_OK or an
 * error status (with blo_env_fail's message). The method keeps n_state_groups groups of ny
 * tensors of y's shapes (zeroed at the start, saved in checkpoints: blo_env_state). */
typedef struct blo_method_def {
    blo_method_info info;
    blo_status (*check)(blo_method_env *env);
    blo_status (*hypergrad)(blo_method_env *env, blo_tensor **hx, blo_tensor **hy0);
    int n_state_groups;
} blo_method_def;

/* Adds a method to the registry, after the built-in ones: it is then listed by
 * blo_method_count / blo_method_at / blo_method_find and selected by blo_config.method like
 * any other. The definition is copied; the strings of m->info must stay valid for as long as
 * the method is used (string literals, say). Returns BLO_OK; BLO_ERR_INVALID when the name or
 * the hypergradient is missing, n_state_groups is negative or the name is taken (built-in
 * names included); BLO_ERR_NOMEM beyond 64 registered methods. Not thread-safe: register
 * before making solvers. */
blo_status blo_method_register(const blo_method_def *m);

/* ---- What a method sees (valid during its callbacks) -----------------------------------------
 * Tensors made through these live in the scratch context blo_env_ctx, rewound before the next
 * hypergradient; x, y, y_0 and the state belong to the solver. */
blo_ctx *blo_env_ctx(blo_method_env *e); /* the scratch context */
const blo_problem *blo_env_problem(const blo_method_env *e);
const blo_config *blo_env_config(const blo_method_env *e);
int blo_env_nx(const blo_method_env *e);
int blo_env_ny(const blo_method_env *e);
/* The hyper-variables: leaves with requires_grad (read only). NULL for a bad index. */
blo_tensor *blo_env_x(const blo_method_env *e, int i);
/* The last y_T (values; the warm start). A method that moves y itself may write it. */
blo_tensor *blo_env_y(const blo_method_env *e, int i);
/* The LL start (leaves with requires_grad when the start is learned). */
blo_tensor *blo_env_y0(const blo_method_env *e, int i);
/* Tensor i of the method's state group `group` (y_i's shape, zeros at first, kept across
 * iterations and saved in checkpoints); NULL for a bad index. */
blo_tensor *blo_env_state(const blo_method_env *e, int group, int i);
/* The run's generator (saved in checkpoints) and the outer iteration. */
blo_rng *blo_env_rng(blo_method_env *e);
int64_t blo_env_iter(const blo_method_env *e);
/* Records a message for blo_solver_error (unless one is recorded) and returns st. */
blo_status blo_env_fail(blo_method_env *e, blo_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* The toolkit the built-in methods are made of. Each returns BLO_OK or an error status with
 * its message recorded (blo_solver_error). */
/* y_T after inner_steps steps of the configured dynamics (blo_config.inner or inner_update,
 * then project_y) from the configured start, into yT[0..ny). differentiate = 1 records the
 * whole trajectory, so a gradient of a function of y_T reaches x (and a learned y_0);
 * differentiate = 0 computes values only with flat memory, and yT are fresh leaves with
 * requires_grad. */
blo_status blo_env_unroll(blo_method_env *e, int differentiate, blo_tensor **yT);
/* F(x, y) and f(x, y) at the last inner step, built in the scratch context (recorded); NULL
 * on failure. */
blo_tensor *blo_env_upper(blo_method_env *e, blo_tensor *const *y);
blo_tensor *blo_env_lower(blo_method_env *e, blo_tensor *const *y);
/* g[i] = ∇_{y_i} f(x, y) (zeros where f does not depend on y_i); create = 1 records the
 * gradient's graph, for Hessian-vector and mixed products through it. */
blo_status blo_env_lower_grad(blo_method_env *e, blo_tensor *const *y, int create, blo_tensor **g);
/* The end of a reverse-mode method: F at y_T, hx = dF/dx through y_T's graph (and hy0 =
 * dF/dy_0 when the start is learned; hy0 may be NULL otherwise), F and f reported, y_T kept. */
blo_status blo_env_finish_reverse(blo_method_env *e, blo_tensor *const *yT, blo_tensor **hx,
                                  blo_tensor **hy0);
/* Reports F and f at the y the hypergradient ends on (the record's values). */
void blo_env_set_values(blo_method_env *e, double upper, double lower);
/* Keeps y's values as the y_T the solver reports and warm-starts from (and, with inner_state
 * carry, the optimizer state the last blo_env_unroll ended with, as blo_env_finish_reverse
 * does). */
void blo_env_keep_y(blo_method_env *e, blo_tensor *const *y);
/* Reports a linear solve (or any inner iteration with a residual) in the record:
 * blo_record.solve_residual and solve_iters. A method that solves several reports the last. */
void blo_env_report_solve(blo_method_env *e, double residual, int64_t iters);

/* ---- The solver
 * ---------------------------------------------------------------------------------- */
typedef struct blo_solver blo_solver;

/* Checks the problem and the configuration, copies x and y into the solver's own context.
 * On failure returns NULL and writes a message into err (if given). */
blo_solver *blo_solver_new(const blo_problem *p, const blo_config *c, char *err, size_t errlen);
void blo_solver_free(blo_solver *s);
/* The message of the last failure ("" if none). */
const char *blo_solver_error(const blo_solver *s);

/* One hypergradient at the current state, into out[i] (float64 values, x[i]'s size), without
 * changing x. Methods with state of their own (warm starts, single-loop methods) advance it
 * as one of their iterations would. */
blo_status blo_solver_hypergrad(blo_solver *s, double **out);
/* One outer iteration: hypergradient, outer step, projection; fills rec if given. */
blo_status blo_solver_step(blo_solver *s, blo_record *rec);
/* Runs until the budget (outer_iters), a stopping rule or an error. Saves a checkpoint at
 * the end when checkpoint_path is set. */
blo_status blo_solver_run(blo_solver *s);

/* The hypergradient check: compares the configured method's dF/dx at the current state with
 * the derivative of the unrolled objective Φ(x) = F(x, y_T(x)) — T steps of the configured
 * dynamics from the configured start, x's path through init_y included, y_0 held fixed when it
 * is learned — along `directions` random unit directions u_j (drawn from a generator of the
 * check's own, seeded by blo_config.seed and the iteration): the method's ⟨dF/dx, u_j⟩ against
 * the central difference (Φ(x + h u_j) − Φ(x − h u_j)) / 2h, accumulated in float64, with
 * h = ε^{1/3} max(1, ‖x‖_∞) for the machine ε of x's dtype (so the reference carries an error
 * of about ε^{2/3}: 4e-11 for float64 problems, 2e-5 for float32). Every evaluation sees the
 * draws of the solver's RNG the method saw. The solver's state (y, the method's state, the RNG,
 * the reported F and f) is left as it was: the method's hypergradient is computed and then
 * undone. For the single-loop methods, which carry y themselves (bome, soba, amm), set init =
 * warm so that Φ starts from their y. A method that is right gives cosine ≈ 1 and a relative
 * error at the level of its own approximation (rhg: that of the differences; an implicit method:
 * how far y_T is from the lower level's solution). Returns BLO_OK, BLO_ERR_INVALID for
 * directions < 1, or the failure of the method or of an evaluation (blo_solver_error). */
typedef struct blo_hypergrad_check {
    int directions;
    double cosine;    /* cos∠(d_method, d_ref) of the vectors of directional derivatives */
    double rel_error; /* ‖d_method − d_ref‖ / ‖d_ref‖ (‖d_method‖ when d_ref = 0) */
    double fd_step;   /* h */
    double norm;      /* ‖dF/dx‖ of the method */
    /* Against rhg over blo_config.check_rhg_steps inner steps, along the same directions
     * (rhg_steps = 0 and NAN when check_rhg_steps is 0). */
    int64_t rhg_steps;
    double rhg_cosine, rhg_rel_error;
} blo_hypergrad_check;
blo_status blo_solver_check_hypergrad(blo_solver *s, int directions, blo_hypergrad_check *out);

/* The whole state (x, y, learned y_0, optimizer moments, method state, RNG, iteration, time)
 * in a versioned binary file, written atomically (temp file + rename). Loading checks that
 * the file belongs to a problem of the same shapes and method, and checks the whole file
 * before it changes anything: a refused file leaves the solver as it was. */
blo_status blo_solver_save(blo_solver *s, const char *path);
blo_status blo_solver_load(blo_solver *s, const char *path);

int64_t blo_solver_iter(const blo_solver *s);
/* F and f at the y the last hypergradient ended on (NAN before the first). */
void blo_solver_values(const blo_solver *s, double *upper, double *lower);
/* Current values (owned by the solver, valid until it is freed or steps again). With
 * BLO_INIT_WARM the next iteration starts from blo_solver_y's values, so a caller may
 * overwrite them between iterations (in on_record, say) with a lower level solved by other
 * means; they are saved in checkpoints as they are. */
blo_tensor *blo_solver_x(const blo_solver *s, int i);
blo_tensor *blo_solver_y(const blo_solver *s, int i);  /* y_T of the last iteration */
blo_tensor *blo_solver_y0(const blo_solver *s, int i); /* the LL start (learned or fixed) */
/* With inner_state = carry: the inner optimizer's state the next trajectory starts from —
 * which = 0 the first moment (momentum's buffer, Adam's m), 1 Adam's second moment v — for
 * y[i]; NULL where the optimizer keeps none, or without carry. Owned by the solver; a caller
 * may overwrite its values between iterations, as blo_solver_y's (to continue an Adam run of
 * its own: its m, v here, its step count with blo_solver_set_inner_t). Saved in checkpoints. */
blo_tensor *blo_solver_inner_state(const blo_solver *s, int which, int i);
/* The inner optimizer's steps taken so far (Adam's bias correction counts from it; 0 at the
 * start, -1 without carry), and setting it (t >= 0; BLO_ERR_INVALID without carry). */
int64_t blo_solver_inner_t(const blo_solver *s);
blo_status blo_solver_set_inner_t(blo_solver *s, int64_t t);

#ifdef __cplusplus
}
#endif
#pragma GCC visibility pop
#endif
