/* sinusoid.c — MAML's sinusoid regression end to end (Finn, Abbeel & Levine, ICML 2017,
 * §5.1): meta-train the initialisation θ of an MLP 1-40-40-1 on meta-batches of sinusoid
 * tasks with the chosen hypergradient method (the bilevel problem of problem.c), then
 * fine-tune θ on K points of each of several hundred held-out tasks and report the query MSE
 * after 0 / 1 / 5 / 10 SGD steps with a 95% confidence interval; the pretrained baseline is
 * the same problem with no inner step (one network fitted to all tasks jointly). */
#include "meta.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const int blo_meta_eval_steps[BLO_META_EVAL_STEPS] = {0, 1, 5, 10};

blo_meta_sinusoid_config blo_meta_sinusoid_default(void) {
    blo_meta_sinusoid_config c;
    memset(&c, 0, sizeof c);
    c.shots = 10;
    c.meta_batch = 25;
    c.width = 40;
    c.eval_tasks = 600;
    c.eval_query = 100;
    c.baseline = 1;
    c.dtype = BLO_F32;
    c.solver = blo_config_default();
    c.solver.method = "rhg";
    c.solver.inner = blo_opt_sgd(0.01);
    c.solver.inner_steps = 1;
    c.solver.init = BLO_INIT_FROM_X;
    c.solver.outer = blo_opt_adam(0.001);
    c.solver.outer_iters = 70000;
    /* Query MSEs are O(1..10): beyond 1e6 the inner step has blown up. */
    c.solver.diverge_limit = 1e6;
    c.seed = 0;
    return c;
}

/* Fills a [B, n, 1] tensor from n_total-point rows of v, points [from, from + n) of each. */
static void fill_points(blo_tensor *t, const double *v, int64_t B, int64_t n_total, int64_t from,
                        int64_t n) {
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < n; k++) blo_tensor_set(t, b * n + k, v[b * n_total + from + k]);
}

typedef struct sampler {
    uint64_t seed;
    double *xs, *ys; /* B × 2K scratch */
} sampler;

/* Iteration it's meta-batch from a generator seeded by (seed, it) alone, so every call of
 * the objectives within one iteration, and a resumed run, see the same tasks. */
static blo_status sample_batch(blo_meta *m, int64_t it, void *user) {
    sampler *sm = user;
    blo_rng r;
    blo_rng_seed(&r, sm->seed * 0x9E3779B97F4A7C15ULL + (uint64_t)it + 1);
    int64_t n = m->K + m->Q;
    blo_sinusoid_sample(&r, m->B, n, NULL, NULL, sm->xs, sm->ys);
    fill_points(m->xs, sm->xs, m->B, n, 0, m->K);
    fill_points(m->ys, sm->ys, m->B, n, 0, m->K);
    fill_points(m->xq, sm->xs, m->B, n, m->K, m->Q);
    fill_points(m->yq, sm->ys, m->B, n, m->K, m->Q);
    return BLO_OK;
}

/* Fine-tunes θ (x[0..6), with step sizes x[6..12) when alpha, else lr) on the support points
 * of c->eval_tasks held-out tasks, 100 tasks at a time in one batch, and averages each
 * task's query MSE after the steps of blo_meta_eval_steps. */
