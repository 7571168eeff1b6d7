/* cmd_nas.c — `blo nas search`, `blo nas train` and `blo nas derive`: DARTS architecture
 * search, training a found (or random) genotype from scratch, and deriving a genotype from α
 * logs; thin layers over blo_nas_search_run, blo_nas_train_run and blo_nas_genotype_derive
 * (include/blo/nas.h); search and train run in the task frame. */
#include "task_frame.h"

#include "blo/blo.h"
#include "blo/nas.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The α log: one row (iter, cell, edge, op, weight) per cell kind, edge and op, with the
 * op's weight softmax(α_edge)_op, as `blo plot` reads it back (cli_plot_alpha). */
static const char *const ALPHA_LOG_COLS[5] = {"iter", "cell", "edge", "op", "weight"};

static int nas_on_iter(const blo_task_iter *it, void *user) {
    char status[128];
    if (isfinite(it->test_acc))
        snprintf(status, sizeof status, "loss %.4f  acc %.2f%%", it->rec.upper, 100 * it->test_acc);
    else
        snprintf(status, sizeof status, "loss %.4f", it->rec.upper);
    double row[7] = {(double)it->rec.iter, it->rec.upper,   it->rec.lower,
                     it->rec.hypergrad_norm, it->rec.seconds, (double)it->rec.peak_bytes,
                     it->test_acc};
    cli_task_iter(user, &it->rec, status, row);
    return 0;
}

static const char *const LOG_COLS[7] = {"iter",    "upper",      "lower",   "hypergrad_norm",
                                        "seconds", "peak_bytes", "test_acc"};

/* --data and --data-format, shared by search and train. */
#define DATA_OPTS(data, format)                                                                  \
    {"--data", NULL, CLI_STRING, &(data), 0, 0, NULL, "DIR",                                     \
     "data folder: MNIST layout (train-*, t10k-*) or CIFAR-10 batches" CLI_DATA_HELP},           \
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

/* `nas search`: the command's state is its α log, the configuration, the values with no field
 * there, the result. */
typedef struct search_cmd {
    cli_log alog;
    blo_nas_search_config c;
    long long n_search, n_test, batch, size, cells, channels, nodes, eval_every, seed, warmup;
    const char *format, *geno, *alog_path, *select;
    blo_nas_search_result r;
} search_cmd;

static int nas_on_alpha(int64_t iter, int edges, const double *an, const double *ar, void *user) {
    search_cmd *m = ((cli_task *)user)->user;
    cli_log *alog = &m->alog;
    if (!alog->f) return 0;
    for (int cell = 0; cell < 2; cell++)
        for (int e = 0; e < edges; e++) {
            const double *a = (cell ? ar : an) + e * BLO_NAS_NUM_OPS;
            double mx = a[0], z = 0;
            for (int o = 1; o < BLO_NAS_NUM_OPS; o++) mx = fmax(mx, a[o]);
            for (int o = 0; o < BLO_NAS_NUM_OPS; o++) z += exp(a[o] - mx);
            for (int o = 0; o < BLO_NAS_NUM_OPS; o++) {
                double row[5] = {(double)iter, cell, e, o, exp(a[o] - mx) / z};
                cli_log_row(alog, row);
            }
        }
    return 0;
}

static bool search_configure(cli_task *t) {
    search_cmd *m = t->user;
    blo_nas_search_config *c = &m->c;
    c->images.format = data_format(m->format);
    c->images.size = m->size;
    c->images.seed = (uint64_t)m->seed;
    c->n_search = m->n_search;
    c->n_test = m->n_test;
    c->batch = m->batch;
    c->cells = (int)m->cells;
    c->channels = (int)m->channels;
    c->nodes = (int)m->nodes;
    c->eval_every = m->eval_every;
    c->select = strcmp(m->select, "perturb") ? BLO_NAS_SELECT_ALPHA : BLO_NAS_SELECT_PERTURB;
    c->warmup = m->warmup;
    c->on_alpha = nas_on_alpha;
    CLI_TASK_CONFIGURE(c, t, m->seed, nas_on_iter);
    return true;
}

