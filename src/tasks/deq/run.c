/* run.c — `blo deq` end to end: Fashion-MNIST (MNIST layout) classified by one equilibrium
 * layer and a linear head, logits = z*(x) Woᵀ + bo, trained by minibatch Adam (optim/'s
 * values-only step) on the mean cross-entropy; after every epoch the test accuracy, the
 * epoch's mean forward / backward iterations and residuals, the examples whose forward solve
 * stopped above tolerance, and a checkpoint. Beside it on request the explicit network
 * Linear(p, h) → ReLU → Linear(h, C) whose parameter count matches, trained the same way.
 *
 * One training step, by the layer's backward:
 *   implicit / jfb / phantom   z* = blo_deq_solve (no graph); the head's loss at a leaf copy
 *                              of z* gives ∂L/∂z* and the head's gradient; blo_deq_backward
 *                              gives the layer's — the step's memory does not depend on how
 *                              many iterations the solve took;
 *   unrolled                   z_K = blo_deq_unroll (the graph of every iteration), then one
 *                              blo_grad to every parameter. */
#include "blo/deq.h"
#include "blo/optim.h"

#include "../common/common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAXP (BLO_DEQ_MAX_PARAMS + 4)

typedef struct model {
    int explicit_net; /* 1: the baseline (an MLP, or for the conv layer a conv net) */
    blo_deq L;
    int n;
    /* the layer's parameters then the head's; the MLP's W1, b1, W2, b2; the conv net's
     * K1, b1, K2, b2, K3, b3, Wo, bo */
    blo_tensor *p[MAXP];
    blo_opt_state os;
} model;

typedef struct run {
    const blo_deq_config *c;
    blo_ctx *dc, *pc, *sc; /* data, parameters and Adam state, one step's scratch */
    blo_ctx *ec;           /* the test accuracy's scratch, apart so that sc's peak is a step's */
    blo_tensor *Xtr, *ytr, *Xte, *yte;
    int64_t ntr, nte, p, C;
    int64_t *ytr_host; /* the training labels (a minibatch's are copied from here) */
    int64_t *ybatch;
    blo_rng rng; /* minibatch order */
    int64_t unconverged; /* the equilibrium model's, over the run */
    blo_opt adam;
    char *err;
    size_t errlen;
} run;

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int64_t count_params(const model *m) {
    int64_t k = 0;
    for (int i = 0; i < m->n; i++)
        k += blo_tensor_numel(m->p[i]);
    return k;
}

static blo_status ctx_fail(run *R, blo_ctx *ctx, const char *what, int epoch, int64_t b) {
    blo_status st = blo_ctx_status(ctx) ? blo_ctx_status(ctx) : BLO_ERR_NOMEM;
    return blo__fail(R->err, R->errlen, st, "deq: epoch %d, minibatch %lld: %s: %s", epoch,
                     (long long)b, what, blo_ctx_status(ctx) ? blo_ctx_error(ctx) : "out of memory");
}

/* The conv layer's image side (a square image of one channel) and its head's width: the state
 * [ch, hw, hw] after 2 × 2 average pooling. */
static int64_t image_side(const run *R) {
    int64_t s = (int64_t)(sqrt((double)R->p) + 0.5);
    return s * s == R->p ? s : 0;
}
static int64_t conv_state_side(const run *R) {
    return (image_side(R) - 1) / R->c->conv_stride + 1;
}
static int64_t conv_features(const run *R) {
    int64_t h = conv_state_side(R) / 2;
    return R->c->channels * h * h;
}

/* The conv baseline: K1 (stride s) → relu → K2 → relu → K3 → relu, all k × k and same padded,
 * the layer's U, A and B replaced by explicit convolutions with biases. */
