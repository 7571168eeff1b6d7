/* blo/deq.h — implicit (equilibrium) layers and `blo deq`, the Fashion-MNIST task that trains
 * one of them with a linear head.
 *
 * The layer's output is not a stack of operations but the fixed point (an attractor) of a map:
 *
 *     z* = Φ(z*),   Φ(z) = σ(z Wᵀ + x Uᵀ + b),   z, Φ(z) ∈ R^{B×d}, x ∈ R^{B×p}
 *
 * (rows are examples; Bai, Kolter & Koltun, "Deep equilibrium models", NeurIPS 2019). Training
 * it is a bilevel problem — the lower level finds z*, the upper level is a loss at z* — and its
 * gradient is the implicit one of the `fixed_point` method:
 *
 *     u = J_Φᵀ u + ∂L/∂z*   (J_Φ = ∂Φ/∂z at z*),   dL/dθ = (∂Φ/∂θ)ᵀ u,
 *
 * with memory that does not grow with the number of solver iterations.
 *
 * W is parametrised so that the fixed point exists and is unique:
 *   monotone   W = (1 − m) I − AᵀA + B − Bᵀ: I − W ⪰ m I, so with σ = ReLU (a proximal
 *              operator) z* is unique, found by forward–backward splitting (Winston & Kolter,
 *              "Monotone operator equilibrium networks", NeurIPS 2020);
 *   weight     W = s V / ‖V‖_F (weight normalisation with a fixed bound): ‖W‖₂ <= s < 1 makes
 *              Φ a contraction for a 1-Lipschitz σ;
 *   spectral   W = s V / σ̂(V), σ̂ = uᵀ V v from one power-iteration step per call on a kept
 *              vector u (Miyato et al., ICLR 2018): ‖W‖₂ ≈ s.
 *
 * Forward solvers, each stopping at the relative residual ‖T(z) − z‖ / ‖σ(x Uᵀ + b)‖ <= tol
 * (the scale of Φ's first iterate from 0, known before the solve) or at the iteration cap,
 * all through blo_linalg_fixed_point:
 *   picard     z ← Φ(z)
 *   anderson   the same map with Anderson acceleration (memory anderson_m, mixing β)
 *   fb         forward–backward splitting for the monotone W:
 *              z ← σ((1 − α) z + α (z Wᵀ + x Uᵀ + b)), which for σ = ReLU (prox of the
 *              non-negative orthant's indicator for every α) has Φ's fixed point and converges
 *              for α < 2m / ‖I − W‖₂² (Winston & Kolter, Thm. 1); with anderson_m > 0 the
 *              splitting map is Anderson-accelerated too;
 *   pr         Peaceman–Rachford splitting (Winston & Kolter, Alg. 2): with the resolvent
 *              R = (I + α(I − W))⁻¹, inverted once per solve (blo_linalg_inverse) and applied
 *              to the batch by one product, iterate on u
 *                  z = σ(u),  u½ = 2z − u,  z½ = R (u½ + α inj),  u ← 2z½ − u½,
 *              z* = σ(u*): for σ = ReLU it converges for every α > 0 when I − W ⪰ m I, and
 *              much faster than fb for a small m; Anderson-accelerated when anderson_m > 0.
 *              Its stopping rule is ‖u_{k+1} − u_k‖ (σ is 1-Lipschitz, so it bounds the z
 *              step); the reported residual is Φ's, as for every solver.
 *
 * Backward (what dL/dθ is), selected by name:
 *   implicit   u = J_Tᵀ u + ∂L/∂z* by the forward solver's iteration (T its map, Anderson when
 *              the forward used it), then dL/dθ = (∂T/∂θ)ᵀ u — exact at a fixed point; after
 *              pr, the adjoint by Peaceman–Rachford too (monDEQ's backward): with D = σ'(·) at
 *              z* (0/1), w = D ⊙ (g + w W) is the zero of the monotone w(I − W) − g plus the
 *              cone of {w_i = 0 where D_i = 0}, found by the same iteration with Rᵀ and the
 *              projection w = D ⊙ (q + α g); then u = g + w W;
 *   jfb        Jacobian-free: u = ∂L/∂z*, dL/dθ = (∂Φ/∂θ)ᵀ ∂L/∂z* (Fung et al., AAAI 2022);
 *              its error is (∂Φ/∂θ)ᵀ Σ_{j>=1} (J_Φᵀ)^j ∂L/∂z*, O(ρ/(1 − ρ)) for a contraction
 *              factor ρ;
 *   phantom    k damped unrolled steps from z*: z_{j+1} = (1 − λ) z_j + λ Φ(z_j), backprop
 *              through them (Geng et al., NeurIPS 2021); → implicit as k grows, at the rate
 *              ρ((1 − λ) I + λ J_Φ)^k;
 *   unrolled   backprop through every forward iteration of the map from z = 0 (memory grows
 *              with the iterations): blo_deq_unroll; not offered with pr (its resolvent is
 *              inverted outside the graph).
 */
