/* cmd_causal.c — `blo causal`: TARNet / CFR-MMD on IHDP or a user's CSV, trained plainly or
 * tuned by a bilevel solve, scored per replication and as mean ± standard error; a thin layer
 * over blo_causal_run (include/blo/causal.h) in the task frame. */
#include "task_frame.h"

#include "blo/blo.h"
#include "blo/causal.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_REPS 10

typedef struct causal_cmd {
    blo_causal_config c;
    const char *source, *model, *tune, *criterion, *ipm;
    const char *treatment, *outcome, *covariates, *mu0, *mu1;
    long long reps, rep, rep_layers, rep_width, head_layers, head_width, steps, batch, seed,
        grid_steps, inner_batch;
    double alpha, l2, lr, wass_lambda, rbf_sigma;
    long long wass_iters;
    int no_reweight, normalize, keep_best;
    const char *grid, *effects;
    double gridv[16];
    int nres;
    blo_causal_result r[MAX_REPS];
    long long rep_no[MAX_REPS]; /* the replication of r[i] */
} causal_cmd;

static bool cc_configure(cli_task *t) {
    causal_cmd *h = t->user;
    blo_causal_config *c = &h->c;
    c->net.rep_layers = (int)h->rep_layers, c->net.rep_width = (int)h->rep_width;
    c->net.head_layers = (int)h->head_layers, c->net.head_width = (int)h->head_width;
    c->net.alpha = strcmp(h->model, "cfr") ? 0.0 : h->alpha;
    c->net.l2 = h->l2, c->net.lr = h->lr, c->net.steps = h->steps, c->net.batch = h->batch;
    c->net.seed = (uint64_t)h->seed;
    c->net.reweight = !h->no_reweight, c->net.normalize = h->normalize;
    c->net.ipm = !strcmp(h->ipm, "wass")  ? BLO_CAUSAL_IPM_WASS
                 : !strcmp(h->ipm, "rbf") ? BLO_CAUSAL_IPM_RBF
                                          : BLO_CAUSAL_IPM_MMD;
    c->net.wass_lambda = h->wass_lambda, c->net.wass_iters = (int)h->wass_iters;
    c->net.rbf_sigma = h->rbf_sigma;
    c->solver.seed = (uint64_t)h->seed;
    c->tune = !strcmp(h->tune, "hyper")     ? BLO_CAUSAL_TUNE_HYPER
              : !strcmp(h->tune, "alpha")   ? BLO_CAUSAL_TUNE_ALPHA
              : !strcmp(h->tune, "weights") ? BLO_CAUSAL_TUNE_WEIGHTS
              : !strcmp(h->tune, "grid")    ? BLO_CAUSAL_TUNE_GRID
              : !strcmp(h->tune, "grid-alpha") ? BLO_CAUSAL_TUNE_GRID_ALPHA
                                            : BLO_CAUSAL_TUNE_NONE;
    c->ngrid = 0;
    bool grid = c->tune == BLO_CAUSAL_TUNE_GRID || c->tune == BLO_CAUSAL_TUNE_GRID_ALPHA;
    double lo = c->tune == BLO_CAUSAL_TUNE_GRID_ALPHA ? 1e-300 : 0;
    if (grid && !cli_parse_doubles(h->grid, lo, 16, h->gridv, &c->ngrid)) {
        fprintf(stderr, "blo causal: bad value '%s' for --grid: expected up to 16 "
                        "comma-separated α %s 0\n", h->grid, lo > 0 ? ">" : ">=");
        return false;
    }
    c->grid_steps = h->grid_steps;
    c->inner_batch = h->inner_batch;
    c->keep_best = h->keep_best;
    c->grid = h->gridv;
    c->criterion = strcmp(h->criterion, "factual") ? BLO_CAUSAL_NN : BLO_CAUSAL_FACTUAL;
    if ((c->tune == BLO_CAUSAL_TUNE_HYPER || c->tune == BLO_CAUSAL_TUNE_ALPHA) && c->net.alpha <= 0) {
        fprintf(stderr, "blo causal: --tune %s learns the IPM weight α: use --model cfr "
                        "with --alpha > 0\n",
                h->tune);
        return false;
    }
    if (t->sa.checkpoint || t->sa.resume) {
        fprintf(stderr, "blo causal: --%s: this task keeps no checkpoints (every replication "
                        "runs its own bilevel phase; --rep K reruns one)\n",
                t->sa.resume ? "resume" : "checkpoint");
        return false;
    }
    bool ihdp = !strcmp(h->source, "ihdp");
    if (!ihdp && (!h->treatment || !h->outcome)) {
        fprintf(stderr, "blo causal: --data %s: a CSV needs --treatment and --outcome (column "
                        "names of its header)\n",
                h->source);
        return false;
    }
    if (!ihdp && !h->mu0 != !h->mu1) {
        fprintf(stderr, "blo causal: give --mu0 and --mu1 together, or neither\n");
        return false;
    }
    if (!ihdp) h->reps = 1;
    if (h->rep > 0 && !ihdp) {
        fprintf(stderr, "blo causal: --rep picks an IHDP replication; --data %s is one data set\n",
                h->source);
        return false;
    }
    t->total = h->rep > 0 ? 1 : h->reps;
    return true;
}

