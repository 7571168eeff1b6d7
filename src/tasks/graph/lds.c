/* lds.c — LDS (Franceschi et al. ICML 2019) as a blo_problem: θ the Bernoulli probabilities of
 * the node pairs, y the GCN's weights; samples with the straight-through estimator (the maths
 * is in blo/graph.h). */
#include "blo/graph.h"

#include "../common/common.h"

#include <math.h>
#include <string.h>

void blo_lds_free(blo_lds *l) {
    if (!l) return;
    blo_ctx_free(l->scratch);
    blo_ctx_free(l->ctx);
    memset(l, 0, sizeof *l);
}

blo_status blo_lds_init(blo_lds *l, const blo_graph_tensors *gt, int64_t n, int64_t classes,
                        int64_t hidden, double dropout, double wd, double theta_off, blo_rng *rng,
                        char *err, size_t errlen) {
    memset(l, 0, sizeof *l);
    if (!gt || !gt->x || !gt->adj || n < 2 || classes < 2 || hidden < 1 || !rng ||
        !(dropout >= 0 && dropout < 1) || !(theta_off >= 0 && theta_off <= 1))
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "lds: bad settings (hidden >= 1, dropout in [0, 1), start θ in [0, 1])");
    if (blo_csr_rows(gt->adj) != n)
        return blo__fail(err, errlen, BLO_ERR_SHAPE, "lds: the graph has %lld nodes, not %lld",
                         (long long)blo_csr_rows(gt->adj), (long long)n);
    l->gt = gt;
    l->n = n;
    l->hidden = hidden;
    l->classes = classes;
    l->dropout = dropout;
    l->wd = wd;
    blo_dtype dt = blo_tensor_dtype(gt->xval);
    if (!(l->ctx = blo_ctx_new(0)) || !(l->scratch = blo_ctx_new(0))) {
        blo_lds_free(l);
        return blo__fail(err, errlen, BLO_ERR_NOMEM, "lds: out of memory");
    }
    blo_ctx_set_recording(l->scratch, 0);
    blo_ctx *c = l->ctx;
    int64_t nn[2] = {n, n}, s1[2] = {blo_csr_cols(gt->x), hidden}, s2[2] = {hidden, classes};
    /* θ = theta_off off the graph, 1 on its edges, 0 on the diagonal: built from the dense
     * adjacency, A (1 − off) + off, times 1 − I. */
    blo_tensor *ones = blo_full(c, dt, 2, nn, 1.0), *eye = NULL;
    /* I as the one-hot rows of 0 .. n-1; the dense A is A_csr · I. */
    blo_tensor *ar = blo_tensor_new(c, BLO_I64, 1, &nn[0]);
    int64_t *h = blo_malloc(sizeof(int64_t) * (size_t)n);
    if (ar && h) {
        for (int64_t i = 0; i < n; i++) h[i] = i;
        blo_tensor_copy_from_host(ar, BLO_I64, h);
        eye = blo_one_hot(c, ar, n, dt);
    }
    blo_free(h);
    blo_tensor *dense = blo_spmm(c, gt->adj, gt->adj_val, eye);
    l->offdiag = blo_sub(c, ones, eye);
    l->x0[0] = blo_contiguous(c, blo_mul(c, blo_add_scalar(c, blo_scale(c, dense, 1 - theta_off),
                                                          theta_off), l->offdiag));
    l->y0[0] = blo_tensor_new(c, dt, 2, s1);
    l->y0[1] = blo_tensor_new(c, dt, 2, s2);
    if (!l->x0[0] || !l->y0[0] || !l->y0[1]) {
        blo_status st = blo__fail(err, errlen, blo_ctx_status(c) ? blo_ctx_status(c) : BLO_ERR_NOMEM,
                                  "lds: %s", blo_ctx_error(c));
        blo_lds_free(l);
        return st;
    }
    blo_gcn_glorot(l->y0, rng);
    return BLO_OK;
}

blo_status blo_gcn_glorot(blo_tensor *const *w, blo_rng *rng) {
    blo_status st = BLO_OK;
    for (int i = 0; i < 2 && !st; i++) {
        double a = sqrt(6.0 / (double)(blo_tensor_dim(w[i], 0) + blo_tensor_dim(w[i], 1)));
        st = blo_init_uniform(w[i], rng, -a, a);
    }
    return st;
}

blo_tensor *blo_lds_sym(blo_ctx *ctx, const blo_lds *l, blo_tensor *theta) {
    return blo_mul(ctx, blo_scale(ctx, blo_add(ctx, theta, blo_transpose(ctx, theta, 0, 1)), 0.5),
                   l->offdiag);
}

