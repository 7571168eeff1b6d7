/* cmd_nas.c — `blo nas search`, `blo nas train` and `blo nas derive`: DARTS architecture
 * search, training a found (or random) genotype from scratch, and deriving a genotype from α
 * logs; thin layers over blo_nas_search_run, blo_nas_train_run and blo_nas_genotype_derive
 * (include/blo/nas.h): options, progress, log, plot, summary or JSON. */
#include "cli.h"
#include "runlog.h"
#include "solver_opts.h"

#include "blo/blo.h"
#include "blo/nas.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct nas_ui {
    cli_progress prog;
    cli_log log, alog;
    int logging, alogging;
} nas_ui;

/* The α log: one row (iter, cell, edge, op, weight) per cell kind, edge and op, with the
 * op's weight softmax(α_edge)_op, as `blo plot` reads it back (cli_plot_alpha). */
static const char *const ALPHA_LOG_COLS[5] = {"iter", "cell", "edge", "op", "weight"};

static int nas_on_alpha(int64_t iter, int edges, const double *an, const double *ar, void *user) {
    nas_ui *ui = user;
    if (!ui->alogging) return 0;
    for (int cell = 0; cell < 2; cell++)
        for (int e = 0; e < edges; e++) {
            const double *a = (cell ? ar : an) + e * BLO_NAS_NUM_OPS;
            double mx = a[0], z = 0;
            for (int o = 1; o < BLO_NAS_NUM_OPS; o++) mx = fmax(mx, a[o]);
            for (int o = 0; o < BLO_NAS_NUM_OPS; o++) z += exp(a[o] - mx);
            for (int o = 0; o < BLO_NAS_NUM_OPS; o++) {
                double row[5] = {(double)iter, cell, e, o, exp(a[o] - mx) / z};
                cli_log_row(&ui->alog, row);
            }
        }
    return 0;
}

static int nas_on_iter(const blo_task_iter *it, void *user) {
    nas_ui *ui = user;
    char status[128];
    if (isfinite(it->test_acc))
        snprintf(status, sizeof status, "loss %.4f  acc %.2f%%", it->rec.upper, 100 * it->test_acc);
    else
        snprintf(status, sizeof status, "loss %.4f", it->rec.upper);
    cli_progress_update(&ui->prog, it->rec.iter + 1, status);
    if (ui->logging) {
        double row[7] = {(double)it->rec.iter, it->rec.upper,
                         it->rec.lower,        it->rec.hypergrad_norm,
                         it->rec.seconds,      (double)it->rec.peak_bytes,
                         it->test_acc};
        cli_log_row(&ui->log, row);
    }
    return 0;
}

static const char *const LOG_COLS[7] = {"iter",    "upper",      "lower",   "hypergrad_norm",
                                        "seconds", "peak_bytes", "test_acc"};

/* Draws log into plot: a run log's curves, or an α log's panels (cli_plot_logs tells them
 * apart by their columns). */
static int finish_plot(const char *name, const char *plot, const char *log) {
    if (!plot) return CLI_EXIT_OK;
    char perr[512];
    char *logs[1] = {(char *)log};
    int prc = cli_plot_logs(plot, logs, 1, NULL, perr, sizeof perr);
    if (prc) fprintf(stderr, "blo %s: %s\n", name, perr);
    return prc;
}

static int exit_for(blo_status st) {
    return st == BLO_ERR_NUMERIC || st == BLO_ERR_NOMEM ? CLI_EXIT_FAILED : CLI_EXIT_USAGE;
}

/* --data and --data-format, shared by search and train. */
#define DATA_OPTS(data, format)                                                                  \
    {"--data", NULL, CLI_STRING, &(data), 0, 0, NULL, "DIR",                                     \
     "data folder: MNIST layout (train-*, t10k-*) or CIFAR-10 batches"},                         \
        {"--data-format", NULL, CLI_CHOICE, &(format), 0, 0, "mnist|cifar10", "F",               \
         "the files in --data: MNIST IDX (1 channel) or CIFAR-10 binary (3 x 32 x 32)"}

static blo_nas_data_format data_format(const char *name) {
    return strcmp(name, "cifar10") ? BLO_NAS_MNIST : BLO_NAS_CIFAR10;
}

