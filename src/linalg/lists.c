/* lists.c — list algebra for the solvers of this folder and the implicit methods. */
#include "lists.h"

#include <math.h>
#include <string.h>

double blo__dot_list(int n, blo_tensor *const *a, blo_tensor *const *b) {
    double acc = 0;
    for (int i = 0; i < n; i++)
        acc += blo__vec_dot(a[i], b[i]);
    return acc;
}

double blo__norm_list(int n, blo_tensor *const *t) {
    return sqrt(blo__dot_list(n, t, t));
}

void blo__axpy_list(int n, double a, blo_tensor *const *x, blo_tensor *const *y) {
    for (int i = 0; i < n; i++)
        blo__vec_axpy(a, x[i], y[i]);
}

void blo__scale_list(int n, double a, blo_tensor *const *y) {
    for (int i = 0; i < n; i++)
        blo__vec_scale(a, y[i]);
}

void blo__copy_list(int n, blo_tensor *const *x, blo_tensor *const *y) {
    for (int i = 0; i < n; i++)
        blo_copy_into(y[i], x[i]);
}

blo_tensor **blo__zeros_list(blo_ctx *ctx, int n, blo_tensor *const *like) {
    size_t bytes = sizeof(blo_tensor *) * (size_t)(n > 0 ? n : 1);
    blo_tensor **l = blo__ctx_alloc(ctx, bytes);
    if (!l) return NULL;
    memset(l, 0, bytes);
    for (int i = 0; i < n; i++)
        if (!(l[i] = blo_zeros(ctx, like[i]->dtype, like[i]->ndim, like[i]->shape))) return NULL;
    return l;
}

blo_status blo__linop_apply(blo_ctx *ctx, const blo_linop *A, blo_tensor *const *in,
                            blo_tensor *const *out, const char *who) {
    blo_mark mk = blo_ctx_mark(ctx);
    blo_status st = A->apply(ctx, in, out, A->user);
    blo_ctx_rewind(ctx, mk);
    if (st && !blo_ctx_status(ctx)) blo_ctx_set_error(ctx, st, "%s: the operator failed", who);
    return st;
}

blo_status blo__linalg_check(blo_ctx *ctx, const blo_linop *A, blo_tensor *const *x,
                             const blo_linalg_opts *o, const char *who) {
    if (!ctx) return BLO_ERR_INVALID;
    if (!A || !A->apply || A->n < 1 || !x || !o || o->max_iter < 0)
        return blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                                 "%s: needs an operator on n >= 1 tensors, x and options with "
                                 "max_iter >= 0",
                                 who);
    for (int i = 0; i < A->n; i++)
        if (!x[i])
            return blo_ctx_set_error(ctx, BLO_ERR_INVALID, "%s: x[%d] is missing", who, i);
        else if (!blo__check_float(ctx, who, x[i]))
            return blo_ctx_status(ctx);
    return BLO_OK;
}

double blo__dense_solve(int d, double *M, double *Z, int k) {
    double minpiv = INFINITY;
    for (int c = 0; c < d; c++) {
        int piv = c;
        for (int i = c + 1; i < d; i++)
            if (fabs(M[i * d + c]) > fabs(M[piv * d + c])) piv = i;
        for (int j = 0; j < d; j++) {
            double t = M[c * d + j];
            M[c * d + j] = M[piv * d + j];
            M[piv * d + j] = t;
        }
        for (int j = 0; j < k; j++) {
            double t = Z[c * k + j];
            Z[c * k + j] = Z[piv * k + j];
            Z[piv * k + j] = t;
        }
        double p = M[c * d + c];
        if (fabs(p) < minpiv) minpiv = fabs(p);
        if (p == 0) return 0;
        for (int i = c + 1; i < d; i++) {
            double f = M[i * d + c] / p;
            if (f == 0) continue;
            for (int j = c; j < d; j++)
                M[i * d + j] -= f * M[c * d + j];
            for (int j = 0; j < k; j++)
                Z[i * k + j] -= f * Z[c * k + j];
        }
    }
    for (int c = d - 1; c >= 0; c--)
        for (int j = 0; j < k; j++) {
            double s = Z[c * k + j];
            for (int i = c + 1; i < d; i++)
                s -= M[c * d + i] * Z[i * k + j];
            Z[c * k + j] = s / M[c * d + c];
        }
    return minpiv;
}
