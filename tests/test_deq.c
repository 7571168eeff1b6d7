/* test_deq.c — the equilibrium layer of blo/deq.h on a tiny float64 layer (B = 3 examples,
 * p = 4 inputs, d = 5 units) with the loss L(z*) = Σ c ⊙ z* (so ∂L/∂z* = c):
 *   - the implicit gradient equals central finite differences of L through the forward solve,
 *     and the gradient of backprop through many unrolled iterations, to the solver tolerance —
 *     for the normalised W with tanh and picard, and for the monotone W with relu and fb;
 *   - phantom with λ = 1, k = 1 is Jacobian-free backprop; the phantom error shrinks with k at
 *     the contraction's rate, and the Jacobian-free error shrinks with the contraction factor s;
 *   - Anderson reaches the fixed point of plain iteration in fewer iterations;
 *   - Peaceman–Rachford reaches fb's and Anderson's z* in fewer iterations than fb for a small
 *     margin m, and its implicit gradient equals finite differences;
 *   - an iteration cap that stops the solve is reported (rows unconverged), an expanding map
 *     is an error with a message, bad options are refused by name. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#define B 3
#define P 4
#define D 5

typedef struct fix {
    blo_ctx *pc, *sc;
    blo_deq L;
    blo_tensor *x, *c;
} fix;

static void fix_init(fix *f, const blo_deq_opts *o, uint64_t seed) {
    blo_rng r;
    blo_rng_seed(&r, seed);
    f->pc = blo_ctx_new(0);
    f->sc = blo_ctx_new(0);
    TU_CHECK(blo_deq_init(f->pc, &f->L, P, D, o, BLO_F64, &r) == BLO_OK, "init: %s",
             blo_ctx_error(f->pc));
    /* Inputs large enough that relu units are active and inactive, none at a kink. */
    f->x = blo_tensor_new(f->pc, BLO_F64, 2, (int64_t[]){B, P});
    f->c = blo_tensor_new(f->pc, BLO_F64, 2, (int64_t[]){B, D});
    blo_init_normal(f->x, &r, 0, 1.5);
    blo_init_normal(f->c, &r, 0, 1);
    blo_init_normal(f->L.p[f->L.np - 1], &r, 0, 0.3);
    /* spectral: converge the power iteration, so σ̂ is ‖V‖₂ and its gradient u vᵀ. */
    for (int i = 0; o->param == BLO_DEQ_SPECTRAL && i < 300; i++) {
        blo_mark mk = blo_ctx_mark(f->sc);
        blo_deq_weight(f->sc, &f->L);
        blo_ctx_rewind(f->sc, mk);
    }
}

static void fix_free(fix *f) {
    blo_ctx_free(f->sc);
    blo_ctx_free(f->pc);
}

/* L(z*) by a forward solve. */
static double loss(fix *f) {
    blo_mark mk = blo_ctx_mark(f->sc);
    blo_tensor *z = blo_deq_solve(f->sc, &f->L, blo_deq_inject(f->sc, &f->L, f->x), NULL);
    double v = z ? blo_tensor_item(blo_dot(f->sc, z, f->c)) : NAN;
    blo_ctx_rewind(f->sc, mk);
    return v;
}

/* The layer's gradient (all parameters flattened into g) by f->L.o.backward. */
static int layer_grad(fix *f, double *g, blo_deq_stats *st) {
    blo_mark mk = blo_ctx_mark(f->sc);
    blo_tensor *gr[BLO_DEQ_MAX_PARAMS] = {0};
    int n = 0;
    blo_tensor *inj = blo_deq_inject(f->sc, &f->L, f->x);
    if (f->L.o.backward == BLO_DEQ_UNROLLED) {
        blo_tensor *z = blo_deq_unroll(f->sc, &f->L, inj, st);
        blo_tensor *l = blo_dot(f->sc, z, f->c);
        if (!l || blo_grad(f->sc, 1, &l, NULL, f->L.np, f->L.p, 0, gr)) goto out;
    } else {
        blo_tensor *z = blo_deq_solve(f->sc, &f->L, inj, st);
        if (!z || blo_deq_backward(f->sc, &f->L, inj, z, f->c, gr, st)) goto out;
    }
    for (int i = 0; i < f->L.np; i++) {
        blo_tensor_to_f64(gr[i], g + n);
        n += (int)blo_tensor_numel(gr[i]);
    }
out:
    tu_check_ok(f->sc, "layer gradient");
    blo_ctx_rewind(f->sc, mk);
    return n;
}

