/* cli.h — what the subcommands of the blo command line share: the command table entry, the
 * exit codes, one option parser driven by a table, and small output helpers.
 *
 * Conventions (DESIGN.md §7): exit 0 on success, 1 when the run failed (diverged, non-finite
 * values, a failed check), 2 on bad usage or bad input. Progress goes to stderr, results to
 * stdout; with --json stdout holds exactly one JSON object.
 */
#ifndef BLO_CLI_H
#define BLO_CLI_H

#include <stdbool.h>
#include <stdio.h>

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILED = 1, CLI_EXIT_USAGE = 2 };

typedef struct cli_cmd cli_cmd;
/* A subcommand's entry point. argv[0] is the subcommand's name; the global options were
 * already consumed. Returns the process exit code. */
typedef int (*cli_run_fn)(const cli_cmd *cmd, int argc, char **argv);

struct cli_cmd {
    const char *name;    /* "demo" */
    const char *summary; /* one line for `blo --help` */
    const char *help;    /* the paragraph `blo <name> --help` prints above the option list */
    cli_run_fn run;
};

/* The table of subcommands (main.c) and its length. */
extern const cli_cmd cli_commands[];
extern const int cli_n_commands;

/* ---- Options ------------------------------------------------------------------------------- */
typedef enum cli_kind {
    CLI_FLAG,   /* no value; dest is int*, set to 1 */
    CLI_INT,    /* dest is long long*, value in [lo, hi] */
    CLI_DOUBLE, /* dest is double*, finite, in [lo, hi] */
    CLI_STRING, /* dest is const char** (points into argv) */
    CLI_CHOICE  /* dest is const char**; the value must be one of `choices` ("f32|f64") */
} cli_kind;

typedef struct cli_opt {
    const char *name;  /* "--seed", or a short flag "-q" */
    const char *alias; /* another spelling ("--quiet") or NULL */
    cli_kind kind;
    void *dest; /* holds the default before parsing; `--help` prints it as such */
    double lo, hi;
    const char *choices;
    const char *metavar; /* "N", "S", "PATH" */
    const char *help;    /* one line */
} cli_opt;

/* Parses argv[1..argc-1] against the n options. Values are given as "--opt VALUE" or
 * "--opt=VALUE". Returns true when the command should go on. Returns false with *rc set
 * when it should stop: *rc = 0 after printing the help for -h/--help (to stdout), and
 * *rc = 2 after printing a message naming the option to stderr, e.g.
 * "blo demo: bad value 'x' for --seed: expected an integer". */
bool cli_parse(const cli_cmd *cmd, int argc, char **argv, const cli_opt *opts, int n, int *rc);
/* The same, collecting the arguments that are not options into pos (room for argc entries)
 * instead of rejecting them; *npos gets their count. */
bool cli_parse_args(const cli_cmd *cmd, int argc, char **argv, const cli_opt *opts, int n,
                    int *rc, char **pos, int *npos);

/* Single-value parsers used by cli_parse, for commands that read values elsewhere. Each
 * returns true on success; otherwise prints "blo <cmd>: bad value '<text>' for <opt>: ..."
 * to stderr and returns false. */
bool cli_parse_int(const char *cmd, const char *opt, const char *text, long long lo, long long hi,
                   long long *out);
bool cli_parse_double(const char *cmd, const char *opt, const char *text, double lo, double hi,
                      double *out);
bool cli_parse_choice(const char *cmd, const char *opt, const char *text, const char *choices,
                      const char **out);

/* The run options every task command shares (DESIGN.md §7), as six table entries pointing at
 * the command's own variables: --threads (long long), --dtype (const char *), --json (int),
 * --log, --plot (const char *), -q (int). */
#define CLI_RUN_OPTS(threads, dtype, json, log, plot, quiet)                                 \
    {"--threads", NULL, CLI_INT, &(threads), 0, 1024, NULL, "N", "threads (0: all cores)"},    \
        {"--dtype", NULL, CLI_CHOICE, &(dtype), 0, 0, "f32|f64", "T", "precision"},            \
        {"--json", NULL, CLI_FLAG, &(json), 0, 0, NULL, NULL,                                  \
         "the summary as one JSON object on stdout"},                                          \
        {"--log", NULL, CLI_STRING, &(log), 0, 0, NULL, "FILE",                                \
         "per-iteration record: .csv, or .jsonl for JSON lines"},                              \
        {"--plot", NULL, CLI_STRING, &(plot), 0, 0, NULL, "FILE",                              \
         "convergence curves (.svg or .png); needs --log"},                                    \
        {"-q", "--quiet", CLI_FLAG, &(quiet), 0, 0, NULL, NULL, "no progress output"}

/* A comma-separated list of at most max finite numbers >= lo into out; *n their count.
 * false on anything else (the caller names the option). */
bool cli_parse_doubles(const char *s, double lo, int max, double *out, int *n);

/* Prints the help of a command: its help paragraph, then the option table with defaults. */
void cli_print_help(FILE *f, const cli_cmd *cmd, const cli_opt *opts, int n);

/* ---- Output -------------------------------------------------------------------------------- */
/* A number as JSON: the shortest %g form that reads back exactly, or null for a value that
 * is not finite (JSON has no inf or nan). */
void cli_json_number(FILE *f, double v);
/* A string as a quoted JSON string (escaping quotes, backslashes and control characters). */
void cli_json_string(FILE *f, const char *s);
/* Seconds on a monotonic clock, for timings. */
double cli_seconds(void);

#endif