static blo_status conv_net_init(run *R, model *m) {
    blo_dtype dt = R->c->dtype;
    int64_t ch = R->c->channels, k = R->c->conv_kernel, C = R->C, F = conv_features(R);
    int64_t s1[4] = {ch, 1, k, k}, s2[4] = {ch, ch, k, k}, so[2] = {C, F};
    for (int l = 0; l < 3; l++) {
        m->p[2 * l] = blo_tensor_new(R->pc, dt, 4, l ? s2 : s1);
        m->p[2 * l + 1] = blo_zeros(R->pc, dt, 1, &ch);
    }
    m->p[6] = blo_tensor_new(R->pc, dt, 2, so);
    m->p[7] = blo_zeros(R->pc, dt, 1, &C);
    m->n = 8;
    for (int i = 0; i < 8; i++)
        if (!m->p[i]) return blo__fail(R->err, R->errlen, BLO_ERR_NOMEM, "deq: out of memory");
    for (int i = 0; i < 8; i += 2)
        blo_init_kaiming_uniform(m->p[i], &R->rng);
    for (int i = 0; i < 8; i++)
        blo_set_requires_grad(m->p[i], 1);
    return BLO_OK;
}

static blo_status model_init(run *R, model *m, int explicit_net, int64_t hidden) {
    memset(m, 0, sizeof *m);
    m->explicit_net = explicit_net;
    blo_dtype dt = R->c->dtype;
    int64_t d = R->c->hidden, C = R->C;
    blo_status cs = explicit_net && R->c->conv ? conv_net_init(R, m) : BLO_OK;
    if (cs) return cs;
    if (explicit_net && R->c->conv) {
        /* made above */
    } else if (explicit_net) {
        int64_t s1[2] = {hidden, R->p}, s2[2] = {C, hidden};
        m->p[0] = blo_tensor_new(R->pc, dt, 2, s1);
        m->p[1] = blo_zeros(R->pc, dt, 1, &hidden);
        m->p[2] = blo_tensor_new(R->pc, dt, 2, s2);
        m->p[3] = blo_zeros(R->pc, dt, 1, &C);
        m->n = 4;
        if (m->p[0] && m->p[2]) {
            blo_init_kaiming_uniform(m->p[0], &R->rng);
            blo_init_kaiming_uniform(m->p[2], &R->rng);
        }
        for (int i = 0; i < 4; i++)
            if (m->p[i]) blo_set_requires_grad(m->p[i], 1);
    } else {
        const blo_deq_config *c = R->c;
        blo_status st = c->conv ? blo_deq_init_conv(R->pc, &m->L, 1, image_side(R), c->channels,
                                                    c->conv_kernel, c->conv_stride, &c->layer, dt,
                                                    &R->rng)
                                : blo_deq_init(R->pc, &m->L, R->p, d, &c->layer, dt, &R->rng);
        if (st) return blo__fail(R->err, R->errlen, st, "%s", blo_ctx_error(R->pc));
        m->n = m->L.np;
        for (int i = 0; i < m->L.np; i++)
            m->p[i] = m->L.p[i];
        int64_t s[2] = {C, c->conv ? conv_features(R) : d};
        blo_tensor *Wo = blo_tensor_new(R->pc, dt, 2, s), *bo = blo_zeros(R->pc, dt, 1, &C);
        if (Wo) blo_init_kaiming_uniform(Wo, &R->rng);
        m->p[m->n++] = Wo;
        m->p[m->n++] = bo;
        if (Wo && bo) blo_set_requires_grad(Wo, 1), blo_set_requires_grad(bo, 1);
    }
    for (int i = 0; i < m->n; i++)
        if (!m->p[i]) return blo__fail(R->err, R->errlen, BLO_ERR_NOMEM, "deq: out of memory");
    if (blo_opt_state_init(R->pc, &R->adam, m->n, m->p, &m->os))
        return blo__fail(R->err, R->errlen, blo_ctx_status(R->pc), "deq: %s",
                         blo_ctx_error(R->pc));
    return BLO_OK;
}

/* The head's logits from the state z [B, d] (conv: [B, ch, hw, hw], 2 × 2 average pooled). */
static blo_tensor *head(blo_ctx *sc, const run *R, model *m, blo_tensor *z) {
    if (z && R->c->conv) {
        int64_t B = blo_tensor_dim(z, 0), hw = conv_state_side(R);
        int64_t s4[4] = {B, R->c->channels, hw, hw}, s2[2] = {B, conv_features(R)};
        blo_pool2d_params pp = {2, 2, 2, 2, 0, 0, 1};
        z = blo_reshape(sc, blo_avg_pool2d(sc, blo_reshape(sc, z, 4, s4), &pp), 2, s2);
    }
    return blo_linear(sc, z, m->p[m->n - 2], m->p[m->n - 1]);
}

