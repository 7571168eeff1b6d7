/* run.c — regularization search end to end: load a LIBSVM / CSV file (or two classes of
 * an MNIST-layout folder), shuffle and split it into train / validation / test, centre (and
 * optionally scale) the features,
 * fit the lower level to convergence for every value of a log-spaced grid of single L2
 * strengths and keep the one with the lowest validation loss, then run the bilevel search
 * over per-group strengths from there and refit at the strengths it learns. The problem
 * itself (f, F and their maths) is in problem.c.
 *
 * Fits to convergence use L-BFGS (Nocedal, Math. Comp. 1980; Liu & Nocedal 1989): the
 * two-loop recursion gives d = −H_k ∇f from the last m pairs s = y_{k+1} − y_k,
 * u = ∇f_{k+1} − ∇f_k with H_0 = (sᵀu / uᵀu) I, and a backtracking line search keeps
 * f(y + a d) ≤ f(y) + 1e-4 a ∇fᵀd. The lower level is strongly convex in w, so sᵀu > 0 and
 * the method converges; f and ∇f come from the same blo ops the bilevel solver uses.
 */
#include "regsearch.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

blo_regsearch_config blo_regsearch_default(void) {
    blo_regsearch_config c;
    memset(&c, 0, sizeof c);
    c.class_a = 0; /* T-shirt/top */
    c.class_b = 6; /* shirt: the pair a linear model confuses most */
    c.max_examples = 4000;
    c.train_frac = 0.5;
    c.val_frac = 0.25;
    c.standardize = -1;
    c.groups = BLO_REGSEARCH_FEATURE;
    c.blocks = 1;
    c.lambda0 = 0;
    c.lambda_lo = 1e-6;
    c.lambda_hi = 1e2;
    c.grid_n = 13;
    c.grid_lo = 1e-6;
    c.grid_hi = 1e2;
    c.fit_iters = 2000;
    c.fit_tol = 1e-6;
    c.dtype = BLO_F64;
    c.solver = blo_config_default();
    c.solver.method = "cg";
    c.solver.trhg_window = c.solver.neumann_terms = c.solver.solve_iters = 50;
    c.solver.tol = 1e-10;
    c.solver.inner = blo_opt_sgd(0); /* 0: 1/L from the data */
    c.solver.inner_steps = 10;
    c.solve_lower = 1;
    c.solver.init = BLO_INIT_WARM;
    c.solver.outer = blo_opt_adam(0.05);
    c.solver.outer_iters = 200;
    /* A mean cross-entropy beyond 1e4 means the inner steps blew up. */
    c.solver.diverge_limit = 1e4;
    c.eval_every = 10;
    return c;
}

void blo_regsearch_result_free(blo_regsearch_result *r) {
    if (!r) return;
    blo_free(r->lambda);
    r->lambda = NULL;
}

/* ---- Data ---------------------------------------------------------------------------------- */

/* The three sets as tensors: X[s] [n[s], d] in the run's dtype, lab[s] i64 [n[s]]. */
typedef struct split_data {
    blo_ctx *ctx;
    blo_tensor *X[3], *lab[3];
    int64_t n[3], d, classes;
    double *Xtr; /* the training features as doubles [n[0], d] (for the curvature bound) */
} split_data;

static const char *const SET_NAME[3] = {"training", "validation", "test"};

/* Row r of ds as d dense doubles (d >= ds->d: the columns beyond are zero). */
static void dense_row(const blo_dataset *ds, int64_t r, int64_t d, double *out) {
    memset(out, 0, sizeof(double) * (size_t)d);
    if (ds->x) {
        for (int64_t j = 0; j < ds->d; j++)
            out[j] = ds->x[r * ds->d + j];
    } else {
        for (int64_t k = ds->rowptr[r]; k < ds->rowptr[r + 1]; k++)
            out[ds->col[k]] = ds->val[k];
    }
}

