/* test_nas.c — the DARTS search space and its hypergradients, in float64 on a tiny supernet
 * (3 cells — normal, reduction, reduction — of 2 channels and 2 nodes, 5×5 images so odd
 * sizes go through the reductions):
 *  - a mixed op equals Σ_o w_o o(h) with the ops computed one by one, for stride 1 and 2;
 *  - rhg's architecture gradient equals central finite differences of the unrolled objective
 *    F(α, y_T(α)) (T = 2 SGD steps from a fixed start), along a random direction and per entry;
 *  - darts' gradient equals its closed formula ∂F/∂α(α, y') − ξ [∇_α f(α, y⁺) − ∇_α f(α, y⁻)]/2ε
 *    computed here by hand, and approaches rhg with T = 1 (the exact one-step derivative);
 *  - the genotype of a hand-made α (DARTS' top-2 rule, 'none' ignored), its text form, and a
 *    saved genotype loading back to a network with the same outputs;
 *  - perturbation-based selection against a made-up loss whose answer is known. */
#include "tasks/nas/space.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static blo_tensor *randn(blo_ctx *ctx, blo_rng *r, int ndim, const int64_t *shape, double s) {
    blo_tensor *t = blo_tensor_new(ctx, BLO_F64, ndim, shape);
    blo_init_normal(t, r, 0, s);
    return t;
}

static void test_mixed_op(void) {
    blo_ctx *ctx = blo_ctx_new(0);
    blo_rng r;
    blo_rng_seed(&r, 7);
    for (int stride = 1; stride <= 2; stride++) {
        blo_tensor **y;
        int ny;
        TU_CHECK(blo__nas_mixed_params(ctx, 3, stride, BLO_F64, &r, &y, &ny) == BLO_OK, "mixed params");
        int64_t hs[4] = {2, 3, 5, 5}, ws[2] = {1, 8};
        blo_tensor *h = randn(ctx, &r, 4, hs, 1);
        blo_tensor *w = blo_softmax(ctx, randn(ctx, &r, 2, ws, 1), 1);
        int next = 0;
        blo_tensor *mixed = blo__nas_mixed_forward(ctx, h, w, stride, y, &next);
        TU_CHECK(mixed && next == ny, "the mixed op reads all %d parameters (read %d)", ny, next);
        int64_t oh = (5 - 1) / stride + 1;
        TU_CHECK(blo_tensor_dim(mixed, 2) == oh && blo_tensor_dim(mixed, 3) == oh, "output size");
        int64_t m = blo_tensor_numel(mixed);
        double *want = calloc((size_t)m, sizeof(double));
        next = 0;
        for (int o = 0; o < BLO_NAS_NUM_OPS; o++) {
            blo_tensor *out = blo__nas_op_forward(ctx, o, h, stride, 1, y, &next);
            if (o == BLO_NAS_NONE) {
                TU_CHECK(out == NULL, "none has no output");
                continue;
            }
            TU_CHECK(out && blo_tensor_numel(out) == m, "op %s shape", blo_nas_op_name(o));
            double wo = blo_tensor_get(w, o);
            for (int64_t k = 0; k < m; k++)
                want[k] += wo * blo_tensor_get(out, k);
        }
        TU_CHECK(next == ny, "the ops one by one read the same parameters");
        tu_check_close_f64(mixed, want, 1e-12, 1e-12, "mixed op = sum of weighted ops");
        if (stride == 1) { /* identity is one of the parts: skip_connect(h) = h */
            int nx = 0;
            blo_tensor *id = blo__nas_op_forward(ctx, BLO_NAS_SKIP_CONNECT, h, 1, 1, y, &nx);
            TU_CHECK(id == h && nx == 0, "skip_connect with stride 1 is the identity");
        }
        free(want);
    }
    tu_check_ok(ctx, "mixed op");
    blo_ctx_free(ctx);
}

/* ---- The tiny supernet -------------------------------------------------------------------- */
typedef struct tiny {
    blo_ctx *ctx;
    blo__nas_net net;
    blo__nas_problem p;
    blo_tensor *alpha[2];
    int64_t labels[8];
    int64_t buf[8];
} tiny;

