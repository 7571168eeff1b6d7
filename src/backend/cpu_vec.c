/* cpu_vec.c — the vector algebra of the iterative solvers (linalg/): dot, axpy and scale on
 * whole tensors, in double precision, the reference CPU kernels.
 *
 *   dot(a, b)       = Σ_k a_k b_k          (a, b: same shape, same float dtype)
 *   axpy(α, x, y):    y_k ← y_k + α x_k    (rounded once to y's dtype)
 *   scale(α, y):      y_k ← α y_k
 */
#include "cpu.h"

/* The storage offset of a flat row-major index of any view, by its strides (the general
 * path; the integer dtypes never reach these kernels). */
static int64_t offset_of(const blo_tensor *t, int64_t flat) {
    int64_t o = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        o += (flat % t->shape[d]) * t->stride[d];
        flat /= t->shape[d];
    }
    return o;
}

static double get(const blo_tensor *t, int64_t flat) {
    int64_t o = offset_of(t, flat);
    return t->dtype == BLO_F32 ? (double)((const float *)t->data)[o] : ((const double *)t->data)[o];
}

static void set(blo_tensor *t, int64_t flat, double v) {
    int64_t o = offset_of(t, flat);
    if (t->dtype == BLO_F32)
        ((float *)t->data)[o] = (float)v;
    else
        ((double *)t->data)[o] = v;
}

/* Eight partial sums in double (lanes the compiler vectorises; one chain of dependent adds
 * would run at the adder's latency), combined pairwise. */
BLO_ROW_CLONES static double dot_f32(const float *x, const float *y, int64_t m) {
    double part[8] = {0};
    int64_t k = 0;
    for (; k + 8 <= m; k += 8)
        for (int j = 0; j < 8; j++) part[j] += (double)x[k + j] * y[k + j];
    for (; k < m; k++) part[0] += (double)x[k] * y[k];
    return ((part[0] + part[4]) + (part[1] + part[5])) + ((part[2] + part[6]) + (part[3] + part[7]));
}

/* In double, rounded once, as the general path; in blocks of eight for the vectoriser. */
BLO_ROW_CLONES static void axpy_f32(double a, const float *restrict x, float *restrict y,
                                     int64_t m) {
    int64_t k = 0;
    for (; k + 8 <= m; k += 8)
        for (int j = 0; j < 8; j++) y[k + j] = (float)((double)y[k + j] + a * (double)x[k + j]);
    for (; k < m; k++) y[k] = (float)((double)y[k] + a * (double)x[k]);
}

double blo__cpu_dot(const blo_tensor *a, const blo_tensor *b) {
    int64_t m = blo__numel(a->ndim, a->shape);
    if (a->dtype == BLO_F64 && b->dtype == BLO_F64 && blo__is_contig(a) && blo__is_contig(b)) {
        const double *x = a->data, *y = b->data;
        double acc = 0;
        for (int64_t k = 0; k < m; k++) acc += x[k] * y[k];
        return acc;
    }
    if (a->dtype == BLO_F32 && b->dtype == BLO_F32 && blo__is_contig(a) && blo__is_contig(b))
        return dot_f32(a->data, b->data, m);
    double acc = 0;
    for (int64_t k = 0; k < m; k++) acc += get(a, k) * get(b, k);
    return acc;
}

void blo__cpu_axpy(double a, const blo_tensor *x, blo_tensor *y) {
    int64_t m = blo__numel(y->ndim, y->shape);
    bool contig = blo__is_contig(x) && blo__is_contig(y);
    if (contig && y->dtype == BLO_F64 && x->dtype == BLO_F64) {
        const double *xs = x->data;
        double *ys = y->data;
        for (int64_t k = 0; k < m; k++) ys[k] += a * xs[k];
    } else if (contig && y->dtype == BLO_F32 && x->dtype == BLO_F32 &&
               ((const float *)x->data + m <= (const float *)y->data ||
                (const float *)y->data + m <= (const float *)x->data)) { /* restrict */
        axpy_f32(a, x->data, y->data, m);
    } else {
        for (int64_t k = 0; k < m; k++)
            set(y, k, get(y, k) + a * get(x, k));
    }
}

void blo__cpu_scale(double a, blo_tensor *y) {
    int64_t m = blo__numel(y->ndim, y->shape);
    if (blo__is_contig(y) && y->dtype == BLO_F64) {
        double *ys = y->data;
        for (int64_t k = 0; k < m; k++) ys[k] *= a;
    } else if (blo__is_contig(y) && y->dtype == BLO_F32) {
        float *ys = y->data;
        for (int64_t k = 0; k < m; k++) ys[k] = (float)(a * (double)ys[k]);
    } else {
        for (int64_t k = 0; k < m; k++) set(y, k, a * get(y, k));
    }
}
