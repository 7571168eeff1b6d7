/* cmd_regsearch.c — `blo regsearch`: per-feature (or per-group) L2 strengths of a logistic
 * regression chosen by validation loss, against the best single strength of a grid; a thin
 * layer over blo_regsearch_run (include/blo/regsearch.h): options, progress, log, plot, the
 * side-by-side table or JSON. */
#include "cli.h"
#include "runlog.h"
#include "solver_opts.h"

#include "blo/blo.h"
#include "blo/regsearch.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct rs_ui {
    cli_progress prog;
    cli_log log;
    int logging, quiet;
} rs_ui;

static int rs_on_iter(const blo_regsearch_iter *it, void *user) {
    rs_ui *ui = user;
    char status[160];
    if (isfinite(it->test_acc))
        snprintf(status, sizeof status, "F %.4f  test acc %.2f%%  lambda gmean %.3g", it->rec.upper,
                 100 * it->test_acc, it->lambda_gmean);
    else
        snprintf(status, sizeof status, "F %.4f  |dF/dx| %.3g  lambda gmean %.3g", it->rec.upper,
                 it->rec.hypergrad_norm, it->lambda_gmean);
    cli_progress_update(&ui->prog, it->rec.iter + 1, status);
    if (ui->logging) {
        double row[10] = {(double)it->rec.iter,   it->rec.upper,   it->rec.lower,
                          it->rec.hypergrad_norm, it->rec.seconds, (double)it->rec.peak_bytes,
                          it->test_acc,           it->lambda_min,  it->lambda_gmean,
                          it->lambda_max};
        cli_log_row(&ui->log, row);
    }
    return 0;
}

