/* causal_tiny.h — the tiny causal data set of the causal task's tests (80 units, two
 * covariates, treatment more likely for x₀ > 0, effect 1 + x₁²) and a run that must succeed. */
#ifndef BLO_TESTS_CAUSAL_TINY_H
#define BLO_TESTS_CAUSAL_TINY_H

#include "blo/causal.h"
#include "testutil.h"

enum { CT_N = 80, CT_D = 2 };

typedef struct causal_tiny {
    float x[CT_N * CT_D], t[CT_N], y[CT_N], m0[CT_N], m1[CT_N];
    blo_causal_data d;
} causal_tiny;

static inline void causal_tiny_init(causal_tiny *c) {
    blo_rng rng;
    blo_rng_seed(&rng, 11);
    for (int i = 0; i < CT_N; i++) {
        float *x = c->x + i * CT_D;
        x[0] = (float)blo_rng_normal(&rng);
        x[1] = (float)blo_rng_normal(&rng);
        c->t[i] = (float)(blo_rng_uniform(&rng) < 0.3 + 0.3 * (x[0] > 0));
        c->m0[i] = x[0], c->m1[i] = x[0] + 1 + x[1] * x[1];
        c->y[i] = (c->t[i] == 1 ? c->m1[i] : c->m0[i]) + 0.2f * (float)blo_rng_normal(&rng);
    }
    blo_causal_data d = {CT_N, CT_D, c->x, c->t, c->y, c->m0, c->m1, 0};
    for (int i = 0; i < CT_N; i++)
        d.treated += c->t[i] == 1;
    c->d = d;
}

static inline blo_causal_result causal_tiny_run(const blo_causal_data *d,
                                                const blo_causal_config *c) {
    blo_causal_result r;
    char err[256];
    blo_status st = blo_causal_run(d, c, &r, err, sizeof err);
    TU_CHECK(st == BLO_OK, "blo_causal_run: %s", err);
    return r;
}

#endif
