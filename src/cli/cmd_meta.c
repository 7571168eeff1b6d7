/* cmd_meta.c — `blo meta sinusoid`: meta-learning an initialisation (MAML family) on sinusoid
 * regression, and `blo meta fewshot`: few-shot classification over rotation classes (MAML,
 * meta feature learning, the pretrained baseline), from the command line: thin layers over
 * blo_meta_sinusoid_run and blo_fewshot_run (blo/meta.h, blo/fewshot.h): options, progress, log,
 * plot, the summary table or JSON. */
#include "cli.h"
#include "runlog.h"
#include "solver_opts.h"

#include "blo/blo.h"
#include "blo/fewshot.h"
#include "blo/meta.h"

#include <math.h>
#include <string.h>

typedef struct meta_ui {
    cli_progress prog;
    cli_log log;
    int logging;
    const char *upper_name; /* what F is, for the progress line: "query MSE", "query CE" */
} meta_ui;

static int meta_on_iter(const blo_task_iter *it, void *user) {
    meta_ui *ui = user;
    char status[128];
    snprintf(status, sizeof status, "%s %.4f  |dF/dθ| %.3g", ui->upper_name, it->rec.upper,
             it->rec.hypergrad_norm);
    cli_progress_update(&ui->prog, it->rec.iter + 1, status);
    if (ui->logging) {
        double row[6] = {(double)it->rec.iter, it->rec.upper, it->rec.lower,
                         it->rec.hypergrad_norm, it->rec.seconds, (double)it->rec.peak_bytes};
        cli_log_row(&ui->log, row);
    }
    return 0;
}

/* Opens the --log (appending when resuming) and starts the progress line of `total`
 * iterations; false (a message printed) when the log cannot be opened. */
static bool meta_ui_start(meta_ui *ui, const char *cmd, const char *upper_name, const char *log,
                          bool resume, int64_t total, int quiet) {
    memset(ui, 0, sizeof *ui);
    ui->upper_name = upper_name;
    static const char *const cols[6] = {"iter",    "upper",     "lower", "hypergrad_norm",
                                        "seconds", "peak_bytes"};
    if (log) {
        if (!cli_log_open(&ui->log, log, 6, cols, resume)) return false;
        ui->logging = 1;
    }
    cli_progress_start(&ui->prog, cmd, total, quiet);
    return true;
}

static void json_steps(const char *key, const double *v) {
    printf(",\"%s\":{", key);
    for (int e = 0; e < BLO_META_EVAL_STEPS; e++) {
        printf("%s\"%d\":", e ? "," : "", blo_meta_eval_steps[e]);
        cli_json_number(stdout, v[e]);
    }
    printf("}");
}

static void table_row(const char *name, const double *mse, const double *ci) {
    printf("  %-22s", name);
    for (int e = 0; e < BLO_META_EVAL_STEPS; e++) {
        if (isfinite(mse[e]))
            printf("  %7.3f ± %-5.3f", mse[e], ci[e]);
        else
            printf("  %15s", "-");
    }
    printf("\n");
}

