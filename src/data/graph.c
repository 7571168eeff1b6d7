/* graph.c — the three-part graph format (Planetoid layout): node features and labels in
 * LIBSVM, an undirected edge list, and the node-index files of the train / validation / test
 * splits. Every problem is reported with its file and line before anything is built. */
#include "data_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A line-by-line reader over a NUL-free buffer: each call returns the next line's content
 * (comment after '#' and trailing '\r' cut, leading space skipped) in a caller's buffer. */
typedef struct {
    const char *p, *end;
    int64_t line;
} line_reader;

/* Parses up to max non-negative integers from the line [s, e); returns how many were read, or
 * -1 with *bad set to the column (1-based) of a token that is not one. */
static int read_ints(const char *s, const char *e, int64_t *out, int max, int *bad) {
    int n = 0;
    const char *p = s;
    for (;;) {
        while (p < e && (*p == ' ' || *p == '\t')) p++;
        if (p >= e || *p == '#') return n;
        const char *tok = p;
        int64_t v = 0;
        if (!isdigit((unsigned char)*p)) {
            *bad = (int)(tok - s) + 1;
            return -1;
        }
        while (p < e && isdigit((unsigned char)*p)) {
            if (v > ((int64_t)1 << 50)) {
                *bad = (int)(tok - s) + 1;
                return -1;
            }
            v = v * 10 + (*p - '0');
            p++;
        }
        if (p < e && *p != ' ' && *p != '\t' && *p != '#') {
            *bad = (int)(tok - s) + 1;
            return -1;
        }
        if (n == max) {
            *bad = (int)(tok - s) + 1;
            return max + 1;
        }
        out[n++] = v;
    }
}

/* The next line [*s, *e) of r, with a trailing '\r' dropped; false at the end. */
static bool next_line(line_reader *r, const char **s, const char **e) {
    if (r->p >= r->end) return false;
    const char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
    *s = r->p;
    *e = nl ? nl : r->end;
    r->p = nl ? nl + 1 : r->end;
    if (*e > *s && (*e)[-1] == '\r') (*e)--;
    r->line++;
    return true;
}


/* The next line of r holding node ids: want of them, each below n_nodes, into v. Returns BLO_OK
 * with *got = 0 at the end of the buffer, or a positioned error. */
static blo_status next_ids(line_reader *r, const char *name, int want, const char *expected,
                           int64_t n_nodes, int64_t *v, int *got, char *err, size_t errlen) {
    const char *s, *e;
    *got = 0;
    while (next_line(r, &s, &e)) {
        int bad = 0, k = read_ints(s, e, v, want, &bad);
        if (k == 0) continue;
        if (k != want)
            return blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: line %lld, column %d: expected %s",
                             name, (long long)r->line, bad ? bad : 1, expected);
        for (int t = 0; t < want; t++)
            if (v[t] >= n_nodes)
                return blo__fail(err, errlen, BLO_ERR_FORMAT,
                                 "%s: line %lld: node id %lld out of range (the graph has %lld "
                                 "nodes, ids 0..%lld)",
                                 name, (long long)r->line, (long long)v[t], (long long)n_nodes,
                                 (long long)n_nodes - 1);
        *got = k;
        return BLO_OK;
    }
    return BLO_OK;
}

typedef struct {
    int64_t i, j, line;
} edge_line;

