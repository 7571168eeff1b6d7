/* test_hypergrad_methods.c — rhg_ckpt, fhg, neumann, fixed_point, first_order and darts on
 * ridge regression with per-feature penalties (tests/bilevel_problems.h), each against an
 * oracle: rhg for the same T (checkpointed reverse mode and forward mode must reproduce it),
 * the closed-form hypergradient (neumann as K grows), cg (fixed_point), the direct term and
 * the closed-form indirect part (first_order), DARTS' formula written out by hand (darts),
 * damped cg's closed form on an indefinite lower level;
 * then a few outer iterations of each through blo_solver_run. */
#include "../src/solve/solver.h"
#include "bilevel_problems.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

static blo_solver *make(ridge *r, blo_config c) {
    blo_problem p = ridge_problem(r);
    char err[512];
    blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
    TU_CHECK(s != NULL, "solver for %s: %s", c.method, err);
    return s;
}

/* dF/dx of a fresh solver at the ridge's x0 (and, when the start is learned and hy0 is given,
 * dF/dy0 as blo_solver_step hands it to the y0 optimizer, read back from one SGD step of lr 1).
 * *peak: the scratch context's peak bytes of that step. Returns 0 on success. */
static int grads(ridge *r, blo_config c, double *hx, double *hy0, size_t *peak) {
    blo_solver *s = make(r, c);
    if (!s) return 1;
    double *o[1] = {hx};
    blo_status st = blo_solver_hypergrad(s, o);
    TU_CHECK(st == BLO_OK, "%s hypergradient: %s", c.method, blo_solver_error(s));
    if (!st && (hy0 || peak)) {
        blo_solver_free(s);
        c.init_opt = blo_opt_sgd(1.0);
        s = make(r, c);
        blo_tensor *y0 = blo_solver_y0(s, 0);
        double before[RIDGE_MAXD];
        for (int j = 0; j < r->d; j++)
            before[j] = blo_tensor_get(y0, j);
        blo_record rec;
        st = blo_solver_step(s, &rec);
        TU_CHECK(st == BLO_OK, "%s step: %s", c.method, blo_solver_error(s));
        if (hy0)
            for (int j = 0; j < r->d; j++)
                hy0[j] = before[j] - blo_tensor_get(y0, j);
        if (peak) *peak = rec.peak_bytes;
    }
    blo_solver_free(s);
    return st != BLO_OK;
}

/* `method` against rhg with the same configuration: dF/dx (and dF/dy0 for a learned start)
 * within tol. */
static void same_as_rhg(ridge *r, blo_config c, const char *method, double tol, const char *what) {
    double a[RIDGE_MAXD], b[RIDGE_MAXD], a0[RIDGE_MAXD], b0[RIDGE_MAXD];
    int learned = c.init == BLO_INIT_LEARNED;
    c.method = "rhg";
    if (grads(r, c, a, learned ? a0 : NULL, NULL)) return;
    c.method = method;
    if (grads(r, c, b, learned ? b0 : NULL, NULL)) return;
    double e = tu_max_rel(r->d, b, a);
    TU_CHECK(e < tol, "%s %s: dF/dx differs from rhg by %.3g (tolerance %.1g)", method, what, e,
             tol);
    if (learned) {
        e = tu_max_rel(r->d, b0, a0);
        TU_CHECK(e < tol, "%s %s: dF/dy0 differs from rhg by %.3g", method, what, e);
    }
}