static const cli_cmd SEARCH = {
    "nas search", "DARTS search",
    "DARTS (Liu, Simonyan & Yang, ICLR 2019) on a Fashion-MNIST subset, images average-pooled\n"
    "to --size. x = (alpha_normal, alpha_reduce), one row of 8 op weights per cell edge;\n"
    "y = the supernet's weights. Each mixed edge computes sum_o softmax(alpha)_o op_o(h).\n"
    "  f(x, y) = CE on a minibatch of the first half of the search examples   (lower)\n"
    "  F(x, y) = CE on a minibatch of the second half                        (upper)\n"
    "With --init warm and --inner T the loop alternates T weight steps and one alpha step:\n"
    "first_order = DARTS-1st, darts = DARTS-2nd, rhg = through the T unrolled steps, cg.\n"
    "--warmup N first trains the weights alone for N steps (alpha held at its start), so\n"
    "the parametric ops are not judged untrained (the bias towards pooling and skips).\n"
    "DARTS moves alpha by Adam 3e-4 over ~20 000 steps; a search of a few hundred needs a\n"
    "larger --outer-lr for alpha to move as far (RESULTS.md: 0.03 over 200 iterations,\n"
    "or 0.01 over 600 on --n-search 10000, the run whose cells beat the random mean).\n"
    "--alpha-log FILE records softmax(alpha) after every iteration (rows iter, cell, edge,\n"
    "op, weight); --plot FILE draws it: one panel per edge of each cell kind, one curve per\n"
    "op (`blo plot FILE` redraws it; `blo plot` of the --log draws the loss curves;\n"
    "`blo nas derive FILE...` derives a genotype from one or several such logs).\n"
    "cg: the supernet's lower-level Hessian H is indefinite, so plain cg stops; --damping D\n"
    "solves (H + D I) v = dF/dy instead (the implicit gradient of f + D/2 |y - y_T|^2, which\n"
    "is convex near y_T once D > -lambda_min(H)); dF/dx = dF/dx - d2f/dxdy v. As D grows it\n"
    "tends to darts' step with xi = 1/D.\n"
    "Prints the genotype (top-2 incoming edges per node by strongest non-zero op) and the\n"
    "supernet's accuracy; --genotype FILE saves it for `blo nas train --genotype FILE`.\n"
    "--select perturb reads the genotype off the final supernet instead (Wang et al., ICLR\n"
    "2021, without fine-tuning between decisions): each edge takes the non-zero op whose\n"
    "removal raises the loss on the F half most, each node the two edges whose removal does.\n"
    "--data-format cifar10 reads the CIFAR-10 binary batches in --data instead (data_batch_1.bin\n"
    "... data_batch_5.bin, test_batch.bin, each plain or .gz): 3-channel 32x32 images, so the\n"
    "stem takes 3 input channels and --size must divide 32.",
    NULL};

static const cli_cmd TRAIN = {
    "nas train", "train a genotype from scratch",
    "Builds the discrete network of a genotype (a file written by `blo nas search\n"
    "--genotype FILE`, or --random for a uniformly random architecture of the same space),\n"
    "trains it from scratch with SGD + momentum, weight decay and a cosine learning rate on\n"
    "--n-train examples of the training split, and reports its accuracy on --n-test examples\n"
    "of the test split (BN with running statistics). --data-format cifar10 trains on the\n"
    "CIFAR-10 binary batches (3-channel 32x32 images; --size must divide 32), as nas search.",
    NULL};

