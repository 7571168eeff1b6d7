/* cmd_reweight.c — `blo reweight`: learning to weight noisy or imbalanced training examples
 * from the command line, a thin layer over blo_reweight_run (include/blo/reweight.h) in the
 * task frame: its options, its progress status and log row, the summary, the weight curve. */
#include "task_frame.h"

#include "blo/blo.h"
#include "blo/reweight.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct rw_cmd {
    blo_reweight_config c;
    long long n_meta, n_train, n_test, hidden, vhidden, batch, meta_batch, epochs, seed, channels;
    double noise, imbalance, lr, momentum, wd, meta_lr, meta_wd, meta_beta1;
    const char *noise_kind, *weights, *scheme, *curve, *norm, *classifier, *lr_decay, *meta_opt,
        *meta_wd_schedule, *meta_lr_schedule;
    blo_reweight_result r;
} rw_cmd;

static int rw_on_iter(const blo_task_iter *it, void *user) {
    char status[128];
    snprintf(status, sizeof status, "meta CE %.4f  train CE %.4f  test acc %.2f%%", it->rec.upper,
             it->rec.lower, 100 * it->test_acc);
    double row[6] = {(double)it->rec.iter + 1, it->rec.upper, it->rec.lower,
                     it->rec.hypergrad_norm, it->rec.seconds, it->test_acc};
    cli_task_step(user, it->rec.iter + 1, status, row);
    return 0;
}

/* "E1[,E2]" into d[0], d[1] (0 where absent); "0" or "" for none. */
static bool cli_reweight_decays(const char *s, int64_t *d) {
    d[0] = d[1] = 0;
    for (int k = 0; s && *s; k++) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (k > 1 || end == s || v < 0 || (*end && *end != ',')) return false;
        d[k] = v;
        s = *end ? end + 1 : end;
    }
    return true;
}

static bool rw_configure(cli_task *t) {
    rw_cmd *h = t->user;
    blo_reweight_config *c = &h->c;
    c->n_meta = h->n_meta, c->n_train = h->n_train, c->n_test = h->n_test;
    c->noise = h->noise;
    c->noise_kind = strcmp(h->noise_kind, "pair") ? BLO_NOISE_UNIFORM : BLO_NOISE_PAIR;
    c->imbalance = h->imbalance;
    c->weights = !strcmp(h->weights, "network")        ? BLO_REWEIGHT_NETWORK
                 : !strcmp(h->weights, "per-example") ? BLO_REWEIGHT_PER_EXAMPLE
                                                      : BLO_REWEIGHT_NONE;
    c->online = !strcmp(h->scheme, "online");
    if (!c->online && c->weights != BLO_REWEIGHT_NETWORK) {
        fprintf(stderr, "blo reweight: --scheme solver learns the weighting network only "
                        "(--weights network)\n");
        return false;
    }
    c->norm = strcmp(h->norm, "sum") ? BLO_REWEIGHT_NORM_BATCH : BLO_REWEIGHT_NORM_SUM;
    c->classifier = strcmp(h->classifier, "conv") ? BLO_REWEIGHT_MLP : BLO_REWEIGHT_CONV;
    c->channels = h->channels;
    if (!cli_reweight_decays(h->lr_decay, c->lr_decay)) {
        fprintf(stderr, "blo reweight: --lr-decay '%s': expected up to two epochs E1[,E2] >= 1 "
                        "(or 0 for none)\n", h->lr_decay);
        return false;
    }
    c->hidden = h->hidden, c->vnet_hidden = h->vhidden;
    c->batch = h->batch, c->meta_batch = h->meta_batch, c->epochs = h->epochs;
    c->opt.lr = h->lr, c->opt.momentum = h->momentum, c->opt.weight_decay = h->wd;
    c->opt.kind = h->momentum > 0 ? BLO_OPT_MOMENTUM : BLO_OPT_SGD;
    c->meta_opt.lr = h->meta_lr, c->meta_opt.weight_decay = h->meta_wd;
    c->meta_opt.beta1 = h->meta_beta1;
    c->meta_opt.kind = (blo_opt_kind)blo_opt_kind_parse(h->meta_opt);
    c->meta_wd_follows = !strcmp(h->meta_wd_schedule, "follow");
    c->meta_lr_follows = !strcmp(h->meta_lr_schedule, "follow");
    c->resume = t->sa.resume; /* and keeps saving there, as every task's --resume */
    c->checkpoint = t->sa.checkpoint ? t->sa.checkpoint : t->sa.resume;
    c->dtype = cli_task_dtype(t);
    c->seed = c->solver.seed = (uint64_t)h->seed;
    c->on_iter = rw_on_iter;
    c->comm = blo_comm_world(); /* under mpirun -np R: every minibatch shared by R ranks */
    c->user = t;
    t->total = c->epochs;
    return true;
}

