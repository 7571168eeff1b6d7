/* cmd_hyperclean.c — `blo hyperclean`: data hyper-cleaning from the command line, a thin
 * layer over blo_hyperclean_run (include/blo/hyperclean.h) in the task frame: its options, its
 * progress status and log row, the summary table or JSON. */
#include "task_frame.h"

#include "blo/blo.h"
#include "blo/hyperclean.h"

#include <math.h>
#include <string.h>

/* The command's state: the configuration its options fill, the values with no field of their
 * own there, the result. */
typedef struct hc_cmd {
    blo_hyperclean_config c;
    long long n_train, n_val, n_test, hidden, eval_every, bsteps, seed;
    double corrupt, blr;
    const char *model;
    int no_baselines;
    blo_hyperclean_result r;
} hc_cmd;

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
    return true;
}

static blo_status hc_run(cli_task *t, char *err, size_t errlen) {
    hc_cmd *h = t->user;
    blo_hyperclean_config *c = &h->c;
    if (!t->quiet)
        fprintf(stderr, "hyperclean: %s, %s model, T = %d inner steps, %lld outer iterations, "
                        "%s start\n", c->solver.method, c->hidden ? "mlp" : "linear",
                c->solver.inner_steps, (long long)c->solver.outer_iters,
                blo_init_kind_name(c->solver.init));
    return blo_hyperclean_run(c, &h->r, err, errlen);
}

static void pct(FILE *f, const char *name, double v) {
    if (isfinite(v))
        fprintf(f, "  %-34s %6.2f %%\n", name, 100 * v);
    else
        fprintf(f, "  %-34s %8s\n", name, "-");
}

static int hc_summary(cli_task *t) {
    hc_cmd *h = t->user;
    const blo_hyperclean_config *c = &h->c;
    const blo_hyperclean_result *r = &h->r;
    if (t->json) {
        printf("{\"task\":\"hyperclean\",\"method\":\"%s\",\"model\":\"%s\",\"init\":\"%s\","
               "\"inner_steps\":%d,\"iters\":%lld,\"test_acc\":",
               c->solver.method, c->hidden ? "mlp" : "linear", blo_init_kind_name(c->solver.init),
               c->solver.inner_steps, (long long)r->iters);
        cli_json_number(stdout, r->test_acc);
        const char *keys[] = {"test_acc_start", "precision", "recall", "f1", "baseline_noisy",
                              "baseline_val", "baseline_oracle", "upper", "lower", "seconds"};
        double vals[] = {r->test_acc_start, r->precision, r->recall, r->f1, r->base_noisy,
                         r->base_val, r->base_oracle, r->upper, r->lower, r->seconds};
        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
            printf(",\"%s\":", keys[i]);
            cli_json_number(stdout, vals[i]);
        }
        /* ranks, and what rank 0 sent in collectives over the whole run (blo/dist.h). */
        blo_comm *w = blo_comm_world();
        printf(",\"kept\":%lld,\"clean\":%lld,\"peak_bytes\":%zu,\"ranks\":%d,"
               "\"comm_bytes\":%llu,\"comm_calls\":%llu}\n",
               (long long)r->kept, (long long)r->clean, r->peak_bytes, blo_comm_size(w),
               (unsigned long long)blo_comm_bytes_sent(w), (unsigned long long)blo_comm_calls(w));
        return CLI_EXIT_OK;
    }
    printf("data hyper-cleaning: %s, %lld iterations, %.1f s\n", c->solver.method,
           (long long)r->iters, r->seconds);
    pct(stdout, "test accuracy (model y_T)", r->test_acc);
    pct(stdout, "test accuracy (learned start y_0)", r->test_acc_start);
    printf("  %-34s %6.3f  (precision %.3f, recall %.3f; kept %lld, clean %lld)\n",
           "cleaner F1", r->f1, r->precision, r->recall, (long long)r->kept, (long long)r->clean);
    pct(stdout, "baseline: trained on the noisy set", r->base_noisy);
    pct(stdout, "baseline: validation set only", r->base_val);
    pct(stdout, "baseline: clean part + validation", r->base_oracle);
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
static const cli_task_def HC = {"hyperclean", 9, HC_COLS, hc_configure, hc_run, hc_summary, NULL};

int cli_hyperclean_run(const cli_cmd *cmd, int argc, char **argv) {
    hc_cmd h;
    memset(&h, 0, sizeof h);
    h.c = blo_hyperclean_default();
    h.c.data_dir = cli_default_data();
    h.n_train = h.c.n_train, h.n_val = h.c.n_val, h.n_test = h.c.n_test, h.hidden = 300;
    h.eval_every = h.c.eval_every, h.bsteps = h.c.baseline_steps;
    h.corrupt = h.c.corrupt, h.blr = h.c.baseline_lr;
    h.model = "linear";
    cli_task t;
    cli_task_init(&t, &HC, cmd, &h.c.solver, &h);
    cli_opt opts[12 + CLI_TASK_NOPTS] = {
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
         "skip the three reference classifiers"},
        {"--baseline-steps", NULL, CLI_INT, &h.bsteps, 1, 1e9, NULL, "N",
         "full-batch Adam steps of each baseline"},
        {"--baseline-lr", NULL, CLI_DOUBLE, &h.blr, 1e-12, 1e6, NULL, "LR", "baselines' Adam step"},
        {"--seed", NULL, CLI_INT, &h.seed, 0, 9e18, NULL, "S", "split, corruption, initial model"},
    };
    return cli_task_main(&t, argc, argv, opts, cli_task_opts(&t, opts, 12));
}
