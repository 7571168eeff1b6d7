/* net.c — TARNet and CFR-MMD (Shalit, Johansson, Sontag, ICML 2017) written with blo ops:
 * the representation Φ and the two heads as ELU MLPs, the factual loss with unit weights, the
 * linear-kernel MMD² between the arms' representations, per-matrix L2, trained by optim/'s
 * Adam through the tasks' values-only loop. Every piece is differentiable to any order, so the
 * bilevel problems (bilevel.c) reuse the same loss as their lower level. */
#include "../common/common.h"
#include "blo/autodiff.h"
#include "blo/ops.h"
#include "blo/optim.h"
#include "causal_internal.h"

#include <math.h>
#include <string.h>

blo_causal_net_config blo_causal_net_default(void) {
    blo_causal_net_config c = {3,    200, 3, 100, 0.0, 1e-4, 1e-3, 3000, 100, 1, 1, 0,
                               BLO_CAUSAL_IPM_MMD, 10.0, 10, 0.1};
    return c;
}

int blo__causal_nweights(const blo_causal_net_config *c) {
    return c->rep_layers + 2 * (c->head_layers + 1);
}
int blo__causal_nparams(const blo_causal_net_config *c) { return 2 * blo__causal_nweights(c); }

blo_status blo__causal_params(blo_ctx *ctx, const blo_causal_net_config *c, int64_t d,
                              blo_dtype dt, blo_rng *rng, blo_tensor **p) {
    int k = 0;
    int64_t in = d;
    for (int part = 0; part < 3; part++) {
        int layers = part == 0 ? c->rep_layers : c->head_layers + 1;
        if (part == 2) in = c->rep_width;
        for (int l = 0; l < layers; l++) {
            int64_t out = part == 0 ? c->rep_width : l < c->head_layers ? c->head_width : 1;
            int64_t ws[2] = {out, in};
            p[k] = blo_tensor_new(ctx, dt, 2, ws);
            p[k + 1] = blo_zeros(ctx, dt, 1, &out);
            if (!p[k] || !p[k + 1] || blo_init_kaiming_normal(p[k], rng) ||
                blo_set_requires_grad(p[k], 1) || blo_set_requires_grad(p[k + 1], 1))
                return blo_ctx_status(ctx) ? blo_ctx_status(ctx) : BLO_ERR_NOMEM;
            k += 2;
            in = out;
        }
    }
    return BLO_OK;
}

/* ELU(a) = a for a > 0, e^a − 1 otherwise, written as relu(a) + e^{−relu(−a)} − 1. */
static blo_tensor *elu(blo_ctx *ctx, blo_tensor *a) {
    return blo_add_scalar(
        ctx, blo_add(ctx, blo_relu(ctx, a), blo_exp(ctx, blo_neg(ctx, blo_relu(ctx, blo_neg(ctx, a))))),
        -1.0);
}

/* layers ELU layers from p, then (out) one linear layer. */
static blo_tensor *mlp(blo_ctx *ctx, blo_tensor *const *p, int layers, int out, blo_tensor *h) {
    for (int l = 0; l < layers; l++) h = elu(ctx, blo_linear(ctx, h, p[2 * l], p[2 * l + 1]));
    if (out) h = blo_linear(ctx, h, p[2 * layers], p[2 * layers + 1]);
    return h;
}

blo_tensor *blo__causal_forward(blo_ctx *ctx, const blo_causal_net_config *c,
                                blo_tensor *const *p, blo_tensor *X, blo_tensor **phi) {
    blo_tensor *h = mlp(ctx, p, c->rep_layers, 0, X);
    if (h && (c->alpha > 0 || c->normalize)) {
        int ax = 1;
        blo_tensor *nrm = blo_sqrt(
            ctx, blo_add_scalar(ctx, blo_sum(ctx, blo_mul(ctx, h, h), 1, &ax, 1), 1e-8));
        h = blo_div(ctx, h, nrm);
    }
    if (phi) *phi = h;
    int hp = 2 * (c->head_layers + 1);
    blo_tensor *y[2];
    for (int a = 0; a < 2; a++)
        y[a] = mlp(ctx, p + 2 * c->rep_layers + a * hp, c->head_layers, 1, h);
    return h && y[0] && y[1] ? blo_concat(ctx, 2, y, 1) : NULL;
}

