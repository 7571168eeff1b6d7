/* layer.c — the equilibrium layer z* = σ(z* Wᵀ + x Uᵀ + b): its parametrisations of W, the
 * forward solvers (all through blo_linalg_fixed_point), and the backward passes (implicit,
 * Jacobian-free, phantom, unrolled). The mathematics is at the top of include/blo/deq.h.
 *
 * Peaceman–Rachford iterates on its own variable (pr_apply), forward and adjoint. Every other
 * map here is T_α(z) = σ((1 − α) z + α (z Wᵀ + inj)), inj = x Uᵀ + b: α = 1 is Φ
 * (picard, anderson), α < 1 the forward–backward splitting step (fb). For σ = ReLU both have
 * the same fixed points; the implicit gradient through either is the same
 * (I − J_T)⁻¹ ∂T/∂θ = (I − J_Φ)⁻¹ ∂Φ/∂θ, so the backward solves the forward's own system,
 * which converges whenever the forward did. */
#include "blo/deq.h"
#include "blo/linalg.h"

#include "../../internal.h"

#include <math.h>
#include <string.h>

static const char *const PARAM_NAMES[] = {"monotone", "weight", "spectral"};
static const char *const SOLVER_NAMES[] = {"picard", "anderson", "fb", "pr"};
static const char *const BACKWARD_NAMES[] = {"implicit", "jfb", "phantom", "unrolled"};
static const char *const ACT_NAMES[] = {"relu", "tanh"};

static int parse(const char *s, const char *const *names, int n) {
    for (int i = 0; s && i < n; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}
#define NAMES(kind, arr)                                                                           \
    int blo_deq_##kind##_parse(const char *s) {                                                    \
        return parse(s, arr, (int)(sizeof arr / sizeof arr[0]));                                   \
    }                                                                                              \
    const char *blo_deq_##kind##_name(int v) {                                                     \
        return v >= 0 && v < (int)(sizeof arr / sizeof arr[0]) ? arr[v] : "?";                    \
    }
NAMES(param, PARAM_NAMES)
NAMES(solver, SOLVER_NAMES)
NAMES(backward, BACKWARD_NAMES)
NAMES(act, ACT_NAMES)

blo_deq_opts blo_deq_opts_default(void) {
    blo_deq_opts o = {BLO_DEQ_MONOTONE, BLO_DEQ_RELU, 0.1, 0.9, BLO_DEQ_FB, 50, 1e-3, 5, 1.0,
                      0.5, BLO_DEQ_IMPLICIT, 50, 1e-3, 5, 0.5};
    return o;
}

const char *blo_deq_opts_check(const blo_deq_opts *o) {
    if (!o) return "no options";
    if (o->param < BLO_DEQ_MONOTONE || o->param > BLO_DEQ_SPECTRAL) return "unknown parametrisation";
    if (o->act < BLO_DEQ_RELU || o->act > BLO_DEQ_TANH) return "unknown activation";
    if (o->solver < BLO_DEQ_PICARD || o->solver > BLO_DEQ_PR) return "unknown forward solver";
    if (o->backward < BLO_DEQ_IMPLICIT || o->backward > BLO_DEQ_UNROLLED)
        return "unknown backward";
    if (!(o->m > 0 && o->m <= 1)) return "the monotonicity margin m must lie in (0, 1]";
    if (!(o->scale > 0 && o->scale < 1)) return "the norm bound s must lie in (0, 1)";
    if (o->max_iter < 1 || o->back_max_iter < 1) return "iteration caps must be >= 1";
    if (!(o->tol >= 0) || !(o->back_tol >= 0)) return "tolerances must be >= 0";
    if (o->anderson_m < 0 || o->anderson_m > 32) return "anderson_m must lie in [0, 32]";
    if (o->solver == BLO_DEQ_ANDERSON && o->anderson_m < 1)
        return "the anderson solver needs anderson_m >= 1";
    if (!(o->anderson_beta > 0 && o->anderson_beta <= 1))
        return "the Anderson mixing beta must lie in (0, 1]";
    if (o->solver == BLO_DEQ_PR ? !(o->alpha > 0 && isfinite(o->alpha))
                                : !(o->alpha > 0 && o->alpha <= 1))
        return o->solver == BLO_DEQ_PR ? "the splitting step alpha must be positive"
                                       : "the splitting step alpha must lie in (0, 1]";
    if ((o->solver == BLO_DEQ_FB || o->solver == BLO_DEQ_PR) && o->act != BLO_DEQ_RELU)
        return "forward-backward and Peaceman-Rachford splitting need relu (their step is relu's "
               "proximal map for every alpha; tanh's is not)";
    if (o->solver == BLO_DEQ_PR && o->backward == BLO_DEQ_UNROLLED)
        return "unrolled backprop is not offered with pr (its resolvent is inverted outside the "
               "graph): use fb or picard to unroll";
    if (o->phantom_k < 1) return "phantom_k must be >= 1";
    if (!(o->phantom_lambda > 0 && o->phantom_lambda <= 1))
        return "the phantom damping lambda must lie in (0, 1]";
    return NULL;
}