/* Class index of target value v among the sorted values cv[0..k), or -1. */
static int64_t class_of(const double *cv, int64_t k, double v) {
    int64_t lo = 0, hi = k - 1;
    while (lo <= hi) {
        int64_t mid = (lo + hi) / 2;
        if (cv[mid] == v) return mid;
        if (cv[mid] < v)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* Does the name end in .csv or .csv.gz (any case)? */
static bool csv_name(const char *path) {
    size_t n = strlen(path);
    const char *ends[2] = {".csv", ".csv.gz"};
    for (int i = 0; i < 2; i++) {
        size_t m = strlen(ends[i]);
        if (n >= m) {
            bool same = true;
            for (size_t k = 0; k < m && same; k++) {
                char a = path[n - m + k];
                same = (a >= 'A' && a <= 'Z' ? a - 'A' + 'a' : a) == ends[i][k];
            }
            if (same) return true;
        }
    }
    return false;
}

/* Loads the source of c into ds and lists the usable rows and their labels (the built-in
 * problem keeps two classes and renumbers them 0 / 1). rows and lab are blo_malloc'ed. */
static blo_status load_source(const blo_regsearch_config *c, blo_dataset *ds, int64_t **rows,
                              int64_t **lab, int64_t *m, int64_t *classes, char *err,
                              size_t errlen) {
    blo_status st;
    *rows = *lab = NULL;
    if (c->data_path) {
        const char *fmt = c->format && strcmp(c->format, "auto") ? c->format
                          : csv_name(c->data_path)               ? "csv"
                                                                 : "libsvm";
        if (!strcmp(fmt, "csv"))
            st = blo_csv_load(c->data_path, c->label_column, ds, err, errlen);
        else if (!strcmp(fmt, "libsvm"))
            st = blo_libsvm_load(c->data_path, 0, 0, ds, err, errlen);
        else
            return blo__fail(err, errlen, BLO_ERR_INVALID,
                        "regsearch: unknown format '%s' (libsvm, csv or auto)", fmt);
        if (st) return st;
        if (!ds->label)
            return blo__fail(err, errlen, BLO_ERR_FORMAT,
                        "regsearch: %s: the targets are not class labels (more than 65536 "
                        "values, or not integers)",
                        c->data_path);
        if (ds->num_classes < 2)
            return blo__fail(err, errlen, BLO_ERR_FORMAT,
                        "regsearch: %s: every example has the same target %g; two classes at "
                        "least are needed",
                        c->data_path, ds->n ? ds->y[0] : 0.0);
    } else {
        if (!c->mnist_dir)
            return blo__fail(err, errlen, BLO_ERR_INVALID,
                             "regsearch: no data: set data_path (a LIBSVM or CSV file; the CLI's "
                             "--data), the three sets in memory, or mnist_dir for the built-in "
                             "problem (--mnist)");
        if ((st = blo_mnist_load(c->mnist_dir, "train", ds, err, errlen))) return st;
        if (c->class_a == c->class_b || c->class_a < 0 || c->class_b < 0 ||
            c->class_a >= ds->num_classes || c->class_b >= ds->num_classes)
            return blo__fail(err, errlen, BLO_ERR_INVALID,
                        "regsearch: classes %lld and %lld: need two different classes of "
                        "0 .. %lld",
                        (long long)c->class_a, (long long)c->class_b,
                        (long long)ds->num_classes - 1);
    }
    *rows = blo_malloc(sizeof(int64_t) * (size_t)(ds->n + 1));
    *lab = blo_malloc(sizeof(int64_t) * (size_t)(ds->n + 1));
    if (!*rows || !*lab) return blo__fail(err, errlen, BLO_ERR_NOMEM, "regsearch: out of memory");
    int64_t k = 0;
    for (int64_t i = 0; i < ds->n; i++) {
        int64_t l = ds->label[i];
        if (!c->data_path) {
            if (l != c->class_a && l != c->class_b) continue;
            l = l == c->class_b;
        }
        (*rows)[k] = i;
        (*lab)[k++] = l;
    }
    *m = k;
    *classes = c->data_path ? ds->num_classes : 2;
    return BLO_OK;
}

/* Fills sd from c: the sets in memory, or a file / the built-in problem shuffled and split. */
static blo_status load_data(const blo_regsearch_config *c, split_data *sd, char *err,
                            size_t errlen) {
    memset(sd, 0, sizeof *sd);
    blo_dataset src;
    memset(&src, 0, sizeof src);
    const blo_dataset *set[3] = {c->train, c->val, c->test};
    int64_t *rows = NULL, *lab = NULL, m = 0;
    int64_t *srows[3] = {NULL, NULL, NULL}, *slab[3] = {NULL, NULL, NULL};
    double *buf = NULL;
    blo_status st = BLO_OK;
    bool in_memory = c->train || c->val || c->test;
    if (in_memory) {
        if (!c->train || !c->val || !c->test)
            return blo__fail(err, errlen, BLO_ERR_INVALID,
                        "regsearch: data in memory needs all three sets (train, val, test)");
        const double *cv = c->train->class_value;
        int64_t k = c->train->num_classes;
        if (!c->train->label || k < 2)
            return blo__fail(err, errlen, BLO_ERR_INVALID,
                        "regsearch: the training set needs class labels of two classes at least");
        sd->classes = k;
        for (int s = 0; s < 3; s++) {
            sd->n[s] = set[s]->n;
            if (set[s]->d > sd->d) sd->d = set[s]->d;
            srows[s] = blo_malloc(sizeof(int64_t) * (size_t)(set[s]->n + 1));
            slab[s] = blo_malloc(sizeof(int64_t) * (size_t)(set[s]->n + 1));
            if (!srows[s] || !slab[s]) {
                st = blo__fail(err, errlen, BLO_ERR_NOMEM, "regsearch: out of memory");
                goto out;
            }
            for (int64_t i = 0; i < set[s]->n; i++) {
                srows[s][i] = i;
                if ((slab[s][i] = class_of(cv, k, set[s]->y[i])) < 0) {
                    st = blo__fail(err, errlen, BLO_ERR_INVALID,
                              "regsearch: %s example %lld has target %g, not a class of the "
                              "training set",
                              SET_NAME[s], (long long)i, set[s]->y[i]);
                    goto out;
                }
            }
        }
    } else {
        if ((st = load_source(c, &src, &rows, &lab, &m, &sd->classes, err, errlen))) goto out;
        /* The shuffle has its own generator (seeded by c->seed), so a resumed run rebuilds the
         * same split. */
        blo_rng g;
        blo_rng_seed(&g, c->seed ^ 0x7265677365617263ULL);
        for (int64_t i = m - 1; i > 0; i--) {
            int64_t j = (int64_t)blo_rng_below(&g, (uint64_t)(i + 1)), t = rows[i], u = lab[i];
            rows[i] = rows[j];
            lab[i] = lab[j];
            rows[j] = t;
            lab[j] = u;
        }
        if (c->max_examples > 0 && m > c->max_examples) m = c->max_examples;
        sd->n[0] = (int64_t)floor(c->train_frac * (double)m);
        sd->n[1] = (int64_t)floor(c->val_frac * (double)m);
        sd->n[2] = m - sd->n[0] - sd->n[1];
        if (sd->n[0] < 1 || sd->n[1] < 1 || sd->n[2] < 1) {
            st = blo__fail(err, errlen, BLO_ERR_INVALID,
                      "regsearch: %lld examples split %g / %g / %g leave an empty set",
                      (long long)m, c->train_frac, c->val_frac, 1 - c->train_frac - c->val_frac);
            goto out;
        }
        sd->d = src.d;
        int64_t at = 0;
        for (int s = 0; s < 3; at += sd->n[s], s++) {
            set[s] = &src;
            srows[s] = rows + at;
            slab[s] = lab + at;
        }
    }
    if (sd->d < 1) {
        st = blo__fail(err, errlen, BLO_ERR_INVALID, "regsearch: the data has no features");
        goto out;
    }
    int64_t total = sd->n[0] + sd->n[1] + sd->n[2];
    if ((double)total * (double)sd->d > 1e9) {
        st = blo__fail(err, errlen, BLO_ERR_INVALID,
                  "regsearch: %lld examples x %lld features is too large to hold densely; "
                  "lower max_examples",
                  (long long)total, (long long)sd->d);
        goto out;
    }
    int64_t d = sd->d;
    bool standardize = c->standardize > 0 || (c->standardize < 0 && (in_memory || c->data_path));
    double *mu = NULL, *sig = NULL;
    if (!(sd->ctx = blo_ctx_new(0)) || !(buf = blo_malloc(sizeof(double) * (size_t)(total * d))) ||
        !(sd->Xtr = blo_malloc(sizeof(double) * (size_t)(sd->n[0] * d + 1)))) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "regsearch: out of memory for %lld x %lld features",
                  (long long)total, (long long)d);
        goto out;
    }
    double *rowp[3] = {buf, buf + sd->n[0] * d, buf + (sd->n[0] + sd->n[1]) * d};
    for (int s = 0; s < 3; s++)
        for (int64_t i = 0; i < sd->n[s]; i++)
            dense_row(set[s], srows[s][i], d, rowp[s] + i * d);
    /* Centre every feature on its training mean, and with standardize also scale it to unit
     * variance; training statistics only, so nothing of the validation or test sets leaks in.
     * Centring changes nothing in the model class or the penalty (the unpenalised bias takes
     * the shift: (X − 1μᵀ) w + b = X w + (b − μᵀw)), but it removes the large eigenvalue the
     * mean puts into XᵀX, so gradient steps may be longer and fits converge faster. A
     * constant feature keeps its scale (it is 0 after centring and carries nothing). */
    mu = blo_calloc((size_t)d, sizeof(double));
    sig = blo_calloc((size_t)d, sizeof(double));
    if (!mu || !sig) {
        blo_free(mu);
        blo_free(sig);
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "regsearch: out of memory");
        goto out;
    }
    for (int64_t i = 0; i < sd->n[0]; i++)
        for (int64_t j = 0; j < d; j++)
            mu[j] += buf[i * d + j];
    for (int64_t j = 0; j < d; j++)
        mu[j] /= (double)sd->n[0];
    for (int64_t i = 0; i < sd->n[0]; i++)
        for (int64_t j = 0; j < d; j++) {
            double e = buf[i * d + j] - mu[j];
            sig[j] += e * e;
        }
    for (int64_t j = 0; j < d; j++) {
        sig[j] = sqrt(sig[j] / (double)sd->n[0]);
        if (!standardize || !(sig[j] > 1e-12)) sig[j] = 1;
    }
    for (int64_t i = 0; i < total; i++)
        for (int64_t j = 0; j < d; j++)
            buf[i * d + j] = (buf[i * d + j] - mu[j]) / sig[j];
    blo_free(mu);
    blo_free(sig);
    memcpy(sd->Xtr, buf, sizeof(double) * (size_t)(sd->n[0] * d));
    for (int s = 0; s < 3; s++) {
        int64_t shape[2] = {sd->n[s], d};
        sd->X[s] = blo_from_f64(sd->ctx, c->dtype, 2, shape, rowp[s]);
        sd->lab[s] = blo_from_i64(sd->ctx, 1, &sd->n[s], slab[s]);
        if (!sd->X[s] || !sd->lab[s]) {
            st = blo__fail(err, errlen, BLO_ERR_NOMEM, "regsearch: out of memory");
            goto out;
        }
        /* A set without one of the classes is allowed (a small validation set may miss a
         * rare class), but the training set must see at least two. */
    }