static void test_rhg_ckpt(ridge *r, double L) {
    blo_config c = blo_config_default();
    c.inner = blo_opt_sgd(0.5 / L);
    /* T a multiple of S and not; S = ⌈√T⌉, S = 1, S = T, S > T. */
    const int Ts[] = {1, 7, 16, 23, 60}, Ss[] = {0, 0, 0, 0, 7};
    for (int k = 0; k < 5; k++) {
        c.inner_steps = Ts[k];
        c.checkpoints = Ss[k];
        char what[64];
        snprintf(what, sizeof what, "sgd T=%d S=%d", Ts[k], Ss[k]);
        same_as_rhg(r, c, "rhg_ckpt", 1e-12, what);
    }
    c.inner_steps = 23;
    const int S2[] = {1, 23, 100};
    for (int k = 0; k < 3; k++) {
        c.checkpoints = S2[k];
        char what[64];
        snprintf(what, sizeof what, "sgd T=23 S=%d", S2[k]);
        same_as_rhg(r, c, "rhg_ckpt", 1e-12, what);
    }
    /* The optimizer buffers travel with the checkpoints. */
    c.checkpoints = 0;
    const blo_opt_kind kinds[3] = {BLO_OPT_MOMENTUM, BLO_OPT_NESTEROV, BLO_OPT_ADAM};
    for (int k = 0; k < 3; k++) {
        c.inner = blo_opt_sgd(0.5 / L);
        c.inner.kind = kinds[k];
        c.inner.weight_decay = kinds[k] == BLO_OPT_NESTEROV ? 0.01 : 0.0;
        if (kinds[k] == BLO_OPT_ADAM) c.inner.lr = 0.05;
        same_as_rhg(r, c, "rhg_ckpt", 1e-12, blo_opt_kind_name(kinds[k]));
    }
    /* Learned start: dF/dy0 = λ_0, with SGD and with Adam buffers. */
    c.init = BLO_INIT_LEARNED;
    c.inner = blo_opt_sgd(0.5 / L);
    same_as_rhg(r, c, "rhg_ckpt", 1e-12, "learned start, sgd");
    c.inner_steps = 0; /* no segment at all: dF/dy0 = ∂F/∂y at y0 */
    same_as_rhg(r, c, "rhg_ckpt", 1e-12, "learned start, T=0");
    same_as_rhg(r, c, "fhg", 1e-12, "learned start, T=0");
    c.inner = blo_opt_adam(0.05);
    c.inner_steps = 17;
    same_as_rhg(r, c, "rhg_ckpt", 1e-12, "learned start, adam T=17");

    /* A lower level that samples minibatches through the solver's RNG: the recomputed
     * segments must replay the same draws, and the generator must end where rhg leaves it
     * (the x after three outer iterations agree). */
    {
        ridge rb;
        ridge_init(&rb, BLO_F64, 24, 16, 5, 0.3, 11);
        rb.minibatch = 8;
        blo_config k = blo_config_default();
        k.inner = blo_opt_sgd(0.2);
        k.inner_steps = 23;
        k.init = BLO_INIT_WARM;
        k.outer_iters = 3;
        k.seed = 5;
        same_as_rhg(&rb, k, "rhg_ckpt", 1e-12, "minibatch");
        double xa[RIDGE_MAXD], xb[RIDGE_MAXD];
        for (int m = 0; m < 2; m++) {
            k.method = m ? "rhg_ckpt" : "rhg";
            blo_solver *s = make(&rb, k);
            TU_CHECK(s && blo_solver_run(s) == BLO_OK, "%s run: %s", k.method, blo_solver_error(s));
            if (s) blo_tensor_to_f64(blo_solver_x(s, 0), m ? xb : xa);
            blo_solver_free(s);
        }
        double e = tu_max_rel(rb.d, xb, xa);
        TU_CHECK(e < 1e-12, "rhg_ckpt minibatch run: x differs from rhg's by %.3g", e);
        ridge_free(&rb);
    }

    /* Memory. rhg_ckpt with S = T records the whole trajectory's graph before one reverse
     * pass (what rhg did before it walked the steps back one at a time): the per-step cost
     * every method is measured against. rhg (S = 1) keeps one state per step and one step's
     * graph, so each extra step must cost it far less; rhg_ckpt at S = ⌈√T⌉ = 20 keeps 21
     * states and one 20-step graph, under a quarter of the whole graph at T = 400. */
    {
        blo_config m = blo_config_default();
        m.inner = blo_opt_sgd(0.5 / L);
        double a[RIDGE_MAXD], b[RIDGE_MAXD], w[RIDGE_MAXD];
        size_t rhg_p[2] = {0, 0}, whole_p[2] = {0, 0}, sqrt_p = 0;
        const int Tm[2] = {100, 400};
        for (int k = 0; k < 2; k++) {
            m.inner_steps = Tm[k];
            m.method = "rhg";
            m.checkpoints = 0;
            grads(r, m, a, NULL, &rhg_p[k]);
            m.method = "rhg_ckpt";
            m.checkpoints = Tm[k];
            grads(r, m, w, NULL, &whole_p[k]);
        }
        m.checkpoints = 0;
        grads(r, m, b, NULL, &sqrt_p);
        double per_rhg = ((double)rhg_p[1] - (double)rhg_p[0]) / (Tm[1] - Tm[0]);
        double per_whole = ((double)whole_p[1] - (double)whole_p[0]) / (Tm[1] - Tm[0]);
        printf("peak scratch bytes T=100/400: rhg %zu/%zu (%.0f per step), whole graph %zu/%zu "
               "(%.0f per step), rhg_ckpt S=20 %zu\n",
               rhg_p[0], rhg_p[1], per_rhg, whole_p[0], whole_p[1], per_whole, sqrt_p);
        TU_CHECK(rhg_p[0] > 0 && per_rhg * 8 < per_whole,
                 "rhg grows by %.0f bytes per unrolled step, not under an eighth of the whole "
                 "graph's %.0f",
                 per_rhg, per_whole);
        TU_CHECK(sqrt_p > 0 && sqrt_p * 4 < whole_p[1],
                 "rhg_ckpt peak %zu bytes is not under a quarter of the whole graph's %zu", sqrt_p,
                 whole_p[1]);
        TU_CHECK(tu_max_rel(r->d, b, a) < 1e-12, "rhg_ckpt T=400 vs rhg: %.3g",
                 tu_max_rel(r->d, b, a));
        TU_CHECK(tu_max_rel(r->d, w, a) < 1e-12, "rhg_ckpt S=T=400 vs rhg: %.3g",
                 tu_max_rel(r->d, w, a));
    }
    {
        blo_problem p = ridge_problem(r);
        blo_config e = blo_config_default();
        e.method = "rhg_ckpt";
        e.checkpoints = -1;
        char err[256];
        TU_CHECK(!blo_solver_new(&p, &e, err, sizeof err) && strstr(err, "checkpoints"),
                 "negative checkpoints must be refused: %s", err);
    }
}