/* Central differences of L over every parameter element. */
static int fd_grad(fix *f, double *g) {
    const double eps = 1e-6;
    int n = 0;
    for (int i = 0; i < f->L.np; i++)
        for (int64_t j = 0; j < blo_tensor_numel(f->L.p[i]); j++) {
            double v = blo_tensor_get(f->L.p[i], j);
            blo_tensor_set(f->L.p[i], j, v + eps);
            double lp = loss(f);
            blo_tensor_set(f->L.p[i], j, v - eps);
            double lm = loss(f);
            blo_tensor_set(f->L.p[i], j, v);
            g[n++] = (lp - lm) / (2 * eps);
        }
    return n;
}

static double rel_err(int n, const double *a, const double *b) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++)
        num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
    return sqrt(num / den);
}

static blo_deq_opts tight(blo_deq_param param, blo_deq_act act, blo_deq_solver solver) {
    blo_deq_opts o = blo_deq_opts_default();
    o.param = param, o.act = act, o.solver = solver;
    o.scale = 0.5;
    o.max_iter = o.back_max_iter = 2000;
    o.tol = o.back_tol = 1e-13;
    return o;
}

#define NP 128

/* implicit = finite differences = unrolled, for the layer in f (freed here). */
static void check_exact(const char *name, fix f, double fd_tol) {
    double gi[NP] = {0}, gf[NP] = {0}, gu[NP] = {0};
    blo_deq_stats si, su;
    int n = layer_grad(&f, gi, &si);
    TU_CHECK(si.fwd_converged && si.unconverged == 0 && si.bwd_converged,
             "%s: solves converged (forward %d iterations, residual %.3g; adjoint %d, %.3g)",
             name, si.fwd_iters, si.fwd_residual, si.bwd_iters, si.bwd_residual);
    int nf = fd_grad(&f, gf);
    double e_fd = rel_err(n, gi, gf);
    TU_CHECK(n == nf && n > 0 && e_fd < fd_tol, "%s: implicit vs finite differences: %.3g", name,
             e_fd);
    f.L.o.backward = BLO_DEQ_UNROLLED;
    int nu = layer_grad(&f, gu, &su);
    double e_un = rel_err(n, gu, gi);
    TU_CHECK(nu == n && e_un < 1e-9, "%s: unrolled (%d iterations) vs implicit: %.3g", name,
             su.fwd_iters, e_un);
    fprintf(stderr, "%s: forward %d iterations, adjoint %d; implicit vs fd %.2g, vs unrolled %.2g\n",
            name, si.fwd_iters, si.bwd_iters, e_fd, e_un);
    fix_free(&f);
}

/* The same for one parametrisation / solver of the dense layer. */
static void test_exact(const char *name, blo_deq_opts o, double fd_tol) {
    fix f;
    fix_init(&f, &o, 7);
    check_exact(name, f, fd_tol);
}

