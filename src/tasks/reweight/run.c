/* run.c — the reweighting task end to end: load an MNIST-layout data set, take a clean meta
 * set out of the training split, inject label noise or a long-tailed imbalance into the rest,
 * train the classifier with the chosen weights (online one-step scheme or a registry method
 * through the solver), score it on the test split after every epoch and read the learned
 * weight curve V(ℓ). */
#include "reweight.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

blo_reweight_config blo_reweight_default(void) {
    blo_reweight_config c;
    memset(&c, 0, sizeof c);
    c.test_split = "t10k";
    c.n_meta = 1000;
    c.noise = 0.4;
    c.noise_kind = BLO_NOISE_UNIFORM;
    c.imbalance = 1;
    c.weights = BLO_REWEIGHT_NETWORK;
    c.online = 1;
    c.norm = BLO_REWEIGHT_NORM_SUM;
    c.classifier = BLO_REWEIGHT_MLP;
    c.hidden = 300;
    c.channels = 8;
    c.vnet_hidden = 100;
    c.batch = 100;
    c.meta_batch = 100;
    c.epochs = 15;
    c.opt = blo_opt_sgd(0.02);
    c.opt.kind = BLO_OPT_MOMENTUM;
    c.opt.momentum = 0.9;
    c.opt.weight_decay = 5e-4;
    c.meta_opt = blo_opt_adam(1e-3);
    c.meta_opt.weight_decay = 1e-4;
    c.meta_wd_follows = 1;
    c.meta_lr_follows = 0;
    c.solver = blo_config_default();
    c.solver.method = "rhg";
    c.solver.inner = blo_opt_sgd(0.02);
    c.solver.inner_steps = 5;
    c.solver.init = BLO_INIT_WARM;
    c.solver.outer = c.meta_opt;
    c.dtype = BLO_F32;
    return c;
}

/* Evaluations of the classifier w without a tape, in blocks of 1000 rows (the conv
 * classifier's columns of a whole test set would not fit): accuracy on (X, y), or mean CE. */
static double evaluate(const blo__reweight *h, blo_tensor *X, blo_tensor *y,
                       blo_tensor *const *w, int ce) {
    blo_ctx *ctx = blo_ctx_new(0);
    if (!ctx) return NAN;
    blo_ctx_set_recording(ctx, 0);
    int64_t n = blo_tensor_dim(X, 0);
    double sum = 0;
    for (int64_t a = 0; a < n && !blo_ctx_status(ctx); a += 1000) {
        int64_t b = a + 1000 < n ? a + 1000 : n;
        blo_mark mk = blo_ctx_mark(ctx);
        blo_tensor *yb = blo_slice(ctx, y, 0, a, b, 1);
        blo_tensor *z = blo__reweight_logits(ctx, h, blo_slice(ctx, X, 0, a, b, 1), w);
        double v = ce ? blo_tensor_item(blo_cross_entropy(ctx, z, yb, NULL, BLO_REDUCE_SUM))
                      : blo_accuracy(z, yb) * (double)(b - a);
        sum += v;
        blo_ctx_rewind(ctx, mk);
    }
    double v = blo_ctx_status(ctx) || n < 1 ? NAN : sum / (double)n;
    blo_ctx_free(ctx);
    return v;
}

/* The learned curve V(ℓ) on the grid 0 .. 10 (network weights only). */
static void weight_curve(blo_tensor *const *phi, blo_dtype dt, blo_reweight_result *r) {
    for (int i = 0; i < BLO_REWEIGHT_CURVE; i++) {
        r->loss_grid[i] = 10.0 * i / (BLO_REWEIGHT_CURVE - 1);
        r->weight_curve[i] = NAN;
    }
    blo_ctx *ctx = phi ? blo_ctx_new(0) : NULL;
    if (!ctx) return;
    blo_ctx_set_recording(ctx, 0);
    blo_tensor *l = blo_from_f64(ctx, dt, 1, (int64_t[]){BLO_REWEIGHT_CURVE}, r->loss_grid);
    blo_tensor *v = l ? blo__reweight_vnet(ctx, phi, l) : NULL;
    if (!v || blo_tensor_to_f64(v, r->weight_curve))
        for (int i = 0; i < BLO_REWEIGHT_CURVE; i++) r->weight_curve[i] = NAN;
    blo_ctx_free(ctx);
}

