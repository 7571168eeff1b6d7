/* run.c — differentiable architecture search end to end (Liu, Simonyan & Yang, "DARTS:
 * differentiable architecture search", ICLR 2019), and training a found architecture from
 * scratch.
 *
 * Search: x = (α_normal, α_reduce), y = the supernet's weights. The n_search examples drawn
 * from the training split are cut in two halves: f(x, y) is the cross-entropy on a minibatch
 * of the first half, F(x, y) on a minibatch of the second, each minibatch drawn without
 * replacement with the solver's generator (blo_eval.rng), so a checkpointed run resumes on the
 * same batches. With a warm start and T inner steps per outer iteration, the solver's loop is
 * DARTS' alternation: T weight steps on f, then one α step on the method's hypergradient
 * (first_order: DARTS-1st; darts: DARTS-2nd, eq. 7–8; rhg: through the T unrolled steps; cg:
 * implicit). Images are average-pooled to size × size to fit a small budget.
 *
 * Training: the genotype's discrete network (affine BN with running statistics), SGD with
 * momentum and weight decay, cosine-annealed learning rate, shuffled epochs; test accuracy on
 * the test split with the running statistics.
 */
#include "space.h"
#include "../common/common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* count random examples of the split ("train" or "t10k", CIFAR-10's "test") as images
 * [count, channels, size, size] (2-d average pooling of the square images) and their labels
 * (blo_malloc'd into *labels). */
static blo_status load_images(blo_ctx *ctx, const blo_nas_data_config *d, const char *split,
                              int64_t count, uint64_t stream, blo_dtype dt, blo_tensor **X,
                              int64_t **labels, int64_t *classes, char *err, size_t errlen) {
    if (!d->data_dir)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "nas: no data folder: set images.data_dir (the CLI's --data)");
    blo_dataset ds;
    int cifar = d->format == BLO_NAS_CIFAR10;
    if (cifar && !strcmp(split, "t10k")) split = "test";
    blo_status st = cifar ? blo_cifar10_load(d->data_dir, split, &ds, err, errlen)
                          : blo_mnist_load(d->data_dir, split, &ds, err, errlen);
    if (st) return st;
    int64_t ch = ds.image[0], side = ds.image[1];
    int64_t *rows = NULL;
    if (count > ds.n) {
        st = blo__fail(err, errlen, BLO_ERR_INVALID, "nas: %lld %s examples asked for, %s has %lld",
                  (long long)count, split, d->data_dir, (long long)ds.n);
        goto out;
    }
    if (side != ds.image[2] || d->size < 1 || side % d->size) {
        st = blo__fail(err, errlen, BLO_ERR_INVALID,
                  "nas: images of %lld x %lld pixels cannot be pooled to %lld x %lld (the size "
                  "must divide the side of a square image)",
                  (long long)side, (long long)ds.image[2], (long long)d->size, (long long)d->size);
        goto out;
    }
    rows = blo_malloc(sizeof(int64_t) * (size_t)ds.n);
    *labels = blo_malloc(sizeof(int64_t) * (size_t)(count ? count : 1));
    if (!rows || !*labels) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "nas: out of memory");
        goto out;
    }
    blo_rng g;
    blo_rng_seed(&g, d->seed ^ stream);
    for (int64_t i = 0; i < ds.n; i++)
        rows[i] = i;
    blo__draw_first(&g, rows, ds.n, count); /* the first count of a random permutation */
    for (int64_t i = 0; i < count; i++) (*labels)[i] = ds.label[rows[i]];
    *classes = ds.num_classes;
    blo_tensor *F = blo_dataset_features(ctx, &ds, dt, rows, count);
    int64_t shape[4] = {count, ch, side, side};
    int k = (int)(side / d->size);
    blo_pool2d_params pp = {k, k, k, k, 0, 0, 1};
    int rec = blo_ctx_set_recording(ctx, 0);
    *X = blo_avg_pool2d(ctx, blo_reshape(ctx, F, 4, shape), &pp);
    blo_ctx_set_recording(ctx, rec);
    if (!*X) st = blo__fail(err, errlen, blo_ctx_status(ctx), "nas: %s", blo_ctx_error(ctx));