static blo_status search_run(cli_task *t, char *err, size_t errlen) {
    search_cmd *m = t->user;
    const blo_nas_search_config *c = &m->c;
    if (m->alog_path &&
        !cli_log_open(&m->alog, m->alog_path, 5, ALPHA_LOG_COLS, t->sa.resume != NULL)) {
        snprintf(err, errlen, "%s: cannot write the alpha log", m->alog_path);
        return BLO_ERR_IO;
    }
    if (!t->quiet)
        fprintf(stderr,
                "nas search: %s, %d cells x %d channels x %d nodes, %lldx%lld images, T = %d, "
                "%lld warm-up steps, %lld outer iterations, %s start\n",
                c->solver.method, c->cells, c->channels, c->nodes, m->size, m->size,
                c->solver.inner_steps, m->warmup, (long long)c->solver.outer_iters,
                blo_init_kind_name(c->solver.init));
    blo_status st = blo_nas_search_run(c, &m->r, err, errlen);
    cli_log_close(&m->alog);
    if (st) return st;
    blo_free(m->r.alpha_normal);
    blo_free(m->r.alpha_reduce);
    return m->geno ? blo_nas_genotype_save(&m->r.genotype, m->geno, err, errlen) : BLO_OK;
}

static int search_summary(cli_task *t) {
    const search_cmd *m = t->user;
    const blo_nas_search_config *c = &m->c;
    const blo_nas_search_result *r = &m->r;
    char text[4096];
    blo_nas_genotype_format(&r->genotype, text, sizeof text);
    if (t->json) {
        printf("{\"task\":\"nas_search\",\"method\":\"%s\",\"init\":\"%s\",\"inner_steps\":%d,"
               "\"cells\":%d,\"channels\":%d,\"nodes\":%d,\"warmup\":%lld,\"iters\":%lld,"
               "\"params\":%lld,",
               c->solver.method, blo_init_kind_name(c->solver.init), c->solver.inner_steps,
               c->cells, c->channels, c->nodes, m->warmup, (long long)r->iters,
               (long long)r->params);
        printf("\"select\":\"%s\",", m->select);
        const char *keys[] = {"val_acc", "test_acc", "upper", "lower", "seconds", "select_seconds"};
        double vals[] = {r->val_acc, r->test_acc, r->upper, r->lower, r->seconds, r->select_seconds};
        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
            printf("\"%s\":", keys[i]);
            cli_json_number(stdout, vals[i]);
            printf(",");
        }
        printf("\"peak_bytes\":%zu,\"genotype_file\":", r->peak_bytes);
        if (m->geno)
            cli_json_string(stdout, m->geno);
        else
            printf("null");
        printf(",\"genotype\":");
        cli_json_string(stdout, text);
        printf("}\n");
        return CLI_EXIT_OK;
    }
    printf("DARTS search: %s, %lld iterations, %.1f s, %lld supernet weights\n", c->solver.method,
           (long long)r->iters, r->seconds, (long long)r->params);
    printf("  supernet accuracy: %.2f %% on the F half, %.2f %% on %lld test images\n",
           100 * r->val_acc, 100 * r->test_acc, (long long)c->n_test);
    fputs(text, stdout);
    if (m->geno) printf("  genotype saved to %s\n", m->geno);
    return CLI_EXIT_OK;
}

static const cli_task_def SEARCH_TASK = {"nas search", 7, LOG_COLS, search_configure,
                                         search_run, search_summary, NULL};

