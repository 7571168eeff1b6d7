/* backend.h — the kernel table and the registry of backends. Ops (src/ops) check arguments,
 * allocate results and record tape nodes; tensor storage, host copies and all arithmetic on
 * tensor data go through a blo_backend, so a CUDA backend can be added by filling another
 * table and listing it in registry.c, without touching ops or methods. Outside src/backend and
 * src/tensor no code reads tensor data (`->data`); a check in CI holds to that.
 *
 * Storage and lifetime. Every tensor's storage comes from `alloc`, called by the tensor layer
 * with the context that will own it; nothing frees a tensor alone. The CPU table carves it
 * from the context's arena, so blo_ctx_rewind / blo_ctx_free release it with the headers. A
 * device backend keeps its storage in device memory with the same lifetime: it holds, per
 * context, a stack of device blocks, each tagged with the context's position (blo_ctx_bytes)
 * when it was taken. The header of every tensor is taken from the host arena just before its
 * storage, so a rewind to a mark m has released exactly the device blocks tagged above
 * m.bytes: the backend returns them to its device pool (lazily, at its next alloc, or when
 * the context is freed). Host code never dereferences device storage: values reach the host
 * only through to_host / from_host (blo_tensor_copy_to_host and friends).
 *
 * Kernel contracts: `out` tensors are fresh and contiguous unless stated otherwise; input
 * tensors may be any strided view (zero strides for broadcast axes) of the shape stated.
 * Kernels do not allocate from contexts and cannot fail: the op checked everything first.
 * Index tensors (i64) were range-checked by the op.
 */
#ifndef BLO_BACKEND_H
#define BLO_BACKEND_H

#include "../internal.h"

struct blo_comm; /* blo/dist.h */

typedef enum blo_unary_kind {
    BLO_U_NEG,
    BLO_U_EXP,
    BLO_U_LOG,
    BLO_U_SQRT,
    BLO_U_ABS,
    BLO_U_TANH,
    BLO_U_SIGMOID,
    BLO_U_RELU,
    BLO_U_SOFTPLUS,
    BLO_U_SIGN,       /* -1, 0, 1 */
    BLO_U_STEP,       /* x > 0 ? 1 : 0 */
    BLO_U_POW,        /* x^p0 */
    BLO_U_LEAKY_RELU, /* x > 0 ? x : p0 x */
    BLO_U_LEAKY_STEP, /* x > 0 ? 1 : p0 */
    BLO_U_CLAMP,      /* min(max(x, p0), p1) */
    BLO_U_CLAMP_MASK, /* p0 <= x <= p1 ? 1 : 0 */
    BLO_U_AFFINE,     /* p0 x + p1 */
    BLO_U_FINITE,     /* x when finite, else 0 */
    BLO_U_COUNT
} blo_unary_kind;

typedef enum blo_binary_kind {
    BLO_B_ADD,
    BLO_B_SUB,
    BLO_B_MUL,
    BLO_B_DIV,
    BLO_B_GT, /* a > b ? 1 : 0 */
    BLO_B_LT,
    BLO_B_EQ,
    BLO_B_COUNT
} blo_binary_kind;

typedef enum blo_reduce_kind { BLO_R_SUM, BLO_R_MAX } blo_reduce_kind;

/* Depthwise convolution (groups = C input channels, M = O/C outputs per input channel) and its
 * two adjoints; x [N, C, H, W], w [O, 1, KH, KW], g [N, O, OH, OW]:
 *   BLO_DW_FORWARD  out = y [N, O, OH, OW]  from (a, b) = (x, w)
 *   BLO_DW_ADJ_X    out = x-shaped          from (a, b) = (g, w): the adjoint of x -> y
 *   BLO_DW_ADJ_W    out = w-shaped          from (a, b) = (x, g): the adjoint of w -> y */
typedef enum blo_dwconv_kind { BLO_DW_FORWARD, BLO_DW_ADJ_X, BLO_DW_ADJ_W } blo_dwconv_kind;