blo_status blo_deq_init(blo_ctx *ctx, blo_deq *L, int64_t in, int64_t d, const blo_deq_opts *o,
                        blo_dtype dt, blo_rng *r) {
    if (!ctx || !L || !r) return BLO_ERR_INVALID;
    memset(L, 0, sizeof *L);
    const char *why = blo_deq_opts_check(o);
    if (why) return blo_ctx_set_error(ctx, BLO_ERR_INVALID, "deq: %s", why);
    if (in < 1 || d < 1 || (dt != BLO_F32 && dt != BLO_F64))
        return blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                                 "deq: sizes in %lld and d %lld must be >= 1, the dtype float",
                                 (long long)in, (long long)d);
    L->o = *o;
    L->in = in;
    L->d = d;
    int64_t dd[2] = {d, d}, du[2] = {d, in};
    int k = 0;
    if (o->param == BLO_DEQ_MONOTONE) {
        /* A, B small so that W starts near (1 − m) I: the map starts tame. */
        L->p[k++] = blo_tensor_new(ctx, dt, 2, dd);
        L->p[k++] = blo_tensor_new(ctx, dt, 2, dd);
    } else {
        L->p[k++] = blo_tensor_new(ctx, dt, 2, dd);
    }
    L->p[k++] = blo_tensor_new(ctx, dt, 2, du);
    L->p[k++] = blo_zeros(ctx, dt, 1, dd);
    L->np = k;
    for (int i = 0; i < k; i++)
        if (!L->p[i]) return blo_ctx_status(ctx) ? blo_ctx_status(ctx) : BLO_ERR_NOMEM;
    double sd = 1 / sqrt((double)d);
    for (int i = 0; i < k - 2; i++)
        blo_init_normal(L->p[i], r, 0, o->param == BLO_DEQ_MONOTONE ? 0.5 * sd : sd);
    blo_init_normal(L->p[k - 2], r, 0, 1 / sqrt((double)in));
    if (o->param == BLO_DEQ_SPECTRAL) {
        if (!(L->sn_u = blo_tensor_new(ctx, dt, 1, dd))) return blo_ctx_status(ctx);
        blo_init_normal(L->sn_u, r, 0, 1);
    }
    for (int i = 0; i < k; i++)
        blo_set_requires_grad(L->p[i], 1);
    return blo_ctx_status(ctx);
}

blo_status blo_deq_init_conv(blo_ctx *ctx, blo_deq *L, int64_t in_ch, int64_t in_hw, int64_t ch,
                             int k, int stride, const blo_deq_opts *o, blo_dtype dt, blo_rng *r) {
    if (!ctx || !L || !r) return BLO_ERR_INVALID;
    memset(L, 0, sizeof *L);
    const char *why = blo_deq_opts_check(o);
    if (why) return blo_ctx_set_error(ctx, BLO_ERR_INVALID, "deq: %s", why);
    if (o->param != BLO_DEQ_MONOTONE)
        return blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                                 "deq: the conv layer has the monotone parametrisation only");
    if (o->solver == BLO_DEQ_PR)
        return blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                                 "deq: pr is not offered for the conv layer (its resolvent "
                                 "(I + alpha(I - W))^-1 would need an FFT inverse): use fb, "
                                 "anderson or picard");
    if (in_ch < 1 || in_hw < 1 || ch < 1 || k < 1 || k > BLO_DEQ_MAX_KERNEL || k % 2 == 0 ||
        stride < 1 || stride > in_hw || (dt != BLO_F32 && dt != BLO_F64))
        return blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                                 "deq: conv sizes: channels in %lld and out %lld and the image "
                                 "side %lld must be >= 1, the kernel odd in [1, %d], the stride in "
                                 "[1, side], the dtype float",
                                 (long long)in_ch, (long long)ch, (long long)in_hw,
                                 BLO_DEQ_MAX_KERNEL);
    L->o = *o;
    L->conv = 1;
    L->in_ch = in_ch, L->in_hw = in_hw, L->ch = ch, L->k = k, L->stride = stride;
    L->hw = (in_hw - 1) / stride + 1;
    L->in = in_ch * in_hw * in_hw;
    L->d = ch * L->hw * L->hw;
    int64_t kw[4] = {ch, ch, k, k}, ku[4] = {ch, in_ch, k, k};
    L->p[0] = blo_tensor_new(ctx, dt, 4, kw);
    L->p[1] = blo_tensor_new(ctx, dt, 4, kw);
    L->p[2] = blo_tensor_new(ctx, dt, 4, ku);
    L->p[3] = blo_zeros(ctx, dt, 1, &ch);
    L->np = 4;
    for (int i = 0; i < 4; i++)
        if (!L->p[i]) return blo_ctx_status(ctx) ? blo_ctx_status(ctx) : BLO_ERR_NOMEM;
    /* As the dense layer: A, B small (W near (1 − m) I), U of unit gain. */
    blo_init_normal(L->p[0], r, 0, 0.5 / sqrt((double)(ch * k * k)));
    blo_init_normal(L->p[1], r, 0, 0.5 / sqrt((double)(ch * k * k)));
    blo_init_normal(L->p[2], r, 0, 1 / sqrt((double)(in_ch * k * k)));
    for (int i = 0; i < 4; i++)
        blo_set_requires_grad(L->p[i], 1);
    return blo_ctx_status(ctx);
}