static void test_fhg(ridge *r, double L) {
    blo_config c = blo_config_default();
    c.inner = blo_opt_sgd(0.5 / L);
    c.inner_steps = 40;
    same_as_rhg(r, c, "fhg", 1e-10, "sgd T=40");
    c.inner.kind = BLO_OPT_MOMENTUM;
    c.inner.weight_decay = 0.01;
    same_as_rhg(r, c, "fhg", 1e-10, "momentum T=40");
    c.inner = blo_opt_adam(0.05);
    c.inner_steps = 15;
    same_as_rhg(r, c, "fhg", 1e-10, "adam T=15");
    c.inner = blo_opt_sgd(0.5 / L);
    c.init = BLO_INIT_LEARNED;
    same_as_rhg(r, c, "fhg", 1e-10, "learned start T=15");

    /* A learned inner step size is one more column of Z. */
    {
        blo_ctx *ctx = blo_ctx_new(0);
        int64_t one = 1;
        double lrv = 0.5 / L;
        blo_tensor *xs[2] = {r->x0, blo_from_f64(ctx, BLO_F64, 1, &one, &lrv)};
        blo_problem p = ridge_problem(r);
        p.nx = 2;
        p.x = xs;
        blo_config f = blo_config_default();
        f.inner_steps = 12;
        f.lr_x = 1;
        double got[2][RIDGE_MAXD + 1];
        for (int m = 0; m < 2; m++) {
            f.method = m ? "fhg" : "rhg";
            char err[256];
            blo_solver *s = blo_solver_new(&p, &f, err, sizeof err);
            TU_CHECK(s != NULL, "learned lr %s: %s", f.method, err);
            if (!s) continue;
            double *o[2] = {got[m], got[m] + r->d};
            TU_CHECK(blo_solver_hypergrad(s, o) == BLO_OK, "%s: %s", f.method, blo_solver_error(s));
            blo_solver_free(s);
        }
        double e = tu_max_rel(r->d + 1, got[1], got[0]);
        TU_CHECK(e < 1e-10, "fhg with a learned step size differs from rhg by %.3g", e);
        blo_ctx_free(ctx);
    }

    /* Refusal above max_fhg_dim, naming the alternatives; the learned start counts. */
    blo_problem p = ridge_problem(r);
    blo_config e = blo_config_default();
    e.method = "fhg";
    e.max_fhg_dim = 4;
    char err[512];
    TU_CHECK(!blo_solver_new(&p, &e, err, sizeof err) && strstr(err, "max_fhg_dim") &&
                 strstr(err, "rhg") && strstr(err, "cg") && strstr(err, "Jacobian-vector"),
             "fhg must refuse dim x = 5 > 4 naming rhg and cg: %s", err);
    e.max_fhg_dim = 7;
    blo_solver *s = blo_solver_new(&p, &e, err, sizeof err);
    TU_CHECK(s != NULL, "fhg with dim x = 5 <= 7 must be accepted: %s", err);
    blo_solver_free(s);
    e.init = BLO_INIT_LEARNED;
    TU_CHECK(!blo_solver_new(&p, &e, err, sizeof err) && strstr(err, "dim y0 = 5"),
             "fhg with a learned start needs 10 > 7 tangents: %s", err);
}

