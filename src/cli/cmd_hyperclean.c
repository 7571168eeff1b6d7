/* cmd_hyperclean.c — `blo hyperclean`: data hyper-cleaning from the command line, a thin
 * layer over blo_hyperclean_run (include/blo/hyperclean.h): options, progress, log, plot, the
 * summary table or JSON. */
#include "cli.h"
#include "runlog.h"
#include "solver_opts.h"

#include "blo/blo.h"
#include "blo/hyperclean.h"

#include <math.h>
#include <string.h>

typedef struct hc_ui {
    cli_progress prog;
    cli_log log;
    int logging;
} hc_ui;

static int hc_on_iter(const blo_task_iter *it, void *user) {
    hc_ui *ui = user;
    char status[128];
    if (isfinite(it->test_acc_start))
        snprintf(status, sizeof status, "F %.4f  test acc %.2f%% (y0 %.2f%%)  F1 %.3f",
                 it->rec.upper, 100 * it->test_acc, 100 * it->test_acc_start, it->f1);
    else if (isfinite(it->test_acc))
        snprintf(status, sizeof status, "F %.4f  test acc %.2f%%  F1 %.3f", it->rec.upper,
                 100 * it->test_acc, it->f1);
    else
        snprintf(status, sizeof status, "F %.4f  |dF/dx| %.3g", it->rec.upper, it->rec.hypergrad_norm);
    cli_progress_update(&ui->prog, it->rec.iter + 1, status);
    if (ui->logging) {
        double row[9] = {(double)it->rec.iter, it->rec.upper, it->rec.lower, it->rec.hypergrad_norm,
                         it->rec.seconds, (double)it->rec.peak_bytes, it->test_acc, it->f1,
                         it->test_acc_start};
        cli_log_row(&ui->log, row);
    }
    return 0;
}

static void pct(FILE *f, const char *name, double v) {
    if (isfinite(v))
        fprintf(f, "  %-34s %6.2f %%\n", name, 100 * v);
    else
        fprintf(f, "  %-34s %8s\n", name, "-");
}

