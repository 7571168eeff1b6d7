/* solver_opts.h — the options every bilevel task shares (DESIGN.md §7): the method and its
 * settings, the inner and outer optimizers, budgets, the lower-level start, checkpoints. A
 * task appends them to its own option table and turns them into a blo_config. */
#ifndef BLO_CLI_SOLVER_OPTS_H
#define BLO_CLI_SOLVER_OPTS_H

#include "blo/bilevel.h"
#include "cli.h"

typedef struct cli_solver_args {
    const char *method;
    long long outer, inner;
    const char *inner_opt, *outer_opt, *init, *amm_schedule, *inner_state;
    double inner_lr, outer_lr, init_lr, momentum, weight_decay;
    long long K; /* -1: unset; else sets the three below */
    long long trhg_window, neumann_terms, solve_iters;
    double tol, damping, alpha, eta, fd_radius, upper_lr;
    long long checkpoints;
    double diverge;
    const char *checkpoint, *resume;
    long long checkpoint_every;
    long long check_hypergrad, check_rhg_steps;
} cli_solver_args;

/* Defaults from a configuration (so each task states its own defaults once, in blo_config). */
void cli_solver_args_from(cli_solver_args *a, const blo_config *c);
/* Appends the shared options (pointing into a) to opts[*n ...]; returns the new count. opts
 * must have room for CLI_SOLVER_NOPTS more entries. */
#define CLI_SOLVER_NOPTS 30
int cli_solver_opts(cli_opt *opts, int n, cli_solver_args *a);
/* Fills c from the parsed values (keeping c's other fields). Prints a message naming the
 * option and returns false for an unknown method. */
bool cli_solver_config(const char *cmd, const cli_solver_args *a, blo_config *c);
/* One line per registered method, for a task's --help. */
void cli_print_methods(FILE *f);

#endif
