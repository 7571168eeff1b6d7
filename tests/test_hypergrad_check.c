/* test_hypergrad_check.c — blo_solver_check_hypergrad and the record's check and solve fields,
 * on the ridge of tests/bilevel_problems.h (float64):
 *   - rhg and cg (y_T converged) agree with the finite differences of the unrolled objective;
 *   - a registered method that returns a wrong answer (rhg's scaled by 1.5, one element's sign
 *     flipped) is flagged: large relative error, cosine below 1;
 *   - the check leaves the solver's state as it was (a single-loop method with state);
 *   - blo_solver_step with check_hypergrad = 1 fills the record; cg's record carries its linear
 *     solve's residual and iterations, rhg's says there was none;
 *   - the long-horizon reference (check_rhg_steps): a method that returns the exact dF/dx at
 *     y*(x) (closed form) disagrees with the finite differences of a 10-step unroll, agrees with
 *     rhg over 3000 steps, and disagrees with rhg over 10 — so the reference's horizon is the
 *     one asked for; a method that reports its own solve (blo_env_report_solve) shows it in the
 *     record. */
#include "bilevel_problems.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

static blo_status wrong_hypergrad(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    blo_tensor *yT[8];
    blo_status st = blo_env_unroll(e, 1, yT);
    if (!st) st = blo_env_finish_reverse(e, yT, hx, hy0);
    if (st) return st;
    blo_ctx *c = blo_env_ctx(e);
    hx[0] = blo_clone(c, blo_scale(c, hx[0], 1.5));
    if (!hx[0]) return blo_env_fail(e, BLO_ERR_NOMEM, "wrong: out of memory");
    blo_tensor_set(hx[0], 0, -blo_tensor_get(hx[0], 0));
    return BLO_OK;
}

static blo_hypergrad_check check(ridge *r, blo_config c, double L) {
    c.inner = blo_opt_sgd(1.0 / L);
    c.inner_steps = 400;
    c.solve_iters = 50;
    c.tol = 1e-14;
    blo_problem p = ridge_problem(r);
    char err[512];
    blo_hypergrad_check k = {0, NAN, NAN, NAN, NAN, 0, NAN, NAN};
    blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
    TU_CHECK(s != NULL, "%s: %s", c.method, err);
    if (!s) return k;
    blo_status st = blo_solver_check_hypergrad(s, 6, &k);
    TU_CHECK(st == BLO_OK, "%s check: %s", c.method, blo_solver_error(s));
    printf("check of %s: cosine %.12f, relative error %.3g (h = %.3g, %d directions)\n", c.method,
           k.cosine, k.rel_error, k.fd_step, k.directions);
    blo_solver_free(s);
    return k;
}

static void test_methods(ridge *r, double L) {
    blo_config c = blo_config_default();
    const char *right[] = {"rhg", "cg"};
    for (int i = 0; i < 2; i++) {
        c.method = right[i];
        blo_hypergrad_check k = check(r, c, L);
        TU_CHECK(k.rel_error < 1e-6 && k.cosine > 1 - 1e-10,
                 "%s must pass the check: cosine %.12f, relative error %.3g", c.method, k.cosine,
                 k.rel_error);
    }
    blo_method_def wrong = {{"wrong_scaled", "rhg's answer, scaled by 1.5, one sign flipped",
                             "(a deliberately wrong method)", "inner, inner_steps"},
                            NULL,
                            wrong_hypergrad,
                            0};
    TU_CHECK(blo_method_register(&wrong) == BLO_OK, "registering the wrong method");
    c.method = "wrong_scaled";
    blo_hypergrad_check k = check(r, c, L);
    TU_CHECK(k.rel_error > 0.3 && k.cosine < 0.999,
             "the check must flag the wrong method: cosine %.6f, relative error %.3g", k.cosine,
             k.rel_error);
}

typedef struct seen {
    int n;
    blo_record rec[4];
} seen;

static int keep(const blo_record *rec, void *user) {
    seen *s = user;
    if (s->n < 4) s->rec[s->n++] = *rec;
    return 0;
}

