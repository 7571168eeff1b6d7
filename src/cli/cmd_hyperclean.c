/* cmd_hyperclean.c — `blo hyperclean`: data hyper-cleaning from the command line, a thin
 * layer over blo_hyperclean_run (include/blo/hyperclean.h) in the task frame: its options, its
 * progress status and log row, the summary table or JSON. */
#include "task_frame.h"
#include "trials.h"

#include "blo/blo.h"
#include "blo/hyperclean.h"

#include <math.h>
#include <string.h>
#include <time.h>

/* The command's state: the configuration its options fill, the values with no field of their
 * own there, the result. */
typedef struct hc_cmd {
    blo_hyperclean_config c;
    long long n_train, n_val, n_test, hidden, eval_every, bsteps, seed;
    double corrupt, blr;
    const char *model;
    int no_baselines;
    long long trials;
    blo_hyperclean_result r;
    cli_trials tr; /* --trials N > 1: one row per trial (HC_TRIAL_COLS) */
} hc_cmd;

/* A trial's row in the --trials table. */
enum { TR_SEED, TR_RANKS, TR_ACC, TR_F1, TR_PREC, TR_REC, TR_UPPER, TR_SECONDS, TR_ITERS, TR_NCOLS };

static int hc_on_iter(const blo_task_iter *it, void *user) {
    char status[128];
    if (isfinite(it->test_acc_start))
        snprintf(status, sizeof status, "F %.4f  test acc %.2f%% (y0 %.2f%%)  F1 %.3f",
                 it->rec.upper, 100 * it->test_acc, 100 * it->test_acc_start, it->f1);
    else if (isfinite(it->test_acc))
        snprintf(status, sizeof status, "F %.4f  test acc %.2f%%  F1 %.3f", it->rec.upper,
                 100 * it->test_acc, it->f1);
    else
        snprintf(status, sizeof status, "F %.4f  |dF/dx| %.3g", it->rec.upper, it->rec.hypergrad_norm);
    double row[9] = {(double)it->rec.iter, it->rec.upper, it->rec.lower, it->rec.hypergrad_norm,
                     it->rec.seconds, (double)it->rec.peak_bytes, it->test_acc, it->f1,
                     it->test_acc_start};
    cli_task_iter(user, &it->rec, status, row);
    return 0;
}

static bool hc_configure(cli_task *t) {
    hc_cmd *h = t->user;
    blo_hyperclean_config *c = &h->c;
    c->n_train = h->n_train;
    c->n_val = h->n_val;
    c->n_test = h->n_test;
    c->corrupt = h->corrupt;
    c->hidden = strcmp(h->model, "mlp") ? 0 : h->hidden;
    c->eval_every = h->eval_every;
    c->baselines = !h->no_baselines;
    c->baseline_steps = h->bsteps;
    c->baseline_lr = h->blr;
    CLI_TASK_CONFIGURE(c, t, h->seed, hc_on_iter);
    c->comm = blo_comm_world(); /* under mpirun -np R: the rows sharded over R ranks */
    if (h->trials > 1 && (t->log || t->plot || t->sa.resume || t->sa.checkpoint)) {
        fprintf(stderr, "blo hyperclean: --trials %lld prints one table of the trials; --log, "
                        "--plot, --checkpoint and --resume follow a single run (drop them or "
                        "--trials)\n", h->trials);
        return false;
    }
    return true;
}

