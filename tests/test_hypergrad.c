/* test_hypergrad.c — the hypergradient methods on ridge regression with per-feature
 * penalties, whose hypergradient has a closed form (tests/bilevel_problems.h), and the outer
 * loop: reverse mode against finite differences of the unrolled objective for every inner
 * optimizer, learned step size and learned start; checkpoint/resume bit for bit; errors. */
#include "../src/solve/solver.h"
#include "bilevel_problems.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static blo_solver *make(ridge *r, blo_config c) {
    blo_problem p = ridge_problem(r);
    char err[512];
    blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
    TU_CHECK(s != NULL, "solver for %s: %s", c.method, err);
    return s;
}

/* Hypergradient of a fresh solver with config c at the ridge's x0. */
static int hypergrad(ridge *r, blo_config c, double *out) {
    blo_solver *s = make(r, c);
    if (!s) return 1;
    double *o[1] = {out};
    blo_status st = blo_solver_hypergrad(s, o);
    TU_CHECK(st == BLO_OK, "%s hypergradient: %s", c.method, blo_solver_error(s));
    blo_solver_free(s);
    return st;
}

static double max_rel(int d, const double *a, const double *b) {
    double w = 0, scale = 0;
    for (int i = 0; i < d; i++) scale = fmax(scale, fabs(b[i]));
    for (int i = 0; i < d; i++) w = fmax(w, fabs(a[i] - b[i]) / scale);
    return w;
}

/* F(x, y_T(x)) for the solver's current x (the value rhg reports). */
static double unrolled_F(blo_solver *s) {
    double buf[2][RIDGE_MAXD], *o[2] = {buf[0], buf[1]}; /* up to two x tensors */
    blo_solver_hypergrad(s, o);
    return s->last_upper;
}

/* rhg (and dF/dy0 when learned) against central differences of the unrolled objective. */
static void check_rhg_fd(ridge *r, blo_config c, const char *what) {
    blo_solver *s = make(r, c);
    if (!s) return;
    int d = r->d;
    int nx = s->nx;
    double *got[2], want[2][RIDGE_MAXD];
    double g0[RIDGE_MAXD], g1[RIDGE_MAXD];
    got[0] = g0;
    got[1] = g1;
    TU_CHECK(blo_solver_hypergrad(s, got) == BLO_OK, "%s: %s", what, blo_solver_error(s));
    const double eps = 1e-6;
    for (int xi = 0; xi < nx; xi++) {
        blo_tensor *x = blo_solver_x(s, xi);
        int64_t m = blo_tensor_numel(x);
        for (int64_t j = 0; j < m; j++) {
            double v = blo_tensor_get(x, j);
            blo_tensor_set(x, j, v + eps);
            double fp = unrolled_F(s);
            blo_tensor_set(x, j, v - eps);
            double fm = unrolled_F(s);
            blo_tensor_set(x, j, v);
            want[xi][j] = (fp - fm) / (2 * eps);
        }
        double worst = 0;
        for (int64_t j = 0; j < m; j++)
            worst = fmax(worst, fabs(got[xi][j] - want[xi][j]) / (1e-6 + fabs(want[xi][j])));
        TU_CHECK(worst < 1e-5, "%s: x[%d] hypergradient off finite differences by %.3g", what, xi,
                 worst);
    }
    if (c.init == BLO_INIT_LEARNED) {
        /* dF/dy0 from the solver's step bookkeeping: compare with finite differences in y0. */
        double hy0[RIDGE_MAXD];
        blo_solver *s2 = make(r, c);
        double hxb[RIDGE_MAXD], *o[1] = {hxb};
        (void)o;
        /* The learned-start gradient is what blo_solver_step feeds the y0 optimizer; recover it
         * from one SGD step of y0 with lr 1: y0_new = y0 - hy0. */
        blo_tensor *y0 = blo_solver_y0(s2, 0);
        double before[RIDGE_MAXD];
        for (int j = 0; j < d; j++) before[j] = blo_tensor_get(y0, j);
        TU_CHECK(blo_solver_step(s2, NULL) == BLO_OK, "%s: step: %s", what, blo_solver_error(s2));
        for (int j = 0; j < d; j++) hy0[j] = (before[j] - blo_tensor_get(y0, j)) / c.init_opt.lr;
        blo_solver_free(s2);
        double worst = 0;
        blo_tensor *y0s = blo_solver_y0(s, 0);
        for (int j = 0; j < d; j++) {
            double v = blo_tensor_get(y0s, j);
            blo_tensor_set(y0s, j, v + eps);
            double fp = unrolled_F(s);
            blo_tensor_set(y0s, j, v - eps);
            double fm = unrolled_F(s);
            blo_tensor_set(y0s, j, v);
            double w = (fp - fm) / (2 * eps);
            worst = fmax(worst, fabs(hy0[j] - w) / (1e-6 + fabs(w)));
        }
        TU_CHECK(worst < 1e-5, "%s: dF/dy0 off finite differences by %.3g", what, worst);
    }
    blo_solver_free(s);
}