out:
    blo_free(rows);
    blo_dataset_free(&ds);
    return st;
}

/* The accuracy of the network on n examples X (logits in chunks of 250, not recorded); with
 * loss, also the mean cross-entropy there. NAN when a forward pass fails. */
static double evaluate(const blo__nas_net *net, blo_tensor *const *y, blo_tensor *an, blo_tensor *ar,
                       blo_tensor *X, const int64_t *labels, int64_t n, double *loss) {
    blo_ctx *ctx = blo_ctx_new(0);
    if (loss) *loss = NAN;
    if (!ctx || n < 1) {
        blo_ctx_free(ctx);
        return NAN;
    }
    blo_ctx_set_recording(ctx, 0);
    int64_t right = 0;
    double ce = 0;
    for (int64_t lo = 0; lo < n; lo += 250) {
        int64_t hi = lo + 250 < n ? lo + 250 : n;
        blo_mark m = blo_ctx_mark(ctx);
        blo_tensor *z = blo__nas_net_forward(ctx, net, y, an, ar, blo_slice(ctx, X, 0, lo, hi, 1), 0);
        if (!z) {
            blo_ctx_free(ctx);
            return NAN;
        }
        int64_t C = blo_tensor_dim(z, 1), cnt = hi - lo;
        blo_tensor *lab = blo_from_i64(ctx, 1, &cnt, labels + lo);
        double acc = blo_accuracy(z, lab);
        if (!isfinite(acc)) {
            blo_ctx_free(ctx);
            return NAN;
        }
        right += llround(acc * (double)cnt);
        for (int64_t i = 0; loss && i < cnt; i++) {
            double mx = blo_tensor_get(z, i * C), se = 0;
            for (int64_t c = 1; c < C; c++) mx = fmax(mx, blo_tensor_get(z, i * C + c));
            for (int64_t c = 0; c < C; c++) se += exp(blo_tensor_get(z, i * C + c) - mx);
            ce += mx + log(se) - blo_tensor_get(z, i * C + labels[lo + i]);
        }
        blo_ctx_rewind(ctx, m);
    }
    blo_ctx_free(ctx);
    if (loss) *loss = ce / (double)n;
    return (double)right / (double)n;
}

static double accuracy(const blo__nas_net *net, blo_tensor *const *y, blo_tensor *an, blo_tensor *ar,
                       blo_tensor *X, const int64_t *labels, int64_t n) {
    return evaluate(net, y, an, ar, X, labels, n, NULL);
}

/* SGD with momentum and weight decay as PyTorch's SGD, m = μ m + (g + wd w); w -= lr m:
 * optim/'s momentum step (μ = 0: plain SGD with weight decay). */
static blo_opt sgd_momentum(double lr, double mu, double wd) {
    blo_opt o = blo_opt_sgd(lr);
    o.kind = BLO_OPT_MOMENTUM;
    o.momentum = mu;
    o.weight_decay = wd;
    return o;
}

/* ---- The bilevel problem --------------------------------------------------------------------- */
/* Cross-entropy of the supernet on a minibatch of rows [lo, lo + cnt). */
static blo_tensor *batch_loss(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                              blo_rng *rng, blo__nas_problem *p, int64_t lo, int64_t cnt) {
    int64_t k = p->batch < cnt ? p->batch : cnt;
    int64_t *idx = p->buf;
    for (int64_t i = 0; i < cnt; i++)
        idx[i] = lo + i;
    if (k < cnt) blo__draw_first(rng, idx, cnt, k); /* k rows without replacement */
    blo_tensor *it = blo_from_i64(ctx, 1, &k, idx);
    if (!it) return NULL;
    for (int64_t i = 0; i < k; i++) /* the rows' labels, in place of the rows (copied above) */
        idx[i] = p->labels[idx[i]];
    blo_tensor *lab = blo_from_i64(ctx, 1, &k, idx);
    if (!lab) return NULL;
    blo_tensor *z =
        blo__nas_net_forward(ctx, p->net, y, x[0], x[1], blo_index_select(ctx, p->X, 0, it), 1);
    return blo_cross_entropy(ctx, z, lab, NULL, BLO_REDUCE_MEAN);
}