static int nas_search(int argc, char **argv) {
    blo_nas_search_config c = blo_nas_search_default();
    cli_solver_args sa;
    cli_solver_args_from(&sa, &c.solver);
    long long n_search = c.n_search, n_test = c.n_test, batch = c.batch, size = c.data.size,
              cells = c.cells, channels = c.channels, nodes = c.nodes, eval_every = c.eval_every,
              seed = 0, threads = 0, warmup = c.warmup;
    const char *data = c.data.data_dir, *dtype = "f32", *log = NULL, *plot = NULL, *geno = NULL,
               *alog = NULL, *select = "alpha";
    const char *format = "mnist";
    int json = 0, quiet = 0;
    cli_opt opts[22 + CLI_SOLVER_NOPTS] = {
        DATA_OPTS(data, format),
        {"--size", NULL, CLI_INT, &size, 1, 1e4, NULL, "S", "images average-pooled to S x S"},
        {"--n-search", NULL, CLI_INT, &n_search, 2, 1e9, NULL, "N",
         "training-split examples: first half f, second half F"},
        {"--n-test", NULL, CLI_INT, &n_test, 0, 1e9, NULL, "N", "test examples for the supernet"},
        {"--batch", NULL, CLI_INT, &batch, 1, 1e9, NULL, "B", "minibatch of each objective"},
        {"--cells", NULL, CLI_INT, &cells, 1, 100, NULL, "N", "cells (reductions at N/3, 2N/3)"},
        {"--channels", NULL, CLI_INT, &channels, 1, 4096, NULL, "C", "channels of the first cells"},
        {"--nodes", NULL, CLI_INT, &nodes, 1, BLO_NAS_MAX_NODES, NULL, "N",
         "intermediate nodes per cell"},
        {"--genotype", NULL, CLI_STRING, &geno, 0, 0, NULL, "FILE", "save the genotype here"},
        {"--eval-every", NULL, CLI_INT, &eval_every, 0, 1e12, NULL, "N",
         "supernet accuracy on the F half every N iterations (0: at the end)"},
        {"--seed", NULL, CLI_INT, &seed, 0, 9e18, NULL, "S",
         "data subset, weights, alpha, batches"},
        {"--warmup", NULL, CLI_INT, &warmup, 0, 1e12, NULL, "N",
         "weights-only steps on f before alpha moves"},
        {"--alpha-log", NULL, CLI_STRING, &alog, 0, 0, NULL, "FILE",
         "softmax(alpha) per iteration, edge and op (.csv or .jsonl)"},
        {"--select", NULL, CLI_CHOICE, &select, 0, 0, "alpha|perturb", "HOW",
         "the genotype from alpha's magnitudes (DARTS) or from the supernet's loss when an op "
         "or edge is taken out"},
        CLI_RUN_OPTS(threads, dtype, json, log, plot, quiet),
    };
    for (int i = 0; i < 21; i++)
        if (!strcmp(opts[i].name, "--plot"))
            opts[i].help = "softmax(alpha) per edge over the search (.svg, .png); needs --alpha-log";
    int n = cli_solver_opts(opts, 21, &sa);
    int rc;
    if (!cli_parse(&SEARCH, argc, argv, opts, n, &rc)) return rc;
    if (!cli_solver_config(SEARCH.name, &sa, &c.solver)) return CLI_EXIT_USAGE;
    if (plot && !alog) {
        fprintf(stderr, "blo nas search: --plot draws the alpha log; give --alpha-log FILE too\n");
        return CLI_EXIT_USAGE;
    }
    c.data.data_dir = data;
    c.data.format = data_format(format);
    c.data.size = size;
    c.data.seed = (uint64_t)seed;
    c.n_search = n_search;
    c.n_test = n_test;
    c.batch = batch;
    c.cells = (int)cells;
    c.channels = (int)channels;
    c.nodes = (int)nodes;
    c.eval_every = eval_every;
    c.select = strcmp(select, "perturb") ? BLO_NAS_SELECT_ALPHA : BLO_NAS_SELECT_PERTURB;
    c.dtype = strcmp(dtype, "f64") ? BLO_F32 : BLO_F64;
    c.seed = (uint64_t)seed;
    c.solver.seed = (uint64_t)seed;
    c.resume = sa.resume;
    c.warmup = warmup;
    blo_set_num_threads((int)threads);
    nas_ui ui;
    memset(&ui, 0, sizeof ui);
    if (log) {
        if (!cli_log_open(&ui.log, log, 7, LOG_COLS, sa.resume != NULL)) return CLI_EXIT_USAGE;
        ui.logging = 1;
    }
    if (alog) {
        if (!cli_log_open(&ui.alog, alog, 5, ALPHA_LOG_COLS, sa.resume != NULL)) {
            if (ui.logging) cli_log_close(&ui.log);
            return CLI_EXIT_USAGE;
        }
        ui.alogging = 1;
    }
    cli_progress_start(&ui.prog, "nas search", c.solver.outer_iters, quiet);
    c.on_iter = nas_on_iter;
    c.on_alpha = nas_on_alpha;
    c.user = &ui;
    if (!quiet)
        fprintf(stderr,
                "nas search: %s, %d cells x %d channels x %d nodes, %lldx%lld images, T = %d, "
                "%lld warm-up steps, %lld outer iterations, %s start\n",
                c.solver.method, c.cells, c.channels, c.nodes, size, size, c.solver.inner_steps,
                warmup, (long long)c.solver.outer_iters, blo_init_kind_name(c.solver.init));
    blo_nas_search_result r;
    char err[1024] = "";
    blo_status st = blo_nas_search_run(&c, &r, err, sizeof err);
    cli_progress_end(&ui.prog);
    if (ui.logging) cli_log_close(&ui.log);
    if (ui.alogging) cli_log_close(&ui.alog);
    if (st) {
        fprintf(stderr, "blo nas search: %s\n", strncmp(err, "nas: ", 5) ? err : err + 5);
        return exit_for(st);
    }
    blo_free(r.alpha_normal);
    blo_free(r.alpha_reduce);
    if (geno && (st = blo_nas_genotype_save(&r.genotype, geno, err, sizeof err))) {
        fprintf(stderr, "blo nas search: %s\n", err);
        return exit_for(st);
    }
    if ((rc = finish_plot(SEARCH.name, plot, alog))) return rc;
    char text[4096];
    blo_nas_genotype_format(&r.genotype, text, sizeof text);
    if (json) {
        printf("{\"task\":\"nas_search\",\"method\":\"%s\",\"init\":\"%s\",\"inner_steps\":%d,"
               "\"cells\":%d,\"channels\":%d,\"nodes\":%d,\"warmup\":%lld,\"iters\":%lld,"
               "\"params\":%lld,",
               c.solver.method, blo_init_kind_name(c.solver.init), c.solver.inner_steps, c.cells,
               c.channels, c.nodes, warmup, (long long)r.iters, (long long)r.params);
        printf("\"select\":\"%s\",", select);
        const char *keys[] = {"val_acc", "test_acc", "upper", "lower", "seconds", "select_seconds"};
        double vals[] = {r.val_acc, r.test_acc, r.upper, r.lower, r.seconds, r.select_seconds};
        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
            printf("\"%s\":", keys[i]);
            cli_json_number(stdout, vals[i]);
            printf(",");
        }
        printf("\"peak_bytes\":%zu,\"genotype_file\":", r.peak_bytes);
        if (geno)
            cli_json_string(stdout, geno);
        else
            printf("null");
        printf(",\"genotype\":");
        cli_json_string(stdout, text);
        printf("}\n");
        return CLI_EXIT_OK;
    }
    printf("DARTS search: %s, %lld iterations, %.1f s, %lld supernet weights\n", c.solver.method,
           (long long)r.iters, r.seconds, (long long)r.params);
    printf("  supernet accuracy: %.2f %% on the F half, %.2f %% on %lld test images\n",
           100 * r.val_acc, 100 * r.test_acc, (long long)c.n_test);
    fputs(text, stdout);
    if (geno) printf("  genotype saved to %s\n", geno);
    return CLI_EXIT_OK;
}