/* The conv layer on B images 1 × 5 × 5, 2 channels, 3 × 3 kernels (d = 50, 92 parameters). */
#define CONV_HW 5
#define CONV_CH 2
static void fix_init_conv(fix *f, const blo_deq_opts *o, uint64_t seed) {
    blo_rng r;
    blo_rng_seed(&r, seed);
    f->pc = blo_ctx_new(0);
    f->sc = blo_ctx_new(0);
    TU_CHECK(blo_deq_init_conv(f->pc, &f->L, 1, CONV_HW, CONV_CH, 3, 1, o, BLO_F64, &r) == BLO_OK,
             "init conv: %s", blo_ctx_error(f->pc));
    f->x = blo_tensor_new(f->pc, BLO_F64, 2, (int64_t[]){B, CONV_HW * CONV_HW});
    f->c = blo_tensor_new(f->pc, BLO_F64, 2, (int64_t[]){B, f->L.d});
    blo_init_normal(f->x, &r, 0, 1.5);
    blo_init_normal(f->c, &r, 0, 1);
    blo_init_normal(f->L.p[3], &r, 0, 0.3);
    /* A and B somewhat smaller than at init (0.12): plain iteration, unrolled, must converge. */
    for (int i = 0; i < 2; i++)
        blo_init_normal(f->L.p[i], &r, 0, 0.06);
}

/* The conv layer: W is monotone (⟨z, (I − W) z⟩ = m ‖z‖² + ‖A z‖² >= m ‖z‖² on random z, the
 * A z by blo_conv2d); the implicit gradient through fb and anderson equals finite differences
 * and the unrolled gradient; pr is refused with the reason. */
static void test_conv(void) {
    blo_deq_opts o = tight(BLO_DEQ_MONOTONE, BLO_DEQ_RELU, BLO_DEQ_FB);
    o.m = 0.5; /* plain iteration (anderson's, unrolled) needs |0.5 + i s| < 1 over S's spectrum */
    fix f;
    fix_init_conv(&f, &o, 17);
    TU_CHECK(f.L.d == CONV_CH * CONV_HW * CONV_HW && f.L.in == CONV_HW * CONV_HW, "conv sizes");
    blo_rng r;
    blo_rng_seed(&r, 4);
    double worst = INFINITY, dev = 0;
    blo_conv2d_params cp = blo_conv2d_default();
    cp.pad_h = cp.pad_w = 1;
    for (int t = 0; t < 20; t++) {
        blo_mark mk = blo_ctx_mark(f.sc);
        blo_tensor *z = blo_tensor_new(f.sc, BLO_F64, 2, (int64_t[]){4, f.L.d});
        blo_init_normal(z, &r, 0, 1);
        blo_tensor *Wz = blo_deq_apply_weight(f.sc, &f.L, z);
        blo_tensor *Az =
            blo_conv2d(f.sc, blo_reshape(f.sc, z, 4, (int64_t[]){4, CONV_CH, CONV_HW, CONV_HW}),
                       f.L.p[0], NULL, &cp);
        double zz = blo_tensor_item(blo_dot(f.sc, z, z));
        double q = Wz ? blo_tensor_item(blo_dot(f.sc, z, blo_sub(f.sc, z, Wz))) : NAN;
        double aa = Az ? blo_tensor_item(blo_dot(f.sc, Az, Az)) : NAN;
        worst = fmin(worst, (q - o.m * zz) / zz);
        dev = fmax(dev, fabs(q - o.m * zz - aa) / zz);
        blo_ctx_rewind(f.sc, mk);
    }
    TU_CHECK(worst >= 0 && dev < 1e-12,
             "conv W monotone: min (<z, (I - W)z> - m|z|^2) / |z|^2 = %.3g, deviation from "
             "|Az|^2 %.3g",
             worst, dev);
    fprintf(stderr,
            "conv: <z, (I - W) z> / |z|^2 - m >= %.3g over 20 z, = |Az|^2 / |z|^2 to %.2g\n", worst,
            dev);
    tu_check_ok(f.sc, "conv monotone");
    check_exact("conv/monotone/relu/fb", f, 1e-6);
    o.solver = BLO_DEQ_ANDERSON;
    fix_init_conv(&f, &o, 17);
    check_exact("conv/monotone/relu/anderson", f, 1e-6);
    o.solver = BLO_DEQ_PR;
    blo_ctx *ctx = blo_ctx_new(0);
    blo_deq L;
    blo_rng_seed(&r, 1);
    TU_CHECK(blo_deq_init_conv(ctx, &L, 1, 5, 2, 3, 1, &o, BLO_F64, &r) == BLO_ERR_INVALID &&
                 strstr(blo_ctx_error(ctx), "FFT"),
             "conv refuses pr: %s", blo_ctx_error(ctx));
    blo_ctx_clear_error(ctx);
    o.solver = BLO_DEQ_FB;
    TU_CHECK(blo_deq_init_conv(ctx, &L, 1, 5, 2, 4, 1, &o, BLO_F64, &r) == BLO_ERR_INVALID &&
                 strstr(blo_ctx_error(ctx), "odd"),
             "conv refuses an even kernel: %s", blo_ctx_error(ctx));
    blo_ctx_free(ctx);
}