#ifndef BLO_DEQ_H
#define BLO_DEQ_H
#pragma GCC visibility push(default)

#include "blo/data.h"
#include "blo/task.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum blo_deq_param { BLO_DEQ_MONOTONE = 0, BLO_DEQ_WEIGHT, BLO_DEQ_SPECTRAL } blo_deq_param;
typedef enum blo_deq_solver {
    BLO_DEQ_PICARD = 0,
    BLO_DEQ_ANDERSON,
    BLO_DEQ_FB,
    BLO_DEQ_PR
} blo_deq_solver;
typedef enum blo_deq_backward_kind {
    BLO_DEQ_IMPLICIT = 0,
    BLO_DEQ_JFB,
    BLO_DEQ_PHANTOM,
    BLO_DEQ_UNROLLED
} blo_deq_backward_kind;
typedef enum blo_deq_act { BLO_DEQ_RELU = 0, BLO_DEQ_TANH } blo_deq_act;

/* Names as the CLI spells them ("monotone", "picard", "implicit", "relu", ...); parse returns
 * -1 for an unknown name, name returns "?" for an unknown value. Static storage. */
int blo_deq_param_parse(const char *s);
const char *blo_deq_param_name(int v);
int blo_deq_solver_parse(const char *s);
const char *blo_deq_solver_name(int v);
int blo_deq_backward_parse(const char *s);
const char *blo_deq_backward_name(int v);
int blo_deq_act_parse(const char *s);
const char *blo_deq_act_name(int v);

typedef struct blo_deq_opts {
    blo_deq_param param;
    blo_deq_act act;
    double m;     /* monotone: the monotonicity margin m in (0, 1] */
    double scale; /* weight / spectral: the bound s on ‖W‖₂, in (0, 1) for a contraction */
    blo_deq_solver solver;
    int max_iter;         /* forward iteration cap */
    double tol;           /* forward: relative residual to stop at */
    int anderson_m;       /* anderson (and fb, when > 0): differences kept, <= 32 */
    double anderson_beta; /* Anderson's mixing β in (0, 1] */
    double alpha;         /* fb: the splitting step α in (0, 1]; pr: α > 0 */
    blo_deq_backward_kind backward;
    int back_max_iter;     /* implicit: iteration cap of the adjoint solve */
    double back_tol;       /* implicit: its relative residual */
    int phantom_k;         /* phantom: unrolled steps k >= 1 */
    double phantom_lambda; /* phantom: damping λ in (0, 1] */
} blo_deq_opts;

/* monotone, relu, m 0.1, s 0.9, fb with α 0.5 accelerated by Anderson (m 5, β 1), cap 50,
 * tol 1e-3; implicit backward with cap 50 and tol 1e-3; phantom k 5, λ 0.5. */
blo_deq_opts blo_deq_opts_default(void);
/* NULL when o is usable, else a message naming the bad field (static storage). */
const char *blo_deq_opts_check(const blo_deq_opts *o);

/* The layer: its options, sizes and parameters (requires_grad set), in the context given to
 * blo_deq_init. params: monotone {A [d, d], B [d, d], U [d, p], b [d]}; weight and spectral
 * {V [d, d], U [d, p], b [d]}. */
#define BLO_DEQ_MAX_PARAMS 4
#define BLO_DEQ_MAX_KERNEL 7
typedef struct blo_deq {
    blo_deq_opts o;
    int64_t in, d; /* input and state widths (conv: in_ch in_hw², ch hw²) */
    int np;
    blo_tensor *p[BLO_DEQ_MAX_PARAMS];
    blo_tensor *sn_u; /* spectral: the power-iteration vector [d] (not a parameter) */
    int conv;         /* 1: made by blo_deq_init_conv */
    int64_t in_ch, in_hw, ch, hw; /* conv: image [in_ch, in_hw, in_hw], state [ch, hw, hw] */
    int k, stride;                /* conv: the kernels' side (odd), U's stride */
} blo_deq;

/* Makes the parameters in ctx (dtype dt) drawn from r: U, A, B, V ~ N(0, 1/fan_in) scaled
 * so that the layer starts near the identity's scale, b = 0. Returns BLO_OK, or
 * BLO_ERR_INVALID for bad sizes or options (message in ctx), BLO_ERR_NOMEM. */
blo_status blo_deq_init(blo_ctx *ctx, blo_deq *L, int64_t in, int64_t d, const blo_deq_opts *o,
                        blo_dtype dt, blo_rng *r);
