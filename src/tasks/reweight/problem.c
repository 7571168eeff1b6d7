/* problem.c — the reweighting task's bilevel problem (weighted minibatch loss below, meta
 * cross-entropy above) and its online one-step scheme; see reweight.h. */
#include "reweight.h"

#include "../../linalg/lists.h"

#include <math.h>
#include <string.h>

int64_t blo_long_tail_counts(int64_t classes, int64_t n_max, double factor, int64_t *counts) {
    if (classes < 2 || n_max < 1 || !(factor >= 1) || !counts) return -1;
    int64_t total = 0;
    for (int64_t c = 0; c < classes; c++) {
        counts[c] = (int64_t)floor((double)n_max * pow(factor, -(double)c / (double)(classes - 1)));
        total += counts[c];
    }
    return total;
}

/* The convolutional classifier's tensors (see reweight.h), PyTorch's start: U(±1/√fan_in)
 * for every weight and bias. */
static blo_status conv_init(blo__reweight *h, blo_dtype dt, blo_rng *rng) {
    int64_t K = h->width, q = h->side / 2 / 2;
    int64_t shapes[6][4] = {{K, 1, 3, 3}, {K}, {2 * K, K, 3, 3}, {2 * K}, {2 * K * q * q, h->classes},
                            {h->classes}};
    int ranks[6] = {4, 1, 4, 1, 2, 1};
    double fan[6] = {9, 9, 9.0 * (double)K, 9.0 * (double)K, (double)(2 * K * q * q),
                     (double)(2 * K * q * q)};
    for (int i = 0; i < 6; i++) {
        h->y0[i] = blo_tensor_new(h->ctx, dt, ranks[i], shapes[i]);
        if (!h->y0[i]) return BLO_ERR_NOMEM;
        blo_init_uniform(h->y0[i], rng, -1 / sqrt(fan[i]), 1 / sqrt(fan[i]));
    }
    return BLO_OK;
}

blo_status blo__reweight_init(blo__reweight *h, blo_tensor *X, blo_tensor *labels, blo_tensor *Xm,
                              blo_tensor *labels_m, int64_t classes,
                              blo_reweight_classifier cls, int64_t width,
                              int64_t vnet_hidden, int64_t batch, int64_t meta_batch,
                              blo_reweight_weights weights, blo_rng *rng, char *err,
                              size_t errlen) {
    memset(h, 0, sizeof *h);
    blo_status st = blo__check_classification("reweight", X, labels, Xm, labels_m, &classes, err,
                                              errlen);
    if (st) return st;
    if (width < 1 || vnet_hidden < 1 || batch < 1 || meta_batch < 1 ||
        (unsigned)weights > BLO_REWEIGHT_NONE || (unsigned)cls > BLO_REWEIGHT_CONV)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "reweight: widths and batch sizes must be >= 1 and the weights and "
                         "classifier known");
    int64_t d = blo_tensor_dim(X, 1), side = (int64_t)llround(sqrt((double)d));
    if (cls == BLO_REWEIGHT_CONV && (side * side != d || side < 4))
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "reweight: the conv classifier needs square one-channel images of side "
                         ">= 4; these have %lld features", (long long)d);
    h->X = X, h->labels = labels, h->Xm = Xm, h->labels_m = labels_m;
    h->n = blo_tensor_dim(X, 0), h->d = d, h->nm = blo_tensor_dim(Xm, 0);
    h->classes = classes, h->batch = batch, h->meta_batch = meta_batch, h->weights = weights;
    h->cls = cls, h->width = width, h->side = side;
    h->k = batch, h->mk = meta_batch;
    h->ctx = blo_ctx_new(0);
    h->lab = blo_malloc(sizeof(int64_t) * (size_t)h->n);
    h->lab_m = blo_malloc(sizeof(int64_t) * (size_t)h->nm);
    blo_dtype dt = blo_tensor_dtype(X);
    h->nx = weights == BLO_REWEIGHT_NETWORK ? 4 : weights == BLO_REWEIGHT_PER_EXAMPLE ? 1 : 0;
    h->ny = cls == BLO_REWEIGHT_CONV ? 6 : 4;
    st = h->ctx && h->lab && h->lab_m && !blo_tensor_copy_to_host(labels, BLO_I64, h->lab) &&
                 !blo_tensor_copy_to_host(labels_m, BLO_I64, h->lab_m)
             ? cls == BLO_REWEIGHT_CONV
                   ? conv_init(h, dt, rng)
                   : blo__mlp_init(h->ctx, dt, 2, (int64_t[]){h->d, width, classes}, rng, h->y0)
             : BLO_ERR_NOMEM;
    if (!st && weights == BLO_REWEIGHT_NETWORK)
        st = blo__mlp_init(h->ctx, dt, 2, (int64_t[]){1, vnet_hidden, 1}, rng, h->x0);
    if (!st && weights == BLO_REWEIGHT_PER_EXAMPLE) {
        h->x0[0] = blo_zeros(h->ctx, dt, 1, &batch);
        st = h->x0[0] ? BLO_OK : BLO_ERR_NOMEM;
    }
    if (st) {
        blo__reweight_free(h);
        return blo__fail(err, errlen, st, "reweight: out of memory");
    }
    return BLO_OK;
}