blo_tensor *blo__nas_lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y, const blo_eval *ev,
                      void *user) {
    blo__nas_problem *p = user;
    return batch_loss(ctx, x, y, ev->rng, p, 0, p->half);
}

blo_tensor *blo__nas_upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y, const blo_eval *ev,
                      void *user) {
    blo__nas_problem *p = user;
    return batch_loss(ctx, x, y, ev->rng, p, p->half, p->n - p->half);
}

void blo__nas_bilevel_problem(blo_problem *prob, blo_tensor *const *alpha, blo__nas_problem *p) {
    *prob = blo__task_problem(2, alpha, p->net->ny, p->net->y, blo__nas_upper, blo__nas_lower, p);
}

blo_nas_search_config blo_nas_search_default(void) {
    blo_nas_search_config c;
    memset(&c, 0, sizeof c);
    c.images.size = 14;
    c.n_search = 1000;
    c.n_test = 1000;
    c.batch = 32;
    c.cells = 3;
    c.channels = 4;
    c.nodes = 3;
    c.dtype = BLO_F32;
    c.solver = blo_config_default();
    c.solver.method = "first_order";
    c.solver.inner = blo_opt_sgd(0.05);
    c.solver.inner.kind = BLO_OPT_MOMENTUM;
    c.solver.inner.weight_decay = 3e-4;
    c.solver.inner_steps = 1;
    c.solver.init = BLO_INIT_WARM;
    c.solver.outer = blo_opt_adam(3e-3);
    c.solver.outer.beta1 = 0.5; /* DARTS' α optimizer: Adam(3e-4, betas (0.5, 0.999)) */
    c.solver.outer_iters = 100;
    c.solver.diverge_limit = 1e4;
    c.eval_every = 25;
    return c;
}

typedef struct search_state {
    const blo_nas_search_config *c;
    blo__nas_problem *p;
    blo_solver *s;
    size_t peak;
    double seconds;
    double *alpha; /* 2 E * 8 scratch values for on_alpha: α_normal, then α_reduce */
} search_state;

/* The warm-up's loss: f on a minibatch with α held, drawn from the warm-up's own generator. */
typedef struct warmup_run {
    blo__nas_problem *p;
    blo_tensor *const *alpha;
    blo_rng rng;
    size_t *peak;
} warmup_run;

static blo_tensor *warmup_loss(blo_ctx *sc, blo_tensor *const *w, int64_t t, void *user) {
    warmup_run *wr = user;
    blo_eval ev = {1, -1, t - 1, &wr->rng};
    return blo__nas_lower(sc, wr->alpha, w, &ev, wr->p);
}

static int warmup_report(int64_t t, double loss, double grad_sq, size_t peak, void *user) {
    (void)t, (void)loss, (void)grad_sq;
    warmup_run *wr = user;
    if (peak > *wr->peak) *wr->peak = peak;
    return 0;
}

/* The weights-only warm-up: c->warmup steps of the solver's inner optimizer settings (lr,
 * momentum when the inner optimizer is momentum, weight decay) on f with α held at its
 * initial value, updating net->y in place before the bilevel loop starts. Minibatches come
 * from a generator of its own (seeded from c->seed), so the loop's batches are the same with
 * and without a warm-up. Its peak scratch bytes raise *peak. */
static blo_status warm_up(const blo_nas_search_config *c, blo__nas_problem *p, blo__nas_net *net,
                          blo_tensor *const *alpha, size_t *peak, char *err, size_t errlen) {
    const blo_opt *in = &c->solver.inner;
    warmup_run wr = {p, alpha, {{0}}, peak};
    blo_rng_seed(&wr.rng, c->seed ^ 0x3a4de0ULL);
    blo__fit f = {"nas: warm-up", " (lower --inner-lr?)",
                  sgd_momentum(in->lr, in->kind == BLO_OPT_MOMENTUM ? in->momentum : 0,
                               in->weight_decay),
                  net->ny, net->y, c->warmup, warmup_loss, warmup_report, &wr};
    return blo__fit_run(&f, err, errlen);
}

