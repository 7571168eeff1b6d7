/* trials.h — `--trials N`: N independent runs of a task (seed, seed + 1, ...) spread over the
 * ranks of an MPI job. The ranks are cut into G groups of R / G ranks (G = the largest divisor
 * of R that is at most N), each group a communicator of its own (blo_comm_split); trial k runs
 * on group k mod G, data-parallel over that group's ranks, and the groups' rows meet on every
 * rank (a sum over the world in which each row has one writer) for one summary table. */
#ifndef BLO_CLI_TRIALS_H
#define BLO_CLI_TRIALS_H

#include "blo/dist.h"

#include <stdbool.h>

typedef struct cli_trials {
    int n;            /* trials */
    int groups;       /* G */
    int group;        /* this rank's group */
    int group_root;   /* this rank is its group's rank 0 */
    blo_comm *comm;   /* this rank's group (world when G = 1) */
    double *table;    /* n rows of ncols values; rows not run here are 0 until gathered */
    int ncols;
} cli_trials;

/* Plans n trials on world's ranks with rows of ncols values. Returns false when memory or the
 * split fails. */
bool cli_trials_begin(cli_trials *tr, blo_comm *world, int n, int ncols);
/* Whether trial k runs on this rank's group. */
bool cli_trials_mine(const cli_trials *tr, int k);
/* Row k of the table (fill it on the group's rank 0 after trial k). */
double *cli_trials_row(cli_trials *tr, int k);
/* Every rank gets every row (a collective on world). */
void cli_trials_gather(cli_trials *tr, blo_comm *world);
void cli_trials_end(cli_trials *tr);

#endif