blo_tensor *blo__causal_tau(blo_ctx *ctx, const blo_causal_net_config *c, blo_tensor *const *p,
                            blo_tensor *X) {
    blo_tensor *yh = blo__causal_forward(ctx, c, p, X, NULL);
    if (!yh) return NULL;
    return blo_sub(ctx, blo_slice(ctx, yh, 1, 1, 2, 1), blo_slice(ctx, yh, 1, 0, 1, 1));
}

blo_tensor *blo__causal_loss(blo_ctx *ctx, const blo_causal_net_config *c, blo_tensor *const *p,
                             blo_tensor *X, blo_tensor *T, blo_tensor *Y, blo_tensor *W,
                             blo_tensor *alpha, blo_tensor *lam) {
    blo_tensor *phi;
    blo_tensor *yh = blo__causal_forward(ctx, c, p, X, &phi);
    if (!yh) return NULL;
    blo_tensor *y0 = blo_slice(ctx, yh, 1, 0, 1, 1), *y1 = blo_slice(ctx, yh, 1, 1, 2, 1);
    blo_tensor *C = blo_add_scalar(ctx, blo_neg(ctx, T), 1.0); /* 1 − t */
    blo_tensor *r = blo_sub(ctx, blo_add(ctx, blo_mul(ctx, T, y1), blo_mul(ctx, C, y0)), Y);
    blo_tensor *sq = blo_mul(ctx, r, r);
    double nt = blo_tensor_item(blo_sum_all(ctx, T)), n = (double)blo_tensor_dim(T, 0);
    if (c->reweight && nt > 0 && nt < n) { /* r_i = n / (2 n_arm) */
        blo_tensor *rw = blo_add(ctx, blo_scale(ctx, T, n / (2 * nt)), blo_scale(ctx, C, n / (2 * (n - nt))));
        W = W ? blo_mul(ctx, W, rw) : rw;
    }
    blo_tensor *loss = W ? blo_div(ctx, blo_sum_all(ctx, blo_mul(ctx, W, sq)), blo_sum_all(ctx, W))
                         : blo_scale(ctx, blo_sum_all(ctx, sq), 1.0 / (double)blo_tensor_dim(sq, 0));
    if (!loss) return NULL;
    /* The IPM needs a unit per arm (rbf: two); a batch short of that goes without it. */
    double need = c->ipm == BLO_CAUSAL_IPM_RBF ? 2 : 1;
    if ((alpha || c->alpha > 0) && nt >= need && n - nt >= need) {
        blo_tensor *ipm = blo__causal_ipm(ctx, c, phi, T);
        loss = ipm ? blo_add(ctx, loss, alpha ? blo_mul(ctx, blo_reshape(ctx, alpha, 0, NULL), ipm)
                                              : blo_scale(ctx, ipm, c->alpha))
                   : NULL;
    }
    int nw = blo__causal_nweights(c);
    for (int j = 0; j < nw && loss; j++) {
        blo_tensor *w2 = blo_dot(ctx, p[2 * j], p[2 * j]);
        if (lam) {
            blo_tensor *lj = blo_reshape(ctx, blo_slice(ctx, lam, 0, j, j + 1, 1), 0, NULL);
            loss = blo_add(ctx, loss, blo_mul(ctx, lj, w2));
        } else if (c->l2 > 0) {
            loss = blo_add(ctx, loss, blo_scale(ctx, w2, c->l2));
        }
    }
    return loss;
}

