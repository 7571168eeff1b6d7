/* cmd_regsearch.c — `blo regsearch`: per-feature (or per-group) L2 strengths of a logistic
 * regression chosen by validation loss, against the best single strength of a grid; a thin
 * layer over blo_regsearch_run (include/blo/regsearch.h) in the task frame: its options, its
 * progress status and log row, the side-by-side table or JSON. */
#include "task_frame.h"

#include "blo/blo.h"
#include "blo/regsearch.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int rs_on_iter(const blo_regsearch_iter *it, void *user) {
    char status[160];
    if (isfinite(it->test_acc))
        snprintf(status, sizeof status, "F %.4f  test acc %.2f%%  lambda gmean %.3g", it->rec.upper,
                 100 * it->test_acc, it->lambda_gmean);
    else
        snprintf(status, sizeof status, "F %.4f  |dF/dx| %.3g  lambda gmean %.3g", it->rec.upper,
                 it->rec.hypergrad_norm, it->lambda_gmean);
    double row[10] = {(double)it->rec.iter,   it->rec.upper,   it->rec.lower,
                      it->rec.hypergrad_norm, it->rec.seconds, (double)it->rec.peak_bytes,
                      it->test_acc,           it->lambda_min,  it->lambda_gmean,
                      it->lambda_max};
    cli_task_iter(user, &it->rec, status, row);
    return 0;
}

static void rs_on_grid(int i, int n, double lambda, double val_loss, double val_acc, void *user) {
    cli_task *t = user;
    if (!t->quiet)
        fprintf(stderr, "grid %2d/%d: lambda %-8.3g val loss %.5f  val acc %.2f%%\n", i, n, lambda,
                val_loss, 100 * val_acc);
    /* The outer loop's progress (and ETA) is timed from the end of the grid. */
    if (i == n) cli_progress_start(&t->prog, t->def->name, t->prog.total, t->quiet);
}

/* "feature", "single" or "blocks:K". */
static bool parse_groups(const char *text, blo_regsearch_config *c) {
    if (!strcmp(text, "feature")) {
        c->groups = BLO_REGSEARCH_FEATURE;
        return true;
    }
    if (!strcmp(text, "single")) {
        c->groups = BLO_REGSEARCH_SINGLE;
        return true;
    }
    long long k;
    if (!strncmp(text, "blocks:", 7) &&
        cli_parse_int("regsearch", "--groups blocks:K", text + 7, 1, (long long)1e12, &k)) {
        c->groups = BLO_REGSEARCH_BLOCKS;
        c->blocks = k;
        return true;
    }
    fprintf(stderr,
            "blo regsearch: bad value '%s' for --groups: expected feature, single or "
            "blocks:K (K >= 1)\n",
            text);
    return false;
}

/* "A,B": two class indices. */
static bool parse_classes(const char *text, blo_regsearch_config *c) {
    char *end;
    long a = strtol(text, &end, 10);
    if (end != text && *end == ',') {
        const char *b_text = end + 1;
        long b = strtol(b_text, &end, 10);
        if (end != b_text && !*end && a >= 0 && b >= 0 && a != b) {
            c->class_a = a;
            c->class_b = b;
            return true;
        }
    }
    fprintf(stderr,
            "blo regsearch: bad value '%s' for --classes: expected two different class "
            "indices A,B (e.g. 0,6)\n",
            text);
    return false;
}

static void json_scores(const char *name, const blo_regsearch_scores *s) {
    printf(",\"%s\":{\"val_loss\":", name);
    cli_json_number(stdout, s->val_loss);
    printf(",\"val_acc\":");
    cli_json_number(stdout, s->val_acc);
    printf(",\"test_loss\":");
    cli_json_number(stdout, s->test_loss);
    printf(",\"test_acc\":");
    cli_json_number(stdout, s->test_acc);
}

static void json_array(const char *name, int64_t n, const double *v) {
    printf(",\"%s\":[", name);
    for (int64_t i = 0; i < n; i++) {
        if (i) putchar(',');
        cli_json_number(stdout, v[i]);
    }
    putchar(']');
}

