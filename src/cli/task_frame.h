/* task_frame.h — the one frame every task command runs in: parse the options (the command's
 * own, the solver's, the run options of DESIGN.md §7), check every output before any work
 * (--log, --plot, --checkpoint and the command's own files), configure, open the log and the
 * progress line, run, report a failure or draw the plot, print the summary. A command keeps
 * only its option table, the step from parsed values to its task's configuration, the call of
 * its runner and its summary.
 *
 *     cli_task t;
 *     cli_task_init(&t, &DEF, cmd, &c.solver, &state);
 *     cli_opt opts[K + CLI_TASK_NOPTS] = {... the command's K options ...};
 *     return cli_task_main(&t, argc, argv, opts, cli_task_opts(&t, opts, K));
 */
#ifndef BLO_CLI_TASK_FRAME_H
#define BLO_CLI_TASK_FRAME_H

#include "cli.h"
#include "runlog.h"
#include "solver_opts.h"

#include "blo/bilevel.h"

typedef struct cli_task cli_task;

typedef struct cli_task_def {
    const char *name; /* "meta sinusoid": the messages' and the progress label */
    int ncols;        /* the --log columns */
    const char *const *cols;
    /* After parsing and the output checks: moves the parsed values into the task's
     * configuration and checks what the option table cannot. Returns false after printing a
     * message naming the option (exit 2). May set t->total. */
    bool (*configure)(cli_task *t);
    /* Runs the task (its per-iteration callback calls cli_task_iter with t). */
    blo_status (*run)(cli_task *t, char *err, size_t errlen);
    /* After a successful run: prints the summary (text, or one JSON object when t->json) and
     * returns the exit code. */
    int (*summary)(cli_task *t);
    /* Optional: after a successful run, whether or not the summary was printed, releases
     * what the run returned. */
    void (*release)(cli_task *t);
} cli_task_def;

struct cli_task {
    const cli_task_def *def;
    const cli_cmd *cmd;
    void *user;         /* the command's own state: its configuration and result */
    blo_config *solver; /* the configuration the solver options fill; NULL: no solver options */
    cli_solver_args sa;
    /* The run options; set a default (threads, dtype) after cli_task_init. */
    long long threads;
    const char *dtype; /* "f32" or "f64" */
    int json, quiet;
    const char *log, *plot;
    /* The file --plot draws and the option that names it: --log unless the command points
     * these at another log (nas search: --alpha-log). */
    const char **plot_from;
    const char *plot_from_opt;
    /* Other output files of the command, checked with the rest before the run (up to 4). */
    const char **out_path[4];
    const char *out_opt[4];
    int nout;
    int64_t total; /* the progress line's length; default solver->outer_iters */
    cli_progress prog;
    cli_log logf;
    int logging;
};

/* Room for the options cli_task_opts appends. */
#define CLI_TASK_NOPTS (CLI_SOLVER_NOPTS + 6)

/* Sets up t for the command cmd described by def: solver (may be NULL) holds the task's
 * default settings and receives the parsed ones; user is handed back through t->user. */
void cli_task_init(cli_task *t, const cli_task_def *def, const cli_cmd *cmd, blo_config *solver,
                   void *user);
/* Appends the run options and the solver options (when t->solver) to opts[n ...] (room for
 * CLI_TASK_NOPTS); returns the new count. */
int cli_task_opts(cli_task *t, cli_opt *opts, int n);
/* Declares another output file of the command (the address of its option's value), checked
 * like --log before the run: its folder must exist and be writable. */
void cli_task_output(cli_task *t, const char *opt, const char **path);
/* The whole frame (see the top of this file). Returns the process exit code. */
int cli_task_main(cli_task *t, int argc, char **argv, cli_opt *opts, int n);

/* One finished iteration (rec: its record; rec->iter + 1 of t->total done): the progress line
 * with a status text, when logging a row of t->def->ncols values, and when the hypergradient
 * was checked (--check-hypergrad) a line on stderr with the check's cosine and relative error
 * and the iteration's linear solve. */
void cli_task_iter(cli_task *t, const blo_record *rec, const char *status, const double *row);
/* One finished unit of a task whose progress is not counted in solver iterations (a
 * replication, say): `done` of t->total, the progress line and the log row only. */
void cli_task_step(cli_task *t, int64_t done, const char *status, const double *row);
/* The parsed --dtype. */
blo_dtype cli_task_dtype(const cli_task *t);
/* What every bilevel task's configuration c (a blo_*_config) takes from the frame t: the
 * dtype, the seed (the task's and its solver's), the checkpoint to resume from, and the
 * per-iteration callback fn, called with t as its user pointer. */
#define CLI_TASK_CONFIGURE(c, t, seed_, fn)                                                        \
    do {                                                                                           \
        (c)->dtype = cli_task_dtype(t);                                                            \
        (c)->seed = (uint64_t)(seed_);                                                             \
        (c)->solver.seed = (c)->seed;                                                              \
        (c)->resume = (t)->sa.resume;                                                              \
        (c)->on_iter = (fn);                                                                       \
        (c)->user = (t);                                                                           \
    } while (0)

/* Checks that an output file can be written before a run starts: path ends in one of the
 * extensions in exts ("csv|jsonl|json"; NULL: any), its folder exists and is writable, and
 * the file, when it exists, is a writable file. Otherwise prints "blo <cmd>: <opt> <path>:
 * <why>" to stderr and returns false. */
bool cli_check_output(const char *cmd, const char *opt, const char *path, const char *exts);

/* The data folder a task reads when no --data is given: $BLO_DATA when set, otherwise
 * /usr/share/datasets/fashion-mnist. The library itself has no default location. */
const char *cli_default_data(void);
#define CLI_DATA_HELP "; $BLO_DATA, when set, replaces the default"

#endif