/* --trials N: seeds seed .. seed + N − 1 over the ranks' groups (trials.h), one table. */
static blo_status hc_run_trials(cli_task *t, char *err, size_t errlen) {
    hc_cmd *h = t->user;
    blo_comm *world = blo_comm_world();
    if (!cli_trials_begin(&h->tr, world, (int)h->trials, TR_NCOLS))
        return BLO_ERR_NOMEM;
    if (!t->quiet)
        fprintf(stderr, "hyperclean: %lld trials of %s on %d group(s) of %d rank(s)\n", h->trials,
                h->c.solver.method, h->tr.groups, blo_comm_size(h->tr.comm));
    for (int k = 0; k < h->tr.n; k++) {
        if (!cli_trials_mine(&h->tr, k)) continue;
        blo_hyperclean_config c = h->c;
        c.seed = c.solver.seed = (uint64_t)h->seed + (uint64_t)k;
        c.comm = h->tr.comm;
        c.on_iter = NULL;
        blo_hyperclean_result r;
        blo_status st = blo_hyperclean_run(&c, &r, err, errlen);
        if (st) {
            cli_trials_end(&h->tr);
            return st;
        }
        double *row = cli_trials_row(&h->tr, k);
        double v[TR_NCOLS] = {(double)c.seed, blo_comm_size(h->tr.comm), r.test_acc, r.f1,
                              r.precision, r.recall, r.upper, r.seconds, (double)r.iters};
        memcpy(row, v, sizeof v);
        if (!t->quiet) fprintf(stderr, "hyperclean: trial %d of %d done\n", k + 1, h->tr.n);
    }
    cli_trials_gather(&h->tr, world);
    return BLO_OK;
}

static blo_status hc_run(cli_task *t, char *err, size_t errlen) {
    hc_cmd *h = t->user;
    blo_hyperclean_config *c = &h->c;
    if (h->trials > 1) return hc_run_trials(t, err, errlen);
    if (!t->quiet)
        fprintf(stderr, "hyperclean: %s, %s model, T = %d inner steps, %lld outer iterations, "
                        "%s start\n", c->solver.method, c->hidden ? "mlp" : "linear",
                c->solver.inner_steps, (long long)c->solver.outer_iters,
                blo_init_kind_name(c->solver.init));
    return blo_hyperclean_run(c, &h->r, err, errlen);
}

static void pct(FILE *f, const char *name, double v) {
    if (isfinite(v))
        fprintf(f, "  %-36s %6.2f %%\n", name, 100 * v);
    else
        fprintf(f, "  %-36s %8s\n", name, "-");
}

/* The mean and the sample standard deviation of column col over the trials. */
static void trial_stats(const cli_trials *tr, int col, double *mean, double *sd) {
    double s = 0, q = 0;
    for (int k = 0; k < tr->n; k++) s += tr->table[k * tr->ncols + col];
    *mean = s / tr->n;
    for (int k = 0; k < tr->n; k++) {
        double d = tr->table[k * tr->ncols + col] - *mean;
        q += d * d;
    }
    *sd = tr->n > 1 ? sqrt(q / (tr->n - 1)) : 0;
}

static int hc_summary_trials(cli_task *t) {
    hc_cmd *h = t->user;
    cli_trials *tr = &h->tr;
    static const char *const keys[TR_NCOLS] = {"seed",   "ranks", "test_acc", "f1",   "precision",
                                               "recall", "upper", "seconds",  "iters"};
    double am, asd, fm, fsd;
    trial_stats(tr, TR_ACC, &am, &asd);
    trial_stats(tr, TR_F1, &fm, &fsd);
    if (t->json) {
        printf("{\"task\":\"hyperclean\",\"method\":\"%s\",\"trials\":%d,\"groups\":%d,\"runs\":[",
               h->c.solver.method, tr->n, tr->groups);
        for (int k = 0; k < tr->n; k++) {
            printf("%s{", k ? "," : "");
            for (int j = 0; j < TR_NCOLS; j++) {
                printf("%s\"%s\":", j ? "," : "", keys[j]);
                cli_json_number(stdout, cli_trials_row(tr, k)[j]);
            }
            printf("}");
        }
        printf("],\"test_acc_mean\":");
        cli_json_number(stdout, am);
        printf(",\"test_acc_sd\":");
        cli_json_number(stdout, asd);
        printf(",\"f1_mean\":");
        cli_json_number(stdout, fm);
        printf(",\"f1_sd\":");
        cli_json_number(stdout, fsd);
        printf("}\n");
        return CLI_EXIT_OK;
    }
    printf("data hyper-cleaning: %d trials of %s on %d group(s) of ranks\n", tr->n,
           h->c.solver.method, tr->groups);
    printf("  %5s %6s %5s %9s %7s %9s %7s %9s %8s\n", "trial", "seed", "ranks", "test acc", "F1",
           "precision", "recall", "F", "seconds");
    for (int k = 0; k < tr->n; k++) {
        const double *v = cli_trials_row(tr, k);
        printf("  %5d %6.0f %5.0f %8.2f%% %7.3f %9.3f %7.3f %9.4f %8.1f\n", k, v[TR_SEED],
               v[TR_RANKS], 100 * v[TR_ACC], v[TR_F1], v[TR_PREC], v[TR_REC], v[TR_UPPER],
               v[TR_SECONDS]);
    }
    printf("  test accuracy %.2f ± %.2f %%, cleaner F1 %.3f ± %.3f (mean ± sd over %d trials)\n",
           100 * am, 100 * asd, fm, fsd, tr->n);
    return CLI_EXIT_OK;
}

