/* causal_internal.h — the network's pieces shared by training, scoring and the bilevel
 * problems (internal: the causal folder and the tests). */
#ifndef BLO_CAUSAL_INTERNAL_H
#define BLO_CAUSAL_INTERNAL_H

#include "../../internal.h"
#include "blo/causal.h"

/* Parameter tensors: rep (W, b) x rep_layers, then per arm (W, b) x head_layers and the
 * output (W, b). The weight matrices are the even entries; there are blo__causal_nweights. */
int blo__causal_nparams(const blo_causal_net_config *c);
int blo__causal_nweights(const blo_causal_net_config *c);
/* Makes the parameters in ctx (Kaiming-normal weights, zero biases, requires_grad on). */
blo_status blo__causal_params(blo_ctx *ctx, const blo_causal_net_config *c, int64_t d,
                              blo_dtype dt, blo_rng *rng, blo_tensor **p);
/* ŷ [N, 2] (column a = arm a) of X [N, d]; *phi (optional) the representation (unit-norm rows
 * when c->alpha > 0). */
blo_tensor *blo__causal_forward(blo_ctx *ctx, const blo_causal_net_config *c,
                                blo_tensor *const *p, blo_tensor *X, blo_tensor **phi);
/* The training loss of causal.h on X [N, d], T [N, 1] (0/1), Y [N, 1] standardised, unit
 * weights W [N, 1] (NULL: 1); alpha a one-element tensor (NULL: c->alpha) and lam
 * [nweights] (NULL: c->l2 for every matrix). */
blo_tensor *blo__causal_loss(blo_ctx *ctx, const blo_causal_net_config *c, blo_tensor *const *p,
                             blo_tensor *X, blo_tensor *T, blo_tensor *Y, blo_tensor *W,
                             blo_tensor *alpha, blo_tensor *lam);
/* The IPM of causal.h between the rows of phi [N, k] with T [N, 1] = 1 and those with T = 0
 * (NULL when an arm is empty, or rbf with an arm of one unit). */
blo_tensor *blo__causal_ipm(blo_ctx *ctx, const blo_causal_net_config *c, blo_tensor *phi,
                            blo_tensor *T);
/* Shalit et al.'s Sinkhorn on the cost M [nt, nc] (row-major) augmented by the dummy row and
 * column: plan [(nt + 1) (nc + 1)] (NULL: not returned) and *dist = 2 Σ P_ij M̃_ij over the
 * augmented matrix. */
void blo__causal_sinkhorn(int64_t nt, int64_t nc, const double *M, double lam, int its,
                          double *plan, double *dist);
/* The standardised effects ŷ1 − ŷ0 [N, 1] of X. */
blo_tensor *blo__causal_tau(blo_ctx *ctx, const blo_causal_net_config *c, blo_tensor *const *p,
                            blo_tensor *X);
/* Rows rows[0..k) of d's covariates [k, d], treatment and a column v (d->y, ...) as [k, 1]. */
blo_tensor *blo__causal_rows_x(blo_ctx *ctx, const blo_causal_data *d, const int64_t *rows,
                               int64_t k, blo_dtype dt);
blo_tensor *blo__causal_rows_col(blo_ctx *ctx, const float *v, const int64_t *rows, int64_t k,
                                 double shift, double scale, blo_dtype dt);

/* The bilevel problems of tune hyper / weights (blo/causal.h): the training and validation
 * tensors (outcomes standardised by y_mean, y_std; tau_nn the validation units' imputed
 * effects, standardised; Wv the factual criterion's √(n / (2 n_arm))) and the problem whose
 * user pointer is this struct. Its nx, x, ny, y are the caller's to set. */
typedef struct blo__causal_bilevel {
    blo_causal_net_config net;
    blo_causal_tune tune;
    blo_causal_criterion criterion;
    blo_tensor *X, *T, *Y, *Xv, *Tv, *Yv, *tau_nn, *Wv;
    int64_t batch; /* > 0: f on that many training units drawn afresh each inner step */
    int64_t *idx;  /* batch: scratch of the training rows' count (the caller's to free) */
    blo_problem prob;
} blo__causal_bilevel;
blo_status blo__causal_bilevel_init(blo__causal_bilevel *b, blo_ctx *ctx,
                                    const blo_causal_data *d, const int64_t *tr, int64_t k,
                                    const int64_t *va, int64_t kv, double y_mean, double y_std,
                                    blo_dtype dt);

#endif