/* The supernet with op weights from α (an, ar) and the solver's weights on the F half: its
 * accuracy and, with loss, its mean cross-entropy. */
static double supernet_eval(search_state *ss, blo_tensor *an, blo_tensor *ar, double *loss) {
    const blo__nas_net *net = ss->p->net;
    blo_ctx *tmp = blo_ctx_new(0);
    blo_tensor *Xv = tmp ? blo_slice(tmp, ss->p->X, 0, ss->p->half, ss->p->n, 1) : NULL;
    blo_tensor **ys = blo_malloc(sizeof *ys * (size_t)net->ny);
    double acc = NAN;
    if (loss) *loss = NAN;
    if (Xv && ys) {
        for (int i = 0; i < net->ny; i++)
            ys[i] = blo_solver_y(ss->s, i);
        acc = evaluate(net, ys, an, ar, Xv, ss->p->labels + ss->p->half, ss->p->n - ss->p->half,
                       loss);
    }
    blo_free(ys);
    blo_ctx_free(tmp);
    return acc;
}

static double supernet_val_acc(search_state *ss) {
    return supernet_eval(ss, blo_solver_x(ss->s, 0), blo_solver_x(ss->s, 1), NULL);
}

/* blo_nas_genotype_perturb's score: the supernet's mean cross-entropy on the F half with the
 * given α and the solver's weights. */
typedef struct perturb_state {
    search_state *ss;
    blo_ctx *ctx;
    int64_t edges;
} perturb_state;

static double supernet_val_loss(const double *an, const double *ar, void *user) {
    perturb_state *ps = user;
    int64_t shape[2] = {ps->edges, BLO_NAS_NUM_OPS};
    blo_mark m = blo_ctx_mark(ps->ctx);
    blo_tensor *a[2] = {blo_from_f64(ps->ctx, ps->ss->c->dtype, 2, shape, an),
                        blo_from_f64(ps->ctx, ps->ss->c->dtype, 2, shape, ar)};
    double loss = NAN;
    if (a[0] && a[1]) supernet_eval(ps->ss, a[0], a[1], &loss);
    blo_ctx_rewind(ps->ctx, m);
    return loss;
}

static int search_on_record(const blo_record *rec, void *user) {
    search_state *ss = user;
    if (rec->peak_bytes > ss->peak) ss->peak = rec->peak_bytes;
    ss->seconds = rec->seconds;
    blo_task_iter it = {*rec, NAN, NAN, NAN};
    int64_t done = rec->iter + 1;
    if (ss->c->eval_every > 0 && done % ss->c->eval_every == 0) it.test_acc = supernet_val_acc(ss);
    if (ss->c->on_alpha) {
        int64_t E = blo_tensor_dim(blo_solver_x(ss->s, 0), 0);
        blo_tensor_to_f64(blo_solver_x(ss->s, 0), ss->alpha);
        blo_tensor_to_f64(blo_solver_x(ss->s, 1), ss->alpha + E * BLO_NAS_NUM_OPS);
        if (ss->c->on_alpha(rec->iter, (int)E, ss->alpha, ss->alpha + E * BLO_NAS_NUM_OPS,
                            ss->c->user))
            return 1;
    }
    return ss->c->on_iter ? ss->c->on_iter(&it, ss->c->user) : 0;
}