/* What the training loops share: the data, the sizes, the clock, the epoch report. */
typedef struct rw_run {
    const blo_reweight_config *c;
    blo__reweight *h;
    blo_tensor *Xte, *yte;
    const int64_t *noisy, *truth; /* [n] */
    blo_reweight_result *r;
    double start, cpu_start;
    int64_t steps_per_epoch;
    blo_solver *s;
} rw_run;

/* After an epoch with classifier w: test accuracy, the report. Returns non-zero to stop. */
static int report_epoch(rw_run *rr, int64_t epoch, blo_tensor *const *w, double train_loss,
                        double hypergrad_norm) {
    blo_reweight_result *r = rr->r;
    double acc = evaluate(rr->h, rr->Xte, rr->yte, w, 0);
    r->test_acc = acc;
    if (!(acc <= r->best_test_acc)) r->best_test_acc = acc;
    r->epochs = epoch;
    r->seconds = blo__task_seconds() - rr->start;
    r->cpu_seconds_per_epoch = (blo__task_cpu_seconds() - rr->cpu_start) / (double)epoch;
    if (!rr->c->on_iter) return 0;
    blo_task_iter it;
    memset(&it, 0, sizeof it);
    it.rec.iter = epoch - 1;
    it.rec.upper = evaluate(rr->h, rr->h->Xm, rr->h->labels_m, w, 1);
    it.rec.lower = train_loss;
    it.rec.hypergrad_norm = hypergrad_norm;
    it.rec.seconds = r->seconds;
    it.test_acc = acc;
    it.test_acc_start = NAN;
    it.f1 = NAN;
    return rr->c->on_iter(&it, rr->c->user);
}

/* The same on R ranks: rank 0 reports, every rank gets its decision. */
static int end_epoch(rw_run *rr, int64_t epoch, blo_tensor *const *w, double train_loss,
                     double hypergrad_norm) {
    blo_comm *comm = rr->h->comm;
    int stop = 0;
    if (!comm || blo_comm_rank(comm) == 0) /* rank 0 evaluates, reports and decides */
        stop = report_epoch(rr, epoch, w, train_loss, hypergrad_norm);
    else
        rr->r->epochs = epoch;
    if (comm) blo_comm_bcast_bytes(comm, &stop, sizeof stop, 0);
    return stop;
}

/* ---- Checkpoints of the online scheme -----------------------------------------------------
 * Written after every epoch (by rank 0, to PATH.tmp, then renamed over PATH): magic
 * "BLORWCK1"; int64 [epochs done, steps, w's optimizer steps, φ's, training examples n,
 * tensors]; the seed; the settings that fix the run (RW_NSET doubles, named in RW_SET); doubles
 * [best test accuracy, wall seconds, CPU seconds]; the generator; the training order (int64
 * [n]: every epoch shuffles the last one's); then w, w's moments, φ and φ's moments
 * (blo__tensor_write). A resumed run must have every setting the same; only the epochs may
 * differ. */
static const char RW_MAGIC[8] = {'B', 'L', 'O', 'R', 'W', 'C', 'K', '1'};
static const char *const RW_SET[] = {
    "n_meta", "n_train", "n_test", "test_split", "noise", "noise_kind", "imbalance", "weights",
    "norm", "classifier", "hidden", "channels", "vnet_hidden", "batch", "meta_batch", "dtype",
    "lr_decay[0]", "lr_decay[1]", "meta_wd_follows", "meta_lr_follows"};
#define RW_NBASE ((int)(sizeof RW_SET / sizeof RW_SET[0]))
#define RW_NSET (RW_NBASE + 2 * BLO__OPT_FIELDS) /* then opt's fields, then meta_opt's */

