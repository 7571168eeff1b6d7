/* blo/ops.h — differentiable operations.
 *
 * Conventions shared by every op here:
 * - The result lives in ctx; inputs may live in any context that outlives the result.
 * - On failure the op returns NULL and records the error in ctx. An op handed a NULL input
 *   returns NULL and records nothing (the producer of that NULL already did), so a whole
 *   expression is checked once, at the end.
 * - When ctx records (blo_ctx_set_recording) and an input requires grad, the op records a
 *   tape node. Its backward rule is written with these same ops, so gradients can be
 *   differentiated again to any order — except for ops documented as "first order only",
 *   whose backward is a fused kernel: a create-graph pass that reaches one fails with
 *   BLO_ERR_NOT_DIFFERENTIABLE rather than return a wrong number.
 * - Binary elementwise ops broadcast numpy-style. Both operands must have the same dtype.
 * - Axes may be negative (counted from the end).
 */
#ifndef BLO_OPS_H
#define BLO_OPS_H
#pragma GCC visibility push(default)

#include "blo/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Elementwise, binary with broadcasting ------------------------------------------------ */
blo_tensor *blo_add(blo_ctx *ctx, blo_tensor *a, blo_tensor *b);
blo_tensor *blo_sub(blo_ctx *ctx, blo_tensor *a, blo_tensor *b);
blo_tensor *blo_mul(blo_ctx *ctx, blo_tensor *a, blo_tensor *b);
blo_tensor *blo_div(blo_ctx *ctx, blo_tensor *a, blo_tensor *b);
/* where(mask, a, b): mask != 0 picks a, else b. The mask carries no gradient. */
blo_tensor *blo_where(blo_ctx *ctx, blo_tensor *mask, blo_tensor *a, blo_tensor *b);
/* 0/1 masks in a's dtype; not differentiable (no tape node). */
blo_tensor *blo_gt(blo_ctx *ctx, blo_tensor *a, blo_tensor *b);
blo_tensor *blo_lt(blo_ctx *ctx, blo_tensor *a, blo_tensor *b);
blo_tensor *blo_eq(blo_ctx *ctx, blo_tensor *a, blo_tensor *b);

/* ---- Elementwise with a scalar ------------------------------------------------------------- */
blo_tensor *blo_add_scalar(blo_ctx *ctx, blo_tensor *a, double s); /* a + s */
blo_tensor *blo_scale(blo_ctx *ctx, blo_tensor *a, double s);      /* s * a */
blo_tensor *blo_pow_scalar(blo_ctx *ctx, blo_tensor *a, double p); /* a^p */

/* ---- Elementwise, unary ---------------------------------------------------------------------
 * Kinks (abs at 0, relu at 0, clamp at its bounds) take the subgradient PyTorch takes:
 * abs'(0) = 0, relu'(0) = 0, clamp' = 1 on the closed interval [lo, hi]. */
blo_tensor *blo_neg(blo_ctx *ctx, blo_tensor *a);
blo_tensor *blo_exp(blo_ctx *ctx, blo_tensor *a);
blo_tensor *blo_log(blo_ctx *ctx, blo_tensor *a);
blo_tensor *blo_sqrt(blo_ctx *ctx, blo_tensor *a);
blo_tensor *blo_abs(blo_ctx *ctx, blo_tensor *a);
blo_tensor *blo_tanh(blo_ctx *ctx, blo_tensor *a);
blo_tensor *blo_sigmoid(blo_ctx *ctx, blo_tensor *a);
blo_tensor *blo_relu(blo_ctx *ctx, blo_tensor *a);
blo_tensor *blo_leaky_relu(blo_ctx *ctx, blo_tensor *a, double slope);
blo_tensor *blo_softplus(blo_ctx *ctx, blo_tensor *a); /* log(1 + e^a), computed stably */
blo_tensor *blo_clamp(blo_ctx *ctx, blo_tensor *a, double lo, double hi);

/* ---- Reductions ------------------------------------------------------------------------------
 * Over the naxes axes listed (naxes = 0 and axes = NULL: over all axes). keepdim keeps the
 * reduced axes with size 1. max's gradient goes to the maximal elements, shared equally
 * between ties. */
blo_tensor *blo_sum(blo_ctx *ctx, blo_tensor *a, int naxes, const int *axes, int keepdim);
blo_tensor *blo_mean(blo_ctx *ctx, blo_tensor *a, int naxes, const int *axes, int keepdim);
blo_tensor *blo_max(blo_ctx *ctx, blo_tensor *a, int naxes, const int *axes, int keepdim);
blo_tensor *blo_logsumexp(blo_ctx *ctx, blo_tensor *a, int naxes, const int *axes,
                          int keepdim);