static int nas_train(int argc, char **argv) {
    blo_nas_train_config c = blo_nas_train_default();
    long long n_train = c.n_train, n_test = c.n_test, batch = c.batch, epochs = c.epochs,
              size = c.data.size, cells = c.cells, channels = c.channels, nodes = 4, seed = 0,
              threads = 0;
    double lr = c.lr, momentum = c.momentum, wd = c.weight_decay;
    const char *data = c.data.data_dir, *dtype = "f32", *log = NULL, *plot = NULL, *geno = NULL;
    const char *format = "mnist";
    int json = 0, quiet = 0, random = 0;
    cli_opt opts[] = {
        {"--genotype", NULL, CLI_STRING, &geno, 0, 0, NULL, "FILE",
         "the architecture (from nas search)"},
        {"--random", NULL, CLI_FLAG, &random, 0, 0, NULL, NULL,
         "a uniformly random genotype (drawn with --seed) instead"},
        {"--nodes", NULL, CLI_INT, &nodes, 1, BLO_NAS_MAX_NODES, NULL, "N",
         "nodes of a --random genotype"},
        DATA_OPTS(data, format),
        {"--size", NULL, CLI_INT, &size, 1, 1e4, NULL, "S", "images average-pooled to S x S"},
        {"--n-train", NULL, CLI_INT, &n_train, 1, 1e9, NULL, "N", "training examples"},
        {"--n-test", NULL, CLI_INT, &n_test, 1, 1e9, NULL, "N", "test examples"},
        {"--batch", NULL, CLI_INT, &batch, 1, 1e9, NULL, "B", "minibatch"},
        {"--epochs", NULL, CLI_INT, &epochs, 0, 1e9, NULL, "E",
         "passes over the training examples"},
        {"--lr", NULL, CLI_DOUBLE, &lr, 1e-12, 1e6, NULL, "LR", "initial SGD step (cosine to 0)"},
        {"--momentum", NULL, CLI_DOUBLE, &momentum, 0, 1, NULL, "MU", "SGD momentum"},
        {"--weight-decay", NULL, CLI_DOUBLE, &wd, 0, 1e6, NULL, "WD", "L2 weight decay"},
        {"--cells", NULL, CLI_INT, &cells, 1, 100, NULL, "N", "cells (reductions at N/3, 2N/3)"},
        {"--channels", NULL, CLI_INT, &channels, 1, 4096, NULL, "C", "channels of the first cells"},
        {"--seed", NULL, CLI_INT, &seed, 0, 9e18, NULL, "S", "data subset, weights, batches"},
        {"--threads", NULL, CLI_INT, &threads, 0, 1024, NULL, "N", "threads (0: all cores)"},
        {"--dtype", NULL, CLI_CHOICE, &dtype, 0, 0, "f32|f64", "T", "precision"},
        {"--json", NULL, CLI_FLAG, &json, 0, 0, NULL, NULL,
         "the summary as one JSON object on stdout"},
        {"--log", NULL, CLI_STRING, &log, 0, 0, NULL, "FILE", "per-epoch record: .csv or .jsonl"},
        {"--plot", NULL, CLI_STRING, &plot, 0, 0, NULL, "FILE", "curves (.svg, .png); needs --log"},
        {"-q", "--quiet", CLI_FLAG, &quiet, 0, 0, NULL, NULL, "no progress output"},
    };
    int rc;
    if (!cli_parse(&TRAIN, argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), &rc)) return rc;
    if (!geno == !random) {
        fprintf(stderr, "blo nas train: give exactly one of --genotype FILE and --random\n");
        return CLI_EXIT_USAGE;
    }
    if (!cli_plot_has_log("nas train", plot, log)) return CLI_EXIT_USAGE;
    char err[1024] = "";
    blo_status st;
    if (geno) {
        if ((st = blo_nas_genotype_load(geno, &c.genotype, err, sizeof err))) {
            fprintf(stderr, "blo nas train: %s\n", err);
            return CLI_EXIT_USAGE;
        }
    } else {
        blo_rng g;
        blo_rng_seed(&g, (uint64_t)seed ^ 0x4a4d0ULL);
        blo_nas_genotype_random((int)nodes, &g, &c.genotype);
    }
    c.data.data_dir = data;
    c.data.format = data_format(format);
    c.data.size = size;
    c.data.seed = (uint64_t)seed;
    c.n_train = n_train;
    c.n_test = n_test;
    c.batch = batch;
    c.epochs = epochs;
    c.lr = lr;
    c.momentum = momentum;
    c.weight_decay = wd;
    c.cells = (int)cells;
    c.channels = (int)channels;
    c.dtype = strcmp(dtype, "f64") ? BLO_F32 : BLO_F64;
    c.seed = (uint64_t)seed;
    blo_set_num_threads((int)threads);
    nas_ui ui;
    memset(&ui, 0, sizeof ui);
    if (log) {
        if (!cli_log_open(&ui.log, log, 7, LOG_COLS, 0)) return CLI_EXIT_USAGE;
        ui.logging = 1;
    }
    cli_progress_start(&ui.prog, "nas train", epochs, quiet);
    c.on_iter = nas_on_iter;
    c.user = &ui;
    blo_nas_train_result r;
    st = blo_nas_train_run(&c, &r, err, sizeof err);
    cli_progress_end(&ui.prog);
    if (ui.logging) cli_log_close(&ui.log);
    if (st) {
        fprintf(stderr, "blo nas train: %s\n", strncmp(err, "nas: ", 5) ? err : err + 5);
        return exit_for(st);
    }
    if ((rc = finish_plot(TRAIN.name, plot, log))) return rc;
    char text[4096];
    blo_nas_genotype_format(&c.genotype, text, sizeof text);
    if (json) {
        printf("{\"task\":\"nas_train\",\"genotype_source\":");
        cli_json_string(stdout, geno ? geno : "random");
        printf(",\"cells\":%d,\"channels\":%d,\"nodes\":%d,\"epochs\":%lld,\"steps\":%lld,"
               "\"params\":%lld,\"test_acc\":",
               c.cells, c.channels, c.genotype.nodes, epochs, (long long)r.steps,
               (long long)r.params);
        cli_json_number(stdout, r.test_acc);
        printf(",\"train_loss\":");
        cli_json_number(stdout, r.train_loss);
        printf(",\"seconds\":");
        cli_json_number(stdout, r.seconds);
        printf(",\"genotype\":");
        cli_json_string(stdout, text);
        printf("}\n");
        return CLI_EXIT_OK;
    }
    printf("trained from scratch: %lld epochs, %lld weights, %.1f s\n", epochs, (long long)r.params,
           r.seconds);
    printf("  test accuracy %.2f %% on %lld images (final train loss %.4f)\n", 100 * r.test_acc,
           n_test, r.train_loss);
    fputs(text, stdout);
    return CLI_EXIT_OK;
}