/* ‖t‖₂ on the host. */
static double norm(blo_ctx *ctx, blo_tensor *t) {
    (void)ctx;
    return t ? sqrt(blo__vec_dot(t, t)) : NAN; /* the solvers' dot: no temporaries */
}

/* v I [d, d], a constant. */
static blo_tensor *diag(blo_ctx *ctx, blo_dtype dt, int64_t d, double v) {
    blo_tensor *I = blo_zeros(ctx, dt, 2, (int64_t[]){d, d});
    for (int64_t i = 0; I && i < d; i++)
        blo_tensor_set(I, i * d + i, v);
    return I;
}

/* The dense W from the parameters (recorded when ctx records); spectral takes one
 * power-iteration step on L->sn_u first when `step`. */
static blo_tensor *dense_weight(blo_ctx *ctx, blo_deq *L, int step) {
    const blo_deq_opts *o = &L->o;
    blo_tensor *P = L->p[0];
    if (o->param == BLO_DEQ_MONOTONE) {
        blo_tensor *A = L->p[0], *B = L->p[1];
        int64_t d = L->d;
        blo_tensor *I = diag(ctx, blo_tensor_dtype(A), d, 1 - o->m);
        blo_tensor *AtA = blo_matmul(ctx, blo_transpose(ctx, A, 0, 1), A);
        blo_tensor *skew = blo_sub(ctx, B, blo_transpose(ctx, B, 0, 1));
        return blo_add(ctx, blo_sub(ctx, I, AtA), skew);
    }
    if (o->param == BLO_DEQ_WEIGHT)
        return blo_div(ctx, blo_scale(ctx, P, o->scale), blo_sqrt(ctx, blo_sum_all(ctx, blo_mul(ctx, P, P))));
    /* spectral: v = Vᵀu / ‖Vᵀu‖, u = V v / ‖V v‖ (values only), σ̂ = uᵀ V v (recorded). */
    blo_tensor *u = L->sn_u;
    if (step) {
        int rec = blo_ctx_set_recording(ctx, 0);
        blo_tensor *v = blo_matmul(ctx, u, P); /* uᵀ V as a row: [d] */
        v = blo_scale(ctx, v, 1 / fmax(norm(ctx, v), 1e-300));
        blo_tensor *nu = blo_matmul(ctx, P, v);
        nu = blo_scale(ctx, nu, 1 / fmax(norm(ctx, nu), 1e-300));
        if (nu) blo_copy_into(u, nu);
        blo_ctx_set_recording(ctx, rec);
    }
    int rec = blo_ctx_set_recording(ctx, 0);
    blo_tensor *v = blo_matmul(ctx, u, P);
    v = blo_scale(ctx, v, 1 / fmax(norm(ctx, v), 1e-300));
    blo_ctx_set_recording(ctx, rec);
    blo_tensor *sigma = blo_dot(ctx, u, blo_matmul(ctx, P, v));
    return blo_div(ctx, blo_scale(ctx, P, o->scale), sigma);
}

/* W as the maps use it: the matrix (dense), or the kernels of the conv layer's
 * W z = (1 − m) z − Aᵀ(A z) + S z, S = B − Bᵀ as one kernel (monotone: ⟨z, S z⟩ = 0, so
 * ⟨z, (I − W) z⟩ = m ‖z‖² + ‖A z‖²). */
typedef struct wop {
    blo_tensor *W;          /* dense */
    blo_tensor *A, *At, *S; /* conv: A, the kernel of its adjoint, B − Bᵀ's */
} wop;

/* The kernel of K's adjoint for stride 1 and same padding: channels swapped, taps reversed
 * (blo ops, so it is differentiable). */
static blo_tensor *adjoint_kernel(blo_ctx *ctx, blo_tensor *K, int k) {
    int64_t rev[BLO_DEQ_MAX_KERNEL], kk = k;
    for (int i = 0; i < k; i++)
        rev[i] = k - 1 - i;
    blo_tensor *ri = blo_from_i64(ctx, 1, &kk, rev);
    return blo_index_select(ctx, blo_index_select(ctx, blo_transpose(ctx, K, 0, 1), 2, ri), 3, ri);
}