static void hc_release(cli_task *t) {
    hc_cmd *h = t->user;
    cli_trials_end(&h->tr);
}

static int hc_summary(cli_task *t) {
    hc_cmd *h = t->user;
    if (h->trials > 1) return hc_summary_trials(t);
    const blo_hyperclean_config *c = &h->c;
    const blo_hyperclean_result *r = &h->r;
    if (t->json) {
        printf("{\"task\":\"hyperclean\",\"method\":\"%s\",\"model\":\"%s\",\"init\":\"%s\","
               "\"inner_steps\":%d,\"iters\":%lld,\"test_acc\":",
               c->solver.method, c->hidden ? "mlp" : "linear", blo_init_kind_name(c->solver.init),
               c->solver.inner_steps, (long long)r->iters);
        cli_json_number(stdout, r->test_acc);
        const char *keys[] = {"test_acc_start", "precision", "recall", "f1", "baseline_noisy",
                              "baseline_val", "baseline_oracle", "kept_plus_val", "upper",
                              "lower", "seconds"};
        double vals[] = {r->test_acc_start, r->precision, r->recall, r->f1, r->base_noisy,
                         r->base_val, r->base_oracle, r->base_kept, r->upper, r->lower,
                         r->seconds};
        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
            printf(",\"%s\":", keys[i]);
            cli_json_number(stdout, vals[i]);
        }
        /* ranks, and what rank 0 sent in collectives over the whole run (blo/dist.h). */
        blo_comm *w = blo_comm_world();
        double comm_cpu, comm_wall = blo_comm_seconds(w, &comm_cpu);
        printf(",\"kept\":%lld,\"clean\":%lld,\"peak_bytes\":%zu,\"ranks\":%d,"
               "\"comm_bytes\":%llu,\"comm_calls\":%llu,\"comm_seconds\":%.6f,"
               "\"comm_cpu_seconds\":%.6f,\"cpu_seconds\":%.6f}\n",
               (long long)r->kept, (long long)r->clean, r->peak_bytes, blo_comm_size(w),
               (unsigned long long)blo_comm_bytes_sent(w), (unsigned long long)blo_comm_calls(w),
               comm_wall, comm_cpu, (double)clock() / CLOCKS_PER_SEC);
        return CLI_EXIT_OK;
    }
    printf("data hyper-cleaning: %s, %lld iterations, %.1f s\n", c->solver.method,
           (long long)r->iters, r->seconds);
    pct(stdout, "test accuracy (model y_T)", r->test_acc);
    pct(stdout, "test accuracy (learned start y_0)", r->test_acc_start);
    printf("  %-36s %6.3f  (precision %.3f, recall %.3f; kept %lld, clean %lld)\n",
           "cleaner F1", r->f1, r->precision, r->recall, (long long)r->kept, (long long)r->clean);
    pct(stdout, "baseline: trained on the noisy set", r->base_noisy);
    pct(stdout, "baseline: validation set only", r->base_val);
    pct(stdout, "baseline: clean part + validation", r->base_oracle);
    pct(stdout, "bilevel: kept examples + validation", r->base_kept);
    blo_comm *w = blo_comm_world();
    if (blo_comm_size(w) > 1)
        printf("  %-34s %d (rank 0 sent %.3g MB in %llu collectives)\n", "ranks", blo_comm_size(w),
               1e-6 * (double)blo_comm_bytes_sent(w), (unsigned long long)blo_comm_calls(w));
    if (t->plot) printf("  plot: %s\n", t->plot);
    return CLI_EXIT_OK;
}