/* Phantom → implicit with k (rate ≤ the contraction factor s at λ = 1); phantom(k = 1, λ = 1)
 * = Jacobian-free; the Jacobian-free error falls with s. */
static void test_approximations(void) {
    blo_deq_opts o = tight(BLO_DEQ_WEIGHT, BLO_DEQ_TANH, BLO_DEQ_PICARD);
    fix f;
    fix_init(&f, &o, 11);
    double gi[NP], ga[NP], gb[NP];
    int n = layer_grad(&f, gi, NULL);
    f.L.o.backward = BLO_DEQ_JFB;
    layer_grad(&f, ga, NULL);
    f.L.o.backward = BLO_DEQ_PHANTOM;
    f.L.o.phantom_lambda = 1;
    f.L.o.phantom_k = 1;
    layer_grad(&f, gb, NULL);
    TU_CHECK(rel_err(n, gb, ga) < 1e-14, "phantom k = 1, λ = 1 vs jfb: %.3g", rel_err(n, gb, ga));
    double prev = rel_err(n, ga, gi);
    for (int k = 2; k <= 16; k *= 2) {
        f.L.o.phantom_k = k;
        layer_grad(&f, gb, NULL);
        double e = rel_err(n, gb, gi);
        /* ρ ≤ s = 0.5 per step: doubling k from k/2 multiplies the error by ≤ s^(k/2). */
        TU_CHECK(e <= prev * pow(0.5, k / 2) * 1.5 + 1e-12,
                 "phantom k = %d: error %.3g after %.3g at k = %d", k, e, prev, k / 2);
        fprintf(stderr, "phantom (λ = 1) k = %2d: relative error %.3g\n", k, e);
        prev = e;
    }
    TU_CHECK(prev < 1e-4, "phantom k = 16: %.3g", prev);
    f.L.o.phantom_lambda = 0.5;
    f.L.o.phantom_k = 40;
    layer_grad(&f, gb, NULL);
    TU_CHECK(rel_err(n, gb, gi) < 1e-6, "phantom λ = 0.5, k = 40: %.3g", rel_err(n, gb, gi));
    fix_free(&f);

    /* JFB: error (∂Φ/∂θ)ᵀ Σ_{j≥1} (J_Φᵀ)^j c = O(s) as s → 0. */
    double e_prev = NAN;
    for (double s = 0.4; s > 0.04; s /= 2) {
        o.scale = s;
        fix_init(&f, &o, 11);
        layer_grad(&f, gi, NULL);
        f.L.o.backward = BLO_DEQ_JFB;
        layer_grad(&f, ga, NULL);
        double e = rel_err(n, ga, gi);
        fprintf(stderr, "jfb s = %.3f: relative error %.3g\n", s, e);
        TU_CHECK(e < s / (1 - s) * 3, "jfb at s = %.3f: %.3g beyond O(s / (1 − s))", s, e);
        if (!isnan(e_prev))
            TU_CHECK(e < 0.7 * e_prev && e > 0.3 * e_prev,
                     "jfb: halving s took the error from %.3g to %.3g, not about half", e_prev, e);
        e_prev = e;
        fix_free(&f);
    }
}

