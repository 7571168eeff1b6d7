/* run.c — the learned-optimizer task: the Fashion-MNIST optimizee (data, MLP, minibatch loss),
 * meta-training the optimizer by truncated reverse mode over windows of a trajectory
 * (blo_learnopt_train), and training one optimizee with a learned or a hand-made optimizer
 * (blo_learnopt_apply). */
#include "blo/data.h"
#include "blo/learnopt.h"

#include "../common/common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { MAX_LAYERS = 8, MAX_PARAMS = 2 * (MAX_LAYERS + 1) };

/* The optimizee's data and model, and the minibatch the last lower-level evaluation drew. */
typedef struct lo_data {
    const blo_learnopt_task *c;
    blo_ctx *dctx;
    blo_tensor *X, *Xte, *yte;
    int64_t *labels; /* [n_train] host copy, for minibatch labels */
    int64_t d, classes;
    int n; /* parameter tensors: 2 (layers + 1) */
    int64_t *batch;
    int fast;   /* the fused cross-entropy (first order: values-only training) */
    int window; /* K: the upper level is s / K */
} lo_data;

/* Releases what lo_load made and clears d (so a second call does nothing). */
static void lo_free(lo_data *d) {
    blo_ctx_free(d->dctx);
    blo_free(d->labels);
    blo_free(d->batch);
    memset(d, 0, sizeof *d);
}

/* Loads n_train random training images (their draw set by seed) and the first n_test test
 * images. */
static blo_status lo_load(const blo_learnopt_task *c, lo_data *d, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    d->c = c;
    if (!c->data_dir)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "learnopt: no data folder: set data_dir (the CLI's --data)");
    if (c->n_train < 1 || c->n_test < 1 || c->batch < 1 || c->hidden < 1 || c->layers < 1 ||
        c->layers > MAX_LAYERS || (c->dtype != BLO_F32 && c->dtype != BLO_F64))
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "learnopt: n_train, n_test, batch and hidden must be >= 1, layers in "
                         "[1, %d], the dtype f32 or f64",
                         MAX_LAYERS);
    blo_dataset tr, te;
    blo_status st = blo_mnist_load(c->data_dir, "train", &tr, err, errlen);
    if (st) return st;
    st = blo_mnist_load(c->data_dir, "t10k", &te, err, errlen);
    if (st) {
        blo_dataset_free(&tr);
        return st;
    }
    int64_t *perm = blo_malloc(sizeof(int64_t) * (size_t)tr.n);
    d->dctx = blo_ctx_new(0);
    d->batch = blo_malloc(sizeof(int64_t) * (size_t)c->batch);
    if (c->n_train > tr.n || c->n_test > te.n)
        st = blo__fail(err, errlen, BLO_ERR_INVALID,
                       "learnopt: %lld training and %lld test images asked for, %s has %lld and "
                       "%lld",
                       (long long)c->n_train, (long long)c->n_test, c->data_dir, (long long)tr.n,
                       (long long)te.n);
    else if (!perm || !d->dctx || !d->batch)
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "learnopt: out of memory");
    if (!st) {
        blo_rng g;
        blo_rng_seed(&g, c->seed ^ 0x1ea7ed0b7ULL);
        for (int64_t i = 0; i < tr.n; i++)
            perm[i] = i;
        blo__draw_first(&g, perm, tr.n, c->n_train);
        d->X = blo_dataset_features(d->dctx, &tr, c->dtype, perm, c->n_train);
        blo_tensor *lab = blo_dataset_labels(d->dctx, &tr, perm, c->n_train);
        d->Xte = blo_dataset_features(d->dctx, &te, c->dtype, NULL, c->n_test);
        d->yte = blo_dataset_labels(d->dctx, &te, NULL, c->n_test);
        d->labels = blo_malloc(sizeof(int64_t) * (size_t)c->n_train);
        if (!d->X || !lab || !d->Xte || !d->yte || !d->labels ||
            blo_tensor_copy_to_host(lab, BLO_I64, d->labels))
            st = blo__fail(err, errlen, BLO_ERR_NOMEM, "learnopt: %s",
                           blo_ctx_status(d->dctx) ? blo_ctx_error(d->dctx) : "out of memory");
        d->d = tr.d;
        d->classes = tr.num_classes;
        d->n = 2 * (int)(c->layers + 1);
    }
    blo_free(perm);
    blo_dataset_free(&tr);
    blo_dataset_free(&te);
    if (st) lo_free(d);
    return st;
}

