/* cpu_vec.c — the vector algebra of the iterative solvers (linalg/): dot, axpy and scale on
 * whole tensors, in double precision, the reference CPU kernels.
 *
 *   dot(a, b)       = Σ_k a_k b_k          (a, b: same shape, same float dtype)
 *   axpy(α, x, y):    y_k ← y_k + α x_k    (rounded once to y's dtype)
 *   scale(α, y):      y_k ← α y_k
 */
#include "cpu.h"

double blo__cpu_dot(const blo_tensor *a, const blo_tensor *b) {
    int64_t m = blo__numel(a->ndim, a->shape);
    if (a->dtype == BLO_F64 && b->dtype == BLO_F64 && blo__is_contig(a) && blo__is_contig(b)) {
        const double *x = a->data, *y = b->data;
        double acc = 0;
        for (int64_t k = 0; k < m; k++) acc += x[k] * y[k];
        return acc;
    }
    if (a->dtype == BLO_F32 && b->dtype == BLO_F32 && blo__is_contig(a) && blo__is_contig(b)) {
        /* Eight partial sums in double (lanes the compiler can vectorise; one chain of
         * dependent adds would run at the adder's latency), combined pairwise. */
        const float *x = a->data, *y = b->data;
        double part[8] = {0};
        int64_t k = 0;
        for (; k + 8 <= m; k += 8)
            for (int j = 0; j < 8; j++) part[j] += (double)x[k + j] * y[k + j];
        for (; k < m; k++) part[0] += (double)x[k] * y[k];
        return ((part[0] + part[4]) + (part[1] + part[5])) + ((part[2] + part[6]) + (part[3] + part[7]));
    }
    double acc = 0;
    for (int64_t k = 0; k < m; k++) acc += blo_tensor_get(a, k) * blo_tensor_get(b, k);
    return acc;
}

void blo__cpu_axpy(double a, const blo_tensor *x, blo_tensor *y) {
    int64_t m = blo__numel(y->ndim, y->shape);
    bool contig = blo__is_contig(x) && blo__is_contig(y);
    if (contig && y->dtype == BLO_F64 && x->dtype == BLO_F64) {
        const double *xs = x->data;
        double *ys = y->data;
        for (int64_t k = 0; k < m; k++) ys[k] += a * xs[k];
    } else if (contig && y->dtype == BLO_F32 && x->dtype == BLO_F32) {
        const float *xs = x->data; /* in double, rounded once, as the general path */
        float *ys = y->data;
        for (int64_t k = 0; k < m; k++) ys[k] = (float)((double)ys[k] + a * (double)xs[k]);
    } else {
        for (int64_t k = 0; k < m; k++)
            blo_tensor_set(y, k, blo_tensor_get(y, k) + a * blo_tensor_get(x, k));
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
        for (int64_t k = 0; k < m; k++) blo_tensor_set(y, k, a * blo_tensor_get(y, k));
    }
}