static int cmp_edge(const void *a, const void *b) {
    const edge_line *x = a, *y = b;
    if (x->i != y->i) return x->i < y->i ? -1 : 1;
    if (x->j != y->j) return x->j < y->j ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

blo_status blo_edges_parse(const char *buf, size_t len, const char *name, int64_t n_nodes,
                           int64_t **edges, int64_t *n_edges, char *err, size_t errlen) {
    *edges = NULL;
    *n_edges = 0;
    if (memchr(buf, 0, len))
        return blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: a NUL byte: not a text file", name);
    size_t cap = 256, n = 0;
    edge_line *el = blo_malloc(cap * sizeof *el);
    if (!el) return blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory", name);
    line_reader r = {buf, buf + len, 0};
    blo_status st = BLO_OK;
    for (;;) {
        int64_t v[2];
        int got;
        st = next_ids(&r, name, 2, "two node ids \"i j\" (non-negative integers)", n_nodes, v,
                      &got, err, errlen);
        if (st) goto out;
        if (!got) break;
        if (v[0] == v[1]) {
            st = blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: line %lld: a self-loop %lld %lld",
                           name, (long long)r.line, (long long)v[0], (long long)v[1]);
            goto out;
        }
        if (n == cap) {
            edge_line *ne = blo_malloc(2 * cap * sizeof *el);
            if (!ne) goto nomem;
            memcpy(ne, el, n * sizeof *el);
            blo_free(el);
            el = ne;
            cap *= 2;
        }
        el[n].i = v[0] < v[1] ? v[0] : v[1];
        el[n].j = v[0] < v[1] ? v[1] : v[0];
        el[n].line = r.line;
        n++;
    }
    qsort(el, n, sizeof *el, cmp_edge);
    for (size_t k = 1; k < n; k++)
        if (el[k].i == el[k - 1].i && el[k].j == el[k - 1].j) {
            st = blo__fail(err, errlen, BLO_ERR_FORMAT,
                           "%s: line %lld: the edge %lld %lld repeats line %lld (edges are "
                           "undirected: i j and j i are the same)",
                           name, (long long)el[k].line, (long long)el[k].i, (long long)el[k].j,
                           (long long)el[k - 1].line);
            goto out;
        }
    *edges = blo_malloc((2 * n + 1) * sizeof(int64_t));
    if (!*edges) goto nomem;
    for (size_t k = 0; k < n; k++) {
        (*edges)[2 * k] = el[k].i;
        (*edges)[2 * k + 1] = el[k].j;
    }
    *n_edges = (int64_t)n;
    goto out;
nomem:
    st = blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory", name);
out:
    blo_free(el);
    return st;
}

blo_status blo_node_index_parse(const char *buf, size_t len, const char *name, int64_t n_nodes,
                                int64_t **ids, int64_t **lines, int64_t *count, char *err,
                                size_t errlen) {
    *ids = NULL;
    if (lines) *lines = NULL;
    *count = 0;
    if (memchr(buf, 0, len))
        return blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: a NUL byte: not a text file", name);
    /* One id per line at most: the line count bounds the arrays. */
    size_t cap = 1;
    for (size_t k = 0; k < len; k++) cap += buf[k] == '\n';
    int64_t *id = blo_malloc(cap * sizeof *id), *ln = blo_malloc(cap * sizeof *ln);
    int64_t *seen_line = NULL;
    blo_status st = BLO_OK;
    if (!id || !ln) goto nomem;
    line_reader r = {buf, buf + len, 0};
    size_t n = 0;
    for (;;) {
        int64_t v;
        int got;
        st = next_ids(&r, name, 1, "one node id (a non-negative integer) per line", n_nodes, &v,
                      &got, err, errlen);
        if (st) goto out;
        if (!got) break;
        id[n] = v;
        ln[n] = r.line;
        n++;
    }
    seen_line = blo_calloc((size_t)(n_nodes > 0 ? n_nodes : 1), sizeof *seen_line);
    if (!seen_line) goto nomem;
    for (size_t k = 0; k < n; k++) {
        if (seen_line[id[k]]) {
            st = blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: line %lld: node %lld repeats line %lld",
                           name, (long long)ln[k], (long long)id[k], (long long)seen_line[id[k]]);
            goto out;
        }
        seen_line[id[k]] = ln[k];
    }
    *ids = id;
    if (lines) *lines = ln;
    *count = (int64_t)n;
    id = NULL;
    if (lines) ln = NULL;
    goto out;
nomem:
    st = blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory", name);
out:
    blo_free(seen_line);
    blo_free(id);
    blo_free(ln);
    return st;
}

void blo_graph_data_free(blo_graph_data *g) {
    if (!g) return;
    blo_dataset_free(&g->features);
    blo_free(g->label);
    blo_free(g->edges);
    for (int s = 0; s < 3; s++) blo_free(g->split[s]);
    memset(g, 0, sizeof *g);
}

