/* run.c — the graph task end to end: load a three-part graph, remove a random part of its
 * edges, train the GCN on what is left (the baseline), run LDS on it, and the frozen-θ
 * ablation (LDS's schedule and sampling with θ kept at its start). */
#include "blo/graph.h"

#include "../common/common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

blo_graph_config blo_graph_default(void) {
    blo_graph_config c;
    memset(&c, 0, sizeof c);
    c.keep_edges = 1;
    c.knn = -1;
    c.row_normalize = 1;
    c.hidden = 16;
    c.dropout = 0.5;
    c.wd = 5e-4;
    c.gcn_lr = 0.01;
    c.gcn_epochs = 200;
    c.lds = 1;
    c.theta_off = 0;
    c.samples = 16;
    c.patience = -1;
    c.dtype = BLO_F32;
    c.solver = blo_config_default();
    c.solver.method = "trhg";
    c.solver.inner = blo_opt_adam(0.01);
    c.solver.inner_steps = 5;
    c.solver.trhg_window = 5;
    c.solver.init = BLO_INIT_WARM;
    c.solver.outer = blo_opt_sgd(1.0);
    c.solver.outer_iters = 50;
    c.solver.diverge_limit = 1e4;
    return c;
}

/* Accuracy on split s of the softmax averaged over k forward passes; A sampled from θ when
 * l is given, the fixed graph otherwise. */
static double accuracy(const blo_graph_tensors *gt, const blo_lds *l, blo_tensor *theta,
                       blo_tensor *const *w, int s, int64_t k, blo_rng *rng) {
    blo_ctx *c = blo_ctx_new(0);
    if (!c) return NAN;
    blo_ctx_set_recording(c, 0);
    blo_tensor *p = NULL;
    for (int64_t i = 0; i < k; i++) {
        blo_gcn_adj a = {gt->adj, gt->adj_val, NULL, NULL};
        if (l) a = blo_lds_adj(c, l, theta, rng);
        blo_tensor *z = blo_gcn_logits(c, &a, gt->x, gt->xval, w[0], w[1], 0, 0, NULL);
        blo_tensor *q = blo_softmax(c, blo_index_select(c, z, 0, gt->idx[s]), 1);
        p = p ? blo_add(c, p, q) : q;
    }
    double acc = p ? blo_accuracy(p, gt->lab[s]) : NAN;
    blo_ctx_free(c);
    return acc;
}

/* ---- the GCN alone ---- */
typedef struct gcn_fit {
    const blo_graph_tensors *gt;
    const blo_graph_config *c;
    blo_rng *rng;
} gcn_fit;

static blo_tensor *gcn_fit_loss(blo_ctx *sc, blo_tensor *const *w, int64_t t, void *user) {
    (void)t;
    gcn_fit *g = user;
    blo_gcn_adj a = {g->gt->adj, g->gt->adj_val, NULL, NULL};
    blo_tensor *z = blo_gcn_logits(sc, &a, g->gt->x, g->gt->xval, w[0], w[1], g->c->dropout, 1,
                                   g->rng);
    return blo_gcn_loss(sc, z, g->gt->idx[0], g->gt->lab[0], w[0], g->c->wd);
}

static blo_status run_gcn(const blo_graph_config *c, const blo_graph_tensors *gt, const blo_lds *l,
                          blo_rng *rng, blo_graph_result *r, char *err, size_t errlen) {
    blo_ctx *mc = blo_ctx_new(0);
    blo_tensor *w[2] = {mc ? blo_clone(mc, l->y0[0]) : NULL, mc ? blo_clone(mc, l->y0[1]) : NULL};
    if (!w[0] || !w[1]) {
        blo_ctx_free(mc);
        return blo__fail(err, errlen, BLO_ERR_NOMEM, "graph: out of memory");
    }
    blo_set_requires_grad(w[0], 1);
    blo_set_requires_grad(w[1], 1);
    gcn_fit g = {gt, c, rng};
    blo__fit f = {"graph: GCN", NULL, blo_opt_adam(c->gcn_lr), 2, w, c->gcn_epochs,
                  gcn_fit_loss, NULL, &g};
    blo_status st = blo__fit_run(&f, err, errlen);
    if (!st) {
        r->gcn_val = accuracy(gt, NULL, NULL, w, 1, 1, rng);
        r->gcn_test = accuracy(gt, NULL, NULL, w, 2, 1, rng);
    }
    blo_ctx_free(mc);
    return st;
}

