/* cmd_learnopt.c — `blo learnopt train`: meta-train a learned optimizer on Fashion-MNIST, and
 * `blo learnopt apply`: train a network with a saved optimizer (or a hand-made baseline), thin
 * layers over blo_learnopt_train / blo_learnopt_apply (blo/learnopt.h) in the task frame. */
#include "task_frame.h"

#include "blo/blo.h"
#include "blo/learnopt.h"

#include <math.h>
#include <string.h>

/* The optimizee options both subcommands share (their values, before the configuration). */
typedef struct lo_task_args {
    const char *data_dir;
    long long n_train, n_test, batch, hidden, layers, seed;
} lo_task_args;

#define LO_TASK_NOPTS 7
static int lo_task_opts(cli_opt *o, int n, lo_task_args *a) {
    const cli_opt add[LO_TASK_NOPTS] = {
        {"--data", NULL, CLI_STRING, &a->data_dir, 0, 0, NULL, "DIR",
         "MNIST-layout folder (train-* for training, t10k-* for the test)" CLI_DATA_HELP},
        {"--n-train", NULL, CLI_INT, &a->n_train, 1, 1e9, NULL, "N",
         "training images (a random subset of the train split)"},
        {"--n-test", NULL, CLI_INT, &a->n_test, 1, 1e9, NULL, "N", "test images scored"},
        {"--batch", NULL, CLI_INT, &a->batch, 1, 4096, NULL, "B", "minibatch size"},
        {"--hidden", NULL, CLI_INT, &a->hidden, 1, 1e6, NULL, "H", "the optimizee's hidden width"},
        {"--layers", NULL, CLI_INT, &a->layers, 1, 8, NULL, "L",
         "the optimizee's hidden layers (tanh)"},
        {"--seed", NULL, CLI_INT, &a->seed, 0, 9e18, NULL, "S",
         "the subset, the optimizee's initialisations, the minibatches"},
    };
    for (int i = 0; i < LO_TASK_NOPTS; i++)
        o[n++] = add[i];
    return n;
}

static void lo_task_args_from(lo_task_args *a, const blo_learnopt_task *c, const char *data) {
    a->data_dir = data;
    a->n_train = c->n_train, a->n_test = c->n_test, a->batch = c->batch;
    a->hidden = c->hidden, a->layers = c->layers, a->seed = (long long)c->seed;
}

static void lo_task_config(blo_learnopt_task *c, const lo_task_args *a, const cli_task *t) {
    c->data_dir = a->data_dir;
    c->n_train = a->n_train, c->n_test = a->n_test, c->batch = a->batch;
    c->hidden = a->hidden, c->layers = a->layers, c->seed = (uint64_t)a->seed;
    c->dtype = cli_task_dtype(t);
}

/* ---- train --------------------------------------------------------------------------------- */

typedef struct train_cmd {
    blo_learnopt_config c;
    lo_task_args a;
    long long opt_hidden, reset_every;
    double init_step;
    const char *out, *start;
    int trhg_window_default;
    blo_learnopt_train_result r;
} train_cmd;

static int train_on_iter(const blo_task_iter *it, void *user) {
    cli_task *t = user;
    char status[96];
    snprintf(status, sizeof status, "window loss %.4f  |dF/dx| %.3g", it->rec.upper,
             it->rec.hypergrad_norm);
    double row[5] = {(double)it->rec.iter, it->rec.upper, it->rec.hypergrad_norm, it->rec.seconds,
                     (double)it->rec.peak_bytes};
    cli_task_iter(t, &it->rec, status, row);
    return 0;
}

