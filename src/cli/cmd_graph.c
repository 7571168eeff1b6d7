/* cmd_graph.c — `blo graph`: graph structure learning (LDS) and the GCN from the command line,
 * a thin layer over blo_graph_run (include/blo/graph.h) in the task frame. */
#include "task_frame.h"

#include "blo/blo.h"
#include "blo/graph.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>

typedef struct graph_cmd {
    blo_graph_config c;
    const char *name; /* --data: cora, citeseer, wine, cancer, digits or a folder */
    char dir[4096];
    long long hidden, epochs, samples, seed, knn, patience, restart_every, candidates;
    const char *features; /* --features: auto, row or raw */
    const char *lr_grid;  /* --outer-lr-grid: comma-separated, or "" */
    int gcn_only;
    blo_graph_result r;
} graph_cmd;

static int graph_on_iter(const blo_graph_iter *it, void *user) {
    char status[128];
    snprintf(status, sizeof status, "F %.4f  val acc %.2f%%  edges %lld", it->rec.upper,
             100 * it->val_acc, (long long)it->edges);
    double row[8] = {(double)it->rec.iter, it->rec.upper,   it->rec.lower,
                     it->rec.hypergrad_norm, it->rec.seconds, (double)it->rec.peak_bytes,
                     it->val_acc, (double)it->edges};
    cli_task_iter(user, &it->rec, status, row);
    return 0;
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* A named data set (cora, citeseer: Planetoid graphs; wine, cancer, digits: UCI data with no
 * graph) is read from the installed data, or from the source tree the CLI was built from;
 * anything else is a folder. The UCI sets keep their features as converted (standardised or
 * pixel counts); the graphs' bag-of-words rows are normalised. */
static bool graph_configure(cli_task *t) {
    graph_cmd *g = t->user;
    const char *group = !strcmp(g->name, "cora") || !strcmp(g->name, "citeseer") ? "planetoid"
                        : !strcmp(g->name, "wine") || !strcmp(g->name, "cancer") ||
                                  !strcmp(g->name, "digits")
                            ? "uci"
                            : NULL;
    if (group) {
        snprintf(g->dir, sizeof g->dir, "%s/%s/%s", BLO_DATA_INSTALL, group, g->name);
        if (!is_dir(g->dir))
            snprintf(g->dir, sizeof g->dir, "%s/%s/%s", BLO_DATA_SOURCE, group, g->name);
    } else {
        snprintf(g->dir, sizeof g->dir, "%s", g->name);
    }
    g->c.row_normalize = !strcmp(g->features, "auto") ? !(group && !strcmp(group, "uci"))
                                                       : !strcmp(g->features, "row");
    g->c.knn = g->knn;
    g->c.patience = g->patience;
    g->c.candidates = g->candidates;
    g->c.restart_every = g->restart_every;
    if (!cli_parse_doubles(g->lr_grid, 1e-300, 8, g->c.lr_grid, &g->c.n_lr_grid)) {
        fprintf(stderr, "blo graph: bad value '%s' for --outer-lr-grid: expected up to 8 "
                        "comma-separated step sizes > 0\n", g->lr_grid);
        return false;
    }
    if (g->c.n_lr_grid > 0 && g->patience < 1) {
        fprintf(stderr, "blo graph: --outer-lr-grid is chosen on the early-stopping set: add "
                        "--patience P (P >= 1)\n");
        return false;
    }
    g->c.data_dir = g->dir;
    g->c.hidden = g->hidden;
    g->c.gcn_epochs = g->epochs;
    g->c.samples = g->samples;
    g->c.lds = !g->gcn_only;
    CLI_TASK_CONFIGURE(&g->c, t, g->seed, graph_on_iter);
    if (g->gcn_only) t->total = 1;
    return true;
}

static blo_status graph_run(cli_task *t, char *err, size_t errlen) {
    graph_cmd *g = t->user;
    const blo_graph_config *c = &g->c;
    if (!t->quiet && c->lds)
        fprintf(stderr, "graph: LDS on %s, %s, T = %d inner steps, %lld outer iterations, "
                        "straight-through estimator, %.0f %% of the %s\n",
                g->dir, c->solver.method, c->solver.inner_steps,
                (long long)c->solver.outer_iters, 100 * c->keep_edges,
                c->knn > 0 ? "kNN graph's edges" : "edges (the kNN graph's when there are none)");
    return blo_graph_run(c, &g->r, err, errlen);
}

static void pct(const char *name, double v) {
    if (isfinite(v))
        printf("  %-40s %6.2f %%\n", name, 100 * v);
    else
        printf("  %-40s %8s\n", name, "-");
}

static int graph_summary(cli_task *t) {
    graph_cmd *g = t->user;
    const blo_graph_result *r = &g->r;
    const char *keys[] = {"gcn_val", "gcn_test", "lds_val", "lds_test", "frozen_val",
                          "frozen_test", "upper", "lower", "es_acc", "best_iter", "outer_lr", "patience", "seconds"};
    double vals[] = {r->gcn_val, r->gcn_test, r->lds_val,     r->lds_test,
                     r->frozen_val, r->frozen_test, r->upper, r->lower,
                     r->es_acc, r->best_iter >= 0 ? (double)r->best_iter : NAN,
                     g->c.lds ? r->outer_lr : NAN, g->c.lds ? (double)r->patience : NAN,
                     r->seconds};
    if (t->json) {
        printf("{\"task\":\"graph\",\"data\":\"%s\",\"method\":\"%s\",\"keep_edges\":%g,"
               "\"knn\":%lld,\"candidates\":%lld,\"nodes\":%lld,\"edges_given\":%lld,\"edges_kept\":%lld,\"edges_learned\":%lld,"
               "\"iters\":%lld",
               g->name, g->c.lds ? g->c.solver.method : "none", g->c.keep_edges,
               (long long)r->knn, (long long)g->c.candidates, (long long)r->n,
               (long long)r->edges_given, (long long)r->edges_kept, (long long)r->edges_learned,
               (long long)r->iters);
        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
            printf(",\"%s\":", keys[i]);
            cli_json_number(stdout, vals[i]);
        }
        printf("}\n");
        return CLI_EXIT_OK;
    }
    printf("graph %s: %lld nodes, %lld of %lld %sedges kept, %.1f s\n", g->name, (long long)r->n,
           (long long)r->edges_kept, (long long)r->edges_given, r->knn ? "kNN " : "", r->seconds);
    pct(r->knn ? "GCN on the kNN graph: validation" : "GCN on the graph: validation", r->gcn_val);
    pct(r->knn ? "GCN on the kNN graph: test" : "GCN on the graph: test", r->gcn_test);
    if (g->c.lds) {
        printf("  LDS: %s, %lld outer iterations, %lld pairs with theta > 1/2\n",
               g->c.solver.method, (long long)r->iters, (long long)r->edges_learned);
        if (g->c.n_lr_grid > 0) printf("  outer step chosen from the grid: %g\n", r->outer_lr);
        if (r->best_iter >= 0)
            printf("  early stopping: the best outer iteration was %lld (early-stopping set "
                   "%.2f %%)\n",
                   (long long)r->best_iter, 100 * r->es_acc);
        pct("LDS: validation", r->lds_val);
        pct("LDS: test", r->lds_test);
        pct("theta frozen at its start: validation", r->frozen_val);
        pct("theta frozen at its start: test", r->frozen_test);
    }
    if (t->plot) printf("  plot: %s\n", t->plot);
    return CLI_EXIT_OK;
}