/* Logits of the batch x; for the equilibrium model z* comes from the forward solve (no
 * graph), st receives its figures. */
static blo_tensor *predict(blo_ctx *sc, const run *R, model *m, blo_tensor *x, blo_deq_stats *st) {
    if (!x) return NULL;
    if (m->explicit_net && R->c->conv) {
        int64_t side = image_side(R), k = R->c->conv_kernel, s4[4] = {-1, 1, side, side};
        blo_conv2d_params cp = blo_conv2d_default();
        cp.pad_h = cp.pad_w = (int)(k / 2);
        blo_tensor *h = blo_reshape(sc, x, 4, s4);
        for (int l = 0; l < 3; l++) {
            cp.stride_h = cp.stride_w = l ? 1 : R->c->conv_stride;
            h = blo_relu(sc, blo_conv2d(sc, h, m->p[2 * l], m->p[2 * l + 1], &cp));
        }
        int64_t s2[2] = {blo_tensor_dim(x, 0), R->c->channels * conv_state_side(R) *
                                                   conv_state_side(R)};
        return head(sc, R, m, blo_reshape(sc, h, 2, s2));
    }
    if (m->explicit_net)
        return blo_linear(sc, blo_relu(sc, blo_linear(sc, x, m->p[0], m->p[1])), m->p[2], m->p[3]);
    blo_tensor *z = blo_deq_solve(sc, &m->L, blo_deq_inject(sc, &m->L, x), st);
    return head(sc, R, m, z);
}

/* One step's loss and gradients (grads[0 .. m->n), in sc). */
/* grads[i] += γ dR/dθ_i for the layer's parameters, R = blo_deq_jacobian_penalty at z. */
static blo_status add_jacobian_penalty(blo_ctx *sc, model *m, blo_tensor *inj, blo_tensor *z,
                                       double gamma, blo_rng *r, blo_tensor **grads) {
    blo_tensor *R = blo_deq_jacobian_penalty(sc, &m->L, inj, z, r), *gr[BLO_DEQ_MAX_PARAMS];
    if (!R || blo_grad(sc, 1, &R, NULL, m->L.np, m->L.p, 0, gr)) return blo_ctx_status(sc);
    for (int i = 0; i < m->L.np; i++)
        if (!(grads[i] = blo_add(sc, grads[i], blo_scale(sc, gr[i], gamma))))
            return blo_ctx_status(sc);
    return BLO_OK;
}

/* One step's loss and gradients (grads[0 .. m->n), in sc); r draws the Jacobian penalty's
 * probe when gamma > 0. */
static blo_status step_grads(blo_ctx *sc, const run *R, model *m, blo_tensor *x, blo_tensor *y,
                             double gamma,
                             blo_rng *r, blo_tensor **grads, blo_deq_stats *st, double *loss,
                             const char **what) {
    blo_tensor *Wo = m->p[m->n - 2], *bo = m->p[m->n - 1], *l, *zs;
    blo_tensor *inj = m->explicit_net ? NULL : blo_deq_inject(sc, &m->L, x);
    blo_status e;
    *what = "the loss";
    if (m->explicit_net || m->L.o.backward == BLO_DEQ_UNROLLED) {
        zs = m->explicit_net ? NULL : blo_deq_unroll(sc, &m->L, inj, st);
        blo_tensor *logits = m->explicit_net ? predict(sc, R, m, x, st) : head(sc, R, m, zs);
        l = blo_cross_entropy_fast(sc, logits, y, NULL, BLO_REDUCE_MEAN);
        if (!l || blo_grad(sc, 1, &l, NULL, m->n, m->p, 0, grads)) return blo_ctx_status(sc);
        *loss = blo_tensor_item(l);
        if (m->explicit_net || gamma <= 0) return BLO_OK;
        zs = blo_detach(sc, zs);
    } else {
        *what = "the forward solve";
        zs = blo_deq_solve(sc, &m->L, inj, st);
        blo_tensor *z = zs ? blo_clone(sc, zs) : NULL;
        if (!z) return blo_ctx_status(sc);
        blo_set_requires_grad(z, 1);
        *what = "the loss";
        l = blo_cross_entropy_fast(sc, head(sc, R, m, z), y, NULL, BLO_REDUCE_MEAN);
        blo_tensor *in[3] = {z, Wo, bo}, *out[3];
        if (!l || blo_grad(sc, 1, &l, NULL, 3, in, 0, out)) return blo_ctx_status(sc);
        *loss = blo_tensor_item(l);
        grads[m->n - 2] = out[1], grads[m->n - 1] = out[2];
        *what = "the backward";
        if ((e = blo_deq_backward(sc, &m->L, inj, zs, out[0], grads, st)) || gamma <= 0) return e;
    }
    *what = "the Jacobian penalty";
    return add_jacobian_penalty(sc, m, inj, zs, gamma, r, grads);
}