static void tiny_init(tiny *t) {
    memset(t, 0, sizeof *t);
    t->ctx = blo_ctx_new(0);
    blo_rng r;
    blo_rng_seed(&r, 3);
    char err[256];
    blo_status st = blo__nas_net_init(&t->net, NULL, 3, 2, 2, 1, 5, 3, BLO_F64, &r, err, sizeof err);
    TU_CHECK(st == BLO_OK, "tiny supernet: %s", err);
    int64_t xs[4] = {8, 1, 5, 5}, as[2] = {blo_nas_num_edges(2), 8};
    t->p.X = randn(t->ctx, &r, 4, xs, 1);
    for (int i = 0; i < 8; i++)
        t->labels[i] = (int64_t)blo_rng_below(&r, 3);
    t->alpha[0] = randn(t->ctx, &r, 2, as, 0.5);
    t->alpha[1] = randn(t->ctx, &r, 2, as, 0.5);
    t->p.net = &t->net;
    t->p.labels = t->labels;
    t->p.n = 8;
    t->p.half = 4;
    t->p.batch = 4; /* the whole half: deterministic objectives */
    t->p.buf = t->buf;
}

static blo_problem tiny_problem(tiny *t, blo_tensor *const *alpha) {
    blo_problem pr;
    blo__nas_bilevel_problem(&pr, alpha, &t->p);
    return pr;
}

static blo_config tiny_config(const char *method, int T) {
    blo_config c = blo_config_default();
    c.method = method;
    c.inner = blo_opt_sgd(0.1);
    c.inner_steps = T;
    c.init = BLO_INIT_FIXED;
    c.outer_iters = 1;
    return c;
}

/* The hypergradient (into h[2][40]) and F at the end of the method's inner loop, at α. */
static double run_method(tiny *t, const blo_config *c, blo_tensor *const *alpha, double h[2][40]) {
    blo_problem pr = tiny_problem(t, alpha);
    char err[256];
    blo_solver *s = blo_solver_new(&pr, c, err, sizeof err);
    TU_CHECK(s != NULL, "solver: %s", err);
    if (!s) return NAN;
    double *out[2] = {h[0], h[1]};
    blo_status st = blo_solver_hypergrad(s, out);
    TU_CHECK(st == BLO_OK, "hypergrad: %s", blo_solver_error(s));
    double F, f;
    blo_solver_values(s, &F, &f);
    blo_solver_free(s);
    return F;
}

/* F(α + e d) for the method's inner loop. */
static double F_at(tiny *t, const blo_config *c, const double d[2][40], double e) {
    blo_ctx *ctx = blo_ctx_new(0);
    blo_tensor *a[2];
    for (int k = 0; k < 2; k++) {
        a[k] = blo_clone(ctx, t->alpha[k]);
        for (int i = 0; i < 40; i++)
            blo_tensor_set(a[k], i, blo_tensor_get(t->alpha[k], i) + e * d[k][i]);
    }
    double h[2][40];
    double F = run_method(t, c, a, h);
    blo_ctx_free(ctx);
    return F;
}

static void test_rhg_fd(tiny *t) {
    blo_config c = tiny_config("rhg", 2);
    double h[2][40], d[2][40];
    double F0 = run_method(t, &c, t->alpha, h);
    TU_CHECK(isfinite(F0), "F is finite");
    double hn = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 40; i++)
            hn += h[k][i] * h[k][i];
    TU_CHECK(hn > 1e-12, "the architecture gradient is not zero (|h|^2 = %g)", hn);
    blo_rng r;
    blo_rng_seed(&r, 11);
    double dot = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 40; i++) {
            d[k][i] = blo_rng_normal(&r);
            dot += d[k][i] * h[k][i];
        }
    const double e = 1e-5;
    double fd = (F_at(t, &c, d, e) - F_at(t, &c, d, -e)) / (2 * e);
    TU_CHECK(tu_close(dot, fd, 1e-5, 1e-9), "rhg <h, d> = %.10g, finite differences %.10g", dot,
             fd);
    /* A few single entries of each α (a normal edge, a reduction edge). */
    const int picks[4][2] = {{0, 4}, {0, 37}, {1, 9}, {1, 26}};
    for (int q = 0; q < 4; q++) {
        memset(d, 0, sizeof d);
        d[picks[q][0]][picks[q][1]] = 1;
        fd = (F_at(t, &c, d, e) - F_at(t, &c, d, -e)) / (2 * e);
        double got = h[picks[q][0]][picks[q][1]];
        TU_CHECK(tu_close(got, fd, 1e-4, 1e-9), "rhg dF/dalpha[%d][%d] = %.10g, fd %.10g",
                 picks[q][0], picks[q][1], got, fd);
    }
}

