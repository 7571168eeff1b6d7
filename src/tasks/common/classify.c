/* classify.c — scoring a classifier, shared by every task (and the CLI's demo): the fraction
 * of rows whose largest logit is the label's. Reads values through host copies only. */
#include "blo/task.h"

#include "common.h"

#include <math.h>

double blo_accuracy(const blo_tensor *logits, const blo_tensor *labels) {
    if (!logits || !labels || blo_tensor_ndim(logits) < 1) return NAN;
    int64_t C = blo_tensor_dim(logits, blo_tensor_ndim(logits) - 1);
    int64_t M = C > 0 ? blo_tensor_numel(logits) / C : 0;
    if (M < 1 || blo_tensor_numel(labels) != M) return NAN;
    double *z = blo_malloc(sizeof(double) * (size_t)(M * C));
    int64_t *y = blo_malloc(sizeof(int64_t) * (size_t)M);
    double acc = NAN;
    if (z && y && !blo_tensor_copy_to_host(logits, BLO_F64, z) &&
        !blo_tensor_copy_to_host(labels, BLO_I64, y)) {
        int64_t hits = 0;
        for (int64_t i = 0; i < M; i++) {
            const double *zi = z + i * C;
            int64_t best = 0;
            for (int64_t c = 1; c < C; c++)
                if (zi[c] > zi[best]) best = c;
            hits += best == y[i];
        }
        acc = (double)hits / (double)M;
    }
    blo_free(z);
    blo_free(y);
    return acc;
}