void blo__reweight_free(blo__reweight *h) {
    if (!h) return;
    blo_ctx_free(h->ctx);
    blo_free(h->lab);
    blo_free(h->lab_m);
    memset(h, 0, sizeof *h);
}

blo_status blo__reweight_distribute(blo__reweight *h, blo_comm *comm, char *err, size_t errlen) {
    int R = blo_comm_size(comm), r = blo_comm_rank(comm);
    if (!h || !h->ctx) return blo__fail(err, errlen, BLO_ERR_INVALID, "reweight: no data to share");
    if (R <= 1) return BLO_OK;
    if (h->batch < R || h->meta_batch < R)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "reweight: a batch of %lld and a meta batch of %lld examples cannot be "
                         "shared by %d ranks (each needs at least one example of each)",
                         (long long)h->batch, (long long)h->meta_batch, R);
    h->comm = comm;
    blo__rank_block(h->batch, R, r, &h->lo, &h->k);
    blo__rank_block(h->meta_batch, R, r, &h->mlo, &h->mk);
    return BLO_OK;
}

/* Replicated tensors v[0 .. n) as rank-local computation sees them (blo/dist.h): through
 * blo_replicate on R ranks, themselves on one. */
static void local(blo_ctx *ctx, const blo__reweight *h, int n, blo_tensor *const *v,
                  blo_tensor **out) {
    for (int i = 0; i < n; i++) out[i] = h->comm ? blo_replicate(ctx, h->comm, v[i]) : v[i];
}

/* The sum of t's elements over every example of the batch: this rank's sum, all-reduced on
 * R ranks. */
static blo_tensor *total(blo_ctx *ctx, const blo__reweight *h, blo_tensor *t) {
    t = blo_sum_all(ctx, t);
    return h->comm ? blo_allreduce_sum(ctx, h->comm, t) : t;
}

blo_tensor *blo__reweight_logits(blo_ctx *ctx, const blo__reweight *h, blo_tensor *X,
                                 blo_tensor *const *w) {
    if (h->cls == BLO_REWEIGHT_MLP) return blo__mlp_forward(ctx, X, 2, w, 1);
    int64_t m = blo_tensor_dim(X, 0), s = h->side, q = s / 2 / 2;
    blo_conv2d_params cp = blo_conv2d_default();
    cp.pad_h = cp.pad_w = 1;
    blo_pool2d_params pp = {.kernel_h = 2, .kernel_w = 2};
    blo_tensor *z = blo_reshape(ctx, X, 4, (int64_t[]){m, 1, s, s});
    for (int l = 0; l < 2; l++)
        z = blo_max_pool2d(ctx, blo_relu(ctx, blo_conv2d(ctx, z, w[2 * l], w[2 * l + 1], &cp)), &pp);
    z = blo_reshape(ctx, z, 2, (int64_t[]){m, 2 * h->width * q * q});
    return blo_add(ctx, blo_matmul(ctx, z, w[4]), w[5]);
}

blo_tensor *blo__reweight_vnet(blo_ctx *ctx, blo_tensor *const *phi, blo_tensor *l) {
    int64_t m = blo_tensor_numel(l);
    blo_tensor *v = blo__mlp_forward(ctx, blo_reshape(ctx, l, 2, (int64_t[]){m, 1}), 2, phi, 1);
    return blo_reshape(ctx, blo_sigmoid(ctx, v), 1, &m);
}