/* ---- LDS ---- */
typedef struct lds_run {
    const blo_graph_config *c;
    const blo_graph_tensors *gt;
    const blo_lds *l;
    blo_solver *s;
    blo_rng rng;
    int report;            /* hand records to c->on_iter */
    /* Early stopping (c->patience > 0): the early-stopping set is split 3 of es_gt, and the
     * best θ and y so far are kept in best[] (in the lds context). */
    const blo_graph_tensors *es_gt;
    blo_tensor *best[3];
    double best_acc;
    int64_t best_iter, wait;
} lds_run;

static int64_t count_edges(blo_tensor *theta, int64_t n) {
    blo_ctx *c = blo_ctx_new(0);
    if (!c) return -1;
    blo_ctx_set_recording(c, 0);
    int64_t e = (int64_t)llround(blo_tensor_item(blo_sum_all(c, blo_gt(c, theta,
                                 blo_full(c, blo_tensor_dtype(theta), 0, NULL, 0.5)))) / 2);
    (void)n;
    blo_ctx_free(c);
    return e;
}

static int lds_on_record(const blo_record *rec, void *user) {
    lds_run *lr = user;
    blo_tensor *theta = blo_solver_x(lr->s, 0), *w[2] = {blo_solver_y(lr->s, 0), blo_solver_y(lr->s, 1)};
    int stop = 0, every = (int)lr->c->restart_every;
    int cycle_end = every <= 0 || (rec->iter + 1) % every == 0;
    if (lr->es_gt && cycle_end) { /* early stopping on the held-out half of the validation split */
        double acc = accuracy(lr->es_gt, lr->l, theta, w, 2, lr->c->samples, &lr->rng);
        if (acc > lr->best_acc) {
            lr->best_acc = acc;
            lr->best_iter = rec->iter;
            lr->wait = 0;
            if (blo_copy_into(lr->best[0], theta) || blo_copy_into(lr->best[1], w[0]) ||
                blo_copy_into(lr->best[2], w[1]))
                return 1;
        } else {
            stop = ++lr->wait >= lr->c->patience;
        }
    }
    if (lr->report && lr->c->on_iter) {
        blo_graph_iter it = {*rec, accuracy(lr->gt, lr->l, theta, w, 1, 1, &lr->rng),
                             count_edges(theta, lr->l->n)};
        stop |= lr->c->on_iter(&it, lr->c->user);
    }
    if (every > 0 && cycle_end && !stop && blo_gcn_glorot(w, &lr->rng)) return 1; /* the next cycle */
    return stop;
}

static blo_status save_graph(const char *path, blo_tensor *theta, int64_t n, char *err,
                             size_t errlen) {
    double *v = blo_malloc(sizeof(double) * (size_t)(n * n));
    FILE *f = v ? fopen(path, "w") : NULL;
    if (!f) {
        blo_free(v);
        return blo__fail(err, errlen, BLO_ERR_IO, "%s: cannot write the graph", path);
    }
    blo_tensor_to_f64(theta, v);
    fprintf(f, "# i j theta_ij: the pairs with theta > 1/2 (i < j), from blo graph\n");
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++)
            if (v[i * n + j] > 0.5) fprintf(f, "%lld %lld %.6g\n", (long long)i, (long long)j, v[i * n + j]);
    blo_free(v);
    if (fclose(f)) return blo__fail(err, errlen, BLO_ERR_IO, "%s: write failed", path);
    return BLO_OK;
}