static void test_neumann(ridge *r, double L, const double *exact, const double *hg_cg) {
    blo_config c = blo_config_default();
    c.method = "neumann";
    c.inner = blo_opt_sgd(1.0 / L);
    c.inner_steps = 400;
    c.alpha = 1.0 / L;
    double hg[RIDGE_MAXD], prev = INFINITY;
    for (int K = 0; K <= 64; K = K ? 2 * K : 4) {
        c.neumann_terms = K;
        if (grads(r, c, hg, NULL, NULL)) return;
        double e = tu_max_rel(r->d, hg, exact);
        printf("neumann K=%4d: error to the closed form %.3g\n", K, e);
        TU_CHECK(e < prev, "neumann error must shrink with K: K=%d %.3g, before %.3g", K, e, prev);
        prev = e;
    }
    TU_CHECK(prev < 1e-6, "neumann K=64: error to the closed form %.3g, want < 1e-6", prev);
    double e = tu_max_rel(r->d, hg, hg_cg);
    TU_CHECK(e < 1e-6, "neumann K=64 vs cg at the same y_T: %.3g", e);

    /* α beyond 2/λ_max (λ_max ≥ L/√d for the Gershgorin bound L, so 10/L > 2√5/L is): the
     * series diverges, and the message says what to change. */
    blo_problem p = ridge_problem(r);
    c.alpha = 10.0 / L;
    c.neumann_terms = 200;
    char err[256];
    blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
    double out[RIDGE_MAXD], *o[1] = {out};
    blo_status st = s ? blo_solver_hypergrad(s, o) : BLO_ERR_INVALID;
    TU_CHECK(st == BLO_ERR_NUMERIC && strstr(blo_solver_error(s), "alpha"),
             "neumann with a too large alpha must fail naming alpha: %s",
             s ? blo_solver_error(s) : err);
    blo_solver_free(s);
}