static wop weight(blo_ctx *ctx, blo_deq *L, int step) {
    wop w = {NULL, NULL, NULL, NULL};
    if (!L->conv) {
        w.W = dense_weight(ctx, L, step);
    } else {
        w.A = L->p[0];
        w.At = adjoint_kernel(ctx, L->p[0], L->k);
        w.S = blo_sub(ctx, L->p[1], adjoint_kernel(ctx, L->p[1], L->k));
    }
    return w;
}

static int wop_ok(const wop *w) {
    return w->W || (w->A && w->At && w->S);
}

static blo_tensor *conv_same(blo_ctx *ctx, blo_tensor *x, blo_tensor *K, int k, int stride,
                             blo_tensor *bias) {
    blo_conv2d_params p = blo_conv2d_default();
    p.pad_h = p.pad_w = k / 2;
    p.stride_h = p.stride_w = stride;
    return blo_conv2d(ctx, x, K, bias, &p);
}

/* Every row z_i ↦ W z_i (transpose 0: z Wᵀ for the matrix) or Wᵀ z_i (1: z W). For the conv
 * layer Wᵀ is W with S → −S (AᵀA is symmetric, S skew). */
static blo_tensor *apply_w(blo_ctx *ctx, const blo_deq *L, const wop *w, blo_tensor *z,
                           int transpose) {
    if (!L->conv) return transpose ? blo_matmul(ctx, z, w->W) : blo_linear(ctx, z, w->W, NULL);
    if (!z) return NULL;
    int64_t B = blo_tensor_dim(z, 0), s4[4] = {B, L->ch, L->hw, L->hw}, s2[2] = {B, L->d};
    blo_tensor *z4 = blo_reshape(ctx, z, 4, s4);
    blo_tensor *a = conv_same(ctx, conv_same(ctx, z4, w->A, L->k, 1, NULL), w->At, L->k, 1, NULL);
    blo_tensor *sz = conv_same(ctx, z4, w->S, L->k, 1, NULL);
    blo_tensor *out = blo_sub(ctx, blo_scale(ctx, z4, 1 - L->o.m), a);
    out = transpose ? blo_sub(ctx, out, sz) : blo_add(ctx, out, sz);
    return blo_reshape(ctx, out, 2, s2);
}

blo_tensor *blo_deq_weight(blo_ctx *ctx, blo_deq *L) {
    if (L->conv) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                          "deq: the conv layer's W is not formed as a matrix "
                          "(blo_deq_apply_weight applies it)");
        return NULL;
    }
    return dense_weight(ctx, L, 1);
}

blo_tensor *blo_deq_apply_weight(blo_ctx *ctx, blo_deq *L, blo_tensor *z) {
    if (!z || blo_tensor_ndim(z) != 2 || blo_tensor_dim(z, 1) != L->d) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "deq apply weight: z must be [B, %lld]",
                          (long long)L->d);
        return NULL;
    }
    wop w = weight(ctx, L, 0);
    return wop_ok(&w) ? apply_w(ctx, L, &w, z, 0) : NULL;
}

static blo_tensor *act(blo_ctx *ctx, const blo_deq *L, blo_tensor *a) {
    return L->o.act == BLO_DEQ_TANH ? blo_tanh(ctx, a) : blo_relu(ctx, a);
}

/* The pre-activation (1 − α) z + α (z Wᵀ + inj). */
static blo_tensor *pre(blo_ctx *ctx, const blo_deq *L, const wop *W, blo_tensor *inj, blo_tensor *z,
                       double alpha) {
    blo_tensor *a = blo_add(ctx, apply_w(ctx, L, W, z, 0), inj);
    if (alpha == 1) return a;
    return blo_add(ctx, blo_scale(ctx, z, 1 - alpha), blo_scale(ctx, a, alpha));
}

/* The map's step α: the splitting step for fb, 1 (Φ itself) otherwise. */
static double map_alpha(const blo_deq *L) {
    return L->o.solver == BLO_DEQ_FB ? L->o.alpha : 1;
}

typedef struct map_op {
    const blo_deq *L;
    wop W;
    blo_tensor *inj;
    double alpha;
    blo_tensor *g, *dact; /* adjoint: ∂L/∂z* and σ'(pre at z*) */
} map_op;

static blo_status map_apply(blo_ctx *c, blo_tensor *const *in, blo_tensor *const *out, void *user) {
    map_op *m = user;
    blo_tensor *t = act(c, m->L, pre(c, m->L, &m->W, m->inj, in[0], m->alpha));
    return t ? blo_copy_into(out[0], t) : blo_ctx_status(c);
}