static void test_darts_formula(tiny *t) {
    const double xi = 0.1, eta = 1e-5;
    blo_config c = tiny_config("darts", 0);
    c.fd_radius = eta;
    double h[2][40], hr[2][40];
    run_method(t, &c, t->alpha, h);

    /* The closed formula, by hand, at y = y_0 (T = 0). */
    blo_ctx *ctx = blo_ctx_new(0);
    int ny = t->net.ny;
    blo_tensor **y = calloc((size_t)ny, sizeof *y), **g = calloc((size_t)ny, sizeof *g),
               **yv = calloc((size_t)ny, sizeof *yv), **v = calloc((size_t)ny, sizeof *v),
               **yp = calloc((size_t)ny, sizeof *yp), **ym = calloc((size_t)ny, sizeof *ym);
    blo_tensor *a[2], *dx[2], *gp[2], *gm[2];
    for (int k = 0; k < 2; k++) {
        a[k] = blo_clone(ctx, t->alpha[k]);
        blo_set_requires_grad(a[k], 1);
    }
    for (int i = 0; i < ny; i++) {
        y[i] = blo_clone(ctx, t->net.y[i]);
        blo_set_requires_grad(y[i], 1);
    }
    blo_rng r;
    blo_rng_seed(&r, 0);
    blo_eval ev = {1, 0, 0, &r};
    blo_tensor *f = blo__nas_lower(ctx, a, y, &ev, &t->p);
    TU_CHECK(blo_grad(ctx, 1, &f, NULL, ny, y, 0, g) == BLO_OK, "grad_y f");
    for (int i = 0; i < ny; i++) {
        yv[i] = blo_sub(ctx, y[i], blo_scale(ctx, g[i], xi));
        yv[i] = blo_clone(ctx, yv[i]);
        blo_set_requires_grad(yv[i], 1);
    }
    ev.level = 0;
    blo_tensor *F = blo__nas_upper(ctx, a, yv, &ev, &t->p);
    blo_tensor **ins = calloc((size_t)ny + 2, sizeof *ins),
               **outs = calloc((size_t)ny + 2, sizeof *outs);
    ins[0] = a[0], ins[1] = a[1];
    for (int i = 0; i < ny; i++)
        ins[2 + i] = yv[i];
    TU_CHECK(blo_grad(ctx, 1, &F, NULL, 2 + ny, ins, 0, outs) == BLO_OK, "grad F");
    dx[0] = outs[0], dx[1] = outs[1];
    double vn = 0;
    for (int i = 0; i < ny; i++) {
        v[i] = outs[2 + i];
        for (int64_t k = 0; k < blo_tensor_numel(v[i]); k++)
            vn += pow(blo_tensor_get(v[i], k), 2);
    }
    double e = eta / sqrt(vn);
    for (int i = 0; i < ny; i++) {
        yp[i] = blo_add(ctx, y[i], blo_scale(ctx, v[i], e));
        ym[i] = blo_sub(ctx, y[i], blo_scale(ctx, v[i], e));
    }
    ev.level = 1;
    blo_tensor *fp = blo__nas_lower(ctx, a, yp, &ev, &t->p), *fm = blo__nas_lower(ctx, a, ym, &ev, &t->p);
    TU_CHECK(blo_grad(ctx, 1, &fp, NULL, 2, a, 0, gp) == BLO_OK, "grad_a f+");
    TU_CHECK(blo_grad(ctx, 1, &fm, NULL, 2, a, 0, gm) == BLO_OK, "grad_a f-");
    double worst = 0, scale = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 40; i++) {
            double want = blo_tensor_get(dx[k], i) -
                          xi * (blo_tensor_get(gp[k], i) - blo_tensor_get(gm[k], i)) / (2 * e);
            worst = fmax(worst, fabs(h[k][i] - want));
            scale = fmax(scale, fabs(want));
        }
    TU_CHECK(scale > 0 && worst <= 1e-9 * scale + 1e-13,
             "darts = its closed formula (max |diff| %.3g, max |value| %.3g)", worst, scale);
    tu_check_ok(ctx, "darts formula");

    /* rhg with one SGD step (lr ξ) is the exact derivative the formula approximates. */
    blo_config cr = tiny_config("rhg", 1);
    run_method(t, &cr, t->alpha, hr);
    double diff = 0, norm = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 40; i++) {
            diff += pow(h[k][i] - hr[k][i], 2);
            norm += pow(hr[k][i], 2);
        }
    TU_CHECK(sqrt(diff) <= 1e-7 * sqrt(norm), "darts vs rhg (T = 1): |diff| %.3g, |rhg| %.3g",
             sqrt(diff), sqrt(norm));
    free(y), free(g), free(yv), free(v), free(yp), free(ym), free(ins), free(outs);
    blo_ctx_free(ctx);
}