static void test_fixed_point(ridge *r, double L, const double *hg_cg) {
    blo_config c = blo_config_default();
    c.method = "fixed_point";
    c.inner = blo_opt_sgd(1.0 / L);
    c.inner_steps = 400;
    c.solve_iters = 3000;
    c.tol = 1e-14;
    double hg[RIDGE_MAXD];
    if (!grads(r, c, hg, NULL, NULL)) {
        double e = tu_max_rel(r->d, hg, hg_cg);
        printf("fixed_point vs cg: %.3g\n", e);
        TU_CHECK(e < 1e-8, "fixed_point vs cg: %.3g", e);
    }
    /* Few iterations are not enough: the test can see the difference. */
    c.solve_iters = 3;
    if (!grads(r, c, hg, NULL, NULL))
        TU_CHECK(tu_max_rel(r->d, hg, hg_cg) > 1e-4, "fixed_point K=3 should still be far from cg");

    blo_problem p = ridge_problem(r);
    char err[256];
    const blo_opt_kind kinds[3] = {BLO_OPT_MOMENTUM, BLO_OPT_NESTEROV, BLO_OPT_ADAM};
    for (int k = 0; k < 3; k++) {
        c.inner.kind = kinds[k];
        TU_CHECK(!blo_solver_new(&p, &c, err, sizeof err) && strstr(err, "sgd") &&
                     strstr(err, blo_opt_kind_name(kinds[k])),
                 "fixed_point must refuse a %s inner optimizer: %s", blo_opt_kind_name(kinds[k]),
                 err);
    }
}

static void test_first_order(ridge *r, double L, const double *x0, const double *exact) {
    blo_config c = blo_config_default();
    c.method = "first_order";
    c.inner = blo_opt_sgd(1.0 / L);
    c.inner_steps = 400;
    double fo[RIDGE_MAXD], rhg[RIDGE_MAXD], direct[RIDGE_MAXD], dropped[RIDGE_MAXD],
        indirect[RIDGE_MAXD];
    if (grads(r, c, fo, NULL, NULL)) return;
    for (int j = 0; j < r->d; j++)
        direct[j] = r->c * x0[j];
    double e = tu_max_rel(r->d, fo, direct);
    TU_CHECK(e < 1e-15, "first_order must return the direct term c·x: off by %.3g", e);
    c.method = "rhg";
    if (grads(r, c, rhg, NULL, NULL)) return;
    for (int j = 0; j < r->d; j++) {
        dropped[j] = rhg[j] - fo[j];
        indirect[j] = exact[j] - direct[j];
    }
    e = tu_max_rel(r->d, dropped, indirect);
    TU_CHECK(e < 1e-6, "rhg − first_order vs the closed-form indirect part: %.3g", e);

    /* Learned start: dF/dy0 = ∂F/∂y at y_T = A_vᵀ(A_v y_T − b_v). */
    c.method = "first_order";
    c.init = BLO_INIT_LEARNED;
    c.init_opt = blo_opt_sgd(1.0);
    c.inner_steps = 20;
    blo_solver *s = make(r, c);
    if (!s) return;
    blo_tensor *y0 = blo_solver_y0(s, 0);
    double before[RIDGE_MAXD], hy0[RIDGE_MAXD], yT[RIDGE_MAXD], want[RIDGE_MAXD];
    blo_tensor_to_f64(y0, before);
    TU_CHECK(blo_solver_step(s, NULL) == BLO_OK, "first_order step: %s", blo_solver_error(s));
    for (int j = 0; j < r->d; j++)
        hy0[j] = before[j] - blo_tensor_get(y0, j);
    blo_tensor_to_f64(blo_solver_y(s, 0), yT);
    for (int j = 0; j < r->d; j++)
        want[j] = 0;
    for (int k = 0; k < r->nv; k++) {
        double res = -r->bvd[k];
        for (int j = 0; j < r->d; j++)
            res += r->Avd[k * r->d + j] * yT[j];
        for (int j = 0; j < r->d; j++)
            want[j] += r->Avd[k * r->d + j] * res;
    }
    e = tu_max_rel(r->d, hy0, want);
    TU_CHECK(e < 1e-12, "first_order dF/dy0 vs ∂F/∂y at y_T by hand: %.3g", e);
    blo_solver_free(s);
}