static const char *const GRAPH_COLS[8] = {"iter",    "upper",      "lower",   "hypergrad_norm",
                                          "seconds", "peak_bytes", "val_acc", "edges"};
static const cli_task_def GRAPH = {"graph", 8, GRAPH_COLS, graph_configure, graph_run,
                                   graph_summary, NULL};

int cli_graph_run(const cli_cmd *cmd, int argc, char **argv) {
    graph_cmd g;
    memset(&g, 0, sizeof g);
    g.c = blo_graph_default();
    g.name = "cora";
    g.features = "auto";
    g.lr_grid = "";
    g.hidden = g.c.hidden, g.epochs = g.c.gcn_epochs, g.samples = g.c.samples, g.knn = g.c.knn;
    g.patience = g.c.patience;
    g.candidates = g.c.candidates;
    g.restart_every = g.c.restart_every;
    cli_task t;
    cli_task_init(&t, &GRAPH, cmd, &g.c.solver, &g);
    cli_task_output(&t, "--save-graph", &g.c.save_graph);
    cli_opt opts[19 + CLI_TASK_NOPTS] = {
        {"--data", NULL, CLI_STRING, &g.name, 0, 0, NULL, "cora|citeseer|wine|cancer|digits|DIR",
         "the graph: a committed Planetoid graph, a committed UCI data set with no graph (kNN-LDS), "
         "or a folder with features.libsvm, edges.txt (may be empty), train.txt, val.txt, test.txt"},
        {"--knn", NULL, CLI_INT, &g.knn, -1, 1e9, NULL, "K",
         "use the kNN graph of the features (cosine, K neighbours) as the given graph; -1: K = 10 "
         "when the data has no edges"},
        {"--features", NULL, CLI_CHOICE, &g.features, 0, 0, "auto|row|raw", "F",
         "divide each feature row by its sum (row), or not (raw); auto: raw for the UCI sets"},
        {"--keep-edges", NULL, CLI_DOUBLE, &g.c.keep_edges, 0, 1, NULL, "P",
         "keep a random fraction P of the given edges (LDS experiments: 0.25, 0.5, 1)"},
        {"--gcn-only", NULL, CLI_FLAG, &g.gcn_only, 0, 0, NULL, NULL,
         "train the GCN on the graph only, no structure learning"},
        {"--baseline", NULL, CLI_FLAG, &g.c.baseline, 0, 0, NULL, NULL,
         "also the GCN on the fixed graph, and LDS's schedule with theta frozen at its start"},
        {"--save-graph", NULL, CLI_STRING, &g.c.save_graph, 0, 0, NULL, "FILE",
         "write the learned pairs \"i j theta_ij\" with theta > 1/2"},
        {"--hidden", NULL, CLI_INT, &g.hidden, 1, 1e6, NULL, "H", "hidden units of the GCN"},
        {"--dropout", NULL, CLI_DOUBLE, &g.c.dropout, 0, 0.99, NULL, "P", "dropout of the GCN"},
        {"--wd", NULL, CLI_DOUBLE, &g.c.wd, 0, 1e6, NULL, "L", "L2 (L/2 |W1|^2) on the first layer"},
        {"--gcn-lr", NULL, CLI_DOUBLE, &g.c.gcn_lr, 1e-12, 1e6, NULL, "LR",
         "Adam step of the GCN alone"},
        {"--epochs", NULL, CLI_INT, &g.epochs, 0, 1e9, NULL, "N", "epochs of the GCN alone"},
        {"--samples", NULL, CLI_INT, &g.samples, 1, 1e6, NULL, "S",
         "sampled graphs averaged for LDS's prediction"},
        {"--patience", NULL, CLI_INT, &g.patience, -1, 1e9, NULL, "P",
         "early stopping as LDS: half of the validation nodes drive theta, the other half pick "
         "the best outer iteration; stop after P without a better one (0: off, all of the "
         "validation nodes drive theta and the last iteration is scored; -1: 10 when there are "
         "100 validation nodes or more, else 0 -- LDS's GCN then trains until the held-out "
         "accuracy stops rising, not for a fixed budget; so LDS is about 3 points above the GCN "
         "on Cora at 25, 50 and 100 % of the edges)"},
        {"--restart-every", NULL, CLI_INT, &g.restart_every, 0, 1e9, NULL, "E",
         "LDS's outer loop: draw the GCN's weights afresh every E outer iterations (theta keeps "
         "learning), so each cycle ends with a GCN trained on the current theta; with "
         "--patience, the end of each cycle is scored and cycles are counted (0: one "
         "warm-started run)"},
        {"--outer-lr-grid", NULL, CLI_STRING, &g.lr_grid, 0, 0, NULL, "LIST",
         "LDS once per outer step size in LIST (comma-separated, e.g. 1,0.1,0.01), scoring the run "
         "with the best early-stopping accuracy, as LDS's authors pick theirs; needs --patience "
         "(empty: --outer-lr alone)"},
        {"--candidates", NULL, CLI_INT, &g.candidates, 0, 1e9, NULL, "K",
         "theta only on a candidate set of pairs: the kNN graph of the features (cosine, K "
         "neighbours) plus the given edges; the pairs outside stay 0, so theta cannot fit a "
         "small validation set with arbitrary pairs (Digits: K = 20; 0: every pair)"},
        {"--theta-start", NULL, CLI_DOUBLE, &g.c.theta_off, 0, 1, NULL, "P",
         "theta's start off the given edges (1 on them)"},
        {"--seed", NULL, CLI_INT, &g.seed, 0, 9e18, NULL, "S",
         "edge removal, weights, samples, dropout"},
    };
    return cli_task_main(&t, argc, argv, opts, cli_task_opts(&t, opts, 19));
}