static blo_status rw_run(cli_task *t, char *err, size_t errlen) {
    rw_cmd *h = t->user;
    const blo_reweight_config *c = &h->c;
    if (!t->quiet)
        fprintf(stderr, "reweight: %s weights, %s, %.0f%% %s noise, imbalance %g, %lld epochs\n",
                h->weights, c->online ? "online one-step scheme" : c->solver.method,
                100 * c->noise, h->noise_kind, c->imbalance, (long long)c->epochs);
    return blo_reweight_run(c, &h->r, err, errlen);
}

/* The weight curve as CSV (loss,weight) or a plot (.svg / .png). */
static bool write_curve(const char *path, const blo_reweight_result *r) {
    const char *dot = strrchr(path, '.');
    if (dot && !strcmp(dot, ".csv")) {
        FILE *f = fopen(path, "w");
        if (!f) return false;
        fprintf(f, "loss,weight\n");
        for (int i = 0; i < BLO_REWEIGHT_CURVE; i++)
            fprintf(f, "%.17g,%.17g\n", r->loss_grid[i], r->weight_curve[i]);
        return fclose(f) == 0;
    }
    cli_table tb;
    memset(&tb, 0, sizeof tb);
    snprintf(tb.name, sizeof tb.name, "V(loss)");
    tb.ncols = 2;
    snprintf(tb.cols[0], sizeof tb.cols[0], "loss");
    snprintf(tb.cols[1], sizeof tb.cols[1], "weight");
    tb.nrows = BLO_REWEIGHT_CURVE;
    tb.v = blo_malloc(sizeof(double) * 2 * BLO_REWEIGHT_CURVE);
    if (!tb.v) return false;
    for (int i = 0; i < BLO_REWEIGHT_CURVE; i++)
        tb.v[2 * i] = r->loss_grid[i], tb.v[2 * i + 1] = r->weight_curve[i];
    cli_plot_panel p = {"loss", "weight", "learned weight V(loss) against the training loss", 0,
                        NULL, 0};
    char err[256];
    bool ok = cli_plot_write(path, &tb, 1, &p, 1, err, sizeof err);
    if (!ok) fprintf(stderr, "blo reweight: --curve %s: %s\n", path, err);
    cli_table_free(&tb);
    return ok;
}

static int rw_summary(cli_task *t) {
    rw_cmd *h = t->user;
    const blo_reweight_config *c = &h->c;
    const blo_reweight_result *r = &h->r;
    if (h->curve && !write_curve(h->curve, r)) {
        fprintf(stderr, "blo reweight: could not write --curve %s\n", h->curve);
        return CLI_EXIT_FAILED;
    }
    if (t->json) {
        printf("{\"task\":\"reweight\",\"weights\":\"%s\",\"scheme\":\"%s\",\"noise_kind\":\"%s\","
               "\"n_train\":%lld,\"n_meta\":%lld,\"n_test\":%lld,\"noisy\":%lld,\"epochs\":%lld,"
               "\"steps\":%lld",
               h->weights, c->online ? "online" : c->solver.method, h->noise_kind,
               (long long)r->n_train, (long long)r->n_meta, (long long)r->n_test,
               (long long)r->noisy, (long long)r->epochs, (long long)r->steps);
        const char *keys[] = {"noise", "imbalance", "test_acc", "best_test_acc", "clean_weight",
                              "noisy_weight", "seconds", "seconds_per_epoch", "cpu_seconds_per_epoch"};
        double vals[] = {c->noise, c->imbalance, r->test_acc, r->best_test_acc, r->clean_weight,
                         r->noisy_weight, r->seconds, r->seconds_per_epoch,
                         r->cpu_seconds_per_epoch};
        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
            printf(",\"%s\":", keys[i]);
            cli_json_number(stdout, vals[i]);
        }
        printf(",\"weight_curve\":[");
        for (int i = 0; i < BLO_REWEIGHT_CURVE; i += 10) {
            printf(i ? ",[%g," : "[%g,", r->loss_grid[i]);
            cli_json_number(stdout, r->weight_curve[i]);
            printf("]");
        }
        printf("]}\n");
        return CLI_EXIT_OK;
    }
    printf("reweighting: %s weights (%s), %lld training examples (%lld labels changed), %lld "
           "meta, %lld epochs, %.1f s (%.1f s per epoch)\n",
           h->weights, c->online ? "online" : c->solver.method, (long long)r->n_train,
           (long long)r->noisy, (long long)r->n_meta, (long long)r->epochs, r->seconds,
           r->seconds_per_epoch);
    printf("  %-32s %6.2f %%\n", "test accuracy (last epoch)", 100 * r->test_acc);
    printf("  %-32s %6.2f %%\n", "test accuracy (best epoch)", 100 * r->best_test_acc);
    if (isfinite(r->clean_weight))
        printf("  %-32s clean %.3f, noisy %.3f\n", "mean weight, last epoch", r->clean_weight,
               r->noisy_weight);
    if (isfinite(r->weight_curve[0]))
        printf("  %-32s V(0) %.3f  V(1) %.3f  V(2) %.3f  V(5) %.3f  V(10) %.3f\n",
               "learned weight curve", r->weight_curve[0], r->weight_curve[10],
               r->weight_curve[20], r->weight_curve[50], r->weight_curve[100]);
    if (h->curve) printf("  curve: %s\n", h->curve);
    if (t->plot) printf("  plot: %s\n", t->plot);
    return CLI_EXIT_OK;
}