/* DARTS' formula for the ridge, by hand: y_T by T gradient steps from y0, y' = y_T − ξ∇_y f,
 * v = A_vᵀ(A_v y' − b_v); ∇_x f = ½ y⊙y, so the central difference is exactly y_T ⊙ v and
 * dF/dx = c x − ξ y_T ⊙ v. */
static void darts_by_hand(const ridge *r, const double *x, const double *y0, int T, double xi,
                          double *out) {
    int d = r->d;
    double y[RIDGE_MAXD], g[RIDGE_MAXD], yv[RIDGE_MAXD], v[RIDGE_MAXD];
    memcpy(y, y0, sizeof(double) * (size_t)d);
    for (int t = 0; t <= T; t++) {
        for (int j = 0; j < d; j++)
            g[j] = x[j] * y[j];
        for (int k = 0; k < r->n; k++) {
            double res = -r->bd[k];
            for (int j = 0; j < d; j++)
                res += r->Ad[k * d + j] * y[j];
            for (int j = 0; j < d; j++)
                g[j] += r->Ad[k * d + j] * res;
        }
        if (t == T) break;
        for (int j = 0; j < d; j++)
            y[j] -= xi * g[j];
    }
    for (int j = 0; j < d; j++)
        yv[j] = y[j] - xi * g[j], v[j] = 0;
    for (int k = 0; k < r->nv; k++) {
        double res = -r->bvd[k];
        for (int j = 0; j < d; j++)
            res += r->Avd[k * d + j] * yv[j];
        for (int j = 0; j < d; j++)
            v[j] += r->Avd[k * d + j] * res;
    }
    for (int j = 0; j < d; j++)
        out[j] = r->c * x[j] - xi * y[j] * v[j];
}

static void test_darts(ridge *r, double L, const double *x0) {
    double y0[RIDGE_MAXD], hg[RIDGE_MAXD], want[RIDGE_MAXD];
    blo_tensor_to_f64(r->y0, y0);
    blo_config c = blo_config_default();
    c.method = "darts";
    c.inner = blo_opt_sgd(0.8 / L);
    const int Ts[2] = {0, 30};
    const double etas[2] = {0.01, 0.5};
    for (int ti = 0; ti < 2; ti++)
        for (int ei = 0; ei < 2; ei++) {
            c.inner_steps = Ts[ti];
            c.fd_radius = etas[ei];
            if (grads(r, c, hg, NULL, NULL)) continue;
            darts_by_hand(r, x0, y0, Ts[ti], c.inner.lr, want);
            double e = tu_max_rel(r->d, hg, want);
            TU_CHECK(e < 1e-10, "darts T=%d radius=%g vs its formula by hand: %.3g", Ts[ti],
                     etas[ei], e);
        }
    /* With no warm steps, DARTS' virtual step is the whole trajectory: rhg through one step
     * from y0 computes the same derivative exactly (the central difference is exact here). */
    c.inner_steps = 0;
    c.fd_radius = 0.01;
    double rh[RIDGE_MAXD];
    grads(r, c, hg, NULL, NULL);
    c.method = "rhg";
    c.inner_steps = 1;
    grads(r, c, rh, NULL, NULL);
    double e = tu_max_rel(r->d, hg, rh);
    TU_CHECK(e < 1e-10, "darts with T=0 vs rhg with T=1: %.3g", e);

    blo_problem p = ridge_problem(r);
    c.method = "darts";
    c.fd_radius = 0;
    char err[256];
    TU_CHECK(!blo_solver_new(&p, &c, err, sizeof err) && strstr(err, "fd_radius"),
             "darts must refuse a zero radius: %s", err);
}