/* The ablation's projection: θ back to its start after every outer step. */
static blo_status freeze(int nx, blo_tensor *const *x, void *user) {
    const blo_lds *l = user;
    return nx == 1 ? blo_copy_into(x[0], l->x0[0]) : BLO_ERR_INVALID;
}

/* LDS (frozen = 0) or its ablation with θ fixed at its start (frozen = 1). With early
 * stopping, es_gt holds the early-stopping set as its split 2 and the scores are those of the
 * best outer iteration. */
static blo_status run_lds(const blo_graph_config *c, const blo_graph_tensors *gt,
                          const blo_graph_tensors *es_gt, blo_lds *l, int frozen, double *val,
                          double *test, blo_graph_result *r, double save_above, char *err,
                          size_t errlen) {
    blo_problem p = blo_lds_problem(l);
    blo_config sc = c->solver;
    lds_run lr;
    memset(&lr, 0, sizeof lr);
    lr.c = c, lr.gt = gt, lr.l = l, lr.report = !frozen, lr.es_gt = es_gt;
    lr.best_acc = -1, lr.best_iter = -1;
    blo_rng_seed(&lr.rng, c->seed + 17);
    if (frozen) {
        p.project_x = freeze;
        sc.checkpoint_path = NULL;
    }
    if (es_gt) {
        lr.best[0] = blo_clone(l->ctx, l->x0[0]);
        lr.best[1] = blo_clone(l->ctx, l->y0[0]);
        lr.best[2] = blo_clone(l->ctx, l->y0[1]);
        if (!lr.best[0] || !lr.best[1] || !lr.best[2])
            return blo__fail(err, errlen, BLO_ERR_NOMEM, "graph: out of memory");
    }
    sc.on_record = lr.report || es_gt || c->restart_every > 0 ? lds_on_record : NULL;
    sc.record_user = &lr;
    blo_status st = blo__task_solve(&p, &sc, frozen ? NULL : c->resume, &lr.s, err, errlen);
    if (!st) {
        blo_tensor *theta = blo_solver_x(lr.s, 0), *w[2] = {blo_solver_y(lr.s, 0), blo_solver_y(lr.s, 1)};
        if (es_gt && lr.best_iter >= 0) theta = lr.best[0], w[0] = lr.best[1], w[1] = lr.best[2];
        *val = accuracy(gt, l, theta, w, 1, c->samples, &lr.rng);
        *test = accuracy(gt, l, theta, w, 2, c->samples, &lr.rng);
        if (!frozen) {
            r->edges_learned = count_edges(theta, l->n);
            r->iters = blo_solver_iter(lr.s);
            r->best_iter = es_gt ? lr.best_iter : -1;
            r->es_acc = es_gt ? lr.best_acc : NAN;
            blo_solver_values(lr.s, &r->upper, &r->lower);
            if (c->save_graph && (!es_gt || lr.best_acc > save_above))
                st = save_graph(c->save_graph, theta, l->n, err, errlen);
        }
    }
    blo_solver_free(lr.s);
    return st;
}

/* θ on the candidate set: the kept edges of g and the kNN graph of its features with k
 * neighbours (g's edges are replaced by the latter). */
static blo_status set_candidates(blo_lds *l, blo_graph_data *g, const unsigned char *keep,
                                 int64_t k, char *err, size_t errlen) {
    int64_t m = 0;
    for (int64_t e = 0; e < g->n_edges; e++) m += keep[e] != 0;
    int64_t *kept = blo_malloc(sizeof(int64_t) * (size_t)(2 * m + 1)), q = 0;
    if (!kept) return blo__fail(err, errlen, BLO_ERR_NOMEM, "graph: out of memory");
    for (int64_t e = 0; e < g->n_edges; e++)
        if (keep[e]) kept[2 * q] = g->edges[2 * e], kept[2 * q + 1] = g->edges[2 * e + 1], q++;
    blo_status st = blo_graph_knn(g, k, err, errlen);
    int64_t *all = st ? NULL : blo_malloc(sizeof(int64_t) * (size_t)(2 * (m + g->n_edges) + 1));
    if (!st && !all) st = blo__fail(err, errlen, BLO_ERR_NOMEM, "graph: out of memory");
    if (!st) {
        memcpy(all, kept, sizeof(int64_t) * (size_t)(2 * m));
        memcpy(all + 2 * m, g->edges, sizeof(int64_t) * (size_t)(2 * g->n_edges));
        st = blo_lds_set_candidates(l, all, m + g->n_edges, err, errlen);
    }
    blo_free(all);
    blo_free(kept);
    return st;
}