static blo_status evaluate(const blo_meta_sinusoid_config *c, blo_tensor *const *x, int alpha,
                           double lr, double *mse, double *ci, char *err, size_t errlen) {
    const int64_t chunk = 100, K = c->shots, Q = c->eval_query, n = c->eval_tasks, P = K + Q;
    const int last = blo_meta_eval_steps[BLO_META_EVAL_STEPS - 1];
    blo_rng r;
    blo_rng_seed(&r, c->seed ^ 0xE7A1DA7A5EEDULL); /* held-out tasks: their own stream */
    blo_ctx *ctx = blo_ctx_new(0);
    double *px = blo_malloc(sizeof(double) * (size_t)(chunk * P));
    double *py = blo_malloc(sizeof(double) * (size_t)(chunk * P));
    double sum[BLO_META_EVAL_STEPS] = {0}, sq[BLO_META_EVAL_STEPS] = {0};
    blo_status st = ctx && px && py ? BLO_OK : BLO_ERR_NOMEM;
    for (int64_t start = 0; start < n && !st; start += chunk) {
        int64_t nb = n - start < chunk ? n - start : chunk;
        blo_mark mk = blo_ctx_mark(ctx);
        blo_sinusoid_sample(&r, nb, P, NULL, NULL, px, py);
        int64_t ss[3] = {nb, K, 1}, qs[3] = {nb, Q, 1};
        blo_tensor *xs = blo_tensor_new(ctx, c->dtype, 3, ss), *ys = blo_tensor_new(ctx, c->dtype, 3, ss);
        blo_tensor *xq = blo_tensor_new(ctx, c->dtype, 3, qs), *yq = blo_tensor_new(ctx, c->dtype, 3, qs);
        if (!xs || !ys || !xq || !yq) {
            st = BLO_ERR_NOMEM;
            break;
        }
        fill_points(xs, px, nb, P, 0, K);
        fill_points(ys, py, nb, P, 0, K);
        fill_points(xq, px, nb, P, K, Q);
        fill_points(yq, py, nb, P, K, Q);
        blo_tensor *w[BLO_META_NPARAM], *a[BLO_META_NPARAM];
        for (int i = 0; i < BLO_META_NPARAM; i++) {
            int64_t sh[3] = {nb, blo_tensor_dim(x[i], 0), blo_tensor_dim(x[i], 1)};
            blo_tensor *t = blo_reshape(ctx, blo_detach(ctx, x[i]), 3, (int64_t[]){1, sh[1], sh[2]});
            w[i] = blo_clone(ctx, blo_expand(ctx, t, 3, sh));
            a[i] = alpha ? blo_detach(ctx, x[BLO_META_NPARAM + i]) : NULL;
            if (w[i]) blo_set_requires_grad(w[i], 1);
        }
        for (int step = 0, e = 0; step <= last && !st; step++) {
            if (step == blo_meta_eval_steps[e]) {
                int old = blo_ctx_set_recording(ctx, 0);
                blo_tensor *q = blo_mse(ctx, blo_meta_net(ctx, xq, w), yq, BLO_REDUCE_NONE);
                blo_ctx_set_recording(ctx, old);
                if (!q) break;
                for (int64_t b = 0; b < nb; b++) {
                    double v = blo_tensor_get(q, b);
                    sum[e] += v;
                    sq[e] += v * v;
                }
                e++;
            }
            if (step == last) break;
            /* Σ_b MSE_b: each task's gradient is its own. */
            blo_tensor *f = blo_scale(ctx, blo_mse(ctx, blo_meta_net(ctx, xs, w), ys, BLO_REDUCE_MEAN),
                                      (double)nb);
            blo_tensor *g[BLO_META_NPARAM];
            if (!f || blo_grad(ctx, 1, &f, NULL, BLO_META_NPARAM, w, 0, g)) break;
            int old = blo_ctx_set_recording(ctx, 0);
            for (int i = 0; i < BLO_META_NPARAM && w[i]; i++) {
                blo_tensor *d = a[i] ? blo_mul(ctx, g[i], a[i]) : blo_scale(ctx, g[i], lr);
                w[i] = blo_sub(ctx, w[i], d);
                if (w[i]) blo_set_requires_grad(w[i], 1);
            }
            blo_ctx_set_recording(ctx, old);
        }
        if (blo_ctx_status(ctx)) {
            st = blo__fail(err, errlen, blo_ctx_status(ctx), "meta sinusoid: evaluation: %s",
                      blo_ctx_error(ctx));
            break;
        }
        blo_ctx_rewind(ctx, mk);
    }
    if (st == BLO_ERR_NOMEM) blo__fail(err, errlen, st, "meta sinusoid: out of memory in evaluation");
    for (int e = 0; e < BLO_META_EVAL_STEPS && !st; e++) {
        double mean = sum[e] / (double)n, var = n > 1 ? (sq[e] - n * mean * mean) / (double)(n - 1) : 0;
        mse[e] = mean;
        /* A fine-tuning that blew up (Meta-SGD's α used beyond the steps it was learned for)
         * has no interval either. */
        ci[e] = isfinite(mean) ? 1.96 * sqrt(var > 0 ? var : 0) / sqrt((double)n) : NAN;
    }
    blo_ctx_free(ctx);
    blo_free(px);
    blo_free(py);
    return st;
}