/* G(u) = J_Tᵀ u + g: v = σ' ⊙ u, J_Tᵀ u = (1 − α) v + α v W. */
static blo_status adjoint_apply(blo_ctx *c, blo_tensor *const *in, blo_tensor *const *out,
                                void *user) {
    map_op *m = user;
    blo_tensor *v = blo_mul(c, in[0], m->dact);
    blo_tensor *t = apply_w(c, m->L, &m->W, v, 1);
    if (m->alpha != 1) t = blo_add(c, blo_scale(c, v, 1 - m->alpha), blo_scale(c, t, m->alpha));
    t = blo_add(c, t, m->g);
    return t ? blo_copy_into(out[0], t) : blo_ctx_status(c);
}

/* Peaceman–Rachford (Winston & Kolter, Alg. 2), on the iterate u (forward) or q (adjoint):
 *   forward  z = relu(u),           u½ = 2z − u,  z½ = (u½ + α inj) Rᵀ,  u ← 2z½ − u½;
 *   adjoint  w = D ⊙ (q + α g),     q½ = 2w − q,  w½ = q½ R,            q ← 2w½ − q½,
 * rows as examples, R = (I + α(I − W))⁻¹ (its transpose is the adjoint's resolvent). */
typedef struct pr_op {
    blo_tensor *R, *ainj; /* R, and α inj (forward) */
    blo_tensor *ag, *dact; /* adjoint: α ∂L/∂z* and D = σ'(pre at z*) */
} pr_op;

/* The second resolvent: relu's prox (forward), the projection w = D ⊙ (q + α g) (adjoint). */
static blo_tensor *pr_prox(blo_ctx *c, const pr_op *m, blo_tensor *u) {
    return m->dact ? blo_mul(c, m->dact, blo_add(c, u, m->ag)) : blo_relu(c, u);
}

static blo_status pr_apply(blo_ctx *c, blo_tensor *const *in, blo_tensor *const *out, void *user) {
    pr_op *m = user;
    blo_tensor *h = blo_sub(c, blo_scale(c, pr_prox(c, m, in[0]), 2), in[0]);
    blo_tensor *z =
        m->dact ? blo_matmul(c, h, m->R) : blo_linear(c, blo_add(c, h, m->ainj), m->R, NULL);
    blo_tensor *t = blo_sub(c, blo_scale(c, z, 2), h);
    return t ? blo_copy_into(out[0], t) : blo_ctx_status(c);
}

/* R = ((1 + α) I − α W)⁻¹ from W's values. */
static blo_tensor *resolvent(blo_ctx *ctx, blo_tensor *W, double alpha) {
    if (!W) { /* the conv layer: blo_deq_init_conv refuses pr, a later change of o lands here */
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "deq: pr is not offered for the conv layer");
        return NULL;
    }
    blo_tensor *I = diag(ctx, blo_tensor_dtype(W), blo_tensor_dim(W, 0), 1 + alpha);
    blo_tensor *M = blo_sub(ctx, I, blo_scale(ctx, blo_detach(ctx, W), alpha));
    return M ? blo_linalg_inverse(ctx, M) : NULL;
}

/* Residuals of z against Tz = T(z) relative to the scale S = σ(x Uᵀ + b) (Φ's first iterate
 * from 0, known before the solve): the batch's ‖Tz − z‖ / ‖S‖, and the rows i with
 * ‖Tz_i − z_i‖ > tol ‖S_i‖. Not recorded. */
static blo_status residuals(blo_ctx *ctx, blo_tensor *z, blo_tensor *Tz, blo_tensor *S, double tol,
                            double *rel, int64_t *bad) {
    int64_t B = blo_tensor_dim(z, 0);
    blo_tensor *r = blo_sub(ctx, Tz, z);
    int ax = 1;
    blo_tensor *rn = blo_sum(ctx, blo_mul(ctx, r, r), 1, &ax, 0);
    blo_tensor *sn = blo_sum(ctx, blo_mul(ctx, S, S), 1, &ax, 0);
    double *h = blo_malloc(sizeof(double) * (size_t)(2 * B));
    if (!rn || !sn || !h || blo_tensor_to_f64(rn, h) || blo_tensor_to_f64(sn, h + B)) {
        blo_free(h);
        return blo_ctx_status(ctx) ? blo_ctx_status(ctx) : BLO_ERR_NOMEM;
    }
    double sr = 0, ss = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < B; i++) {
        sr += h[i], ss += h[B + i];
        if (!(sqrt(h[i]) <= tol * sqrt(h[B + i]))) n++;
    }
    blo_free(h);
    *rel = ss > 0 ? sqrt(sr / ss) : sqrt(sr);
    *bad = n;
    return isfinite(*rel) ? BLO_OK
                          : blo_ctx_set_error(ctx, BLO_ERR_NUMERIC,
                                              "deq: the layer's output is not finite");
}

