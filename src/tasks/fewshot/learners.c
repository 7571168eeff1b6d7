/* learners.c — few-shot learners over episodes of rotation classes (episodes.c): MAML
 * and meta feature learning as bilevel problems over a meta-batch of B episodes whose B
 * lower-level variables are stacked in batched tensors, and the pretrained baseline (see
 * include/blo/fewshot.h). The network is an MLP: params p = (W1, b1, ..., W_L+1, b_L+1) with
 * ReLU after every layer but the last; its last two params are the head.
 *     MAML:     x = p,                y = B copies of p [B, ...], y_0 = x broadcast
 *     hyperrep: x = the body p[0..2L), y = B heads [B, H, N], [B, 1, N], y_0 = 0
 *     f = Σ_b support CE_b (+ ½λ Σ_b ‖head_b‖² for hyperrep),  F = (1/B) Σ_b query CE_b
 * where CE_b is the mean over episode b's N K support (N Q query) images, so an inner step of
 * a given lr is the same step at any K. Every episode has the same counts, so
 * Σ_b mean_b = B · (mean over all) and each loss is one cross-entropy over the flattened batch. */
#include "fewshot.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const learner_names[] = {"maml", "hyperrep", "pretrain"};

const char *blo_fewshot_learner_name(blo_fewshot_learner k) {
    return (unsigned)k < 3 ? learner_names[k] : "?";
}

int blo_fewshot_learner_parse(const char *name) {
    for (int i = 0; name && i < 3; i++)
        if (!strcmp(name, learner_names[i])) return i;
    return -1;
}

blo_fewshot_config blo_fewshot_default(void) {
    blo_fewshot_config c;
    memset(&c, 0, sizeof c);
    c.image_side = 28;
    c.rotations = 4;
    c.split = "train";
    c.class_split = BLO_FEWSHOT_SPLIT_BASE;
    c.train_classes = 28;
    c.learner = BLO_FEWSHOT_MAML;
    c.ways = 5;
    c.shots = 1;
    c.queries = 15;
    c.meta_batch = 4;
    c.hidden = 64;
    c.layers = 2;
    c.head_l2 = 0.01;
    c.normalize = 0;
    c.eval_episodes = 600;
    c.eval_steps = -1;
    c.pretrain_steps = 2000;
    c.pretrain_batch = 64;
    c.pretrain_lr = 0.001;
    c.dtype = BLO_F32;
    c.solver = blo_config_default();
    c.solver.method = "first_order";
    c.solver.inner = blo_opt_sgd(0.1);
    c.solver.inner_steps = 5;
    c.solver.init = BLO_INIT_FROM_X;
    c.solver.outer = blo_opt_adam(0.001);
    c.solver.outer_iters = 300;
    c.solver.diverge_limit = 1e6;
    return c;
}

/* The one place the few-shot tasks read their images: a class-per-folder PNG tree (gray) when
 * given, else an MNIST-layout folder. */
static blo_status fewshot_load(const blo_fewshot_config *c, blo_dataset *ds, char *err,
                               size_t errlen) {
    if (c->images_dir)
        return blo_image_folder_load(c->images_dir, c->image_side, 1, ds, err, errlen);
    return blo_mnist_load(c->data_dir, c->split ? c->split : "train", ds, err, errlen);
}

/* Logits of X ([M, d] or [B, M, d]) for params w[0 .. np) (each unbatched or stacked); with
 * normalize, the body's features φ enter the head as φ / sqrt(‖φ‖² + 1e-6) (per row). */
static blo_tensor *fs_net(blo_ctx *ctx, int np, int normalize, blo_tensor *X,
                          blo_tensor *const *w) {
    blo_tensor *h = X;
    for (int l = 0; l < np; l += 2) {
        if (l) h = blo_relu(ctx, h);
        if (l && l == np - 2 && normalize) {
            int last = -1;
            blo_tensor *n2 = blo_sum(ctx, blo_mul(ctx, h, h), 1, &last, 1);
            h = blo_div(ctx, h, blo_sqrt(ctx, blo_add_scalar(ctx, n2, 1e-6)));
        }
        h = blo_add(ctx, blo_matmul(ctx, h, w[l]), w[l + 1]);
    }
    return h;
}

