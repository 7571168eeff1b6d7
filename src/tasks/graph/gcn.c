/* gcn.c — the two-layer GCN of Kipf & Welling (ICLR 2017) on a weighted, differentiable
 * adjacency, sparse or dense (the maths is in blo/graph.h), and the graph's tensors. */
#include "blo/graph.h"

#include "../common/common.h"

#include <string.h>

/* A h: sparse product or dense matmul. */
static blo_tensor *adj_times(blo_ctx *ctx, const blo_gcn_adj *a, blo_tensor *h) {
    if (a->csr) return blo_spmm(ctx, a->csr, a->values, h);
    return blo_matmul(ctx, a->dense, h);
}

blo_tensor *blo_gcn_propagate(blo_ctx *ctx, const blo_gcn_adj *a, blo_tensor *h) {
    if (!h) return NULL;
    if (!a || (!a->norm && (a->csr ? !a->values : !a->dense))) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_gcn_propagate: no adjacency");
        return NULL;
    }
    if (a->norm) return blo_matmul(ctx, a->norm, h);
    int64_t n = blo_tensor_dim(h, 0), col[2] = {n, 1};
    /* D = 1 + row sums of A, as an [N, 1] column; Â h = d (A (d h)) + d² h with d = D^-½. */
    blo_tensor *deg = blo_add_scalar(ctx, adj_times(ctx, a, blo_full(ctx, blo_tensor_dtype(h), 2, col, 1.0)), 1.0);
    blo_tensor *d = blo_pow_scalar(ctx, deg, -0.5);
    blo_tensor *dh = blo_mul(ctx, d, h);
    return blo_add(ctx, blo_mul(ctx, d, adj_times(ctx, a, dh)), blo_mul(ctx, d, dh));
}

blo_tensor *blo_gcn_logits(blo_ctx *ctx, const blo_gcn_adj *a, const blo_csr *x,
                           blo_tensor *xval, blo_tensor *W1, blo_tensor *W2, double dropout,
                           int training, blo_rng *rng) {
    int drop = training && dropout > 0;
    blo_tensor *xv = drop ? blo_dropout(ctx, xval, dropout, 1, rng) : xval;
    blo_tensor *h = blo_relu(ctx, blo_gcn_propagate(ctx, a, blo_spmm(ctx, x, xv, W1)));
    if (drop) h = blo_dropout(ctx, h, dropout, 1, rng);
    return blo_gcn_propagate(ctx, a, blo_matmul(ctx, h, W2));
}

blo_tensor *blo_gcn_loss(blo_ctx *ctx, blo_tensor *logits, blo_tensor *idx, blo_tensor *lab,
                         blo_tensor *W1, double wd) {
    blo_tensor *ce = blo_cross_entropy(ctx, blo_index_select(ctx, logits, 0, idx), lab, NULL,
                                       BLO_REDUCE_MEAN);
    if (!W1 || wd == 0) return ce;
    return blo_add(ctx, ce, blo_scale(ctx, blo_dot(ctx, W1, W1), 0.5 * wd));
}

/* A CSR pattern with values from row pointers, columns and float values on the host. */
static blo_status csr_make(blo_ctx *ctx, int64_t rows, int64_t cols, int64_t nnz,
                           const int64_t *rowptr, const int64_t *col, const double *val,
                           blo_dtype dt, blo_csr **csr, blo_tensor **values) {
    *csr = blo_csr_new(ctx, rows, cols, nnz, rowptr, col);
    int64_t shape = nnz;
    *values = blo_tensor_new(ctx, dt, 1, &shape);
    if (!*csr || !*values) return blo_ctx_status(ctx) ? blo_ctx_status(ctx) : BLO_ERR_NOMEM;
    return blo_tensor_copy_from_host(*values, BLO_F64, val);
}

