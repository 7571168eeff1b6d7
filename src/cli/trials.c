/* trials.c — N independent runs over the ranks' groups (see trials.h). */
#include "trials.h"

#include <stdbool.h>
#include <string.h>

bool cli_trials_begin(cli_trials *tr, blo_comm *world, int n, int ncols) {
    memset(tr, 0, sizeof *tr);
    int R = blo_comm_size(world);
    tr->n = n;
    tr->ncols = ncols;
    tr->groups = 1;
    for (int g = n < R ? n : R; g >= 1; g--)
        if (R % g == 0) {
            tr->groups = g;
            break;
        }
    int per = R / tr->groups;
    tr->group = blo_comm_rank(world) / per;
    tr->comm = tr->groups == 1 ? world : blo_comm_split(world, tr->group, blo_comm_rank(world));
    tr->table = blo_calloc((size_t)n * (size_t)ncols, sizeof(double));
    if (!tr->comm || !tr->table) {
        cli_trials_end(tr);
        return false;
    }
    tr->group_root = blo_comm_rank(tr->comm) == 0;
    return true;
}

bool cli_trials_mine(const cli_trials *tr, int k) {
    return k % tr->groups == tr->group;
}

double *cli_trials_row(cli_trials *tr, int k) {
    return tr->table + (size_t)k * (size_t)tr->ncols;
}

void cli_trials_gather(cli_trials *tr, blo_comm *world) {
    /* Rows a rank did not write are 0 there; only the group's rank 0 keeps its rows. */
    if (!tr->group_root) memset(tr->table, 0, sizeof(double) * (size_t)tr->n * (size_t)tr->ncols);
    blo_comm_sum_f64(world, tr->table, (int64_t)tr->n * tr->ncols);
}

void cli_trials_end(cli_trials *tr) {
    blo_comm_free(tr->comm);
    blo_free(tr->table);
    tr->comm = NULL;
    tr->table = NULL;
}