/* The committed IHDP replication k (1-based): the installed copy, else the source tree's. */
static void ihdp_path(char *p, size_t n, long long k) {
    snprintf(p, n, "%s/ihdp/ihdp_npci_%lld.csv", BLO_DATA_INSTALL, k);
    if (access(p, R_OK)) snprintf(p, n, "%s/ihdp/ihdp_npci_%lld.csv", BLO_DATA_SOURCE, k);
}

/* CFR (an IPM term in the loss): α > 0, or α chosen from a grid. */
static bool is_cfr(const causal_cmd *h) {
    return h->c.net.alpha > 0 || h->c.tune == BLO_CAUSAL_TUNE_GRID ||
           h->c.tune == BLO_CAUSAL_TUNE_GRID_ALPHA;
}

/* "TARNet", or "CFR-" and the IPM's name. */
static const char *model_name(const causal_cmd *h) {
    if (!is_cfr(h)) return "TARNet";
    return h->c.net.ipm == BLO_CAUSAL_IPM_WASS ? "CFR-Wass"
           : h->c.net.ipm == BLO_CAUSAL_IPM_RBF ? "CFR-RBF"
                                                 : "CFR-MMD";
}

/* --effects: one line per unit of replication k (the file started afresh when fresh). */
static blo_status write_effects(const char *path, long long k, int fresh, const blo_causal_data *d,
                                const double *tau, const signed char *part, char *err,
                                size_t errlen) {
    static const char *const PART[3] = {"train", "val", "test"};
    FILE *f = fopen(path, fresh ? "w" : "a");
    if (!f) {
        snprintf(err, errlen, "causal: cannot write --effects %s", path);
        return BLO_ERR_IO;
    }
    if (fresh) fprintf(f, "rep,unit,split,t,y,tau_hat,mu0,mu1\n");
    for (int64_t i = 0; i < d->n; i++)
        fprintf(f, "%lld,%lld,%s,%g,%.9g,%.9g,%.9g,%.9g\n", k, (long long)i, PART[part[i]],
                d->t[i], d->y[i], tau[i], d->mu0 ? d->mu0[i] : NAN, d->mu1 ? d->mu1[i] : NAN);
    if (fclose(f)) {
        snprintf(err, errlen, "causal: cannot write --effects %s", path);
        return BLO_ERR_IO;
    }
    return BLO_OK;
}

