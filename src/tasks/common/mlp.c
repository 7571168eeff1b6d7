/* mlp.c — the fully connected networks the tasks train (see common.h). */
#include "common.h"

#include <math.h>

blo_status blo__mlp_init(blo_ctx *ctx, blo_dtype dt, int layers, const int64_t *width, blo_rng *rng,
                         blo_tensor **p) {
    for (int l = 0; l < layers; l++) {
        double bound = 1.0 / sqrt((double)width[l]);
        p[2 * l] = blo_tensor_new(ctx, dt, 2, (int64_t[]){width[l], width[l + 1]});
        p[2 * l + 1] = blo_tensor_new(ctx, dt, 1, &width[l + 1]);
        if (!p[2 * l] || !p[2 * l + 1]) return blo_ctx_status(ctx) ? blo_ctx_status(ctx) : BLO_ERR_NOMEM;
        blo_init_uniform(p[2 * l], rng, -bound, bound);
        blo_init_uniform(p[2 * l + 1], rng, -bound, bound);
    }
    return BLO_OK;
}

blo_tensor *blo__mlp_forward(blo_ctx *ctx, blo_tensor *X, int layers, blo_tensor *const *p,
                             int relu) {
    blo_tensor *h = X;
    for (int l = 0; l < layers; l++) {
        h = blo_add(ctx, blo_matmul(ctx, h, p[2 * l]), p[2 * l + 1]);
        if (relu && l + 1 < layers) h = blo_relu(ctx, h);
    }
    return h;
}