static blo_status read_part(const char *dir, const char *file, char *path, size_t plen,
                            unsigned char **buf, size_t *len, char *err, size_t errlen) {
    blo__data_path(path, plen, dir, file);
    return blo_read_file(path, buf, len, err, errlen);
}

blo_status blo_graph_load(const char *dir, blo_graph_data *g, char *err, size_t errlen) {
    static const char *split_file[3] = {"train.txt", "val.txt", "test.txt"};
    memset(g, 0, sizeof *g);
    if (!dir) return blo__fail(err, errlen, BLO_ERR_INVALID, "graph: no data folder given");
    char path[4096];
    unsigned char *buf = NULL;
    size_t len;
    int64_t *lines[3] = {NULL, NULL, NULL}, *owner = NULL;
    blo__data_path(path, sizeof path, dir, "features.libsvm");
    blo_status st = blo_libsvm_load(path, 0, 0, &g->features, err, errlen);
    if (st) return st;
    int64_t n = g->features.n;
    g->n = n;
    g->d = g->features.d;
    if (n < 2) {
        st = blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: %lld nodes; a graph needs at least 2",
                       path, (long long)n);
        goto out;
    }
    /* Labels: integers >= 0 are classes, -1 marks a node without one. */
    g->label = blo_malloc(sizeof(int64_t) * (size_t)n);
    if (!g->label) goto nomem;
    for (int64_t i = 0; i < n; i++) {
        double y = g->features.y[i];
        if (y != floor(y) || y < -1 || y > 65535) {
            st = blo__fail(err, errlen, BLO_ERR_FORMAT,
                           "%s: node %lld (data line %lld): the label %g is out of range (a class "
                           "0..65535, or -1 for no label)",
                           path, (long long)i, (long long)i + 1, y);
            goto out;
        }
        g->label[i] = (int64_t)y;
        if (g->label[i] + 1 > g->classes) g->classes = g->label[i] + 1;
    }
    if (g->classes < 2) {
        st = blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: %lld classes; at least 2 are needed",
                       path, (long long)g->classes);
        goto out;
    }
    if ((st = read_part(dir, "edges.txt", path, sizeof path, &buf, &len, err, errlen))) goto out;
    st = blo_edges_parse((const char *)buf, len, path, n, &g->edges, &g->n_edges, err, errlen);
    blo_free(buf);
    buf = NULL;
    if (st) goto out;
    owner = blo_calloc((size_t)n, sizeof *owner);
    if (!owner) goto nomem;
    for (int s = 0; s < 3; s++) {
        if ((st = read_part(dir, split_file[s], path, sizeof path, &buf, &len, err, errlen)))
            goto out;
        st = blo_node_index_parse((const char *)buf, len, path, n, &g->split[s], &lines[s],
                                  &g->split_n[s], err, errlen);
        blo_free(buf);
        buf = NULL;
        if (st) goto out;
        if (g->split_n[s] == 0) {
            st = blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: no node ids", path);
            goto out;
        }
        for (int64_t k = 0; k < g->split_n[s]; k++) {
            int64_t v = g->split[s][k];
            if (owner[v]) {
                int o = (int)(owner[v] >> 32) - 1;
                st = blo__fail(err, errlen, BLO_ERR_FORMAT,
                               "%s: line %lld: node %lld is already in %s (line %lld); the splits "
                               "must not overlap",
                               path, (long long)lines[s][k], (long long)v, split_file[o],
                               (long long)(owner[v] & 0xffffffff));
                goto out;
            }
            owner[v] = ((int64_t)(s + 1) << 32) | lines[s][k];
            if (g->label[v] < 0) {
                st = blo__fail(err, errlen, BLO_ERR_FORMAT,
                               "%s: line %lld: node %lld has no label (-1 in features.libsvm)",
                               path, (long long)lines[s][k], (long long)v);
                goto out;
            }
        }
    }
    goto out;
nomem:
    st = blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory", dir);
out:
    blo_free(buf);
    blo_free(owner);
    for (int s = 0; s < 3; s++) blo_free(lines[s]);
    if (st) blo_graph_data_free(g);
    return st;
}