static const char *const HC_COLS[9] = {"iter",     "upper",      "lower",    "hypergrad_norm",
                                       "seconds",  "peak_bytes", "test_acc", "f1",
                                       "test_acc_start"};
static const cli_task_def HC = {"hyperclean", 9, HC_COLS, hc_configure, hc_run, hc_summary, hc_release};

int cli_hyperclean_run(const cli_cmd *cmd, int argc, char **argv) {
    hc_cmd h;
    memset(&h, 0, sizeof h);
    h.c = blo_hyperclean_default();
    h.c.data_dir = cli_default_data();
    h.n_train = h.c.n_train, h.n_val = h.c.n_val, h.n_test = h.c.n_test, h.hidden = 300;
    h.eval_every = h.c.eval_every, h.bsteps = h.c.baseline_steps;
    h.corrupt = h.c.corrupt, h.blr = h.c.baseline_lr;
    h.model = "linear";
    h.trials = 1;
    cli_task t;
    cli_task_init(&t, &HC, cmd, &h.c.solver, &h);
    cli_opt opts[13 + CLI_TASK_NOPTS] = {
        {"--data", NULL, CLI_STRING, &h.c.data_dir, 0, 0, NULL, "DIR",
         "MNIST-layout folder (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz])"
         CLI_DATA_HELP},
        {"--n-train", NULL, CLI_INT, &h.n_train, 1, 1e9, NULL, "N", "training examples (weighted)"},
        {"--n-val", NULL, CLI_INT, &h.n_val, 1, 1e9, NULL, "N", "clean validation examples (F)"},
        {"--n-test", NULL, CLI_INT, &h.n_test, 1, 1e9, NULL, "N", "test examples (accuracy)"},
        {"--corrupt", NULL, CLI_DOUBLE, &h.corrupt, 0, 1, NULL, "P",
         "fraction of training labels replaced by a uniform random class"},
        {"--model", NULL, CLI_CHOICE, &h.model, 0, 0, "linear|mlp", "M",
         "lower-level model: softmax(X W + b), or Linear(d, H) -> Linear(H, C)"},
        {"--hidden", NULL, CLI_INT, &h.hidden, 1, 1e6, NULL, "H", "hidden width of --model mlp"},
        {"--eval-every", NULL, CLI_INT, &h.eval_every, 0, 1e12, NULL, "N",
         "test accuracy and cleaner F1 every N iterations (0: at the end)"},
        {"--no-baselines", NULL, CLI_FLAG, &h.no_baselines, 0, 0, NULL, NULL,
         "skip the three reference classifiers and the one on the kept examples"},
        {"--baseline-steps", NULL, CLI_INT, &h.bsteps, 1, 1e9, NULL, "N",
         "full-batch Adam steps of each baseline"},
        {"--baseline-lr", NULL, CLI_DOUBLE, &h.blr, 1e-12, 1e6, NULL, "LR", "baselines' Adam step"},
        {"--seed", NULL, CLI_INT, &h.seed, 0, 9e18, NULL, "S", "split, corruption, initial model"},
        {"--trials", NULL, CLI_INT, &h.trials, 1, 1e6, NULL, "N",
         "N independent runs (seeds S .. S+N-1), one table; under mpirun -np R the ranks form "
         "G groups (G the largest divisor of R up to N), each trial data-parallel on one group"},
    };
    return cli_task_main(&t, argc, argv, opts, cli_task_opts(&t, opts, 13));
}