blo_status blo_nas_search_run(const blo_nas_search_config *c, blo_nas_search_result *r, char *err,
                              size_t errlen) {
    if (!c || !r) return blo__fail(err, errlen, BLO_ERR_INVALID, "nas: no configuration");
    memset(r, 0, sizeof *r);
    r->val_acc = r->test_acc = NAN;
    if (c->n_search < 2 || c->n_test < 0 || c->batch < 1)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                    "nas: at least 2 search examples, a batch >= 1 and n_test >= 0 needed");
    blo_ctx *dctx = blo_ctx_new(0);
    blo_tensor *X = NULL, *Xte = NULL, *x0[2] = {NULL, NULL};
    int64_t *labels = NULL, *lte = NULL, classes = 0, tclasses = 0;
    blo__nas_net net;
    memset(&net, 0, sizeof net);
    blo__nas_problem p;
    memset(&p, 0, sizeof p);
    search_state ss = {c, &p, NULL, 0, 0, NULL};
    blo_solver *s = NULL;
    blo_tensor **ys = NULL;
    blo_status st = dctx ? BLO_OK : blo__fail(err, errlen, BLO_ERR_NOMEM, "nas: out of memory");
    if (!st)
        st = load_images(dctx, &c->images, "train", c->n_search, 0x5ea4c4ULL, c->dtype, &X, &labels,
                         &classes, err, errlen);
    if (!st && c->n_test > 0)
        st = load_images(dctx, &c->images, "t10k", c->n_test, 0x7e57ULL, c->dtype, &Xte, &lte,
                         &tclasses, err, errlen);
    if (st) goto out;
    blo_rng g;
    blo_rng_seed(&g, c->seed ^ 0x0a4c41ULL);
    st = blo__nas_net_init(&net, NULL, c->cells, c->channels, c->nodes, blo_tensor_dim(X, 1),
                      c->images.size, classes, c->dtype, &g, err, errlen);
    if (st) goto out;
    int E = blo_nas_num_edges(c->nodes);
    int64_t as[2] = {E, BLO_NAS_NUM_OPS};
    for (int k = 0; k < 2; k++) { /* DARTS: α = 1e-3 · N(0, 1) */
        x0[k] = blo_tensor_new(dctx, c->dtype, 2, as);
        if (!x0[k] || blo_init_normal(x0[k], &g, 0, 1e-3)) {
            st = blo__fail(err, errlen, BLO_ERR_NOMEM, "nas: out of memory");
            goto out;
        }
    }
    p.net = &net;
    p.X = X;
    p.labels = labels;
    p.n = c->n_search;
    p.half = c->n_search / 2;
    p.batch = c->batch;
    p.buf = blo_malloc(sizeof(int64_t) * (size_t)p.n);
    ys = blo_malloc(sizeof *ys * (size_t)net.ny);
    if (!p.buf || !ys) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "nas: out of memory");
        goto out;
    }
    blo_problem prob;
    blo__nas_bilevel_problem(&prob, x0, &p);
    double warm_seconds = 0;
    if (c->warmup > 0 && !c->resume) { /* a resumed run's y comes from its checkpoint */
        double t0 = blo__task_seconds();
        if ((st = warm_up(c, &p, &net, x0, &ss.peak, err, errlen))) goto out;
        warm_seconds = blo__task_seconds() - t0;
    }
    if (c->on_alpha && !(ss.alpha = blo_malloc(sizeof(double) * 2 * (size_t)E * BLO_NAS_NUM_OPS))) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "nas: out of memory");
        goto out;
    }
    blo_config sc = c->solver;
    sc.on_record = search_on_record;
    sc.record_user = &ss;
    st = blo__task_solve(&prob, &sc, c->resume, &ss.s, err, errlen);
    s = ss.s;
    if (st) goto out;
    r->alpha_normal = blo_malloc(sizeof(double) * (size_t)E * BLO_NAS_NUM_OPS);
    r->alpha_reduce = blo_malloc(sizeof(double) * (size_t)E * BLO_NAS_NUM_OPS);
    if (!r->alpha_normal || !r->alpha_reduce) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "nas: out of memory");
        goto out;
    }
    blo_tensor_to_f64(blo_solver_x(s, 0), r->alpha_normal);
    blo_tensor_to_f64(blo_solver_x(s, 1), r->alpha_reduce);
    double t_select = blo__task_seconds();
    if (c->select == BLO_NAS_SELECT_PERTURB) {
        perturb_state ps = {&ss, blo_ctx_new(0), E};
        st = ps.ctx ? blo_nas_genotype_perturb(c->nodes, r->alpha_normal, r->alpha_reduce,
                                               supernet_val_loss, &ps, &r->genotype, err, errlen)
                    : blo__fail(err, errlen, BLO_ERR_NOMEM, "nas: out of memory");
        blo_ctx_free(ps.ctx);
        if (st) goto out;
    } else {
        blo_nas_genotype_derive(c->nodes, r->alpha_normal, r->alpha_reduce, &r->genotype);
    }
    r->select_seconds = blo__task_seconds() - t_select;
    r->val_acc = supernet_val_acc(&ss);
    for (int i = 0; i < net.ny; i++) {
        ys[i] = blo_solver_y(s, i);
        r->params += blo_tensor_numel(ys[i]);
    }
    if (Xte)
        r->test_acc =
            accuracy(&net, ys, blo_solver_x(s, 0), blo_solver_x(s, 1), Xte, lte, c->n_test);
    r->iters = blo_solver_iter(s);
    blo_solver_values(s, &r->upper, &r->lower);
    r->seconds = warm_seconds + ss.seconds;
    r->peak_bytes = ss.peak;