out:
    if (in_memory)
        for (int s = 0; s < 3; s++) {
            blo_free(srows[s]);
            blo_free(slab[s]);
        }
    blo_free(rows);
    blo_free(lab);
    blo_free(buf);
    blo_dataset_free(&src);
    if (st) {
        blo_ctx_free(sd->ctx);
        blo_free(sd->Xtr);
        memset(sd, 0, sizeof *sd);
    }
    return st;
}

/* λ_max(X̃ᵀX̃ / n) for X̃ = [X, 1], by power iteration (from below; the caller adds margin). */
static double gram_top_eigenvalue(const double *X, int64_t n, int64_t d) {
    double *v = blo_malloc(sizeof(double) * (size_t)(d + 1));
    double *u = blo_malloc(sizeof(double) * (size_t)(n + 1));
    double *w = blo_malloc(sizeof(double) * (size_t)(d + 1));
    double lam = 0;
    if (v && u && w) {
        for (int64_t j = 0; j <= d; j++)
            v[j] = 1.0 / sqrt((double)(d + 1));
        for (int it = 0; it < 100; it++) {
            for (int64_t i = 0; i < n; i++) {
                double a = v[d];
                for (int64_t j = 0; j < d; j++)
                    a += X[i * d + j] * v[j];
                u[i] = a;
            }
            memset(w, 0, sizeof(double) * (size_t)(d + 1));
            for (int64_t i = 0; i < n; i++) {
                for (int64_t j = 0; j < d; j++)
                    w[j] += X[i * d + j] * u[i];
                w[d] += u[i];
            }
            double nn = 0;
            for (int64_t j = 0; j <= d; j++)
                nn += w[j] * w[j];
            nn = sqrt(nn);
            double next = nn / (double)n; /* ‖M v‖ with ‖v‖ = 1 */
            if (!(nn > 0)) break;
            for (int64_t j = 0; j <= d; j++)
                v[j] = w[j] / nn;
            bool done = it > 5 && fabs(next - lam) <= 1e-6 * next;
            lam = next;
            if (done) break;
        }
    }
    blo_free(v);
    blo_free(u);
    blo_free(w);
    return lam;
}

