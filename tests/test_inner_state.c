/* test_inner_state.c — blo_config.inner_state = carry: the inner optimizer's state (Adam's
 * m, v and t) continues from one warm-started outer iteration to the next.
 *
 * The oracle: on a lower level that x does not enter, the trajectory does not depend on the
 * hypergradient, so K outer iterations of T carried inner Adam steps must be K·T steps of one
 * plain Adam run (blo_opt_step) on f — also from a seeded state (m, v, t set through
 * blo_solver_inner_state / blo_solver_set_inner_t). With reset they are not. A run saved
 * after k iterations and resumed in a fresh solver ends where the uninterrupted one does, bit
 * for bit. The configurations that cannot carry are refused by name. */
#include "bilevel_problems.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define D 5
#define N 8

/* f(x, y) = ½‖A y − b‖² (x does not enter), F(x, y) = ½‖x‖² + ½‖y − 1‖². */
typedef struct toy {
    blo_ctx *ctx;
    blo_tensor *A, *b, *x0, *y0;
    double Ad[N * D], bd[N];
} toy;

static blo_tensor *toy_lower(blo_ctx *c, blo_tensor *const *x, blo_tensor *const *y,
                             const blo_eval *ev, void *user) {
    (void)x;
    (void)ev;
    toy *t = user;
    blo_tensor *r = blo_sub(c, blo_matmul(c, t->A, y[0]), t->b);
    return blo_scale(c, blo_dot(c, r, r), 0.5);
}

static blo_tensor *toy_upper(blo_ctx *c, blo_tensor *const *x, blo_tensor *const *y,
                             const blo_eval *ev, void *user) {
    (void)ev;
    (void)user;
    blo_tensor *d = blo_add_scalar(c, y[0], -1.0);
    return blo_add(c, blo_scale(c, blo_dot(c, x[0], x[0]), 0.5),
                   blo_scale(c, blo_dot(c, d, d), 0.5));
}

static void toy_init(toy *t) {
    memset(t, 0, sizeof *t);
    t->ctx = blo_ctx_new(0);
    blo_rng g;
    blo_rng_seed(&g, 3);
    for (int i = 0; i < N * D; i++)
        t->Ad[i] = blo_rng_normal(&g) / sqrt((double)D);
    for (int i = 0; i < N; i++)
        t->bd[i] = blo_rng_normal(&g);
    double xs[2] = {0.4, -0.3}, ys[D];
    for (int j = 0; j < D; j++)
        ys[j] = 0.2 * blo_rng_normal(&g);
    int64_t sa[2] = {N, D}, sb[1] = {N}, sx[1] = {2}, sy[1] = {D};
    t->A = blo_from_f64(t->ctx, BLO_F64, 2, sa, t->Ad);
    t->b = blo_from_f64(t->ctx, BLO_F64, 1, sb, t->bd);
    t->x0 = blo_from_f64(t->ctx, BLO_F64, 1, sx, xs);
    t->y0 = blo_from_f64(t->ctx, BLO_F64, 1, sy, ys);
}

static blo_problem toy_problem(toy *t) {
    return (blo_problem){.nx = 1,
                         .x = &t->x0,
                         .ny = 1,
                         .y = &t->y0,
                         .upper = toy_upper,
                         .lower = toy_lower,
                         .user = t,
                         .x_lo = -INFINITY,
                         .x_hi = INFINITY};
}

static blo_config carry_config(const char *method) {
    blo_config c = blo_config_default();
    c.method = method;
    c.inner = blo_opt_adam(0.05);
    c.inner_steps = 4;
    c.init = BLO_INIT_WARM;
    c.inner_state = BLO_INNER_STATE_CARRY;
    c.outer = blo_opt_adam(0.1);
    c.alpha = 0.05; /* neumann's step, below 2/λ_max(AᵀA) */
    c.damping = 0.1;
    return c;
}

/* The seed of the carried state: m, v and t of an Adam run that went before. */
static const double SEED_M[D] = {0.01, -0.02, 0.005, 0.0, 0.03};
static const double SEED_V[D] = {1e-3, 2e-3, 5e-4, 1e-4, 3e-3};
#define SEED_T 7