static const char *const RW_COLS[6] = {"iter", "upper", "lower", "hypergrad_norm", "seconds",
                                       "test_acc"};
static const cli_task_def RW = {"reweight", 6, RW_COLS, rw_configure, rw_run, rw_summary, NULL};

int cli_reweight_run(const cli_cmd *cmd, int argc, char **argv) {
    rw_cmd h;
    memset(&h, 0, sizeof h);
    h.c = blo_reweight_default();
    blo_reweight_config *c = &h.c;
    c->data_dir = cli_default_data();
    h.n_meta = c->n_meta, h.n_train = c->n_train, h.n_test = c->n_test;
    h.hidden = c->hidden, h.vhidden = c->vnet_hidden, h.batch = c->batch;
    h.meta_batch = c->meta_batch, h.epochs = c->epochs;
    h.noise = c->noise, h.imbalance = c->imbalance;
    h.lr = c->opt.lr, h.momentum = c->opt.momentum, h.wd = c->opt.weight_decay;
    h.meta_lr = c->meta_opt.lr, h.meta_wd = c->meta_opt.weight_decay;
    h.meta_beta1 = c->meta_opt.beta1;
    h.noise_kind = "uniform", h.weights = "network", h.scheme = "online";
    h.norm = "sum", h.classifier = "mlp", h.channels = c->channels, h.lr_decay = "0";
    h.meta_opt = blo_opt_kind_name(c->meta_opt.kind);
    h.meta_wd_schedule = c->meta_wd_follows ? "follow" : "fixed";
    h.meta_lr_schedule = c->meta_lr_follows ? "follow" : "fixed";
    cli_task t;
    cli_task_init(&t, &RW, cmd, &c->solver, &h);
    cli_opt opts[32 + CLI_TASK_NOPTS] = {
        {"--data", NULL, CLI_STRING, &c->data_dir, 0, 0, NULL, "DIR",
         "MNIST-layout folder (train-* and t10k-* idx files)" CLI_DATA_HELP},
        {"--test-split", NULL, CLI_CHOICE, &c->test_split, 0, 0, "t10k|train", "S",
         "test set: the t10k split, or --n-test rows held out of the training split"},
        {"--n-meta", NULL, CLI_INT, &h.n_meta, 1, 1e9, NULL, "N",
         "clean meta examples taken out of the training split (F)"},
        {"--n-train", NULL, CLI_INT, &h.n_train, 0, 1e9, NULL, "N",
         "training examples (0: all the rest)"},
        {"--n-test", NULL, CLI_INT, &h.n_test, 0, 1e9, NULL, "N", "test examples (0: all)"},
        {"--noise", NULL, CLI_DOUBLE, &h.noise, 0, 1, NULL, "P", "fraction of training labels changed"},
        {"--noise-kind", NULL, CLI_CHOICE, &h.noise_kind, 0, 0, "uniform|pair", "K",
         "uniform: a class drawn from all C; pair: c -> (c + 1) mod C"},
        {"--imbalance", NULL, CLI_DOUBLE, &h.imbalance, 1, 1e9, NULL, "F",
         "long-tailed training classes, n_c = n_max F^(-c/(C-1)) (1: none)"},
        {"--weights", NULL, CLI_CHOICE, &h.weights, 0, 0, "network|per-example|none", "W",
         "network: V(l; phi) learned; per-example: learning to reweight; none: plain CE"},
        {"--scheme", NULL, CLI_CHOICE, &h.scheme, 0, 0, "online|solver", "S",
         "online: virtual step, phi step, real step; solver: --method over --inner steps"},
        {"--norm", NULL, CLI_CHOICE, &h.norm, 0, 0, "batch|sum", "N",
         "network weights: sum: f = sum V(l) l / sum V(l); batch: f = sum V(l) l / B (the paper's eqs)"},
        {"--classifier", NULL, CLI_CHOICE, &h.classifier, 0, 0, "mlp|conv", "K",
         "mlp: --hidden; conv: 3x3 conv K, pool 2, 3x3 conv 2K, pool 2, linear (square images)"},
        {"--hidden", NULL, CLI_INT, &h.hidden, 1, 1e6, NULL, "H",
         "mlp classifier Linear(d, H) -> ReLU -> Linear(H, C)"},
        {"--channels", NULL, CLI_INT, &h.channels, 1, 1e4, NULL, "K",
         "conv classifier channels K (then 2K)"},
        {"--vnet-hidden", NULL, CLI_INT, &h.vhidden, 1, 1e6, NULL, "H",
         "weighting network 1 -> H -> 1 (ReLU, sigmoid)"},
        {"--batch", NULL, CLI_INT, &h.batch, 1, 1e9, NULL, "B", "training minibatch"},
        {"--meta-batch", NULL, CLI_INT, &h.meta_batch, 1, 1e9, NULL, "B", "meta minibatch"},
        {"--epochs", NULL, CLI_INT, &h.epochs, 0, 1e9, NULL, "E", "passes over the training set"},
        {"--lr", NULL, CLI_DOUBLE, &h.lr, 1e-12, 1e6, NULL, "LR",
         "classifier step (real step; also the virtual step's alpha)"},
        {"--lr-decay", NULL, CLI_STRING, &h.lr_decay, 0, 0, NULL, "E1[,E2]",
         "online scheme: divide the step (and alpha) by 10 after these epochs (0: none)"},
        {"--sgd-momentum", NULL, CLI_DOUBLE, &h.momentum, 0, 0.999999, NULL, "M",
         "classifier momentum (0: plain SGD)"},
        {"--wd", NULL, CLI_DOUBLE, &h.wd, 0, 1e6, NULL, "WD", "classifier weight decay"},
        {"--meta-opt", NULL, CLI_CHOICE, &h.meta_opt, 0, 0, "adam|nesterov|momentum|sgd", "K",
         "weighting network's optimizer (online scheme; momentum 0.9)"},
        {"--meta-lr", NULL, CLI_DOUBLE, &h.meta_lr, 1e-12, 1e6, NULL, "LR",
         "weighting network's step (online scheme)"},
        {"--meta-wd", NULL, CLI_DOUBLE, &h.meta_wd, 0, 1e6, NULL, "WD",
         "weighting network's weight decay (online scheme)"},
        {"--meta-beta1", NULL, CLI_DOUBLE, &h.meta_beta1, 0, 0.999999, NULL, "B",
         "--meta-opt adam: the weighting network's first-moment average (steps averaged ~ 1/(1-B))"},
        {"--meta-wd-schedule", NULL, CLI_CHOICE, &h.meta_wd_schedule, 0, 0, "fixed|follow", "S",
         "follow: divide --meta-wd by 10 with each --lr-decay, as the meta gradient (prop. to lr) is"},
        {"--meta-lr-schedule", NULL, CLI_CHOICE, &h.meta_lr_schedule, 0, 0, "fixed|follow", "S",
         "follow: divide --meta-lr by 10 with each --lr-decay, as the classifier's step is"},
        {"--curve", NULL, CLI_STRING, &h.curve, 0, 0, NULL, "FILE",
         "write the learned V(loss) curve: .csv, .svg or .png"},
        {"--seed", NULL, CLI_INT, &h.seed, 0, 9e18, NULL, "S",
         "meta set, noise, minibatches, initial networks"},
    };
    cli_task_output(&t, "--curve", &h.curve);
    return cli_task_main(&t, argc, argv, opts, cli_task_opts(&t, opts, 30));
}