static void rw_settings(const blo_reweight_config *c, double *v) {
    const double s[] = {(double)c->n_meta, (double)c->n_train, (double)c->n_test,
                        c->test_split && !strcmp(c->test_split, "train"), c->noise,
                        c->noise_kind, c->imbalance, c->weights, c->norm, c->classifier,
                        (double)c->hidden, (double)c->channels, (double)c->vnet_hidden,
                        (double)c->batch, (double)c->meta_batch, c->dtype,
                        (double)c->lr_decay[0], (double)c->lr_decay[1], c->meta_wd_follows,
                        c->meta_lr_follows};
    _Static_assert(sizeof s / sizeof s[0] == sizeof RW_SET / sizeof RW_SET[0],
                   "a name for every setting");
    memcpy(v, s, sizeof s);
    blo__opt_fields(&c->opt, v + RW_NBASE);
    blo__opt_fields(&c->meta_opt, v + RW_NBASE + BLO__OPT_FIELDS);
}

/* Setting i's name into buf. */
static const char *rw_setting_name(int i, char *buf, size_t n) {
    if (i < RW_NBASE) return RW_SET[i];
    i -= RW_NBASE;
    snprintf(buf, n, "%s.%s", i < BLO__OPT_FIELDS ? "opt" : "meta_opt",
             blo__opt_field_names[i % BLO__OPT_FIELDS]);
    return buf;
}

/* The state's tensors in file order: w, w's moments (m, then v, where the kind has them), φ
 * and φ's moments. Returns their count. */
static int rw_state_tensors(const blo__reweight *h, blo__reweight_online *o, blo_tensor **t) {
    int k = 0;
    blo_tensor **const lists[6] = {o->w, o->w_state.m, o->w_state.v,
                                   o->phi, o->phi_state.m, o->phi_state.v};
    for (int l = 0; l < 6; l++)
        for (int i = 0; lists[l] && i < (l < 3 ? h->ny : h->nx == 4 ? 4 : 0); i++)
            if (lists[l][i]) t[k++] = lists[l][i];
    return k;
}
#define RW_MAXT (3 * BLO__RW_MAXY + 12)

static blo_status rw_save(const rw_run *rr, blo__reweight_online *o, int64_t epoch,
                          const blo_rng *g, const int64_t *order, char *err, size_t errlen) {
    const char *path = rr->c->checkpoint;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "reweight: checkpoint path too long");
    FILE *f = fopen(tmp, "wb");
    if (!f) return blo__fail(err, errlen, BLO_ERR_IO, "reweight: %s: cannot write", tmp);
    blo_tensor *t[RW_MAXT];
    int nt = rw_state_tensors(rr->h, o, t);
    int64_t head[6] = {epoch, rr->r->steps, o->w_state.t, o->phi_state.t, rr->h->n, nt};
    uint64_t seed = rr->c->seed;
    double set[RW_NSET], times[3] = {rr->r->best_test_acc, blo__task_seconds() - rr->start,
                                     blo__task_cpu_seconds() - rr->cpu_start};
    rw_settings(rr->c, set);
    bool ok = fwrite(RW_MAGIC, 1, 8, f) == 8 && fwrite(head, sizeof head, 1, f) == 1 &&
              fwrite(&seed, sizeof seed, 1, f) == 1 && fwrite(set, sizeof set, 1, f) == 1 &&
              fwrite(times, sizeof times, 1, f) == 1 && fwrite(g, sizeof *g, 1, f) == 1 &&
              fwrite(order, sizeof(int64_t), (size_t)rr->h->n, f) == (size_t)rr->h->n;
    for (int i = 0; ok && i < nt; i++) ok = blo__tensor_write(f, t[i]);
    ok = (fflush(f) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path)) {
        remove(tmp);
        return blo__fail(err, errlen, BLO_ERR_IO, "reweight: %s: writing the checkpoint failed",
                         path);
    }
    return BLO_OK;
}

/* Restores the state of c->resume into o, *g, order and rr's counters; *epoch: the epochs it
 * holds. The settings, the sizes and every tensor's header are checked before a tensor of the
 * run is overwritten (a refused file ends the run). */