static int nas_search(int argc, char **argv) {
    search_cmd m;
    memset(&m, 0, sizeof m);
    blo_nas_search_config *c = &m.c;
    *c = blo_nas_search_default();
    c->images.data_dir = cli_default_data();
    m.n_search = c->n_search, m.n_test = c->n_test, m.batch = c->batch, m.size = c->images.size;
    m.cells = c->cells, m.channels = c->channels, m.nodes = c->nodes;
    m.eval_every = c->eval_every, m.warmup = c->warmup;
    m.format = "mnist", m.select = "alpha";
    cli_task t;
    cli_task_init(&t, &SEARCH_TASK, &SEARCH, &c->solver, &m);
    t.plot_from = &m.alog_path;
    t.plot_from_opt = "--alpha-log";
    cli_task_output(&t, "--genotype", &m.geno);
    cli_task_output(&t, "--alpha-log", &m.alog_path);
    cli_opt opts[15 + CLI_TASK_NOPTS] = {
        DATA_OPTS(c->images.data_dir, m.format),
        {"--size", NULL, CLI_INT, &m.size, 1, 1e4, NULL, "S", "images average-pooled to S x S"},
        {"--n-search", NULL, CLI_INT, &m.n_search, 2, 1e9, NULL, "N",
         "training-split examples: first half f, second half F"},
        {"--n-test", NULL, CLI_INT, &m.n_test, 0, 1e9, NULL, "N", "test examples for the supernet"},
        {"--batch", NULL, CLI_INT, &m.batch, 1, 1e9, NULL, "B", "minibatch of each objective"},
        {"--cells", NULL, CLI_INT, &m.cells, 1, 100, NULL, "N", "cells (reductions at N/3, 2N/3)"},
        {"--channels", NULL, CLI_INT, &m.channels, 1, 4096, NULL, "C", "channels of the first cells"},
        {"--nodes", NULL, CLI_INT, &m.nodes, 1, BLO_NAS_MAX_NODES, NULL, "N",
         "intermediate nodes per cell"},
        {"--genotype", NULL, CLI_STRING, &m.geno, 0, 0, NULL, "FILE", "save the genotype here"},
        {"--eval-every", NULL, CLI_INT, &m.eval_every, 0, 1e12, NULL, "N",
         "supernet accuracy on the F half every N iterations (0: at the end)"},
        {"--seed", NULL, CLI_INT, &m.seed, 0, 9e18, NULL, "S",
         "data subset, weights, alpha, batches"},
        {"--warmup", NULL, CLI_INT, &m.warmup, 0, 1e12, NULL, "N",
         "weights-only steps on f before alpha moves"},
        {"--alpha-log", NULL, CLI_STRING, &m.alog_path, 0, 0, NULL, "FILE",
         "softmax(alpha) per iteration, edge and op (.csv or .jsonl)"},
        {"--select", NULL, CLI_CHOICE, &m.select, 0, 0, "alpha|perturb", "HOW",
         "the genotype from alpha's magnitudes (DARTS) or from the supernet's loss when an op "
         "or edge is taken out"},
    };
    int n = cli_task_opts(&t, opts, 15);
    for (int i = 0; i < n; i++)
        if (!strcmp(opts[i].name, "--plot"))
            opts[i].help = "softmax(alpha) per edge over the search (.svg, .png); needs --alpha-log";
    return cli_task_main(&t, argc, argv, opts, n);
}

/* `nas train`: no bilevel problem, so no solver options; one log row per epoch. */
typedef struct train_cmd {
    blo_nas_train_config c;
    long long n_train, n_test, batch, epochs, size, cells, channels, nodes, seed;
    double lr, momentum, wd;
    const char *format, *geno;
    int random;
    blo_nas_train_result r;
} train_cmd;

static bool train_configure(cli_task *t) {
    train_cmd *m = t->user;
    blo_nas_train_config *c = &m->c;
    if (!m->geno == !m->random) {
        fprintf(stderr, "blo nas train: give exactly one of --genotype FILE and --random\n");
        return false;
    }
    if (m->geno) {
        char err[1024];
        if (blo_nas_genotype_load(m->geno, &c->genotype, err, sizeof err)) {
            fprintf(stderr, "blo nas train: %s\n", err);
            return false;
        }
    } else {
        blo_rng g;
        blo_rng_seed(&g, (uint64_t)m->seed ^ 0x4a4d0ULL);
        blo_nas_genotype_random((int)m->nodes, &g, &c->genotype);
    }
    c->images.format = data_format(m->format);
    c->images.size = m->size;
    c->images.seed = (uint64_t)m->seed;
    c->n_train = m->n_train;
    c->n_test = m->n_test;
    c->batch = m->batch;
    c->epochs = m->epochs;
    c->lr = m->lr;
    c->momentum = m->momentum;
    c->weight_decay = m->wd;
    c->cells = (int)m->cells;
    c->channels = (int)m->channels;
    c->dtype = cli_task_dtype(t);
    c->seed = (uint64_t)m->seed;
    c->on_iter = nas_on_iter;
    c->user = t;
    t->total = m->epochs;
    return true;
}

static blo_status train_run(cli_task *t, char *err, size_t errlen) {
    train_cmd *m = t->user;
    return blo_nas_train_run(&m->c, &m->r, err, errlen);
}