blo_tensor *blo__causal_rows_x(blo_ctx *ctx, const blo_causal_data *d, const int64_t *rows,
                               int64_t k, blo_dtype dt) {
    int64_t s[2] = {k, d->d};
    blo_tensor *X = blo_tensor_new(ctx, dt, 2, s);
    double *h = blo_malloc(sizeof(double) * (size_t)(k * d->d + 1));
    if (X && h) {
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < d->d; j++)
                h[i * d->d + j] = d->x[(rows ? rows[i] : i) * d->d + j];
        if (blo_tensor_copy_from_host(X, BLO_F64, h)) X = NULL;
    }
    if (!h) X = NULL;
    blo_free(h);
    return X;
}

blo_tensor *blo__causal_rows_col(blo_ctx *ctx, const float *v, const int64_t *rows, int64_t k,
                                 double shift, double scale, blo_dtype dt) {
    int64_t s[2] = {k, 1};
    blo_tensor *X = blo_tensor_new(ctx, dt, 2, s);
    double *h = blo_malloc(sizeof(double) * (size_t)(k + 1));
    if (X && h) {
        for (int64_t i = 0; i < k; i++) h[i] = (v[rows ? rows[i] : i] - shift) * scale;
        if (blo_tensor_copy_from_host(X, BLO_F64, h)) X = NULL;
    }
    if (!h) X = NULL;
    blo_free(h);
    return X;
}

/* ---- Training ------------------------------------------------------------------------------ */

typedef struct train_run {
    const blo_causal_net_config *c;
    blo_tensor *X, *T, *Y, *W; /* all training rows */
    int64_t k;
    int64_t *perm; /* batch order, reshuffled every pass */
    int64_t pos;
    blo_rng rng;
} train_run;

static blo_tensor *train_loss(blo_ctx *sc, blo_tensor *const *w, int64_t t, void *user) {
    (void)t;
    train_run *r = user;
    int64_t b = r->c->batch > 0 && r->c->batch < r->k ? r->c->batch : r->k;
    if (b == r->k)
        return blo__causal_loss(sc, r->c, w, r->X, r->T, r->Y, r->W, NULL, NULL);
    if (r->pos + b > r->k) {
        blo__shuffle(&r->rng, r->perm, r->k);
        r->pos = 0;
    }
    blo_tensor *idx = blo_from_i64(sc, 1, &b, r->perm + r->pos);
    r->pos += b;
    blo_tensor *X = blo_index_select(sc, r->X, 0, idx), *T = blo_index_select(sc, r->T, 0, idx),
               *Y = blo_index_select(sc, r->Y, 0, idx),
               *W = r->W ? blo_index_select(sc, r->W, 0, idx) : NULL;
    return blo__causal_loss(sc, r->c, w, X, T, Y, W, NULL, NULL);
}

static const char *check_config(const blo_causal_net_config *c) {
    if (c->rep_layers < 1 || c->head_layers < 0 || c->rep_width < 1 || c->head_width < 1)
        return "the network needs at least one representation layer and widths >= 1";
    if (!(c->alpha >= 0) || !(c->l2 >= 0) || !(c->lr > 0) || c->steps < 0 || c->batch < 0)
        return "alpha and l2 must be >= 0, lr > 0, steps and batch >= 0";
    if (c->ipm == BLO_CAUSAL_IPM_WASS && (!(c->wass_lambda > 0) || c->wass_iters < 1))
        return "the Wasserstein IPM needs lambda > 0 and at least one Sinkhorn iteration";
    if (c->ipm == BLO_CAUSAL_IPM_RBF && !(c->rbf_sigma > 0)) return "the RBF IPM needs sigma > 0";
    return NULL;
}