static double test_accuracy(run *R, model *m, blo_status *st) {
    double hits = 0;
    *st = BLO_OK;
    for (int64_t s = 0; s < R->nte; s += 1000) {
        blo_mark mk = blo_ctx_mark(R->ec);
        int64_t e = s + 1000 < R->nte ? s + 1000 : R->nte;
        int rec = blo_ctx_set_recording(R->ec, 0);
        blo_tensor *logits = predict(R->ec, R, m, blo_slice(R->ec, R->Xte, 0, s, e, 1), NULL);
        blo_ctx_set_recording(R->ec, rec);
        double a = logits ? blo_accuracy(logits, blo_slice(R->ec, R->yte, 0, s, e, 1)) : NAN;
        if (!logits) *st = blo_ctx_status(R->ec);
        blo_ctx_rewind(R->ec, mk);
        if (*st) return NAN;
        hits += a * (double)(e - s);
    }
    return hits / (double)R->nte;
}

/* ---- Checkpoints: the parameters, Adam's moments and step, the epoch, the generator --------- */
/* Magic "BLODEQ02"; int64 [epoch, Adam's step, tensors, parameters]; the generator; then per
 * parameter its values, Adam's m and v, and the spectral norm's vector where there is one
 * (blo__tensor_write: in the run's dtype). */
static const char CKPT_MAGIC[8] = {'B', 'L', 'O', 'D', 'E', 'Q', '0', '2'};

static blo_status save(run *R, model *m, int epoch) {
    const char *path = R->c->checkpoint;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return blo__fail(R->err, R->errlen, BLO_ERR_INVALID, "deq: checkpoint path too long");
    FILE *f = fopen(tmp, "wb");
    if (!f) return blo__fail(R->err, R->errlen, BLO_ERR_IO, "deq: %s: cannot write", tmp);
    int64_t head[4] = {epoch, m->os.t, m->n, count_params(m)};
    bool ok = fwrite(CKPT_MAGIC, 1, 8, f) == 8 && fwrite(head, sizeof head, 1, f) == 1 &&
              fwrite(&R->rng, sizeof R->rng, 1, f) == 1;
    for (int i = 0; ok && i < m->n; i++)
        ok = blo__tensor_write(f, m->p[i]) && blo__tensor_write(f, m->os.m[i]) &&
             blo__tensor_write(f, m->os.v[i]);
    if (ok && m->L.sn_u) ok = blo__tensor_write(f, m->L.sn_u);
    ok = (fflush(f) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path)) {
        remove(tmp);
        return blo__fail(R->err, R->errlen, BLO_ERR_IO, "deq: %s: writing the checkpoint failed",
                         path);
    }
    return BLO_OK;
}