/* ---- Fits to convergence (L-BFGS) ------------------------------------------------------------ */

typedef struct fitter {
    blo_regsearch *h;
    blo_problem p;
    blo_ctx *ctx;      /* scratch, rewound after every evaluation */
    blo_tensor *x;     /* [G] log-strengths the fit holds fixed */
    int64_t nw, nb, n; /* sizes of W, b and of the whole vector */
} fitter;

static blo_status fitter_init(fitter *F, blo_regsearch *h) {
    memset(F, 0, sizeof *F);
    F->h = h;
    F->p = blo_regsearch_problem(h);
    F->nw = blo_tensor_numel(h->y0[0]);
    F->nb = blo_tensor_numel(h->y0[1]);
    F->n = F->nw + F->nb;
    F->ctx = blo_ctx_new(0);
    F->x = F->ctx ? blo_clone(F->ctx, h->x0[0]) : NULL;
    return F->x ? BLO_OK : BLO_ERR_NOMEM;
}

static void fitter_free(fitter *F) {
    blo_ctx_free(F->ctx);
}

/* f(x, y) and ∇_y f at the flat vector yv = (W, b). */
static blo_status fitter_eval(fitter *F, const double *yv, double *f, double *g) {
    blo_ctx *c = F->ctx;
    blo_mark mk = blo_ctx_mark(c);
    blo_tensor *y[2], *gy[2];
    y[0] = blo_from_f64(c, blo_tensor_dtype(F->x), blo_tensor_ndim(F->h->y0[0]),
                        blo_tensor_shape(F->h->y0[0]), yv);
    y[1] = blo_from_f64(c, blo_tensor_dtype(F->x), 1, blo_tensor_shape(F->h->y0[1]), yv + F->nw);
    blo_status st = BLO_ERR_NOMEM;
    if (y[0] && y[1]) {
        blo_set_requires_grad(y[0], 1);
        blo_set_requires_grad(y[1], 1);
        blo_eval ev = {1, -1, -1, NULL};
        blo_tensor *loss = F->p.lower(c, &F->x, y, &ev, F->h);
        st = loss ? blo_grad(c, 1, &loss, NULL, 2, y, 0, gy) : blo_ctx_status(c);
        if (!st) {
            *f = blo_tensor_item(loss);
            blo_tensor_to_f64(gy[0], g);
            blo_tensor_to_f64(gy[1], g + F->nw);
        }
    }
    if (st) st = blo_ctx_status(c) ? blo_ctx_status(c) : st;
    blo_ctx_rewind(c, mk);
    blo_ctx_clear_error(c);
    return st;
}

