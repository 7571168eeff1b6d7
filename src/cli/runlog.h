/* runlog.h — what long runs share on the command line: a progress line on stderr, the
 * per-iteration log (CSV or JSON lines, chosen by the file's extension), reading such logs
 * back, and convergence plots (SVG, or PNG through libpng) of one or several logs. */
#ifndef BLO_RUNLOG_H
#define BLO_RUNLOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* ---- Progress --------------------------------------------------------------------------------
 * On a terminal: one line redrawn in place (a bar, i/total, ETA, and a caller's status text)
 * at most ten times a second. Elsewhere: a plain line every ~5% of the run. Quiet: nothing. */
typedef struct cli_progress {
    int64_t total;
    int quiet, tty;
    double start, last_draw;
    int64_t last_line;
    const char *label;
} cli_progress;
void cli_progress_start(cli_progress *p, const char *label, int64_t total, int quiet);
/* done = iterations finished so far (of total); status: e.g. "UL 0.412  test acc 81.3%". */
void cli_progress_update(cli_progress *p, int64_t done, const char *status);
void cli_progress_end(cli_progress *p);

/* ---- Per-iteration log ------------------------------------------------------------------------ */
#define CLI_LOG_MAX_COLS 16
typedef struct cli_log {
    FILE *f;
    int jsonl;
    int ncols;
    const char *cols[CLI_LOG_MAX_COLS];
} cli_log;
/* Opens path for writing ("-.csv"-style names are not special): ".jsonl" or ".json" gives
 * JSON lines, anything else CSV with a header. append = 1 continues an existing log (after a
 * resume) without a second header. Returns false with a message on stderr. */
bool cli_log_open(cli_log *l, const char *path, int ncols, const char *const *cols, int append);
void cli_log_row(cli_log *l, const double *values);
void cli_log_close(cli_log *l);

/* A log read back: named columns of doubles. */
typedef struct cli_table {
    char name[256]; /* the file it came from (or a label) */
    int ncols;
    char cols[CLI_LOG_MAX_COLS][32];
    int64_t nrows;
    double *v; /* nrows x ncols, row-major; NAN where a value was missing or null */
} cli_table;
/* Reads a CSV (with header) or JSON-lines log written by cli_log. Returns false with a
 * message ("run.csv: line 4: 3 fields, the header has 6") in err. */
bool cli_table_read(const char *path, cli_table *t, char *err, size_t errlen);
void cli_table_free(cli_table *t);
int cli_table_col(const cli_table *t, const char *name); /* -1 if absent */

/* ---- Plots -------------------------------------------------------------------------------------
 * Panels of y columns against an x column ("iter" or "seconds"), one curve per table, with a
 * legend of the tables' names. The format follows the extension: .svg or .png. */
typedef struct cli_plot_panel {
    const char *x, *y;   /* column names; y NULL: an empty slot of the grid */
    const char *title;
    int log_y;           /* log scale on y (for losses) */
    const cli_table *tables; /* this panel's own curves (NULL: the plot's tables), coloured */
    int ntables;             /* by their index, as the legend's */
} cli_plot_panel;
bool cli_plot_write(const char *path, const cli_table *tables, int ntables,
                    const cli_plot_panel *panels, int npanels, char *err, size_t errlen);
/* The same on a grid of cols columns (cli_plot_write: 2, or 1 for a single panel); the legend
 * names the plot's tables. */
bool cli_plot_write_grid(const char *path, const cli_table *tables, int ntables,
                         const cli_plot_panel *panels, int npanels, int cols, char *err,
                         size_t errlen);

/* A DARTS search's α log (columns iter, cell, edge, op, weight: one row per iteration, cell
 * kind, edge and op, written by `blo nas search --alpha-log`) as small multiples: one row of
 * panels per cell kind and node, one panel per incoming edge, one curve per op (legend: the
 * op names). Returns an exit code, with a message in err. */
int cli_plot_alpha(const char *out, const cli_table *t, char *err, size_t errlen);
/* Whether t has the α log's columns. */
bool cli_table_is_alpha(const cli_table *t);
/* Checks that t is an α log with valid cell, edge and op values and a cell's edge count;
 * gives the columns of iter, cell, edge, op, weight in col and the cell's nodes. Returns an
 * exit code, with a message naming the file in err. */
int cli_alpha_shape(const cli_table *t, int col[5], int *nodes, char *err, size_t errlen);

/* Reads the logs and draws the standard panels (whichever columns they have) into out; x_only
 * "iter" or "seconds" keeps the panels against that axis. Returns an exit code, with a
 * message in err. */
int cli_plot_logs(const char *out, char **logs, int nlogs, const char *x_only, char *err,
                  size_t errlen);

#endif