static void test_anderson(void) {
    blo_deq_opts o = tight(BLO_DEQ_WEIGHT, BLO_DEQ_TANH, BLO_DEQ_PICARD);
    o.scale = 0.95;
    o.tol = 1e-10;
    fix f;
    fix_init(&f, &o, 3);
    blo_deq_stats sp, sa;
    blo_tensor *zp = blo_deq_solve(f.sc, &f.L, blo_deq_inject(f.sc, &f.L, f.x), &sp);
    f.L.o.solver = BLO_DEQ_ANDERSON;
    blo_tensor *za = blo_deq_solve(f.sc, &f.L, blo_deq_inject(f.sc, &f.L, f.x), &sa);
    TU_CHECK(zp && za && sp.fwd_converged && sa.fwd_converged, "both converge");
    double d = zp && za ? sqrt(blo_tensor_item(blo_dot(f.sc, blo_sub(f.sc, zp, za),
                                                       blo_sub(f.sc, zp, za))))
                        : NAN;
    TU_CHECK(d < 1e-8, "anderson and picard reach the same z*: ‖Δ‖ = %.3g", d);
    TU_CHECK(sa.fwd_iters < sp.fwd_iters, "anderson %d iterations, picard %d", sa.fwd_iters,
             sp.fwd_iters);
    fprintf(stderr, "s = 0.95: picard %d iterations, anderson %d\n", sp.fwd_iters, sa.fwd_iters);
    /* A cap that stops the solve: reported, every row unconverged, not an error. */
    f.L.o.max_iter = 2;
    blo_tensor *zc = blo_deq_solve(f.sc, &f.L, blo_deq_inject(f.sc, &f.L, f.x), &sa);
    TU_CHECK(zc && !sa.fwd_converged && sa.unconverged == B && sa.fwd_residual > o.tol,
             "capped: converged %d, unconverged %lld, residual %.3g", sa.fwd_converged,
             (long long)sa.unconverged, sa.fwd_residual);
    fix_free(&f);
}

/* Peaceman–Rachford on the monotone W with a small margin m: the same z* as fb and Anderson,
 * in fewer iterations than fb (both unaccelerated); its implicit gradient (the adjoint by
 * the splitting too) equals central differences and fb's implicit gradient. */