/* The rows of an evaluation (the given ones, or k drawn uniformly from n with ev's
 * generator: every rank draws all k) at positions [lo, lo + kl) as features [kl, d] and
 * labels [kl] in ctx; false on failure. */
static bool rows(blo_ctx *ctx, const int64_t *given, int64_t k, int64_t lo, int64_t kl,
                 blo_tensor *X, const int64_t *lab, const blo_eval *ev, blo_tensor **Xb,
                 blo_tensor **yb) {
    int64_t *buf = blo_malloc(sizeof(int64_t) * (size_t)(2 * k)), n = blo_tensor_dim(X, 0);
    if (!buf || (!given && (!ev || !ev->rng))) {
        blo_free(buf);
        return false;
    }
    for (int64_t i = 0; i < k; i++) {
        buf[i] = given ? given[i] : (int64_t)blo_rng_below(ev->rng, (uint64_t)n);
        buf[k + i] = lab[buf[i]];
    }
    *Xb = blo_index_select(ctx, X, 0, blo_from_i64(ctx, 1, &kl, buf + lo));
    *yb = blo_from_i64(ctx, 1, &kl, buf + k + lo);
    blo_free(buf);
    return *Xb && *yb;
}

/* Per-example cross-entropy [k] of the classifier w on this rank's training rows (given or
 * drawn) of the batch. */
static blo_tensor *batch_losses(blo_ctx *ctx, const blo__reweight *h, const blo_eval *ev,
                                blo_tensor *const *w) {
    blo_tensor *Xb, *yb, *wl[BLO__RW_MAXY];
    if (!rows(ctx, h->batch_rows, h->batch, h->lo, h->k, h->X, h->lab, ev, &Xb, &yb)) return NULL;
    local(ctx, h, h->ny, w, wl);
    return blo_cross_entropy(ctx, blo__reweight_logits(ctx, h, Xb, wl), yb, NULL, BLO_REDUCE_NONE);
}

/* f: the weighted mean of the batch's losses (weights from x as the mode says); l holds this
 * rank's losses, f is the whole batch's. */
static blo_tensor *weighted(blo_ctx *ctx, const blo__reweight *h, blo_tensor *const *x,
                            blo_tensor *l) {
    blo_tensor *xl[4];
    local(ctx, h, h->nx, x, xl);
    switch (h->weights) {
    case BLO_REWEIGHT_NETWORK: {
        blo_tensor *v = blo__reweight_vnet(ctx, xl, blo_detach(ctx, l));
        blo_tensor *vl = total(ctx, h, blo_mul(ctx, v, l));
        return h->norm == BLO_REWEIGHT_NORM_SUM ? blo_div(ctx, vl, total(ctx, h, v))
                                                : blo_scale(ctx, vl, 1.0 / (double)h->batch);
    }
    case BLO_REWEIGHT_PER_EXAMPLE: {
        blo_tensor *e = h->comm ? blo_slice(ctx, xl[0], 0, h->lo, h->lo + h->k, 1) : xl[0];
        return total(ctx, h, blo_mul(ctx, e, l));
    }
    default:
        return h->comm ? blo_scale(ctx, total(ctx, h, l), 1.0 / (double)h->batch)
                       : blo_mean(ctx, l, 0, NULL, 0);
    }
}

static blo_tensor *lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                         const blo_eval *ev, void *user) {
    const blo__reweight *h = user;
    blo_tensor *l = batch_losses(ctx, h, ev, y);
    return l ? weighted(ctx, h, x, l) : NULL;
}

static blo_tensor *upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                         const blo_eval *ev, void *user) {
    (void)x;
    const blo__reweight *h = user;
    blo_tensor *Xb, *yb, *yl[BLO__RW_MAXY];
    if (!rows(ctx, h->meta_rows, h->meta_batch, h->mlo, h->mk, h->Xm, h->lab_m, ev, &Xb, &yb))
        return NULL;
    local(ctx, h, h->ny, y, yl);
    blo_tensor *z = blo__reweight_logits(ctx, h, Xb, yl);
    if (!h->comm) return blo_cross_entropy(ctx, z, yb, NULL, BLO_REDUCE_MEAN);
    blo_tensor *sum = blo_cross_entropy(ctx, z, yb, NULL, BLO_REDUCE_SUM);
    return blo_scale(ctx, blo_allreduce_sum(ctx, h->comm, sum), 1.0 / (double)h->meta_batch);
}

