/* learned_update.c — plugging one's own pieces into blo: an inner update that reads the
 * hyper-variables (a learned optimizer's per-coordinate step sizes), and a hypergradient
 * method registered by the program, without editing the library.
 *
 *   lower  f(y) = ½‖A y − b‖²/n                         (least squares, trained by ...)
 *   update y_{t+1} = Φ(x, y_t) = y_t − e^{x} ⊙ ∇f(y_t)   (... a step size per coordinate)
 *   upper  F(y) = ½‖A_val y − b_val‖²/m after T steps   (validation loss of y_T)
 *
 * 1. rhg differentiates through the T user-defined steps; the program checks dF/dx against
 *    central finite differences of F computed in plain C.
 * 2. A method of the program's own, "lookahead": run T steps without a graph, take one more
 *    step Φ(x, y_T) recorded, and differentiate F through that step alone — the one-step
 *    hypergradient of online schemes (Meta-Weight-Net's virtual step, first-order DARTS'
 *    lookahead). It must equal the registry's trhg with a window of one step over T + 1 steps.
 *    Then it tunes x.
 *
 *   cc learned_update.c $(pkg-config --cflags --libs blo) -lm -o learned_update
 */
#include <blo/blo.h>

#include <math.h>
#include <stdio.h>

enum { N = 40, M = 40, P = 5, T = 20 }; /* rows, validation rows, features, inner steps */

typedef struct lsq {
    double A[N * P], b[N], Av[M * P], bv[M];
    blo_tensor *tA, *tb, *tAv, *tbv;
} lsq;

static blo_tensor *sq_loss(blo_ctx *ctx, blo_tensor *A, blo_tensor *b, blo_tensor *y, int rows) {
    blo_tensor *res = blo_sub(ctx, blo_matmul(ctx, A, y), b);
    return blo_scale(ctx, blo_dot(ctx, res, res), 0.5 / rows);
}

static blo_tensor *lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                         const blo_eval *ev, void *user) {
    (void)x, (void)ev;
    lsq *d = user;
    return sq_loss(ctx, d->tA, d->tb, y[0], N);
}

static blo_tensor *upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                         const blo_eval *ev, void *user) {
    (void)x, (void)ev;
    lsq *d = user;
    return sq_loss(ctx, d->tAv, d->tbv, y[0], M);
}

/* Φ(x, y, g) = y − e^{x} ⊙ g, written with blo ops so that blo can differentiate it in x. */
static blo_status learned_step(blo_ctx *ctx, int nx, blo_tensor *const *x, int ny,
                               blo_tensor *const *y, blo_tensor *const *g, int64_t t,
                               blo_tensor **y_new, void *user) {
    (void)nx, (void)ny, (void)t, (void)user;
    y_new[0] = blo_sub(ctx, y[0], blo_mul(ctx, blo_exp(ctx, x[0]), g[0]));
    return y_new[0] ? BLO_OK : blo_ctx_status(ctx);
}

/* The user's method: T steps without a graph, one recorded step, reverse through it. */
static blo_status lookahead_check(blo_method_env *e) {
    if (!blo_env_config(e)->inner_update || blo_env_nx(e) != 1 || blo_env_ny(e) != 1)
        return blo_env_fail(e, BLO_ERR_INVALID,
                            "lookahead: written for one x, one y and an "
                            "inner_update of the user's");
    return BLO_OK;
}

static blo_status lookahead(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    const blo_config *c = blo_env_config(e);
    blo_ctx *ctx = blo_env_ctx(e);
    blo_tensor *yT[1], *g[1], *y1[1], *x[1] = {blo_env_x(e, 0)};
    blo_status st = blo_env_unroll(e, 0, yT);      /* y_T, values only */
    if (!st) st = blo_env_lower_grad(e, yT, 1, g); /* ∇f(y_T), recorded */
    if (!st) st = c->inner_update(ctx, 1, x, 1, yT, g, c->inner_steps, y1, c->inner_update_user);
    if (st) return blo_env_fail(e, st, "lookahead: %s", blo_ctx_error(ctx));
    return blo_env_finish_reverse(e, y1, hx, hy0); /* F(y_{T+1}), dF/dx through the last step */
}

/* The oracle: F after `steps` steps of Φ, in plain C double arithmetic. */
static double F_of(const lsq *d, const double *x, int steps) {
    double y[P] = {0};
    for (int t = 0; t < steps; t++) {
        double g[P] = {0};
        for (int k = 0; k < N; k++) {
            double r = -d->b[k];
            for (int j = 0; j < P; j++)
                r += d->A[k * P + j] * y[j];
            for (int j = 0; j < P; j++)
                g[j] += d->A[k * P + j] * r / N;
        }
        for (int j = 0; j < P; j++)
            y[j] -= exp(x[j]) * g[j];
    }
    double F = 0;
    for (int k = 0; k < M; k++) {
        double r = -d->bv[k];
        for (int j = 0; j < P; j++)
            r += d->Av[k * P + j] * y[j];
        F += 0.5 * r * r / M;
    }
    return F;
}

