/* fewshot_maml.c — MAML-family meta-learning of a small classifier over few-shot episodes of
 * rotation classes (fewshot.c), as one bilevel problem over a meta-batch of B episodes whose
 * B adapted classifiers are stacked in batched tensors:
 *     y_0 = θ broadcast to B episodes,   f = Σ_b support CE_b,   F = (1/B) Σ_b query CE_b.
 * Every episode has N K support and N Q query images, so Σ_b mean_b = B · (mean over all)
 * and the losses are one cross-entropy over the flattened batch. */
#include "blo/tasks.h"
#include "tasks.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define FS_MAXP 4

blo_fewshot_maml_config blo_fewshot_maml_default(void) {
    blo_fewshot_maml_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = "/usr/share/datasets/fashion-mnist";
    c.split = "train";
    c.train_classes = 30;
    c.ways = 5;
    c.shots = 1;
    c.queries = 15;
    c.meta_batch = 4;
    c.hidden = 0;
    c.eval_episodes = 200;
    c.eval_steps = -1;
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

typedef struct fs_meta {
    const blo_fewshot_maml_config *c;
    const blo_fewshot_data *fs;
    int np;
    blo_ctx *ctx;    /* owns the tensors below */
    blo_tensor *x0[FS_MAXP], *y0[FS_MAXP];
    blo_tensor *xs, *ys, *xq, *yq; /* [B, N K, d], [B N K], [B, N Q, d], [B N Q] */
    blo_ctx *scratch;
    int64_t batch_iter;
} fs_meta;

/* logits [B, M, N] of X [B, M, d] for stacked parameters w (2 or 4). */
static blo_tensor *fs_net(blo_ctx *ctx, int np, blo_tensor *X, blo_tensor *const *w) {
    blo_tensor *h = blo_add(ctx, blo_matmul(ctx, X, w[0]), w[1]);
    if (np == 4) h = blo_add(ctx, blo_matmul(ctx, blo_relu(ctx, h), w[2]), w[3]);
    return h;
}

/* Mean cross-entropy over every row of the [B, M, N] logits. */
static blo_tensor *fs_ce(blo_ctx *ctx, blo_tensor *logits, blo_tensor *labels) {
    if (!logits) return NULL;
    int64_t n = blo_tensor_dim(logits, 0) * blo_tensor_dim(logits, 1);
    blo_tensor *z = blo_reshape(ctx, logits, 2, (int64_t[]){n, blo_tensor_dim(logits, 2)});
    return blo_cross_entropy(ctx, z, labels, NULL, BLO_REDUCE_MEAN);
}

/* Copies an episode into slot b of the batch tensors. */
static void put_episode(fs_meta *m, int64_t b, const blo_fewshot_episode *ep) {
    size_t es = m->c->dtype == BLO_F32 ? sizeof(float) : sizeof(double);
    size_t nxs = (size_t)blo_tensor_numel(ep->xs), nxq = (size_t)blo_tensor_numel(ep->xq);
    size_t nys = (size_t)blo_tensor_numel(ep->ys), nyq = (size_t)blo_tensor_numel(ep->yq);
    memcpy((char *)blo_tensor_data(m->xs) + b * nxs * es, blo_tensor_data(ep->xs), nxs * es);
    memcpy((char *)blo_tensor_data(m->xq) + b * nxq * es, blo_tensor_data(ep->xq), nxq * es);
    memcpy((int64_t *)blo_tensor_data(m->ys) + b * nys, blo_tensor_data(ep->ys), nys * sizeof(int64_t));
    memcpy((int64_t *)blo_tensor_data(m->yq) + b * nyq, blo_tensor_data(ep->yq), nyq * sizeof(int64_t));
}

/* The iteration's meta-batch from a stream seeded by (seed, it) alone, so every objective
 * call of one iteration, and a resumed run, see the same episodes. */
static int ensure_batch(blo_ctx *ctx, fs_meta *m, const blo_eval *ev) {
    if (ev->outer_iter == m->batch_iter) return 1;
    const blo_fewshot_maml_config *c = m->c;
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
        put_episode(m, b, &ep);
        blo_ctx_rewind(m->scratch, mk);
    }
    m->batch_iter = ev->outer_iter;
    return 1;
}

static blo_tensor *fs_upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                            const blo_eval *ev, void *user) {
    fs_meta *m = user;
    (void)x;
    return ensure_batch(ctx, m, ev) ? fs_ce(ctx, fs_net(ctx, m->np, m->xq, y), m->yq) : NULL;
}

static blo_tensor *fs_lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                            const blo_eval *ev, void *user) {
    fs_meta *m = user;
    (void)x;
    if (!ensure_batch(ctx, m, ev)) return NULL;
    return blo_scale(ctx, fs_ce(ctx, fs_net(ctx, m->np, m->xs, y), m->ys), (double)m->c->meta_batch);
}

