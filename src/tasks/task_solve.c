/* task_solve.c — the solve step every task runner shares (see tasks.h). */
#include "tasks.h"

blo_status blo__task_solve(const blo_problem *p, const blo_config *c, const char *resume,
                           blo_solver **s, char *err, size_t errlen) {
    *s = blo_solver_new(p, c, err, errlen);
    if (!*s) return BLO_ERR_INVALID;
    blo_status st = resume ? blo_solver_load(*s, resume) : BLO_OK;
    if (!st) st = blo_solver_run(*s);
    if (st) blo__fail(err, errlen, st, "%s", blo_solver_error(*s));
    return st;
}