/* Mean cross-entropy over every row of logits [..., M, N]. */
static blo_tensor *fs_ce(blo_ctx *ctx, blo_tensor *logits, blo_tensor *labels) {
    if (!logits) return NULL;
    int nd = blo_tensor_ndim(logits);
    int64_t N = blo_tensor_dim(logits, nd - 1), n = blo_tensor_numel(logits) / (N ? N : 1);
    blo_tensor *z = blo_reshape(ctx, logits, 2, (int64_t[]){n, N});
    return blo_cross_entropy(ctx, z, labels, NULL, BLO_REDUCE_MEAN);
}

/* ½λ Σ ‖w_i‖² over the head params w[0], w[1] added to loss (λ = 0: loss itself). */
static blo_tensor *fs_l2(blo_ctx *ctx, blo_tensor *loss, double lambda, blo_tensor *const *w) {
    if (lambda == 0) return loss;
    blo_tensor *r = blo_add(ctx, blo_dot(ctx, w[0], w[0]), blo_dot(ctx, w[1], w[1]));
    return blo_add(ctx, loss, blo_scale(ctx, r, 0.5 * lambda));
}

/* Copies src into rows [start, stop) of dst's first axis, through host memory. */
static bool put_rows(blo_ctx *sc, blo_tensor *dst, int64_t start, int64_t stop, blo_tensor *src) {
    blo_dtype dt = blo_tensor_dtype(src);
    blo_tensor *rows = blo_slice(sc, dst, 0, start, stop, 1);
    void *h = blo_malloc((size_t)blo_tensor_numel(src) * blo_dtype_size(dt));
    bool ok = rows && h && blo_tensor_numel(rows) == blo_tensor_numel(src) &&
              !blo_tensor_copy_to_host(src, dt, h) && !blo_tensor_copy_from_host(rows, dt, h);
    blo_free(h);
    return ok;
}

/* Copies an episode into slot b of the batch tensors ([B, N K, d] and [B N K], and the
 * query's alike). */
static bool put_episode(blo_fewshot_meta *m, blo_ctx *sc, int64_t b, const blo_fewshot_episode *ep) {
    int64_t nys = blo_tensor_numel(ep->ys), nyq = blo_tensor_numel(ep->yq);
    return put_rows(sc, m->xs, b, b + 1, ep->xs) && put_rows(sc, m->xq, b, b + 1, ep->xq) &&
           put_rows(sc, m->ys, b * nys, (b + 1) * nys, ep->ys) &&
           put_rows(sc, m->yq, b * nyq, (b + 1) * nyq, ep->yq);
}

/* The iteration's meta-batch from a stream seeded by (seed, it) alone, so every objective
 * call of one iteration, and a resumed run, see the same episodes. */
static int ensure_batch(blo_ctx *ctx, blo_fewshot_meta *m, const blo_eval *ev) {
    if (ev->outer_iter == m->batch_iter || !m->fs) return 1;
    const blo_fewshot_config *c = m->c;
    blo_rng r;
    blo_rng_seed(&r, c->seed * 0x9E3779B97F4A7C15ULL + (uint64_t)ev->outer_iter + 1);
    char err[256];
    for (int64_t b = 0; b < c->meta_batch; b++) {
        blo_mark mk = blo_ctx_mark(m->scratch);
        blo_fewshot_episode ep;
        blo_status st = blo_fewshot_episode_sample(m->scratch, m->fs, m->fs->train, m->fs->n_train,
                                                   c->ways, c->shots, c->queries, c->dtype, &r,
                                                   &ep, NULL, err, sizeof err);
        if (st) {
            blo_ctx_set_error(ctx, st, "fewshot: iteration %lld: %s", (long long)ev->outer_iter, err);
            return 0;
        }
        bool ok = put_episode(m, m->scratch, b, &ep);
        blo_ctx_rewind(m->scratch, mk);
        if (!ok) {
            blo_ctx_set_error(ctx, BLO_ERR_NOMEM, "fewshot: iteration %lld: out of memory",
                              (long long)ev->outer_iter);
            return 0;
        }
    }
    m->batch_iter = ev->outer_iter;
    return 1;
}