static void test_pr(void) {
    blo_deq_opts o = tight(BLO_DEQ_MONOTONE, BLO_DEQ_RELU, BLO_DEQ_PR);
    o.m = 0.02;
    o.alpha = 1;
    o.anderson_m = 0;
    o.max_iter = o.back_max_iter = 100000;
    fix f;
    fix_init(&f, &o, 9);
    blo_tensor *zs[3];
    blo_deq_stats st[3];
    const blo_deq_solver solvers[3] = {BLO_DEQ_PR, BLO_DEQ_FB, BLO_DEQ_ANDERSON};
    for (int i = 0; i < 3; i++) {
        f.L.o.solver = solvers[i];
        f.L.o.alpha = solvers[i] == BLO_DEQ_PR ? 1 : 0.5;
        f.L.o.anderson_m = solvers[i] == BLO_DEQ_ANDERSON ? 5 : 0;
        zs[i] = blo_deq_solve(f.sc, &f.L, blo_deq_inject(f.sc, &f.L, f.x), &st[i]);
        TU_CHECK(zs[i] && st[i].fwd_converged && st[i].fwd_residual < 1e-11,
                 "%s: converged %d, %d iterations, residual %.3g", blo_deq_solver_name(solvers[i]),
                 st[i].fwd_converged, st[i].fwd_iters, st[i].fwd_residual);
    }
    for (int i = 1; i < 3; i++) {
        blo_tensor *dz = zs[0] && zs[i] ? blo_sub(f.sc, zs[0], zs[i]) : NULL;
        double d = dz ? sqrt(blo_tensor_item(blo_dot(f.sc, dz, dz))) : NAN;
        TU_CHECK(d < 1e-9, "pr and %s reach the same z*: ‖Δ‖ = %.3g",
                 blo_deq_solver_name(solvers[i]), d);
    }
    TU_CHECK(st[0].fwd_iters < st[1].fwd_iters, "m = 0.02: pr %d iterations, fb %d",
             st[0].fwd_iters, st[1].fwd_iters);
    fprintf(stderr, "m = 0.02: pr %d iterations, fb %d, anderson %d\n", st[0].fwd_iters,
            st[1].fwd_iters, st[2].fwd_iters);
    /* The implicit gradient through pr. */
    f.L.o.solver = BLO_DEQ_PR, f.L.o.alpha = 1, f.L.o.anderson_m = 0;
    double gp[NP] = {0}, gf[NP] = {0}, gd[NP] = {0};
    blo_deq_stats sp;
    int n = layer_grad(&f, gp, &sp);
    TU_CHECK(sp.bwd_converged && sp.bwd_residual < 1e-11,
             "pr adjoint: %d iterations, residual %.3g", sp.bwd_iters, sp.bwd_residual);
    int nd = fd_grad(&f, gd);
    double e_fd = rel_err(n, gp, gd);
    TU_CHECK(n == nd && n > 0 && e_fd < 1e-6, "pr: implicit vs finite differences: %.3g", e_fd);
    f.L.o.solver = BLO_DEQ_FB, f.L.o.alpha = 0.5;
    layer_grad(&f, gf, NULL);
    TU_CHECK(rel_err(n, gp, gf) < 1e-9, "pr vs fb implicit gradient: %.3g", rel_err(n, gp, gf));
    fprintf(stderr, "pr: adjoint %d iterations; implicit vs fd %.2g, vs fb %.2g\n", sp.bwd_iters,
            e_fd, rel_err(n, gp, gf));
    /* With Anderson on the splitting: the same point, no more iterations. */
    f.L.o.solver = BLO_DEQ_PR, f.L.o.alpha = 1, f.L.o.anderson_m = 5;
    blo_deq_stats sa;
    blo_tensor *za = blo_deq_solve(f.sc, &f.L, blo_deq_inject(f.sc, &f.L, f.x), &sa);
    blo_tensor *dz = za && zs[0] ? blo_sub(f.sc, za, zs[0]) : NULL;
    double d = dz ? sqrt(blo_tensor_item(blo_dot(f.sc, dz, dz))) : NAN;
    TU_CHECK(d < 1e-9 && sa.fwd_iters <= st[0].fwd_iters,
             "pr + anderson: ‖Δ‖ = %.3g, %d iterations (plain pr %d)", d, sa.fwd_iters,
             st[0].fwd_iters);
    tu_check_ok(f.sc, "pr");
    fix_free(&f);
    blo_deq_opts b = blo_deq_opts_default();
    b.solver = BLO_DEQ_PR;
    b.backward = BLO_DEQ_UNROLLED;
    TU_CHECK(blo_deq_opts_check(&b) && strstr(blo_deq_opts_check(&b), "not offered with pr"),
             "pr refuses unrolled");
    b.backward = BLO_DEQ_IMPLICIT;
    b.alpha = 3;
    TU_CHECK(!blo_deq_opts_check(&b) && blo_deq_solver_parse("pr") == BLO_DEQ_PR, "pr alpha 3");
}