static const cli_cmd DERIVE = {
    "nas derive", "a genotype from alpha logs",
    "usage: blo nas derive [--iter N] [--genotype FILE] [--json] ALPHA_LOG [ALPHA_LOG ...]\n"
    "Derives a genotype from one or more alpha logs (`blo nas search --alpha-log FILE`): the\n"
    "op weights softmax(alpha) of every edge at iteration --iter (default: each log's last),\n"
    "averaged over the logs, then DARTS' rule (per node the two incoming edges with the\n"
    "strongest non-zero op). One log gives back its search's genotype; the logs of several\n"
    "search seeds give the cell they agree on (the mean of their op weights). Prints the\n"
    "genotype; --genotype FILE saves it for `blo nas train --genotype FILE`.",
    NULL};

/* The edges of a cell of the most nodes, n (n + 3) / 2. */
#define MAX_EDGES (BLO_NAS_MAX_NODES * (BLO_NAS_MAX_NODES + 3) / 2)

/* Adds the weights of iteration iter (< 0: the log's last) of the α log t, a cell of nodes
 * nodes, to sum [2, E, 8]; every (cell, edge, op) must appear exactly once there. */
static int derive_add(const cli_table *t, const int col[5], int nodes, long long iter, double *sum,
                      char *err, size_t errlen) {
    int64_t n = 2 * (int64_t)blo_nas_num_edges(nodes) * BLO_NAS_NUM_OPS;
    double it = (double)iter;
    if (iter < 0) {
        it = -1;
        for (int64_t r = 0; r < t->nrows; r++) it = fmax(it, t->v[r * t->ncols + col[0]]);
    }
    unsigned char seen[2 * MAX_EDGES * BLO_NAS_NUM_OPS] = {0};
    for (int64_t r = 0; r < t->nrows; r++) {
        const double *v = t->v + r * t->ncols;
        if (v[col[0]] != it) continue;
        int64_t k = ((int64_t)v[col[1]] * blo_nas_num_edges(nodes) + (int64_t)v[col[2]]) *
                        BLO_NAS_NUM_OPS + (int64_t)v[col[3]];
        double w = v[col[4]];
        if (!(w >= 0 && w <= 1) || seen[k]++) {
            snprintf(err, errlen, "%s: row %lld: %s", t->name, (long long)r + 1,
                     seen[k] > 1 ? "a second weight for the same cell, edge and op"
                                 : "an op weight outside [0, 1]");
            return CLI_EXIT_USAGE;
        }
        sum[k] += w;
    }
    int64_t found = 0;
    for (int64_t k = 0; k < n; k++) found += seen[k];
    if (!found) {
        snprintf(err, errlen, "%s: no rows of iteration %.0f", t->name, it);
        return CLI_EXIT_USAGE;
    }
    for (int64_t k = 0; k < n; k++)
        if (!seen[k]) {
            snprintf(err, errlen, "%s: iteration %.0f has no weight for cell %lld, edge %lld, op %s",
                     t->name, it, (long long)(k / BLO_NAS_NUM_OPS / blo_nas_num_edges(nodes)),
                     (long long)(k / BLO_NAS_NUM_OPS % blo_nas_num_edges(nodes)),
                     blo_nas_op_name((int)(k % BLO_NAS_NUM_OPS)));
            return CLI_EXIT_USAGE;
        }
    return CLI_EXIT_OK;
}