static void row(const char *name, const char *lambda, const blo_regsearch_scores *s) {
    printf("  %-28s %-34s %8.4f  %7.2f%%  %9.4f  %7.2f%%\n", name, lambda, s->val_loss,
           100 * s->val_acc, s->test_loss, 100 * s->test_acc);
}

typedef struct rs_cmd {
    blo_regsearch_config c;
    long long examples, grid_n, fit_iters, eval_every, seed;
    double train_frac, val_frac, lambda0, lam_lo, lam_hi, grid_lo, grid_hi, fit_tol;
    const char *path, *format, *label_column, *classes, *standardize, *groups, *lower_solve;
    blo_regsearch_result r;
} rs_cmd;

static bool rs_configure(cli_task *t) {
    rs_cmd *m = t->user;
    blo_regsearch_config *c = &m->c;
    if (!parse_groups(m->groups, c) || (!m->path && !parse_classes(m->classes, c))) return false;
    c->data_path = m->path;
    c->format = m->format;
    c->label_column = m->label_column;
    c->max_examples = m->examples;
    c->train_frac = m->train_frac;
    c->val_frac = m->val_frac;
    c->standardize = !strcmp(m->standardize, "auto") ? -1 : !strcmp(m->standardize, "yes");
    c->lambda0 = m->lambda0;
    c->lambda_lo = m->lam_lo;
    c->lambda_hi = m->lam_hi;
    c->grid_n = (int)m->grid_n;
    c->grid_lo = m->grid_lo;
    c->grid_hi = m->grid_hi;
    c->fit_iters = m->fit_iters;
    c->fit_tol = m->fit_tol;
    c->solve_lower = !strcmp(m->lower_solve, "lbfgs");
    c->eval_every = m->eval_every;
    c->on_grid = rs_on_grid;
    CLI_TASK_CONFIGURE(c, t, m->seed, rs_on_iter);
    return true;
}

static blo_status rs_run(cli_task *t, char *err, size_t errlen) {
    rs_cmd *m = t->user;
    const blo_regsearch_config *c = &m->c;
    if (!t->quiet)
        fprintf(stderr,
                "regsearch: %s, groups %s, T = %d inner steps (%s), %lld outer "
                "iterations, %s start\n",
                c->solver.method, m->groups, c->solver.inner_steps,
                blo_opt_kind_name(c->solver.inner.kind), (long long)c->solver.outer_iters,
                blo_init_kind_name(c->solver.init));
    return blo_regsearch_run(c, &m->r, err, errlen);
}