/* The convolutional layer on images x [B, in_ch in_hw²] (rows are flattened images, as the
 * dense layer's inputs): the state z [B, d] is read as [B, ch, hw, hw], hw = (in_hw − 1) /
 * stride + 1, and
 *     x Uᵀ + b   = conv(x, U, stride, same padding) + b     U [ch, in_ch, k, k], b [ch],
 *     W z        = (1 − m) z − Aᵀ(A z) + (B − Bᵀ) z          A, B [ch, ch, k, k],
 * A z a same-padded stride-1 convolution, Aᵀ its adjoint (the transposed convolution: the
 * kernel with its channels swapped and its taps reversed), so ⟨z, (I − W) z⟩ =
 * m ‖z‖² + ‖A z‖² >= m ‖z‖²: the monotone parametrisation only (Winston & Kolter's
 * convolutional monDEQ). Solvers picard, anderson and fb; not pr (its resolvent would need an
 * FFT inverse: BLO_ERR_INVALID saying so). params {A, B, U, b}; k odd, at most
 * BLO_DEQ_MAX_KERNEL. Returns as blo_deq_init. */
blo_status blo_deq_init_conv(blo_ctx *ctx, blo_deq *L, int64_t in_ch, int64_t in_hw, int64_t ch,
                             int k, int stride, const blo_deq_opts *o, blo_dtype dt, blo_rng *r);

/* W [d, d] built from the parameters with blo ops in ctx (recorded when ctx records). For
 * spectral, first one power-iteration step updates L->sn_u (not recorded). NULL for the conv
 * layer, whose W is not formed (BLO_ERR_INVALID; blo_deq_apply_weight applies it). */
blo_tensor *blo_deq_weight(blo_ctx *ctx, blo_deq *L);
/* z Wᵀ [B, d] (W applied to every row of z [B, d]), recorded in ctx when it records: for any
 * layer, the conv layer's included. NULL for a z of another shape (message in ctx). */
blo_tensor *blo_deq_apply_weight(blo_ctx *ctx, blo_deq *L, blo_tensor *z);

/* What one forward solve and one backward pass did. The forward residual is relative:
 * ‖T(z) − z‖ / ‖σ(x Uᵀ + b)‖ over the batch; unconverged counts the examples (rows) whose own
 * relative residual is above the tolerance. The adjoint's is ‖G(u) − u‖ / ‖∂L/∂z*‖. */
typedef struct blo_deq_stats {
    int fwd_iters;
    double fwd_residual;
    int fwd_converged;
    int64_t unconverged;
    int bwd_iters; /* implicit: adjoint iterations; phantom: k; unrolled: forward iterations */
    double bwd_residual; /* implicit: relative residual of the adjoint solve; NAN otherwise */
    int bwd_converged;
} blo_deq_stats;

/* The injection x Uᵀ + b [B, d] of the batch x [B, p], recorded in ctx when ctx records: the
 * solvers below take it instead of x, so it is computed once per batch and the gradients reach
 * U and b through its graph. NULL for an x of another width or dtype (message in ctx). */
blo_tensor *blo_deq_inject(blo_ctx *ctx, blo_deq *L, blo_tensor *x);

/* The forward solve for the injection inj (blo_deq_inject's): z* [B, d] in ctx with no history
 * (temporaries are released). Fills st's forward fields. A solve that hits the cap is not an
 * error (st says so); a diverging one (‖z‖ growing past 10⁶ times its start, or not finite) is
 * BLO_ERR_NUMERIC with a message in ctx. */
blo_tensor *blo_deq_solve(blo_ctx *ctx, blo_deq *L, blo_tensor *inj, blo_deq_stats *st);

/* dL/dθ for the layer's parameters into grads[0 .. L->np) (in ctx) from z* (blo_deq_solve's)
 * and g = ∂L/∂z* [B, d], by L->o.backward (implicit, jfb or phantom; unrolled is
 * blo_deq_unroll). inj must be blo_deq_inject's, made while ctx recorded, for U and b to get
 * theirs. Fills st's backward fields. Returns BLO_OK, BLO_ERR_NUMERIC for a diverging adjoint
 * solve, or the context's error. */
blo_status blo_deq_backward(blo_ctx *ctx, blo_deq *L, blo_tensor *inj, blo_tensor *zstar,
                            blo_tensor *g, blo_tensor **grads, blo_deq_stats *st);

/* The unrolled layer: z_0 = 0, z_{k+1} = T(z_k) recorded in ctx (T the forward solver's map
 * without Anderson: Φ, or the fb map; Φ for pr) until the relative residual is <= tol or
 * max_iter steps; the result carries the whole history, so blo_grad of a loss of it reaches
 * the parameters through every step (and U, b through inj's graph). Fills st's forward fields (and
 * bwd_iters = the steps). */