/* One hypergradient at x0 with `method` over `steps` inner steps (trhg_window = window). */
static int hypergradient(const blo_problem *p, const char *method, int steps, int window,
                         double *hg) {
    blo_config c = blo_config_default();
    c.method = method;
    c.inner_update = learned_step;
    c.inner_steps = steps;
    c.trhg_window = window;
    char err[256];
    blo_solver *s = blo_solver_new(p, &c, err, sizeof err);
    double *out[1] = {hg};
    int ok = s && blo_solver_hypergrad(s, out) == BLO_OK;
    if (!ok) fprintf(stderr, "learned_update: %s: %s\n", method, s ? blo_solver_error(s) : err);
    blo_solver_free(s);
    return ok;
}

int main(void) {
    static lsq d;
    const double w[P] = {1.5, -2.0, 0.3, 0.0, 0.5};
    blo_rng rng;
    blo_rng_seed(&rng, 11);
    for (int k = 0; k < N + M; k++) {
        double *a = k < N ? &d.A[k * P] : &d.Av[(k - N) * P], t = 0;
        for (int j = 0; j < P; j++)
            t += w[j] * (a[j] = (1 + j) * blo_rng_normal(&rng));
        *(k < N ? &d.b[k] : &d.bv[k - N]) = t + 0.5 * blo_rng_normal(&rng);
    }
    blo_ctx *data = blo_ctx_new(0);
    int64_t sa[2] = {N, P}, sav[2] = {M, P}, sn = N, sm = M, sp = P;
    double x0v[P];
    for (int j = 0; j < P; j++)
        x0v[j] = log(0.02); /* every coordinate starts at step 0.02 */
    d.tA = blo_from_f64(data, BLO_F64, 2, sa, d.A);
    d.tb = blo_from_f64(data, BLO_F64, 1, &sn, d.b);
    d.tAv = blo_from_f64(data, BLO_F64, 2, sav, d.Av);
    d.tbv = blo_from_f64(data, BLO_F64, 1, &sm, d.bv);
    blo_tensor *x0 = blo_from_f64(data, BLO_F64, 1, &sp, x0v),
               *y0 = blo_zeros(data, BLO_F64, 1, &sp);
    if (blo_ctx_status(data)) {
        fprintf(stderr, "learned_update: %s\n", blo_ctx_error(data));
        return 1;
    }
    blo_problem p = {.nx = 1,
                     .x = &x0,
                     .ny = 1,
                     .y = &y0,
                     .upper = upper,
                     .lower = lower,
                     .user = &d,
                     .x_lo = log(1e-4),
                     .x_hi = log(0.5)};

    /* 1. rhg through T user-defined steps against central differences. */
    double hg[P], err1 = 0;
    if (!hypergradient(&p, "rhg", T, 0, hg)) return 1;
    for (int j = 0; j < P; j++) {
        double xp[P], xm[P], h = 1e-5;
        for (int k = 0; k < P; k++)
            xp[k] = xm[k] = x0v[k];
        xp[j] += h, xm[j] -= h;
        double fd = (F_of(&d, xp, T) - F_of(&d, xm, T)) / (2 * h);
        printf("  dF/dx_%d  rhg %+.9f  finite differences %+.9f\n", j, hg[j], fd);
        err1 = fmax(err1, fabs(hg[j] - fd) / fmax(1e-3, fabs(fd)));
    }

    /* 2. The program's own method, registered by name, against trhg with a one-step window. */
    blo_method_def mine = {
        {"lookahead", "dF/dx through the last of T + 1 steps, the first T without a graph",
         "the one-step hypergradient of online schemes (e.g. Shu et al., NeurIPS 2019)",
         "inner_update, inner_steps"},
        lookahead_check,
        lookahead,
        0};
    double hl[P], ht[P], err2 = 0;
    if (blo_method_register(&mine) != BLO_OK || !hypergradient(&p, "lookahead", T, 0, hl) ||
        !hypergradient(&p, "trhg", T + 1, 1, ht))
        return 1;
    for (int j = 0; j < P; j++)
        err2 = fmax(err2, fabs(hl[j] - ht[j]));
    printf("lookahead vs trhg (window 1): largest difference %.2e\n", err2);

    /* 3. The outer loop with the registered method tunes the step sizes. */
    blo_config c = blo_config_default();
    c.method = "lookahead";
    c.inner_update = learned_step;
    c.inner_steps = T;
    c.outer = blo_opt_adam(0.05);
    c.outer_iters = 100;
    char err[256];
    blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
    double before = F_of(&d, x0v, T), xv[P];
    if (!s || blo_solver_run(s) != BLO_OK) {
        fprintf(stderr, "learned_update: %s\n", s ? blo_solver_error(s) : err);
        return 1;
    }
    blo_tensor_to_f64(blo_solver_x(s, 0), xv);
    double after = F_of(&d, xv, T);
    printf("validation loss after %d steps: %.6f -> %.6f; step sizes", T, before, after);
    for (int j = 0; j < P; j++)
        printf(" %.3g", exp(xv[j]));
    printf("\n");
    blo_solver_free(s);
    blo_ctx_free(data);
    int ok = err1 < 1e-6 && err2 < 1e-12 && after < before;
    printf("%s: rhg vs finite differences %.2e (relative), lookahead vs trhg %.2e\n",
           ok ? "ok" : "FAILED", err1, err2);
    return ok ? 0 : 1;
}