static void test_failures(void) {
    /* The monotone W with a large skew part: Φ expands, plain iteration diverges. */
    blo_deq_opts o = tight(BLO_DEQ_MONOTONE, BLO_DEQ_RELU, BLO_DEQ_PICARD);
    fix f;
    fix_init(&f, &o, 5);
    blo_tensor *Bm = f.L.p[1];
    for (int64_t j = 0; j < blo_tensor_numel(Bm); j++)
        blo_tensor_set(Bm, j, 20 * blo_tensor_get(Bm, j));
    blo_deq_stats st;
    blo_tensor *z = blo_deq_solve(f.sc, &f.L, blo_deq_inject(f.sc, &f.L, f.x), &st);
    TU_CHECK(!z && blo_ctx_status(f.sc) == BLO_ERR_NUMERIC &&
                 strstr(blo_ctx_error(f.sc), "diverges"),
             "expanding map: %s", blo_ctx_error(f.sc));
    blo_ctx_clear_error(f.sc);
    /* Forward–backward splitting with a small step converges on the same W. */
    f.L.o.solver = BLO_DEQ_FB;
    f.L.o.alpha = 0.002;
    f.L.o.max_iter = 200000;
    f.L.o.tol = 1e-9;
    z = blo_deq_solve(f.sc, &f.L, blo_deq_inject(f.sc, &f.L, f.x), &st);
    TU_CHECK(z && st.fwd_converged, "fb on the expanding W: %d iterations, residual %.3g",
             st.fwd_iters, st.fwd_residual);
    /* Bad input. */
    blo_tensor *bad = blo_zeros(f.sc, BLO_F64, 2, (int64_t[]){B, D + 1});
    TU_CHECK(!blo_deq_solve(f.sc, &f.L, blo_deq_inject(f.sc, &f.L, bad), NULL) &&
                 strstr(blo_ctx_error(f.sc), "input must be [B, 4]"),
             "wrong input width: %s", blo_ctx_error(f.sc));
    blo_ctx_clear_error(f.sc);
    TU_CHECK(!blo_deq_solve(f.sc, &f.L, bad, NULL) &&
                 strstr(blo_ctx_error(f.sc), "injection must be [B, 5]"),
             "wrong injection width: %s", blo_ctx_error(f.sc));
    blo_ctx_clear_error(f.sc);
    fix_free(&f);
    blo_deq_opts b = blo_deq_opts_default();
    b.act = BLO_DEQ_TANH;
    TU_CHECK(blo_deq_opts_check(&b) && strstr(blo_deq_opts_check(&b), "relu"), "fb needs relu");
    b = blo_deq_opts_default();
    b.scale = 1.2;
    TU_CHECK(blo_deq_opts_check(&b) && strstr(blo_deq_opts_check(&b), "(0, 1)"), "s < 1");
    TU_CHECK(blo_deq_backward_parse("phantom") == BLO_DEQ_PHANTOM &&
                 blo_deq_backward_parse("nope") == -1 &&
                 !strcmp(blo_deq_solver_name(BLO_DEQ_FB), "fb"),
             "names");
}

/* The penalty R with a fixed probe (the generator re-seeded) and z* fixed, as a function of the
 * parameters. */
static double penalty(fix *f, blo_tensor *z, uint64_t seed) {
    blo_rng r;
    blo_rng_seed(&r, seed);
    blo_mark mk = blo_ctx_mark(f->sc);
    blo_tensor *R =
        blo_deq_jacobian_penalty(f->sc, &f->L, blo_deq_inject(f->sc, &f->L, f->x), z, &r);
    double v = R ? blo_tensor_item(R) : NAN;
    blo_ctx_rewind(f->sc, mk);
    return v;
}

/* Hutchinson: the mean of R over many probes is ‖J_Φ‖_F² / (B d) summed over rows, computed
 * exactly from d VJPs with one-hot seeds; R's gradient (a second-order graph) equals central
 * differences. */