static int rs_summary(cli_task *t) {
    const rs_cmd *m = t->user;
    const blo_regsearch_config *c = &m->c;
    const blo_regsearch_result *r = &m->r;
    if (t->json) {
        printf("{\"task\":\"regsearch\",\"method\":\"%s\",\"groups\":", c->solver.method);
        cli_json_string(stdout, m->groups);
        printf(",\"n_groups\":%lld,\"n_train\":%lld,\"n_val\":%lld,\"n_test\":%lld,"
               "\"features\":%lld,\"classes\":%lld,\"iters\":%lld,\"dtype\":\"%s\"",
               (long long)r->groups, (long long)r->n_train, (long long)r->n_val,
               (long long)r->n_test, (long long)r->features, (long long)r->classes,
               (long long)r->iters, t->dtype);
        json_scores("grid", &r->grid);
        printf(",\"lambda\":");
        cli_json_number(stdout, r->grid_best);
        printf(",\"n\":%d", r->grid_n);
        json_array("lambdas", r->grid_n, r->grid_lambda);
        json_array("val_losses", r->grid_n, r->grid_val_loss);
        printf("}");
        json_scores("bilevel", &r->bilevel);
        const char *keys[] = {"lambda_min", "lambda_gmean", "lambda_max", "upper", "lower"};
        double vals[] = {r->lambda_min, r->lambda_gmean, r->lambda_max, r->upper, r->lower};
        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
            printf(",\"%s\":", keys[i]);
            cli_json_number(stdout, vals[i]);
        }
        printf("}");
        json_array("lambda", r->groups, r->lambda);
        printf(",\"fits_unconverged\":%lld,\"seconds\":", (long long)r->fits_unconverged);
        cli_json_number(stdout, r->seconds);
        printf(",\"grid_seconds\":");
        cli_json_number(stdout, r->grid_seconds);
        printf(",\"peak_bytes\":%zu}\n", r->peak_bytes);
        return CLI_EXIT_OK;
    }
    printf("regularization search: %s, %lld iterations (%.1f s; grid %.1f s)\n", c->solver.method,
           (long long)r->iters, r->seconds, r->grid_seconds);
    if (m->path)
        printf("  data: %s\n", m->path);
    else
        printf("  data: %s, classes %lld and %lld\n", c->mnist_dir, (long long)c->class_a,
               (long long)c->class_b);
    printf("  %lld / %lld / %lld train / validation / test examples, %lld features, %lld "
           "classes\n",
           (long long)r->n_train, (long long)r->n_val, (long long)r->n_test,
           (long long)r->features, (long long)r->classes);
    printf("  %-28s %-34s %8s  %8s  %9s  %8s\n", "", "lambda", "val loss", "val acc", "test loss",
           "test acc");
    char what[64], lam[96];
    if (r->grid_n > 0) {
        snprintf(what, sizeof what, "grid: single (best of %d)", r->grid_n);
        snprintf(lam, sizeof lam, "%.3g", r->grid_best);
        row(what, lam, &r->grid);
    }
    snprintf(what, sizeof what, "bilevel: %s (%lld)", m->groups, (long long)r->groups);
    if (r->groups == 1)
        snprintf(lam, sizeof lam, "%.3g", r->lambda_gmean);
    else
        snprintf(lam, sizeof lam, "%.3g .. %.3g (gmean %.3g)", r->lambda_min, r->lambda_max,
                 r->lambda_gmean);
    row(what, lam, &r->bilevel);
    if (r->fits_unconverged)
        printf("  note: %lld fit(s) ended on the iteration budget (--fit-iters)\n",
               (long long)r->fits_unconverged);
    if (t->plot) printf("  plot: %s\n", t->plot);
    return CLI_EXIT_OK;
}

static void rs_release(cli_task *t) {
    rs_cmd *m = t->user;
    blo_regsearch_result_free(&m->r);
}

static const char *const RS_COLS[10] = {"iter",         "upper",      "lower",    "hypergrad_norm",
                                        "seconds",      "peak_bytes", "test_acc", "lambda_min",
                                        "lambda_gmean", "lambda_max"};
static const cli_task_def RS = {"regsearch", 10, RS_COLS, rs_configure, rs_run, rs_summary,
                                rs_release};

