/* test_regsearch.c — regularization search (blo regsearch's library side), each part against
 * an oracle:
 * - the problem's lower objective against the formula written out by hand (two and three
 *   classes, features in groups);
 * - the hypergradient through the problem against central differences of the unrolled
 *   objective F(x, y_T(x)) (rhg, exact for any T; two classes, three classes, blocks), and
 *   cg on a converged lower level against the same differences at large T;
 * - the grid: on a one-feature case whose validation loss is minimised inside the grid, every
 *   grid value's validation loss and the chosen strength against a Newton fit done here;
 * - the runner on a synthetic problem where half the features are pure noise: the strengths
 *   it learns for the noise features end larger than those of the informative ones, and the
 *   search lowers its own objective below the grid's best.
 */
#include "blo/regsearch.h"
#include "tasks/regsearch/regsearch.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

static double sigmoid(double z) {
    return 1 / (1 + exp(-z));
}
static double softplus(double z) {
    return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
}

/* ---- The objectives and the hypergradient ---------------------------------------------------- */

typedef struct small {
    blo_ctx *ctx;
    blo_tensor *X, *lab, *Xv, *labv;
    double Xd[40 * 6], Xvd[30 * 6];
    int64_t labd[40], labvd[30];
} small;

/* n training and nv validation rows of d features, labels from a random linear rule of C
 * classes (with some noise so that nothing separates). */
static void small_init(small *s, int n, int nv, int d, int C, uint64_t seed) {
    blo_rng g;
    blo_rng_seed(&g, seed);
    double W[6 * 3];
    for (int k = 0; k < d * C; k++)
        W[k] = blo_rng_normal(&g);
    double *Xs[2] = {s->Xd, s->Xvd};
    int64_t *ls[2] = {s->labd, s->labvd};
    int ns[2] = {n, nv};
    for (int set = 0; set < 2; set++)
        for (int i = 0; i < ns[set]; i++) {
            int best = 0;
            double bz = -INFINITY;
            for (int j = 0; j < d; j++)
                Xs[set][i * d + j] = blo_rng_normal(&g);
            for (int c = 0; c < C; c++) {
                double z = 0.8 * blo_rng_normal(&g);
                for (int j = 0; j < d; j++)
                    z += Xs[set][i * d + j] * W[j * C + c];
                if (z > bz) bz = z, best = c;
            }
            ls[set][i] = best;
        }
    s->ctx = blo_ctx_new(0);
    int64_t sx[2] = {n, d}, sv[2] = {nv, d}, sn = n, snv = nv;
    s->X = blo_from_f64(s->ctx, BLO_F64, 2, sx, s->Xd);
    s->Xv = blo_from_f64(s->ctx, BLO_F64, 2, sv, s->Xvd);
    s->lab = blo_from_i64(s->ctx, 1, &sn, s->labd);
    s->labv = blo_from_i64(s->ctx, 1, &snv, s->labvd);
}

/* f(x, y) written out: two classes, mean softplus(z) − t z + ½ Σ_j exp(x_g(j)) w_j²; three
 * classes, mean −log softmax(z)_label + ½ Σ_j exp(x_g(j)) Σ_c W_jc². */