/* Sum of everything, a scalar. */
blo_tensor *blo_sum_all(blo_ctx *ctx, blo_tensor *a);
/* sum(a * b) over all elements (same shape), a scalar. */
blo_tensor *blo_dot(blo_ctx *ctx, blo_tensor *a, blo_tensor *b);
/* Sums a over its broadcast axes so the result has `shape` (the adjoint of expand). */
blo_tensor *blo_sum_to(blo_ctx *ctx, blo_tensor *a, int ndim, const int64_t *shape);

/* ---- Linear algebra ----------------------------------------------------------------------------
 * matmul: a [..., M, K] x b [..., K, N] -> [..., M, N]; batch axes broadcast. A 1-d operand is
 * treated as a row (a) or a column (b) vector and that axis is dropped from the result.
 * The heavy work is BLAS gemm; transposed views are passed to gemm without a copy. */
blo_tensor *blo_matmul(blo_ctx *ctx, blo_tensor *a, blo_tensor *b);
/* x [N, in], w [out, in], b [out] or NULL -> x wᵀ + b, [N, out]. */
blo_tensor *blo_linear(blo_ctx *ctx, blo_tensor *x, blo_tensor *w, blo_tensor *b);

/* ---- Shape (views where possible) --------------------------------------------------------------
 * reshape: one entry of shape may be -1 (inferred). */
blo_tensor *blo_reshape(blo_ctx *ctx, blo_tensor *a, int ndim, const int64_t *shape);
blo_tensor *blo_flatten(blo_ctx *ctx, blo_tensor *a); /* [N, ...] -> [N, prod(...)] */
blo_tensor *blo_transpose(blo_ctx *ctx, blo_tensor *a, int d0, int d1);
blo_tensor *blo_permute(blo_ctx *ctx, blo_tensor *a, const int *perm);
/* Elements start, start+step, ... < stop along axis (step >= 1; start/stop may be negative
 * and are clipped like Python slices). */
blo_tensor *blo_slice(blo_ctx *ctx, blo_tensor *a, int axis, int64_t start, int64_t stop,
                      int64_t step);
blo_tensor *blo_concat(blo_ctx *ctx, int n, blo_tensor *const *ts, int axis);
/* Broadcast a to shape (a view with zero strides). */
blo_tensor *blo_expand(blo_ctx *ctx, blo_tensor *a, int ndim, const int64_t *shape);
/* A row-major copy, or a itself when it already is one. */
blo_tensor *blo_contiguous(blo_ctx *ctx, blo_tensor *a);

/* ---- Indexing (index tensors are BLO_I64; out-of-range indices are BLO_ERR_INVALID) ---------
 * gather: out[i][j][k] = a[i][idx[i][j][k]][k] for axis 1 (torch.gather); idx has a's ndim
 * and, on the other axes, sizes no larger than a's. */
blo_tensor *blo_gather(blo_ctx *ctx, blo_tensor *a, int axis, blo_tensor *idx);
/* index_select: rows idx (1-d) of a along axis. */
blo_tensor *blo_index_select(blo_ctx *ctx, blo_tensor *a, int axis, blo_tensor *idx);
/* scatter_add: a copy of base with src added at idx along axis (the adjoint of gather):
 * out[i][idx[i][j][k]][k] += src[i][j][k] for axis 1. idx and src have the same shape. */
blo_tensor *blo_scatter_add(blo_ctx *ctx, blo_tensor *base, int axis, blo_tensor *idx,
                            blo_tensor *src);
/* labels [N] (i64) -> [N, num_classes] of 0/1 in dtype dt; not differentiable. */
blo_tensor *blo_one_hot(blo_ctx *ctx, blo_tensor *labels, int64_t num_classes, blo_dtype dt);

/* ---- Losses ---------------------------------------------------------------------------------------- */
typedef enum blo_reduction {
    BLO_REDUCE_MEAN = 0, /* (1/N) Σ_i w_i l_i  (w_i = 1 without weights) */
    BLO_REDUCE_SUM = 1,  /* Σ_i w_i l_i */
    BLO_REDUCE_NONE = 2  /* the vector w_i l_i, [N] */
} blo_reduction;
blo_tensor *blo_softmax(blo_ctx *ctx, blo_tensor *a, int axis);
blo_tensor *blo_log_softmax(blo_ctx *ctx, blo_tensor *a, int axis);
/* logits [N, C], labels [N] (i64 in [0, C)), weights [N] or NULL (per-example, carry a
 * gradient: they are the hyper-variables of data hyper-cleaning). l_i = -log softmax(z_i)_{y_i}.
 * Note MEAN divides by N, not by Σ w_i. Differentiable to any order. */
blo_tensor *blo_cross_entropy(blo_ctx *ctx, blo_tensor *logits, blo_tensor *labels,
                              blo_tensor *weights, blo_reduction red);
/* The same loss with a fused forward and backward kernel: faster, first order only (a
 * create-graph pass through it fails with BLO_ERR_NOT_DIFFERENTIABLE). */