static int run_sinusoid(const cli_cmd *cmd, int argc, char **argv) {
    blo_meta_sinusoid_config c = blo_meta_sinusoid_default();
    c.solver.outer_iters = 2000; /* minutes on 2 cores; the protocol's 70000 with --outer */
    cli_solver_args sa;
    cli_solver_args_from(&sa, &c.solver);
    long long shots = c.shots, batch = c.meta_batch, width = c.width, eval_tasks = c.eval_tasks,
              eval_query = c.eval_query, seed = 0, threads = 1;
    double prox = 0;
    const char *dtype = "f32", *log = NULL, *plot = NULL;
    int json = 0, quiet = 0, no_baseline = 0, meta_sgd = 0;
    cli_opt opts[16 + CLI_SOLVER_NOPTS] = {
        {"--shots", NULL, CLI_INT, &shots, 1, 1e6, NULL, "K", "support (and query) points per task"},
        {"--meta-batch", NULL, CLI_INT, &batch, 1, 1e6, NULL, "B", "tasks per outer iteration"},
        {"--width", NULL, CLI_INT, &width, 1, 1e5, NULL, "H", "hidden width of the MLP 1-H-H-1"},
        {"--prox", NULL, CLI_DOUBLE, &prox, 0, 1e12, NULL, "L",
         "iMAML: add L/2 |y - theta|^2 to the lower level (use with --method cg)"},
        {"--meta-sgd", NULL, CLI_FLAG, &meta_sgd, 0, 0, NULL, NULL,
         "Meta-SGD: learn one inner step size per parameter (start: --inner-lr)"},
        {"--eval-tasks", NULL, CLI_INT, &eval_tasks, 1, 1e9, NULL, "N", "held-out tasks"},
        {"--eval-query", NULL, CLI_INT, &eval_query, 1, 1e6, NULL, "N",
         "query points per held-out task"},
        {"--no-baseline", NULL, CLI_FLAG, &no_baseline, 0, 0, NULL, NULL,
         "skip the pretrained baseline (one network fitted to all tasks, then fine-tuned)"},
        {"--seed", NULL, CLI_INT, &seed, 0, 9e18, NULL, "S", "initial weights, training and held-out tasks"},
        CLI_RUN_OPTS(threads, dtype, json, log, plot, quiet),
    };
    int n = cli_solver_opts(opts, 15, &sa);
    int rc;
    if (!cli_parse(cmd, argc, argv, opts, n, &rc)) return rc;
    if (!cli_solver_config("meta sinusoid", &sa, &c.solver)) return CLI_EXIT_USAGE;
    if (!cli_plot_has_log("meta sinusoid", plot, log)) return CLI_EXIT_USAGE;
    if (c.solver.init != BLO_INIT_FIXED && c.solver.init != BLO_INIT_FROM_X) {
        fprintf(stderr, "blo meta sinusoid: --init: the start is theta itself (from_x); '%s' "
                        "does not apply\n", blo_init_kind_name(c.solver.init));
        return CLI_EXIT_USAGE;
    }
    c.solver.init = BLO_INIT_FROM_X;
    c.shots = shots;
    c.meta_batch = batch;
    c.width = width;
    c.prox = prox;
    c.meta_sgd = meta_sgd;
    c.eval_tasks = eval_tasks;
    c.eval_query = eval_query;
    c.baseline = !no_baseline;
    c.dtype = strcmp(dtype, "f64") ? BLO_F32 : BLO_F64;
    c.seed = (uint64_t)seed;
    c.solver.seed = (uint64_t)seed;
    c.resume = sa.resume;
    blo_set_num_threads((int)threads);

    meta_ui ui;
    if (!meta_ui_start(&ui, "meta sinusoid", "query MSE", log, sa.resume != NULL,
                       c.solver.outer_iters, quiet))
        return CLI_EXIT_USAGE;
    c.on_iter = meta_on_iter;
    c.user = &ui;
    if (!quiet)
        fprintf(stderr, "meta sinusoid: %s%s, K = %lld shots, meta-batch %lld, T = %d inner "
                        "steps (lr %g), %lld outer iterations\n", c.solver.method,
                meta_sgd ? " + Meta-SGD" : "", shots, batch, c.solver.inner_steps,
                c.solver.inner.lr, (long long)c.solver.outer_iters);
    blo_meta_sinusoid_result r;
    char err[1024] = "";
    blo_status st = blo_meta_sinusoid_run(&c, &r, err, sizeof err);
    int done = cli_task_finish("meta sinusoid", st, err, &ui.prog, &ui.log, plot, log);
    if (done >= 0) return done;
    if (json) {
        printf("{\"task\":\"meta_sinusoid\",\"method\":");
        cli_json_string(stdout, c.solver.method);
        printf(",\"meta_sgd\":%s,\"shots\":%lld,\"meta_batch\":%lld,\"inner_steps\":%d,"
               "\"inner_lr\":",
               meta_sgd ? "true" : "false", shots, batch, c.solver.inner_steps);
        cli_json_number(stdout, c.solver.inner.lr);
        printf(",\"prox\":");
        cli_json_number(stdout, prox);
        printf(",\"iters\":%lld,\"eval_tasks\":%lld", (long long)r.iters, eval_tasks);
        json_steps("mse", r.mse);
        json_steps("mse_ci95", r.ci);
        json_steps("baseline_mse", r.base_mse);
        json_steps("baseline_mse_ci95", r.base_ci);
        printf(",\"upper\":");
        cli_json_number(stdout, r.upper);
        printf(",\"seconds\":");
        cli_json_number(stdout, r.seconds);
        printf(",\"peak_bytes\":%zu}\n", r.peak_bytes);
        return CLI_EXIT_OK;
    }
    printf("meta sinusoid: %s%s, %lld-shot, %lld iterations, %.1f s; MSE on %lld held-out tasks "
           "(mean ± 95%% CI)\n", c.solver.method, meta_sgd ? " + Meta-SGD" : "", shots,
           (long long)r.iters, r.seconds, eval_tasks);
    printf("  %-22s", "test-time SGD steps");
    for (int e = 0; e < BLO_META_EVAL_STEPS; e++) printf("  %15d", blo_meta_eval_steps[e]);
    printf("\n");
    table_row("meta-learned init", r.mse, r.ci);
    table_row("pretrained baseline", r.base_mse, r.base_ci);
    if (plot) printf("  plot: %s\n", plot);
    return CLI_EXIT_OK;
}

