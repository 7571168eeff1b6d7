/* norm.c — batch normalisation and dropout, composed of recorded blo ops so that both
 * differentiate to any order.
 *
 * Batch norm (Ioffe & Szegedy 2015) over axis 1 of x [N, C, ...], with M = N·(spatial size)
 * values per channel c:
 *   training:  μ_c = (1/M) Σ x,   σ²_c = (1/M) Σ (x − μ_c)²   (biased),
 *              y = (x − μ_c) / sqrt(σ²_c + eps) · γ_c + β_c.
 *              The running statistics, when given, move in place (not recorded):
 *              r_μ <- (1 − m) r_μ + m μ_c,   r_σ² <- (1 − m) r_σ² + m σ²_c · M / (M − 1)
 *              (the unbiased variance, as PyTorch keeps it).
 *   eval:      y = x · s_c + t_c with s_c = γ_c / sqrt(r_σ² + eps), t_c = β_c − r_μ s_c; the
 *              running statistics are constants.
 * In training the gradient flows through μ and σ² too (they depend on x), which the
 * composition gives for free, second derivatives included.
 *
 * Inverted dropout: out = x ⊙ mask / (1 − p) with mask_i = [u_i > p], u_i ~ U[0, 1) drawn
 * from the caller's rng in row-major order. The scaled mask is one constant tensor, so the
 * gradient is mask / (1 − p) and the second derivative is zero.
 */
#include "ops_util.h"

#include <string.h>

/* A [C] tensor t is a channel parameter: it has C entries. */
static bool check_channels(blo_ctx *ctx, const char *what, const blo_tensor *t,
                           const blo_tensor *x) {
    if (!blo__check_float(ctx, "blo_batch_norm", t)) return false;
    if (t->ndim == 1 && t->shape[0] == x->shape[1]) return true;
    char a[64], b[64];
    blo_ctx_set_error(ctx, BLO_ERR_SHAPE,
                      "blo_batch_norm: %s %s must be [%lld], one per channel of x %s", what,
                      blo__desc(t, a, sizeof a), (long long)x->shape[1], blo__desc(x, b, sizeof b));
    return false;
}

/* A [C] tensor viewed as [1, C, 1, ...] to broadcast against x. */
static blo_tensor *per_channel(blo_ctx *ctx, blo_tensor *t, const blo_tensor *x) {
    int64_t sh[BLO_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++)
        sh[i] = i == 1 ? x->shape[1] : 1;
    return blo_reshape(ctx, t, x->ndim, sh);
}

/* r <- (1 − m) r + m s for a running statistic r [C] and a batch statistic s [1, C, 1, ...],
 * in place and unrecorded. */
static bool update_running(blo_ctx *ctx, blo_tensor *r, blo_tensor *s, double m) {
    int64_t c = r->shape[0];
    blo_tensor *sc = blo_cast(ctx, blo_reshape(ctx, blo_detach(ctx, s), 1, &c), r->dtype);
    blo_tensor *nr = blo_add(ctx, blo_scale(ctx, r, 1.0 - m), blo_scale(ctx, sc, m));
    return nr && blo_copy_into(r, nr) == BLO_OK;
}