blo_tensor *blo_deq_inject(blo_ctx *ctx, blo_deq *L, blo_tensor *x) {
    if (!x || blo_tensor_ndim(x) != 2 || blo_tensor_dim(x, 1) != L->in ||
        blo_tensor_dtype(x) != blo_tensor_dtype(L->p[0])) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                          "deq: the input must be [B, %lld] of the parameters' dtype",
                          (long long)L->in);
        return NULL;
    }
    if (!L->conv) return blo_linear(ctx, x, L->p[L->np - 2], L->p[L->np - 1]);
    int64_t B = blo_tensor_dim(x, 0), s4[4] = {B, L->in_ch, L->in_hw, L->in_hw}, s2[2] = {B, L->d};
    blo_tensor *u = conv_same(ctx, blo_reshape(ctx, x, 4, s4), L->p[2], L->k, L->stride, L->p[3]);
    return blo_reshape(ctx, u, 2, s2);
}

static blo_status check_inj(blo_ctx *ctx, const blo_deq *L, blo_tensor *inj, const char *what) {
    if (!inj) return blo_ctx_status(ctx) ? blo_ctx_status(ctx) : BLO_ERR_INVALID;
    if (blo_tensor_ndim(inj) != 2 || blo_tensor_dim(inj, 1) != L->d ||
        blo_tensor_dtype(inj) != blo_tensor_dtype(L->p[0]))
        return blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                                 "deq %s: the injection must be [B, %lld] (blo_deq_inject's) of "
                                 "the parameters' dtype",
                                 what, (long long)L->d);
    return BLO_OK;
}

/* st (or s0 when st is NULL) cleared for a forward pass. */
static blo_deq_stats *stats_start(blo_deq_stats *st, blo_deq_stats *s0) {
    blo_deq_stats *s = st ? st : s0;
    memset(s, 0, sizeof *s);
    s->fwd_residual = s->bwd_residual = NAN;
    return s;
}

blo_tensor *blo_deq_solve(blo_ctx *ctx, blo_deq *L, blo_tensor *inj, blo_deq_stats *st) {
    blo_deq_stats s0, *s = stats_start(st, &s0);
    if (check_inj(ctx, L, inj, "solve")) return NULL;
    int rec = blo_ctx_set_recording(ctx, 0);
    blo_tensor *z = blo_zeros(ctx, blo_tensor_dtype(inj), 2, blo_tensor_shape(inj));
    blo_mark mk = blo_ctx_mark(ctx);
    map_op m = {L, weight(ctx, L, 1), inj, map_alpha(L), NULL, NULL};
    blo_tensor *out = NULL, *S = act(ctx, L, m.inj);
    if (!z || !wop_ok(&m.W) || !S) goto done;
    int am = L->o.solver == BLO_DEQ_PICARD ? 0 : L->o.anderson_m;
    blo_linalg_opts lo = {L->o.max_iter, L->o.tol * norm(ctx, S), 0, am, L->o.anderson_beta};
    blo_linalg_result lr;
    if (L->o.solver == BLO_DEQ_PR) {
        pr_op p = {resolvent(ctx, m.W.W, L->o.alpha), blo_scale(ctx, inj, L->o.alpha), NULL, NULL};
        blo_tensor *u = blo_zeros(ctx, blo_tensor_dtype(inj), 2, blo_tensor_shape(inj));
        blo_linop G = {1, pr_apply, &p};
        if (!p.R || !p.ainj || !u || blo_linalg_fixed_point(ctx, &G, &u, &lo, &lr) ||
            blo_copy_into(z, blo_relu(ctx, u)))
            goto done;
    } else {
        blo_linop G = {1, map_apply, &m};
        if (blo_linalg_fixed_point(ctx, &G, &z, &lo, &lr)) goto done;
    }
    s->fwd_iters = lr.iters;
    s->fwd_converged = lr.converged;
    blo_tensor *Tz = act(ctx, L, pre(ctx, L, &m.W, m.inj, z, m.alpha));
    if (!Tz || residuals(ctx, z, Tz, S, L->o.tol, &s->fwd_residual, &s->unconverged)) goto done;
    out = z;
done:
    blo_ctx_rewind(ctx, mk);
    blo_ctx_set_recording(ctx, rec);
    return out;
}

/* dL/dθ = (∂T/∂θ)ᵀ u for the map T_α at z (recorded here). */
static blo_status param_vjp(blo_ctx *ctx, blo_deq *L, blo_tensor *inj, blo_tensor *z,
                            double alpha, blo_tensor *u, blo_tensor **grads) {
    wop W = weight(ctx, L, 0);
    blo_tensor *T = act(ctx, L, pre(ctx, L, &W, inj, z, alpha));
    if (!T) return blo_ctx_status(ctx);
    return blo_grad(ctx, 1, &T, &u, L->np, L->p, 0, grads);
}