static void test_state_and_record(ridge *r, double L) {
    blo_problem p = ridge_problem(r);
    char err[512];
    /* soba carries y and a multiplier: a check must not move them. */
    blo_config c = blo_config_default();
    c.method = "soba";
    c.inner = blo_opt_sgd(1.0 / L);
    c.init = BLO_INIT_WARM;
    blo_solver *a = blo_solver_new(&p, &c, err, sizeof err),
               *b = blo_solver_new(&p, &c, err, sizeof err);
    TU_CHECK(a && b, "soba: %s", err);
    if (a && b) {
        for (int it = 0; it < 3; it++) {
            TU_CHECK(blo_solver_step(a, NULL) == BLO_OK, "soba: %s", blo_solver_error(a));
            TU_CHECK(blo_solver_step(b, NULL) == BLO_OK, "soba: %s", blo_solver_error(b));
        }
        blo_hypergrad_check k;
        TU_CHECK(blo_solver_check_hypergrad(a, 2, &k) == BLO_OK, "soba check: %s",
                 blo_solver_error(a));
        double ga[RIDGE_MAXD], gb[RIDGE_MAXD], *oa[1] = {ga}, *ob[1] = {gb};
        TU_CHECK(!blo_solver_hypergrad(a, oa) && !blo_solver_hypergrad(b, ob), "soba hypergrad");
        double w = 0;
        for (int j = 0; j < r->d; j++)
            w = fmax(w, fabs(ga[j] - gb[j]));
        TU_CHECK(w == 0, "the check changed soba's state: the next hypergradient moved by %.3g", w);
        TU_CHECK(blo_solver_check_hypergrad(a, 0, &k) == BLO_ERR_INVALID &&
                     strstr(blo_solver_error(a), "direction"),
                 "zero directions must be refused: %s", blo_solver_error(a));
    }
    blo_solver_free(a);
    blo_solver_free(b);

    const char *methods[] = {"cg", "rhg"};
    for (int m = 0; m < 2; m++) {
        seen sn;
        memset(&sn, 0, sizeof sn);
        c = blo_config_default();
        c.method = methods[m];
        c.inner = blo_opt_sgd(1.0 / L);
        c.inner_steps = 100;
        c.outer_iters = 3;
        c.check_hypergrad = 2;
        c.on_record = keep;
        c.record_user = &sn;
        blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
        TU_CHECK(s && blo_solver_run(s) == BLO_OK, "%s run: %s", c.method,
                 s ? blo_solver_error(s) : err);
        TU_CHECK(sn.n == 3, "%s: 3 records, got %d", c.method, sn.n);
        TU_CHECK(!isnan(sn.rec[0].check_cosine) && isnan(sn.rec[1].check_cosine) &&
                     !isnan(sn.rec[2].check_cosine),
                 "%s: the check runs at iterations 0 and 2 only", c.method);
        TU_CHECK(sn.rec[0].check_cosine > 0.999999, "%s: the record's check: cosine %.9f", c.method,
                 sn.rec[0].check_cosine);
        if (m == 0) {
            printf("cg's record: linear solve residual %.3g after %lld iterations\n",
                   sn.rec[0].solve_residual, (long long)sn.rec[0].solve_iters);
            TU_CHECK(sn.rec[0].solve_iters >= 1 && sn.rec[0].solve_iters <= 10 &&
                         sn.rec[0].solve_residual >= 0,
                     "cg's record must carry its solve: %g after %lld", sn.rec[0].solve_residual,
                     (long long)sn.rec[0].solve_iters);
        } else {
            TU_CHECK(sn.rec[0].solve_iters == -1 && isnan(sn.rec[0].solve_residual),
                     "rhg has no linear solve: %lld", (long long)sn.rec[0].solve_iters);
        }
        blo_solver_free(s);
    }
}

/* A user method that returns the exact hypergradient at y*(x) (the ridge's closed form) and
 * reports a made-up solve, as a method with an inner iteration of its own would. */
static const ridge *exact_ridge;