int cli_regsearch_run(const cli_cmd *cmd, int argc, char **argv) {
    rs_cmd m;
    memset(&m, 0, sizeof m);
    blo_regsearch_config *c = &m.c;
    *c = blo_regsearch_default();
    c->mnist_dir = cli_default_data();
    m.examples = c->max_examples, m.grid_n = c->grid_n, m.fit_iters = c->fit_iters;
    m.eval_every = c->eval_every;
    m.train_frac = c->train_frac, m.val_frac = c->val_frac, m.lambda0 = c->lambda0;
    m.lam_lo = c->lambda_lo, m.lam_hi = c->lambda_hi, m.grid_lo = c->grid_lo;
    m.grid_hi = c->grid_hi, m.fit_tol = c->fit_tol;
    m.format = "auto", m.classes = "0,6", m.standardize = "auto", m.groups = "feature";
    m.lower_solve = c->solve_lower ? "lbfgs" : "steps";
    cli_task t;
    cli_task_init(&t, &RS, cmd, &c->solver, &m);
    t.dtype = "f64";
    const double BIG = 1e300;
    cli_opt opts[21 + CLI_TASK_NOPTS] = {
        {"--data", NULL, CLI_STRING, &m.path, 0, 0, NULL, "PATH",
         "LIBSVM or CSV file (gzip or plain); without it, the built-in Fashion-MNIST pair"},
        {"--format", NULL, CLI_CHOICE, &m.format, 0, 0, "auto|libsvm|csv", "F",
         "file format; auto: CSV for names ending .csv or .csv.gz, LIBSVM otherwise"},
        {"--label-column", NULL, CLI_STRING, &m.label_column, 0, 0, NULL, "NAME",
         "CSV: the target column (default: the last)"},
        {"--mnist", NULL, CLI_STRING, &c->mnist_dir, 0, 0, NULL, "DIR",
         "built-in problem: MNIST-layout folder (its train split)" CLI_DATA_HELP},
        {"--classes", NULL, CLI_STRING, &m.classes, 0, 0, NULL, "A,B",
         "built-in problem: the two classes (0 T-shirt/top, 6 shirt)"},
        {"--examples", NULL, CLI_INT, &m.examples, 0, 1e12, NULL, "N",
         "use at most N shuffled examples (0: all)"},
        {"--train-frac", NULL, CLI_DOUBLE, &m.train_frac, 1e-9, 1, NULL, "P",
         "fraction of the examples for training (f)"},
        {"--val-frac", NULL, CLI_DOUBLE, &m.val_frac, 1e-9, 1, NULL, "P",
         "fraction for validation (F); the rest is the test set"},
        {"--standardize", NULL, CLI_CHOICE, &m.standardize, 0, 0, "auto|yes|no", "S",
         "features to zero mean, unit variance with training statistics; auto: files yes, "
         "built-in pixels no"},
        {"--groups", NULL, CLI_STRING, &m.groups, 0, 0, NULL, "G",
         "feature (one lambda each), single (one for all) or blocks:K (K contiguous blocks)"},
        {"--lambda0", NULL, CLI_DOUBLE, &m.lambda0, 0, BIG, NULL, "L",
         "start strength of every group (0: the grid's best)"},
        {"--lambda-min", NULL, CLI_DOUBLE, &m.lam_lo, 1e-300, BIG, NULL, "L",
         "lower end of the box the search keeps lambda in"},
        {"--lambda-max", NULL, CLI_DOUBLE, &m.lam_hi, 1e-300, BIG, NULL, "L",
         "upper end of the box (also sets the automatic inner step)"},
        {"--grid", NULL, CLI_INT, &m.grid_n, 0, BLO_REGSEARCH_MAX_GRID, NULL, "N",
         "single strengths tried, log-spaced (0: no grid)"},
        {"--grid-min", NULL, CLI_DOUBLE, &m.grid_lo, 1e-300, BIG, NULL, "L", "smallest grid value"},
        {"--grid-max", NULL, CLI_DOUBLE, &m.grid_hi, 1e-300, BIG, NULL, "L", "largest grid value"},
        {"--fit-iters", NULL, CLI_INT, &m.fit_iters, 1, 1e9, NULL, "N",
         "L-BFGS iterations of each fit to convergence"},
        {"--fit-tol", NULL, CLI_DOUBLE, &m.fit_tol, 1e-300, BIG, NULL, "TOL",
         "a fit stops when max |grad_y f| <= TOL"},
        {"--lower-solve", NULL, CLI_CHOICE, &m.lower_solve, 0, 0, "lbfgs|steps", "HOW",
         "lbfgs: solve the lower level to convergence after every outer step (HOAG), the T "
         "steps start there (needs --init warm); steps: the T steps alone"},
        {"--eval-every", NULL, CLI_INT, &m.eval_every, 0, 1e12, NULL, "N",
         "test accuracy of y_T every N iterations (0: at the end)"},
        {"--seed", NULL, CLI_INT, &m.seed, 0, 9e18, NULL, "S", "shuffle and split"},
    };
    return cli_task_main(&t, argc, argv, opts, cli_task_opts(&t, opts, 21));
}