/* y, m, v after `steps` steps of plain Adam on f from the toy's y_0 (seeded: from SEED_*). */
static void plain_adam(toy *t, const blo_opt *o, int steps, int seeded, double *y, double *m,
                       double *v) {
    blo_ctx *c = blo_ctx_new(0);
    blo_opt_state os;
    int64_t sy[1] = {D};
    blo_tensor *yt = blo_clone(c, t->y0);
    blo_opt_state_init(c, o, 1, &yt, &os);
    if (seeded) {
        for (int j = 0; j < D; j++) {
            blo_tensor_set(os.m[0], j, SEED_M[j]);
            blo_tensor_set(os.v[0], j, SEED_V[j]);
        }
        os.t = SEED_T;
    }
    for (int k = 0; k < steps; k++) { /* ∇f = Aᵀ(A y − b), by hand */
        double g[D] = {0}, r[N];
        for (int i = 0; i < N; i++) {
            r[i] = -t->bd[i];
            for (int j = 0; j < D; j++)
                r[i] += t->Ad[i * D + j] * blo_tensor_get(yt, j);
        }
        for (int i = 0; i < N; i++)
            for (int j = 0; j < D; j++)
                g[j] += t->Ad[i * D + j] * r[i];
        blo_mark mk = blo_ctx_mark(c);
        blo_tensor *gt = blo_from_f64(c, BLO_F64, 1, sy, g);
        TU_CHECK(blo_opt_step(c, o, &os, 1, &yt, &gt) == BLO_OK, "plain Adam: %s",
                 blo_ctx_error(c));
        blo_ctx_rewind(c, mk);
    }
    for (int j = 0; j < D; j++) {
        y[j] = blo_tensor_get(yt, j);
        m[j] = blo_tensor_get(os.m[0], j);
        v[j] = blo_tensor_get(os.v[0], j);
    }
    blo_ctx_free(c);
}

static double max_diff(const blo_tensor *a, const double *b) {
    double e = 0;
    for (int j = 0; j < D; j++)
        e = fmax(e, fabs(blo_tensor_get(a, j) - b[j]));
    return e;
}

static int run(blo_solver *s, int iters, const char *what) {
    for (int k = 0; k < iters; k++)
        if (blo_solver_step(s, NULL)) {
            TU_CHECK(0, "%s: step %d: %s", what, k, blo_solver_error(s));
            return 1;
        }
    return 0;
}

/* A method written outside the library: blo_env_unroll, then blo_env_keep_y (dF/dx = 0). */
static blo_status user_hypergrad(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    (void)hy0;
    blo_tensor *yT[1];
    blo_status st = blo_env_unroll(e, 0, yT);
    if (st) return st;
    blo_tensor *x = blo_env_x(e, 0);
    hx[0] = blo_zeros(blo_env_ctx(e), blo_tensor_dtype(x), 1, (int64_t[]){blo_tensor_numel(x)});
    blo_env_set_values(e, 0, 0);
    blo_env_keep_y(e, yT);
    return hx[0] ? BLO_OK : BLO_ERR_NOMEM;
}

