/* fewshot.h — the few-shot learners' bilevel problem (internal: the runner and the tests). */
#ifndef BLO_TASKS_FEWSHOT_H
#define BLO_TASKS_FEWSHOT_H

#include "../common/common.h"
#include "blo/fewshot.h"

/* ---- Few-shot learners as bilevel problems (learners.c; see blo_fewshot_run) ----------
 * MAML: x = every param of the MLP, y = B stacked copies from y_0 = x (init_y, from_x);
 * hyperrep: x = the body, y = B stacked heads from y_0 = 0 (fixed);
 *     f = B · mean support CE (+ ½λ Σ_b ‖head_b‖², hyperrep),  F = mean query CE. */
#define BLO_FEWSHOT_MAXP (2 * (BLO_FEWSHOT_MAX_LAYERS + 1))
typedef struct blo_fewshot_meta {
    const blo_fewshot_config *c; /* borrowed: learner, shapes, dtype, seed */
    /* Borrowed, or NULL: then the objectives use xs .. yq as the caller wrote them instead
     * of drawing each iteration's meta-batch of meta-train episodes from fs. */
    const blo_fewshot_data *fs;
    int np;          /* params of the network: 2 (layers + 1), or 2 when linear */
    int nx;          /* MAML: np; hyperrep: np - 2 (the body) */
    double lambda;   /* λ of the head problems; 0 for MAML */
    blo_ctx *ctx;    /* owns the tensors below */
    blo_tensor *p0[BLO_FEWSHOT_MAXP]; /* the initial network [d, H], [1, H], ..., [H, N], [1, N] */
    blo_tensor *y0[BLO_FEWSHOT_MAXP]; /* y's shapes [B, ...], zeros */
    blo_tensor *xs, *ys, *xq, *yq;    /* [B, N K, d], [B N K], [B, N Q, d], [B N Q] */
    blo_ctx *scratch;
    int64_t batch_iter;
} blo_fewshot_meta;
/* Checks c's learner settings (MAML or hyperrep; pretrain makes the same network) and makes the
 * initial network (PyTorch's Linear start from c->seed) and the batch tensors for images of d
 * features. On failure returns an error with a message and leaves nothing to free. */
blo_status blo_fewshot_meta_init(blo_fewshot_meta *m, const blo_fewshot_config *c,
                                 const blo_fewshot_data *fs, int64_t d, char *err, size_t errlen);
void blo_fewshot_meta_free(blo_fewshot_meta *m); /* NULL-safe */
/* The problem (nx, ny = np - nx or np) whose user pointer is m; use it with init from_x (MAML)
 * or fixed (hyperrep). */
blo_problem blo_fewshot_meta_problem(blo_fewshot_meta *m);

#endif