/* Early stopping: the validation split's even positions stay the validation set (split 1 of
 * gt), its odd positions become split 2 of es (which shares gt's features and graph). */
static blo_status split_validation(blo_ctx *ctx, blo_graph_tensors *gt, blo_graph_tensors *es,
                                   char *err, size_t errlen) {
    int64_t k = blo_tensor_numel(gt->idx[1]), half[2] = {(k + 1) / 2, k / 2};
    if (half[1] < 1)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "graph: early stopping needs at least 2 validation nodes, the data has %lld",
                         (long long)k);
    int64_t *idx = blo_malloc(sizeof(int64_t) * (size_t)(2 * k)), *lab = idx ? idx + k : NULL;
    if (!idx) return blo__fail(err, errlen, BLO_ERR_NOMEM, "graph: out of memory");
    blo_status st = blo_tensor_copy_to_host(gt->idx[1], BLO_I64, idx);
    if (!st) st = blo_tensor_copy_to_host(gt->lab[1], BLO_I64, lab);
    *es = *gt;
    blo_tensor *part[2][2];
    for (int h = 0; !st && h < 2; h++) {
        int64_t *pi = blo_malloc(sizeof(int64_t) * (size_t)(2 * half[h])), *pl = pi ? pi + half[h] : NULL;
        if (!pi) {
            st = BLO_ERR_NOMEM;
            break;
        }
        for (int64_t i = 0; i < half[h]; i++) pi[i] = idx[2 * i + h], pl[i] = lab[2 * i + h];
        part[h][0] = blo_tensor_new(ctx, BLO_I64, 1, &half[h]);
        part[h][1] = blo_tensor_new(ctx, BLO_I64, 1, &half[h]);
        if (!part[h][0] || !part[h][1]) st = BLO_ERR_NOMEM;
        if (!st) st = blo_tensor_copy_from_host(part[h][0], BLO_I64, pi);
        if (!st) st = blo_tensor_copy_from_host(part[h][1], BLO_I64, pl);
        blo_free(pi);
    }
    blo_free(idx);
    if (st) return blo__fail(err, errlen, st, "graph: splitting the validation nodes: out of memory");
    gt->idx[1] = part[0][0], gt->lab[1] = part[0][1];
    es->idx[2] = part[1][0], es->lab[2] = part[1][1];
    return BLO_OK;
}