static void test_oracle(void) {
    blo_method_def user = {
        {"carry_user", "unroll, keep", "a test", "inner"}, NULL, user_hypergrad, 0};
    TU_CHECK(blo_method_register(&user) == BLO_OK, "register the user method");
    toy t;
    toy_init(&t);
    blo_problem p = toy_problem(&t);
    const int K = 6;
    /* (fixed_point refuses a stateful inner optimizer: there is nothing for it to carry.) */
    const char *methods[] = {"rhg", "trhg",        "rhg_ckpt", "cg",        "neumann",
                             "fhg", "first_order", "darts",    "carry_user"};
    for (size_t q = 0; q < sizeof methods / sizeof *methods; q++) {
        for (int seeded = 0; seeded <= 1; seeded++) {
            blo_config c = carry_config(methods[q]);
            c.trhg_window = 2;
            c.checkpoints = 3;
            double y[D], m[D], v[D];
            int start = seeded ? SEED_T : 0;
            plain_adam(&t, &c.inner, K * c.inner_steps, seeded, y, m, v);
            char err[512];
            blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
            TU_CHECK(s != NULL, "%s: %s", methods[q], err);
            if (!s) continue;
            TU_CHECK(blo_solver_inner_t(s) == 0 && blo_solver_inner_state(s, 0, 0) &&
                         blo_solver_inner_state(s, 1, 0) && !blo_solver_inner_state(s, 2, 0),
                     "%s: the carried state at the start", methods[q]);
            if (seeded) {
                for (int j = 0; j < D; j++) {
                    blo_tensor_set(blo_solver_inner_state(s, 0, 0), j, SEED_M[j]);
                    blo_tensor_set(blo_solver_inner_state(s, 1, 0), j, SEED_V[j]);
                }
                TU_CHECK(blo_solver_set_inner_t(s, SEED_T) == BLO_OK, "set_inner_t: %s",
                         blo_solver_error(s));
            }
            if (!run(s, K, methods[q])) {
                double ey = max_diff(blo_solver_y(s, 0), y);
                double em = max_diff(blo_solver_inner_state(s, 0, 0), m);
                double ev = max_diff(blo_solver_inner_state(s, 1, 0), v);
                TU_CHECK(ey <= 1e-12 && em <= 1e-12 && ev <= 1e-14,
                         "%s%s: %d outer × %d carried inner steps vs %d plain Adam steps: "
                         "|Δy| %.3g, |Δm| %.3g, |Δv| %.3g",
                         methods[q], seeded ? " (seeded)" : "", K, c.inner_steps, K * c.inner_steps,
                         ey, em, ev);
                TU_CHECK(blo_solver_inner_t(s) == start + K * c.inner_steps,
                         "%s: inner t = %lld, expected %d", methods[q],
                         (long long)blo_solver_inner_t(s), start + K * c.inner_steps);
            }
            blo_solver_free(s);
            /* With reset every outer iteration restarts Adam: not the same run. */
            c.inner_state = BLO_INNER_STATE_RESET;
            s = blo_solver_new(&p, &c, err, sizeof err);
            TU_CHECK(s && blo_solver_inner_state(s, 0, 0) == NULL && blo_solver_inner_t(s) == -1,
                     "%s: reset keeps no carried state", methods[q]);
            if (s && !seeded && !run(s, K, methods[q]))
                TU_CHECK(max_diff(blo_solver_y(s, 0), y) > 1e-4,
                         "%s: with reset the run equals plain Adam (|Δy| %.3g): the oracle "
                         "cannot tell carry from reset",
                         methods[q], max_diff(blo_solver_y(s, 0), y));
            blo_solver_free(s);
        }
    }
    /* bda steps on an aggregated direction, not on ∇f: its carried count and moments move. */
    blo_config c = carry_config("bda");
    char err[512];
    blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
    TU_CHECK(s != NULL, "bda: %s", err);
    if (s && !run(s, 3, "bda")) {
        TU_CHECK(blo_solver_inner_t(s) == 3 * c.inner_steps &&
                     blo_tensor_get(blo_solver_inner_state(s, 1, 0), 0) > 0,
                 "bda: the carried state did not advance (t = %lld)",
                 (long long)blo_solver_inner_t(s));
        /* The hypergradient check leaves the carried state as it was. */
        double m0 = blo_tensor_get(blo_solver_inner_state(s, 0, 0), 1);
        blo_hypergrad_check chk;
        TU_CHECK(blo_solver_check_hypergrad(s, 2, &chk) == BLO_OK, "bda check: %s",
                 blo_solver_error(s));
        TU_CHECK(blo_solver_inner_t(s) == 3 * c.inner_steps &&
                     blo_tensor_get(blo_solver_inner_state(s, 0, 0), 1) == m0,
                 "the hypergradient check changed the carried state");
    }
    blo_solver_free(s);
    blo_ctx_free(t.ctx);
}

static int same(const blo_tensor *a, const blo_tensor *b) {
    for (int64_t k = 0; k < blo_tensor_numel(a); k++)
        if (blo_tensor_get(a, k) != blo_tensor_get(b, k)) return 0;
    return 1;
}

/* Saved after 4 iterations, loaded into a fresh solver, run on: the uninterrupted run. x
 * enters f here (ridge), so the trajectory depends on the hypergradient. */