static int stop_after;
static int count_records(const blo_record *rec, void *user) {
    (void)rec;
    int *n = user;
    (*n)++;
    return stop_after > 0 && *n >= stop_after;
}

int main(void) {
    ridge r;
    ridge_init(&r, BLO_F64, 24, 16, 5, 0.3, 7);
    int d = r.d;
    double x0[RIDGE_MAXD], exact[RIDGE_MAXD], ystar[RIDGE_MAXD], L;
    blo_tensor_to_f64(r.x0, x0);
    ridge_exact(&r, x0, exact, ystar, &L);

    blo_config c = blo_config_default();
    c.inner = blo_opt_sgd(1.0 / L);
    c.inner_steps = 400;

    /* cg at tight tolerance and rhg at large T agree with the closed form. */
    double hg_cg[RIDGE_MAXD], hg_rhg[RIDGE_MAXD], hg[RIDGE_MAXD];
    c.method = "cg";
    c.solve_iters = 50;
    c.tol = 1e-13;
    hypergrad(&r, c, hg_cg);
    TU_CHECK(max_rel(d, hg_cg, exact) < 1e-6, "cg vs closed form: %.3g", max_rel(d, hg_cg, exact));
    c.method = "rhg";
    hypergrad(&r, c, hg_rhg);
    TU_CHECK(max_rel(d, hg_rhg, exact) < 1e-6, "rhg vs closed form: %.3g", max_rel(d, hg_rhg, exact));

    /* trhg with K = T is rhg; its error shrinks as K grows. */
    c.method = "trhg";
    c.trhg_window = c.inner_steps;
    hypergrad(&r, c, hg);
    TU_CHECK(max_rel(d, hg, hg_rhg) < 1e-12, "trhg K=T vs rhg: %.3g", max_rel(d, hg, hg_rhg));
    double prev = INFINITY;
    for (int K = 1; K <= 64; K *= 4) {
        c.trhg_window = K;
        hypergrad(&r, c, hg);
        double e = max_rel(d, hg, exact);
        TU_CHECK(e < prev, "trhg error must shrink with K: K=%d error %.3g, before %.3g", K, e, prev);
        prev = e;
    }
    /* trhg against an independent reference: rhg over K steps started from y_{T-K} (the
     * iterate T - K steps of the same dynamics reach from y_0) reverses through exactly the
     * steps trhg keeps, so the two agree to round-off; keeping K - 1 or K + 1 steps does not. */
    {
        blo_tensor *y0_saved = blo_clone(r.ctx, r.y0);
        for (int K = 1; K <= 16; K *= 4) {
            blo_config a = c;
            a.method = "rhg";
            a.inner_steps = c.inner_steps - K;
            blo_solver *s = make(&r, a);
            double tmp[RIDGE_MAXD], *o[1] = {tmp};
            TU_CHECK(s && blo_solver_hypergrad(s, o) == BLO_OK, "rhg to y_{T-K}");
            if (!s) break;
            blo_copy_into(r.y0, blo_solver_y(s, 0)); /* y_{T-K} becomes the start */
            blo_solver_free(s);
            double ref[RIDGE_MAXD];
            a.inner_steps = K;
            hypergrad(&r, a, ref);
            blo_copy_into(r.y0, y0_saved);
            c.trhg_window = K;
            hypergrad(&r, c, hg);
            TU_CHECK(max_rel(d, hg, ref) < 1e-10, "trhg K=%d vs rhg over K steps from y_{T-K}: %.3g",
                     K, max_rel(d, hg, ref));
        }
    }

    /* Reverse mode through every inner optimizer, a learned step size and a learned start,
     * against finite differences of the unrolled objective (exact for any T). */
    {
        blo_config f = blo_config_default();
        f.method = "rhg";
        f.inner_steps = 12;
        const blo_opt_kind kinds[4] = {BLO_OPT_SGD, BLO_OPT_MOMENTUM, BLO_OPT_NESTEROV, BLO_OPT_ADAM};
        for (int k = 0; k < 4; k++) {
            f.inner = blo_opt_sgd(0.5 / L);
            f.inner.kind = kinds[k];
            if (kinds[k] == BLO_OPT_ADAM) f.inner.lr = 0.05;
            f.inner.weight_decay = k == 1 ? 0.01 : 0.0;
            char what[64];
            snprintf(what, sizeof what, "rhg through %s", blo_opt_kind_name(kinds[k]));
            check_rhg_fd(&r, f, what);
        }
        f.inner = blo_opt_sgd(0.5 / L);
        f.init = BLO_INIT_LEARNED;
        f.init_opt = blo_opt_sgd(1.0);
        check_rhg_fd(&r, f, "rhg with a learned start");
    }
    {   /* learned inner step size: x = (penalties, lr) */
        ridge r2 = r;
        (void)r2;
        blo_ctx *ctx = blo_ctx_new(0);
        int64_t one = 1;
        double lrv = 0.5 / L;
        blo_tensor *xs[2] = {r.x0, blo_from_f64(ctx, BLO_F64, 1, &one, &lrv)};
        blo_problem p = ridge_problem(&r);
        p.nx = 2;
        p.x = xs;
        blo_config f = blo_config_default();
        f.method = "rhg";
        f.inner_steps = 10;
        f.lr_x = 1;
        char err[256];
        blo_solver *s = blo_solver_new(&p, &f, err, sizeof err);
        TU_CHECK(s != NULL, "learned lr solver: %s", err);
        if (s) {
            double a[RIDGE_MAXD], b[1], *o[2] = {a, b};
            blo_solver_hypergrad(s, o);
            blo_tensor *lr = blo_solver_x(s, 1);
            double eps = 1e-7;
            blo_tensor_set(lr, 0, lrv + eps);
            double fp = unrolled_F(s);
            blo_tensor_set(lr, 0, lrv - eps);
            double fm = unrolled_F(s);
            blo_tensor_set(lr, 0, lrv);
            double want = (fp - fm) / (2 * eps);
            TU_CHECK(tu_close(b[0], want, 1e-5, 1e-9), "dF/dlr %.10g vs finite differences %.10g",
                     b[0], want);
            blo_solver_free(s);
        }
        blo_ctx_free(ctx);
    }

    /* Checkpoint / resume: a run stopped halfway and resumed from its checkpoint ends bit for
     * bit where an uninterrupted run ends (Adam outer, warm start, minibatches drawn from the
     * solver's RNG). */
    {
        ridge rb;
        ridge_init(&rb, BLO_F64, 24, 16, 5, 0.3, 11);
        rb.minibatch = 8;
        blo_config k = blo_config_default();
        k.method = "rhg";
        k.inner = blo_opt_sgd(0.2);
        k.inner_steps = 5;
        k.init = BLO_INIT_WARM;
        k.outer = blo_opt_adam(0.05);
        k.outer_iters = 12;
        k.seed = 99;
        blo_solver *a = make(&rb, k);
        TU_CHECK(a && blo_solver_run(a) == BLO_OK, "uninterrupted run: %s", blo_solver_error(a));
        char path[64];
        snprintf(path, sizeof path, "ckpt_test_%d.bin", (int)getpid());
        int n = 0;
        stop_after = 6;
        k.on_record = count_records;
        k.record_user = &n;
        k.checkpoint_path = path;
        k.checkpoint_every = 3;
        blo_solver *b = make(&rb, k);
        TU_CHECK(b && blo_solver_run(b) == BLO_OK && blo_solver_iter(b) == 6, "first half");
        blo_solver_free(b);
        stop_after = 0;
        blo_solver *cs = make(&rb, k);
        TU_CHECK(cs && blo_solver_load(cs, path) == BLO_OK, "load: %s", blo_solver_error(cs));
        TU_CHECK(blo_solver_iter(cs) == 6, "resumed at iteration 6, got %lld",
                 (long long)blo_solver_iter(cs));
        TU_CHECK(blo_solver_run(cs) == BLO_OK, "second half: %s", blo_solver_error(cs));
        int same = 1;
        for (int j = 0; j < rb.d; j++) {
            same &= blo_tensor_get(blo_solver_x(a, 0), j) == blo_tensor_get(blo_solver_x(cs, 0), j);
            same &= blo_tensor_get(blo_solver_y(a, 0), j) == blo_tensor_get(blo_solver_y(cs, 0), j);
        }
        TU_CHECK(same, "resumed run differs from the uninterrupted one");
        /* A checkpoint of another method is refused with a message. */
        k.method = "cg";
        blo_solver *other = make(&rb, k);
        TU_CHECK(other && blo_solver_load(other, path) == BLO_ERR_FORMAT &&
                     strstr(blo_solver_error(other), "rhg"),
                 "loading another method's checkpoint must fail: %s", blo_solver_error(other));
        blo_solver_free(other);
        /* A truncated file is refused. */
        FILE *fp = fopen(path, "r+b");
        if (fp) {
            TU_CHECK(ftruncate(fileno(fp), 200) == 0, "truncate"); /* inside the tensors */
            fclose(fp);
        }
        k.method = "rhg";
        blo_solver *t = make(&rb, k);
        TU_CHECK(t && blo_solver_load(t, path) == BLO_ERR_FORMAT, "truncated checkpoint: %s",
                 blo_solver_error(t));
        if (t) { /* the refused file changed nothing */
            int untouched = blo_solver_iter(t) == 0;
            for (int j = 0; j < rb.d; j++)
                untouched &= blo_tensor_get(blo_solver_x(t, 0), j) == blo_tensor_get(rb.x0, j);
            TU_CHECK(untouched, "a refused checkpoint must leave the solver's state as it was");
        }
        blo_solver_free(t);
        remove(path);
        blo_solver_free(a);
        blo_solver_free(cs);
        ridge_free(&rb);
    }

    /* Errors: unknown method, bad step size, divergence named with its iteration. */
    {
        blo_problem p = ridge_problem(&r);
        blo_config e = blo_config_default();
        char err[256];
        e.method = "nosuch";
        TU_CHECK(!blo_solver_new(&p, &e, err, sizeof err) && strstr(err, "nosuch"), "unknown: %s", err);
        e.method = "rhg";
        e.inner.lr = -1;
        TU_CHECK(!blo_solver_new(&p, &e, err, sizeof err) && strstr(err, "learning rate"),
                 "bad lr: %s", err);
        e.inner = blo_opt_sgd(10.0 / L * 50);
        e.inner_steps = 60;
        e.outer_iters = 3;
        blo_solver *s = blo_solver_new(&p, &e, err, sizeof err);
        blo_status st = s ? blo_solver_run(s) : BLO_ERR_INVALID;
        TU_CHECK(st == BLO_ERR_NUMERIC && strstr(blo_solver_error(s), "iteration 0"),
                 "divergence must be reported with its iteration: %s (%s)", blo_status_name(st),
                 s ? blo_solver_error(s) : err);
        blo_solver_free(s);
    }

    ridge_free(&r);
    return tu_finish("test_hypergrad");
}