typedef struct trace {
    int n;
    double first, last;
} trace;

static int on_record(const blo_record *rec, void *user) {
    trace *t = user;
    if (t->n++ == 0) t->first = rec->upper;
    t->last = rec->upper;
    return 0;
}

/* A few outer iterations of every method through blo_solver_run; the ones whose gradient
 * includes the indirect term lower F. */
static void test_runs(ridge *r, double L) {
    const char *names[6] = {"rhg_ckpt", "fhg", "neumann", "fixed_point", "first_order", "darts"};
    for (int k = 0; k < 6; k++) {
        const blo_method_info *mi = blo_method_find(names[k]);
        TU_CHECK(mi && mi->maths[0] && mi->paper[0] && mi->settings[0],
                 "%s must be registered with its maths, paper and settings", names[k]);
        blo_config c = blo_config_default();
        c.method = names[k];
        c.inner = blo_opt_sgd(1.0 / L);
        c.inner_steps = 30;
        c.init = BLO_INIT_WARM;
        c.outer = blo_opt_adam(0.05);
        c.outer_iters = 8;
        c.alpha = 1.0 / L;
        c.trhg_window = c.neumann_terms = c.solve_iters = 50;
        trace t = {0, 0, 0};
        c.on_record = on_record;
        c.record_user = &t;
        blo_solver *s = make(r, c);
        if (!s) continue;
        blo_status st = blo_solver_run(s);
        TU_CHECK(st == BLO_OK && t.n == 8 && blo_solver_iter(s) == 8, "%s: run of 8 iterations: %s",
                 names[k], blo_solver_error(s));
        TU_CHECK(isfinite(t.first) && isfinite(t.last), "%s: F not finite", names[k]);
        if (strcmp(names[k], "first_order"))
            TU_CHECK(t.last < t.first, "%s: F must decrease over 8 outer steps: %.6g -> %.6g",
                     names[k], t.first, t.last);
        blo_solver_free(s);
    }
}

/* Damped cg against its closed form on an indefinite lower level. With x_0 chosen so that
 * H_00 = (AᵀA)_00 + x_0 = −1 < 0, H = AᵀA + diag(x) is indefinite (e_0ᵀ H e_0 < 0); δ above
 * the Gershgorin bound max_i Σ_j |H_ij| makes H + δI positive definite. With T = 0, y_T = y0
 * and the damped implicit hypergradient is, in closed form,
 *     dF/dx = c x − y0 ⊙ v,   (H + δI) v = A_vᵀ (A_v y0 − b_v)
 * (∇²_xy f · v = y ⊙ v for f's ½ yᵀ diag(x) y). CG on the d = 5 system converges in d steps. */
