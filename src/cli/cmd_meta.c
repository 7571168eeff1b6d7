/* cmd_meta.c — `blo meta sinusoid`: meta-learning an initialisation (MAML family) on sinusoid
 * regression, and `blo meta fewshot`: few-shot classification over rotation classes (MAML,
 * meta feature learning, the pretrained baseline), from the command line: thin layers over
 * blo_meta_sinusoid_run and blo_fewshot_run (blo/meta.h, blo/fewshot.h): their options, progress
 * status and summary in the task frame. */
#include "task_frame.h"

#include "blo/blo.h"
#include "blo/fewshot.h"
#include "blo/meta.h"

#include <math.h>
#include <string.h>

/* Both subcommands log the solver's record per outer iteration (pretrain: per Adam step). */
static const char *const META_COLS[6] = {"iter",    "upper",     "lower", "hypergrad_norm",
                                         "seconds", "peak_bytes"};

/* The progress status names what F is: "query MSE", "query CE". */
static int meta_on_iter(cli_task *t, const blo_task_iter *it, const char *upper_name) {
    char status[128];
    snprintf(status, sizeof status, "%s %.4f  |dF/dθ| %.3g", upper_name, it->rec.upper,
             it->rec.hypergrad_norm);
    double row[6] = {(double)it->rec.iter, it->rec.upper, it->rec.lower,
                     it->rec.hypergrad_norm, it->rec.seconds, (double)it->rec.peak_bytes};
    cli_task_iter(t, &it->rec, status, row);
    return 0;
}
static int sin_on_iter(const blo_task_iter *it, void *user) {
    return meta_on_iter(user, it, "query MSE");
}
static int fs_on_iter(const blo_task_iter *it, void *user) {
    return meta_on_iter(user, it, "query CE");
}