static void rs_on_grid(int i, int n, double lambda, double val_loss, double val_acc, void *user) {
    rs_ui *ui = user;
    if (!ui->quiet)
        fprintf(stderr, "grid %2d/%d: lambda %-8.3g val loss %.5f  val acc %.2f%%\n", i, n, lambda,
                val_loss, 100 * val_acc);
    /* The outer loop's progress (and ETA) is timed from the end of the grid. */
    if (i == n) cli_progress_start(&ui->prog, "regsearch", ui->prog.total, ui->quiet);
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

int cli_regsearch_run(const cli_cmd *cmd, int argc, char **argv) {
    blo_regsearch_config c = blo_regsearch_default();
    cli_solver_args sa;
    cli_solver_args_from(&sa, &c.solver);
    long long examples = c.max_examples, grid_n = c.grid_n, fit_iters = c.fit_iters,
              eval_every = c.eval_every, seed = 0, threads = 0;
    double train_frac = c.train_frac, val_frac = c.val_frac, lambda0 = c.lambda0,
           lam_lo = c.lambda_lo, lam_hi = c.lambda_hi, grid_lo = c.grid_lo, grid_hi = c.grid_hi,
           fit_tol = c.fit_tol;
    const char *data = NULL, *format = "auto", *label_column = NULL, *mnist = c.mnist_dir,
               *classes = "0,6", *standardize = "auto", *groups = "feature", *dtype = "f64",
               *log = NULL, *plot = NULL, *lower_solve = c.solve_lower ? "lbfgs" : "steps";
    int json = 0, quiet = 0;
    const double BIG = 1e300;
    cli_opt opts[29 + CLI_SOLVER_NOPTS] = {
        {"--data", NULL, CLI_STRING, &data, 0, 0, NULL, "PATH",
         "LIBSVM or CSV file (gzip or plain); without it, the built-in Fashion-MNIST pair"},
        {"--format", NULL, CLI_CHOICE, &format, 0, 0, "auto|libsvm|csv", "F",
         "file format; auto: CSV for names ending .csv or .csv.gz, LIBSVM otherwise"},
        {"--label-column", NULL, CLI_STRING, &label_column, 0, 0, NULL, "NAME",
         "CSV: the target column (default: the last)"},
        {"--mnist", NULL, CLI_STRING, &mnist, 0, 0, NULL, "DIR",
         "built-in problem: MNIST-layout folder (its train split)"},
        {"--classes", NULL, CLI_STRING, &classes, 0, 0, NULL, "A,B",
         "built-in problem: the two classes (0 T-shirt/top, 6 shirt)"},
        {"--examples", NULL, CLI_INT, &examples, 0, 1e12, NULL, "N",
         "use at most N shuffled examples (0: all)"},
        {"--train-frac", NULL, CLI_DOUBLE, &train_frac, 1e-9, 1, NULL, "P",
         "fraction of the examples for training (f)"},
        {"--val-frac", NULL, CLI_DOUBLE, &val_frac, 1e-9, 1, NULL, "P",
         "fraction for validation (F); the rest is the test set"},
        {"--standardize", NULL, CLI_CHOICE, &standardize, 0, 0, "auto|yes|no", "S",
         "features to zero mean, unit variance with training statistics; auto: files yes, "
         "built-in pixels no"},
        {"--groups", NULL, CLI_STRING, &groups, 0, 0, NULL, "G",
         "feature (one lambda each), single (one for all) or blocks:K (K contiguous blocks)"},
        {"--lambda0", NULL, CLI_DOUBLE, &lambda0, 0, BIG, NULL, "L",
         "start strength of every group (0: the grid's best)"},
        {"--lambda-min", NULL, CLI_DOUBLE, &lam_lo, 1e-300, BIG, NULL, "L",
         "lower end of the box the search keeps lambda in"},
        {"--lambda-max", NULL, CLI_DOUBLE, &lam_hi, 1e-300, BIG, NULL, "L",
         "upper end of the box (also sets the automatic inner step)"},
        {"--grid", NULL, CLI_INT, &grid_n, 0, BLO_REGSEARCH_MAX_GRID, NULL, "N",
         "single strengths tried, log-spaced (0: no grid)"},
        {"--grid-min", NULL, CLI_DOUBLE, &grid_lo, 1e-300, BIG, NULL, "L", "smallest grid value"},
        {"--grid-max", NULL, CLI_DOUBLE, &grid_hi, 1e-300, BIG, NULL, "L", "largest grid value"},
        {"--fit-iters", NULL, CLI_INT, &fit_iters, 1, 1e9, NULL, "N",
         "L-BFGS iterations of each fit to convergence"},
        {"--fit-tol", NULL, CLI_DOUBLE, &fit_tol, 1e-300, BIG, NULL, "TOL",
         "a fit stops when max |grad_y f| <= TOL"},
        {"--lower-solve", NULL, CLI_CHOICE, &lower_solve, 0, 0, "lbfgs|steps", "HOW",
         "lbfgs: solve the lower level to convergence after every outer step (HOAG), the T "
         "steps start there (needs --init warm); steps: the T steps alone"},
        {"--eval-every", NULL, CLI_INT, &eval_every, 0, 1e12, NULL, "N",
         "test accuracy of y_T every N iterations (0: at the end)"},
        {"--seed", NULL, CLI_INT, &seed, 0, 9e18, NULL, "S", "shuffle and split"},
        CLI_RUN_OPTS(threads, dtype, json, log, plot, quiet),
    };
    int n = cli_solver_opts(opts, 27, &sa);
    int rc;
    if (!cli_parse(cmd, argc, argv, opts, n, &rc)) return rc;
    if (!cli_solver_config(cmd->name, &sa, &c.solver)) return CLI_EXIT_USAGE;
    if (!parse_groups(groups, &c) || (!data && !parse_classes(classes, &c))) return CLI_EXIT_USAGE;
    if (!cli_plot_has_log("regsearch", plot, log)) return CLI_EXIT_USAGE;
    c.data_path = data;
    c.format = format;
    c.label_column = label_column;
    c.mnist_dir = mnist;
    c.max_examples = examples;
    c.train_frac = train_frac;
    c.val_frac = val_frac;
    c.standardize = !strcmp(standardize, "auto") ? -1 : !strcmp(standardize, "yes");
    c.lambda0 = lambda0;
    c.lambda_lo = lam_lo;
    c.lambda_hi = lam_hi;
    c.grid_n = (int)grid_n;
    c.grid_lo = grid_lo;
    c.grid_hi = grid_hi;
    c.fit_iters = fit_iters;
    c.fit_tol = fit_tol;
    c.solve_lower = !strcmp(lower_solve, "lbfgs");
    c.eval_every = eval_every;
    c.dtype = strcmp(dtype, "f64") ? BLO_F32 : BLO_F64;
    c.seed = (uint64_t)seed;
    c.solver.seed = (uint64_t)seed;
    c.resume = sa.resume;
    blo_set_num_threads((int)threads);

    rs_ui ui;
    memset(&ui, 0, sizeof ui);
    ui.quiet = quiet;
    static const char *const cols[10] = {"iter",         "upper",      "lower",    "hypergrad_norm",
                                         "seconds",      "peak_bytes", "test_acc", "lambda_min",
                                         "lambda_gmean", "lambda_max"};
    if (log) {
        if (!cli_log_open(&ui.log, log, 10, cols, sa.resume != NULL)) return CLI_EXIT_USAGE;
        ui.logging = 1;
    }
    c.on_iter = rs_on_iter;
    c.on_grid = rs_on_grid;
    c.user = &ui;
    if (!quiet)
        fprintf(stderr,
                "regsearch: %s, groups %s, T = %d inner steps (%s), %lld outer "
                "iterations, %s start\n",
                c.solver.method, groups, c.solver.inner_steps,
                blo_opt_kind_name(c.solver.inner.kind), (long long)c.solver.outer_iters,
                blo_init_kind_name(c.solver.init));
    /* The progress line starts with the outer loop; the grid reports line by line before. */
    cli_progress_start(&ui.prog, "regsearch", c.solver.outer_iters, quiet);
    blo_regsearch_result r;
    char err[1024] = "";
    blo_status st = blo_regsearch_run(&c, &r, err, sizeof err);
    int done = cli_task_finish("regsearch", st, err, &ui.prog, &ui.log, plot, log);
    if (done >= 0) {
        if (!st) blo_regsearch_result_free(&r);
        return done;
    }
    if (json) {
        printf("{\"task\":\"regsearch\",\"method\":\"%s\",\"groups\":", c.solver.method);
        cli_json_string(stdout, groups);
        printf(",\"n_groups\":%lld,\"n_train\":%lld,\"n_val\":%lld,\"n_test\":%lld,"
               "\"features\":%lld,\"classes\":%lld,\"iters\":%lld,\"dtype\":\"%s\"",
               (long long)r.groups, (long long)r.n_train, (long long)r.n_val, (long long)r.n_test,
               (long long)r.features, (long long)r.classes, (long long)r.iters, dtype);
        json_scores("grid", &r.grid);
        printf(",\"lambda\":");
        cli_json_number(stdout, r.grid_best);
        printf(",\"n\":%d", r.grid_n);
        json_array("lambdas", r.grid_n, r.grid_lambda);
        json_array("val_losses", r.grid_n, r.grid_val_loss);
        printf("}");
        json_scores("bilevel", &r.bilevel);
        const char *keys[] = {"lambda_min", "lambda_gmean", "lambda_max", "upper", "lower"};
        double vals[] = {r.lambda_min, r.lambda_gmean, r.lambda_max, r.upper, r.lower};
        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
            printf(",\"%s\":", keys[i]);
            cli_json_number(stdout, vals[i]);
        }
        printf("}");
        json_array("lambda", r.groups, r.lambda);
        printf(",\"fits_unconverged\":%lld,\"seconds\":", (long long)r.fits_unconverged);
        cli_json_number(stdout, r.seconds);
        printf(",\"grid_seconds\":");
        cli_json_number(stdout, r.grid_seconds);
        printf(",\"peak_bytes\":%zu}\n", r.peak_bytes);
        blo_regsearch_result_free(&r);
        return CLI_EXIT_OK;
    }
    printf("regularization search: %s, %lld iterations (%.1f s; grid %.1f s)\n", c.solver.method,
           (long long)r.iters, r.seconds, r.grid_seconds);
    if (data)
        printf("  data: %s\n", data);
    else
        printf("  data: %s, classes %lld and %lld\n", mnist, (long long)c.class_a,
               (long long)c.class_b);
    printf("  %lld / %lld / %lld train / validation / test examples, %lld features, %lld "
           "classes\n",
           (long long)r.n_train, (long long)r.n_val, (long long)r.n_test, (long long)r.features,
           (long long)r.classes);
    printf("  %-28s %-34s %8s  %8s  %9s  %8s\n", "", "lambda", "val loss", "val acc", "test loss",
           "test acc");
    char what[64], lam[96];
    if (r.grid_n > 0) {
        snprintf(what, sizeof what, "grid: single (best of %d)", r.grid_n);
        snprintf(lam, sizeof lam, "%.3g", r.grid_best);
        row(what, lam, &r.grid);
    }
    snprintf(what, sizeof what, "bilevel: %s (%lld)", groups, (long long)r.groups);
    if (r.groups == 1)
        snprintf(lam, sizeof lam, "%.3g", r.lambda_gmean);
    else
        snprintf(lam, sizeof lam, "%.3g .. %.3g (gmean %.3g)", r.lambda_min, r.lambda_max,
                 r.lambda_gmean);
    row(what, lam, &r.bilevel);
    if (r.fits_unconverged)
        printf("  note: %lld fit(s) ended on the iteration budget (--fit-iters)\n",
               (long long)r.fits_unconverged);
    if (plot) printf("  plot: %s\n", plot);
    blo_regsearch_result_free(&r);
    return CLI_EXIT_OK;
}