/* Restores m and R->rng from c->resume; returns the epochs done through *epoch. */
static blo_status load(run *R, model *m, int *epoch) {
    const char *path = R->c->resume;
    FILE *f = fopen(path, "rb");
    if (!f) return blo__fail(R->err, R->errlen, BLO_ERR_IO, "deq: %s: cannot open the checkpoint",
                             path);
    char magic[8], why[128] = "not a blo deq checkpoint, or truncated";
    int64_t head[4];
    bool ok = fread(magic, 1, 8, f) == 8 && !memcmp(magic, CKPT_MAGIC, 8) &&
              fread(head, sizeof head, 1, f) == 1;
    if (ok && (head[2] != m->n || head[3] != count_params(m) || head[0] < 0)) {
        fclose(f);
        return blo__fail(R->err, R->errlen, BLO_ERR_FORMAT,
                         "deq: %s: written by a model of %lld tensors and %lld parameters, this "
                         "run has %d and %lld (resume with the same --hidden and --param)",
                         path, (long long)head[2], (long long)head[3], m->n,
                         (long long)count_params(m));
    }
    ok = ok && fread(&R->rng, sizeof R->rng, 1, f) == 1;
    for (int i = 0; ok && i < m->n; i++)
        ok = blo__tensor_read(f, m->p[i], 0, -1, why, sizeof why) &&
             blo__tensor_read(f, m->os.m[i], 0, -1, why, sizeof why) &&
             blo__tensor_read(f, m->os.v[i], 0, -1, why, sizeof why);
    if (ok && m->L.sn_u) ok = blo__tensor_read(f, m->L.sn_u, 0, -1, why, sizeof why);
    fclose(f);
    if (!ok)
        return blo__fail(R->err, R->errlen, BLO_ERR_FORMAT, "deq: %s: %s", path, why);
    *epoch = (int)head[0];
    m->os.t = head[1];
    return BLO_OK;
}

/* Trains m for c->epochs epochs (from *start), reporting each; r receives the last epoch. */
static blo_status train(run *R, model *m, int start, blo_deq_epoch *last) {
    const blo_deq_config *c = R->c;
    int64_t *perm = blo_malloc(sizeof(int64_t) * (size_t)R->ntr);
    blo_tensor **g = blo_calloc(MAXP, sizeof *g);
    blo_status st = perm && g
                        ? BLO_OK
                        : blo__fail(R->err, R->errlen, BLO_ERR_NOMEM, "deq: out of memory");
    double t0 = blo__task_seconds(), c0 = cpu_seconds();
    for (int ep = start + 1; !st && ep <= c->epochs; ep++) {
        for (int64_t i = 0; i < R->ntr; i++)
            perm[i] = i;
        blo__shuffle(&R->rng, perm, R->ntr);
        blo_deq_epoch e;
        memset(&e, 0, sizeof e);
        e.epoch = ep;
        e.baseline = m->explicit_net;
        int64_t nb = 0;
        double nres = 0;
        for (int64_t s = 0; !st && s < R->ntr; s += c->batch, nb++) {
            int64_t k = s + c->batch < R->ntr ? c->batch : R->ntr - s;
            blo_mark mk = blo_ctx_mark(R->sc);
            blo_tensor *idx = blo_from_i64(R->sc, 1, &k, perm + s);
            blo_tensor *x = blo_index_select(R->sc, R->Xtr, 0, idx);
            for (int64_t i = 0; i < k; i++)
                R->ybatch[i] = R->ytr_host[perm[s + i]];
            blo_tensor *y = blo_from_i64(R->sc, 1, &k, R->ybatch);
            blo_deq_stats ds;
            memset(&ds, 0, sizeof ds);
            double loss = NAN;
            const char *what = "the minibatch";
            if (!x || !y || step_grads(R->sc, R, m, x, y, c->jac_reg, &R->rng, g, &ds, &loss, &what)) {
                st = ctx_fail(R, R->sc, what, ep, nb);
                break;
            }
            if (!isfinite(loss)) {
                st = blo__fail(R->err, R->errlen, BLO_ERR_NUMERIC,
                               "deq: epoch %d, minibatch %lld: the loss is %g: training "
                               "diverged (lower --lr, or a smaller --scale / larger --m)",
                               ep, (long long)nb, loss);
                break;
            }
            if (blo_opt_step(R->sc, &R->adam, &m->os, m->n, m->p, g)) {
                st = ctx_fail(R, R->sc, "the Adam step", ep, nb);
                break;
            }
            size_t peak = blo_ctx_peak_bytes(R->sc);
            blo_ctx_rewind(R->sc, mk);
            if (peak > e.peak_bytes) e.peak_bytes = peak;
            e.train_loss += loss;
            e.fwd_iters += ds.fwd_iters, e.bwd_iters += ds.bwd_iters;
            e.fwd_residual += ds.fwd_residual;
            if (isfinite(ds.bwd_residual)) e.bwd_residual += ds.bwd_residual, nres++;
            e.unconverged += ds.unconverged;
            if (ds.fwd_residual > e.worst_residual) e.worst_residual = ds.fwd_residual;
        }
        if (st) break;
        if (!m->explicit_net) R->unconverged += e.unconverged;
        e.train_loss /= (double)nb, e.fwd_iters /= (double)nb, e.bwd_iters /= (double)nb;
        e.fwd_residual /= (double)nb;
        e.bwd_residual = nres > 0 ? e.bwd_residual / nres : NAN;
        if (m->explicit_net) e.fwd_iters = e.bwd_iters = e.fwd_residual = e.worst_residual = NAN;
        e.test_acc = test_accuracy(R, m, &st);
        if (st) {
            st = ctx_fail(R, R->ec, "the test accuracy", ep, nb);
            break;
        }
        e.seconds = blo__task_seconds() - t0;
        e.cpu_seconds = cpu_seconds() - c0;
        if (c->checkpoint && !m->explicit_net && (st = save(R, m, ep))) break;
        *last = e;
        if (c->on_epoch && c->on_epoch(&e, c->user)) break;
    }
    blo_free(g);
    blo_free(perm);
    return st;
}