/* --init: the start is θ itself (or a zero head); the others do not apply. */
static bool meta_init_ok(const cli_task *t, const char *what) {
    if (t->solver->init == BLO_INIT_FIXED || t->solver->init == BLO_INIT_FROM_X) return true;
    fprintf(stderr, "blo %s: --init: the start is %s; '%s' does not apply\n", t->def->name, what,
            blo_init_kind_name(t->solver->init));
    return false;
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

typedef struct sin_cmd {
    blo_meta_sinusoid_config c;
    long long shots, batch, width, eval_tasks, eval_query, seed;
    double prox;
    int no_baseline, meta_sgd;
    blo_meta_sinusoid_result r;
} sin_cmd;

static bool sin_configure(cli_task *t) {
    sin_cmd *m = t->user;
    blo_meta_sinusoid_config *c = &m->c;
    if (!meta_init_ok(t, "theta itself (from_x)")) return false;
    c->solver.init = BLO_INIT_FROM_X;
    c->shots = m->shots;
    c->meta_batch = m->batch;
    c->width = m->width;
    c->prox = m->prox;
    c->meta_sgd = m->meta_sgd;
    c->eval_tasks = m->eval_tasks;
    c->eval_query = m->eval_query;
    c->baseline = !m->no_baseline;
    CLI_TASK_CONFIGURE(c, t, m->seed, sin_on_iter);
    return true;
}

static blo_status sin_run(cli_task *t, char *err, size_t errlen) {
    sin_cmd *m = t->user;
    const blo_meta_sinusoid_config *c = &m->c;
    if (!t->quiet)
        fprintf(stderr, "meta sinusoid: %s%s, K = %lld shots, meta-batch %lld, T = %d inner "
                        "steps (lr %g), %lld outer iterations\n", c->solver.method,
                m->meta_sgd ? " + Meta-SGD" : "", m->shots, m->batch, c->solver.inner_steps,
                c->solver.inner.lr, (long long)c->solver.outer_iters);
    return blo_meta_sinusoid_run(c, &m->r, err, errlen);
}

static int sin_summary(cli_task *t) {
    const sin_cmd *m = t->user;
    const blo_meta_sinusoid_config *c = &m->c;
    const blo_meta_sinusoid_result *r = &m->r;
    if (t->json) {
        printf("{\"task\":\"meta_sinusoid\",\"method\":");
        cli_json_string(stdout, c->solver.method);
        printf(",\"meta_sgd\":%s,\"shots\":%lld,\"meta_batch\":%lld,\"inner_steps\":%d,"
               "\"inner_lr\":",
               m->meta_sgd ? "true" : "false", m->shots, m->batch, c->solver.inner_steps);
        cli_json_number(stdout, c->solver.inner.lr);
        printf(",\"prox\":");
        cli_json_number(stdout, m->prox);
        printf(",\"iters\":%lld,\"eval_tasks\":%lld", (long long)r->iters, m->eval_tasks);
        json_steps("mse", r->mse);
        json_steps("mse_ci95", r->ci);
        json_steps("baseline_mse", r->base_mse);
        json_steps("baseline_mse_ci95", r->base_ci);
        printf(",\"upper\":");
        cli_json_number(stdout, r->upper);
        printf(",\"seconds\":");
        cli_json_number(stdout, r->seconds);
        printf(",\"peak_bytes\":%zu}\n", r->peak_bytes);
        return CLI_EXIT_OK;
    }
    printf("meta sinusoid: %s%s, %lld-shot, %lld iterations, %.1f s; MSE on %lld held-out tasks "
           "(mean ± 95%% CI)\n", c->solver.method, m->meta_sgd ? " + Meta-SGD" : "", m->shots,
           (long long)r->iters, r->seconds, m->eval_tasks);
    printf("  %-22s", "test-time SGD steps");
    for (int e = 0; e < BLO_META_EVAL_STEPS; e++) printf("  %15d", blo_meta_eval_steps[e]);
    printf("\n");
    table_row("meta-learned init", r->mse, r->ci);
    table_row("pretrained baseline", r->base_mse, r->base_ci);
    if (t->plot) printf("  plot: %s\n", t->plot);
    return CLI_EXIT_OK;
}

static const cli_task_def SINUSOID = {"meta sinusoid", 6, META_COLS, sin_configure, sin_run,
                                      sin_summary, NULL};

static int run_sinusoid(const cli_cmd *cmd, int argc, char **argv) {
    sin_cmd m;
    memset(&m, 0, sizeof m);
    m.c = blo_meta_sinusoid_default();
    m.c.solver.outer_iters = 2000; /* minutes on 2 cores; the protocol's 70000 with --outer */
    m.shots = m.c.shots, m.batch = m.c.meta_batch, m.width = m.c.width;
    m.eval_tasks = m.c.eval_tasks, m.eval_query = m.c.eval_query;
    cli_task t;
    cli_task_init(&t, &SINUSOID, cmd, &m.c.solver, &m);
    t.threads = 1;
    cli_opt opts[9 + CLI_TASK_NOPTS] = {
        {"--shots", NULL, CLI_INT, &m.shots, 1, 1e6, NULL, "K", "support (and query) points per task"},
        {"--meta-batch", NULL, CLI_INT, &m.batch, 1, 1e6, NULL, "B", "tasks per outer iteration"},
        {"--width", NULL, CLI_INT, &m.width, 1, 1e5, NULL, "H", "hidden width of the MLP 1-H-H-1"},
        {"--prox", NULL, CLI_DOUBLE, &m.prox, 0, 1e12, NULL, "L",
         "iMAML: add L/2 |y - theta|^2 to the lower level (use with --method cg)"},
        {"--meta-sgd", NULL, CLI_FLAG, &m.meta_sgd, 0, 0, NULL, NULL,
         "Meta-SGD: learn one inner step size per parameter (start: --inner-lr)"},
        {"--eval-tasks", NULL, CLI_INT, &m.eval_tasks, 1, 1e9, NULL, "N", "held-out tasks"},
        {"--eval-query", NULL, CLI_INT, &m.eval_query, 1, 1e6, NULL, "N",
         "query points per held-out task"},
        {"--no-baseline", NULL, CLI_FLAG, &m.no_baseline, 0, 0, NULL, NULL,
         "skip the pretrained baseline (one network fitted to all tasks, then fine-tuned)"},
        {"--seed", NULL, CLI_INT, &m.seed, 0, 9e18, NULL, "S", "initial weights, training and held-out tasks"},
    };
    return cli_task_main(&t, argc, argv, opts, cli_task_opts(&t, opts, 9));
}

typedef struct fs_cmd {
    blo_fewshot_config c;
    long long train_classes, ways, shots, queries, batch, hidden, layers, episodes, eval_steps,
        pre_steps, pre_batch, seed, image_size, rotations;
    double head_l2, pre_lr;
    const char *split, *learner, *class_split;
    int normalize;
    blo_fewshot_result r;
} fs_cmd;

static bool fs_configure(cli_task *t) {
    fs_cmd *m = t->user;
    blo_fewshot_config *c = &m->c;
    c->learner = (blo_fewshot_learner)blo_fewshot_learner_parse(m->learner);
    c->class_split = (blo_fewshot_split)blo_fewshot_split_parse(m->class_split);
    if (c->learner == BLO_FEWSHOT_PRETRAIN && t->sa.resume) {
        fprintf(stderr, "blo meta fewshot: --resume: the pretrained baseline is no bilevel run "
                        "and does not resume\n");
        return false;
    }
    if (!meta_init_ok(t, "theta itself (maml) or a zero head (hyperrep)")) return false;
    if (c->learner != BLO_FEWSHOT_MAML && (m->hidden < 1 || !(m->head_l2 > 0))) {
        fprintf(stderr, "blo meta fewshot: --learner %s needs --hidden >= 1 and --head-l2 > 0\n",
                m->learner);
        return false;
    }
    if (m->rotations != 1 && m->rotations != 4) {
        fprintf(stderr, "blo meta fewshot: --rotations %lld: 1 or 4\n", m->rotations);
        return false;
    }
    if (c->class_split == BLO_FEWSHOT_SPLIT_BASE && m->train_classes % m->rotations) {
        fprintf(stderr, "blo meta fewshot: --train-classes %lld: the split by base class keeps "
                        "the %lld rotations of a base class together, so it takes a multiple of "
                        "%lld (or --class-split class)\n", m->train_classes, m->rotations,
                m->rotations);
        return false;
    }
    if (c->learner == BLO_FEWSHOT_PRETRAIN && !(m->pre_lr > 0)) {
        fprintf(stderr, "blo meta fewshot: --pretrain-lr must be > 0\n");
        return false;
    }
    c->split = m->split;
    c->image_side = m->image_size;
    c->rotations = (int)m->rotations;
    c->train_classes = m->train_classes;
    c->ways = m->ways;
    c->shots = m->shots;
    c->queries = m->queries;
    c->meta_batch = m->batch;
    c->hidden = m->hidden;
    c->layers = (int)m->layers;
    c->head_l2 = m->head_l2;
    c->normalize = m->normalize;
    c->eval_episodes = m->episodes;
    c->eval_steps = (int)m->eval_steps;
    c->pretrain_steps = m->pre_steps;
    c->pretrain_batch = m->pre_batch;
    c->pretrain_lr = m->pre_lr;
    CLI_TASK_CONFIGURE(c, t, m->seed, fs_on_iter);
    if (c->learner == BLO_FEWSHOT_PRETRAIN) t->total = c->pretrain_steps;
    return true;
}

static blo_status fs_run(cli_task *t, char *err, size_t errlen) {
    fs_cmd *m = t->user;
    const blo_fewshot_config *c = &m->c;
    if (!t->quiet) {
        if (c->learner == BLO_FEWSHOT_PRETRAIN)
            fprintf(stderr, "meta fewshot: pretrain, %lld Adam steps (lr %g) on minibatches of "
                            "%lld over the meta-train classes; %lld-way %lld-shot evaluation\n",
                    m->pre_steps, m->pre_lr, m->pre_batch, m->ways, m->shots);
        else
            fprintf(stderr, "meta fewshot: %s %s, %lld-way %lld-shot (%lld queries), meta-batch "
                            "%lld, T = %d inner steps (lr %g), %lld outer iterations\n", m->learner,
                    c->solver.method, m->ways, m->shots, m->queries, m->batch,
                    c->solver.inner_steps, c->solver.inner.lr, (long long)c->solver.outer_iters);
    }
    return blo_fewshot_run(c, &m->r, err, errlen);
}

static int fs_summary(cli_task *t) {
    const fs_cmd *m = t->user;
    const blo_fewshot_config *c = &m->c;
    const blo_fewshot_result *r = &m->r;
    int pre = c->learner == BLO_FEWSHOT_PRETRAIN;
    long long ways = m->ways, shots = m->shots, episodes = m->episodes;
    int steps = c->eval_steps < 0 ? c->solver.inner_steps : c->eval_steps;
    if (t->json) {
        printf("{\"task\":\"meta_fewshot\",\"learner\":");
        cli_json_string(stdout, m->learner);
        printf(",\"method\":");
        cli_json_string(stdout, pre ? "adam" : c->solver.method);
        printf(",\"class_split\":");
        cli_json_string(stdout, m->class_split);
        printf(",\"ways\":%lld,\"shots\":%lld,\"queries\":%lld,\"meta_batch\":%lld,"
               "\"hidden\":%lld,\"layers\":%lld,\"head_l2\":",
               ways, shots, m->queries, m->batch, m->hidden, m->layers);
        cli_json_number(stdout, c->learner == BLO_FEWSHOT_MAML ? NAN : m->head_l2);
        printf(",\"normalize\":%s,\"inner_steps\":%d,\"inner_lr\":",
               m->normalize ? "true" : "false", c->solver.inner_steps);
        cli_json_number(stdout, c->solver.inner.lr);
        printf(",\"rotations\":%lld,\"classes\":%lld,\"train_classes\":%lld,"
               "\"test_classes\":%lld,\"side\":%lld", m->rotations, (long long)r->n_classes,
               (long long)r->n_train, (long long)r->n_test, (long long)r->side);
        printf(",\"iters\":%lld,\"eval_episodes\":%lld,\"eval_steps\":%d,\"acc\":",
               (long long)r->iters, episodes, steps);
        cli_json_number(stdout, r->acc);
        printf(",\"acc_ci95\":");
        cli_json_number(stdout, r->ci);
        printf(",\"acc_before\":");
        cli_json_number(stdout, r->acc0);
        printf(",\"upper\":");
        cli_json_number(stdout, r->upper);
        printf(",\"seconds\":");
        cli_json_number(stdout, r->seconds);
        printf(",\"peak_bytes\":%zu}\n", r->peak_bytes);
        return CLI_EXIT_OK;
    }
    printf("meta fewshot: %s (%s), %lld-way %lld-shot on %lld rotation classes of %lldx%lld "
           "images (split by %s: %lld meta-train / %lld meta-test), %lld %s, %.1f s\n",
           m->learner, pre ? "adam" : c->solver.method, ways, shots, (long long)r->n_classes,
           (long long)r->side, (long long)r->side, m->class_split, (long long)r->n_train,
           (long long)r->n_test, (long long)r->iters, pre ? "steps" : "iterations", r->seconds);
    if (c->learner == BLO_FEWSHOT_MAML)
        printf("  meta-test query accuracy over %lld episodes: %.3f ± %.3f after %d SGD steps "
               "(%.3f ± %.3f before; chance %.3f)\n", episodes, r->acc, r->ci, steps, r->acc0,
               r->ci0, 1.0 / (double)ways);
    else
        printf("  meta-test query accuracy over %lld episodes: %.3f ± %.3f with a head fitted by "
               "%d SGD steps (chance %.3f)\n", episodes, r->acc, r->ci, steps, 1.0 / (double)ways);
    if (t->plot) printf("  plot: %s\n", t->plot);
    return CLI_EXIT_OK;
}

static const cli_task_def FEWSHOT = {"meta fewshot", 6, META_COLS, fs_configure, fs_run,
                                     fs_summary, NULL};

static int run_fewshot(const cli_cmd *cmd, int argc, char **argv) {
    fs_cmd m;
    memset(&m, 0, sizeof m);
    blo_fewshot_config *c = &m.c;
    *c = blo_fewshot_default();
    c->data_dir = cli_default_data();
    m.train_classes = c->train_classes, m.ways = c->ways, m.shots = c->shots;
    m.queries = c->queries, m.batch = c->meta_batch, m.hidden = c->hidden, m.layers = c->layers;
    m.episodes = c->eval_episodes, m.eval_steps = -1, m.pre_steps = c->pretrain_steps;
    m.pre_batch = c->pretrain_batch, m.image_size = c->image_side, m.rotations = c->rotations;
    m.head_l2 = c->head_l2, m.pre_lr = c->pretrain_lr;
    m.split = "train", m.learner = "maml", m.class_split = "base";
    cli_task t;
    cli_task_init(&t, &FEWSHOT, cmd, &c->solver, &m);
    t.threads = 1;
    cli_opt opts[22 + CLI_TASK_NOPTS] = {
        {"--learner", NULL, CLI_CHOICE, &m.learner, 0, 0, "maml|hyperrep|pretrain", "L",
         "maml: learn the start of the whole network; hyperrep: learn the body, a head per "
         "episode; pretrain: the baseline"},
        {"--data", NULL, CLI_STRING, &c->data_dir, 0, 0, NULL, "DIR",
         "MNIST-layout folder" CLI_DATA_HELP},
        {"--split", NULL, CLI_CHOICE, &m.split, 0, 0, "train|t10k", "S", "which file pair"},
        {"--images", NULL, CLI_STRING, &c->images_dir, 0, 0, NULL, "DIR",
         "a class-per-folder PNG tree (DIR/<class>/*.png) instead of --data"},
        {"--image-size", NULL, CLI_INT, &m.image_size, 0, 4096, NULL, "S",
         "--images resized to S x S (0: as they are, all square and of one size)"},
        {"--rotations", NULL, CLI_INT, &m.rotations, 1, 4, NULL, "R",
         "classes per base class: 4 (at 0/90/180/270 degrees) or 1"},
        {"--class-split", NULL, CLI_CHOICE, &m.class_split, 0, 0, "base|class", "S",
         "base: all rotations of a base class on one side (no image on both); class: "
         "rotation classes split one by one"},
        {"--train-classes", NULL, CLI_INT, &m.train_classes, 0, 1e6, NULL, "N",
         "meta-train rotation classes, the rest meta-test (base split: a multiple of R)"},
        {"--ways", NULL, CLI_INT, &m.ways, 2, 256, NULL, "N", "classes per episode"},
        {"--shots", NULL, CLI_INT, &m.shots, 1, 1e6, NULL, "K", "support images per class"},
        {"--queries", NULL, CLI_INT, &m.queries, 1, 1e6, NULL, "Q", "query images per class"},
        {"--meta-batch", NULL, CLI_INT, &m.batch, 1, 1e6, NULL, "B", "episodes per outer iteration"},
        {"--hidden", NULL, CLI_INT, &m.hidden, 0, 1e5, NULL, "H",
         "width of the body's layers (0: a linear network, maml only)"},
        {"--layers", NULL, CLI_INT, &m.layers, 1, BLO_FEWSHOT_MAX_LAYERS, NULL, "L",
         "hidden layers of the body (ReLU after each)"},
        {"--head-l2", NULL, CLI_DOUBLE, &m.head_l2, 0, 1e12, NULL, "LAMBDA",
         "hyperrep / pretrain: lambda/2 |head|^2 in every head fit (> 0)"},
        {"--normalize", NULL, CLI_FLAG, &m.normalize, 0, 0, NULL, NULL,
         "scale the body's features to unit length before the head (keeps fixed head steps "
         "stable)"},
        {"--eval-episodes", NULL, CLI_INT, &m.episodes, 1, 1e9, NULL, "N", "meta-test episodes"},
        {"--eval-steps", NULL, CLI_INT, &m.eval_steps, -1, 1e6, NULL, "T",
         "SGD steps (--inner-lr) per meta-test episode (-1: --inner)"},
        {"--pretrain-steps", NULL, CLI_INT, &m.pre_steps, 0, 1e9, NULL, "N",
         "pretrain: Adam steps over all meta-train classes"},
        {"--pretrain-batch", NULL, CLI_INT, &m.pre_batch, 1, 1e6, NULL, "N", "pretrain: minibatch"},
        {"--pretrain-lr", NULL, CLI_DOUBLE, &m.pre_lr, 0, 1e6, NULL, "LR", "pretrain: Adam lr"},
        {"--seed", NULL, CLI_INT, &m.seed, 0, 9e18, NULL, "S", "class split, weights, episodes"},
    };
    return cli_task_main(&t, argc, argv, opts, cli_task_opts(&t, opts, 22));
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