static blo_status fitter_eval_cb(const double *yv, double *f, double *g, void *F) {
    return fitter_eval(F, yv, f, g);
}

/* Minimises f(x, ·) at log-strengths logl[G] from y (updated in place) by L-BFGS. *converged
 * is 0 when the iteration budget ran out first. */
static blo_status fit(fitter *F, const double *logl, double *y, int64_t max_iter, double tol,
                      int *converged) {
    for (int64_t g = 0; g < blo_tensor_numel(F->x); g++)
        blo_tensor_set(F->x, g, logl[g]);
    blo_lbfgs_opts o = {10, max_iter, tol};
    blo_lbfgs_result r;
    blo_status st = blo_lbfgs(F->n, y, fitter_eval_cb, F, &o, &r);
    *converged = r.converged;
    return st;
}

/* Writes the flat vector yv into the two tensors y[0], y[1]. */
static void set_y(blo_tensor *const *y, const double *yv) {
    int64_t nw = blo_tensor_numel(y[0]), nb = blo_tensor_numel(y[1]);
    for (int64_t i = 0; i < nw; i++)
        blo_tensor_set(y[0], i, yv[i]);
    for (int64_t i = 0; i < nb; i++)
        blo_tensor_set(y[1], i, yv[nw + i]);
}

/* Scores of the model yv on the validation and test sets. */
static blo_status score(const blo_regsearch *h, const split_data *sd, blo_tensor *const *tmp,
                        const double *yv, blo_regsearch_scores *out) {
    set_y(tmp, yv);
    blo_status st =
        blo_regsearch_score(h, sd->X[1], sd->lab[1], tmp, &out->val_loss, &out->val_acc);
    if (!st)
        st = blo_regsearch_score(h, sd->X[2], sd->lab[2], tmp, &out->test_loss, &out->test_acc);
    return st;
}

/* ---- The outer loop's reporting ---------------------------------------------------------------
 */

typedef struct run_state {
    const blo_regsearch_config *c;
    blo_regsearch *h;
    const split_data *sd;
    fitter *F;
    blo_solver *s;
    double *xbuf, *ybuf; /* [G], [F->n] */
    size_t peak;
    double seconds;
    int64_t unconverged;
    blo_status st; /* a failed refit stops the run with this */
    char err[256];
} run_state;