blo_status blo_graph_tensors_make(blo_ctx *ctx, const blo_graph_data *g, const unsigned char *keep,
                                  int row_normalize, blo_dtype dt, blo_graph_tensors *t, char *err,
                                  size_t errlen) {
    memset(t, 0, sizeof *t);
    const blo_dataset *f = &g->features;
    int64_t n = g->n, m = 0;
    for (int64_t e = 0; e < g->n_edges; e++) m += !keep || keep[e];
    double *val = blo_malloc(sizeof(double) * (size_t)(f->nnz + 2 * m + 1));
    int64_t *rowptr = blo_calloc((size_t)n + 1, sizeof(int64_t));
    int64_t *col = blo_malloc(sizeof(int64_t) * (size_t)(2 * m + 1)), *fill = NULL;
    blo_status st = val && rowptr && col ? BLO_OK : BLO_ERR_NOMEM;
    /* Features: each row divided by its sum, or as read. */
    for (int64_t i = 0; !st && i < n; i++) {
        double s = 0;
        for (int64_t k = f->rowptr[i]; k < f->rowptr[i + 1]; k++) s += f->val[k];
        if (!row_normalize) s = 1;
        for (int64_t k = f->rowptr[i]; k < f->rowptr[i + 1]; k++)
            val[k] = s != 0 ? f->val[k] / s : 0;
    }
    if (!st) st = csr_make(ctx, n, f->d, f->nnz, f->rowptr, f->col, val, dt, &t->x, &t->xval);
    /* Edges, both directions; columns ascend within a row because the pairs are sorted and
     * the (j, i) entries of row j come from rows i < j before the (j, k > j) ones. */
    if (!st) {
        for (int64_t e = 0; e < g->n_edges; e++)
            if (!keep || keep[e]) rowptr[g->edges[2 * e] + 1]++, rowptr[g->edges[2 * e + 1] + 1]++;
        for (int64_t i = 0; i < n; i++) rowptr[i + 1] += rowptr[i];
        fill = blo_malloc(sizeof(int64_t) * (size_t)n);
        if (!fill) st = BLO_ERR_NOMEM;
    }
    if (!st) {
        memcpy(fill, rowptr, sizeof(int64_t) * (size_t)n);
        for (int64_t e = 0; e < g->n_edges; e++) /* the lower halves (j, i), i < j, first */
            if (!keep || keep[e]) col[fill[g->edges[2 * e + 1]]++] = g->edges[2 * e];
        for (int64_t e = 0; e < g->n_edges; e++)
            if (!keep || keep[e]) col[fill[g->edges[2 * e]]++] = g->edges[2 * e + 1];
        for (int64_t k = 0; k < 2 * m; k++) val[k] = 1;
        st = csr_make(ctx, n, n, 2 * m, rowptr, col, val, dt, &t->adj, &t->adj_val);
    }
    for (int s = 0; !st && s < 3; s++) {
        int64_t k = g->split_n[s];
        t->idx[s] = blo_tensor_new(ctx, BLO_I64, 1, &k);
        t->lab[s] = blo_tensor_new(ctx, BLO_I64, 1, &k);
        int64_t *lab = blo_malloc(sizeof(int64_t) * (size_t)(k + 1));
        if (!t->idx[s] || !t->lab[s] || !lab) st = BLO_ERR_NOMEM;
        for (int64_t i = 0; !st && i < k; i++) lab[i] = g->label[g->split[s][i]];
        if (!st) st = blo_tensor_copy_from_host(t->idx[s], BLO_I64, g->split[s]);
        if (!st) st = blo_tensor_copy_from_host(t->lab[s], BLO_I64, lab);
        blo_free(lab);
    }
    blo_free(val);
    blo_free(rowptr);
    blo_free(col);
    blo_free(fill);
    if (st)
        return blo__fail(err, errlen, st, "graph: %s",
                         blo_ctx_status(ctx) ? blo_ctx_error(ctx) : "out of memory");
    return BLO_OK;
}
