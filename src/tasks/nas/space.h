/* space.h — the DARTS cell search space as blo ops (internal to the library: run.c, the
 * tests). One network description serves both the supernet (every edge a mixed op over the 8
 * candidates, weighted by softmax(α)) and the discrete network of a genotype (two ops per
 * node), and one forward function both builds the parameters and evaluates the network, so
 * the two can never disagree on the parameters' order or shapes.
 *
 * Ops, as DARTS' operations.py (C channels in and out; stride 2 on the edges that leave a
 * reduction cell's inputs):
 *   sep_conv_k   (ReLU, depthwise k×k, pointwise 1×1, BN) twice, the first with the stride
 *   dil_conv_k   ReLU, depthwise k×k with dilation 2, pointwise 1×1, BN
 *   max/avg_pool 3×3, padding 1 (avg: padding not counted); in the supernet followed by BN
 *   skip_connect identity; with stride 2 a factorized reduce: ReLU, two 1×1 stride-2 convs on
 *                the image and on the image shifted by one pixel, concatenated, BN
 *   none         contributes nothing (its weight still takes part in the softmax)
 * BN is the batch's statistics; in the supernet without affine parameters (as DARTS); the
 * discrete network has γ, β and running statistics for evaluation.
 */
#ifndef BLO_NAS_SPACE_H
#define BLO_NAS_SPACE_H

#include "../../internal.h"
#include "blo/nas.h"

typedef struct blo__nas_net {
    int supernet;          /* 1: mixed edges weighted by α; 0: the genotype's ops */
    blo_nas_genotype geno; /* the discrete network's architecture (supernet: geno.nodes only) */
    int cells, channels, nodes;
    int64_t in_ch, size, classes;
    blo_dtype dtype;
    blo_ctx *ctx; /* owns the parameters and the running statistics */
    int ny;
    blo_tensor **y; /* the parameters, in the order the forward reads them */
    int nstats;
    blo_tensor **stats; /* discrete network: running mean, var per BN (NULL in the supernet) */
} blo__nas_net;

/* Makes the parameters (Kaiming-normal conv weights and Kaiming-uniform classifier from rng,
 * BN γ = 1, β = 0, biases 0) of a supernet (g NULL, nodes used) or of g's discrete network,
 * for images [*, in_ch, size, size] and `classes` classes. Returns BLO_OK, or an error with a
 * message in err (and nothing to free). Free with blo__nas_net_free. */
blo_status blo__nas_net_init(blo__nas_net *n, const blo_nas_genotype *g, int cells, int channels, int nodes,
                        int64_t in_ch, int64_t size, int64_t classes, blo_dtype dt, blo_rng *rng,
                        char *err, size_t errlen);
void blo__nas_net_free(blo__nas_net *n);

/* Whether cell k is a reduction cell (DARTS: k = cells/3 and k = 2 cells/3). */
int blo__nas_is_reduction(int cells, int k);

/* The logits [N, classes] of images X [N, in_ch, size, size] in ctx, with parameters
 * y[0 .. n->ny) (the solver's, or n->y) and, for a supernet, α_normal and α_reduce [E, 8].
 * training: BN on the batch's statistics (and, for the discrete network, an update of the
 * running ones); otherwise the running statistics (discrete network only). */
blo_tensor *blo__nas_net_forward(blo_ctx *ctx, const blo__nas_net *n, blo_tensor *const *y,
                            blo_tensor *alpha_normal, blo_tensor *alpha_reduce, blo_tensor *X,
                            int training);

/* One candidate op (the index of blo_nas_op_name) on h [N, C, H, W] with stride 1 or 2, and
 * the mixed op Σ_o w_o o(h) with w = the 8 weights of a [1, 8] row (a tensor: its gradient
 * reaches α). Both read their parameters from y starting at *next and advance it; exposed
 * for the tests, which check the mixed op against its parts. A NULL result for op none. */
blo_tensor *blo__nas_op_forward(blo_ctx *ctx, int op, blo_tensor *h, int stride, int supernet,
                           blo_tensor *const *y, int *next);
blo_tensor *blo__nas_mixed_forward(blo_ctx *ctx, blo_tensor *h, blo_tensor *w, int stride,
                              blo_tensor *const *y, int *next);
/* Makes the parameters of one mixed op for C channels and the given stride into a fresh list
 * (in pctx, *ny of them, from rng): what blo__nas_mixed_forward then reads from index 0. */
blo_status blo__nas_mixed_params(blo_ctx *pctx, int64_t C, int stride, blo_dtype dt, blo_rng *rng,
                            blo_tensor ***y, int *ny);

/* The search's bilevel problem over a supernet: images X [n, in_ch, size, size] (rows
 * [0, half) for f, [half, n) for F) with labels; each objective is the mean cross-entropy on
 * `batch` rows of its half drawn without replacement with ev->rng (the whole half, in order
 * and without touching the generator, when batch >= its size). buf: n scratch entries. */
typedef struct blo__nas_problem {
    const blo__nas_net *net;
    blo_tensor *X;
    const int64_t *labels;
    int64_t n, half, batch;
    int64_t *buf;
} blo__nas_problem;
/* Objective callbacks (blo_objective_fn) with user = a blo__nas_problem; x = (α_normal, α_reduce). */
blo_tensor *blo__nas_lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y, const blo_eval *ev,
                      void *user);
blo_tensor *blo__nas_upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y, const blo_eval *ev,
                      void *user);
/* The search's bilevel problem: x = alpha[0 .. 2) (α_normal, α_reduce), y = p->net's
 * parameters, f = blo__nas_lower, F = blo__nas_upper (user p), α unbounded. */
void blo__nas_bilevel_problem(blo_problem *prob, blo_tensor *const *alpha, blo__nas_problem *p);

#endif