blo_deq_config blo_deq_default(void) {
    blo_deq_config c;
    memset(&c, 0, sizeof c);
    c.hidden = 64;
    c.channels = 8;
    c.conv_kernel = 3;
    c.conv_stride = 2;
    c.layer = blo_deq_opts_default();
    c.epochs = 3;
    c.batch = 128;
    c.lr = 1e-3;
    c.dtype = BLO_F32;
    return c;
}

static blo_status load_data(run *R, char *err, size_t errlen) {
    const blo_deq_config *c = R->c;
    blo_dataset tr, te;
    blo_status st = blo_mnist_load(c->data_dir, "train", &tr, err, errlen);
    if (st) return st;
    if ((st = blo_mnist_load(c->data_dir, "t10k", &te, err, errlen))) {
        blo_dataset_free(&tr);
        return st;
    }
    R->ntr = c->n_train > 0 && c->n_train < tr.n ? c->n_train : tr.n;
    R->nte = c->n_test > 0 && c->n_test < te.n ? c->n_test : te.n;
    if ((c->n_train > tr.n || c->n_test > te.n))
        st = blo__fail(err, errlen, BLO_ERR_INVALID,
                       "deq: %lld training / %lld test examples asked for, %s has %lld / %lld",
                       (long long)c->n_train, (long long)c->n_test, c->data_dir,
                       (long long)tr.n, (long long)te.n);
    if (!st) {
        R->Xtr = blo_dataset_features(R->dc, &tr, c->dtype, NULL, R->ntr);
        R->ytr = blo_dataset_labels(R->dc, &tr, NULL, R->ntr);
        R->Xte = blo_dataset_features(R->dc, &te, c->dtype, NULL, R->nte);
        R->yte = blo_dataset_labels(R->dc, &te, NULL, R->nte);
        R->C = 0;
        st = R->Xtr && R->ytr && R->Xte && R->yte
                 ? blo__check_classification("deq", R->Xtr, R->ytr, R->Xte, R->yte, &R->C, err,
                                             errlen)
                 : blo__fail(err, errlen, blo_ctx_status(R->dc), "deq: %s",
                             blo_ctx_error(R->dc));
        R->p = tr.d;
    }
    R->ytr_host = blo_malloc(sizeof(int64_t) * (size_t)R->ntr);
    R->ybatch = blo_malloc(sizeof(int64_t) * (size_t)R->ntr);
    if (!st && (!R->ytr_host || !R->ybatch || blo_tensor_copy_to_host(R->ytr, BLO_I64, R->ytr_host)))
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "deq: out of memory");
    blo_dataset_free(&tr);
    blo_dataset_free(&te);
    return st;
}