static int train_summary(cli_task *t) {
    const train_cmd *m = t->user;
    const blo_nas_train_config *c = &m->c;
    const blo_nas_train_result *r = &m->r;
    char text[4096];
    blo_nas_genotype_format(&c->genotype, text, sizeof text);
    if (t->json) {
        printf("{\"task\":\"nas_train\",\"genotype_source\":");
        cli_json_string(stdout, m->geno ? m->geno : "random");
        printf(",\"cells\":%d,\"channels\":%d,\"nodes\":%d,\"epochs\":%lld,\"steps\":%lld,"
               "\"params\":%lld,\"test_acc\":",
               c->cells, c->channels, c->genotype.nodes, m->epochs, (long long)r->steps,
               (long long)r->params);
        cli_json_number(stdout, r->test_acc);
        printf(",\"train_loss\":");
        cli_json_number(stdout, r->train_loss);
        printf(",\"seconds\":");
        cli_json_number(stdout, r->seconds);
        printf(",\"genotype\":");
        cli_json_string(stdout, text);
        printf("}\n");
        return CLI_EXIT_OK;
    }
    printf("trained from scratch: %lld epochs, %lld weights, %.1f s\n", m->epochs,
           (long long)r->params, r->seconds);
    printf("  test accuracy %.2f %% on %lld images (final train loss %.4f)\n", 100 * r->test_acc,
           m->n_test, r->train_loss);
    fputs(text, stdout);
    return CLI_EXIT_OK;
}

static const cli_task_def TRAIN_TASK = {"nas train", 7, LOG_COLS, train_configure, train_run,
                                        train_summary, NULL};

static int nas_train(int argc, char **argv) {
    train_cmd m;
    memset(&m, 0, sizeof m);
    blo_nas_train_config *c = &m.c;
    *c = blo_nas_train_default();
    c->images.data_dir = cli_default_data();
    m.n_train = c->n_train, m.n_test = c->n_test, m.batch = c->batch, m.epochs = c->epochs;
    m.size = c->images.size, m.cells = c->cells, m.channels = c->channels, m.nodes = 4;
    m.lr = c->lr, m.momentum = c->momentum, m.wd = c->weight_decay;
    m.format = "mnist";
    cli_task t;
    cli_task_init(&t, &TRAIN_TASK, &TRAIN, NULL, &m);
    cli_opt opts[16 + CLI_TASK_NOPTS] = {
        {"--genotype", NULL, CLI_STRING, &m.geno, 0, 0, NULL, "FILE",
         "the architecture (from nas search)"},
        {"--random", NULL, CLI_FLAG, &m.random, 0, 0, NULL, NULL,
         "a uniformly random genotype (drawn with --seed) instead"},
        {"--nodes", NULL, CLI_INT, &m.nodes, 1, BLO_NAS_MAX_NODES, NULL, "N",
         "nodes of a --random genotype"},
        DATA_OPTS(c->images.data_dir, m.format),
        {"--size", NULL, CLI_INT, &m.size, 1, 1e4, NULL, "S", "images average-pooled to S x S"},
        {"--n-train", NULL, CLI_INT, &m.n_train, 1, 1e9, NULL, "N", "training examples"},
        {"--n-test", NULL, CLI_INT, &m.n_test, 1, 1e9, NULL, "N", "test examples"},
        {"--batch", NULL, CLI_INT, &m.batch, 1, 1e9, NULL, "B", "minibatch"},
        {"--epochs", NULL, CLI_INT, &m.epochs, 0, 1e9, NULL, "E",
         "passes over the training examples"},
        {"--lr", NULL, CLI_DOUBLE, &m.lr, 1e-12, 1e6, NULL, "LR", "initial SGD step (cosine to 0)"},
        {"--momentum", NULL, CLI_DOUBLE, &m.momentum, 0, 1, NULL, "MU", "SGD momentum"},
        {"--weight-decay", NULL, CLI_DOUBLE, &m.wd, 0, 1e6, NULL, "WD", "L2 weight decay"},
        {"--cells", NULL, CLI_INT, &m.cells, 1, 100, NULL, "N", "cells (reductions at N/3, 2N/3)"},
        {"--channels", NULL, CLI_INT, &m.channels, 1, 4096, NULL, "C", "channels of the first cells"},
        {"--seed", NULL, CLI_INT, &m.seed, 0, 9e18, NULL, "S", "data subset, weights, batches"},
    };
    int n = cli_task_opts(&t, opts, 16);
    for (int i = 0; i < n; i++)
        if (!strcmp(opts[i].name, "--log")) opts[i].help = "per-epoch record: .csv or .jsonl";
    return cli_task_main(&t, argc, argv, opts, n);
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