static void lambda_stats(int64_t G, const double *logl, double *lo, double *gmean, double *hi) {
    double a = INFINITY, b = -INFINITY, m = 0;
    for (int64_t g = 0; g < G; g++) {
        a = fmin(a, logl[g]);
        b = fmax(b, logl[g]);
        m += logl[g];
    }
    *lo = exp(a);
    *hi = exp(b);
    *gmean = exp(m / (double)G);
}

/* After every outer step: the lower level solved again at the new strengths (when asked),
 * written where the next warm start reads it; then the report. */
static int on_record(const blo_record *rec, void *user) {
    run_state *rs = user;
    if (rec->peak_bytes > rs->peak) rs->peak = rec->peak_bytes;
    rs->seconds = rec->seconds;
    blo_regsearch_iter it;
    memset(&it, 0, sizeof it);
    it.rec = *rec;
    it.test_acc = NAN;
    blo_tensor_to_f64(blo_solver_x(rs->s, 0), rs->xbuf);
    lambda_stats(rs->h->groups, rs->xbuf, &it.lambda_min, &it.lambda_gmean, &it.lambda_max);
    blo_tensor *y[2] = {blo_solver_y(rs->s, 0), blo_solver_y(rs->s, 1)};
    if (rs->c->solve_lower) {
        blo_tensor_to_f64(y[0], rs->ybuf);
        blo_tensor_to_f64(y[1], rs->ybuf + rs->F->nw);
        int conv;
        rs->st = fit(rs->F, rs->xbuf, rs->ybuf, rs->c->fit_iters, rs->c->fit_tol, &conv);
        if (rs->st) {
            snprintf(rs->err, sizeof rs->err, "iteration %lld: the lower-level fit failed",
                     (long long)rec->iter);
            return 1;
        }
        rs->unconverged += !conv;
        set_y(y, rs->ybuf);
    }
    int64_t done = rec->iter + 1;
    if (done >= rs->c->solver.outer_iters ||
        (rs->c->eval_every > 0 && done % rs->c->eval_every == 0))
        blo_regsearch_score(rs->h, rs->sd->X[2], rs->sd->lab[2], y, NULL, &it.test_acc);
    return rs->c->on_iter ? rs->c->on_iter(&it, rs->c->user) : 0;
}

/* ---- The run
 * ------------------------------------------------------------------------------------- */

static blo_status check_config(const blo_regsearch_config *c, char *err, size_t errlen) {
    if (!(c->train_frac > 0 && c->val_frac > 0 && c->train_frac + c->val_frac < 1))
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                    "regsearch: the training and validation fractions must be positive and sum "
                    "to less than 1 (got %g and %g)",
                    c->train_frac, c->val_frac);
    if (c->max_examples < 0)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "regsearch: max_examples must be >= 0");
    if ((unsigned)c->groups > BLO_REGSEARCH_BLOCKS ||
        (c->groups == BLO_REGSEARCH_BLOCKS && c->blocks < 1))
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                    "regsearch: groups must be feature, single or "
                    "blocks of K >= 1");
    if (!(c->lambda_lo > 0 && c->lambda_lo <= c->lambda_hi && isfinite(c->lambda_hi)))
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                    "regsearch: the box on lambda [%g, %g] must be positive and not empty",
                    c->lambda_lo, c->lambda_hi);
    if (!(c->lambda0 >= 0 && isfinite(c->lambda0)))
        return blo__fail(err, errlen, BLO_ERR_INVALID, "regsearch: lambda0 %g must be >= 0", c->lambda0);
    if (c->grid_n < 0 || c->grid_n > BLO_REGSEARCH_MAX_GRID ||
        (c->grid_n > 0 && !(c->grid_lo > 0 && c->grid_lo <= c->grid_hi && isfinite(c->grid_hi))))
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                    "regsearch: the grid needs 0 .. %d values over a positive range (got %d "
                    "over [%g, %g])",
                    BLO_REGSEARCH_MAX_GRID, c->grid_n, c->grid_lo, c->grid_hi);
    if (c->grid_n == 0 && c->lambda0 == 0)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                    "regsearch: lambda0 0 means the grid's best, but the grid is off; give a "
                    "lambda0 or grid values");
    if (c->fit_iters < 1 || !(c->fit_tol > 0))
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                    "regsearch: fits need >= 1 iteration and a positive tolerance");
    if (c->solve_lower && c->solver.init != BLO_INIT_WARM)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                    "regsearch: solving the lower level before each hypergradient (solve_lower) "
                    "hands the solution to the warm start; it needs init warm, not %s",
                    blo_init_kind_name(c->solver.init));
    if (c->dtype != BLO_F32 && c->dtype != BLO_F64)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "regsearch: the dtype must be f32 or f64");
    return BLO_OK;
}