out:
    blo_free(ss.alpha);
    if (st) {
        blo_free(r->alpha_normal);
        blo_free(r->alpha_reduce);
        r->alpha_normal = r->alpha_reduce = NULL;
    }
    blo_solver_free(s);
    blo_free(ys);
    blo_free(p.buf);
    blo__nas_net_free(&net);
    blo_free(labels);
    blo_free(lte);
    blo_ctx_free(dctx);
    return st;
}

/* ---- Training a genotype from scratch -------------------------------------------------------- */
blo_nas_train_config blo_nas_train_default(void) {
    blo_nas_train_config c;
    memset(&c, 0, sizeof c);
    c.images.size = 14;
    c.n_train = 2000;
    c.n_test = 1000;
    c.batch = 32;
    c.epochs = 5;
    c.cells = 3;
    c.channels = 8;
    c.lr = 0.05;
    c.momentum = 0.9;
    c.weight_decay = 3e-4;
    c.dtype = BLO_F32;
    return c;
}

blo_status blo_nas_train_run(const blo_nas_train_config *c, blo_nas_train_result *r, char *err,
                             size_t errlen) {
    if (!c || !r) return blo__fail(err, errlen, BLO_ERR_INVALID, "nas: no configuration");
    memset(r, 0, sizeof *r);
    r->test_acc = r->train_loss = NAN;
    if (c->n_train < 1 || c->n_test < 1 || c->batch < 1 || c->epochs < 0 || !(c->lr > 0) ||
        c->momentum < 0 || c->weight_decay < 0)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                    "nas train: sizes, batch and lr must be positive, epochs, momentum and weight "
                    "decay >= 0");
    blo_ctx *dctx = blo_ctx_new(0), *sc = blo_ctx_new(0), *mctx = blo_ctx_new(0);
    blo_tensor *X = NULL, *Xte = NULL, **g = NULL;
    int64_t *labels = NULL, *lte = NULL, *perm = NULL, classes = 0, tclasses = 0;
    blo__nas_net net;
    memset(&net, 0, sizeof net);
    blo_status st =
        dctx && sc && mctx ? BLO_OK : blo__fail(err, errlen, BLO_ERR_NOMEM, "nas: out of memory");
    if (!st)
        st = load_images(dctx, &c->images, "train", c->n_train, 0x7a1aULL, c->dtype, &X, &labels,
                         &classes, err, errlen);
    if (!st)
        st = load_images(dctx, &c->images, "t10k", c->n_test, 0x7e57ULL, c->dtype, &Xte, &lte,
                         &tclasses, err, errlen);
    if (st) goto out;
    blo_rng rng;
    blo_rng_seed(&rng, c->seed ^ 0x7a41eULL);
    st = blo__nas_net_init(&net, &c->genotype, c->cells, c->channels, c->genotype.nodes,
                      blo_tensor_dim(X, 1), c->images.size, classes, c->dtype, &rng, err, errlen);
    if (st) goto out;
    g = blo_malloc(sizeof *g * (size_t)net.ny);
    perm = blo_malloc(sizeof *perm * (size_t)c->n_train);
    if (!g || !perm) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "nas: out of memory");
        goto out;
    }
    for (int i = 0; i < net.ny; i++) r->params += blo_tensor_numel(net.y[i]);
    blo_opt o = sgd_momentum(c->lr, c->momentum, c->weight_decay);
    blo_opt_state ost;
    if (blo_opt_state_init(mctx, &o, net.ny, net.y, &ost)) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "nas: out of memory");
        goto out;
    }
    for (int64_t i = 0; i < c->n_train; i++)
        perm[i] = i;
    int64_t per_epoch = (c->n_train + c->batch - 1) / c->batch, total = per_epoch * c->epochs;
    double t0 = blo__task_seconds();
    for (int64_t ep = 0; ep < c->epochs; ep++) {
        blo__shuffle(&rng, perm, c->n_train);
        double sum = 0;
        for (int64_t b = 0; b < per_epoch; b++, r->steps++) {
            int64_t lo = b * c->batch, k = lo + c->batch <= c->n_train ? c->batch : c->n_train - lo;
            /* Cosine annealing from lr to 0 over the whole run (Loshchilov & Hutter 2017). */
            double lr =
                0.5 * c->lr * (1 + cos(3.14159265358979323846 * (double)r->steps / (double)total));
            blo_mark m = blo_ctx_mark(sc);
            blo_tensor *it = blo_from_i64(sc, 1, &k, perm + lo);
            int64_t *hl = blo__ctx_alloc(sc, sizeof(int64_t) * (size_t)k);
            for (int64_t q = 0; hl && q < k; q++) hl[q] = labels[perm[lo + q]];
            blo_tensor *lab = hl ? blo_from_i64(sc, 1, &k, hl) : NULL;
            blo_tensor *z =
                blo__nas_net_forward(sc, &net, net.y, NULL, NULL, blo_index_select(sc, X, 0, it), 1);
            blo_tensor *loss = blo_cross_entropy(sc, z, lab, NULL, BLO_REDUCE_MEAN);
            if (!loss || blo_grad(sc, 1, &loss, NULL, net.ny, net.y, 0, g)) {
                st = blo__fail(err, errlen, blo_ctx_status(sc), "nas train: step %lld: %s",
                          (long long)r->steps, blo_ctx_error(sc));
                goto out;
            }
            double lv = blo_tensor_item(loss);
            if (!isfinite(lv)) {
                st = blo__fail(err, errlen, BLO_ERR_NUMERIC,
                          "nas train: the loss is not finite at step %lld (epoch %lld)",
                          (long long)r->steps, (long long)ep);
                goto out;
            }
            sum += lv * (double)k;
            o.lr = lr;
            if (blo_opt_step(sc, &o, &ost, net.ny, net.y, g)) {
                st = blo__fail(err, errlen, blo_ctx_status(sc), "nas train: step %lld: %s",
                               (long long)r->steps, blo_ctx_error(sc));
                goto out;
            }
            blo_ctx_rewind(sc, m);
        }
        r->train_loss = sum / (double)c->n_train;
        r->seconds = blo__task_seconds() - t0;
        if (c->on_iter) {
            blo_task_iter ti;
            memset(&ti, 0, sizeof ti);
            ti.rec.iter = ep;
            ti.rec.upper = r->train_loss;
            ti.rec.lower = NAN;
            ti.rec.hypergrad_norm = NAN;
            ti.rec.seconds = r->seconds;
            ti.test_acc = ti.test_acc_start = ti.f1 = NAN;
            if (c->on_iter(&ti, c->user)) break;
        }
    }
    r->test_acc = accuracy(&net, net.y, NULL, NULL, Xte, lte, c->n_test);
out:
    blo__nas_net_free(&net);
    blo_free(g);
    blo_free(perm);
    blo_free(labels);
    blo_free(lte);
    blo_ctx_free(mctx);
    blo_ctx_free(sc);
    blo_ctx_free(dctx);
    return st;
}