static void check_lower_value(int C) {
    small s;
    small_init(&s, 12, 5, 4, C, 3);
    int64_t group[4] = {1, 0, 1, 1};
    blo_regsearch h;
    char err[256];
    blo_status st =
        blo_regsearch_init(&h, s.X, s.lab, s.Xv, s.labv, C, 2, group, -1.0, err, sizeof err);
    TU_CHECK(st == BLO_OK, "init: %s", err);
    if (st) return;
    int nb = C == 2 ? 1 : C; /* columns of W and entries of b */
    double W[4 * 3], b[3], x[2] = {0.5, -2.0};
    for (int k = 0; k < 4 * nb; k++)
        W[k] = 0.3 * k - 0.7 * (k % 3) + 0.1;
    for (int c = 0; c < nb; c++)
        b[c] = -0.4 + 0.25 * c;
    for (int k = 0; k < 4 * nb; k++)
        blo_tensor_set(h.y0[0], k, W[k]);
    for (int c = 0; c < nb; c++)
        blo_tensor_set(h.y0[1], c, b[c]);
    for (int g = 0; g < 2; g++)
        blo_tensor_set(h.x0[0], g, x[g]);
    double want = 0;
    for (int i = 0; i < 12; i++) {
        double z[3], lse = 0, mx = -INFINITY;
        for (int c = 0; c < nb; c++) {
            z[c] = b[c];
            for (int j = 0; j < 4; j++)
                z[c] += s.Xd[i * 4 + j] * W[j * nb + c];
            mx = fmax(mx, z[c]);
        }
        if (C == 2) {
            want += (softplus(z[0]) - (double)s.labd[i] * z[0]) / 12;
        } else {
            for (int c = 0; c < nb; c++)
                lse += exp(z[c] - mx);
            want += (mx + log(lse) - z[s.labd[i]]) / 12;
        }
    }
    for (int j = 0; j < 4; j++)
        for (int c = 0; c < nb; c++)
            want += 0.5 * exp(x[group[j]]) * W[j * nb + c] * W[j * nb + c];
    blo_problem p = blo_regsearch_problem(&h);
    blo_ctx *ctx = blo_ctx_new(0);
    blo_eval ev = {1, 0, 0, NULL};
    blo_tensor *f = p.lower(ctx, p.x, p.y, &ev, p.user);
    TU_CHECK(f && tu_close(blo_tensor_item(f), want, 1e-13, 0),
             "%d classes: lower objective %.15g, by hand %.15g", C, f ? blo_tensor_item(f) : NAN,
             want);
    /* The start the problem hands out: two groups, W [4] or [4, C] and b [1] or [C]. */
    TU_CHECK(blo_tensor_numel(p.x[0]) == 2 && blo_tensor_numel(p.y[0]) == 4 * nb &&
                 blo_tensor_numel(p.y[1]) == nb,
             "%d classes: two groups and W, b of %d and %d entries expected", C, 4 * nb, nb);
    blo_ctx_free(ctx);
    blo_regsearch_free(&h);
    blo_ctx_free(s.ctx);
}

static blo_solver *make_solver(blo_regsearch *h, blo_config c) {
    blo_problem p = blo_regsearch_problem(h);
    char err[512];
    blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
    TU_CHECK(s != NULL, "solver: %s", err);
    return s;
}

/* F(x, y_T(x)) at the solver's current x. */
static double unrolled_F(blo_solver *s, double *scratch) {
    double *o[1] = {scratch};
    blo_solver_hypergrad(s, o);
    double F, f;
    blo_solver_values(s, &F, &f);
    return F;
}

/* The method's hypergradient against central differences of the unrolled objective. */
static void check_fd(blo_regsearch *h, blo_config c, double tol, const char *what) {
    blo_solver *s = make_solver(h, c);
    if (!s) return;
    int64_t G = h->groups;
    double got[8], want[8], scratch[8], *o[1] = {got};
    TU_CHECK(blo_solver_hypergrad(s, o) == BLO_OK, "%s: %s", what, blo_solver_error(s));
    blo_tensor *x = blo_solver_x(s, 0);
    const double eps = 1e-5;
    double worst = 0, scale = 0;
    for (int64_t g = 0; g < G; g++) {
        double v = blo_tensor_get(x, g);
        blo_tensor_set(x, g, v + eps);
        double fp = unrolled_F(s, scratch);
        blo_tensor_set(x, g, v - eps);
        double fm = unrolled_F(s, scratch);
        blo_tensor_set(x, g, v);
        want[g] = (fp - fm) / (2 * eps);
        scale = fmax(scale, fabs(want[g]));
    }
    for (int64_t g = 0; g < G; g++)
        worst = fmax(worst, fabs(got[g] - want[g]) / scale);
    TU_CHECK(scale > 1e-6, "%s: the hypergradient is zero (%.3g): the check would prove nothing",
             what, scale);
    TU_CHECK(worst < tol, "%s: hypergradient off central differences by %.3g (tolerance %.1g)",
             what, worst, tol);
    blo_solver_free(s);
}