blo_status blo_regsearch_run(const blo_regsearch_config *c, blo_regsearch_result *r, char *err,
                             size_t errlen) {
    if (!c || !r) return blo__fail(err, errlen, BLO_ERR_INVALID, "regsearch: no configuration");
    memset(r, 0, sizeof *r);
    r->grid_best = NAN;
    r->grid.val_loss = r->grid.val_acc = r->grid.test_loss = r->grid.test_acc = NAN;
    blo_status st = check_config(c, err, errlen);
    if (st) return st;
    split_data sd;
    if ((st = load_data(c, &sd, err, errlen))) return st;

    int64_t d = sd.d, G = c->groups == BLO_REGSEARCH_FEATURE  ? d
                          : c->groups == BLO_REGSEARCH_SINGLE ? 1
                                                              : c->blocks;
    blo_regsearch h;
    memset(&h, 0, sizeof h);
    fitter F;
    memset(&F, 0, sizeof F);
    blo_solver *s = NULL;
    int64_t *group = NULL;
    double *logl = NULL, *ybest = NULL, *ycur = NULL;
    blo_ctx *tmpctx = NULL;
    if (G > d) {
        st = blo__fail(err, errlen, BLO_ERR_INVALID, "regsearch: %lld blocks for %lld features",
                  (long long)G, (long long)d);
        goto out;
    }
    if (G < d && !(group = blo_malloc(sizeof(int64_t) * (size_t)d))) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "regsearch: out of memory");
        goto out;
    }
    for (int64_t j = 0; group && j < d; j++)
        group[j] = j * G / d; /* contiguous blocks */
    if ((st = blo_regsearch_init(&h, sd.X[0], sd.lab[0], sd.X[1], sd.lab[1], sd.classes, G, group,
                                 0.0, err, errlen)))
        goto out;
    r->n_train = sd.n[0];
    r->n_val = sd.n[1];
    r->n_test = sd.n[2];
    r->features = d;
    r->classes = sd.classes;
    r->groups = G;
    if (fitter_init(&F, &h) || !(logl = blo_malloc(sizeof(double) * (size_t)G)) ||
        !(ybest = blo_calloc((size_t)F.n, sizeof(double))) ||
        !(ycur = blo_calloc((size_t)F.n, sizeof(double))) || !(tmpctx = blo_ctx_new(0))) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "regsearch: out of memory");
        goto out;
    }
    blo_tensor *ytmp[2] = {blo_clone(tmpctx, h.y0[0]), blo_clone(tmpctx, h.y0[1])};
    if (!ytmp[0] || !ytmp[1]) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "regsearch: out of memory");
        goto out;
    }

    /* The grid, from the strongest penalty down: each fit starts from the previous one's
     * solution, which is close (a path of solutions), and a strong penalty converges fast.
     * Ties keep the stronger penalty (the simpler model). */
    double t0 = blo__task_seconds(), best = INFINITY;
    r->grid_n = c->grid_n;
    for (int k = c->grid_n - 1; k >= 0; k--) {
        double lam =
            c->grid_n == 1
                ? c->grid_lo
                : exp(log(c->grid_lo) + (log(c->grid_hi) - log(c->grid_lo)) * k / (c->grid_n - 1));
        for (int64_t g = 0; g < G; g++)
            logl[g] = log(lam);
        int conv;
        if ((st = fit(&F, logl, ycur, c->fit_iters, c->fit_tol, &conv))) {
            blo__fail(err, errlen, st, "regsearch: the fit at lambda %g failed", lam);
            goto out;
        }
        r->fits_unconverged += !conv;
        double vl, va;
        set_y(ytmp, ycur);
        if ((st = blo_regsearch_score(&h, sd.X[1], sd.lab[1], ytmp, &vl, &va))) goto out;
        r->grid_lambda[k] = lam;
        r->grid_val_loss[k] = vl;
        if (vl < best) {
            best = vl;
            r->grid_best = lam;
            memcpy(ybest, ycur, sizeof(double) * (size_t)F.n);
        }
        if (c->on_grid) c->on_grid(c->grid_n - k, c->grid_n, lam, vl, va, c->user);
    }
    r->grid_seconds = blo__task_seconds() - t0;
    if (c->grid_n > 0 && (st = score(&h, &sd, ytmp, ybest, &r->grid))) goto out;

    /* The bilevel search starts at lambda0 (or the grid's best), clamped into the box, from
     * the lower level fitted there, so the first hypergradient is taken at y*(x0). */
    double lam0 = c->lambda0 > 0 ? c->lambda0 : r->grid_best;
    lam0 = fmin(fmax(lam0, c->lambda_lo), c->lambda_hi);
    for (int64_t g = 0; g < G; g++)
        logl[g] = log(lam0);
    if (!(c->lambda0 == 0 && lam0 == r->grid_best)) {
        memset(ycur, 0, sizeof(double) * (size_t)F.n);
        int conv;
        if ((st = fit(&F, logl, ycur, c->fit_iters, c->fit_tol, &conv))) {
            blo__fail(err, errlen, st, "regsearch: the fit at lambda0 %g failed", lam0);
            goto out;
        }
        r->fits_unconverged += !conv;
    } else {
        memcpy(ycur, ybest, sizeof(double) * (size_t)F.n);
    }
    blo_fill(h.x0[0], log(lam0));
    set_y(h.y0, ycur);

    blo_config sc = c->solver;
    if (!(sc.inner.lr > 0)) {
        /* Gradient steps are stable below 2/L; ∇²f ≼ c X̃ᵀX̃/n + λ_hi I with c = 1/4 for the
         * logistic loss (σ' ≤ 1/4) and 1/2 for softmax (diag p − ppᵀ ≼ ½ I). Adam's step is
         * bounded by its lr whatever the curvature. */
        double cc = sd.classes == 2 ? 0.25 : 0.5;
        double L = 1.1 * cc * gram_top_eigenvalue(sd.Xtr, sd.n[0], d) + c->lambda_hi;
        sc.inner.lr = sc.inner.kind == BLO_OPT_ADAM ? 0.01 : 1.0 / L;
    }
    blo_problem p = blo_regsearch_problem(&h);
    p.x_lo = log(c->lambda_lo);
    p.x_hi = log(c->lambda_hi);
    run_state rs;
    memset(&rs, 0, sizeof rs);
    rs.c = c;
    rs.h = &h;
    rs.sd = &sd;
    rs.F = &F;
    rs.xbuf = logl;
    rs.ybuf = ycur;
    sc.on_record = on_record;
    sc.record_user = &rs;
    s = blo_solver_new(&p, &sc, err, errlen);
    if (!s) {
        st = BLO_ERR_INVALID;
        goto out;
    }
    rs.s = s;
    if (c->resume && (st = blo_solver_load(s, c->resume))) {
        blo__fail(err, errlen, st, "%s", blo_solver_error(s));
        goto out;
    }
    st = blo_solver_run(s);
    r->fits_unconverged += rs.unconverged;
    if (!st && rs.st) blo__fail(err, errlen, st = rs.st, "regsearch: %s", rs.err);
    if (st) {
        if (!rs.st) blo__fail(err, errlen, st, "%s", blo_solver_error(s));
        goto out;
    }
    r->iters = blo_solver_iter(s);
    r->peak_bytes = rs.peak;
    r->seconds = rs.seconds;
    blo_solver_values(s, &r->upper, &r->lower);

    /* Refit at the learned strengths from y_T (close already), and score. */
    blo_tensor_to_f64(blo_solver_x(s, 0), logl);
    blo_tensor *yT[2] = {blo_solver_y(s, 0), blo_solver_y(s, 1)};
    blo_tensor_to_f64(yT[0], ycur);
    blo_tensor_to_f64(yT[1], ycur + F.nw);
    int conv;
    if ((st = fit(&F, logl, ycur, c->fit_iters, c->fit_tol, &conv))) {
        blo__fail(err, errlen, st, "regsearch: the fit at the learned strengths failed");
        goto out;
    }
    r->fits_unconverged += !conv;
    if ((st = score(&h, &sd, ytmp, ycur, &r->bilevel))) goto out;
    lambda_stats(G, logl, &r->lambda_min, &r->lambda_gmean, &r->lambda_max);
    if (!(r->lambda = blo_malloc(sizeof(double) * (size_t)G))) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "regsearch: out of memory");
        goto out;
    }
    for (int64_t g = 0; g < G; g++)
        r->lambda[g] = exp(logl[g]);
out:
    if (st && err && errlen && !err[0]) blo__fail(err, errlen, st, "regsearch: %s", blo_status_name(st));
    blo_solver_free(s);
    fitter_free(&F);
    blo_regsearch_free(&h);
    blo_ctx_free(tmpctx);
    blo_ctx_free(sd.ctx);
    blo_free(sd.Xtr);
    blo_free(group);
    blo_free(logl);
    blo_free(ybest);
    blo_free(ycur);
    return st;
}