blo_tensor *blo_cross_entropy_fast(blo_ctx *ctx, blo_tensor *logits, blo_tensor *labels,
                                   blo_tensor *weights, blo_reduction red);
/* l_i = mean over the non-batch axes of (pred - target)^2; reduction over the first axis. */
blo_tensor *blo_mse(blo_ctx *ctx, blo_tensor *pred, blo_tensor *target, blo_reduction red);

/* ---- Neural-network layers --------------------------------------------------------------------- */
typedef struct blo_conv2d_params {
    int stride_h, stride_w;
    int pad_h, pad_w;
    int dil_h, dil_w;
    int groups;
} blo_conv2d_params;
/* Stride 1, no padding, dilation 1, one group. */
blo_conv2d_params blo_conv2d_default(void);
/* x [N, C, H, W], w [O, C/groups, KH, KW], bias [O] or NULL -> [N, O, OH, OW] with
 * OH = (H + 2 pad_h - dil_h (KH - 1) - 1) / stride_h + 1 (cross-correlation, as in PyTorch).
 * Depthwise: groups = C = O. */
blo_tensor *blo_conv2d(blo_ctx *ctx, blo_tensor *x, blo_tensor *w, blo_tensor *bias,
                       const blo_conv2d_params *p);

typedef struct blo_pool2d_params {
    int kernel_h, kernel_w;
    int stride_h, stride_w; /* 0 = the kernel size */
    int pad_h, pad_w;       /* padding counts as -inf for max, and for avg as below */
    int count_include_pad;  /* avg: divide by the full window (1) or by the real cells (0) */
} blo_pool2d_params;
blo_tensor *blo_max_pool2d(blo_ctx *ctx, blo_tensor *x, const blo_pool2d_params *p);
blo_tensor *blo_avg_pool2d(blo_ctx *ctx, blo_tensor *x, const blo_pool2d_params *p);

/* Batch norm over axis 1 of x [N, C, ...]. gamma, beta [C] or NULL (no affine parameters).
 * training: normalise with the batch's mean and biased variance, and, when running_mean and
 * running_var ([C], not differentiated) are given, update them in place with momentum
 * (running = (1 - m) running + m batch, using the unbiased variance, as PyTorch does).
 * eval: normalise with running_mean / running_var (both required). */
blo_tensor *blo_batch_norm(blo_ctx *ctx, blo_tensor *x, blo_tensor *gamma, blo_tensor *beta,
                           blo_tensor *running_mean, blo_tensor *running_var, int training,
                           double momentum, double eps);

/* Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p).
 * The mask is drawn from rng. With training = 0 (or p = 0) returns x. */
blo_tensor *blo_dropout(blo_ctx *ctx, blo_tensor *x, double p, int training, blo_rng *rng);

/* ---- Sparse ---------------------------------------------------------------------------------------
 * A CSR sparsity pattern (no values): rows x cols with nnz entries. The values travel as a
 * tensor of nnz elements, so they can be variables (edge weights in graph structure
 * learning). blo_csr_new copies the arrays into ctx and checks them: rowptr nondecreasing
 * from 0 to nnz, column indices in range and strictly increasing within a row. */
typedef struct blo_csr blo_csr;
blo_csr *blo_csr_new(blo_ctx *ctx, int64_t rows, int64_t cols, int64_t nnz,
                     const int64_t *rowptr, const int64_t *colidx);
int64_t blo_csr_rows(const blo_csr *a);
int64_t blo_csr_cols(const blo_csr *a);
int64_t blo_csr_nnz(const blo_csr *a);
/* A [rows, cols] with values [nnz] times b [cols, K] -> [rows, K]. Differentiable in values
 * and in b. */
blo_tensor *blo_spmm(blo_ctx *ctx, const blo_csr *a, blo_tensor *values, blo_tensor *b);

/* ---- Graph structure learning -------------------------------------------------------------
 * The normalised adjacency a GCN propagates with, sampled from edge probabilities θ [N, N]
 * with the straight-through estimator (LDS, Franceschi et al. 2019), in one op:
 *   S = ½ (θ + θᵀ) off the diagonal, M_ij = M_ji = [u_ij < S_ij] (u uniform from rng, drawn
 *   in row-major order over i < j), out = D^-½ (M + I) D^-½ with D = diag(1 + M 1).
 * Its gradient is that of D^-½ (A + I) D^-½ through A = S(θ) + (M − S(θ))|const: the value
 * is M's, the derivative S's. Only out is kept for the backward; the backward is a linear map
 * of the incoming gradient, recorded, so it differentiates again with respect to that
 * gradient; the second derivative with respect to θ through the degree is not kept. */
blo_tensor *blo_st_gcn_adj(blo_ctx *ctx, blo_tensor *theta, blo_rng *rng);

#ifdef __cplusplus
}
#endif
#pragma GCC visibility pop
#endif