static blo_status cc_run(cli_task *t, char *err, size_t errlen) {
    causal_cmd *h = t->user;
    blo_causal_columns cols = {h->treatment, h->outcome, h->covariates, h->mu0, h->mu1};
    bool ihdp = !strcmp(h->source, "ihdp");
    if (!t->quiet)
        fprintf(stderr, "causal: %s, tune %s (criterion %s), %lld replication%s\n",
                model_name(h), h->tune, h->criterion, h->rep > 0 ? 1 : h->reps,
                h->reps > 1 && !h->rep ? "s" : "");
    long long first = h->rep > 0 ? h->rep : 1, last = h->rep > 0 ? h->rep : h->reps;
    for (long long k = first; k <= last; k++) {
        int slot = (int)(k - first);
        char path[1024];
        if (ihdp)
            ihdp_path(path, sizeof path, k);
        else
            snprintf(path, sizeof path, "%s", h->source);
        blo_causal_data d;
        blo_status st = blo_causal_load(path, ihdp ? NULL : &cols, &d, err, errlen);
        if (st) return st;
        h->c.split_seed = (uint64_t)h->seed + (uint64_t)k;
        double *tau = NULL;
        signed char *part = NULL;
        if (h->effects) {
            tau = malloc(sizeof(double) * (size_t)d.n);
            part = malloc((size_t)d.n);
            if (!tau || !part) st = BLO_ERR_NOMEM;
        }
        h->c.out_tau = tau, h->c.out_split = part;
        if (!st) st = blo_causal_run(&d, &h->c, &h->r[slot], err, errlen);
        if (!st && h->effects)
            st = write_effects(h->effects, k, k == first, &d, tau, part, err, errlen);
        h->c.out_tau = NULL, h->c.out_split = NULL;
        free(tau);
        free(part);
        blo_causal_data_free(&d);
        if (st) return st;
        h->nres = slot + 1;
        h->rep_no[slot] = k;
        const blo_causal_result *r = &h->r[slot];
        char status[160];
        snprintf(status, sizeof status, "rep %lld: sqrt PEHE in %.3f out %.3f", k, r->pehe_in,
                 r->pehe_out);
        double row[7] = {(double)k, r->pehe_in, r->pehe_out, r->ate_in, r->ate_out, r->criterion,
                         r->alpha};
        cli_task_step(t, slot + 1, status, row);
    }
    return BLO_OK;
}

/* Mean and standard error (s / √n) of field off over the results. */
static void mean_se(const causal_cmd *h, size_t off, double *m, double *se) {
    double s = 0, q = 0;
    for (int i = 0; i < h->nres; i++) s += *(const double *)((const char *)&h->r[i] + off);
    *m = s / h->nres;
    for (int i = 0; i < h->nres; i++) {
        double e = *(const double *)((const char *)&h->r[i] + off) - *m;
        q += e * e;
    }
    *se = h->nres > 1 ? sqrt(q / (h->nres - 1) / h->nres) : NAN;
}

static const size_t FIELDS[4] = {offsetof(blo_causal_result, pehe_in),
                                 offsetof(blo_causal_result, pehe_out),
                                 offsetof(blo_causal_result, ate_in),
                                 offsetof(blo_causal_result, ate_out)};
static const char *const NAMES[4] = {"pehe_in", "pehe_out", "ate_in", "ate_out"};

static int cc_summary(cli_task *t) {
    causal_cmd *h = t->user;
    double m[4], se[4];
    for (int j = 0; j < 4; j++) mean_se(h, FIELDS[j], &m[j], &se[j]);
    if (t->json) {
        printf("{\"task\":\"causal\",\"model\":\"%s\",\"ipm\":\"%s\",\"tune\":\"%s\","
               "\"criterion\":\"%s\",\"reps\":%d",
               is_cfr(h) ? "cfr" : "tarnet", h->ipm, h->tune, h->criterion, h->nres);
        for (int j = 0; j < 4; j++) {
            printf(",\"%s\":", NAMES[j]);
            cli_json_number(stdout, m[j]);
            printf(",\"%s_se\":", NAMES[j]);
            cli_json_number(stdout, se[j]);
        }
        printf(",\"per_rep\":[");
        for (int i = 0; i < h->nres; i++) {
            printf("%s[", i ? "," : "");
            for (int j = 0; j < 4; j++) {
                if (j) printf(",");
                cli_json_number(stdout, *(const double *)((const char *)&h->r[i] + FIELDS[j]));
            }
            printf("]");
        }
        printf("],\"alpha\":[");
        for (int i = 0; i < h->nres; i++) {
            if (i) printf(",");
            cli_json_number(stdout, h->r[i].alpha);
        }
        printf("]}\n");
        return CLI_EXIT_OK;
    }
    printf("causal effects: %s, tune %s (criterion %s)\n", model_name(h),
           h->tune, h->criterion);
    printf("  rep  PEHE^.5 in  PEHE^.5 out  eps_ATE in  eps_ATE out  criterion  alpha\n");
    for (int i = 0; i < h->nres; i++)
        printf("  %-4lld %10.3f %12.3f %11.3f %12.3f %10.4f  %.3g\n", h->rep_no[i],
               h->r[i].pehe_in, h->r[i].pehe_out, h->r[i].ate_in, h->r[i].ate_out,
               h->r[i].criterion, h->r[i].alpha);
    printf("  mean %10.3f %12.3f %11.3f %12.3f\n", m[0], m[1], m[2], m[3]);
    printf("  s.e. %10.3f %12.3f %11.3f %12.3f\n", se[0], se[1], se[2], se[3]);
    return CLI_EXIT_OK;
}