static void check_hypergradients(void) {
    /* Two classes, one strength per feature; two classes in two groups; three classes. */
    const int Cs[3] = {2, 2, 3};
    const int64_t blocks[5] = {0, 0, 1, 1, 1};
    for (int k = 0; k < 3; k++) {
        small s;
        small_init(&s, 40, 30, 5, Cs[k], 7 + (uint64_t)k);
        blo_regsearch h;
        char err[256];
        blo_status st = blo_regsearch_init(&h, s.X, s.lab, s.Xv, s.labv, Cs[k], k == 1 ? 2 : 5,
                                           k == 1 ? blocks : NULL, log(0.05), err, sizeof err);
        TU_CHECK(st == BLO_OK, "init: %s", err);
        if (st) continue;
        /* Different strengths per group, so each derivative is its own. */
        for (int64_t g = 0; g < h.groups; g++)
            blo_tensor_set(h.x0[0], g, log(0.02) + 0.4 * (double)g);
        const char *names[3] = {"two classes, per feature", "two classes, blocks",
                                "three classes, per feature"};
        char what[96];
        blo_config c = blo_config_default();
        c.method = "rhg";
        c.inner = blo_opt_sgd(0.5);
        c.inner_steps = 15;
        snprintf(what, sizeof what, "rhg, T = 15, %s", names[k]);
        check_fd(&h, c, 1e-7, what);
        /* cg at a converged lower level against the unrolled objective at the same large T
         * (which is F(x, y*(x)) to within the convergence error: the slowest direction, a
         * softmax column shift held only by λ ≈ 0.02, contracts by 1 − 1.5 · 0.02 a step). */
        c.method = "cg";
        c.inner = blo_opt_sgd(1.5); /* below 2/L: L <= ½ λ_max(XᵀX/n) + λ < 1 here */
        c.inner_steps = 800;
        c.solve_iters = 100;
        c.tol = 1e-12;
        snprintf(what, sizeof what, "cg, T = 800, %s", names[k]);
        check_fd(&h, c, 1e-5, what);
        blo_regsearch_free(&h);
        blo_ctx_free(s.ctx);
    }
}

/* ---- The runner
 * ---------------------------------------------------------------------------------- */

/* A data set in memory (arrays owned by the caller; never passed to blo_dataset_free). */
typedef struct mem_set {
    blo_dataset ds;
    float x[600 * 8];
    double y[600];
    int64_t label[600];
    double classes[2];
} mem_set;

static void mem_set_init(mem_set *m, int64_t n, int64_t d) {
    memset(&m->ds, 0, sizeof m->ds);
    m->ds.n = n;
    m->ds.d = d;
    m->ds.x = m->x;
    m->ds.y = m->y;
    m->ds.label = m->label;
    m->ds.num_classes = 2;
    m->classes[0] = 0;
    m->classes[1] = 1;
    m->ds.class_value = m->classes;
}

static void set_label(mem_set *m, int64_t i, int l) {
    m->y[i] = l;
    m->label[i] = l;
}

/* Mean cross-entropy of the model (w, b) on one feature. */
static double ce1(const mem_set *m, double w, double b) {
    double s = 0;
    for (int64_t i = 0; i < m->ds.n; i++) {
        double z = w * m->x[i] + b;
        s += softplus(z) - (double)m->label[i] * z;
    }
    return s / (double)m->ds.n;
}