static bool train_configure(cli_task *t) {
    train_cmd *m = t->user;
    blo_learnopt_config *c = &m->c;
    lo_task_config(&c->task, &m->a, t);
    c->opt_hidden = m->opt_hidden;
    c->reset_every = m->reset_every;
    c->init_step = m->init_step;
    c->save = m->out;
    c->start = m->start && *m->start ? m->start : NULL;
    /* The window is reversed through whole unless --trhg-window says otherwise. */
    if (t->sa.trhg_window == m->trhg_window_default && t->sa.K < 0)
        c->solver.trhg_window = c->solver.inner_steps;
    c->resume = t->sa.resume;
    c->solver.seed = c->task.seed;
    c->on_iter = train_on_iter;
    c->user = t;
    return true;
}

static blo_status train_run(cli_task *t, char *err, size_t errlen) {
    train_cmd *m = t->user;
    const blo_learnopt_config *c = &m->c;
    if (!t->quiet)
        fprintf(stderr,
                "learnopt train: %s over windows of K = %d steps, a fresh optimizee every %lld "
                "windows (T = %lld), %lld windows; optimizee 784-%lldx%lld-10, batch %lld\n",
                c->solver.method, c->solver.inner_steps, m->reset_every,
                m->reset_every * c->solver.inner_steps, (long long)c->solver.outer_iters,
                m->a.hidden, m->a.layers, m->a.batch);
    return blo_learnopt_train(c, &m->r, err, errlen);
}

static int train_summary(cli_task *t) {
    const train_cmd *m = t->user;
    const blo_learnopt_train_result *r = &m->r;
    if (t->json) {
        printf("{\"task\":\"learnopt_train\",\"method\":");
        cli_json_string(stdout, m->c.solver.method);
        printf(",\"window\":%d,\"reset_every\":%lld,\"iters\":%lld,\"optimizer\":",
               m->c.solver.inner_steps, m->reset_every, (long long)r->iters);
        cli_json_string(stdout, m->out);
        const char *keys[] = {"upper", "first_trajectory", "last_trajectory", "step", "seconds"};
        double vals[] = {r->upper, r->first_traj, r->last_traj, r->step, r->seconds};
        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
            printf(",\"%s\":", keys[i]);
            cli_json_number(stdout, vals[i]);
        }
        printf(",\"peak_bytes\":%zu}\n", r->peak_bytes);
        return CLI_EXIT_OK;
    }
    printf("learnopt train: %s, %lld windows of %d steps, %.1f s\n", m->c.solver.method,
           (long long)r->iters, m->c.solver.inner_steps, r->seconds);
    printf("  mean window loss, first trajectory  %.4f\n", r->first_traj);
    printf("  mean window loss, last trajectory   %.4f\n", r->last_traj);
    printf("  step scale e^l                      %.4g\n", r->step);
    printf("  optimizer written to                %s\n", m->out);
    if (t->plot) printf("  plot: %s\n", t->plot);
    return CLI_EXIT_OK;
}

static const char *const TRAIN_COLS[5] = {"iter", "upper", "hypergrad_norm", "seconds",
                                          "peak_bytes"};
static const cli_task_def TRAIN = {"learnopt train", 5, TRAIN_COLS, train_configure, train_run,
                                   train_summary, NULL};

static int run_train(const cli_cmd *cmd, int argc, char **argv) {
    train_cmd m;
    memset(&m, 0, sizeof m);
    m.c = blo_learnopt_default();
    lo_task_args_from(&m.a, &m.c.task, cli_default_data());
    m.opt_hidden = m.c.opt_hidden, m.reset_every = m.c.reset_every, m.init_step = m.c.init_step;
    m.out = "learnopt.blo";
    m.start = NULL;
    m.trhg_window_default = m.c.solver.trhg_window;
    cli_task t;
    cli_task_init(&t, &TRAIN, cmd, &m.c.solver, &m);
    t.threads = 1;
    cli_task_output(&t, "--out", &m.out);
    cli_opt opts[5 + LO_TASK_NOPTS + CLI_TASK_NOPTS] = {
        {"--out", NULL, CLI_STRING, &m.out, 0, 0, NULL, "FILE", "where the optimizer is written"},
        {"--start", NULL, CLI_STRING, &m.start, 0, 0, NULL, "FILE",
         "an optimizer file to continue from (default: Adam-like start)"},
        {"--opt-hidden", NULL, CLI_INT, &m.opt_hidden, 1, 4096, NULL, "H",
         "hidden width of the optimizer's MLP"},
        {"--init-step", NULL, CLI_DOUBLE, &m.init_step, 1e-12, 10, NULL, "S",
         "the starting step scale e^l (the start is Adam with this lr)"},
        {"--reset-every", NULL, CLI_INT, &m.reset_every, 1, 1e9, NULL, "R",
         "windows per trajectory: a fresh optimizee after R windows of --inner steps"},
    };
    int n = lo_task_opts(opts, 5, &m.a);
    return cli_task_main(&t, argc, argv, opts, cli_task_opts(&t, opts, n));
}

