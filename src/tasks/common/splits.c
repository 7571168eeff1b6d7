/* splits.c — the random permutations every task draws its splits, subsets and episodes from,
 * and the blocks that R ranks share data by.
 * The draw order is part of each task's reproducibility (a seed gives the same split across
 * versions and a resumed run), so both shuffles keep the order the tasks have always used. */
#include "common.h"

void blo__shuffle(blo_rng *r, int64_t *a, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)blo_rng_below(r, (uint64_t)(i + 1)), t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

void blo__draw_first(blo_rng *r, int64_t *a, int64_t n, int64_t k) {
    for (int64_t i = 0; i < k && i < n; i++) {
        int64_t j = i + (int64_t)blo_rng_below(r, (uint64_t)(n - i)), t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

void blo__rank_block(int64_t n, int R, int r, int64_t *lo, int64_t *count) {
    *lo = n / R * r + (r < n % R ? r : n % R);
    *count = n / R + (r < n % R);
}