/* min over (w, b) of ce1 + ½ λ w² by Newton's method (2 x 2, exact to round-off). */
static void newton1(const mem_set *m, double lam, double *w, double *b) {
    *w = *b = 0;
    for (int it = 0; it < 100; it++) {
        double gw = lam * *w, gb = 0, hww = lam, hwb = 0, hbb = 0, n = (double)m->ds.n;
        for (int64_t i = 0; i < m->ds.n; i++) {
            double x = m->x[i], p = sigmoid(*w * x + *b), r = p - (double)m->label[i],
                   q = p * (1 - p);
            gw += r * x / n;
            gb += r / n;
            hww += q * x * x / n;
            hwb += q * x / n;
            hbb += q / n;
        }
        double det = hww * hbb - hwb * hwb;
        double dw = (hbb * gw - hwb * gb) / det, db = (hww * gb - hwb * gw) / det;
        *w -= dw;
        *b -= db;
        if (fabs(dw) + fabs(db) < 1e-14) break;
    }
}

static mem_set tr, va, te;

/* One feature. Training labels follow the sign of x with little noise, so a weak penalty lets
 * the slope grow large; validation labels are drawn with slope 1, so the best validation loss
 * needs a moderate penalty: the optimum lies inside the grid. */
static void check_grid(void) {
    blo_rng g;
    blo_rng_seed(&g, 5);
    mem_set *sets[3] = {&tr, &va, &te};
    const int64_t ns[3] = {80, 400, 100};
    for (int s = 0; s < 3; s++) {
        mem_set_init(sets[s], ns[s], 1);
        for (int64_t i = 0; i < ns[s]; i++) {
            double x = blo_rng_normal(&g);
            sets[s]->x[i] = (float)x;
            int l = s == 0 ? x + 0.15 * blo_rng_normal(&g) > 0 : blo_rng_uniform(&g) < sigmoid(x);
            set_label(sets[s], i, l);
        }
    }
    blo_regsearch_config c = blo_regsearch_default();
    c.train = &tr.ds;
    c.val = &va.ds;
    c.test = &te.ds;
    c.standardize = 0;
    c.solver.outer_iters = 0; /* the grid only (the bilevel part starts and stops at once) */
    c.fit_tol = 1e-10;
    blo_regsearch_result r;
    char err[512];
    blo_status st = blo_regsearch_run(&c, &r, err, sizeof err);
    TU_CHECK(st == BLO_OK, "grid run: %s", err);
    if (st) return;
    int best = -1;
    double worst = 0, bestv = INFINITY;
    for (int k = 0; k < c.grid_n; k++) {
        double lam = exp(log(1e-6) + (log(1e2) - log(1e-6)) * k / (c.grid_n - 1)), w, b;
        newton1(&tr, lam, &w, &b);
        double v = ce1(&va, w, b);
        worst = fmax(worst, fabs(r.grid_val_loss[k] - v) / v);
        TU_CHECK(tu_close(r.grid_lambda[k], lam, 1e-12, 0), "grid value %d is %g, expected %g", k,
                 r.grid_lambda[k], lam);
        if (v < bestv) bestv = v, best = k;
    }
    TU_CHECK(worst < 1e-7, "grid validation losses off the Newton fits by %.3g", worst);
    TU_CHECK(best > 0 && best < c.grid_n - 1,
             "the constructed optimum must lie inside the grid "
             "(index %d)",
             best);
    TU_CHECK(best >= 0 && r.grid_best == r.grid_lambda[best],
             "the grid chose lambda %g, the oracle %g", r.grid_best,
             best >= 0 ? r.grid_lambda[best] : NAN);
    TU_CHECK(tu_close(r.grid.val_loss, bestv, 1e-7, 0),
             "the chosen model's validation loss %.10g, "
             "oracle %.10g",
             r.grid.val_loss, bestv);
    TU_CHECK(r.n_train == 80 && r.n_val == 400 && r.n_test == 100 && r.features == 1 &&
                 r.classes == 2 && r.groups == 1 && r.iters == 0,
             "sizes: %lld %lld %lld, %lld features, %lld classes, %lld groups, %lld iterations",
             (long long)r.n_train, (long long)r.n_val, (long long)r.n_test, (long long)r.features,
             (long long)r.classes, (long long)r.groups, (long long)r.iters);
    blo_regsearch_result_free(&r);
}

