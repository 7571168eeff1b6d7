/* cpu_loss.c — the fused softmax cross-entropy: the forward (per-example loss terms and the
 * softmax probabilities p) and its first-order backward
 *   ∂ℓ_i/∂z_i = p_i - onehot(y_i),   so  g_z[i] = s_i w_i (p_i - onehot(y_i)),  g_w[i] = s_i ℓ_i
 * for the loss Σ_i w_i ℓ_i scaled by s_i (the incoming gradient times 1/N for a mean).
 * logits [N, C] contiguous. */
#include "cpu.h"

#include <math.h>

/* One row i of the forward. */
#define XENT_ROW(T, EXP, LOG)                                                                \
    do {                                                                                     \
        const T *zi = z + i * c;                                                             \
        T *pi = pr + i * c;                                                                  \
        T m = zi[0];                                                                         \
        for (int64_t j = 1; j < c; j++) m = zi[j] > m ? zi[j] : m;                           \
        double s = 0;                                                                        \
        for (int64_t j = 0; j < c; j++) {                                                    \
            pi[j] = EXP(zi[j] - m);                                                          \
            s += pi[j];                                                                      \
        }                                                                                    \
        T inv = (T)(1.0 / s);                                                                \
        for (int64_t j = 0; j < c; j++) pi[j] *= inv;                                        \
        lt[i] = (T)(LOG(s) + m - zi[y[i]]);                                                  \
    } while (0)

/* Small inputs (or one thread) run a plain loop: even a parallel region with a false if
 * clause costs a libgomp team, about 1.4 µs. Each row is computed alone either way. */
#define XENT(T, EXP, LOG)                                                                    \
    do {                                                                                     \
        const T *z = (const T *)logits->data;                                                \
        T *pr = (T *)probs->data, *lt = (T *)loss_terms->data;                               \
        if (n * c < 32768 || blo_num_threads() <= 1) {                                       \
            for (int64_t i = 0; i < n; i++) XENT_ROW(T, EXP, LOG);                           \
        } else {                                                                             \
            _Pragma("omp parallel for schedule(static)")                                     \
            for (int64_t i = 0; i < n; i++) XENT_ROW(T, EXP, LOG);                           \
        }                                                                                    \
    } while (0)


/* Element i of a one-element or [N] tensor of any stride, as double. */
static double at(const blo_tensor *t, int64_t i) {
    int64_t off = t->ndim ? i * t->stride[0] : 0;
    switch (t->dtype) {
    case BLO_F32: return ((const float *)t->data)[off];
    case BLO_F64: return ((const double *)t->data)[off];
    case BLO_I64: return (double)((const int64_t *)t->data)[off];
    }
    return 0;
}

static void put(blo_tensor *t, int64_t i, double v) {
    if (t->dtype == BLO_F32)
        ((float *)t->data)[i * t->stride[0]] = (float)v;
    else
        ((double *)t->data)[i * t->stride[0]] = v;
}

void blo__cpu_xent_backward(const blo_tensor *probs, const blo_tensor *labels,
                            const blo_tensor *loss_terms, const blo_tensor *weights,
                            const blo_tensor *g, double scale, blo_tensor *glogits,
                            blo_tensor *gweights) {
    int64_t n = probs->shape[0], c = probs->shape[1];
    bool per_example = blo__numel(g->ndim, g->shape) != 1; /* else one value for all rows */
    const int64_t *y = labels->data;
    int64_t ys = labels->stride[0];
    for (int64_t i = 0; i < n; i++) {
        double gi = (per_example ? at(g, i) : at(g, 0)) * scale;
        if (glogits) {
            double f = gi * (weights ? at(weights, i) : 1.0);
            int64_t yi = y[i * ys];
            if (probs->dtype == BLO_F32) {
                const float *pr = (const float *)probs->data + i * c;
                float *o = (float *)glogits->data + i * c;
                for (int64_t k = 0; k < c; k++) o[k] = (float)(f * pr[k]);
                o[yi] -= (float)f;
            } else {
                const double *pr = (const double *)probs->data + i * c;
                double *o = (double *)glogits->data + i * c;
                for (int64_t k = 0; k < c; k++) o[k] = f * pr[k];
                o[yi] -= f;
            }
        }
        if (gweights) put(gweights, i, gi * at(loss_terms, i));
    }
}

/* The weighted loss from its terms: per example (NONE), or summed in double in example order
 * (SUM, MEAN). */
static void xent_reduce(const blo_tensor *terms, const blo_tensor *w, blo_reduction red,
                        blo_tensor *out) {
    int64_t n = terms->shape[0];
    if (red == BLO_REDUCE_NONE) {
        for (int64_t i = 0; i < n; i++) put(out, i, at(terms, i) * (w ? at(w, i) : 1));
        return;
    }
    double total = 0;
    for (int64_t i = 0; i < n; i++) total += at(terms, i) * (w ? at(w, i) : 1);
    if (red == BLO_REDUCE_MEAN) total /= (double)n;
    if (out->dtype == BLO_F32)
        *(float *)out->data = (float)total;
    else
        *(double *)out->data = total;
}

void blo__cpu_xent_forward(const blo_tensor *logits, const blo_tensor *labels,
                           const blo_tensor *weights, blo_reduction red,
                           blo_tensor *loss_terms, blo_tensor *probs, blo_tensor *out) {
    int64_t n = logits->shape[0], c = logits->shape[1];
    const int64_t *y = labels->data;
    if (logits->dtype == BLO_F32)
        XENT(float, expf, log);
    else
        XENT(double, exp, log);
    xent_reduce(loss_terms, weights, red, out);
}
