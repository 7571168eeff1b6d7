/* noise.c — label noise for the tasks that learn to ignore it (hyper-cleaning, reweighting). */
#include "blo/task.h"

#include "common.h"

#include <math.h>

int64_t blo_label_noise(blo_rng *g, int64_t *labels, int64_t n, int64_t classes, double rate,
                        blo_noise_kind kind) {
    if (!g || !labels || n < 0 || classes < 2 || !(rate >= 0 && rate <= 1) ||
        (kind != BLO_NOISE_UNIFORM && kind != BLO_NOISE_PAIR))
        return -1;
    int64_t k = (int64_t)llround(rate * (double)n);
    for (int64_t i = 0; i < k; i++)
        labels[i] = kind == BLO_NOISE_PAIR ? (labels[i] + 1) % classes
                                           : (int64_t)blo_rng_below(g, (uint64_t)classes);
    return k;
}