static void test_cg_damping(void) {
    ridge r;
    ridge_init(&r, BLO_F64, 24, 16, 5, 0.3, 11);
    int d = r.d;
    double x[RIDGE_MAXD], y[RIDGE_MAXD], H[RIDGE_MAXD * RIDGE_MAXD], v[RIDGE_MAXD];
    blo_tensor_to_f64(r.x0, x);
    blo_tensor_to_f64(r.y0, y);
    double ata00 = 0;
    for (int k = 0; k < r.n; k++)
        ata00 += r.Ad[k * d] * r.Ad[k * d];
    x[0] = -ata00 - 1;
    blo_tensor_set(r.x0, 0, x[0]);
    double bound = 0;
    for (int i = 0; i < d; i++) {
        double row = 0;
        for (int j = 0; j < d; j++) {
            double h = i == j ? x[i] : 0;
            for (int k = 0; k < r.n; k++)
                h += r.Ad[k * d + i] * r.Ad[k * d + j];
            H[i * d + j] = h;
            row += fabs(h);
        }
        bound = fmax(bound, row);
    }
    TU_CHECK(H[0] < 0, "the lower level must be indefinite: H_00 = %g", H[0]);
    double delta = bound + 1, exact[RIDGE_MAXD];
    for (int i = 0; i < d; i++)
        H[i * d + i] += delta;
    for (int i = 0; i < d; i++) { /* v's right-hand side: A_vᵀ (A_v y0 − b_v) */
        v[i] = 0;
        for (int k = 0; k < r.nv; k++) {
            double res = -r.bvd[k];
            for (int j = 0; j < d; j++)
                res += r.Avd[k * d + j] * y[j];
            v[i] += r.Avd[k * d + i] * res;
        }
    }
    ridge_solve(d, H, v);
    for (int i = 0; i < d; i++)
        exact[i] = r.c * x[i] - y[i] * v[i];

    blo_config c = blo_config_default();
    c.method = "cg";
    c.inner_steps = 0;
    c.solve_iters = 20;
    c.tol = 1e-14;
    c.damping = delta;
    double hg[RIDGE_MAXD];
    grads(&r, c, hg, NULL, NULL);
    double e = tu_max_rel(d, hg, exact);
    printf("damped cg (delta %.3g, H_00 = %.3g) vs the closed form: %.3g\n", delta, H[0] - delta,
           e);
    TU_CHECK(e < 1e-10, "damped cg vs the closed form (H + %g I): %.3g", delta, e);
    /* Undamped, the same system is not the damped one: the damping is really applied. */
    c.damping = 0;
    blo_solver *s = make(&r, c);
    double *o[1] = {hg};
    if (s && !blo_solver_hypergrad(s, o))
        TU_CHECK(tu_max_rel(d, hg, exact) > 1e-3, "cg without damping must differ from damped cg");
    blo_solver_free(s);
    c.damping = -1;
    blo_problem p = ridge_problem(&r);
    char err[256] = "";
    s = blo_solver_new(&p, &c, err, sizeof err);
    if (s) {
        double *o2[1] = {hg};
        TU_CHECK(blo_solver_hypergrad(s, o2) == BLO_ERR_INVALID &&
                     strstr(blo_solver_error(s), "damping"),
                 "a negative damping must be refused naming it");
        blo_solver_free(s);
    } else {
        TU_CHECK(strstr(err, "damping") != NULL, "a negative damping must be named: %s", err);
    }
    ridge_free(&r);
}

int main(void) {
    ridge r;
    ridge_init(&r, BLO_F64, 24, 16, 5, 0.3, 7);
    double x0[RIDGE_MAXD], exact[RIDGE_MAXD], ystar[RIDGE_MAXD], L;
    blo_tensor_to_f64(r.x0, x0);
    ridge_exact(&r, x0, exact, ystar, &L);

    /* cg at y_T (T = 400) is the implicit methods' oracle at the same y_T. */
    blo_config c = blo_config_default();
    c.method = "cg";
    c.inner = blo_opt_sgd(1.0 / L);
    c.inner_steps = 400;
    c.solve_iters = 50;
    c.tol = 1e-14;
    double hg_cg[RIDGE_MAXD];
    grads(&r, c, hg_cg, NULL, NULL);
    TU_CHECK(tu_max_rel(r.d, hg_cg, exact) < 1e-6, "cg vs the closed form: %.3g",
             tu_max_rel(r.d, hg_cg, exact));

    test_rhg_ckpt(&r, L);
    test_fhg(&r, L);
    test_neumann(&r, L, exact, hg_cg);
    test_fixed_point(&r, L, hg_cg);
    test_first_order(&r, L, x0, exact);
    test_darts(&r, L, x0);
    test_runs(&r, L);
    test_cg_damping();

    ridge_free(&r);
    return tu_finish("test_hypergrad_methods");
}
