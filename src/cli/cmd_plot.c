/* cmd_plot.c — `blo plot`: convergence curves of one or more run logs (written with --log by
 * any task) overlaid in one SVG or PNG, to compare methods or settings. */
#include "cli.h"
#include "runlog.h"

#include "blo/core.h"
#include "blo/nas.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The panels every task's log supports, in order; a panel whose column no log has is left
 * out. */
static const cli_plot_panel PANELS[] = {
    {"iter", "upper", "upper-level loss F", 1, NULL, 0},
    {"iter", "test_acc", "test accuracy", 0, NULL, 0},
    {"iter", "test_acc_start", "test accuracy of y0", 0, NULL, 0},
    {"iter", "val_acc", "validation accuracy", 0, NULL, 0},
    {"iter", "edges", "pairs with theta > 1/2", 0, NULL, 0},
    {"seconds", "upper", "loss F against time", 1, NULL, 0},
    {"seconds", "test_acc", "accuracy against time", 0, NULL, 0},
    {"iter", "lower", "lower-level loss f", 1, NULL, 0},
    {"iter", "hypergrad_norm", "hypergradient norm", 1, NULL, 0},
    {"iter", "fwd_iters", "forward solver iterations", 0, NULL, 0},
    {"iter", "bwd_iters", "backward iterations", 0, NULL, 0},
};

static const char *const ALPHA_COLS[5] = {"iter", "cell", "edge", "op", "weight"};

bool cli_table_is_alpha(const cli_table *t) {
    for (int i = 0; i < 5; i++)
        if (cli_table_col(t, ALPHA_COLS[i]) < 0) return false;
    return true;
}

int cli_alpha_shape(const cli_table *t, int col[5], int *nodes, char *err, size_t errlen) {
    if (!cli_table_is_alpha(t)) {
        snprintf(err, errlen, "%s: not an architecture (alpha) log: it needs the columns iter, "
                 "cell, edge, op, weight (blo nas search --alpha-log)", t->name);
        return CLI_EXIT_USAGE;
    }
    for (int i = 0; i < 5; i++) col[i] = cli_table_col(t, ALPHA_COLS[i]);
    /* The cell's size from the largest edge index: E = n (n + 3) / 2 edges for n nodes. */
    int64_t E = 0;
    for (int64_t r = 0; r < t->nrows; r++) {
        const double *v = t->v + r * t->ncols;
        double cell = v[col[1]], edge = v[col[2]], op = v[col[3]];
        if (!(cell == 0 || cell == 1) || !(edge >= 0 && edge < 1e6 && edge == floor(edge)) ||
            !(op >= 0 && op < BLO_NAS_NUM_OPS && op == floor(op))) {
            snprintf(err, errlen, "%s: row %lld: cell must be 0 or 1, edge a count, op in [0, %d)",
                     t->name, (long long)r + 1, BLO_NAS_NUM_OPS);
            return CLI_EXIT_USAGE;
        }
        if ((int64_t)edge + 1 > E) E = (int64_t)edge + 1;
    }
    int n = 0;
    while (n < BLO_NAS_MAX_NODES && blo_nas_num_edges(n) < E) n++;
    if (t->nrows == 0 || blo_nas_num_edges(n) != E) {
        snprintf(err, errlen, "%s: %lld edges is not the edge count of a cell (n (n + 3) / 2)",
                 t->name, (long long)E);
        return CLI_EXIT_USAGE;
    }
    *nodes = n;
    return CLI_EXIT_OK;
}