static void test_resume(const char *path) {
    ridge r;
    ridge_init(&r, BLO_F64, 24, 16, 5, 0.3, 11);
    r.minibatch = 8;
    blo_problem p = ridge_problem(&r);
    const char *methods[] = {"rhg", "cg"};
    for (int q = 0; q < 2; q++) {
        blo_config c = carry_config(methods[q]);
        char err[512];
        blo_solver *a = blo_solver_new(&p, &c, err, sizeof err);
        blo_solver *b = blo_solver_new(&p, &c, err, sizeof err);
        blo_solver *f = blo_solver_new(&p, &c, err, sizeof err);
        TU_CHECK(a && b && f, "resume %s: %s", methods[q], err);
        if (a && b && f && !run(a, 8, "uninterrupted") && !run(b, 4, "first half")) {
            TU_CHECK(blo_solver_save(b, path) == BLO_OK, "save: %s", blo_solver_error(b));
            TU_CHECK(blo_solver_load(f, path) == BLO_OK, "load: %s", blo_solver_error(f));
            TU_CHECK(blo_solver_inner_t(f) == 4 * c.inner_steps, "loaded inner t = %lld",
                     (long long)blo_solver_inner_t(f));
            if (!run(f, 4, "second half"))
                TU_CHECK(
                    same(blo_solver_x(a, 0), blo_solver_x(f, 0)) &&
                        same(blo_solver_y(a, 0), blo_solver_y(f, 0)) &&
                        same(blo_solver_inner_state(a, 0, 0), blo_solver_inner_state(f, 0, 0)) &&
                        same(blo_solver_inner_state(a, 1, 0), blo_solver_inner_state(f, 1, 0)) &&
                        blo_solver_inner_t(a) == blo_solver_inner_t(f),
                    "%s: the resumed carried run differs from the uninterrupted one", methods[q]);
            /* A checkpoint without the carried state is refused by a carrying solver. */
            blo_config cr = c;
            cr.inner_state = BLO_INNER_STATE_RESET;
            blo_solver *rs = blo_solver_new(&p, &cr, err, sizeof err);
            if (rs && !run(rs, 1, "reset") && blo_solver_save(rs, path) == BLO_OK) {
                blo_solver *g = blo_solver_new(&p, &c, err, sizeof err);
                TU_CHECK(g && blo_solver_load(g, path) != BLO_OK &&
                             strstr(blo_solver_error(g), "carried inner optimizer state"),
                         "a reset checkpoint loaded into a carrying solver: %s",
                         g ? blo_solver_error(g) : err);
                blo_solver_free(g);
            }
            blo_solver_free(rs);
        }
        blo_solver_free(a);
        blo_solver_free(b);
        blo_solver_free(f);
        remove(path);
    }
    ridge_free(&r);
}

static blo_status my_update(blo_ctx *c, int nx, blo_tensor *const *x, int ny, blo_tensor *const *y,
                            blo_tensor *const *g, int64_t t, blo_tensor **y_new, void *user) {
    (void)nx, (void)x, (void)t, (void)user;
    for (int i = 0; i < ny; i++)
        y_new[i] = blo_sub(c, y[i], blo_scale(c, g[i], 0.1));
    return BLO_OK;
}

static void test_refusals(void) {
    toy t;
    toy_init(&t);
    blo_problem p = toy_problem(&t);
    blo_config c = carry_config("rhg");
    c.init = BLO_INIT_FIXED;
    tu_expect_refused(&p, c, "inner_state carry");
    tu_expect_refused(&p, c, "needs init = warm, got fixed");
    c.init = BLO_INIT_LEARNED;
    tu_expect_refused(&p, c, "needs init = warm, got learned");
    c = carry_config("rhg");
    c.inner_update = my_update;
    tu_expect_refused(&p, c, "inner_update");
    c = carry_config("rhg");
    c.inner_state = (blo_inner_state)7;
    tu_expect_refused(&p, c, "inner_state 7");
    const char *own_y[] = {"bome", "soba", "amm"};
    for (int q = 0; q < 3; q++) {
        c = carry_config(own_y[q]);
        c.inner = blo_opt_sgd(0.1);
        char needle[64];
        snprintf(needle, sizeof needle, "%s: inner_state carry", own_y[q]);
        tu_expect_refused(&p, c, needle);
    }
    c = carry_config("rhg");
    c.inner_state = BLO_INNER_STATE_RESET;
    char err[512];
    blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
    TU_CHECK(s && blo_solver_set_inner_t(s, 3) == BLO_ERR_INVALID &&
                 strstr(blo_solver_error(s), "inner_state carry"),
             "set_inner_t without carry: %s", s ? blo_solver_error(s) : err);
    blo_solver_free(s);
    TU_CHECK(blo_inner_state_parse("carry") == BLO_INNER_STATE_CARRY &&
                 blo_inner_state_parse("reset") == BLO_INNER_STATE_RESET &&
                 blo_inner_state_parse("keep") == -1 &&
                 !strcmp(blo_inner_state_name(BLO_INNER_STATE_CARRY), "carry"),
             "inner_state names");
    blo_ctx_free(t.ctx);
}

int main(void) {
    char path[64];
    snprintf(path, sizeof path, "test_inner_state_%d.ckpt", (int)getpid());
    test_oracle();
    test_resume(path);
    test_refusals();
    return tu_finish("inner_state");
}
