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
        blo_gcn_adj a = {gt->adj, gt->adj_val, NULL};
        if (l) a = (blo_gcn_adj){NULL, NULL, blo_lds_sample(c, l, theta, rng)};
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
    blo_gcn_adj a = {g->gt->adj, g->gt->adj_val, NULL};
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
    if (!lr->c->on_iter) return 0;
    blo_tensor *theta = blo_solver_x(lr->s, 0), *w[2] = {blo_solver_y(lr->s, 0), blo_solver_y(lr->s, 1)};
    blo_graph_iter it = {*rec, accuracy(lr->gt, lr->l, theta, w, 1, 1, &lr->rng),
                         count_edges(theta, lr->l->n)};
    return lr->c->on_iter(&it, lr->c->user);
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

/* LDS (frozen = 0) or its ablation with θ fixed at its start (frozen = 1). */
static blo_status run_lds(const blo_graph_config *c, const blo_graph_tensors *gt, blo_lds *l,
                          int frozen, double *val, double *test, blo_graph_result *r, char *err,
                          size_t errlen) {
    blo_problem p = blo_lds_problem(l);
    blo_config sc = c->solver;
    lds_run lr = {c, gt, l, NULL, {{0}}};
    blo_rng_seed(&lr.rng, c->seed + 17);
    if (frozen) {
        p.project_x = freeze;
        sc.checkpoint_path = NULL;
    }
    sc.on_record = frozen ? NULL : lds_on_record;
    sc.record_user = &lr;
    blo_status st = blo__task_solve(&p, &sc, frozen ? NULL : c->resume, &lr.s, err, errlen);
    if (!st) {
        blo_tensor *theta = blo_solver_x(lr.s, 0), *w[2] = {blo_solver_y(lr.s, 0), blo_solver_y(lr.s, 1)};
        *val = accuracy(gt, l, theta, w, 1, c->samples, &lr.rng);
        *test = accuracy(gt, l, theta, w, 2, c->samples, &lr.rng);
        if (!frozen) {
            r->edges_learned = count_edges(theta, l->n);
            r->iters = blo_solver_iter(lr.s);
            blo_solver_values(lr.s, &r->upper, &r->lower);
            if (c->save_graph) st = save_graph(c->save_graph, theta, l->n, err, errlen);
        }
    }
    blo_solver_free(lr.s);
    return st;
}

blo_status blo_graph_run(const blo_graph_config *c, blo_graph_result *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    r->gcn_val = r->gcn_test = r->lds_val = r->lds_test = r->frozen_val = r->frozen_test = NAN;
    r->upper = r->lower = NAN;
    if (!(c->keep_edges >= 0 && c->keep_edges <= 1) || c->hidden < 1 || c->gcn_epochs < 0 ||
        c->samples < 1 || !(c->dropout >= 0 && c->dropout < 1) || c->knn < -1)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "graph: bad settings (keep-edges in [0, 1], hidden >= 1, samples >= 1, "
                         "dropout in [0, 1), knn >= -1)");
    blo_graph_data g;
    blo_status st = blo_graph_load(c->data_dir, &g, err, errlen);
    if (st) return st;
    r->knn = c->knn > 0 ? c->knn : c->knn < 0 && g.n_edges == 0 ? 10 : 0;
    if (r->knn && (st = blo_graph_knn(&g, r->knn, err, errlen))) {
        blo_graph_data_free(&g);
        return st;
    }
    double t0 = blo__task_seconds();
    blo_rng rng;
    blo_rng_seed(&rng, c->seed);
    /* Keep round(P m) of the m edges, drawn uniformly. */
    int64_t m = g.n_edges, k = (int64_t)llround(c->keep_edges * (double)m);
    int64_t *perm = blo_malloc(sizeof(int64_t) * (size_t)(m + 1));
    unsigned char *keep = blo_calloc((size_t)m + 1, 1);
    blo_ctx *ctx = blo_ctx_new(0);
    blo_graph_tensors gt;
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
    if (!c->lds || c->baseline)
        if ((st = run_gcn(c, &gt, &l, &rng, r, err, errlen))) goto out;
    if (c->lds && (st = run_lds(c, &gt, &l, 0, &r->lds_val, &r->lds_test, r, err, errlen))) goto out;
    if (c->lds && c->baseline &&
        (st = run_lds(c, &gt, &l, 1, &r->frozen_val, &r->frozen_test, r, err, errlen)))
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