int cli_plot_alpha(const char *out, const cli_table *t, char *err, size_t errlen) {
    int col[5], nodes, rc0 = cli_alpha_shape(t, col, &nodes, err, errlen);
    if (rc0) return rc0;
    int64_t E = blo_nas_num_edges(nodes);
    /* One two-column table (iter, weight) per cell kind, edge and op, in the log's order. */
    int ng = 2 * (int)E * BLO_NAS_NUM_OPS;
    cli_table *g = blo_calloc((size_t)ng, sizeof *g);
    int64_t *cap = blo_calloc((size_t)ng, sizeof *cap);
    int cols = nodes + 1, np = 2 * nodes * cols;
    cli_plot_panel *pn = blo_calloc((size_t)np, sizeof *pn);
    char(*titles)[48] = blo_calloc((size_t)np, sizeof *titles);
    int rc = g && cap && pn && titles ? CLI_EXIT_OK : CLI_EXIT_FAILED;
    if (rc) snprintf(err, errlen, "out of memory");
    for (int k = 0; !rc && k < ng; k++) {
        g[k].ncols = 2;
        snprintf(g[k].cols[0], sizeof g[k].cols[0], "iter");
        snprintf(g[k].cols[1], sizeof g[k].cols[1], "weight");
        snprintf(g[k].name, sizeof g[k].name, "%s", blo_nas_op_name(k % BLO_NAS_NUM_OPS));
    }
    for (int64_t r = 0; !rc && r < t->nrows; r++) {
        const double *v = t->v + r * t->ncols;
        int k = ((int)v[col[1]] * (int)E + (int)v[col[2]]) * BLO_NAS_NUM_OPS + (int)v[col[3]];
        if (g[k].nrows == cap[k]) {
            int64_t nc = cap[k] ? 2 * cap[k] : 64;
            double *nv = blo_malloc(sizeof(double) * 2 * (size_t)nc);
            if (!nv) {
                snprintf(err, errlen, "out of memory");
                rc = CLI_EXIT_FAILED;
                break;
            }
            if (g[k].v) memcpy(nv, g[k].v, sizeof(double) * 2 * (size_t)g[k].nrows);
            blo_free(g[k].v);
            g[k].v = nv;
            cap[k] = nc;
        }
        g[k].v[2 * g[k].nrows] = v[col[0]];
        g[k].v[2 * g[k].nrows + 1] = v[col[4]];
        g[k].nrows++;
    }
    /* Grid: row (cell kind, node i), column j = the input state of edge (j -> i). */
    for (int cell = 0; !rc && cell < 2; cell++)
        for (int i = 0; i < nodes; i++)
            for (int j = 0; j < i + 2; j++) {
                int slot = (cell * nodes + i) * cols + j, e = 2 * i + i * (i - 1) / 2 + j;
                snprintf(titles[slot], sizeof titles[slot], "%s: node %d from %s %d",
                         cell ? "reduce" : "normal", i, j < 2 ? "input" : "node", j < 2 ? j : j - 2);
                pn[slot] = (cli_plot_panel){"iter", "weight", titles[slot], 0,
                                            g + (cell * E + e) * BLO_NAS_NUM_OPS, BLO_NAS_NUM_OPS};
            }
    if (!rc && !cli_plot_write_grid(out, g, BLO_NAS_NUM_OPS, pn, np, cols, err, errlen))
        rc = CLI_EXIT_FAILED;
    for (int k = 0; g && k < ng; k++) cli_table_free(&g[k]);
    blo_free(g);
    blo_free(cap);
    blo_free(pn);
    blo_free(titles);
    return rc;
}

int cli_plot_logs(const char *out, char **logs, int nlogs, const char *x_only, char *err,
                  size_t errlen) {
    cli_table *t = blo_calloc((size_t)nlogs, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return CLI_EXIT_FAILED;
    }
    int rc = CLI_EXIT_OK, nread = 0;
    for (; nread < nlogs; nread++)
        if (!cli_table_read(logs[nread], &t[nread], err, errlen)) {
            rc = CLI_EXIT_USAGE;
            break;
        }
    bool alpha = false;
    for (int k = 0; !rc && k < nlogs; k++) alpha |= cli_table_is_alpha(&t[k]);
    if (!rc && alpha) {
        if (nlogs > 1) {
            snprintf(err, errlen, "an architecture (alpha) log is plotted on its own, not with "
                                  "other logs");
            rc = CLI_EXIT_USAGE;
        } else {
            rc = cli_plot_alpha(out, &t[0], err, errlen);
        }
    } else if (!rc) {
        cli_plot_panel sel[sizeof PANELS / sizeof PANELS[0]];
        int np = 0;
        for (size_t i = 0; i < sizeof PANELS / sizeof PANELS[0]; i++) {
            if (x_only && strcmp(PANELS[i].x, x_only)) continue;
            bool have = false;
            for (int k = 0; k < nlogs; k++)
                have |= cli_table_col(&t[k], PANELS[i].y) >= 0 && cli_table_col(&t[k], PANELS[i].x) >= 0;
            if (have) sel[np++] = PANELS[i];
        }
        if (np == 0) {
            snprintf(err, errlen, "%s: no column to plot (expected iter/seconds and upper, "
                     "test_acc, lower or hypergrad_norm)", logs[0]);
            rc = CLI_EXIT_USAGE;
        } else if (!cli_plot_write(out, t, nlogs, sel, np, err, errlen)) {
            rc = CLI_EXIT_FAILED;
        }
    }
    for (int k = 0; k < nread; k++) cli_table_free(&t[k]);
    blo_free(t);
    return rc;
}

int cli_plot_run(const cli_cmd *cmd, int argc, char **argv) {
    const char *out = "plot.svg", *x = "both";
    const cli_opt opts[] = {
        {"--out", "-o", CLI_STRING, &out, 0, 0, NULL, "FILE", "the plot, .svg or .png"},
        {"--x", NULL, CLI_CHOICE, &x, 0, 0, "iter|seconds|both", "AXIS",
         "curves against iterations, wall time, or both"},
    };
    char **logs = blo_calloc((size_t)argc + 1, sizeof *logs);
    if (!logs) return CLI_EXIT_FAILED;
    int rc, nlogs = 0;
    if (!cli_parse_args(cmd, argc, argv, opts, 2, &rc, logs, &nlogs)) {
        blo_free(logs);
        return rc;
    }
    if (nlogs == 0) {
        fprintf(stderr, "blo plot: give at least one log file (see 'blo plot --help')\n");
        blo_free(logs);
        return CLI_EXIT_USAGE;
    }
    char err[512] = "";
    rc = cli_plot_logs(out, logs, nlogs, strcmp(x, "both") ? x : NULL, err, sizeof err);
    if (rc)
        fprintf(stderr, "blo plot: %s\n", err);
    else
        fprintf(stderr, "blo plot: wrote %s (%d run%s)\n", out, nlogs, nlogs == 1 ? "" : "s");
    blo_free(logs);
    return rc;
}