blo_status blo_deq_run(const blo_deq_config *c, blo_deq_result *r, char *err, size_t errlen) {
    if (!c || !r) return blo__fail(err, errlen, BLO_ERR_INVALID, "deq: no configuration");
    memset(r, 0, sizeof *r);
    r->test_acc = r->baseline_acc = r->baseline_seconds = NAN;
    const char *why = blo_deq_opts_check(&c->layer);
    if (why) return blo__fail(err, errlen, BLO_ERR_INVALID, "deq: %s", why);
    if (c->conv && (c->channels < 1 || c->conv_kernel < 1 || c->conv_kernel % 2 == 0 ||
                    c->conv_kernel > BLO_DEQ_MAX_KERNEL || c->conv_stride < 1))
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "deq: the conv layer needs channels >= 1, an odd kernel in [1, %d] and a "
                         "stride >= 1",
                         BLO_DEQ_MAX_KERNEL);
    if (c->hidden < 1 || c->epochs < 0 || c->batch < 1 || !(c->lr > 0) || c->n_train < 0 ||
        !(c->jac_reg >= 0) ||
        c->n_test < 0 || (c->dtype != BLO_F32 && c->dtype != BLO_F64))
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "deq: hidden, batch and lr must be positive, epochs, sizes and jac_reg "
                         ">= 0, the dtype f32 or f64");
    if (!c->data_dir)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "deq: no data folder (the CLI's --data)");
    run R;
    memset(&R, 0, sizeof R);
    R.c = c;
    R.err = err, R.errlen = errlen;
    R.adam = blo_opt_adam(c->lr);
    blo_rng_seed(&R.rng, c->seed);
    R.dc = blo_ctx_new(0), R.pc = blo_ctx_new(0);
    R.sc = blo_ctx_new(16u << 20); /* one step's temporaries fit its chunks: no allocation per step */
    R.ec = blo_ctx_new(0);
    blo_status st = R.dc && R.pc && R.sc && R.ec ? load_data(&R, err, errlen)
                                         : blo__fail(err, errlen, BLO_ERR_NOMEM, "deq: out of memory");
    model m, b;
    int start = 0;
    if (!st && c->conv && (!image_side(&R) || conv_state_side(&R) < 2))
        st = blo__fail(err, errlen, BLO_ERR_INVALID,
                       "deq: the conv layer needs square one-channel images (%s has %lld "
                       "pixels an image) whose state, after the stride %d, is at least 2 x 2",
                       c->data_dir, (long long)R.p, c->conv_stride);
    if (!st) st = model_init(&R, &m, 0, 0);
    if (!st && c->resume) st = load(&R, &m, &start);
    blo_deq_epoch last;
    memset(&last, 0, sizeof last);
    last.test_acc = NAN;
    double t0 = blo__task_seconds();
    if (!st) st = train(&R, &m, start, &last);
    r->seconds = blo__task_seconds() - t0;
    if (!st) {
        r->epochs = last.epoch ? last.epoch : start; /* a resumed run with no epoch left */
        r->test_acc = start == c->epochs ? test_accuracy(&R, &m, &st) : last.test_acc;
        r->train_loss = last.train_loss;
        r->cpu_seconds = last.cpu_seconds;
        r->fwd_iters = last.fwd_iters, r->bwd_iters = last.bwd_iters;
        r->fwd_residual = last.fwd_residual;
        r->peak_bytes = last.peak_bytes;
        r->params = count_params(&m);
        r->unconverged = R.unconverged;
    }
    /* The explicit network of the same parameter count: p h + h + C h + C = params; for the
     * conv layer the conv net of its channels (2 ch biases more than the layer). */
    if (!st && c->baseline) {
        int64_t h = (r->params - R.C + (R.p + 1 + R.C) / 2) / (R.p + 1 + R.C);
        if (h < 1) h = 1;
        if (c->conv) h = c->channels;
        blo_rng_seed(&R.rng, c->seed ^ 0xba5e11eULL);
        double tb = blo__task_seconds();
        blo_deq_epoch lb;
        memset(&lb, 0, sizeof lb);
        if (!(st = model_init(&R, &b, 1, h))) st = train(&R, &b, 0, &lb);
        r->baseline_seconds = blo__task_seconds() - tb;
        r->baseline_acc = lb.test_acc;
        r->baseline_hidden = h;
        r->baseline_params = count_params(&b);
    }
    blo_free(R.ytr_host);
    blo_free(R.ybatch);
    blo_ctx_free(R.sc);
    blo_ctx_free(R.ec);
    blo_ctx_free(R.pc);
    blo_ctx_free(R.dc);
    return st;
}