/* Logits of the MLP theta on X: tanh hidden layers, a linear output. */
static blo_tensor *lo_model(blo_ctx *ctx, const lo_data *d, blo_tensor *X, blo_tensor *const *th) {
    blo_tensor *h = X;
    for (int l = 0; l + 2 < d->n; l += 2)
        h = blo_tanh(ctx, blo_linear(ctx, h, th[l], th[l + 1]));
    return blo_linear(ctx, h, th[d->n - 2], th[d->n - 1]);
}

/* Fresh optimizee weights for trajectory j (W ~ N(0, 1/fan_in), biases 0) into the host
 * buffer of each parameter, then into th (tensors of the right shapes). */
static blo_status lo_init_into(const lo_data *d, uint64_t j, blo_tensor *const *th) {
    blo_rng g;
    blo_rng_seed(&g, d->c->seed * 0x9e3779b97f4a7c15ULL + j + 1);
    blo_status st = BLO_OK;
    for (int i = 0; !st && i < d->n; i++) {
        int64_t cnt = blo_tensor_numel(th[i]);
        double *v = blo_malloc(sizeof(double) * (size_t)cnt), s = 0;
        if (!v) return BLO_ERR_NOMEM;
        if (i % 2 == 0) s = 1 / sqrt((double)blo_tensor_dim(th[i], 1));
        for (int64_t k = 0; k < cnt; k++)
            v[k] = s * blo_rng_normal(&g);
        st = blo_tensor_copy_from_host(th[i], BLO_F64, v);
        blo_free(v);
    }
    return st;
}

/* The optimizee's parameter tensors in ctx, initialised for trajectory j. */
static blo_status lo_params(blo_ctx *ctx, const lo_data *d, uint64_t j, blo_tensor **th) {
    int64_t w = d->c->hidden, in = d->d;
    for (int l = 0; l < d->n; l += 2) {
        int64_t out = l + 2 == d->n ? d->classes : w, ws[2] = {out, in};
        th[l] = blo_zeros(ctx, d->c->dtype, 2, ws);
        th[l + 1] = blo_zeros(ctx, d->c->dtype, 1, &out);
        in = out;
    }
    if (blo_ctx_status(ctx)) return blo_ctx_status(ctx);
    return lo_init_into(d, j, th);
}

static void lo_draw(lo_data *d, blo_rng *r) {
    for (int64_t b = 0; b < d->c->batch; b++)
        d->batch[b] = (int64_t)blo_rng_below(r, (uint64_t)d->c->n_train);
}

/* Mean cross-entropy of theta on the last drawn minibatch (blo_learnopt_loss_fn). */
static blo_tensor *lo_batch_loss(blo_ctx *ctx, blo_tensor *const *th, void *user) {
    const lo_data *d = user;
    int64_t B = d->c->batch, lab[4096], *lp = B <= 4096 ? lab : blo_malloc(sizeof(int64_t) * (size_t)B);
    if (!lp) return NULL;
    for (int64_t b = 0; b < B; b++)
        lp[b] = d->labels[d->batch[b]];
    blo_tensor *idx = blo_from_i64(ctx, 1, &B, d->batch), *yb = blo_from_i64(ctx, 1, &B, lp);
    if (lp != lab) blo_free(lp);
    blo_tensor *z = lo_model(ctx, d, blo_index_select(ctx, d->X, 0, idx), th);
    return d->fast ? blo_cross_entropy_fast(ctx, z, yb, NULL, BLO_REDUCE_MEAN)
                   : blo_cross_entropy(ctx, z, yb, NULL, BLO_REDUCE_MEAN);
}

/* Mean cross-entropy (loss = 1) or accuracy (loss = 0) of theta on (X, labels), values only. */
static double lo_score(const lo_data *d, blo_tensor *X, blo_tensor *labels, blo_tensor *const *th,
                       int loss) {
    blo_ctx *ctx = blo_ctx_new(0);
    if (!ctx) return NAN;
    blo_ctx_set_recording(ctx, 0);
    blo_tensor *z = lo_model(ctx, d, X, th);
    double v = loss ? blo_tensor_item(blo_cross_entropy(ctx, z, labels, NULL, BLO_REDUCE_MEAN))
                    : blo_accuracy(z, labels);
    if (blo_ctx_status(ctx)) v = NAN;
    blo_ctx_free(ctx);
    return v;
}