typedef struct blo_backend {
    const char *name;

    /* Storage for a tensor of `bytes` bytes whose lifetime is ctx's (see above). On failure
     * records BLO_ERR_NOMEM in ctx and returns NULL. */
    void *(*alloc)(blo_ctx *ctx, size_t bytes);
    /* Host copies: dst / src is a contiguous row-major host buffer of numel(t) elements of
     * type dt; values are converted (f32 / f64 / i64), t may be any strided view. */
    void (*to_host)(const blo_tensor *t, blo_dtype dt, void *dst);
    void (*from_host)(blo_tensor *t, blo_dtype dt, const void *src);

    /* out = x / values converted, any layouts, same shape; dtypes may differ (f32/f64/i64). */
    void (*copy)(const blo_tensor *src, blo_tensor *dst);
    void (*fill)(blo_tensor *t, double v); /* t may be strided */

    /* x, out: same shape. p: up to two parameters (see blo_unary_kind). */
    void (*unary)(blo_unary_kind k, const double *p, const blo_tensor *x, blo_tensor *out);
    /* a, b: views broadcast to out's shape. */
    void (*binary)(blo_binary_kind k, const blo_tensor *a, const blo_tensor *b, blo_tensor *out);
    /* mask, a, b: views broadcast to out's shape. */
    void (*where)(const blo_tensor *mask, const blo_tensor *a, const blo_tensor *b,
                  blo_tensor *out);
    /* out has x's ndim with size 1 on the reduced axes (keepdim layout). */
    void (*reduce)(blo_reduce_kind k, const blo_tensor *x, blo_tensor *out);

    /* C = alpha op(A) op(B) + beta C, row-major; op = transpose when trans_*. Each matrix
     * starts *_off elements after its tensor's element 0 (a batch of products walks one
     * tensor with offsets); the dtype is a's, and b and c have it too. */
    void (*gemm)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                 const blo_tensor *a, int64_t a_off, int64_t lda, const blo_tensor *b,
                 int64_t b_off, int64_t ldb, double beta, blo_tensor *c, int64_t c_off,
                 int64_t ldc);

    /* The first position k (row-major over idx's view, any layout) whose index idx_k (i64)
     * lies outside [0, n), with its value in *value; -1 when all lie inside. How ops check
     * indices before a kernel uses them. */
    int64_t (*index_outside)(const blo_tensor *idx, int64_t n, int64_t *value);
    /* Indexing along `axis` (see ops.h for the semantics). out contiguous. */
    void (*gather)(const blo_tensor *a, int axis, const blo_tensor *idx, blo_tensor *out);
    /* out (contiguous, already holding the base values) += src scattered at idx. */
    void (*scatter_add)(blo_tensor *out, int axis, const blo_tensor *idx, const blo_tensor *src);
    void (*index_select)(const blo_tensor *a, int axis, const blo_tensor *idx, blo_tensor *out);
    /* out (contiguous, holding the base values) += src added at rows idx along axis. */
    void (*index_add)(blo_tensor *out, int axis, const blo_tensor *idx, const blo_tensor *src);

    /* Convolution support (cpu_conv.c has the formulas). x [N, C, H, W] and cols
     * [C*KH*KW, N*OH*OW], both contiguous. im2col fills cols; col2im, its adjoint,
     * overwrites x with the sums of the column entries that each pixel fed. */
    void (*im2col)(const blo_tensor *x, const blo_conv2d_params *p, int kh, int kw, int oh,
                   int ow, blo_tensor *cols);
    void (*col2im)(const blo_tensor *cols, const blo_conv2d_params *p, int kh, int kw, int oh,
                   int ow, blo_tensor *x);

    /* Depthwise convolution (see blo_dwconv_kind): a, b and out contiguous, of the shapes
     * above (all sizes are read from them); p's groups is not read. out is overwritten. */
    void (*dwconv)(blo_dwconv_kind k, const blo_tensor *a, const blo_tensor *b,
                   const blo_conv2d_params *p, blo_tensor *out);

    /* Pooling: p's strides are resolved (non-zero) and its padding is at most half the
     * kernel, so every window holds a real cell. x, out, gout and gx are contiguous
     * [N, C, H, W] (x, gx) or [N, C, OH, OW] (out, gout, argmax).
     * Max pooling: argmax (i64) = the flat index into x's H*W plane of each window's first
     * maximum; out = the maxima, or not computed when out is NULL. */
    void (*max_pool2d)(const blo_tensor *x, const blo_pool2d_params *p, blo_tensor *out,
                       blo_tensor *argmax);
    /* Average pooling and its adjoint (linear, so each is the other's backward); the adjoint
     * overwrites gx. */
    void (*avg_pool2d)(const blo_tensor *x, const blo_pool2d_params *p, blo_tensor *out);
    void (*avg_pool2d_adjoint)(const blo_tensor *gout, const blo_pool2d_params *p,
                               blo_tensor *gx);

    /* out [rows, K] = A b with A in CSR (rowptr [rows + 1] in host memory, colidx an i64
     * [nnz] tensor, values [nnz]); b [cols, K]. */
    void (*spmm)(int64_t rows, const int64_t *rowptr, const blo_tensor *colidx,
                 const blo_tensor *values, const blo_tensor *b, blo_tensor *out);
    /* The transpose of a checked CSR pattern (rows x cols, nnz entries; rowptr [rows + 1] and
     * colidx [nnz] host arrays). Fills, all i64 [nnz] tensors: a_col = colidx, a_row = the row
     * of each entry, a_perm[e] = the position of entry e in the transpose; t_rowptr (host,
     * [cols + 1]) and t_col, t_row, t_perm the same for the transpose, whose entries are
     * ordered by (column, row), so each of its rows has strictly increasing columns. */
    void (*csr_transpose)(int64_t rows, int64_t cols, int64_t nnz, const int64_t *rowptr,
                          const int64_t *colidx, blo_tensor *a_col, blo_tensor *a_row,
                          blo_tensor *a_perm, int64_t *t_rowptr, blo_tensor *t_col,
                          blo_tensor *t_row, blo_tensor *t_perm);

    /* Fused softmax cross-entropy, first order. logits [N, C] contiguous, labels [N] (i64,
     * contiguous), weights [N] (any stride) or NULL. loss_terms [N] = -log softmax_{y_i};
     * probs [N, C] = softmax; out = the loss: w_i loss_terms_i ([N], red NONE) or their sum
     * (scalar, SUM) or mean (scalar, MEAN), accumulated in double. */
    void (*xent_forward)(const blo_tensor *logits, const blo_tensor *labels,
                         const blo_tensor *weights, blo_reduction red, blo_tensor *loss_terms,
                         blo_tensor *probs, blo_tensor *out);
    /* Its backward (first order, not recorded). g is the loss's gradient: one element (a
     * reduced loss) or [N] (per example); s_i = scale g_i (or scale g). With w [N] the
     * weights (NULL: all 1):
     *   glogits [N, C] = s_i w_i (probs_i - onehot(labels_i))   when glogits is not NULL,
     *   gweights [N]   = s_i loss_terms_i                       when gweights is not NULL.
     * probs, glogits contiguous; the others any stride. */
    void (*xent_backward)(const blo_tensor *probs, const blo_tensor *labels,
                          const blo_tensor *loss_terms, const blo_tensor *weights,
                          const blo_tensor *g, double scale, blo_tensor *glogits,
                          blo_tensor *gweights);

    /* Graph structure learning (src/ops/graph.c has the maths): the straight-through sample
     * of a Bernoulli graph from θ [N, N], normalised, out = D^-½ (M + I) D^-½, drawing
     * N(N − 1)/2 uniforms from rng in row-major order over the upper triangle; and the two
     * linear maps of its backward, from g [N, N] and out (ahat): adjoint = 0 the gradient
     * with respect to θ, adjoint = 1 its adjoint. All [N, N] tensors contiguous, of one
     * float dtype; work a contiguous f64 scratch tensor of at least 2N elements. */
    void (*st_adj_forward)(const blo_tensor *theta, blo_rng *rng, blo_tensor *work,
                           blo_tensor *out);
    void (*st_adj_grad)(int adjoint, const blo_tensor *g, const blo_tensor *ahat,
                        blo_tensor *work, blo_tensor *out);

    /* Vector algebra of the iterative solvers, on whole tensors of one shape and float dtype
     * (any layout), accumulated in double: dot = Σ a_k b_k; axpy: y += α x; scale: y *= α. */
    double (*dot)(const blo_tensor *a, const blo_tensor *b);
    void (*axpy)(double alpha, const blo_tensor *x, blo_tensor *y);
    void (*scale)(double alpha, blo_tensor *y);

    /* The sum over the ranks of c (blo/dist.h), in place: t ← Σ_r t_r, added in rank order
     * in double, the same bits on every rank. t is fresh and contiguous (f32 / f64); the op
     * reserved c's receive buffer (blo__comm_reserve). */
    void (*allreduce_sum)(struct blo_comm *c, blo_tensor *t);
} blo_backend;

/* The reference CPU backend (plain loops, OpenMP where it pays, BLAS gemm when built in). */
const blo_backend *blo_backend_cpu(void);

/* ---- Registry (registry.c) --------------------------------------------------------------------
 * The backends this build has, the first being the default a context gets when its first
 * tensor is made. blo_ctx_set_backend (core.h) picks another by name. */
const blo_backend *blo__backend_default(void);
/* The backend called name, or NULL. */
const blo_backend *blo__backend_find(const char *name);

/* The CPU gemm on raw row-major arrays (BLAS when built in): what the table's gemm calls. */
void blo__cpu_gemm(blo_dtype dt, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                   double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
                   double beta, void *c, int64_t ldc);
/* The reference loop gemm (the oracle the BLAS path is tested against). */
void blo__gemm_ref(blo_dtype dt, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                   double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
                   double beta, void *c, int64_t ldc);

#endif