static blo_status rw_load(rw_run *rr, blo__reweight_online *o, int64_t *epoch, blo_rng *g,
                          int64_t *order, char *err, size_t errlen) {
    const char *path = rr->c->resume;
    FILE *f = fopen(path, "rb");
    if (!f)
        return blo__fail(err, errlen, BLO_ERR_IO, "reweight: %s: cannot open the checkpoint",
                         path);
    char magic[8], why[256] = "not a blo reweight checkpoint, or truncated";
    int64_t head[6];
    uint64_t seed;
    double set[RW_NSET], want[RW_NSET], times[3];
    blo_rng rng;
    blo_tensor *t[RW_MAXT];
    int nt = rw_state_tensors(rr->h, o, t);
    rw_settings(rr->c, want);
    bool ok = fread(magic, 1, 8, f) == 8 && !memcmp(magic, RW_MAGIC, 8) &&
              fread(head, sizeof head, 1, f) == 1 && fread(&seed, sizeof seed, 1, f) == 1 &&
              fread(set, sizeof set, 1, f) == 1 && fread(times, sizeof times, 1, f) == 1 &&
              fread(&rng, sizeof rng, 1, f) == 1;
    for (int i = 0; ok && i < RW_NSET; i++)
        if (memcmp(&set[i], &want[i], sizeof(double))) {
            char name[64];
            snprintf(why, sizeof why,
                     "written with %s = %.17g, this run has %.17g (resume with the run's "
                     "settings; only the epochs may change)",
                     rw_setting_name(i, name, sizeof name), set[i], want[i]);
            ok = false;
        }
    if (ok && seed != rr->c->seed) {
        snprintf(why, sizeof why, "written with seed %llu, this run has %llu",
                 (unsigned long long)seed, (unsigned long long)rr->c->seed);
        ok = false;
    }
    if (ok && (head[4] != rr->h->n || head[5] != nt || head[0] < 0 || head[1] < 0)) {
        snprintf(why, sizeof why,
                 "it holds %lld training examples and %lld tensors, this run has %lld and %d "
                 "(another data folder?)", (long long)head[4], (long long)head[5],
                 (long long)rr->h->n, nt);
        ok = false;
    }
    if (ok && head[0] > rr->c->epochs) {
        snprintf(why, sizeof why, "it holds %lld epochs, more than the %lld asked",
                 (long long)head[0], (long long)rr->c->epochs);
        ok = false;
    }
    long start = ok ? ftell(f) : -1, end = -1;
    ok = ok && start >= 0 && !fseek(f, 0, SEEK_END) && (end = ftell(f)) >= 0 &&
         !fseek(f, start, SEEK_SET);
    size_t n = (size_t)rr->h->n, obytes = n * sizeof(int64_t);
    if (ok && (size_t)(end - start) < obytes) {
        snprintf(why, sizeof why, "truncated");
        ok = false;
    }
    ok = ok && fread(order, sizeof(int64_t), n, f) == n;
    for (size_t i = 0; ok && i < n; i++)
        if (order[i] < 0 || order[i] >= (int64_t)n) {
            snprintf(why, sizeof why, "its training order holds a row out of range");
            ok = false;
        }
    /* Two passes over the tensors: check every header and size, then read. */
    for (int pass = 1; ok && pass >= 0; pass--) {
        ok = !fseek(f, start + (long)obytes, SEEK_SET);
        for (int i = 0; ok && i < nt; i++)
            ok = blo__tensor_read(f, t[i], pass, end, why, sizeof why);
    }
    fclose(f);
    if (!ok) return blo__fail(err, errlen, BLO_ERR_FORMAT, "reweight: %s: %s", path, why);
    *epoch = head[0];
    rr->r->steps = head[1];
    o->w_state.t = head[2];
    o->phi_state.t = head[3];
    rr->r->best_test_acc = times[0];
    rr->start -= times[1];
    rr->cpu_start -= times[2];
    *g = rng;
    return BLO_OK;
}