/* The network's params for the objectives: MAML's are y; hyperrep's the body x then head y. */
static void fs_params(const blo_fewshot_meta *m, blo_tensor *const *x, blo_tensor *const *y,
                      blo_tensor **w) {
    for (int i = 0; i < m->np; i++) w[i] = m->nx == m->np ? y[i] : i < m->nx ? x[i] : y[i - m->nx];
}

static blo_tensor *fs_upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                            const blo_eval *ev, void *user) {
    blo_fewshot_meta *m = user;
    blo_tensor *w[BLO_FEWSHOT_MAXP];
    fs_params(m, x, y, w);
    if (!ensure_batch(ctx, m, ev)) return NULL;
    return fs_ce(ctx, fs_net(ctx, m->np, m->c->normalize, m->xq, w), m->yq);
}

static blo_tensor *fs_lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                            const blo_eval *ev, void *user) {
    blo_fewshot_meta *m = user;
    if (!ensure_batch(ctx, m, ev)) return NULL;
    blo_tensor *w[BLO_FEWSHOT_MAXP];
    fs_params(m, x, y, w);
    blo_tensor *ce = fs_ce(ctx, fs_net(ctx, m->np, m->c->normalize, m->xs, w), m->ys);
    return fs_l2(ctx, blo_scale(ctx, ce, (double)m->c->meta_batch), m->lambda, w + m->np - 2);
}

static blo_tensor *fs_init_y(blo_ctx *ctx, int i, blo_tensor *const *x, void *user) {
    blo_fewshot_meta *m = user;
    int64_t sh[3] = {m->c->meta_batch, blo_tensor_dim(x[i], 0), blo_tensor_dim(x[i], 1)};
    blo_tensor *t = blo_reshape(ctx, x[i], 3, (int64_t[]){1, sh[1], sh[2]});
    return blo_contiguous(ctx, blo_expand(ctx, t, 3, sh));
}

