/* reweight.h — the reweighting task's bilevel problem and its online step (internal: the
 * runner and the tests). The maths is in include/blo/reweight.h.
 *
 *     x = φ = (W1 [1, Hv], b1 [Hv], W2 [Hv, 1], b2 [1])   V(ℓ) = σ(relu(ℓ W1 + b1) W2 + b2)
 *       or, for per-example weights, x = ε [B]
 *     y = w = (W1 [d, H], b1 [H], W2 [H, C], b2 [C])       the MLP classifier
 *       or (K1 [K, 1, 3, 3], c1 [K], K2 [2K, K, 3, 3], c2 [2K], W [2K q², C], b [C]), q =
 *       ⌊⌊s/2⌋/2⌋ on images of side s = √d                   the convolutional one
 */
#ifndef BLO_TASKS_REWEIGHT_H
#define BLO_TASKS_REWEIGHT_H

#include "../common/common.h"
#include "blo/reweight.h"

#define BLO__RW_MAXY 6 /* the classifier's tensors: 4 (MLP) or 6 (conv) */

typedef struct blo__reweight {
    /* Borrowed: training and meta data (X, Xm of one float dtype [n, d], labels i64), and
     * the labels' host copies (made by init, owned). */
    blo_tensor *X, *labels, *Xm, *labels_m;
    int64_t *lab, *lab_m;
    int64_t n, nm, d, classes, batch, meta_batch;
    blo_reweight_weights weights;
    blo_reweight_norm norm;       /* set by the caller after init (0: batch) */
    blo_reweight_classifier cls;
    int64_t width, side;          /* MLP hidden width or conv channels K; conv: image side */
    /* The rows of the next evaluation ([batch] / [meta_batch]), set by the online loop;
     * NULL: drawn from the solver's generator (ev->rng) with replacement. */
    const int64_t *batch_rows, *meta_rows;
    /* Data parallel (blo__reweight_distribute): NULL, or the ranks that share every minibatch;
     * this rank evaluates positions [lo, lo + k) of each training minibatch and [mlo, mlo +
     * mk) of each meta minibatch (all ranks hold all the data and draw the same rows). */
    blo_comm *comm;
    int64_t lo, k, mlo, mk;
    /* Owned. */
    blo_ctx *ctx;
    int nx;               /* 4 (network) or 1 (ε, per-example) or 0 (none) */
    int ny;               /* 4 (MLP) or 6 (conv) */
    blo_tensor *x0[4];    /* φ, or ε = 0 [batch] */
    blo_tensor *y0[BLO__RW_MAXY]; /* the classifier's start */
} blo__reweight;

/* Checks the data, draws φ and w from rng (PyTorch's Linear and Conv2d start; w first). width
 * is the MLP's hidden width or the conv classifier's K (which needs square images of side
 * s >= 4). On failure returns BLO_ERR_* with a message and leaves nothing to free; else free
 * with blo__reweight_free. */
blo_status blo__reweight_init(blo__reweight *h, blo_tensor *X, blo_tensor *labels, blo_tensor *Xm,
                              blo_tensor *labels_m, int64_t classes,
                              blo_reweight_classifier cls, int64_t width,
                              int64_t vnet_hidden, int64_t batch, int64_t meta_batch,
                              blo_reweight_weights weights, blo_rng *rng, char *err,
                              size_t errlen);
void blo__reweight_free(blo__reweight *h);
/* Shares every minibatch (training and meta) over comm's ranks by positions: contiguous
 * blocks, the first B mod R ranks one more; the sums over examples become allreduce_sum of
 * the blocks' sums, φ (ε) and w replicated (blo/dist.h). With one rank nothing changes.
 * BLO_ERR_INVALID when a rank would hold no position of a batch. */
blo_status blo__reweight_distribute(blo__reweight *h, blo_comm *comm, char *err, size_t errlen);
/* The problem: nx = h->nx hyper-variables, ny = h->ny, user pointer h. */
blo_problem blo__reweight_problem(blo__reweight *h);
/* The classifier's logits on X [m, d]. */
blo_tensor *blo__reweight_logits(blo_ctx *ctx, const blo__reweight *h, blo_tensor *X,
                                 blo_tensor *const *w);
/* V(ℓ; φ) for losses l [m]: weights [m] in (0, 1). */
blo_tensor *blo__reweight_vnet(blo_ctx *ctx, blo_tensor *const *phi, blo_tensor *l);

/* One online step on the minibatch h->batch_rows and meta batch h->meta_rows (both set):
 * virtual step, φ step (weights = network) or the per-example weights, real step; w, φ and
 * their optimizer states are updated in place. sc is scratch, rewound before returning.
 * *weights_out (optional, [batch] doubles) receives the weights of the real step, *loss the
 * mean training CE of the batch. */
typedef struct blo__reweight_online {
    blo_opt opt, meta_opt;
    blo_opt_state w_state, phi_state;
    blo_tensor *phi[4], *w[BLO__RW_MAXY]; /* long-lived, requires_grad set */
    double meta_grad_norm; /* ‖dF/dx‖ of the last step (NAN for plain cross-entropy) */
} blo__reweight_online;
/* The virtual step's meta gradient gx[0 .. h->nx) = ∂F(ŵ(x))/∂x, ŵ(x) = w − lr ∇_w f(x, w), on
 * h->batch_rows and h->meta_rows, in sc (x: o->phi, or ε [batch] with requires_grad). */
blo_status blo__reweight_meta_grad(blo__reweight *h, blo__reweight_online *o, blo_ctx *sc,
                                   blo_tensor *const *x, blo_tensor **gx);
blo_status blo__reweight_step(blo__reweight *h, blo__reweight_online *o, blo_ctx *sc,
                              double *weights_out, double *loss);

#endif