/* ---- Genotypes ------------------------------------------------------------------------------ */
static void test_genotype(tiny *t) {
    double an[5][8] = {{0}}, ar[5][8] = {{0}};
    an[0][BLO_NAS_SEP_CONV_3X3] = 2;                           /* node 0 <- state 0 */
    an[1][BLO_NAS_NONE] = 5, an[1][BLO_NAS_MAX_POOL_3X3] = 1;  /* node 0 <- state 1, weak */
    an[2][BLO_NAS_SKIP_CONNECT] = 1;                           /* node 1 <- 0 */
    an[3][BLO_NAS_DIL_CONV_5X5] = 3;                           /* node 1 <- 1: strongest */
    an[4][BLO_NAS_NONE] = 10, an[4][BLO_NAS_AVG_POOL_3X3] = 2; /* node 1 <- 2: 'none' wins */
    blo_nas_genotype g;
    blo_nas_genotype_derive(2, &an[0][0], &ar[0][0], &g);
    const int want_op[2][2][2] = {{{BLO_NAS_SEP_CONV_3X3, BLO_NAS_MAX_POOL_3X3},
                                   {BLO_NAS_SKIP_CONNECT, BLO_NAS_DIL_CONV_5X5}},
                                  {{BLO_NAS_MAX_POOL_3X3, BLO_NAS_MAX_POOL_3X3},
                                   {BLO_NAS_MAX_POOL_3X3, BLO_NAS_MAX_POOL_3X3}}};
    const int want_in[2][2][2] = {{{0, 1}, {0, 1}}, {{0, 1}, {0, 1}}};
    int same = g.nodes == 2;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++)
                same &= g.op[k][i][j] == want_op[k][i][j] && g.in[k][i][j] == want_in[k][i][j];
    TU_CHECK(same, "genotype of the hand-made alpha");
    /* Node 1 of the normal cell: the edge from node 0 (state 2) loses to 'none'. Make it
     * strong instead and it must replace the weaker skip_connect <- 0. */
    an[4][BLO_NAS_NONE] = 0, an[4][BLO_NAS_AVG_POOL_3X3] = 4;
    blo_nas_genotype_derive(2, &an[0][0], &ar[0][0], &g);
    TU_CHECK(g.in[0][1][0] == 1 && g.op[0][1][0] == BLO_NAS_DIL_CONV_5X5 && g.in[0][1][1] == 2 &&
                 g.op[0][1][1] == BLO_NAS_AVG_POOL_3X3,
             "top-2 edges re-ranked: got %d<-%d, %d<-%d", g.op[0][1][0], g.in[0][1][0],
             g.op[0][1][1], g.in[0][1][1]);

    char text[2048];
    blo_nas_genotype_format(&g, text, sizeof text);
    TU_CHECK(strstr(text, "normal 1: dil_conv_5x5 <- 1, avg_pool_3x3 <- 2") != NULL,
             "text form:\n%s", text);
    TU_CHECK(strstr(text, "('sep_conv_3x3', 0)") != NULL, "DARTS form:\n%s", text);

    const char *path = BLO_BINARY_DIR "/test_nas_genotype.txt";
    char err[256];
    TU_CHECK(blo_nas_genotype_save(&g, path, err, sizeof err) == BLO_OK, "save: %s", err);
    blo_nas_genotype h;
    TU_CHECK(blo_nas_genotype_load(path, &h, err, sizeof err) == BLO_OK, "load: %s", err);
    TU_CHECK(!memcmp(&g, &h, sizeof g), "the genotype loads back equal");

    /* Same genotype and seed: the same network, the same outputs (eval mode, running stats). */
    blo__nas_net n1, n2;
    blo_rng r1, r2;
    blo_rng_seed(&r1, 5);
    blo_rng_seed(&r2, 5);
    TU_CHECK(blo__nas_net_init(&n1, &g, 3, 2, 0, 1, 5, 3, BLO_F64, &r1, err, sizeof err) == BLO_OK, "%s",
             err);
    TU_CHECK(blo__nas_net_init(&n2, &h, 3, 2, 0, 1, 5, 3, BLO_F64, &r2, err, sizeof err) == BLO_OK, "%s",
             err);
    blo_ctx *ctx = blo_ctx_new(0);
    blo_tensor *z1 = blo__nas_net_forward(ctx, &n1, n1.y, NULL, NULL, t->p.X, 1);
    blo_tensor *z2 = blo__nas_net_forward(ctx, &n2, n2.y, NULL, NULL, t->p.X, 1);
    blo_tensor *e1 = blo__nas_net_forward(ctx, &n1, n1.y, NULL, NULL, t->p.X, 0);
    blo_tensor *e2 = blo__nas_net_forward(ctx, &n2, n2.y, NULL, NULL, t->p.X, 0);
    TU_CHECK(z1 && z2 && e1 && e2 && n1.ny == n2.ny && n1.nstats > 0, "discrete forwards");
    if (z1 && z2 && e1 && e2) {
        tu_check_close(z2, z1, 0, 0, "loaded genotype: same training-mode outputs");
        tu_check_close(e2, e1, 0, 0, "loaded genotype: same eval-mode outputs");
    }
    /* A different genotype gives a different network. */
    h.op[0][0][0] = BLO_NAS_MAX_POOL_3X3;
    blo__nas_net n3;
    blo_rng_seed(&r1, 5);
    TU_CHECK(blo__nas_net_init(&n3, &h, 3, 2, 0, 1, 5, 3, BLO_F64, &r1, err, sizeof err) == BLO_OK, "%s",
             err);
    blo_tensor *z3 = blo__nas_net_forward(ctx, &n3, n3.y, NULL, NULL, t->p.X, 1);
    double dmax = 0;
    for (int64_t k = 0; z3 && k < blo_tensor_numel(z3); k++)
        dmax = fmax(dmax, fabs(blo_tensor_get(z3, k) - blo_tensor_get(z1, k)));
    TU_CHECK(dmax > 1e-6, "another genotype changes the outputs (%g)", dmax);
    tu_check_ok(ctx, "genotype networks");
    blo__nas_net_free(&n1);
    blo__nas_net_free(&n2);
    blo__nas_net_free(&n3);
    blo_ctx_free(ctx);

    /* Malformed files name the line. */
    FILE *f = fopen(path, "w");
    fputs("nodes 1\nnormal 0: sep_conv_3x3 <- 0, bogus_op <- 1\n", f);
    fclose(f);
    TU_CHECK(blo_nas_genotype_load(path, &h, err, sizeof err) == BLO_ERR_FORMAT &&
                 strstr(err, "line 2"),
             "bad op named by line: %s", err);
    f = fopen(path, "w");
    fputs("nodes 1\nnormal 0: sep_conv_3x3 <- 0, skip_connect <- 1\n", f);
    fclose(f);
    TU_CHECK(blo_nas_genotype_load(path, &h, err, sizeof err) == BLO_ERR_FORMAT &&
                 strstr(err, "reduce node 0 missing"),
             "missing node: %s", err);
    f = fopen(path, "w");
    fputs("nodes 1\nnormal 0: sep_conv_3x3 <- 0, skip_connect <- 2\n"
          "reduce 0: sep_conv_3x3 <- 0, skip_connect <- 1\n",
          f);
    fclose(f);
    TU_CHECK(blo_nas_genotype_load(path, &h, err, sizeof err) == BLO_ERR_FORMAT,
             "an input from a later state is rejected");
    remove(path);
}