/* The online scheme: epochs of shuffled minibatches (the last partial one dropped). */
static blo_status run_online(rw_run *rr, char *err, size_t errlen, blo_rng *g) {
    const blo_reweight_config *c = rr->c;
    blo__reweight *h = rr->h;
    blo_reweight_result *r = rr->r;
    blo_ctx *lc = blo_ctx_new(0), *sc = blo_ctx_new(0);
    int64_t B = c->batch, M = c->meta_batch, n = h->n;
    int64_t *order = blo_malloc(sizeof(int64_t) * (size_t)n);
    int64_t *midx = blo_malloc(sizeof(int64_t) * (size_t)M);
    double *wts = blo_malloc(sizeof(double) * (size_t)B);
    blo__reweight_online o;
    memset(&o, 0, sizeof o);
    o.opt = c->opt;
    o.meta_opt = c->meta_opt;
    blo_status st = lc && sc && order && midx && wts ? BLO_OK : BLO_ERR_NOMEM;
    for (int i = 0; !st && i < h->ny; i++) {
        o.w[i] = blo_clone(lc, h->y0[i]);
        if (!o.w[i]) st = BLO_ERR_NOMEM;
        else if (blo_set_requires_grad(o.w[i], 1)) st = BLO_ERR_INVALID;
    }
    for (int i = 0; !st && h->nx == 4 && i < 4; i++) {
        o.phi[i] = blo_clone(lc, h->x0[i]);
        if (!o.phi[i]) st = BLO_ERR_NOMEM;
        else if (blo_set_requires_grad(o.phi[i], 1)) st = BLO_ERR_INVALID;
    }
    if (!st) st = blo_opt_state_init(lc, &o.opt, h->ny, o.w, &o.w_state);
    if (!st && h->nx == 4) st = blo_opt_state_init(lc, &o.meta_opt, 4, o.phi, &o.phi_state);
    h->meta_rows = midx;
    if (st) blo__fail(err, errlen, st, "reweight: %s", lc && blo_ctx_status(lc) ? blo_ctx_error(lc) : "out of memory");
    for (int64_t i = 0; i < n; i++) order[i] = i;
    int64_t done = 0; /* epochs before this process: those of the checkpoint resumed */
    if (!st && c->resume) st = rw_load(rr, &o, &done, g, order, err, errlen);
    int root = !h->comm || blo_comm_rank(h->comm) == 0;
    if (!st && done == c->epochs) { /* nothing left: score the classifier again */
        r->epochs = done;
        if (root) r->test_acc = evaluate(h, rr->Xte, rr->yte, o.w, 0);
    }
    double wsum[2] = {0, 0};
    int64_t wcount[2] = {0, 0};
    for (int64_t e = done + 1; !st && e <= c->epochs; e++) {
        blo__shuffle(g, order, n);
        o.opt.lr = c->opt.lr; /* the step of this epoch: divided by 10 after each decay epoch */
        for (int k = 0; k < 2; k++)
            if (c->lr_decay[k] > 0 && e > c->lr_decay[k]) o.opt.lr *= 0.1;
        if (c->meta_wd_follows) /* φ's L2 term scaled as its meta gradient is */
            o.meta_opt.weight_decay = c->meta_opt.weight_decay * (o.opt.lr / c->opt.lr);
        if (c->meta_lr_follows) /* φ's step slowed as the classifier's is */
            o.meta_opt.lr = c->meta_opt.lr * (o.opt.lr / c->opt.lr);
        double loss_sum = 0, gnorm_sum = 0;
        wsum[0] = wsum[1] = 0;
        wcount[0] = wcount[1] = 0;
        for (int64_t b = 0; !st && b < rr->steps_per_epoch; b++) {
            for (int64_t j = 0; j < M; j++) midx[j] = (int64_t)blo_rng_below(g, (uint64_t)h->nm);
            h->batch_rows = order + b * B;
            double loss = NAN;
            st = blo__reweight_step(h, &o, sc, h->nx ? wts : NULL, &loss);
            if (!st && !isfinite(loss)) st = BLO_ERR_NUMERIC;
            if (st) {
                blo__fail(err, errlen, st, "reweight: epoch %lld, step %lld: %s", (long long)e,
                          (long long)b + 1,
                          st == BLO_ERR_NUMERIC ? "the training loss is not finite (lower the "
                                                  "learning rate)"
                                                : blo_ctx_error(sc));
                break;
            }
            loss_sum += loss;
            gnorm_sum += o.meta_grad_norm;
            r->steps++;
            for (int64_t j = 0; h->nx && j < B; j++) {
                int64_t row = order[b * B + j];
                int k = rr->noisy[row] != rr->truth[row];
                wsum[k] += wts[j];
                wcount[k]++;
            }
        }
        double spe = (double)rr->steps_per_epoch; /* the hypergradient column: mean ‖dF/dx‖ */
        int stop = !st && end_epoch(rr, e, o.w, loss_sum / spe, gnorm_sum / spe);
        if (!st && c->checkpoint && root) st = rw_save(rr, &o, e, g, order, err, errlen);
        if (stop) break;
    }
    if (!st && h->nx) {
        r->clean_weight = wcount[0] ? wsum[0] / (double)wcount[0] : NAN;
        r->noisy_weight = wcount[1] ? wsum[1] / (double)wcount[1] : NAN;
    }
    if (!st) weight_curve(h->nx == 4 ? o.phi : NULL, blo_tensor_dtype(h->X), r);
    h->batch_rows = h->meta_rows = NULL;
    blo_free(order);
    blo_free(midx);
    blo_free(wts);
    blo_ctx_free(sc);
    blo_ctx_free(lc);
    return st;
}