blo_tensor *blo_lds_sample(blo_ctx *ctx, const blo_lds *l, blo_tensor *theta, blo_rng *rng) {
    int64_t n = l->n, nn[2] = {n, n};
    blo_tensor *u = blo_tensor_new(ctx, blo_tensor_dtype(theta), 2, nn);
    float *h = blo_malloc(sizeof(float) * (size_t)(n * n));
    if (!u || !h) {
        blo_free(h);
        if (u) blo_ctx_set_error(ctx, BLO_ERR_NOMEM, "lds: out of memory for a sample");
        return NULL;
    }
    /* u symmetric; the diagonal is 2, never below a probability. */
    for (int64_t i = 0; i < n; i++) {
        h[i * n + i] = 2;
        for (int64_t j = i + 1; j < n; j++) h[i * n + j] = h[j * n + i] = (float)blo_rng_uniform(rng);
    }
    blo_tensor_copy_from_host(u, BLO_F32, h);
    blo_free(h);
    blo_tensor *s = blo_lds_sym(ctx, l, theta);
    blo_tensor *m = blo_lt(ctx, u, blo_detach(ctx, s)); /* M_ij = [u_ij < S(θ)_ij] */
    if (l->st_base) return blo_add(ctx, m, blo_sub(ctx, s, blo_lds_sym(ctx, l, l->st_base)));
    return blo_add(ctx, s, blo_sub(ctx, m, blo_detach(ctx, s)));
}

blo_gcn_adj blo_lds_adj(blo_ctx *ctx, const blo_lds *l, blo_tensor *theta, blo_rng *rng) {
    if (l->unfused || l->st_base) return (blo_gcn_adj){NULL, NULL, blo_lds_sample(ctx, l, theta, rng), NULL};
    return (blo_gcn_adj){NULL, NULL, NULL, blo_st_gcn_adj(ctx, theta, rng)};
}

static blo_tensor *lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                         const blo_eval *ev, void *user) {
    blo_lds *l = user;
    blo_gcn_adj a = blo_lds_adj(ctx, l, x[0], ev->rng);
    blo_tensor *z = blo_gcn_logits(ctx, &a, l->gt->x, l->gt->xval, y[0], y[1], l->dropout, 1,
                                   ev->rng);
    return blo_gcn_loss(ctx, z, l->gt->idx[0], l->gt->lab[0], y[0], l->wd);
}

static blo_tensor *upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                         const blo_eval *ev, void *user) {
    blo_lds *l = user;
    blo_gcn_adj a = blo_lds_adj(ctx, l, x[0], ev->rng);
    blo_tensor *z = blo_gcn_logits(ctx, &a, l->gt->x, l->gt->xval, y[0], y[1], 0, 0, NULL);
    return blo_gcn_loss(ctx, z, l->gt->idx[1], l->gt->lab[1], NULL, 0);
}

blo_status blo_lds_project(int nx, blo_tensor *const *x, void *user) {
    blo_lds *l = user;
    if (nx != 1) return BLO_ERR_INVALID;
    blo_ctx *c = l->scratch;
    blo_mark mk = blo_ctx_mark(c);
    blo_ctx_clear_error(c);
    blo_tensor *s = blo_clamp(c, blo_lds_sym(c, l, blo_detach(c, x[0])), 0, 1);
    if (l->mask) s = blo_mul(c, s, l->mask);
    blo_status st = s ? blo_copy_into(x[0], s) : blo_ctx_status(c);
    blo_ctx_rewind(c, mk);
    return st;
}

blo_status blo_lds_set_candidates(blo_lds *l, const int64_t *pairs, int64_t m, char *err,
                                  size_t errlen) {
    int64_t n = l->n, nn[2] = {n, n};
    for (int64_t e = 0; e < m; e++)
        if (pairs[2 * e] < 0 || pairs[2 * e] >= n || pairs[2 * e + 1] < 0 ||
            pairs[2 * e + 1] >= n || pairs[2 * e] == pairs[2 * e + 1])
            return blo__fail(err, errlen, BLO_ERR_INVALID,
                             "lds: candidate pair %lld (%lld, %lld) is not two nodes of 0 .. %lld",
                             (long long)e, (long long)pairs[2 * e], (long long)pairs[2 * e + 1],
                             (long long)(n - 1));
    double *h = blo_malloc(sizeof(double) * (size_t)(n * n));
    blo_tensor *mask = h ? blo_tensor_new(l->ctx, blo_tensor_dtype(l->x0[0]), 2, nn) : NULL;
    blo_status st = mask ? BLO_OK : BLO_ERR_NOMEM;
    if (!st) {
        memset(h, 0, sizeof(double) * (size_t)(n * n));
        for (int64_t e = 0; e < m; e++) {
            int64_t a = pairs[2 * e], b = pairs[2 * e + 1];
            h[a * n + b] = h[b * n + a] = 1;
        }
        st = blo_tensor_copy_from_host(mask, BLO_F64, h);
    }
    blo_free(h);
    blo_ctx *c = l->scratch;
    blo_mark mk = blo_ctx_mark(c);
    blo_tensor *x0 = st ? NULL : blo_mul(c, l->x0[0], mask);
    if (!st) st = x0 ? blo_copy_into(l->x0[0], x0) : BLO_ERR_NOMEM;
    blo_ctx_rewind(c, mk);
    if (st) return blo__fail(err, errlen, st, "lds: out of memory for the candidate set");
    l->mask = mask;
    return BLO_OK;
}

blo_problem blo_lds_problem(blo_lds *l) {
    blo_problem p = blo__task_problem(1, l->x0, 2, l->y0, upper, lower, l);
    p.x_lo = 0;
    p.x_hi = 1;
    p.project_x = blo_lds_project;
    return p;
}
