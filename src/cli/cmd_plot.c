/* cmd_plot.c — `blo plot`: convergence curves of one or more run logs (written with --log by
 * any task) overlaid in one SVG or PNG, to compare methods or settings. */
#include "cli.h"
#include "runlog.h"

#include "blo/core.h"

#include <stdlib.h>
#include <string.h>

/* The panels every task's log supports, in order; a panel whose column no log has is left
 * out. */
static const cli_plot_panel PANELS[] = {
    {"iter", "upper", "upper-level loss F", 1},
    {"iter", "test_acc", "test accuracy", 0},
    {"iter", "test_acc_start", "test accuracy of y0", 0},
    {"seconds", "upper", "loss F against time", 1},
    {"seconds", "test_acc", "accuracy against time", 0},
    {"iter", "lower", "lower-level loss f", 1},
    {"iter", "hypergrad_norm", "hypergradient norm", 1},
};

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
    if (!rc) {
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

int cli_task_finish(const char *task, int st, const char *err, cli_progress *prog, cli_log *log,
                    const char *plot, const char *logpath) {
    cli_progress_end(prog);
    cli_log_close(log);
    if (st) {
        size_t n = strlen(task);
        const char *msg = !strncmp(err, task, n) && !strncmp(err + n, ": ", 2) ? err + n + 2 : err;
        fprintf(stderr, "blo %s: %s\n", task, msg);
        return st == BLO_ERR_NUMERIC || st == BLO_ERR_NOMEM ? CLI_EXIT_FAILED : CLI_EXIT_USAGE;
    }
    if (plot) {
        char perr[512];
        char *logs[1] = {(char *)logpath};
        int prc = cli_plot_logs(plot, logs, 1, NULL, perr, sizeof perr);
        if (prc) {
            fprintf(stderr, "blo %s: %s\n", task, perr);
            return prc;
        }
    }
    return -1;
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