blo_status blo_fewshot_meta_init(blo_fewshot_meta *m, const blo_fewshot_config *c,
                                 const blo_fewshot_data *fs, int64_t d, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    int maml = c->learner == BLO_FEWSHOT_MAML;
    if (c->learner != BLO_FEWSHOT_MAML && c->learner != BLO_FEWSHOT_HYPERREP &&
        c->learner != BLO_FEWSHOT_PRETRAIN)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot: unknown learner %d",
                         (int)c->learner);
    if (d < 1 || c->ways < 2 || c->shots < 1 || c->queries < 1 || c->meta_batch < 1 ||
        c->hidden < 0 || c->eval_episodes < 1 || (c->dtype != BLO_F32 && c->dtype != BLO_F64))
        return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot: ways >= 2, shots, queries, "
                         "meta-batch and evaluation episodes >= 1, hidden >= 0, dtype f32 or f64");
    if (c->layers < 1 || c->layers > BLO_FEWSHOT_MAX_LAYERS)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot: %d hidden layers; 1 to %d",
                         c->layers, BLO_FEWSHOT_MAX_LAYERS);
    if (!maml && (c->hidden < 1 || !(c->head_l2 > 0) || !isfinite(c->head_l2)))
        return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot: the %s learner needs a body "
                         "(hidden >= 1) and a head penalty λ > 0 (got hidden %lld, λ %g)",
                         blo_fewshot_learner_name(c->learner), (long long)c->hidden, c->head_l2);
    m->c = c;
    m->fs = fs;
    m->np = c->hidden ? 2 * (c->layers + 1) : 2;
    m->nx = maml ? m->np : m->np - 2;
    m->lambda = maml ? 0 : c->head_l2;
    m->batch_iter = -1;
    m->ctx = blo_ctx_new(0);
    m->scratch = blo_ctx_new(0);
    if (!m->ctx || !m->scratch) {
        blo_fewshot_meta_free(m);
        return blo__fail(err, errlen, BLO_ERR_NOMEM, "fewshot: out of memory");
    }
    const int64_t B = c->meta_batch, N = c->ways, H = c->hidden;
    blo_rng g;
    blo_rng_seed(&g, c->seed ^ 0x1A17ULL);
    for (int i = 0; i < m->np; i++) {
        /* Layer i / 2 maps fan_in = d (the first) or H to H (N for the head); PyTorch's Linear
         * start U(±1/sqrt(fan_in)) for W and b. */
        int64_t fan_in = i >= 2 ? H : d, out = i >= m->np - 2 ? N : H;
        double bound = 1.0 / sqrt((double)fan_in);
        m->p0[i] = blo_tensor_new(m->ctx, c->dtype, 2, (int64_t[]){i % 2 ? 1 : fan_in, out});
        if (m->p0[i]) blo_init_uniform(m->p0[i], &g, -bound, bound);
    }
    for (int i = 0; i < m->np - (maml ? 0 : m->nx); i++) { /* y: B stacked params */
        blo_tensor *ref = m->p0[maml ? i : m->nx + i];
        if (ref)
            m->y0[i] = blo_zeros(m->ctx, c->dtype, 3,
                                 (int64_t[]){B, blo_tensor_dim(ref, 0), blo_tensor_dim(ref, 1)});
    }
    m->xs = blo_zeros(m->ctx, c->dtype, 3, (int64_t[]){B, N * c->shots, d});
    m->xq = blo_zeros(m->ctx, c->dtype, 3, (int64_t[]){B, N * c->queries, d});
    m->ys = blo_zeros(m->ctx, BLO_I64, 1, (int64_t[]){B * N * c->shots});
    m->yq = blo_zeros(m->ctx, BLO_I64, 1, (int64_t[]){B * N * c->queries});
    if (blo_ctx_status(m->ctx)) {
        blo_status st = blo__fail(err, errlen, blo_ctx_status(m->ctx), "fewshot: %s",
                                  blo_ctx_error(m->ctx));
        blo_fewshot_meta_free(m);
        return st;
    }
    return BLO_OK;
}

void blo_fewshot_meta_free(blo_fewshot_meta *m) {
    if (!m) return;
    blo_ctx_free(m->ctx);
    blo_ctx_free(m->scratch);
    memset(m, 0, sizeof *m);
}

blo_problem blo_fewshot_meta_problem(blo_fewshot_meta *m) {
    int maml = m->c->learner == BLO_FEWSHOT_MAML;
    blo_problem p = blo__task_problem(m->nx, m->p0, maml ? m->np : m->np - m->nx, m->y0, fs_upper,
                                      fs_lower, m);
    p.init_y = maml ? fs_init_y : NULL;
    return p;
}

/* Mean and 95% half-width (1.96 standard errors) of n values with sum s and sum of squares q. */
static void mean_ci(double s, double q, double n, double *mean, double *ci) {
    double mu = s / n, v = n > 1 ? (q - n * mu * mu) / (n - 1) : 0;
    *mean = mu;
    *ci = 1.96 * sqrt(v > 0 ? v : 0) / sqrt(n);
}

/* The meta-test score of a trained network p[0 .. np) (only the body is used when the head is
 * fitted anew): on each of eval_episodes meta-test episodes, MAML fine-tunes every param from
 * p, the other learners fit a head from zero on the fixed body, by `steps` SGD steps of the
 * inner lr on the support CE (+ ½λ‖head‖²); query accuracy before and after. */