/* 8 features: 0..3 carry the label (true weights 1.5, -1.5, 1, -1), 4..7 are pure noise.
 * With 60 training examples the noise features get fitted; the validation set (400) tells
 * the search to penalise them. */
static void check_noise_features(void) {
    blo_rng g;
    blo_rng_seed(&g, 11);
    const double wtrue[4] = {1.5, -1.5, 1.0, -1.0};
    mem_set *sets[3] = {&tr, &va, &te};
    const int64_t ns[3] = {60, 400, 400};
    for (int s = 0; s < 3; s++) {
        mem_set_init(sets[s], ns[s], 8);
        for (int64_t i = 0; i < ns[s]; i++) {
            double z = 0;
            for (int j = 0; j < 8; j++) {
                double x = blo_rng_normal(&g);
                sets[s]->x[i * 8 + j] = (float)x;
                if (j < 4) z += wtrue[j] * x;
            }
            set_label(sets[s], i, blo_rng_uniform(&g) < sigmoid(z));
        }
    }
    blo_regsearch_config c = blo_regsearch_default();
    c.train = &tr.ds;
    c.val = &va.ds;
    c.test = &te.ds;
    c.solver.outer_iters = 60;
    c.solver.outer = blo_opt_adam(0.1);
    blo_regsearch_result r;
    char err[512];
    blo_status st = blo_regsearch_run(&c, &r, err, sizeof err);
    TU_CHECK(st == BLO_OK, "noise run: %s", err);
    if (st) return;
    TU_CHECK(r.groups == 8 && r.lambda != NULL, "8 strengths expected, got %lld",
             (long long)r.groups);
    if (r.lambda) {
        double max_inf = 0, min_noise = INFINITY;
        for (int j = 0; j < 4; j++)
            max_inf = fmax(max_inf, r.lambda[j]);
        for (int j = 4; j < 8; j++)
            min_noise = fmin(min_noise, r.lambda[j]);
        TU_CHECK(min_noise > 3 * max_inf,
                 "every noise feature's strength must end well above every informative one's: "
                 "smallest noise %.3g, largest informative %.3g",
                 min_noise, max_inf);
        fprintf(stderr, "  learned lambda:");
        for (int j = 0; j < 8; j++)
            fprintf(stderr, " %.3g", r.lambda[j]);
        fprintf(stderr, " (grid best %.3g)\n", r.grid_best);
    }
    /* The search minimises the validation loss; from the grid's best it can only go down. */
    TU_CHECK(r.bilevel.val_loss < r.grid.val_loss - 1e-3,
             "bilevel validation loss %.5f, grid's best %.5f", r.bilevel.val_loss, r.grid.val_loss);
    TU_CHECK(r.iters == 60 && r.fits_unconverged == 0, "%lld iterations, %lld fits unconverged",
             (long long)r.iters, (long long)r.fits_unconverged);
    TU_CHECK(fabs(r.upper - r.bilevel.val_loss) < 1e-3,
             "with the lower level solved every iteration F(y_T) %.6f is the refit's %.6f", r.upper,
             r.bilevel.val_loss);
    blo_regsearch_result_free(&r);

    /* Bad settings are refused with a message, before any work. */
    c.train_frac = 0.9;
    c.val_frac = 0.2;
    st = blo_regsearch_run(&c, &r, err, sizeof err);
    TU_CHECK(st == BLO_ERR_INVALID && strstr(err, "fractions"), "bad fractions: %d %s", st, err);
    c = blo_regsearch_default();
    c.train = &tr.ds;
    c.val = &va.ds;
    c.test = &te.ds;
    c.solver.init = BLO_INIT_FIXED;
    st = blo_regsearch_run(&c, &r, err, sizeof err);
    TU_CHECK(st == BLO_ERR_INVALID && strstr(err, "warm"), "solve_lower without warm start: %d %s",
             st, err);
}

int main(void) {
    blo_set_num_threads(1);
    check_lower_value(2);
    check_lower_value(3);
    check_hypergradients();
    check_grid();
    check_noise_features();
    return tu_finish("test_regsearch");
}