blo_status blo_deq_backward(blo_ctx *ctx, blo_deq *L, blo_tensor *inj, blo_tensor *zstar,
                            blo_tensor *g, blo_tensor **grads, blo_deq_stats *st) {
    blo_deq_stats s0;
    blo_deq_stats *s = st ? st : &s0;
    s->bwd_iters = 0, s->bwd_residual = NAN, s->bwd_converged = 1;
    blo_status e = check_inj(ctx, L, inj, "backward");
    if (e) return e;
    if (!zstar || !g || blo_tensor_ndim(g) != 2 || blo_tensor_dim(g, 0) != blo_tensor_dim(inj, 0) ||
        blo_tensor_dim(g, 1) != L->d || blo_tensor_ndim(zstar) != 2 ||
        blo_tensor_dim(zstar, 1) != L->d)
        return blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                                 "deq backward: z* and dL/dz* must be [B, %lld]", (long long)L->d);
    int rec = blo_ctx_set_recording(ctx, 1);
    blo_tensor *z = blo_clone(ctx, zstar); /* a leaf: nothing flows back into z* */
    blo_status r = BLO_OK;
    switch (L->o.backward) {
    case BLO_DEQ_JFB:
        s->bwd_iters = 1;
        r = param_vjp(ctx, L, inj, z, 1, g, grads);
        break;
    case BLO_DEQ_PHANTOM: {
        wop W = weight(ctx, L, 0);
        double lam = L->o.phantom_lambda;
        for (int k = 0; k < L->o.phantom_k; k++) {
            blo_tensor *phi = act(ctx, L, pre(ctx, L, &W, inj, z, 1));
            z = lam == 1 ? phi : blo_add(ctx, blo_scale(ctx, z, 1 - lam), blo_scale(ctx, phi, lam));
        }
        s->bwd_iters = L->o.phantom_k;
        r = z ? blo_grad(ctx, 1, &z, &g, L->np, L->p, 0, grads) : blo_ctx_status(ctx);
        break;
    }
    case BLO_DEQ_IMPLICIT: {
        /* One recorded application T(z*): its VJP with the adjoint u is dL/dθ, its values give
         * W and σ' for the adjoint solve (values only). */
        double alpha = map_alpha(L);
        wop Wr = weight(ctx, L, 0);
        blo_tensor *a = pre(ctx, L, &Wr, inj, z, alpha);
        blo_tensor *T = act(ctx, L, a);
        blo_ctx_set_recording(ctx, 0);
        wop Wv = {blo_detach(ctx, Wr.W), blo_detach(ctx, Wr.A), blo_detach(ctx, Wr.At),
                  blo_detach(ctx, Wr.S)}; /* values only, and not formed twice */
        map_op m = {L, Wv, NULL, alpha, g, NULL};
        if (T && L->o.act == BLO_DEQ_TANH) { /* 1 − tanh² */
            blo_tensor *t = blo_detach(ctx, T);
            m.dact = blo_add_scalar(ctx, blo_neg(ctx, blo_mul(ctx, t, t)), 1);
        } else if (T) {
            m.dact = blo_gt(ctx, blo_detach(ctx, a), blo_scalar(ctx, blo_tensor_dtype(a), 0));
        }
        blo_tensor *u = blo_clone(ctx, g);
        if (!wop_ok(&m.W) || !m.dact || !u) {
            r = blo_ctx_status(ctx);
            break;
        }
        blo_linop G = {1, adjoint_apply, &m};
        int am = L->o.solver == BLO_DEQ_PICARD ? 0 : L->o.anderson_m;
        double gn = norm(ctx, g);
        blo_linalg_opts lo = {L->o.back_max_iter, L->o.back_tol * gn, 0, am, L->o.anderson_beta};
        blo_linalg_result lr;
        if (L->o.solver == BLO_DEQ_PR) {
            /* q* by the splitting, then w = D ⊙ (q* + α g), u = g + w W; the residual reported
             * is the adjoint equation's, ‖G(u) − u‖. */
            double al = L->o.alpha;
            pr_op p = {resolvent(ctx, m.W.W, al), NULL, blo_scale(ctx, g, al), m.dact};
            blo_tensor *q = blo_zeros(ctx, blo_tensor_dtype(g), 2, blo_tensor_shape(g));
            blo_linop P = {1, pr_apply, &p};
            if (!p.R || !p.ag || !q || (r = blo_linalg_fixed_point(ctx, &P, &q, &lo, &lr)) ||
                (r = blo_copy_into(
                     u, blo_add(ctx, g, apply_w(ctx, L, &m.W, pr_prox(ctx, &p, q), 1)))) ||
                (r = adjoint_apply(ctx, &u, &q, &m))) {
                r = r ? r : blo_ctx_status(ctx);
                break;
            }
            lr.residual = norm(ctx, blo_sub(ctx, q, u)); /* converged: the splitting's rule */
        } else if ((r = blo_linalg_fixed_point(ctx, &G, &u, &lo, &lr))) {
            break;
        }
        s->bwd_iters = lr.iters;
        s->bwd_residual = gn > 0 ? lr.residual / gn : lr.residual;
        s->bwd_converged = lr.converged;
        r = blo_grad(ctx, 1, &T, &u, L->np, L->p, 0, grads);
        break;
    }
    case BLO_DEQ_UNROLLED:
    default:
        r = blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                              "deq backward: unrolled backprop goes through blo_deq_unroll");
    }
    blo_ctx_set_recording(ctx, rec);
    if (!r && blo_ctx_status(ctx)) r = blo_ctx_status(ctx);
    return r;
}