static int on_record(const blo_record *rec, void *user) {
    rw_run *rr = user;
    int64_t done = rec->iter + 1, T = rr->c->solver.inner_steps;
    rr->r->steps = done * T;
    if ((done * T) % rr->steps_per_epoch >= T && done < rr->c->solver.outer_iters) return 0;
    blo_tensor *w[BLO__RW_MAXY];
    for (int i = 0; i < rr->h->ny; i++) w[i] = blo_solver_y(rr->s, i);
    return end_epoch(rr, (done * T + rr->steps_per_epoch / 2) / rr->steps_per_epoch, w, rec->lower,
                     rec->hypergrad_norm);
}

/* A registry method through the solver: T inner steps per outer iteration from a warm start,
 * as many outer iterations as make the epochs. */
static blo_status run_solver(rw_run *rr, char *err, size_t errlen) {
    const blo_reweight_config *c = rr->c;
    blo_problem p = blo__reweight_problem(rr->h);
    blo_config sc = c->solver;
    if (sc.inner_steps < 1)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "reweight: the solver needs T >= 1 inner steps");
    sc.outer_iters = c->epochs * rr->steps_per_epoch / sc.inner_steps;
    if (sc.outer_iters < 1) sc.outer_iters = 1;
    sc.seed = c->seed;
    sc.on_record = on_record;
    sc.record_user = rr;
    sc.checkpoint_path = NULL; /* the solver's checkpoint: c->checkpoint, written by rank 0 */
    if (c->checkpoint && (!rr->h->comm || blo_comm_rank(rr->h->comm) == 0)) {
        sc.checkpoint_path = c->checkpoint;
        if (sc.checkpoint_every < 1) /* after every epoch's outer iterations */
            sc.checkpoint_every = rr->steps_per_epoch / sc.inner_steps > 0
                                      ? rr->steps_per_epoch / sc.inner_steps
                                      : 1;
    }
    blo_status st = blo__task_solve(&p, &sc, c->resume, &rr->s, err, errlen);
    if (!st) {
        blo_tensor *phi[4];
        for (int i = 0; i < 4; i++) phi[i] = blo_solver_x(rr->s, i);
        weight_curve(phi, blo_tensor_dtype(rr->h->X), rr->r);
        rr->r->clean_weight = rr->r->noisy_weight = NAN;
    }
    blo_solver_free(rr->s);
    rr->s = NULL;
    return st;
}