static blo_status evaluate(blo_fewshot_meta *m, blo_tensor *const *p, blo_fewshot_result *r,
                           char *err, size_t errlen) {
    const blo_fewshot_config *c = m->c;
    int steps = c->eval_steps < 0 ? c->solver.inner_steps : c->eval_steps;
    int maml = c->learner == BLO_FEWSHOT_MAML, a0 = maml ? 0 : m->np - 2; /* first adapted */
    double lr = c->solver.inner.lr, s0 = 0, q0 = 0, s1 = 0, q1 = 0;
    blo_rng rng;
    blo_rng_seed(&rng, c->seed ^ 0xE7A1DA7A5EEDULL);
    blo_ctx *ctx = blo_ctx_new(0);
    if (!ctx) return blo__fail(err, errlen, BLO_ERR_NOMEM, "fewshot: out of memory");
    blo_status st = BLO_OK;
    const int64_t H = blo_tensor_dim(p[m->np - 2], 0);
    for (int64_t e = 0; e < c->eval_episodes && !st; e++) {
        blo_mark mk = blo_ctx_mark(ctx);
        blo_fewshot_episode ep;
        st = blo_fewshot_episode_sample(ctx, m->fs, m->fs->test, m->fs->n_test, c->ways, c->shots,
                                        c->queries, c->dtype, &rng, &ep, NULL, err, errlen);
        if (st) break;
        blo_tensor *w[BLO_FEWSHOT_MAXP];
        for (int i = 0; i < m->np; i++) {
            if (i < a0) {
                w[i] = blo_detach(ctx, p[i]);
                continue;
            }
            w[i] = maml ? blo_clone(ctx, blo_detach(ctx, p[i]))
                        : blo_zeros(ctx, c->dtype, 2, (int64_t[]){i == a0 ? H : 1, c->ways});
            if (w[i]) blo_set_requires_grad(w[i], 1);
        }
        for (int t = 0; t <= steps; t++) {
            if ((t == 0 && maml) || t == steps) {
                int old = blo_ctx_set_recording(ctx, 0);
                blo_tensor *z = fs_net(ctx, m->np, m->c->normalize, ep.xq, w);
                blo_ctx_set_recording(ctx, old);
                if (!z) break;
                double a = blo_accuracy(z, ep.yq);
                if (t == 0) s0 += a, q0 += a * a;
                if (t == steps) s1 += a, q1 += a * a;
            }
            if (t == steps) break;
            blo_tensor *g[BLO_FEWSHOT_MAXP];
            blo_tensor *f = fs_ce(ctx, fs_net(ctx, m->np, m->c->normalize, ep.xs, w), ep.ys);
            f = fs_l2(ctx, f, m->lambda, w + m->np - 2);
            if (!f || blo_grad(ctx, 1, &f, NULL, m->np - a0, w + a0, 0, g)) break;
            int old = blo_ctx_set_recording(ctx, 0);
            for (int i = a0; i < m->np; i++) {
                w[i] = blo_sub(ctx, w[i], blo_scale(ctx, g[i - a0], lr));
                if (w[i]) blo_set_requires_grad(w[i], 1);
            }
            blo_ctx_set_recording(ctx, old);
        }
        if (blo_ctx_status(ctx))
            st = blo__fail(err, errlen, blo_ctx_status(ctx), "fewshot: evaluation: %s",
                           blo_ctx_error(ctx));
        blo_ctx_rewind(ctx, mk);
    }
    blo_ctx_free(ctx);
    if (st) return st;
    double n = (double)c->eval_episodes;
    mean_ci(s1, q1, n, &r->acc, &r->ci);
    if (maml) mean_ci(s0, q0, n, &r->acc0, &r->ci0);
    else r->acc0 = r->ci0 = NAN;
    return BLO_OK;
}

typedef struct run_state {
    const blo_fewshot_config *c;
    size_t peak;
    double seconds;
} run_state;

static int on_record(const blo_record *rec, void *user) {
    run_state *rs = user;
    if (rec->peak_bytes > rs->peak) rs->peak = rec->peak_bytes;
    rs->seconds = rec->seconds;
    blo_task_iter it = {*rec, NAN, NAN, NAN};
    return rs->c->on_iter ? rs->c->on_iter(&it, rs->c->user) : 0;
}

/* MAML or hyperrep: the bilevel problem, solved by the configured method. On success p[]
 * holds the trained network (in s's context: valid while *s lives). */
