/* score.c — √PEHE, ε_ATE and the nearest-neighbour imputed effects (formulas in causal.h). */
#include "causal_internal.h"

#include <math.h>

double blo_causal_pehe(int64_t n, const double *tau, const float *mu0, const float *mu1) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = tau[i] - ((double)mu1[i] - (double)mu0[i]);
        s += e * e;
    }
    return n > 0 ? sqrt(s / (double)n) : NAN;
}

double blo_causal_ate_error(int64_t n, const double *tau, const float *mu0, const float *mu1) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += tau[i] - ((double)mu1[i] - (double)mu0[i]);
    return n > 0 ? fabs(s / (double)n) : NAN;
}

/* Nearest neighbour search with early abandoning: a candidate's squared distance stops
 * accumulating once it reaches the best so far (it cannot win: ties keep the lower row). */
blo_status blo_causal_nn_effects(const blo_causal_data *d, const int64_t *rows, int64_t k,
                                 double *tau_nn) {
    int64_t nt = 0;
    for (int64_t a = 0; a < k; a++) nt += d->t[rows ? rows[a] : a] == 1;
    if (nt == 0 || nt == k) return BLO_ERR_INVALID;
    for (int64_t a = 0; a < k; a++) {
        int64_t i = rows ? rows[a] : a, best = -1;
        double bd = INFINITY;
        const float *xi = d->x + i * d->d;
        for (int64_t b = 0; b < k; b++) {
            int64_t j = rows ? rows[b] : b;
            if (d->t[j] == d->t[i]) continue;
            const float *xj = d->x + j * d->d;
            double s = 0;
            for (int64_t c = 0; c < d->d && s < bd; c++) {
                double e = (double)xi[c] - (double)xj[c];
                s += e * e;
            }
            if (s < bd) {
                bd = s;
                best = j;
            }
        }
        tau_nn[a] = d->t[i] == 1 ? (double)d->y[i] - d->y[best] : (double)d->y[best] - d->y[i];
    }
    return BLO_OK;
}