static int run_fewshot(const cli_cmd *cmd, int argc, char **argv) {
    blo_fewshot_config c = blo_fewshot_default();
    cli_solver_args sa;
    cli_solver_args_from(&sa, &c.solver);
    long long train_classes = c.train_classes, ways = c.ways, shots = c.shots,
              queries = c.queries, batch = c.meta_batch, hidden = c.hidden, layers = c.layers,
              episodes = c.eval_episodes, eval_steps = -1, pre_steps = c.pretrain_steps,
              pre_batch = c.pretrain_batch, seed = 0, threads = 1, image_size = c.image_side,
              rotations = c.rotations;
    double head_l2 = c.head_l2, pre_lr = c.pretrain_lr;
    const char *dtype = "f32", *log = NULL, *plot = NULL, *split = "train",
               *learner = "maml", *class_split = "base";
    int json = 0, quiet = 0, normalize = 0;
    cli_opt opts[32 + CLI_SOLVER_NOPTS] = {
        {"--learner", NULL, CLI_CHOICE, &learner, 0, 0, "maml|hyperrep|pretrain", "L",
         "maml: learn the start of the whole network; hyperrep: learn the body, a head per "
         "episode; pretrain: the baseline"},
        {"--data", NULL, CLI_STRING, &c.data_dir, 0, 0, NULL, "DIR",
         "MNIST-layout folder"},
        {"--split", NULL, CLI_CHOICE, &split, 0, 0, "train|t10k", "S", "which file pair"},
        {"--images", NULL, CLI_STRING, &c.images_dir, 0, 0, NULL, "DIR",
         "a class-per-folder PNG tree (DIR/<class>/*.png) instead of --data"},
        {"--image-size", NULL, CLI_INT, &image_size, 0, 4096, NULL, "S",
         "--images resized to S x S (0: as they are, all square and of one size)"},
        {"--rotations", NULL, CLI_INT, &rotations, 1, 4, NULL, "R",
         "classes per base class: 4 (at 0/90/180/270 degrees) or 1"},
        {"--class-split", NULL, CLI_CHOICE, &class_split, 0, 0, "base|class", "S",
         "base: all rotations of a base class on one side (no image on both); class: "
         "rotation classes split one by one"},
        {"--train-classes", NULL, CLI_INT, &train_classes, 0, 1e6, NULL, "N",
         "meta-train rotation classes, the rest meta-test (base split: a multiple of R)"},
        {"--ways", NULL, CLI_INT, &ways, 2, 256, NULL, "N", "classes per episode"},
        {"--shots", NULL, CLI_INT, &shots, 1, 1e6, NULL, "K", "support images per class"},
        {"--queries", NULL, CLI_INT, &queries, 1, 1e6, NULL, "Q", "query images per class"},
        {"--meta-batch", NULL, CLI_INT, &batch, 1, 1e6, NULL, "B", "episodes per outer iteration"},
        {"--hidden", NULL, CLI_INT, &hidden, 0, 1e5, NULL, "H",
         "width of the body's layers (0: a linear network, maml only)"},
        {"--layers", NULL, CLI_INT, &layers, 1, BLO_FEWSHOT_MAX_LAYERS, NULL, "L",
         "hidden layers of the body (ReLU after each)"},
        {"--head-l2", NULL, CLI_DOUBLE, &head_l2, 0, 1e12, NULL, "LAMBDA",
         "hyperrep / pretrain: lambda/2 |head|^2 in every head fit (> 0)"},
        {"--normalize", NULL, CLI_FLAG, &normalize, 0, 0, NULL, NULL,
         "scale the body's features to unit length before the head (keeps fixed head steps "
         "stable)"},
        {"--eval-episodes", NULL, CLI_INT, &episodes, 1, 1e9, NULL, "N", "meta-test episodes"},
        {"--eval-steps", NULL, CLI_INT, &eval_steps, -1, 1e6, NULL, "T",
         "SGD steps (--inner-lr) per meta-test episode (-1: --inner)"},
        {"--pretrain-steps", NULL, CLI_INT, &pre_steps, 0, 1e9, NULL, "N",
         "pretrain: Adam steps over all meta-train classes"},
        {"--pretrain-batch", NULL, CLI_INT, &pre_batch, 1, 1e6, NULL, "N", "pretrain: minibatch"},
        {"--pretrain-lr", NULL, CLI_DOUBLE, &pre_lr, 0, 1e6, NULL, "LR", "pretrain: Adam lr"},
        {"--seed", NULL, CLI_INT, &seed, 0, 9e18, NULL, "S", "class split, weights, episodes"},
        CLI_RUN_OPTS(threads, dtype, json, log, plot, quiet),
    };
    int n = cli_solver_opts(opts, 28, &sa);
    int rc;
    if (!cli_parse(cmd, argc, argv, opts, n, &rc)) return rc;
    if (!cli_solver_config("meta fewshot", &sa, &c.solver)) return CLI_EXIT_USAGE;
    if (!cli_plot_has_log("meta fewshot", plot, log)) return CLI_EXIT_USAGE;
    c.learner = (blo_fewshot_learner)blo_fewshot_learner_parse(learner);
    c.class_split = (blo_fewshot_split)blo_fewshot_split_parse(class_split);
    if (c.learner == BLO_FEWSHOT_PRETRAIN && sa.resume) {
        fprintf(stderr, "blo meta fewshot: --resume: the pretrained baseline is no bilevel run "
                        "and does not resume\n");
        return CLI_EXIT_USAGE;
    }
    if (c.solver.init != BLO_INIT_FIXED && c.solver.init != BLO_INIT_FROM_X) {
        fprintf(stderr, "blo meta fewshot: --init: the start is theta itself (maml) or a zero "
                        "head (hyperrep); '%s' does not apply\n",
                blo_init_kind_name(c.solver.init));
        return CLI_EXIT_USAGE;
    }
    if (c.learner != BLO_FEWSHOT_MAML && (hidden < 1 || !(head_l2 > 0))) {
        fprintf(stderr, "blo meta fewshot: --learner %s needs --hidden >= 1 and --head-l2 > 0\n",
                learner);
        return CLI_EXIT_USAGE;
    }
    if (rotations != 1 && rotations != 4) {
        fprintf(stderr, "blo meta fewshot: --rotations %lld: 1 or 4\n", rotations);
        return CLI_EXIT_USAGE;
    }
    if (c.class_split == BLO_FEWSHOT_SPLIT_BASE && train_classes % rotations) {
        fprintf(stderr, "blo meta fewshot: --train-classes %lld: the split by base class keeps "
                        "the %lld rotations of a base class together, so it takes a multiple of "
                        "%lld (or --class-split class)\n", train_classes, rotations, rotations);
        return CLI_EXIT_USAGE;
    }
    if (c.learner == BLO_FEWSHOT_PRETRAIN && !(pre_lr > 0)) {
        fprintf(stderr, "blo meta fewshot: --pretrain-lr must be > 0\n");
        return CLI_EXIT_USAGE;
    }
    c.split = split;
    c.image_side = image_size;
    c.rotations = (int)rotations;
    c.train_classes = train_classes;
    c.ways = ways;
    c.shots = shots;
    c.queries = queries;
    c.meta_batch = batch;
    c.hidden = hidden;
    c.layers = (int)layers;
    c.head_l2 = head_l2;
    c.normalize = normalize;
    c.eval_episodes = episodes;
    c.eval_steps = (int)eval_steps;
    c.pretrain_steps = pre_steps;
    c.pretrain_batch = pre_batch;
    c.pretrain_lr = pre_lr;
    c.dtype = strcmp(dtype, "f64") ? BLO_F32 : BLO_F64;
    c.seed = (uint64_t)seed;
    c.solver.seed = (uint64_t)seed;
    c.resume = sa.resume;
    blo_set_num_threads((int)threads);
    int pre = c.learner == BLO_FEWSHOT_PRETRAIN;

    meta_ui ui;
    if (!meta_ui_start(&ui, "meta fewshot", "query CE", log,
                       sa.resume != NULL, pre ? c.pretrain_steps : c.solver.outer_iters, quiet))
        return CLI_EXIT_USAGE;
    c.on_iter = meta_on_iter;
    c.user = &ui;
    if (!quiet) {
        if (pre)
            fprintf(stderr, "meta fewshot: pretrain, %lld Adam steps (lr %g) on minibatches of "
                            "%lld over the meta-train classes; %lld-way %lld-shot evaluation\n",
                    pre_steps, pre_lr, pre_batch, ways, shots);
        else
            fprintf(stderr, "meta fewshot: %s %s, %lld-way %lld-shot (%lld queries), meta-batch "
                            "%lld, T = %d inner steps (lr %g), %lld outer iterations\n", learner,
                    c.solver.method, ways, shots, queries, batch, c.solver.inner_steps,
                    c.solver.inner.lr, (long long)c.solver.outer_iters);
    }
    blo_fewshot_result r;
    char err[1024] = "";
    blo_status st = blo_fewshot_run(&c, &r, err, sizeof err);
    int done = cli_task_finish("meta fewshot", st, err, &ui.prog, &ui.log, plot, log);
    if (done >= 0) return done;
    int steps = c.eval_steps < 0 ? c.solver.inner_steps : c.eval_steps;
    if (json) {
        printf("{\"task\":\"meta_fewshot\",\"learner\":");
        cli_json_string(stdout, learner);
        printf(",\"method\":");
        cli_json_string(stdout, pre ? "adam" : c.solver.method);
        printf(",\"class_split\":");
        cli_json_string(stdout, class_split);
        printf(",\"ways\":%lld,\"shots\":%lld,\"queries\":%lld,\"meta_batch\":%lld,"
               "\"hidden\":%lld,\"layers\":%lld,\"head_l2\":",
               ways, shots, queries, batch, hidden, layers);
        cli_json_number(stdout, c.learner == BLO_FEWSHOT_MAML ? NAN : head_l2);
        printf(",\"normalize\":%s,\"inner_steps\":%d,\"inner_lr\":", normalize ? "true" : "false",
               c.solver.inner_steps);
        cli_json_number(stdout, c.solver.inner.lr);
        printf(",\"rotations\":%lld,\"classes\":%lld,\"train_classes\":%lld,"
               "\"test_classes\":%lld,\"side\":%lld", rotations, (long long)r.n_classes,
               (long long)r.n_train, (long long)r.n_test, (long long)r.side);
        printf(",\"iters\":%lld,\"eval_episodes\":%lld,\"eval_steps\":%d,\"acc\":",
               (long long)r.iters, episodes, steps);
        cli_json_number(stdout, r.acc);
        printf(",\"acc_ci95\":");
        cli_json_number(stdout, r.ci);
        printf(",\"acc_before\":");
        cli_json_number(stdout, r.acc0);
        printf(",\"upper\":");
        cli_json_number(stdout, r.upper);
        printf(",\"seconds\":");
        cli_json_number(stdout, r.seconds);
        printf(",\"peak_bytes\":%zu}\n", r.peak_bytes);
        return CLI_EXIT_OK;
    }
    printf("meta fewshot: %s (%s), %lld-way %lld-shot on %lld rotation classes of %lldx%lld "
           "images (split by %s: %lld meta-train / %lld meta-test), %lld %s, %.1f s\n", learner,
           pre ? "adam" : c.solver.method, ways, shots, (long long)r.n_classes, (long long)r.side,
           (long long)r.side, class_split, (long long)r.n_train, (long long)r.n_test,
           (long long)r.iters, pre ? "steps" : "iterations", r.seconds);
    if (c.learner == BLO_FEWSHOT_MAML)
        printf("  meta-test query accuracy over %lld episodes: %.3f ± %.3f after %d SGD steps "
               "(%.3f ± %.3f before; chance %.3f)\n", episodes, r.acc, r.ci, steps, r.acc0,
               r.ci0, 1.0 / (double)ways);
    else
        printf("  meta-test query accuracy over %lld episodes: %.3f ± %.3f with a head fitted by "
               "%d SGD steps (chance %.3f)\n", episodes, r.acc, r.ci, steps, 1.0 / (double)ways);
    if (plot) printf("  plot: %s\n", plot);
    return CLI_EXIT_OK;
}

int cli_meta_run(const cli_cmd *cmd, int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "sinusoid")) return run_sinusoid(cmd, argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "fewshot")) return run_fewshot(cmd, argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: blo meta sinusoid|fewshot [options]   (blo meta sinusoid --help lists "
               "them)\n\n%s\n",
               cmd->help);
        return CLI_EXIT_OK;
    }
    fprintf(stderr, "blo meta: %s '%s'; the subcommands are 'sinusoid' and 'fewshot' (blo meta --help)\n",
            argc >= 2 ? "unknown subcommand" : "missing subcommand", argc >= 2 ? argv[1] : "");
    return CLI_EXIT_USAGE;
}