static blo_status meta_train(blo_fewshot_meta *m, blo_fewshot_result *r, blo_solver **s,
                             blo_tensor **p, char *err, size_t errlen) {
    const blo_fewshot_config *c = m->c;
    blo_problem pr = blo_fewshot_meta_problem(m);
    run_state rs = {c, 0, 0};
    blo_config sc = c->solver;
    sc.init = c->learner == BLO_FEWSHOT_MAML ? BLO_INIT_FROM_X : BLO_INIT_FIXED;
    sc.on_record = on_record;
    sc.record_user = &rs;
    blo_status st = blo__task_solve(&pr, &sc, c->resume, s, err, errlen);
    if (st) return st;
    for (int i = 0; i < m->nx; i++) p[i] = blo_solver_x(*s, i);
    for (int i = m->nx; i < m->np; i++) p[i] = m->p0[i]; /* hyperrep: the head is refitted */
    r->iters = blo_solver_iter(*s);
    r->peak_bytes = rs.peak;
    r->seconds = rs.seconds;
    double lo;
    blo_solver_values(*s, &r->upper, &lo);
    return BLO_OK;
}

/* The pretraining run: where its minibatches come from and what it reports. */
typedef struct pretrain_run {
    blo_fewshot_meta *m;
    blo_fewshot_result *r;
    blo_rng rng;
    double t0;
} pretrain_run;

static blo_tensor *pretrain_loss(blo_ctx *sc, blo_tensor *const *p, int64_t t, void *user) {
    (void)t;
    pretrain_run *pr = user;
    const blo_fewshot_config *c = pr->m->c;
    blo_tensor *X, *lab;
    char err[256];
    blo_status st = blo_fewshot_batch_sample(sc, pr->m->fs, pr->m->fs->train, pr->m->fs->n_train,
                                             c->pretrain_batch, c->dtype, &pr->rng, &X, &lab,
                                             NULL, err, sizeof err);
    if (st) {
        blo_ctx_set_error(sc, st, "%s", err);
        return NULL;
    }
    return fs_ce(sc, fs_net(sc, pr->m->np, c->normalize, X, p), lab);
}

static int pretrain_report(int64_t t, double loss, double grad_sq, size_t peak, void *user) {
    pretrain_run *pr = user;
    const blo_fewshot_config *c = pr->m->c;
    blo_fewshot_result *r = pr->r;
    if (peak > r->peak_bytes) r->peak_bytes = peak;
    r->upper = loss;
    r->iters = t;
    r->seconds = blo__task_seconds() - pr->t0;
    blo_task_iter it = {{t - 1, loss, loss, sqrt(grad_sq), r->seconds, peak, NAN, -1, NAN, NAN,
                         NAN, NAN},
                        NAN, NAN, NAN};
    return c->on_iter ? c->on_iter(&it, c->user) : 0;
}

/* The pretrained baseline: the body and a head over all n_train meta-train classes, trained
 * by Adam (optim/, values only; β 0.9 / 0.999, ε 1e-8) on the mean CE of minibatches of
 * meta-train images; p[] ends as the trained network (in m->ctx; its head is not used by the
 * evaluation). */
static blo_status pretrain(blo_fewshot_meta *m, blo_fewshot_result *r, blo_tensor **p, char *err,
                           size_t errlen) {
    const blo_fewshot_config *c = m->c;
    blo_ctx *pc = m->ctx;
    const int np = m->np;
    const int64_t H = blo_tensor_dim(m->p0[np - 2], 0), C = m->fs->n_train;
    blo_rng g;
    blo_rng_seed(&g, c->seed ^ 0x9E7A1ULL);
    for (int i = 0; i < np; i++) {
        int head = i >= np - 2;
        p[i] = head ? blo_tensor_new(pc, c->dtype, 2, (int64_t[]){i == np - 2 ? H : 1, C})
                    : blo_clone(pc, m->p0[i]);
        if (head && p[i]) blo_init_uniform(p[i], &g, -1 / sqrt((double)H), 1 / sqrt((double)H));
        if (p[i]) blo_set_requires_grad(p[i], 1);
    }
    if (blo_ctx_status(pc))
        return blo__fail(err, errlen, blo_ctx_status(pc), "fewshot: pretrain: %s",
                         blo_ctx_error(pc));
    pretrain_run pr = {m, r, {{0}}, blo__task_seconds()};
    blo_rng_seed(&pr.rng, c->seed * 0x9E3779B97F4A7C15ULL + 0x5EED);
    blo__fit f = {"fewshot: pretrain", NULL, blo_opt_adam(c->pretrain_lr), np, p,
                  c->pretrain_steps, pretrain_loss, pretrain_report, &pr};
    return blo__fit_run(&f, err, errlen);
}