blo_status blo_causal_net_train(blo_causal_net *net, const blo_causal_net_config *cfg,
                                const blo_causal_data *d, const int64_t *train, int64_t k,
                                const double *unit_weight, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    memset(net, 0, sizeof *net);
    const char *bad = check_config(cfg);
    if (bad) return blo__fail(err, errlen, BLO_ERR_INVALID, "causal: %s", bad);
    if (k < 2) return blo__fail(err, errlen, BLO_ERR_INVALID, "causal: %lld training units", (long long)k);
    for (int64_t i = 0; unit_weight && i < k; i++)
        if (!(unit_weight[i] >= 0) || !isfinite(unit_weight[i]))
            return blo__fail(err, errlen, BLO_ERR_INVALID, "causal: unit weight %lld is %g",
                             (long long)i, unit_weight[i]);
    net->cfg = *cfg;
    double m = 0, v = 0;
    for (int64_t i = 0; i < k; i++) m += d->y[train ? train[i] : i];
    m /= (double)k;
    for (int64_t i = 0; i < k; i++) {
        double e = d->y[train ? train[i] : i] - m;
        v += e * e;
    }
    net->y_mean = m;
    net->y_std = v > 0 ? sqrt(v / (double)k) : 1.0;
    net->np = blo__causal_nparams(cfg);
    train_run r = {.c = cfg, .k = k};
    blo_rng_seed(&r.rng, cfg->seed);
    blo_ctx *dc = blo_ctx_new(0);
    net->ctx = blo_ctx_new(0);
    net->params = blo_malloc(sizeof(blo_tensor *) * (size_t)net->np);
    r.perm = blo_malloc(sizeof(int64_t) * (size_t)k);
    blo_status st = BLO_OK;
    if (!dc || !net->ctx || !net->params || !r.perm) goto nomem;
    for (int64_t i = 0; i < k; i++) r.perm[i] = i;
    blo__shuffle(&r.rng, r.perm, k);
    r.X = blo__causal_rows_x(dc, d, train, k, BLO_F32);
    r.T = blo__causal_rows_col(dc, d->t, train, k, 0, 1, BLO_F32);
    r.Y = blo__causal_rows_col(dc, d->y, train, k, m, 1.0 / net->y_std, BLO_F32);
    if (unit_weight) {
        int64_t s[2] = {k, 1};
        r.W = blo_from_f64(dc, BLO_F32, 2, s, unit_weight);
        if (!r.W) goto nomem;
    }
    if (!r.X || !r.T || !r.Y || blo__causal_params(net->ctx, cfg, d->d, BLO_F32, &r.rng, net->params))
        goto nomem;
    blo__fit f = {.what = "causal training",
                  .hint = " (try a smaller --lr)",
                  .opt = blo_opt_adam(cfg->lr),
                  .n = net->np,
                  .w = net->params,
                  .steps = cfg->steps,
                  .loss = train_loss,
                  .user = &r};
    st = blo__fit_run_keep(&f, net->ctx, &net->adam, err, errlen);
    goto out;
nomem:
    st = blo__fail(err, errlen, BLO_ERR_NOMEM, "causal: out of memory");
out:
    blo_free(r.perm);
    blo_ctx_free(dc);
    if (st) blo_causal_net_free(net);
    return st;
}

blo_status blo_causal_net_effects(const blo_causal_net *net, const blo_causal_data *d,
                                  const int64_t *rows, int64_t k, double *tau) {
    blo_ctx *sc = blo_ctx_new(0);
    if (!sc) return BLO_ERR_NOMEM;
    blo_ctx_set_recording(sc, 0);
    blo_tensor *X = blo__causal_rows_x(sc, d, rows, k, BLO_F32);
    blo_tensor *t = X ? blo__causal_tau(sc, &net->cfg, net->params, X) : NULL;
    blo_status st = t ? blo_tensor_copy_to_host(t, BLO_F64, tau) : BLO_ERR_NOMEM;
    for (int64_t i = 0; !st && i < k; i++) tau[i] *= net->y_std;
    blo_ctx_free(sc);
    return st;
}

void blo_causal_net_free(blo_causal_net *net) {
    if (!net) return;
    blo_ctx_free(net->ctx);
    blo_free(net->params);
    memset(net, 0, sizeof *net);
}