/* ---- Meta-training --------------------------------------------------------------------------- */

blo_learnopt_config blo_learnopt_default(void) {
    blo_learnopt_config c;
    memset(&c, 0, sizeof c);
    c.task.n_train = 10000;
    c.task.n_test = 10000;
    c.task.batch = 128;
    c.task.hidden = 32;
    c.task.layers = 1;
    c.task.dtype = BLO_F32;
    c.opt_hidden = 16;
    c.init_step = 3e-3;
    c.reset_every = 10;
    c.solver = blo_config_default();
    c.solver.method = "trhg";
    c.solver.inner_steps = 20;
    c.solver.trhg_window = 20;
    c.solver.init = BLO_INIT_WARM;
    c.solver.outer = blo_opt_adam(1e-3);
    c.solver.outer_iters = 300;
    c.solver.diverge_limit = 1e3;
    return c;
}

/* The lower objective: the minibatch loss on a batch drawn from the solver's generator. */
static blo_tensor *lo_lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                            const blo_eval *ev, void *user) {
    (void)x;
    lo_data *d = user;
    lo_draw(d, ev->rng);
    return lo_batch_loss(ctx, y, d);
}

/* The upper objective: the mean minibatch loss along the window, s / K. */
static blo_tensor *lo_upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                            const blo_eval *ev, void *user) {
    (void)x, (void)ev;
    const lo_data *d = user;
    return blo_scale(ctx, y[4 * d->n + 1], 1.0 / d->window);
}

typedef struct train_state {
    const blo_learnopt_config *c;
    lo_data *d;
    blo_solver *s;
    double first_sum, last_sum;
    int64_t first_n, last_n;
    size_t peak;
    double seconds;
    blo_status reset_status;
} train_state;

/* After every window: the record, and every reset_every windows a fresh optimizee. */
static int lo_on_record(const blo_record *rec, void *user) {
    train_state *ts = user;
    int64_t R = ts->c->reset_every, traj = rec->iter / R, n = ts->d->n;
    if (rec->peak_bytes > ts->peak) ts->peak = rec->peak_bytes;
    ts->seconds = rec->seconds;
    if (traj == 0) ts->first_sum += rec->upper, ts->first_n++;
    if (rec->iter % R == 0) ts->last_sum = 0, ts->last_n = 0;
    ts->last_sum += rec->upper, ts->last_n++;
    if ((rec->iter + 1) % R == 0) { /* the state of a fresh optimizee, copied into the solver's */
        blo_ctx *ctx = blo_ctx_new(0);
        blo_tensor *th[MAX_PARAMS], *y[4 * MAX_PARAMS + 2];
        blo_status st = ctx ? BLO_OK : BLO_ERR_NOMEM;
        if (!st && lo_params(ctx, ts->d, (uint64_t)traj + 1, th)) st = blo_ctx_status(ctx);
        if (!st) st = blo_learnopt_state(ctx, n, th, y);
        for (int i = 0; !st && i < 4 * n + 2; i++)
            st = blo_copy_into(blo_solver_y(ts->s, i), y[i]);
        blo_ctx_free(ctx);
        if (st) {
            ts->reset_status = st;
            return 1;
        }
    }
    blo_task_iter it = {*rec, NAN, NAN, NAN};
    return ts->c->on_iter ? ts->c->on_iter(&it, ts->c->user) : 0;
}