blo_tensor *blo_batch_norm(blo_ctx *ctx, blo_tensor *x, blo_tensor *gamma, blo_tensor *beta,
                           blo_tensor *running_mean, blo_tensor *running_var, int training,
                           double momentum, double eps) {
    BLO_GUARD(ctx);
    if (!x) return NULL;
    char d[64];
    if (!blo__check_float(ctx, "blo_batch_norm", x)) return NULL;
    if (x->ndim < 2) {
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "blo_batch_norm: x %s must be [N, C, ...]",
                          blo__desc(x, d, sizeof d));
        return NULL;
    }
    if ((gamma && (!check_channels(ctx, "gamma", gamma, x) ||
                   !blo__check_same_dtype(ctx, "blo_batch_norm (gamma)", x, gamma))) ||
        (beta && (!check_channels(ctx, "beta", beta, x) ||
                  !blo__check_same_dtype(ctx, "blo_batch_norm (beta)", x, beta))) ||
        (running_mean && !check_channels(ctx, "running_mean", running_mean, x)) ||
        (running_var && !check_channels(ctx, "running_var", running_var, x)))
        return NULL;
    if (!(eps >= 0) || !(momentum >= 0 && momentum <= 1)) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                          "blo_batch_norm: eps %g must be >= 0 and momentum %g in [0, 1]", eps,
                          momentum);
        return NULL;
    }
    if (!running_mean != !running_var) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                          "blo_batch_norm: give both running_mean and running_var, or neither");
        return NULL;
    }
    int64_t C = x->shape[1], M = blo__numel(x->ndim, x->shape) / (C ? C : 1);

    if (!training) {
        if (!running_mean) {
            blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                              "blo_batch_norm: eval mode needs running_mean and running_var");
            return NULL;
        }
        /* Copies, not views: a later in-place update of the running statistics must not
         * change the gradients of this graph (∂y/∂γ reads r_μ). */
        blo_tensor *rm = blo_cast(ctx, blo_clone(ctx, running_mean), x->dtype);
        blo_tensor *rv = blo_cast(ctx, blo_clone(ctx, running_var), x->dtype);
        blo_tensor *s = blo_pow_scalar(ctx, blo_add_scalar(ctx, rv, eps), -0.5);
        if (gamma) s = blo_mul(ctx, gamma, s);
        blo_tensor *t = blo_neg(ctx, blo_mul(ctx, rm, s));
        if (beta) t = blo_add(ctx, beta, t);
        return blo_add(ctx, blo_mul(ctx, x, per_channel(ctx, s, x)), per_channel(ctx, t, x));
    }

    if (M < 2) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                          "blo_batch_norm: training needs more than one value per channel, "
                          "x is %s",
                          blo__desc(x, d, sizeof d));
        return NULL;
    }
    int axes[BLO_MAX_DIMS], na = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i != 1) axes[na++] = i;
    blo_tensor *mean = blo_mean(ctx, x, na, axes, 1);
    blo_tensor *xc = blo_sub(ctx, x, mean);
    blo_tensor *var = blo_mean(ctx, blo_mul(ctx, xc, xc), na, axes, 1);
    blo_tensor *y = blo_mul(ctx, xc, blo_pow_scalar(ctx, blo_add_scalar(ctx, var, eps), -0.5));
    if (gamma) y = blo_mul(ctx, y, per_channel(ctx, gamma, x));
    if (beta) y = blo_add(ctx, y, per_channel(ctx, beta, x));
    if (!y) return NULL;

    if (running_mean) {
        int old = blo_ctx_set_recording(ctx, 0);
        bool ok = update_running(ctx, running_mean, mean, momentum) &&
                  update_running(ctx, running_var, blo_scale(ctx, var, (double)M / (double)(M - 1)),
                                 momentum);
        blo_ctx_set_recording(ctx, old);
        if (!ok) return NULL; /* only an allocation can fail here; ctx holds the error */
    }
    return y;
}

blo_tensor *blo_dropout(blo_ctx *ctx, blo_tensor *x, double p, int training, blo_rng *rng) {
    BLO_GUARD(ctx);
    if (!x) return NULL;
    if (!blo__check_float(ctx, "blo_dropout", x)) return NULL;
    if (!(p >= 0 && p < 1)) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_dropout: p = %g is outside [0, 1)", p);
        return NULL;
    }
    if (!training || p == 0) return x;
    if (!rng) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_dropout: training needs an rng");
        return NULL;
    }
    blo_tensor *u = blo__alloc(ctx, x->dtype, x->ndim, x->shape);
    if (!u) return NULL;
    blo_init_uniform(u, rng, 0.0, 1.0);
    blo_tensor *keep = blo_gt(ctx, u, blo_scalar(ctx, x->dtype, p));
    blo_tensor *mask = blo__unary_const(ctx, BLO_U_AFFINE, 1.0 / (1.0 - p), 0.0, keep);
    return blo_mul(ctx, x, mask);
}