blo_status blo_graph_run(const blo_graph_config *c, blo_graph_result *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    r->gcn_val = r->gcn_test = r->lds_val = r->lds_test = r->frozen_val = r->frozen_test = NAN;
    r->upper = r->lower = r->es_acc = NAN;
    r->best_iter = -1;
    if (!(c->keep_edges >= 0 && c->keep_edges <= 1) || c->hidden < 1 || c->gcn_epochs < 0 ||
        c->samples < 1 || !(c->dropout >= 0 && c->dropout < 1) || c->knn < -1 || c->patience < -1 || c->candidates < 0 ||
        c->restart_every < 0 || c->n_lr_grid < 0 || c->n_lr_grid > 8 ||
        (c->n_lr_grid > 0 && c->patience == 0))
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "graph: bad settings (keep-edges in [0, 1], hidden >= 1, samples >= 1, "
                         "dropout in [0, 1), knn >= -1, patience >= -1, candidates >= 0, restart-every >= 0, an outer-lr "
                         "grid of at most 8 values and only with patience != 0)");
    blo_graph_data g;
    blo_status st = blo_graph_load(c->data_dir, &g, err, errlen);
    if (st) return st;
    r->knn = c->knn > 0 ? c->knn : c->knn < 0 && g.n_edges == 0 ? 10 : 0;
    if (r->knn && (st = blo_graph_knn(&g, r->knn, err, errlen))) {
        blo_graph_data_free(&g);
        return st;
    }
    /* The default early stopping: on when the early-stopping half of the validation split
     * has 50 nodes or more; a smaller one saturates (10 nodes: steps of 10 %) and stops the
     * run at once. */
    blo_graph_config cr = *c;
    if (cr.patience < 0) cr.patience = g.split_n[1] >= 100 ? 10 : 0;
    c = &cr;
    r->patience = c->patience;
    if (c->n_lr_grid > 0 && c->patience < 1) {
        blo_graph_data_free(&g);
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "graph: an outer-lr grid is chosen on the early-stopping set: patience >= 1");
    }
    double t0 = blo__task_seconds();
    blo_rng rng;
    blo_rng_seed(&rng, c->seed);
    /* Keep round(P m) of the m edges, drawn uniformly. */
    int64_t m = g.n_edges, k = (int64_t)llround(c->keep_edges * (double)m);
    int64_t *perm = blo_malloc(sizeof(int64_t) * (size_t)(m + 1));
    unsigned char *keep = blo_calloc((size_t)m + 1, 1);
    blo_ctx *ctx = blo_ctx_new(0);
    blo_graph_tensors gt, es;
    blo_lds l;
    memset(&l, 0, sizeof l);
    if (!perm || !keep || !ctx) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "graph: out of memory");
        goto out;
    }
    for (int64_t e = 0; e < m; e++) perm[e] = e;
    blo__draw_first(&rng, perm, m, k);
    for (int64_t e = 0; e < k; e++) keep[perm[e]] = 1;
    r->n = g.n;
    r->edges_given = m;
    r->edges_kept = k;
    if ((st = blo_graph_tensors_make(ctx, &g, keep, c->row_normalize, c->dtype, &gt, err, errlen)))
        goto out;
    if ((st = blo_lds_init(&l, &gt, g.n, g.classes, c->hidden, c->dropout, c->wd, c->theta_off,
                           &rng, err, errlen)))
        goto out;
    if (c->candidates > 0 && (st = set_candidates(&l, &g, keep, c->candidates, err, errlen)))
        goto out;
    if (!c->lds || c->baseline)
        if ((st = run_gcn(c, &gt, &l, &rng, r, err, errlen))) goto out;
    if (c->lds && c->patience > 0 && (st = split_validation(ctx, &gt, &es, err, errlen))) goto out;
    const blo_graph_tensors *esp = c->patience > 0 ? &es : NULL;
    r->outer_lr = c->solver.outer.lr;
    if (c->lds && c->n_lr_grid == 0 &&
        (st = run_lds(c, &gt, esp, &l, 0, &r->lds_val, &r->lds_test, r, -1, err, errlen)))
        goto out;
    for (int i = 0; c->lds && i < c->n_lr_grid; i++) { /* the best on the early-stopping set */
        blo_graph_config ci = *c;
        blo_graph_result ri = *r;
        ci.solver.outer.lr = c->lr_grid[i];
        if ((st = run_lds(&ci, &gt, esp, &l, 0, &ri.lds_val, &ri.lds_test, &ri,
                          i ? r->es_acc : -1, err, errlen)))
            goto out;
        if (i == 0 || ri.es_acc > r->es_acc) {
            *r = ri;
            r->outer_lr = c->lr_grid[i];
        }
    }
    if (c->lds && c->baseline &&
        (st = run_lds(c, &gt, esp, &l, 1, &r->frozen_val, &r->frozen_test, r, -1, err, errlen)))
        goto out;
out:
    r->seconds = blo__task_seconds() - t0;
    blo_lds_free(&l);
    blo_ctx_free(ctx);
    blo_free(perm);
    blo_free(keep);
    blo_graph_data_free(&g);
    return st;
}