blo_status blo_learnopt_train(const blo_learnopt_config *c, blo_learnopt_train_result *r,
                              char *err, size_t errlen) {
    if (!c || !r) return blo__fail(err, errlen, BLO_ERR_INVALID, "learnopt: no configuration");
    memset(r, 0, sizeof *r);
    r->first_traj = r->last_traj = r->upper = r->step = NAN;
    if (c->reset_every < 1 || c->opt_hidden < 1 || c->solver.inner_steps < 1)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "learnopt: reset_every, opt_hidden and the window (inner steps) must "
                         "be >= 1");
    blo_ctx *pc = blo_ctx_new(0);
    blo_tensor *th[MAX_PARAMS], *x[BLO_LEARNOPT_NX], *y[4 * MAX_PARAMS + 2];
    blo_solver *s = NULL;
    lo_data d;
    memset(&d, 0, sizeof d);
    blo_status st = pc ? BLO_OK : blo__fail(err, errlen, BLO_ERR_NOMEM, "learnopt: out of memory");
    blo_rng g;
    blo_rng_seed(&g, c->task.seed ^ 0x0b7e55edULL);
    /* The start file first: a bad one is refused before the data is read. */
    if (!st && c->start)
        st = blo_learnopt_load(c->start, pc, c->task.dtype, x, NULL, err, errlen);
    else if (!st && blo_learnopt_init(pc, c->task.dtype, c->opt_hidden, c->init_step, &g, x))
        st = blo__fail(err, errlen, blo_ctx_status(pc), "%s", blo_ctx_error(pc));
    if (!st) st = lo_load(&c->task, &d, err, errlen);
    if (st) goto out;
    d.window = c->solver.inner_steps;
    int n = d.n;
    if (!st && (lo_params(pc, &d, 0, th) || blo_learnopt_state(pc, n, th, y)))
        st = blo__fail(err, errlen, blo_ctx_status(pc) ? blo_ctx_status(pc) : BLO_ERR_NOMEM,
                       "learnopt: %s", blo_ctx_error(pc));
    if (st) goto out;
    blo_problem p = blo__task_problem(BLO_LEARNOPT_NX, x, 4 * n + 2, y, lo_upper, lo_lower, &d);
    blo_learnopt_update_user upd = {n, lo_batch_loss, &d};
    train_state ts = {c, &d, NULL, 0, 0, 0, 0, 0, 0, BLO_OK};
    blo_config sc = c->solver;
    sc.inner_update = blo_learnopt_update;
    sc.inner_update_user = &upd;
    sc.on_record = lo_on_record;
    sc.record_user = &ts;
    s = blo_solver_new(&p, &sc, err, errlen);
    ts.s = s;
    if (!s) {
        st = BLO_ERR_INVALID;
        goto out;
    }
    st = c->resume ? blo_solver_load(s, c->resume) : BLO_OK;
    if (!st) st = blo_solver_run(s);
    if (!st && ts.reset_status) st = ts.reset_status;
    if (st) {
        blo__fail(err, errlen, st, "learnopt: %s", blo_solver_error(s));
        goto out;
    }
    blo_tensor *xs[BLO_LEARNOPT_NX];
    for (int i = 0; i < BLO_LEARNOPT_NX; i++)
        xs[i] = blo_solver_x(s, i);
    if (c->save) st = blo_learnopt_save(c->save, xs, err, errlen);
    double lower;
    blo_solver_values(s, &r->upper, &lower);
    r->first_traj = ts.first_n ? ts.first_sum / (double)ts.first_n : NAN;
    r->last_traj = ts.last_n ? ts.last_sum / (double)ts.last_n : NAN;
    r->step = exp(blo_tensor_item(xs[5]));
    r->iters = blo_solver_iter(s);
    r->seconds = ts.seconds;
    r->peak_bytes = ts.peak;
out:
    blo_solver_free(s);
    blo_ctx_free(pc);
    lo_free(&d);
    return st;
}

/* ---- Training one optimizee -------------------------------------------------------------------- */