blo_status blo_fewshot_run(const blo_fewshot_config *c, blo_fewshot_result *r, char *err,
                           size_t errlen) {
    if (!c || !r) return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot: no configuration");
    memset(r, 0, sizeof *r);
    r->acc = r->ci = r->acc0 = r->ci0 = r->upper = NAN;
    if (c->learner == BLO_FEWSHOT_PRETRAIN && (c->pretrain_steps < 0 || c->pretrain_batch < 1 ||
                                               !(c->pretrain_lr > 0)))
        return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot: pretrain steps >= 0, minibatch "
                         ">= 1 and lr > 0");
    if (c->learner == BLO_FEWSHOT_PRETRAIN && c->resume)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot: the pretrained baseline does "
                         "not resume (it is no bilevel run)");
    if (!c->data_dir && !c->images_dir)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot: no data: set data_dir (an "
                         "MNIST-layout folder; the CLI's --data) or images_dir (--images)");
    blo_dataset ds;
    blo_status st = fewshot_load(c, &ds, err, errlen);
    if (st) return st;
    blo_fewshot_data fs;
    if ((st = blo_fewshot_init(&fs, &ds, c->class_split, c->rotations, c->train_classes, c->seed,
                               err, errlen))) {
        blo_dataset_free(&ds);
        return st;
    }
    r->n_classes = fs.n_classes;
    r->n_train = fs.n_train;
    r->n_test = fs.n_test;
    r->side = fs.side;
    blo_fewshot_meta m;
    blo_solver *s = NULL;
    blo_tensor *p[BLO_FEWSHOT_MAXP];
    if ((st = blo_fewshot_meta_init(&m, c, &fs, ds.d, err, errlen))) {
        blo_fewshot_free(&fs);
        blo_dataset_free(&ds);
        return st;
    }
    const int64_t N = c->ways;
    /* Refuse an episode shape the split cannot give before training starts. */
    {
        blo_rng t;
        blo_rng_seed(&t, 0);
        blo_fewshot_episode ep;
        blo_mark mk = blo_ctx_mark(m.scratch);
        if ((c->learner != BLO_FEWSHOT_PRETRAIN &&
             (st = blo_fewshot_episode_sample(m.scratch, &fs, fs.train, fs.n_train, N, c->shots,
                                              c->queries, c->dtype, &t, &ep, NULL, err, errlen))) ||
            (st = blo_fewshot_episode_sample(m.scratch, &fs, fs.test, fs.n_test, N, c->shots,
                                             c->queries, c->dtype, &t, &ep, NULL, err, errlen)))
            goto out;
        blo_ctx_rewind(m.scratch, mk);
    }
    if (c->learner == BLO_FEWSHOT_PRETRAIN) {
        if (fs.n_train < 1) {
            st = blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot: pretrain: no meta-train class");
            goto out;
        }
        st = pretrain(&m, r, p, err, errlen);
    } else {
        st = meta_train(&m, r, &s, p, err, errlen);
    }
    if (!st) st = evaluate(&m, p, r, err, errlen);
out:
    blo_solver_free(s);
    blo_fewshot_meta_free(&m);
    blo_fewshot_free(&fs);
    blo_dataset_free(&ds);
    return st;
}