static blo_tensor *fs_init_y(blo_ctx *ctx, int i, blo_tensor *const *x, void *user) {
    fs_meta *m = user;
    int64_t sh[3] = {m->c->meta_batch, blo_tensor_dim(x[i], 0), blo_tensor_dim(x[i], 1)};
    blo_tensor *t = blo_reshape(ctx, x[i], 3, (int64_t[]){1, sh[1], sh[2]});
    return blo_contiguous(ctx, blo_expand(ctx, t, 3, sh));
}

/* Query accuracy of logits [1, M, N] against labels [M]. */
static double accuracy(const blo_tensor *z, const blo_tensor *y) {
    int64_t M = blo_tensor_dim(z, 1), N = blo_tensor_dim(z, 2), hit = 0;
    for (int64_t i = 0; i < M; i++) {
        int64_t best = 0;
        for (int64_t j = 1; j < N; j++)
            if (blo_tensor_get(z, i * N + j) > blo_tensor_get(z, i * N + best)) best = j;
        hit += best == (int64_t)blo_tensor_get(y, i);
    }
    return M ? (double)hit / (double)M : NAN;
}

/* θ fine-tuned on each meta-test episode's support set; query accuracy before and after. */
static blo_status evaluate(fs_meta *m, blo_tensor *const *x, blo_fewshot_maml_result *r,
                           char *err, size_t errlen) {
    const blo_fewshot_maml_config *c = m->c;
    int steps = c->eval_steps < 0 ? c->solver.inner_steps : c->eval_steps;
    double lr = c->solver.inner.lr, s0 = 0, q0 = 0, s1 = 0, q1 = 0;
    blo_rng rng;
    blo_rng_seed(&rng, c->seed ^ 0xE7A1DA7A5EEDULL);
    blo_ctx *ctx = blo_ctx_new(0);
    if (!ctx) return blo__fail(err, errlen, BLO_ERR_NOMEM, "fewshot: out of memory");
    blo_status st = BLO_OK;
    for (int64_t e = 0; e < c->eval_episodes && !st; e++) {
        blo_mark mk = blo_ctx_mark(ctx);
        blo_fewshot_episode ep;
        st = blo_fewshot_episode_sample(ctx, m->fs, m->fs->test, m->fs->n_test, c->ways, c->shots,
                                        c->queries, c->dtype, &rng, &ep, NULL, err, errlen);
        if (st) break;
        int64_t d = m->fs->ds->d;
        blo_tensor *xs = blo_reshape(ctx, ep.xs, 3, (int64_t[]){1, c->ways * c->shots, d});
        blo_tensor *xq = blo_reshape(ctx, ep.xq, 3, (int64_t[]){1, c->ways * c->queries, d});
        blo_tensor *w[FS_MAXP];
        for (int i = 0; i < m->np; i++) {
            int64_t sh[3] = {1, blo_tensor_dim(x[i], 0), blo_tensor_dim(x[i], 1)};
            w[i] = blo_clone(ctx, blo_reshape(ctx, blo_detach(ctx, x[i]), 3, sh));
            if (w[i]) blo_set_requires_grad(w[i], 1);
        }
        for (int t = 0; t <= steps; t++) {
            if (t == 0 || t == steps) {
                int old = blo_ctx_set_recording(ctx, 0);
                blo_tensor *z = fs_net(ctx, m->np, xq, w);
                blo_ctx_set_recording(ctx, old);
                if (!z) break;
                double a = accuracy(z, ep.yq);
                if (t == 0) s0 += a, q0 += a * a;
                if (t == steps) s1 += a, q1 += a * a;
            }
            if (t == steps) break;
            blo_tensor *f = fs_ce(ctx, fs_net(ctx, m->np, xs, w), ep.ys), *g[FS_MAXP];
            if (!f || blo_grad(ctx, 1, &f, NULL, m->np, w, 0, g)) break;
            int old = blo_ctx_set_recording(ctx, 0);
            for (int i = 0; i < m->np; i++) {
                w[i] = blo_sub(ctx, w[i], blo_scale(ctx, g[i], lr));
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
    double m0 = s0 / n, m1 = s1 / n;
    double v0 = n > 1 ? (q0 - n * m0 * m0) / (n - 1) : 0, v1 = n > 1 ? (q1 - n * m1 * m1) / (n - 1) : 0;
    r->acc0 = m0;
    r->ci0 = 1.96 * sqrt(v0 > 0 ? v0 : 0) / sqrt(n);
    r->acc = m1;
    r->ci = 1.96 * sqrt(v1 > 0 ? v1 : 0) / sqrt(n);
    return BLO_OK;
}

typedef struct run_state {
    const blo_fewshot_maml_config *c;
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

blo_status blo_fewshot_maml_run(const blo_fewshot_maml_config *c, blo_fewshot_maml_result *r,
                                char *err, size_t errlen) {
    if (!c || !r) return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot: no configuration");
    memset(r, 0, sizeof *r);
    if (c->ways < 2 || c->shots < 1 || c->queries < 1 || c->meta_batch < 1 || c->hidden < 0 ||
        c->eval_episodes < 1 || (c->dtype != BLO_F32 && c->dtype != BLO_F64) || !c->data_dir)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot: ways >= 2, shots, queries, "
                         "meta-batch and evaluation episodes >= 1, hidden >= 0, dtype f32 or f64");
    blo_dataset ds;
    blo_status st = blo_mnist_load(c->data_dir, c->split ? c->split : "train", &ds, err, errlen);
    if (st) return st;
    blo_fewshot_data fs;
    if ((st = blo_fewshot_init(&fs, &ds, c->train_classes, c->seed, err, errlen))) {
        blo_dataset_free(&ds);
        return st;
    }
    r->n_classes = fs.n_classes;
    r->n_train = fs.n_train;
    r->n_test = fs.n_test;
    r->side = fs.side;
    fs_meta m;
    memset(&m, 0, sizeof m);
    m.c = c;
    m.fs = &fs;
    m.np = c->hidden ? 4 : 2;
    m.batch_iter = -1;
    blo_solver *s = NULL;
    m.ctx = blo_ctx_new(0);
    m.scratch = blo_ctx_new(0);
    if (!m.ctx || !m.scratch) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "fewshot: out of memory");
        goto out;
    }
    const int64_t B = c->meta_batch, N = c->ways, d = ds.d, H = c->hidden;
    int64_t shp[FS_MAXP][2] = {{d, H ? H : N}, {1, H ? H : N}, {H, N}, {1, N}};
    blo_rng g;
    blo_rng_seed(&g, c->seed ^ 0x1A17ULL);
    for (int i = 0; i < m.np; i++) {
        /* PyTorch's Linear: U(±1/sqrt(fan_in)) for W and b. */
        double bound = 1.0 / sqrt((double)(i < 2 ? d : H));
        m.x0[i] = blo_tensor_new(m.ctx, c->dtype, 2, shp[i]);
        m.y0[i] = blo_zeros(m.ctx, c->dtype, 3, (int64_t[]){B, shp[i][0], shp[i][1]});
        if (m.x0[i]) blo_init_uniform(m.x0[i], &g, -bound, bound);
    }
    m.xs = blo_zeros(m.ctx, c->dtype, 3, (int64_t[]){B, N * c->shots, d});
    m.xq = blo_zeros(m.ctx, c->dtype, 3, (int64_t[]){B, N * c->queries, d});
    m.ys = blo_zeros(m.ctx, BLO_I64, 1, (int64_t[]){B * N * c->shots});
    m.yq = blo_zeros(m.ctx, BLO_I64, 1, (int64_t[]){B * N * c->queries});
    if (blo_ctx_status(m.ctx)) {
        st = blo__fail(err, errlen, blo_ctx_status(m.ctx), "fewshot: %s", blo_ctx_error(m.ctx));
        goto out;
    }
    /* Refuse an episode shape the split cannot give before training starts. */
    {
        blo_rng t;
        blo_rng_seed(&t, 0);
        blo_fewshot_episode ep;
        blo_mark mk = blo_ctx_mark(m.scratch);
        if ((st = blo_fewshot_episode_sample(m.scratch, &fs, fs.train, fs.n_train, N, c->shots,
                                             c->queries, c->dtype, &t, &ep, NULL, err, errlen)) ||
            (st = blo_fewshot_episode_sample(m.scratch, &fs, fs.test, fs.n_test, N, c->shots,
                                             c->queries, c->dtype, &t, &ep, NULL, err, errlen)))
            goto out;
        blo_ctx_rewind(m.scratch, mk);
    }
    blo_problem p;
    memset(&p, 0, sizeof p);
    p.nx = m.np;
    p.x = m.x0;
    p.ny = m.np;
    p.y = m.y0;
    p.upper = fs_upper;
    p.lower = fs_lower;
    p.user = &m;
    p.x_lo = -INFINITY;
    p.x_hi = INFINITY;
    p.init_y = fs_init_y;
    run_state rs = {c, 0, 0};
    blo_config sc = c->solver;
    sc.init = BLO_INIT_FROM_X;
    sc.on_record = on_record;
    sc.record_user = &rs;
    if ((st = blo__task_solve(&p, &sc, NULL, &s, err, errlen))) goto out;
    blo_tensor *x[FS_MAXP];
    for (int i = 0; i < m.np; i++) x[i] = blo_solver_x(s, i);
    if ((st = evaluate(&m, x, r, err, errlen))) goto out;
    r->iters = blo_solver_iter(s);
    r->peak_bytes = rs.peak;
    r->seconds = rs.seconds;
    double lo;
    blo_solver_values(s, &r->upper, &lo);
out:
    blo_solver_free(s);
    blo_ctx_free(m.ctx);
    blo_ctx_free(m.scratch);
    blo_fewshot_free(&fs);
    blo_dataset_free(&ds);
    return st;
}