blo_tensor *blo_deq_unroll(blo_ctx *ctx, blo_deq *L, blo_tensor *inj, blo_deq_stats *st) {
    blo_deq_stats s0, *s = stats_start(st, &s0);
    if (check_inj(ctx, L, inj, "unroll")) return NULL;
    double alpha = map_alpha(L);
    wop W = weight(ctx, L, 1);
    blo_tensor *z = blo_zeros(ctx, blo_tensor_dtype(inj), 2, blo_tensor_shape(inj));
    int rec = blo_ctx_set_recording(ctx, 0);
    blo_tensor *S = act(ctx, L, blo_detach(ctx, inj));
    double sn = S ? norm(ctx, S) : NAN;
    blo_ctx_set_recording(ctx, rec);
    if (!wop_ok(&W) || !inj || !z || !S) return NULL;
    for (int k = 0; k < L->o.max_iter; k++) {
        blo_tensor *zn = act(ctx, L, pre(ctx, L, &W, inj, z, alpha));
        if (!zn) return NULL;
        rec = blo_ctx_set_recording(ctx, 0);
        blo_mark mk = blo_ctx_mark(ctx);
        double dn = norm(ctx, blo_sub(ctx, zn, z)), zz = norm(ctx, zn);
        blo_ctx_rewind(ctx, mk);
        blo_ctx_set_recording(ctx, rec);
        s->fwd_iters = k + 1;
        s->fwd_residual = sn > 0 ? dn / sn : dn;
        z = zn;
        if (!isfinite(s->fwd_residual) || zz > 1e6 * fmax(sn, 1)) {
            blo_ctx_set_error(ctx, BLO_ERR_NUMERIC,
                              "deq unroll: z diverges (‖z‖ = %.3g at iteration %d)", zz, k);
            return NULL;
        }
        if (s->fwd_residual <= L->o.tol) break;
    }
    s->fwd_converged = s->fwd_residual <= L->o.tol;
    /* Per-row residuals against one more (unrecorded) step. */
    rec = blo_ctx_set_recording(ctx, 0);
    blo_mark mk = blo_ctx_mark(ctx);
    double rel;
    blo_tensor *Tz = act(ctx, L, pre(ctx, L, &W, inj, z, alpha));
    blo_status r = Tz ? residuals(ctx, z, Tz, S, L->o.tol, &rel, &s->unconverged)
                      : blo_ctx_status(ctx);
    blo_ctx_rewind(ctx, mk);
    blo_ctx_set_recording(ctx, rec);
    if (r) return NULL;
    s->bwd_iters = s->fwd_iters;
    return z;
}

blo_tensor *blo_deq_jacobian_penalty(blo_ctx *ctx, blo_deq *L, blo_tensor *inj,
                                     blo_tensor *zstar, blo_rng *r) {
    if (check_inj(ctx, L, inj, "jacobian penalty")) return NULL;
    if (!zstar || !r || blo_tensor_ndim(zstar) != 2 || blo_tensor_dim(zstar, 1) != L->d) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "deq jacobian penalty: z* must be [B, %lld]",
                          (long long)L->d);
        return NULL;
    }
    int rec = blo_ctx_set_recording(ctx, 1);
    blo_tensor *z = blo_clone(ctx, zstar), *eps = blo_clone(ctx, zstar), *v = NULL;
    if (z && eps && !blo_init_normal(eps, r, 0, 1) && !blo_set_requires_grad(z, 1)) {
        wop W = weight(ctx, L, 0);
        blo_tensor *phi = act(ctx, L, pre(ctx, L, &W, inj, z, 1));
        if (phi) blo_grad(ctx, 1, &phi, &eps, 1, &z, BLO_GRAD_CREATE_GRAPH, &v);
    }
    double n = (double)blo_tensor_numel(zstar);
    blo_tensor *R = v ? blo_scale(ctx, blo_sum_all(ctx, blo_mul(ctx, v, v)), 1 / n) : NULL;
    blo_ctx_set_recording(ctx, rec);
    return R;
}
