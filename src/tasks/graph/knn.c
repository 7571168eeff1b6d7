/* knn.c — the kNN graph of a data set with no graph (kNN-LDS): each node joined to the k
 * nodes whose features are most similar by cosine, the union of both directions. */
#include "blo/graph.h"

#include "../common/common.h"

#include <math.h>
#include <string.h>

typedef struct {
    double sim;
    int64_t j;
} neighbour;

/* Most similar first; equal similarity: the lower id first. */
static int better(const neighbour *a, const neighbour *b) {
    return a->sim > b->sim || (a->sim == b->sim && a->j < b->j);
}

blo_status blo_graph_knn(blo_graph_data *g, int64_t k, char *err, size_t errlen) {
    int64_t n = g->n, d = g->features.d;
    if (k < 1 || k >= n)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "graph: a kNN graph needs 1 <= k < the number of nodes (%lld), got k = %lld",
                         (long long)n, (long long)k);
    const blo_dataset *f = &g->features;
    double *x = blo_calloc((size_t)(n * d + 1), sizeof(double)); /* rows scaled to unit norm */
    neighbour *best = blo_malloc(sizeof(neighbour) * (size_t)(k + 1));
    unsigned char *adj = blo_calloc((size_t)(n * n), 1);
    blo_status st = x && best && adj ? BLO_OK : BLO_ERR_NOMEM;
    for (int64_t i = 0; !st && i < n; i++) {
        double s = 0;
        for (int64_t q = f->rowptr[i]; q < f->rowptr[i + 1]; q++) {
            double v = f->val[q];
            x[i * d + f->col[q]] = v;
            s += v * v;
        }
        if (s > 0)
            for (int64_t c = 0; c < d; c++) x[i * d + c] /= sqrt(s);
    }
    int64_t m = 0;
    for (int64_t i = 0; !st && i < n; i++) {
        int64_t have = 0;
        for (int64_t j = 0; j < n; j++) {
            if (j == i) continue;
            neighbour c = {0, j};
            for (int64_t q = 0; q < d; q++) c.sim += x[i * d + q] * x[j * d + q];
            if (have == k && !better(&c, &best[k - 1])) continue;
            int64_t p = have < k ? have++ : k - 1; /* insertion into the sorted list */
            while (p > 0 && better(&c, &best[p - 1])) {
                best[p] = best[p - 1];
                p--;
            }
            best[p] = c;
        }
        for (int64_t q = 0; q < have; q++) {
            int64_t a = i < best[q].j ? i : best[q].j, b = i < best[q].j ? best[q].j : i;
            if (!adj[a * n + b]) adj[a * n + b] = 1, m++;
        }
    }
    int64_t *edges = st ? NULL : blo_malloc(sizeof(int64_t) * (size_t)(2 * m + 1));
    if (!st && !edges) st = BLO_ERR_NOMEM;
    if (!st) {
        int64_t e = 0;
        for (int64_t a = 0; a < n; a++)
            for (int64_t b = a + 1; b < n; b++)
                if (adj[a * n + b]) edges[2 * e] = a, edges[2 * e + 1] = b, e++;
        blo_free(g->edges);
        g->edges = edges;
        g->n_edges = m;
    }
    blo_free(x);
    blo_free(best);
    blo_free(adj);
    if (st) return blo__fail(err, errlen, st, "graph: out of memory building the kNN graph");
    return BLO_OK;
}