blo_tensor *blo_deq_unroll(blo_ctx *ctx, blo_deq *L, blo_tensor *inj, blo_deq_stats *st);

/* Hutchinson's estimate of the Jacobian penalty ‖J_Φ(z*)‖_F² / d per example (Bai, Koltun &
 * Kolter, "Stabilizing equilibrium models by Jacobian regularization", ICML 2021): with ε [B, d]
 * standard normal drawn from r, R = Σ_i ‖ε_iᵀ J_Φ,i‖² / (B d), E[R] = mean_i ‖J_Φ,i‖_F² / d.
 * The scalar is recorded in ctx with its graph to the parameters (z* held fixed: the
 * dependence through z* is left out, as in the paper), so blo_grad of a loss that adds γ R
 * trains the layer toward fewer solver iterations. NULL on error (message in ctx). */
blo_tensor *blo_deq_jacobian_penalty(blo_ctx *ctx, blo_deq *L, blo_tensor *inj,
                                     blo_tensor *zstar, blo_rng *r);

/* ---- `blo deq`: Fashion-MNIST with one equilibrium layer and a linear head ------------------ */
typedef struct blo_deq_epoch {
    int epoch; /* 1-based */
    double train_loss, test_acc, seconds;
    double cpu_seconds; /* the process's CPU time (a loaded machine's fairer clock) */
    double fwd_iters, fwd_residual; /* means over the epoch's minibatches */
    double bwd_iters, bwd_residual;
    int64_t unconverged; /* examples whose forward solve stopped above tol, this epoch */
    double worst_residual; /* the largest minibatch forward residual */
    size_t peak_bytes;     /* the largest scratch peak of one training step */
    int baseline;          /* 1: the explicit network's epoch */
} blo_deq_epoch;
typedef int (*blo_deq_epoch_fn)(const blo_deq_epoch *e, void *user);

typedef struct blo_deq_config {
    const char *data_dir; /* MNIST layout: train-* and t10k-* */
    int64_t n_train, n_test; /* 0: all */
    int64_t hidden;          /* d */
    blo_deq_opts layer;
    int epochs;
    int64_t batch;
    double lr; /* Adam */
    uint64_t seed;
    blo_dtype dtype;
    double jac_reg; /* γ >= 0: add γ blo_deq_jacobian_penalty to the loss (one ε per step) */
    int baseline; /* also train the explicit network Linear(p, h) -> ReLU -> Linear(h, C) with h
                     chosen so its parameter count matches the equilibrium model's */
    const char *checkpoint; /* after every epoch, the parameters and Adam state here */
    /* conv: the convolutional layer (blo_deq_init_conv) on the images (square, one channel)
     * with `channels` state channels, odd conv_kernel, U's stride conv_stride; the head reads
     * the state 2 × 2 average-pooled; `hidden` is not used. The baseline is then the conv net
     * K1 (stride) → relu → K2 → relu → K3 → relu → pool → linear, the same size up to 2
     * channels' biases. */
    int conv;
    int64_t channels;
    int conv_kernel, conv_stride;
    const char *resume;     /* continue from such a file of the same settings */
    blo_deq_epoch_fn on_epoch;
    void *user;
} blo_deq_config;

/* hidden 64, blo_deq_opts_default's layer, 3 epochs, batch 128, Adam lr 1e-3, all the data,
 * f32, no Jacobian penalty, no baseline; dense (conv off: channels 8, kernel 3, stride 2).
 * data_dir is left NULL (the library names no data location). */
blo_deq_config blo_deq_default(void);

typedef struct blo_deq_result {
    double test_acc, train_loss, seconds;
    double cpu_seconds; /* the training's, as blo_deq_epoch's */
    double fwd_iters, bwd_iters, fwd_residual; /* the last epoch's means */
    int64_t unconverged;                      /* over the whole run */
    int64_t params, baseline_params, baseline_hidden; /* conv: baseline_hidden = channels */
    double baseline_acc, baseline_seconds;
    size_t peak_bytes;
    int epochs;
} blo_deq_result;

/* Loads the data, trains (continuing from c->resume when given), evaluates after every epoch.
 * A loss or a forward solve that is not finite stops it with BLO_ERR_NUMERIC and a message
 * naming the epoch; bad settings or data are BLO_ERR_INVALID / BLO_ERR_IO / BLO_ERR_FORMAT. */
blo_status blo_deq_run(const blo_deq_config *c, blo_deq_result *r, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#pragma GCC visibility pop
#endif