/* Perturbation-based selection with a made-up loss: taking op o out of edge e of cell kind k
 * costs q[k][e][o], so each edge must get its op of largest q and each node the two edges
 * of largest sum over their ops; a loss that turns NaN is reported. */
typedef struct perturb_fake {
    double q[2][9][BLO_NAS_NUM_OPS];
    int calls, nan_at;
} perturb_fake;

static double fake_score(const double *an, const double *ar, void *user) {
    perturb_fake *f = user;
    double loss = 1;
    for (int k = 0; k < 2; k++)
        for (int e = 0; e < 9; e++)
            for (int o = 1; o < BLO_NAS_NUM_OPS; o++)
                if ((k ? ar : an)[e * BLO_NAS_NUM_OPS + o] < -1e29) loss += f->q[k][e][o];
    return ++f->calls == f->nan_at ? NAN : loss;
}

static void test_perturb(void) {
    perturb_fake f;
    memset(&f, 0, sizeof f);
    blo_rng r;
    blo_rng_seed(&r, 11);
    for (int k = 0; k < 2; k++)
        for (int e = 0; e < 9; e++)
            for (int o = 1; o < BLO_NAS_NUM_OPS; o++) f.q[k][e][o] = blo_rng_uniform(&r);
    double an[9 * BLO_NAS_NUM_OPS], ar[9 * BLO_NAS_NUM_OPS];
    for (int i = 0; i < 9 * BLO_NAS_NUM_OPS; i++) an[i] = ar[i] = blo_rng_uniform(&r);
    blo_nas_genotype g;
    char err[256] = "";
    TU_CHECK(blo_nas_genotype_perturb(3, an, ar, fake_score, &f, &g, err, sizeof err) == BLO_OK,
             "perturb: %s", err);
    TU_CHECK(f.calls == 1 + 2 * 9 * BLO_NAS_NUM_OPS, "1 + 2 E 8 scores (%d)", f.calls);
    int same = g.nodes == 3;
    for (int k = 0; k < 2; k++)
        for (int i = 0, e0 = 0; i < 3; e0 += 2 + i, i++) {
            double edge[5];
            int op[5], b0 = -1, b1 = -1;
            for (int j = 0; j < 2 + i; j++) {
                edge[j] = 0, op[j] = 1;
                for (int o = 1; o < BLO_NAS_NUM_OPS; o++) {
                    edge[j] += f.q[k][e0 + j][o];
                    if (f.q[k][e0 + j][o] > f.q[k][e0 + j][op[j]]) op[j] = o;
                }
                if (b0 < 0 || edge[j] > edge[b0]) b1 = b0, b0 = j;
                else if (b1 < 0 || edge[j] > edge[b1]) b1 = j;
            }
            int lo = b0 < b1 ? b0 : b1, hi = b0 < b1 ? b1 : b0;
            same &= g.in[k][i][0] == lo && g.op[k][i][0] == op[lo] && g.in[k][i][1] == hi &&
                    g.op[k][i][1] == op[hi];
        }
    TU_CHECK(same, "perturbation picks the costliest op per edge and the costliest edges");
    f.calls = 0, f.nan_at = 7;
    TU_CHECK(blo_nas_genotype_perturb(3, an, ar, fake_score, &f, &g, err, sizeof err) ==
                     BLO_ERR_NUMERIC &&
                 strstr(err, "not finite") != NULL,
             "a NaN loss is reported: %s", err);
}

int main(void) {
    test_mixed_op();
    tiny t;
    tiny_init(&t);
    test_rhg_fd(&t);
    test_darts_formula(&t);
    test_genotype(&t);
    test_perturb();
    blo__nas_net_free(&t.net);
    blo_ctx_free(t.ctx);
    return tu_finish("test_nas");
}