static blo_status exact_hypergrad(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    (void)hy0;
    blo_tensor *yT[8];
    blo_status st = blo_env_unroll(e, 0, yT);
    if (st) return st;
    double x[RIDGE_MAXD], hg[RIDGE_MAXD], ys[RIDGE_MAXD];
    blo_tensor_to_f64(blo_env_x(e, 0), x);
    ridge_exact(exact_ridge, x, hg, ys, NULL);
    blo_ctx *c = blo_env_ctx(e);
    hx[0] = blo_zeros(c, BLO_F64, blo_env_x(e, 0)->ndim, blo_env_x(e, 0)->shape);
    if (!hx[0]) return blo_env_fail(e, BLO_ERR_NOMEM, "exact: out of memory");
    for (int j = 0; j < exact_ridge->d; j++)
        blo_tensor_set(hx[0], j, hg[j]);
    blo_env_set_values(e, 0, 0);
    blo_env_keep_y(e, yT);
    blo_env_report_solve(e, 1e-9, 7);
    return BLO_OK;
}

static void test_long_horizon(ridge *r, double L) {
    exact_ridge = r;
    blo_method_def exact = {{"exact_limit", "the closed-form dF/dx at y*(x)",
                             "(a method that is right in the limit only)", "inner, inner_steps"},
                            NULL,
                            exact_hypergrad,
                            0};
    TU_CHECK(blo_method_register(&exact) == BLO_OK, "registering the exact method");
    blo_problem p = ridge_problem(r);
    char err[512];
    double fd = 0, longr = 0, shortr = 0;
    for (int which = 0; which < 2; which++) {
        blo_config c = blo_config_default();
        c.method = "exact_limit";
        c.inner = blo_opt_sgd(1.0 / L);
        c.init = BLO_INIT_FIXED;
        c.inner_steps = 10;
        c.check_rhg_steps = which == 0 ? 3000 : 10;
        blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
        TU_CHECK(s != NULL, "exact: %s", err);
        if (!s) return;
        blo_hypergrad_check k;
        TU_CHECK(blo_solver_check_hypergrad(s, 6, &k) == BLO_OK, "exact check: %s",
                 blo_solver_error(s));
        printf("check of the exact limit, T = 10: against finite differences relative error "
               "%.3g; against rhg over %lld steps cosine %.12f, relative error %.3g\n",
               k.rel_error, (long long)k.rhg_steps, k.rhg_cosine, k.rhg_rel_error);
        TU_CHECK(k.rhg_steps == c.check_rhg_steps, "the reference's horizon: %lld",
                 (long long)k.rhg_steps);
        fd = k.rel_error;
        if (which == 0)
            longr = k.rhg_rel_error;
        else
            shortr = k.rhg_rel_error;
        if (which == 0) {
            TU_CHECK(k.rhg_cosine > 1 - 1e-10, "long rhg cosine %.12f", k.rhg_cosine);
            blo_record rec;
            TU_CHECK(blo_solver_step(s, &rec) == BLO_OK, "exact step: %s", blo_solver_error(s));
            TU_CHECK(rec.solve_iters == 7 && rec.solve_residual == 1e-9,
                     "the method's reported solve must reach the record: %g after %lld",
                     rec.solve_residual, (long long)rec.solve_iters);
            TU_CHECK(isnan(rec.check_rhg_cosine), "no check ran this step");
        }
        blo_solver_free(s);
    }
    TU_CHECK(fd > 1e-2, "a 10-step unroll must disagree with the limit: %.3g", fd);
    TU_CHECK(longr < 1e-6, "rhg over 3000 steps must agree with the limit: %.3g", longr);
    TU_CHECK(shortr > 1e-2, "rhg over 10 steps must disagree with the limit: %.3g", shortr);

    blo_config c = blo_config_default();
    c.check_rhg_steps = -1;
    blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
    TU_CHECK(!s && strstr(err, "check_rhg_steps"), "a negative horizon must be refused: %s", err);
    blo_solver_free(s);
}

int main(void) {
    ridge r;
    ridge_init(&r, BLO_F64, 24, 16, 5, 0.3, 7);
    double x0[RIDGE_MAXD], exact[RIDGE_MAXD], ystar[RIDGE_MAXD], L;
    blo_tensor_to_f64(r.x0, x0);
    ridge_exact(&r, x0, exact, ystar, &L);
    test_methods(&r, L);
    test_state_and_record(&r, L);
    test_long_horizon(&r, L);
    ridge_free(&r);
    return tu_finish("test_hypergrad_check");
}