static const char *const CC_COLS[7] = {"rep",     "pehe_in",   "pehe_out", "ate_in",
                                       "ate_out", "criterion", "alpha"};
static const cli_task_def CC = {"causal", 7, CC_COLS, cc_configure, cc_run, cc_summary, NULL};

int cli_causal_run(const cli_cmd *cmd, int argc, char **argv) {
    causal_cmd h;
    memset(&h, 0, sizeof h);
    h.c = blo_causal_config_default();
    h.grid = "0.1,1,10", h.source = "ihdp", h.model = "tarnet", h.tune = "none", h.criterion = "nn";
    h.reps = MAX_REPS;
    h.rep_layers = h.c.net.rep_layers, h.rep_width = h.c.net.rep_width;
    h.head_layers = h.c.net.head_layers, h.head_width = h.c.net.head_width;
    h.steps = h.c.net.steps, h.batch = h.c.net.batch, h.seed = 0;
    h.alpha = 1.0, h.l2 = h.c.net.l2, h.lr = h.c.net.lr, h.ipm = "mmd";
    h.wass_lambda = h.c.net.wass_lambda, h.wass_iters = h.c.net.wass_iters;
    h.rbf_sigma = h.c.net.rbf_sigma;
    h.inner_batch = h.c.inner_batch;
    cli_task t;
    cli_task_init(&t, &CC, cmd, &h.c.solver, &h);
    cli_opt opts[32 + CLI_TASK_NOPTS] = {
        {"--data", NULL, CLI_STRING, &h.source, 0, 0, NULL, "ihdp|FILE",
         "the 10 shipped IHDP replications, or a CSV with a header (see --treatment)"},
        {"--reps", NULL, CLI_INT, &h.reps, 1, MAX_REPS, NULL, "N", "IHDP replications 1 .. N"},
        {"--rep", NULL, CLI_INT, &h.rep, 0, MAX_REPS, NULL, "K",
         "IHDP replication K alone (0: those of --reps)"},
        {"--treatment", NULL, CLI_STRING, &h.treatment, 0, 0, NULL, "COL", "CSV: the 0/1 treatment column"},
        {"--outcome", NULL, CLI_STRING, &h.outcome, 0, 0, NULL, "COL", "CSV: the factual outcome column"},
        {"--covariates", NULL, CLI_STRING, &h.covariates, 0, 0, NULL, "A|B|..",
         "CSV: covariate columns (default: every other column)"},
        {"--mu0", NULL, CLI_STRING, &h.mu0, 0, 0, NULL, "COL", "CSV: true E[Y(0)|x], for scoring only"},
        {"--mu1", NULL, CLI_STRING, &h.mu1, 0, 0, NULL, "COL", "CSV: true E[Y(1)|x], for scoring only"},
        {"--model", NULL, CLI_CHOICE, &h.model, 0, 0, "tarnet|cfr", "M",
         "tarnet: L = factual MSE + L2; cfr: + alpha ‖mean Φ_t − mean Φ_c‖² on unit-norm Φ"},
        {"--ipm", NULL, CLI_CHOICE, &h.ipm, 0, 0, "mmd|wass|rbf", "I",
         "cfr's IPM on unit-norm Φ: mmd ‖mean Φ_t − mean Φ_c‖²; wass 2 Σ P_ij ‖Φ_t,i − Φ_c,j‖, P "
         "the Sinkhorn plan of Shalit et al.'s code, held constant in the gradient; rbf the "
         "kernel MMD² with exp(−‖a − b‖²/σ²)"},
        {"--wass-lambda", NULL, CLI_DOUBLE, &h.wass_lambda, 1e-9, 1e9, NULL, "L",
         "wass: Sinkhorn kernel exp(−L M / mean M)"},
        {"--wass-iters", NULL, CLI_INT, &h.wass_iters, 1, 100000, NULL, "N", "wass: Sinkhorn iterations"},
        {"--rbf-sigma", NULL, CLI_DOUBLE, &h.rbf_sigma, 1e-9, 1e9, NULL, "S", "rbf: kernel width σ"},
        {"--alpha", NULL, CLI_DOUBLE, &h.alpha, 0, 1e9, NULL, "A", "IPM weight of --model cfr (start of --tune hyper)"},
        {"--l2", NULL, CLI_DOUBLE, &h.l2, 0, 1e9, NULL, "L", "L2 strength of every weight matrix (start of --tune hyper)"},
        {"--tune", NULL, CLI_CHOICE, &h.tune, 0, 0, "none|hyper|alpha|weights|grid|grid-alpha", "T",
         "none: train once; hyper: x = log(alpha, L2 per matrix); alpha: x = log alpha; "
         "weights: x = log unit weights; grid: best alpha of --grid by the criterion; "
         "grid-alpha: alpha started from the best of --grid trained --grid-steps each"},
        {"--grid", NULL, CLI_STRING, &h.grid, 0, 0, NULL, "A,B,..", "alpha values of --tune grid / grid-alpha"},
        {"--grid-steps", NULL, CLI_INT, &h.grid_steps, 0, 1e9, NULL, "N",
         "grid-alpha: training steps per grid point (0: --steps / points, the grid costs one training)"},
        {"--inner-batch", NULL, CLI_INT, &h.inner_batch, 0, 1e9, NULL, "B",
         "hyper / alpha / weights: f on B training units drawn afresh each inner step (0: all)"},
        {"--keep-best", NULL, CLI_FLAG, &h.keep_best, 0, 0, NULL, NULL,
         "hyper / alpha / weights / grid-alpha: end on the network of lowest criterion seen (start "
         "or y_T of an outer iteration), as the grid keeps its best"},
        {"--criterion", NULL, CLI_CHOICE, &h.criterion, 0, 0, "nn|factual", "C",
         "upper level: nn = mean (τ̂ − τ_nn)² on validation (scores the effect itself); factual "
         "= arm-balanced validation MSE"},
        {"--rep-layers", NULL, CLI_INT, &h.rep_layers, 1, 100, NULL, "N", "representation layers"},
        {"--rep-width", NULL, CLI_INT, &h.rep_width, 1, 1e5, NULL, "N", "representation width"},
        {"--head-layers", NULL, CLI_INT, &h.head_layers, 0, 100, NULL, "N", "hidden layers per head"},
        {"--head-width", NULL, CLI_INT, &h.head_width, 1, 1e5, NULL, "N", "head width"},
        {"--steps", NULL, CLI_INT, &h.steps, 0, 1e9, NULL, "N", "Adam steps of the (pre)training"},
        {"--batch", NULL, CLI_INT, &h.batch, 0, 1e9, NULL, "B", "minibatch (0: all training units)"},
        {"--lr", NULL, CLI_DOUBLE, &h.lr, 1e-12, 1e6, NULL, "LR", "Adam step of the training"},
        {"--no-reweight", NULL, CLI_FLAG, &h.no_reweight, 0, 0, NULL, NULL,
         "factual loss unweighted (default: each arm's units weighted n / (2 n_arm))"},
        {"--normalize", NULL, CLI_FLAG, &h.normalize, 0, 0, NULL, NULL,
         "unit-norm representation also for tarnet (always for cfr)"},
        {"--seed", NULL, CLI_INT, &h.seed, 0, 9e18, NULL, "S", "initial network; replication k splits with S + k"},
        {"--effects", NULL, CLI_STRING, &h.effects, 0, 0, NULL, "FILE",
         "write every unit's estimated effect (CSV: rep, unit, split, t, y, tau_hat, mu0, mu1)"},
    };
    return cli_task_main(&t, argc, argv, opts, cli_task_opts(&t, opts, 32));
}
