/* task_common.c — what the task runners share: checking classification data and the solve
 * step (see common.h). */
#include "common.h"

#include <math.h>
#include <string.h>
#include <time.h>

double blo__task_cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

blo_problem blo__task_problem(int nx, blo_tensor *const *x, int ny, blo_tensor *const *y,
                              blo_objective_fn upper, blo_objective_fn lower, void *user) {
    blo_problem p;
    memset(&p, 0, sizeof p);
    p.nx = nx;
    p.x = x;
    p.ny = ny;
    p.y = y;
    p.upper = upper;
    p.lower = lower;
    p.user = user;
    p.x_lo = -INFINITY;
    p.x_hi = INFINITY;
    return p;
}

double blo__task_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

blo_status blo__task_solve(const blo_problem *p, const blo_config *c, const char *resume,
                           blo_solver **s, char *err, size_t errlen) {
    *s = blo_solver_new(p, c, err, errlen);
    if (!*s) return BLO_ERR_INVALID;
    blo_status st = resume ? blo_solver_load(*s, resume) : BLO_OK;
    if (!st) st = blo_solver_run(*s);
    if (st) blo__fail(err, errlen, st, "%s", blo_solver_error(*s));
    return st;
}

/* Checks labels [m] (i64) against m rows and raises *max_label to the largest one. */
static blo_status check_labels(const char *task, const char *what, const blo_tensor *lab,
                               int64_t m, int64_t *max_label, char *err, size_t errlen) {
    if (!lab || blo_tensor_dtype(lab) != BLO_I64 || blo_tensor_ndim(lab) != 1 ||
        blo_tensor_dim(lab, 0) != m)
        return blo__fail(err, errlen, BLO_ERR_SHAPE, "%s: %s must be an i64 vector of %lld labels",
                         task, what, (long long)m);
    for (int64_t i = 0; i < m; i++) {
        double v = blo_tensor_get(lab, i);
        if (v < 0)
            return blo__fail(err, errlen, BLO_ERR_INVALID, "%s: %s[%lld] = %lld is negative", task,
                             what, (long long)i, (long long)v);
        if ((int64_t)v > *max_label) *max_label = (int64_t)v;
    }
    return BLO_OK;
}

blo_status blo__check_classification(const char *task, const blo_tensor *X,
                                     const blo_tensor *labels, const blo_tensor *Xv,
                                     const blo_tensor *labels_v, int64_t *classes, char *err,
                                     size_t errlen) {
    if (!X || !Xv || blo_tensor_ndim(X) != 2 || blo_tensor_ndim(Xv) != 2)
        return blo__fail(err, errlen, BLO_ERR_SHAPE, "%s: X and Xv must be matrices [n, d]", task);
    blo_dtype dt = blo_tensor_dtype(X);
    if (dt == BLO_I64 || blo_tensor_dtype(Xv) != dt)
        return blo__fail(err, errlen, BLO_ERR_DTYPE,
                         "%s: X and Xv must share a float dtype (got %s and %s)", task,
                         blo_dtype_name(dt), blo_dtype_name(blo_tensor_dtype(Xv)));
    int64_t n = blo_tensor_dim(X, 0), d = blo_tensor_dim(X, 1), nv = blo_tensor_dim(Xv, 0);
    if (n < 1 || nv < 1 || d < 1 || blo_tensor_dim(Xv, 1) != d)
        return blo__fail(err, errlen, BLO_ERR_SHAPE,
                         "%s: X [%lld, %lld] and Xv [%lld, %lld] need rows and the same number "
                         "of features",
                         task, (long long)n, (long long)d, (long long)nv,
                         (long long)blo_tensor_dim(Xv, 1));
    int64_t max_label = -1;
    blo_status st = check_labels(task, "labels", labels, n, &max_label, err, errlen);
    if (!st) st = check_labels(task, "labels_v", labels_v, nv, &max_label, err, errlen);
    if (st) return st;
    if (*classes <= 0) *classes = max_label + 1;
    if (*classes < 2 || max_label >= *classes)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "%s: labels reach %lld but there are %lld classes (need >= 2)", task,
                         (long long)max_label, (long long)*classes);
    return BLO_OK;
}