blo_status blo_learnopt_apply(const blo_learnopt_apply_config *c, blo_learnopt_apply_result *r,
                              char *err, size_t errlen) {
    if (!c || !r) return blo__fail(err, errlen, BLO_ERR_INVALID, "learnopt: no configuration");
    memset(r, 0, sizeof *r);
    r->mean_loss = r->train_loss = r->test_acc = NAN;
    const char *bad = c->optimizer ? NULL : blo_opt_check(&c->baseline);
    if (c->steps < 1 || bad)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "learnopt: %s",
                         bad ? bad : "steps must be >= 1");
    blo_ctx *pc = blo_ctx_new(0), *sc = blo_ctx_new(0);
    blo_tensor *th[MAX_PARAMS], *x[BLO_LEARNOPT_NX], *y[4 * MAX_PARAMS + 2],
        *ynew[4 * MAX_PARAMS + 2], *g[4 * MAX_PARAMS + 2];
    blo_opt_state ost;
    lo_data d;
    memset(&d, 0, sizeof d);
    blo_status st = pc && sc ? BLO_OK
                             : blo__fail(err, errlen, BLO_ERR_NOMEM, "learnopt: out of memory");
    /* The optimizer file first: a bad one is refused before the data is read. */
    if (!st && c->optimizer)
        st = blo_learnopt_load(c->optimizer, pc, c->task.dtype, x, NULL, err, errlen);
    if (!st) st = lo_load(&c->task, &d, err, errlen);
    if (st) goto out;
    d.fast = 1;
    int n = d.n;
    if (lo_params(pc, &d, 0, th) || blo_learnopt_state(pc, n, th, y) ||
        (!c->optimizer && blo_opt_state_init(pc, &c->baseline, n, y, &ost))) {
        st = blo__fail(err, errlen, blo_ctx_status(pc) ? blo_ctx_status(pc) : BLO_ERR_NOMEM,
                       "learnopt: %s", blo_ctx_error(pc));
        goto out;
    }
    blo_learnopt_update_user upd = {n, NULL, NULL};
    blo_rng rng;
    blo_rng_seed(&rng, c->task.seed ^ 0xba7c4e5ULL);
    double t0 = blo__task_seconds(), sum = 0;
    for (int64_t t = 0; t < c->steps; t++) {
        blo_mark mk = blo_ctx_mark(sc);
        lo_draw(&d, &rng);
        blo_tensor *loss = lo_batch_loss(sc, y, &d);
        double lv = loss ? blo_tensor_item(loss) : NAN;
        if (!loss || blo_grad(sc, 1, &loss, NULL, n, y, 0, g)) {
            st = blo__fail(err, errlen, blo_ctx_status(sc), "learnopt: step %lld: %s",
                           (long long)t + 1, blo_ctx_error(sc));
            break;
        }
        if (!isfinite(lv)) {
            st = blo__fail(err, errlen, BLO_ERR_NUMERIC,
                           "learnopt: step %lld: the training loss is %g (the optimizer "
                           "diverged)",
                           (long long)t + 1, lv);
            break;
        }
        sum += lv;
        if (c->optimizer) {
            blo_ctx_set_recording(sc, 0);
            st = blo_learnopt_update(sc, BLO_LEARNOPT_NX, x, 4 * n + 2, y, g, t, ynew, &upd);
            for (int i = 0; !st && i < 4 * n + 2; i++)
                st = blo_copy_into(y[i], ynew[i]);
            blo_ctx_set_recording(sc, 1);
        } else {
            st = blo_opt_step(sc, &c->baseline, &ost, n, y, g);
        }
        if (st) {
            st = blo__fail(err, errlen, st, "learnopt: step %lld: %s", (long long)t + 1,
                           blo_ctx_error(sc));
            break;
        }
        blo_ctx_rewind(sc, mk);
        bool last = t + 1 == c->steps;
        if (c->on_iter && (last || (c->eval_every > 0 && (t + 1) % c->eval_every == 0))) {
            blo_task_iter it = {{0}, NAN, NAN, NAN};
            it.rec.iter = t;
            it.rec.lower = lv;
            it.rec.upper = sum / (double)(t + 1);
            it.rec.hypergrad_norm = NAN;
            it.rec.seconds = blo__task_seconds() - t0;
            it.rec.solve_residual = it.rec.check_cosine = it.rec.check_rel_error = NAN;
            it.rec.solve_iters = -1;
            it.test_acc = lo_score(&d, d.Xte, d.yte, y, 0);
            if (c->on_iter(&it, c->user)) break;
        }
    }
    if (!st) {
        r->seconds = blo__task_seconds() - t0;
        r->steps = c->steps;
        r->mean_loss = sum / (double)c->steps;
        blo_tensor *lab = blo_from_i64(sc, 1, &c->task.n_train, d.labels);
        r->train_loss = lo_score(&d, d.X, lab, y, 1);
        r->test_acc = lo_score(&d, d.Xte, d.yte, y, 0);
    }
out:
    blo_ctx_free(sc);
    blo_ctx_free(pc);
    lo_free(&d);
    return st;
}