static void test_jacobian_penalty(void) {
    blo_deq_opts o = tight(BLO_DEQ_WEIGHT, BLO_DEQ_TANH, BLO_DEQ_PICARD);
    o.scale = 0.8;
    fix f;
    fix_init(&f, &o, 13);
    blo_tensor *z = blo_deq_solve(f.pc, &f.L, blo_deq_inject(f.pc, &f.L, f.x), NULL);
    /* Exact: Σ_k ‖e_kᵀ J‖² over rows, e_k the k-th unit vector in every row. */
    blo_tensor *zl = blo_clone(f.sc, z);
    blo_set_requires_grad(zl, 1);
    blo_tensor *W = blo_deq_weight(f.sc, &f.L);
    blo_tensor *phi = blo_tanh(f.sc, blo_add(f.sc, blo_linear(f.sc, zl, W, NULL),
                                             blo_linear(f.sc, f.x, f.L.p[1], f.L.p[2])));
    double exact = 0;
    for (int k = 0; k < D; k++) {
        double e[B * D] = {0};
        for (int i = 0; i < B; i++)
            e[i * D + k] = 1;
        blo_tensor *seed = blo_from_f64(f.sc, BLO_F64, 2, (int64_t[]){B, D}, e), *v = NULL;
        blo_grad(f.sc, 1, &phi, &seed, 1, &zl, 0, &v);
        exact += v ? blo_tensor_item(blo_dot(f.sc, v, v)) : NAN;
    }
    exact /= B * D;
    double mean = 0;
    const int N = 4000;
    blo_rng r;
    blo_rng_seed(&r, 99);
    for (int s = 0; s < N; s++) {
        blo_mark mk = blo_ctx_mark(f.sc);
        blo_tensor *R =
            blo_deq_jacobian_penalty(f.sc, &f.L, blo_deq_inject(f.sc, &f.L, f.x), z, &r);
        mean += R ? blo_tensor_item(R) / N : NAN;
        blo_ctx_rewind(f.sc, mk);
    }
    TU_CHECK(fabs(mean - exact) < 0.05 * exact, "Hutchinson mean %.5g over %d probes, exact %.5g",
             mean, N, exact);
    fprintf(stderr, "jacobian penalty: exact %.5g, Hutchinson mean of %d probes %.5g\n", exact, N,
            mean);
    /* Its gradient against central differences. */
    blo_tensor *R = NULL, *gr[BLO_DEQ_MAX_PARAMS] = {0};
    blo_rng_seed(&r, 5);
    R = blo_deq_jacobian_penalty(f.sc, &f.L, blo_deq_inject(f.sc, &f.L, f.x), z, &r);
    double g[NP], fd[NP];
    int n = 0;
    if (R && !blo_grad(f.sc, 1, &R, NULL, f.L.np, f.L.p, 0, gr))
        for (int i = 0; i < f.L.np; i++) {
            blo_tensor_to_f64(gr[i], g + n);
            n += (int)blo_tensor_numel(gr[i]);
        }
    int m = 0;
    for (int i = 0; i < f.L.np; i++)
        for (int64_t j = 0; j < blo_tensor_numel(f.L.p[i]); j++) {
            double v = blo_tensor_get(f.L.p[i], j);
            blo_tensor_set(f.L.p[i], j, v + 1e-6);
            double hi = penalty(&f, z, 5);
            blo_tensor_set(f.L.p[i], j, v - 1e-6);
            double lo = penalty(&f, z, 5);
            blo_tensor_set(f.L.p[i], j, v);
            fd[m++] = (hi - lo) / 2e-6;
        }
    TU_CHECK(n == m && n > 0 && rel_err(n, g, fd) < 1e-7, "penalty gradient vs fd: %.3g",
             n == m ? rel_err(n, g, fd) : NAN);
    tu_check_ok(f.sc, "jacobian penalty");
    fix_free(&f);
}

int main(void) {
    test_exact("weight/tanh/picard", tight(BLO_DEQ_WEIGHT, BLO_DEQ_TANH, BLO_DEQ_PICARD), 1e-7);
    test_exact("spectral/tanh/anderson", tight(BLO_DEQ_SPECTRAL, BLO_DEQ_TANH, BLO_DEQ_ANDERSON),
               1e-7);
    blo_deq_opts mono = tight(BLO_DEQ_MONOTONE, BLO_DEQ_RELU, BLO_DEQ_FB);
    test_exact("monotone/relu/fb", mono, 1e-6);
    test_pr();
    test_conv();
    test_approximations();
    test_anderson();
    test_failures();
    test_jacobian_penalty();
    return tu_finish("deq");
}