int cli_hyperclean_run(const cli_cmd *cmd, int argc, char **argv) {
    blo_hyperclean_config c = blo_hyperclean_default();
    cli_solver_args sa;
    cli_solver_args_from(&sa, &c.solver);
    long long n_train = c.n_train, n_val = c.n_val, n_test = c.n_test, hidden = 300,
              eval_every = c.eval_every, bsteps = c.baseline_steps, seed = 0, threads = 0;
    double corrupt = c.corrupt, blr = c.baseline_lr;
    const char *data = c.data_dir, *model = "linear", *dtype = "f32", *log = NULL, *plot = NULL;
    int json = 0, quiet = 0, no_baselines = 0;
    cli_opt opts[24 + CLI_SOLVER_NOPTS] = {
        {"--data", NULL, CLI_STRING, &data, 0, 0, NULL, "DIR",
         "MNIST-layout folder (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz])"},
        {"--n-train", NULL, CLI_INT, &n_train, 1, 1e9, NULL, "N", "training examples (weighted)"},
        {"--n-val", NULL, CLI_INT, &n_val, 1, 1e9, NULL, "N", "clean validation examples (F)"},
        {"--n-test", NULL, CLI_INT, &n_test, 1, 1e9, NULL, "N", "test examples (accuracy)"},
        {"--corrupt", NULL, CLI_DOUBLE, &corrupt, 0, 1, NULL, "P",
         "fraction of training labels replaced by a uniform random class"},
        {"--model", NULL, CLI_CHOICE, &model, 0, 0, "linear|mlp", "M",
         "lower-level model: softmax(X W + b), or Linear(d, H) -> Linear(H, C)"},
        {"--hidden", NULL, CLI_INT, &hidden, 1, 1e6, NULL, "H", "hidden width of --model mlp"},
        {"--eval-every", NULL, CLI_INT, &eval_every, 0, 1e12, NULL, "N",
         "test accuracy and cleaner F1 every N iterations (0: at the end)"},
        {"--no-baselines", NULL, CLI_FLAG, &no_baselines, 0, 0, NULL, NULL,
         "skip the three reference classifiers"},
        {"--baseline-steps", NULL, CLI_INT, &bsteps, 1, 1e9, NULL, "N",
         "full-batch Adam steps of each baseline"},
        {"--baseline-lr", NULL, CLI_DOUBLE, &blr, 1e-12, 1e6, NULL, "LR", "baselines' Adam step"},
        {"--seed", NULL, CLI_INT, &seed, 0, 9e18, NULL, "S", "split, corruption, initial model"},
        CLI_RUN_OPTS(threads, dtype, json, log, plot, quiet),
    };
    int n = cli_solver_opts(opts, 18, &sa);
    int rc;
    if (!cli_parse(cmd, argc, argv, opts, n, &rc)) return rc;
    if (!cli_solver_config(cmd->name, &sa, &c.solver)) return CLI_EXIT_USAGE;
    if (!cli_plot_has_log("hyperclean", plot, log)) return CLI_EXIT_USAGE;
    c.data_dir = data;
    c.n_train = n_train;
    c.n_val = n_val;
    c.n_test = n_test;
    c.corrupt = corrupt;
    c.hidden = strcmp(model, "mlp") ? 0 : hidden;
    c.dtype = strcmp(dtype, "f64") ? BLO_F32 : BLO_F64;
    c.eval_every = eval_every;
    c.baselines = !no_baselines;
    c.baseline_steps = bsteps;
    c.baseline_lr = blr;
    c.seed = (uint64_t)seed;
    c.solver.seed = (uint64_t)seed;
    c.resume = sa.resume;
    blo_set_num_threads((int)threads);

    hc_ui ui;
    memset(&ui, 0, sizeof ui);
    static const char *const cols[9] = {"iter",       "upper",    "lower", "hypergrad_norm",
                                        "seconds",    "peak_bytes", "test_acc", "f1",
                                        "test_acc_start"};
    if (log) {
        if (!cli_log_open(&ui.log, log, 9, cols, sa.resume != NULL)) return CLI_EXIT_USAGE;
        ui.logging = 1;
    }
    cli_progress_start(&ui.prog, "hyperclean", c.solver.outer_iters, quiet);
    c.on_iter = hc_on_iter;
    c.user = &ui;
    if (!quiet)
        fprintf(stderr, "hyperclean: %s, %s model, T = %d inner steps, %lld outer iterations, "
                        "%s start\n", c.solver.method, c.hidden ? "mlp" : "linear",
                c.solver.inner_steps, (long long)c.solver.outer_iters,
                blo_init_kind_name(c.solver.init));
    blo_hyperclean_result r;
    char err[1024] = "";
    blo_status st = blo_hyperclean_run(&c, &r, err, sizeof err);
    int done = cli_task_finish("hyperclean", st, err, &ui.prog, &ui.log, plot, log);
    if (done >= 0) return done;
    if (json) {
        printf("{\"task\":\"hyperclean\",\"method\":\"%s\",\"model\":\"%s\",\"init\":\"%s\","
               "\"inner_steps\":%d,\"iters\":%lld,\"test_acc\":",
               c.solver.method, c.hidden ? "mlp" : "linear", blo_init_kind_name(c.solver.init),
               c.solver.inner_steps, (long long)r.iters);
        cli_json_number(stdout, r.test_acc);
        const char *keys[] = {"test_acc_start", "precision", "recall", "f1", "baseline_noisy",
                              "baseline_val", "baseline_oracle", "upper", "lower", "seconds"};
        double vals[] = {r.test_acc_start, r.precision, r.recall, r.f1, r.base_noisy,
                         r.base_val, r.base_oracle, r.upper, r.lower, r.seconds};
        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
            printf(",\"%s\":", keys[i]);
            cli_json_number(stdout, vals[i]);
        }
        printf(",\"kept\":%lld,\"clean\":%lld,\"peak_bytes\":%zu}\n", (long long)r.kept,
               (long long)r.clean, r.peak_bytes);
        return CLI_EXIT_OK;
    }
    printf("data hyper-cleaning: %s, %lld iterations, %.1f s\n", c.solver.method,
           (long long)r.iters, r.seconds);
    pct(stdout, "test accuracy (model y_T)", r.test_acc);
    pct(stdout, "test accuracy (learned start y_0)", r.test_acc_start);
    printf("  %-34s %6.3f  (precision %.3f, recall %.3f; kept %lld, clean %lld)\n",
           "cleaner F1", r.f1, r.precision, r.recall, (long long)r.kept, (long long)r.clean);
    pct(stdout, "baseline: trained on the noisy set", r.base_noisy);
    pct(stdout, "baseline: validation set only", r.base_val);
    pct(stdout, "baseline: clean part + validation", r.base_oracle);
    if (plot) printf("  plot: %s\n", plot);
    return CLI_EXIT_OK;
}