typedef struct run_state {
    const blo_meta_sinusoid_config *c;
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

/* Builds the problem (θ from the seed), runs the solver with settings sc, evaluates.
 * baseline: no inner step, no Meta-SGD, no checkpoints or resume. */
static blo_status train_eval(const blo_meta_sinusoid_config *c, int baseline, double *mse,
                             double *ci, blo_meta_sinusoid_result *r, char *err, size_t errlen) {
    blo_rng g;
    blo_rng_seed(&g, c->seed ^ 0x1A17ULL); /* θ: the same start for the meta run and baseline */
    int msgd = c->meta_sgd && !baseline;
    blo_meta m;
    blo_status st = blo_meta_init(&m, c->meta_batch, c->width, c->shots, c->shots,
                                  baseline ? 0 : c->prox, msgd, c->solver.inner.lr, c->dtype, &g,
                                  err, errlen);
    if (st) return st;
    sampler sm = {c->seed, NULL, NULL};
    size_t nbuf = sizeof(double) * (size_t)(c->meta_batch * 2 * c->shots);
    sm.xs = blo_malloc(nbuf);
    sm.ys = blo_malloc(nbuf);
    blo_solver *s = NULL;
    if (!sm.xs || !sm.ys) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "meta sinusoid: out of memory");
        goto out;
    }
    m.sample = sample_batch;
    m.sample_user = &sm;
    blo_problem p = blo_meta_problem(&m);
    run_state rs = {c, 0, 0};
    blo_config sc = c->solver;
    sc.init = BLO_INIT_FROM_X;
    sc.lr_x = msgd ? BLO_META_NPARAM : -1;
    sc.lr_x_per_y = msgd;
    if (baseline) {
        sc.method = "rhg";
        sc.inner_steps = 0;
        sc.checkpoint_path = NULL;
        sc.on_record = NULL;
    } else {
        sc.on_record = on_record;
        sc.record_user = &rs;
    }
    s = blo_solver_new(&p, &sc, err, errlen);
    if (!s) {
        st = BLO_ERR_INVALID;
        goto out;
    }
    if (!baseline && c->resume && (st = blo_solver_load(s, c->resume))) {
        blo__fail(err, errlen, st, "%s", blo_solver_error(s));
        goto out;
    }
    if ((st = blo_solver_run(s))) {
        blo__fail(err, errlen, st, "%s%s", baseline ? "baseline: " : "", blo_solver_error(s));
        goto out;
    }
    blo_tensor *x[2 * BLO_META_NPARAM];
    for (int i = 0; i < p.nx; i++) x[i] = blo_solver_x(s, i);
    st = evaluate(c, x, msgd, c->solver.inner.lr, mse, ci, err, errlen);
    if (!baseline && r) {
        r->iters = blo_solver_iter(s);
        r->peak_bytes = rs.peak;
        r->seconds = rs.seconds;
        double lo;
        blo_solver_values(s, &r->upper, &lo);
    }
out:
    blo_solver_free(s);
    blo_meta_free(&m);
    blo_free(sm.xs);
    blo_free(sm.ys);
    return st;
}

blo_status blo_meta_sinusoid_run(const blo_meta_sinusoid_config *c, blo_meta_sinusoid_result *r,
                                 char *err, size_t errlen) {
    if (!c || !r) return blo__fail(err, errlen, BLO_ERR_INVALID, "meta sinusoid: no configuration");
    memset(r, 0, sizeof *r);
    for (int e = 0; e < BLO_META_EVAL_STEPS; e++) r->base_mse[e] = r->base_ci[e] = NAN;
    if (c->shots < 1 || c->meta_batch < 1 || c->width < 1 || c->eval_tasks < 1 ||
        c->eval_query < 1 || !(c->prox >= 0) || (c->dtype != BLO_F32 && c->dtype != BLO_F64))
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                    "meta sinusoid: shots, meta-batch, width, evaluation tasks and query points "
                    "must be >= 1, the proximal weight >= 0 and the dtype f32 or f64");
    blo_status st = train_eval(c, 0, r->mse, r->ci, r, err, errlen);
    if (!st && c->baseline) st = train_eval(c, 1, r->base_mse, r->base_ci, NULL, err, errlen);
    return st;
}