blo_status blo_reweight_run(const blo_reweight_config *c, blo_reweight_result *r, char *err,
                            size_t errlen) {
    if (!c || !r) return blo__fail(err, errlen, BLO_ERR_INVALID, "reweight: no configuration");
    memset(r, 0, sizeof *r);
    r->test_acc = r->best_test_acc = r->clean_weight = r->noisy_weight = NAN;
    if (c->n_meta < 1 || c->n_train < 0 || c->n_test < 0 || !(c->noise >= 0 && c->noise <= 1) ||
        !(c->imbalance >= 1) || c->epochs < 0 || (c->dtype != BLO_F32 && c->dtype != BLO_F64) ||
        (unsigned)c->noise_kind > BLO_NOISE_PAIR || (unsigned)c->norm > BLO_REWEIGHT_NORM_SUM ||
        c->lr_decay[0] < 0 || c->lr_decay[1] < 0)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "reweight: the meta set must be >= 1, sizes >= 0, the noise rate in "
                         "[0, 1], the imbalance factor >= 1, epochs >= 0, the dtype f32 or f64, "
                         "the normalisation known, the decay epochs >= 0");
    if (!c->online && (c->lr_decay[0] > 0 || c->lr_decay[1] > 0))
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "reweight: learning-rate decays apply to the online scheme only");
    if (!c->online && c->weights != BLO_REWEIGHT_NETWORK)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "reweight: a solver method learns the weighting network only; per-example "
                         "weights and plain cross-entropy use the online scheme");
    const char *msg = blo_opt_check(&c->opt);
    if (!msg) msg = blo_opt_check(&c->meta_opt);
    if (msg) return blo__fail(err, errlen, BLO_ERR_INVALID, "reweight: %s", msg);
    if (!c->data_dir)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "reweight: no data folder: set data_dir (the CLI's --data)");
    const char *tsplit = c->test_split ? c->test_split : "t10k";
    bool held_out = !strcmp(tsplit, "train");
    if (!held_out && strcmp(tsplit, "t10k"))
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "reweight: test_split '%s': expected t10k or train", tsplit);
    if (held_out && c->n_test < 1)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "reweight: a test set held out of the training split needs n_test >= 1");
    blo_dataset ds, ts;
    memset(&ts, 0, sizeof ts);
    blo_status st = blo_mnist_load(c->data_dir, "train", &ds, err, errlen);
    if (st) return st;
    if (!held_out && (st = blo_mnist_load(c->data_dir, "t10k", &ts, err, errlen))) {
        blo_dataset_free(&ds);
        return st;
    }
    blo_rng g;
    blo_rng_seed(&g, c->seed ^ 0x3e1e1a7ULL);
    int64_t C = ds.num_classes, hold = held_out ? c->n_test : 0;
    int64_t *perm = blo_malloc(sizeof(int64_t) * (size_t)ds.n);
    int64_t *truth = blo_malloc(sizeof(int64_t) * (size_t)ds.n);
    int64_t *noisy = blo_malloc(sizeof(int64_t) * (size_t)ds.n);
    int64_t *counts = blo_malloc(sizeof(int64_t) * (size_t)C), *te = NULL;
    blo_ctx *dctx = blo_ctx_new(0);
    blo__reweight h;
    memset(&h, 0, sizeof h);
    if (!perm || !truth || !noisy || !counts || !dctx) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "reweight: out of memory");
        goto out;
    }
    if (c->n_meta + hold + 1 > ds.n) {
        st = blo__fail(err, errlen, BLO_ERR_INVALID,
                       "reweight: %lld meta + %lld held-out examples leave no training examples "
                       "in %s (%lld)", (long long)c->n_meta, (long long)hold, c->data_dir,
                       (long long)ds.n);
        goto out;
    }
    for (int64_t i = 0; i < ds.n; i++) perm[i] = i;
    blo__shuffle(&g, perm, ds.n);
    /* perm: meta rows, held-out test rows, then the training pool. */
    const int64_t *meta = perm, *held = perm + c->n_meta;
    int64_t *pool = perm + c->n_meta + hold, n = ds.n - c->n_meta - hold;
    if (c->n_train > 0 && c->n_train < n) n = c->n_train;
    if (c->imbalance > 1) { /* keep the first counts[k] rows of class k, in pool order */
        int64_t *have = counts, nmax = -1, m = 0;
        memset(have, 0, sizeof(int64_t) * (size_t)C);
        for (int64_t i = 0; i < n; i++) have[ds.label[pool[i]]]++;
        for (int64_t k = 0; k < C; k++) /* the smallest class present sets the head */
            if (have[k] > 0 && (nmax < 0 || have[k] < nmax)) nmax = have[k];
        blo_long_tail_counts(C, nmax > 0 ? nmax : 1, c->imbalance, counts);
        for (int64_t i = 0; i < n; i++)
            if (counts[ds.label[pool[i]]] > 0) counts[ds.label[pool[i]]]--, pool[m++] = pool[i];
        n = m;
    }
    if (n < c->batch) {
        st = blo__fail(err, errlen, BLO_ERR_INVALID,
                       "reweight: %lld training examples, fewer than a batch of %lld",
                       (long long)n, (long long)c->batch);
        goto out;
    }
    for (int64_t i = 0; i < n; i++) truth[i] = noisy[i] = ds.label[pool[i]];
    r->noisy = 0;
    if (blo_label_noise(&g, noisy, n, C, c->noise, c->noise_kind) < 0) {
        st = blo__fail(err, errlen, BLO_ERR_INVALID, "reweight: bad noise settings");
        goto out;
    }
    for (int64_t i = 0; i < n; i++) r->noisy += noisy[i] != truth[i];
    blo_dataset *tds = held_out ? &ds : &ts;
    int64_t nte = held_out ? c->n_test : c->n_test > 0 && c->n_test < ts.n ? c->n_test : ts.n;
    te = blo_malloc(sizeof(int64_t) * (size_t)nte);
    if (!te) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "reweight: out of memory");
        goto out;
    }
    for (int64_t i = 0; i < nte; i++) te[i] = held_out ? held[i] : i;
    blo_tensor *X = blo_dataset_features(dctx, &ds, c->dtype, pool, n);
    blo_tensor *y = blo_from_i64(dctx, 1, &n, noisy);
    blo_tensor *Xm = blo_dataset_features(dctx, &ds, c->dtype, meta, c->n_meta);
    blo_tensor *ym = blo_dataset_labels(dctx, &ds, meta, c->n_meta);
    blo_tensor *Xte = blo_dataset_features(dctx, tds, c->dtype, te, nte);
    blo_tensor *yte = blo_dataset_labels(dctx, tds, te, nte);
    if (!X || !y || !Xm || !ym || !Xte || !yte) {
        st = blo__fail(err, errlen, blo_ctx_status(dctx), "reweight: %s", blo_ctx_error(dctx));
        goto out;
    }
    st = blo__reweight_init(&h, X, y, Xm, ym, C, c->classifier,
                            c->classifier == BLO_REWEIGHT_CONV ? c->channels : c->hidden,
                            c->vnet_hidden, c->batch, c->meta_batch, c->weights, &g, err, errlen);
    h.norm = c->norm;
    if (!st) st = blo__reweight_distribute(&h, c->comm, err, errlen);
    if (st) goto out;
    r->n_train = n, r->n_meta = c->n_meta, r->n_test = nte;
    rw_run rr = {c, &h, Xte, yte, noisy, truth, r, blo__task_seconds(), blo__task_cpu_seconds(),
                n / c->batch, NULL};
    st = c->online ? run_online(&rr, err, errlen, &g) : run_solver(&rr, err, errlen);
    r->seconds_per_epoch = r->epochs > 0 ? r->seconds / (double)r->epochs : NAN;
out:
    blo__reweight_free(&h);
    blo_ctx_free(dctx);
    blo_free(perm);
    blo_free(truth);
    blo_free(noisy);
    blo_free(counts);
    blo_free(te);
    blo_dataset_free(&ds);
    if (!held_out) blo_dataset_free(&ts);
    return st;
}