/* ---- apply --------------------------------------------------------------------------------- */

typedef struct apply_cmd {
    blo_learnopt_apply_config c;
    lo_task_args a;
    const char *optimizer, *baseline;
    long long steps, eval_every;
    double lr, momentum;
    blo_learnopt_apply_result r;
} apply_cmd;

static int apply_on_iter(const blo_task_iter *it, void *user) {
    cli_task *t = user;
    char status[96];
    snprintf(status, sizeof status, "loss %.4f  mean %.4f  test acc %.2f%%", it->rec.lower,
             it->rec.upper, 100 * it->test_acc);
    double row[5] = {(double)it->rec.iter + 1, it->rec.upper, it->rec.lower, it->test_acc,
                     it->rec.seconds};
    cli_task_step(t, it->rec.iter + 1, status, row);
    return 0;
}

static bool apply_configure(cli_task *t) {
    apply_cmd *m = t->user;
    blo_learnopt_apply_config *c = &m->c;
    lo_task_config(&c->task, &m->a, t);
    bool file = m->optimizer && *m->optimizer;
    if (file == (m->baseline && *m->baseline)) {
        fprintf(stderr, "blo learnopt apply: give --optimizer FILE or --baseline "
                        "sgd|momentum|nesterov|adam (one of them)\n");
        return false;
    }
    c->optimizer = file ? m->optimizer : NULL;
    if (!file) {
        c->baseline = blo_opt_sgd(m->lr);
        c->baseline.kind = (blo_opt_kind)blo_opt_kind_parse(m->baseline);
        c->baseline.momentum = m->momentum;
    }
    c->steps = m->steps;
    c->eval_every = m->eval_every;
    c->on_iter = apply_on_iter;
    c->user = t;
    t->total = m->steps;
    return true;
}

static blo_status apply_run(cli_task *t, char *err, size_t errlen) {
    apply_cmd *m = t->user;
    if (!t->quiet) {
        char what[600];
        if (m->c.optimizer)
            snprintf(what, sizeof what, "the learned optimizer %s", m->c.optimizer);
        else
            snprintf(what, sizeof what, "%s lr %g", m->baseline, m->lr);
        fprintf(stderr, "learnopt apply: %s, %lld steps, optimizee 784-%lldx%lld-10, batch %lld\n",
                what, m->steps, m->a.hidden, m->a.layers, m->a.batch);
    }
    return blo_learnopt_apply(&m->c, &m->r, err, errlen);
}