blo_problem blo__reweight_problem(blo__reweight *h) {
    return blo__task_problem(h->nx, h->x0, h->ny, h->y0, upper, lower, h);
}

/* The online step's training minibatch: its losses l [k], and for the MLP on one process the
 * rows Xb [B, d] and the first layer's pre-activation z1 = Xb W1 + b1 they came through (NULL
 * otherwise). */
typedef struct rw_batch {
    blo_tensor *Xb, *z1, *l;
} rw_batch;

static bool online_batch(blo_ctx *ctx, const blo__reweight *h, blo_tensor *const *w, rw_batch *b) {
    memset(b, 0, sizeof *b);
    if (h->cls != BLO_REWEIGHT_MLP || h->comm) return (b->l = batch_losses(ctx, h, NULL, w)) != NULL;
    blo_tensor *yb;
    if (!rows(ctx, h->batch_rows, h->batch, 0, h->batch, h->X, h->lab, NULL, &b->Xb, &yb)) return false;
    b->z1 = blo_add(ctx, blo_matmul(ctx, b->Xb, w[0]), w[1]);
    blo_tensor *z = blo_add(ctx, blo_matmul(ctx, blo_relu(ctx, b->z1), w[2]), w[3]);
    return (b->l = blo_cross_entropy(ctx, z, yb, NULL, BLO_REDUCE_NONE)) != NULL;
}

/* The virtual step's meta gradient: ŵ = w − α ∇_w f(x, w) recorded, then ∂F(ŵ)/∂x.
 * For the MLP on one process the first layer's ŵ1 is never formed: with g = ∂f/∂z1 [B, H],
 * ∇_W1 f = Xbᵀ g and ∇_b1 f = 1ᵀ g, so the meta batch's first layer is
 *     Xm ŵ1 + b̂1 = Xm W1 + b1 − α ((Xm Xbᵀ) g + 1ᵀ g),
 * a [Bm, B] · [B, H] product in place of two [d, H]-sized ones (and their two in the reverse
 * pass); the same numbers up to rounding. */
static blo_status meta_grad(blo__reweight *h, blo__reweight_online *o, blo_ctx *sc,
                            blo_tensor *const *x, const rw_batch *b, blo_tensor **gx) {
    blo_tensor *f = weighted(sc, h, x, b->l), *gw[BLO__RW_MAXY], *what[BLO__RW_MAXY], *F;
    double a = o->opt.lr;
    if (b->z1) {
        blo_tensor *in[3] = {b->z1, o->w[2], o->w[3]}, *Xm, *ym;
        if (!f || blo_grad(sc, 1, &f, NULL, 3, in, BLO_GRAD_CREATE_GRAPH, gw) ||
            !rows(sc, h->meta_rows, h->meta_batch, 0, h->meta_batch, h->Xm, h->lab_m, NULL, &Xm,
                  &ym))
            return blo_ctx_status(sc) ? blo_ctx_status(sc) : BLO_ERR_NOMEM;
        blo_tensor *K = blo_matmul(sc, Xm, blo_transpose(sc, b->Xb, 0, 1));
        blo_tensor *shift = blo_add(sc, blo_matmul(sc, K, gw[0]), blo_sum(sc, gw[0], 1, (int[]){0}, 0));
        blo_tensor *z1 = blo_sub(sc, blo_add(sc, blo_matmul(sc, Xm, o->w[0]), o->w[1]),
                                 blo_scale(sc, shift, a));
        for (int i = 1; i < 3; i++) what[i] = blo_sub(sc, o->w[i + 1], blo_scale(sc, gw[i], a));
        blo_tensor *z = blo_add(sc, blo_matmul(sc, blo_relu(sc, z1), what[1]), what[2]);
        F = blo_cross_entropy(sc, z, ym, NULL, BLO_REDUCE_MEAN);
    } else {
        if (!f || blo_grad(sc, 1, &f, NULL, h->ny, o->w, BLO_GRAD_CREATE_GRAPH, gw))
            return blo_ctx_status(sc);
        for (int i = 0; i < h->ny; i++) what[i] = blo_sub(sc, o->w[i], blo_scale(sc, gw[i], a));
        F = upper(sc, x, what, NULL, h);
    }
    if (!F) return blo_ctx_status(sc) ? blo_ctx_status(sc) : BLO_ERR_NOMEM;
    return blo_grad(sc, 1, &F, NULL, h->nx, x, 0, gx);
}