static int nas_derive(int argc, char **argv) {
    long long iter = -1;
    const char *geno = NULL;
    int json = 0;
    cli_opt opts[] = {
        {"--iter", NULL, CLI_INT, &iter, -1, 9e18, NULL, "N",
         "the iteration whose op weights are used (-1: each log's last)"},
        {"--genotype", NULL, CLI_STRING, &geno, 0, 0, NULL, "FILE", "save the genotype here"},
        {"--json", NULL, CLI_FLAG, &json, 0, 0, NULL, NULL,
         "the genotype as one JSON object on stdout"},
    };
    int rc, npos = 0;
    char **logs = blo_malloc(sizeof(char *) * (size_t)(argc > 0 ? argc : 1));
    if (!logs) {
        fprintf(stderr, "blo nas derive: out of memory\n");
        return CLI_EXIT_FAILED;
    }
    if (!cli_parse_args(&DERIVE, argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), &rc, logs,
                        &npos)) {
        blo_free(logs);
        return rc;
    }
    rc = CLI_EXIT_OK;
    char err[1024] = "";
    if (npos == 0) {
        snprintf(err, sizeof err, "give one or more alpha logs (blo nas search --alpha-log)");
        rc = CLI_EXIT_USAGE;
    }
    double sum[2 * MAX_EDGES * BLO_NAS_NUM_OPS] = {0};
    int nodes = 0;
    for (int i = 0; !rc && i < npos; i++) {
        cli_table t;
        int col[5], n = 0;
        if (!cli_table_read(logs[i], &t, err, sizeof err)) {
            rc = CLI_EXIT_USAGE;
            break;
        }
        rc = cli_alpha_shape(&t, col, &n, err, sizeof err);
        if (!rc && i > 0 && n != nodes) {
            snprintf(err, sizeof err, "%s: a cell of %d nodes, but %s has %d", logs[i], n, logs[0],
                     nodes);
            rc = CLI_EXIT_USAGE;
        }
        nodes = n;
        if (!rc) rc = derive_add(&t, col, nodes, iter, sum, err, sizeof err);
        cli_table_free(&t);
    }
    blo_nas_genotype g;
    char text[4096];
    if (!rc) {
        /* softmax(log p) = p for a probability vector p, so the mean weights serve as α. */
        int64_t n = 2 * (int64_t)blo_nas_num_edges(nodes) * BLO_NAS_NUM_OPS;
        for (int64_t k = 0; k < n; k++) sum[k] = log(fmax(sum[k] / npos, 1e-300));
        blo_nas_genotype_derive(nodes, sum, sum + n / 2, &g);
        blo_nas_genotype_format(&g, text, sizeof text);
        if (geno && blo_nas_genotype_save(&g, geno, err, sizeof err)) rc = CLI_EXIT_USAGE;
    }
    if (rc) {
        fprintf(stderr, "blo nas derive: %s\n", err);
    } else if (json) {
        printf("{\"task\":\"nas_derive\",\"logs\":%d,\"nodes\":%d,\"genotype_file\":", npos, nodes);
        if (geno) cli_json_string(stdout, geno);
        else printf("null");
        printf(",\"genotype\":");
        cli_json_string(stdout, text);
        printf("}\n");
    } else {
        fputs(text, stdout);
    }
    blo_free(logs);
    return rc;
}

int cli_nas_run(const cli_cmd *cmd, int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "search")) return nas_search(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "train")) return nas_train(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "derive")) return nas_derive(argc - 1, argv + 1);
    FILE *f = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? stdout : stderr;
    fprintf(f,
            "usage: blo nas search [options]   (blo nas search --help)\n"
            "       blo nas train --genotype FILE | --random [options]\n"
            "       blo nas derive ALPHA_LOG... [options]\n\n%s\n",
            cmd->help);
    return f == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}