static int apply_summary(cli_task *t) {
    const apply_cmd *m = t->user;
    const blo_learnopt_apply_result *r = &m->r;
    if (t->json) {
        printf("{\"task\":\"learnopt_apply\",\"optimizer\":");
        cli_json_string(stdout, m->c.optimizer ? m->c.optimizer : m->baseline);
        printf(",\"lr\":");
        cli_json_number(stdout, m->c.optimizer ? NAN : m->lr);
        printf(",\"steps\":%lld,\"hidden\":%lld,\"layers\":%lld,\"seed\":%lld", m->steps,
               m->a.hidden, m->a.layers, m->a.seed);
        const char *keys[] = {"mean_loss", "train_loss", "test_acc", "seconds"};
        double vals[] = {r->mean_loss, r->train_loss, r->test_acc, r->seconds};
        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
            printf(",\"%s\":", keys[i]);
            cli_json_number(stdout, vals[i]);
        }
        printf("}\n");
        return CLI_EXIT_OK;
    }
    printf("learnopt apply: %s, %lld steps, %.1f s\n",
           m->c.optimizer ? m->c.optimizer : m->baseline, (long long)r->steps, r->seconds);
    printf("  mean minibatch loss along the run   %.4f\n", r->mean_loss);
    printf("  training loss at the end            %.4f\n", r->train_loss);
    printf("  test accuracy at the end            %.2f %%\n", 100 * r->test_acc);
    if (t->plot) printf("  plot: %s\n", t->plot);
    return CLI_EXIT_OK;
}

/* The columns `blo plot` draws: iter is the step, upper the mean minibatch loss so far, lower
 * the step's minibatch loss. */
static const char *const APPLY_COLS[5] = {"iter", "upper", "lower", "test_acc", "seconds"};
static const cli_task_def APPLY = {"learnopt apply", 5, APPLY_COLS, apply_configure, apply_run,
                                   apply_summary, NULL};

static int run_apply(const cli_cmd *cmd, int argc, char **argv) {
    apply_cmd m;
    memset(&m, 0, sizeof m);
    blo_learnopt_config d = blo_learnopt_default();
    d.task.seed = 1; /* an optimizee the default meta-training never drew */
    lo_task_args_from(&m.a, &d.task, cli_default_data());
    m.optimizer = "";
    m.baseline = "";
    m.steps = (long long)d.solver.inner_steps * d.reset_every;
    m.eval_every = 0;
    m.lr = 0.01;
    m.momentum = 0.9;
    cli_task t;
    cli_task_init(&t, &APPLY, cmd, NULL, &m);
    t.threads = 1;
    cli_opt opts[6 + LO_TASK_NOPTS + CLI_TASK_NOPTS] = {
        {"--optimizer", NULL, CLI_STRING, &m.optimizer, 0, 0, NULL, "FILE",
         "a learned optimizer (blo learnopt train --out)"},
        {"--baseline", NULL, CLI_CHOICE, &m.baseline, 0, 0, "sgd|momentum|nesterov|adam", "O",
         "a hand-made optimizer instead of --optimizer"},
        {"--lr", NULL, CLI_DOUBLE, &m.lr, 1e-12, 1e6, NULL, "LR", "--baseline's step size"},
        {"--momentum", NULL, CLI_DOUBLE, &m.momentum, 0, 0.999999, NULL, "MU",
         "--baseline momentum / nesterov: mu"},
        {"--steps", NULL, CLI_INT, &m.steps, 1, 1e9, NULL, "N", "training steps"},
        {"--eval-every", NULL, CLI_INT, &m.eval_every, 0, 1e9, NULL, "N",
         "test accuracy (and a --log row) every N steps (0: at the end)"},
    };
    int n = lo_task_opts(opts, 6, &m.a);
    return cli_task_main(&t, argc, argv, opts, cli_task_opts(&t, opts, n));
}

int cli_learnopt_run(const cli_cmd *cmd, int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "train")) return run_train(cmd, argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "apply")) return run_apply(cmd, argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: blo learnopt train|apply [options]   (blo learnopt train --help lists "
               "them)\n\n%s\n",
               cmd->help);
        return CLI_EXIT_OK;
    }
    fprintf(stderr,
            "blo learnopt: %s '%s'; the subcommands are 'train' and 'apply' (blo learnopt "
            "--help)\n",
            argc >= 2 ? "unknown subcommand" : "missing subcommand", argc >= 2 ? argv[1] : "");
    return CLI_EXIT_USAGE;
}