blo_status blo__reweight_meta_grad(blo__reweight *h, blo__reweight_online *o, blo_ctx *sc,
                                   blo_tensor *const *x, blo_tensor **gx) {
    rw_batch b;
    return online_batch(sc, h, o->w, &b) ? meta_grad(h, o, sc, x, &b, gx) : blo_ctx_status(sc);
}

blo_status blo__reweight_step(blo__reweight *h, blo__reweight_online *o, blo_ctx *sc,
                              double *weights_out, double *loss) {
    blo_mark mk = blo_ctx_mark(sc);
    blo_status st = BLO_OK;
    rw_batch b;
    blo_tensor *l = online_batch(sc, h, o->w, &b) ? b.l : NULL, *gx[4], *x[4] = {0};
    if (!l) st = blo_ctx_status(sc) ? blo_ctx_status(sc) : BLO_ERR_NOMEM;
    o->meta_grad_norm = NAN;
    if (!st && h->weights == BLO_REWEIGHT_NETWORK) {
        for (int i = 0; i < 4; i++) x[i] = o->phi[i];
        st = meta_grad(h, o, sc, x, &b, gx);
        if (!st) o->meta_grad_norm = blo__norm_list(4, gx);
        if (!st) st = blo_opt_step(sc, &o->meta_opt, &o->phi_state, 4, o->phi, gx);
    } else if (!st && h->weights == BLO_REWEIGHT_PER_EXAMPLE) {
        x[0] = blo_zeros(sc, blo_tensor_dtype(l), 1, &h->batch);
        st = x[0] && !blo_set_requires_grad(x[0], 1) ? meta_grad(h, o, sc, x, &b, gx)
                                                     : blo_ctx_status(sc);
        if (!st) o->meta_grad_norm = blo__norm_list(1, gx);
        if (!st) { /* ε_i = max(−∂F/∂ε_i, 0) / Σ (all zero when the sum is) */
            blo_tensor *e = blo_relu(sc, blo_neg(sc, gx[0]));
            double sum = blo_tensor_item(blo_sum_all(sc, e));
            x[0] = sum > 0 ? blo_scale(sc, e, 1 / sum) : e;
        }
    }
    blo_tensor *f = NULL, *gw[BLO__RW_MAXY];
    if (!st) {
        if (h->weights == BLO_REWEIGHT_NETWORK)
            for (int i = 0; i < 4; i++) x[i] = blo_detach(sc, o->phi[i]);
        else if (x[0])
            x[0] = blo_detach(sc, x[0]);
        f = weighted(sc, h, x, l);
        st = f ? blo_grad(sc, 1, &f, NULL, h->ny, o->w, 0, gw) : blo_ctx_status(sc);
    }
    if (!st && weights_out && h->weights == BLO_REWEIGHT_PER_EXAMPLE)
        st = blo_tensor_to_f64(x[0], weights_out); /* replicated [batch] */
    if (!st && weights_out && h->weights == BLO_REWEIGHT_NETWORK) {
        /* This rank's [k] weights in place, zeros elsewhere, summed over the ranks: exact. */
        blo_tensor *v = blo__reweight_vnet(sc, x, blo_detach(sc, l));
        if (h->comm) memset(weights_out, 0, sizeof(double) * (size_t)h->batch);
        st = v ? blo_tensor_to_f64(v, weights_out + h->lo) : blo_ctx_status(sc);
        if (!st && h->comm) blo_comm_sum_f64(h->comm, weights_out, h->batch);
    }
    if (!st && loss && !h->comm) *loss = blo_tensor_item(blo_mean(sc, l, 0, NULL, 0));
    if (!st && loss && h->comm) {
        *loss = blo_tensor_item(blo_sum_all(sc, l));
        blo_comm_sum_f64(h->comm, loss, 1);
        *loss /= (double)h->batch;
    }
    if (!st) st = blo_opt_step(sc, &o->opt, &o->w_state, h->ny, o->w, gw);
    if (!st && blo_ctx_status(sc)) st = blo_ctx_status(sc);
    blo_ctx_rewind(sc, mk);
    return st;
}
