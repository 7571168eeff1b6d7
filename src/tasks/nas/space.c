/* space.c — the DARTS cell search space (Liu, Simonyan & Yang, ICLR 2019): candidate
 * ops, mixed ops ō(h) = Σ_o softmax(α)_o o(h), normal and reduction cells, the network
 * (stem, cells, global average pooling, linear classifier), and genotypes (derivation by
 * DARTS' top-2 rule, text form, loading). See space.h for the ops' definitions.
 *
 * The forward pass walks a cursor over the parameter list. In build mode the cursor makes
 * each parameter the first time the forward asks for it (so blo__nas_net_init is one forward on a
 * dummy batch); in read mode it hands out the caller's tensors in the same order.
 */
#include "space.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const OP_NAMES[BLO_NAS_NUM_OPS] = {
    "none",         "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"};

const char *blo_nas_op_name(int op) {
    return op >= 0 && op < BLO_NAS_NUM_OPS ? OP_NAMES[op] : "?";
}

int blo_nas_op_parse(const char *name) {
    for (int i = 0; i < BLO_NAS_NUM_OPS; i++)
        if (!strcmp(name, OP_NAMES[i])) return i;
    return -1;
}

int blo_nas_num_edges(int nodes) {
    return nodes * (nodes + 3) / 2;
}

static int edge_index(int i, int j) {
    return 2 * i + i * (i - 1) / 2 + j;
}

int blo__nas_is_reduction(int cells, int k) {
    return k == cells / 3 || k == 2 * cells / 3;
}

/* ---- The cursor ------------------------------------------------------------------------------ */
enum { P_CONV, P_LINEAR, P_ZEROS, P_ONES };

typedef struct cursor {
    blo_ctx *ctx;         /* where results live */
    blo_tensor *const *y; /* read mode: the parameters */
    int next;
    blo_tensor *const *stats; /* read mode: running statistics, or NULL */
    int snext;
    int build; /* build mode: make parameters in pctx */
    blo_ctx *pctx;
    blo_rng *rng;
    blo_dtype dt;
    blo_tensor **made, **smade;
    int nmade, cap, nsmade, scap;
    int with_stats; /* build: make running statistics too */
    int supernet, training;
} cursor;

static int push(blo_tensor ***arr, int *n, int *cap, blo_tensor *t) {
    if (*n == *cap) {
        int nc = *cap ? 2 * *cap : 64;
        blo_tensor **a = blo_malloc(sizeof *a * (size_t)nc);
        if (!a) return 0;
        if (*n) memcpy(a, *arr, sizeof *a * (size_t)*n);
        blo_free(*arr);
        *arr = a;
        *cap = nc;
    }
    (*arr)[(*n)++] = t;
    return 1;
}

static blo_tensor *param(cursor *c, int kind, int ndim, const int64_t *shape) {
    if (!c->build) return c->y[c->next++];
    blo_tensor *t = blo_tensor_new(c->pctx, c->dt, ndim, shape);
    if (!t) return NULL;
    blo_status st = kind == P_CONV     ? blo_init_kaiming_normal(t, c->rng)
                    : kind == P_LINEAR ? blo_init_kaiming_uniform(t, c->rng)
                                       : blo_fill(t, kind == P_ONES ? 1 : 0);
    if (st || !push(&c->made, &c->nmade, &c->cap, t)) {
        blo_ctx_set_error(c->ctx, st ? st : BLO_ERR_NOMEM, "nas: cannot make a parameter");
        return NULL;
    }
    c->next++;
    return t;
}

static blo_tensor *conv(cursor *c, blo_tensor *h, int64_t O, int k, int stride, int pad, int dil,
                        int groups) {
    if (!h) return NULL;
    int64_t shape[4] = {O, blo_tensor_dim(h, 1) / groups, k, k};
    blo_tensor *w = param(c, P_CONV, 4, shape);
    blo_conv2d_params p = blo_conv2d_default();
    p.stride_h = p.stride_w = stride;
    p.pad_h = p.pad_w = pad;
    p.dil_h = p.dil_w = dil;
    p.groups = groups;
    return blo_conv2d(c->ctx, h, w, NULL, &p);
}

/* Batch norm over the channels: affine and with running statistics in the discrete net. */
static blo_tensor *bn(cursor *c, blo_tensor *h) {
    if (!h) return NULL;
    int64_t C = blo_tensor_dim(h, 1);
    blo_tensor *gamma = NULL, *beta = NULL, *rm = NULL, *rv = NULL;
    if (!c->supernet) {
        gamma = param(c, P_ONES, 1, &C);
        beta = param(c, P_ZEROS, 1, &C);
        if (c->build && c->with_stats) {
            rm = blo_zeros(c->pctx, c->dt, 1, &C);
            rv = blo_full(c->pctx, c->dt, 1, &C, 1);
            if (!rm || !rv || !push(&c->smade, &c->nsmade, &c->scap, rm) ||
                !push(&c->smade, &c->nsmade, &c->scap, rv)) {
                blo_ctx_set_error(c->ctx, BLO_ERR_NOMEM, "nas: out of memory");
                return NULL;
            }
            rm = rv = NULL; /* building: do not move the fresh statistics */
        } else if (c->stats) {
            rm = c->stats[c->snext++];
            rv = c->stats[c->snext++];
        }
    }
    int training = c->training || !rm;
    return blo_batch_norm(c->ctx, h, gamma, beta, rm, rv, training, 0.1, 1e-5);
}

static blo_tensor *relu_conv_bn(cursor *c, blo_tensor *h, int64_t O) {
    return bn(c, conv(c, blo_relu(c->ctx, h), O, 1, 1, 0, 1, 1));
}

/* Halves the image with two 1×1 stride-2 convs, on pixels (2o, 2o) and (2o+1, 2o+1). The
 * second is a padded conv (its output q reads pixel 2q − 1) with its first row and column
 * dropped, so odd sizes work too (the missing last pixel reads as padding, zero). */
static blo_tensor *factorized_reduce(cursor *c, blo_tensor *h, int64_t O) {
    blo_tensor *r = blo_relu(c->ctx, h);
    blo_tensor *a = conv(c, r, O / 2, 1, 2, 0, 1, 1);
    blo_tensor *b = conv(c, r, O - O / 2, 1, 2, 1, 1, 1);
    if (!a || !b) return NULL;
    int64_t oh = blo_tensor_dim(a, 2), ow = blo_tensor_dim(a, 3);
    b = blo_slice(c->ctx, blo_slice(c->ctx, b, 2, 1, 1 + oh, 1), 3, 1, 1 + ow, 1);
    blo_tensor *ab[2] = {a, b};
    return b ? bn(c, blo_concat(c->ctx, 2, ab, 1)) : NULL;
}

static blo_tensor *op_forward(cursor *c, int op, blo_tensor *h, int stride) {
    if (!h) return NULL;
    int64_t C = blo_tensor_dim(h, 1);
    blo_pool2d_params pp = {3, 3, stride, stride, 1, 1, 0};
    switch (op) {
    case BLO_NAS_MAX_POOL_3X3: {
        blo_tensor *p = blo_max_pool2d(c->ctx, h, &pp);
        return c->supernet ? bn(c, p) : p;
    }
    case BLO_NAS_AVG_POOL_3X3: {
        blo_tensor *p = blo_avg_pool2d(c->ctx, h, &pp);
        return c->supernet ? bn(c, p) : p;
    }
    case BLO_NAS_SKIP_CONNECT:
        return stride == 1 ? h : factorized_reduce(c, h, C);
    case BLO_NAS_SEP_CONV_3X3:
    case BLO_NAS_SEP_CONV_5X5: {
        int k = op == BLO_NAS_SEP_CONV_3X3 ? 3 : 5;
        for (int rep = 0; rep < 2; rep++) {
            h = conv(c, blo_relu(c->ctx, h), C, k, rep ? 1 : stride, k / 2, 1, (int)C);
            h = bn(c, conv(c, h, C, 1, 1, 0, 1, 1));
        }
        return h;
    }
    case BLO_NAS_DIL_CONV_3X3:
    case BLO_NAS_DIL_CONV_5X5: {
        int k = op == BLO_NAS_DIL_CONV_3X3 ? 3 : 5;
        h = conv(c, blo_relu(c->ctx, h), C, k, stride, k - 1, 2, (int)C);
        return bn(c, conv(c, h, C, 1, 1, 0, 1, 1));
    }
    default:
        return NULL; /* none */
    }
}

/* Σ_{o ≠ none} w_o o(h), w a [1, 8] row. */
static blo_tensor *mixed_forward(cursor *c, blo_tensor *h, blo_tensor *w, int stride) {
    blo_tensor *sum = NULL;
    static const int64_t one4[4] = {1, 1, 1, 1};
    for (int o = 1; o < BLO_NAS_NUM_OPS; o++) {
        blo_tensor *out = op_forward(c, o, h, stride);
        blo_tensor *wo = blo_reshape(c->ctx, blo_slice(c->ctx, w, 1, o, o + 1, 1), 4, one4);
        blo_tensor *term = blo_mul(c->ctx, out, wo);
        if (!term) return NULL;
        sum = sum ? blo_add(c->ctx, sum, term) : term;
    }
    return sum;
}

/* One cell: preprocess both inputs to C channels, the nodes, the concatenation. W: the
 * softmax weights [E, 8] of this cell kind (supernet) or NULL. */
static blo_tensor *cell_forward(cursor *c, const blo__nas_net *n, blo_tensor *s0, blo_tensor *s1,
                                int prev_reduction, int reduction, int64_t C, blo_tensor *W) {
    blo_tensor *st[2 + BLO_NAS_MAX_NODES];
    st[0] = prev_reduction ? factorized_reduce(c, s0, C) : relu_conv_bn(c, s0, C);
    st[1] = relu_conv_bn(c, s1, C);
    int kind = reduction ? 1 : 0;
    for (int i = 0; i < n->nodes; i++) {
        blo_tensor *sum = NULL;
        if (n->supernet) {
            for (int j = 0; j < 2 + i; j++) {
                int e = edge_index(i, j);
                blo_tensor *row = blo_slice(c->ctx, W, 0, e, e + 1, 1);
                blo_tensor *t = mixed_forward(c, st[j], row, reduction && j < 2 ? 2 : 1);
                if (!t) return NULL;
                sum = sum ? blo_add(c->ctx, sum, t) : t;
            }
        } else {
            for (int k = 0; k < 2; k++) {
                int j = n->geno.in[kind][i][k];
                blo_tensor *t =
                    op_forward(c, n->geno.op[kind][i][k], st[j], reduction && j < 2 ? 2 : 1);
                if (!t) return NULL;
                sum = sum ? blo_add(c->ctx, sum, t) : t;
            }
        }
        st[2 + i] = sum;
    }
    return blo_concat(c->ctx, n->nodes, st + 2, 1);
}

static blo_tensor *net_forward(cursor *c, const blo__nas_net *n, blo_tensor *an, blo_tensor *ar,
                               blo_tensor *X) {
    blo_ctx *ctx = c->ctx;
    blo_tensor *Wn = NULL, *Wr = NULL;
    if (n->supernet) {
        Wn = blo_softmax(ctx, an, 1);
        Wr = blo_softmax(ctx, ar, 1);
        if (!Wn || !Wr) return NULL;
    }
    int64_t C = n->channels;
    blo_tensor *s = bn(c, conv(c, X, 3 * C, 3, 1, 1, 1, 1));
    blo_tensor *s0 = s, *s1 = s;
    int prev_red = 0;
    for (int k = 0; k < n->cells; k++) {
        int red = blo__nas_is_reduction(n->cells, k);
        if (red) C *= 2;
        blo_tensor *out = cell_forward(c, n, s0, s1, prev_red, red, C, red ? Wr : Wn);
        s0 = s1;
        s1 = out;
        prev_red = red;
    }
    static const int axes[2] = {2, 3};
    blo_tensor *pooled = blo_mean(ctx, s1, 2, axes, 0);
    if (!pooled) return NULL;
    int64_t wshape[2] = {n->classes, blo_tensor_dim(pooled, 1)};
    blo_tensor *w = param(c, P_LINEAR, 2, wshape);
    blo_tensor *b = param(c, P_ZEROS, 1, &n->classes);
    return blo_linear(ctx, pooled, w, b);
}

blo_tensor *blo__nas_net_forward(blo_ctx *ctx, const blo__nas_net *n, blo_tensor *const *y,
                            blo_tensor *alpha_normal, blo_tensor *alpha_reduce, blo_tensor *X,
                            int training) {
    cursor c;
    memset(&c, 0, sizeof c);
    c.ctx = ctx;
    c.y = y;
    c.stats = n->supernet ? NULL : n->stats;
    c.supernet = n->supernet;
    c.training = training || n->supernet; /* the supernet has no running statistics */
    blo_tensor *out = net_forward(&c, n, alpha_normal, alpha_reduce, X);
    if (out && c.next != n->ny) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "nas: the forward read %d parameters of %d", c.next,
                          n->ny);
        return NULL;
    }
    return out;
}

void blo__nas_net_free(blo__nas_net *n) {
    if (!n) return;
    blo_ctx_free(n->ctx);
    n->ctx = NULL;
    n->y = n->stats = NULL;
    n->ny = n->nstats = 0;
}

/* Copies a blo_malloc'd list into ctx (so the net owns one arena only). */
static blo_tensor **list_into(blo_ctx *ctx, blo_tensor **src, int n) {
    blo_tensor **dst = blo__ctx_alloc(ctx, sizeof(blo_tensor *) * (size_t)(n ? n : 1));
    if (!dst) return NULL;
    if (n) memcpy(dst, src, sizeof *dst * (size_t)n);
    return dst;
}

blo_status blo__nas_net_init(blo__nas_net *n, const blo_nas_genotype *g, int cells, int channels, int nodes,
                        int64_t in_ch, int64_t size, int64_t classes, blo_dtype dt, blo_rng *rng,
                        char *err, size_t errlen) {
    memset(n, 0, sizeof *n);
    if (g) {
        if (!blo_nas_genotype_check(g, err, errlen)) return BLO_ERR_INVALID;
        nodes = g->nodes;
        n->geno = *g;
    }
    if (cells < 1 || channels < 1 || nodes < 1 || nodes > BLO_NAS_MAX_NODES || in_ch < 1 ||
        size < 1 || classes < 2 || (dt != BLO_F32 && dt != BLO_F64))
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                     "nas: cells, channels >= 1, nodes in [1, %d], classes >= 2 and a float "
                     "dtype needed",
                     BLO_NAS_MAX_NODES);
    n->supernet = g == NULL;
    n->geno.nodes = nodes;
    n->cells = cells;
    n->channels = channels;
    n->nodes = nodes;
    n->in_ch = in_ch;
    n->size = size;
    n->classes = classes;
    n->dtype = dt;
    n->ctx = blo_ctx_new(0);
    blo_ctx *sc = blo_ctx_new(0);
    blo_status st = BLO_OK;
    cursor c;
    memset(&c, 0, sizeof c);
    if (!n->ctx || !sc) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "nas: out of memory");
        goto out;
    }
    blo_ctx_set_recording(sc, 0);
    c.ctx = sc;
    c.build = 1;
    c.pctx = n->ctx;
    c.rng = rng;
    c.dt = dt;
    c.with_stats = !n->supernet;
    c.supernet = n->supernet;
    c.training = 1;
    /* One forward on a batch of two dummy images makes every parameter. */
    int64_t xs[4] = {2, in_ch, size, size};
    int E = blo_nas_num_edges(nodes);
    int64_t as[2] = {E, BLO_NAS_NUM_OPS};
    blo_tensor *X = blo_full(sc, dt, 4, xs, 0.5);
    blo_tensor *a = blo_zeros(sc, dt, 2, as);
    blo_tensor *out = X && a ? net_forward(&c, n, a, a, X) : NULL;
    if (!out) {
        st = blo__fail(err, errlen, blo_ctx_status(sc) ? blo_ctx_status(sc) : BLO_ERR_INVALID,
                   "nas: building the network: %s", blo_ctx_error(sc));
        goto out;
    }
    n->ny = c.nmade;
    n->nstats = c.nsmade;
    n->y = list_into(n->ctx, c.made, c.nmade);
    n->stats = n->supernet ? NULL : list_into(n->ctx, c.smade, c.nsmade);
    if (!n->y || (!n->supernet && !n->stats))
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "nas: out of memory");
    for (int i = 0; !st && i < n->ny; i++)
        st = blo_set_requires_grad(n->y[i], 1);
out:
    blo_free(c.made);
    blo_free(c.smade);
    blo_ctx_free(sc);
    if (st) blo__nas_net_free(n);
    return st;
}

blo_tensor *blo__nas_op_forward(blo_ctx *ctx, int op, blo_tensor *h, int stride, int supernet,
                           blo_tensor *const *y, int *next) {
    cursor c;
    memset(&c, 0, sizeof c);
    c.ctx = ctx;
    c.y = y;
    c.next = *next;
    c.supernet = supernet;
    c.training = 1;
    blo_tensor *out = op_forward(&c, op, h, stride);
    *next = c.next;
    return out;
}

blo_tensor *blo__nas_mixed_forward(blo_ctx *ctx, blo_tensor *h, blo_tensor *w, int stride,
                              blo_tensor *const *y, int *next) {
    cursor c;
    memset(&c, 0, sizeof c);
    c.ctx = ctx;
    c.y = y;
    c.next = *next;
    c.supernet = 1;
    c.training = 1;
    blo_tensor *out = mixed_forward(&c, h, w, stride);
    *next = c.next;
    return out;
}

blo_status blo__nas_mixed_params(blo_ctx *pctx, int64_t C, int stride, blo_dtype dt, blo_rng *rng,
                            blo_tensor ***y, int *ny) {
    blo_ctx *sc = blo_ctx_new(0);
    if (!sc) return BLO_ERR_NOMEM;
    blo_ctx_set_recording(sc, 0);
    cursor c;
    memset(&c, 0, sizeof c);
    c.ctx = sc;
    c.build = 1;
    c.pctx = pctx;
    c.rng = rng;
    c.dt = dt;
    c.supernet = 1;
    c.training = 1;
    int64_t hs[4] = {2, C, 6, 6}, ws[2] = {1, BLO_NAS_NUM_OPS};
    blo_tensor *h = blo_full(sc, dt, 4, hs, 0.5), *w = blo_full(sc, dt, 2, ws, 0.125);
    blo_status st = h && w && mixed_forward(&c, h, w, stride) ? BLO_OK : BLO_ERR_INVALID;
    if (!st) {
        *y = list_into(pctx, c.made, c.nmade);
        *ny = c.nmade;
        if (!*y) st = BLO_ERR_NOMEM;
    }
    blo_free(c.made);
    blo_ctx_free(sc);
    return st;
}

/* ---- Genotypes ----------------------------------------------------------------------------- */
/* Node i of cell kind `kind` keeps the two edges j with the largest imp[j], each with op[j];
 * listed by input, as DARTS prints them. */
static void keep_top2(blo_nas_genotype *g, int kind, int i, const double *imp, const int *op) {
    int b0 = -1, b1 = -1;
    for (int j = 0; j < 2 + i; j++) {
        if (b0 < 0 || imp[j] > imp[b0]) {
            b1 = b0;
            b0 = j;
        } else if (b1 < 0 || imp[j] > imp[b1]) {
            b1 = j;
        }
    }
    int lo = b0 < b1 ? b0 : b1, hi = b0 < b1 ? b1 : b0;
    g->in[kind][i][0] = lo, g->op[kind][i][0] = op[lo];
    g->in[kind][i][1] = hi, g->op[kind][i][1] = op[hi];
}

void blo_nas_genotype_derive(int nodes, const double *alpha_normal, const double *alpha_reduce,
                             blo_nas_genotype *g) {
    memset(g, 0, sizeof *g);
    g->nodes = nodes;
    for (int kind = 0; kind < 2; kind++) {
        const double *a = kind ? alpha_reduce : alpha_normal;
        for (int i = 0; i < nodes; i++) {
            double imp[BLO_NAS_MAX_NODES + 1];
            int op[BLO_NAS_MAX_NODES + 1];
            for (int j = 0; j < 2 + i; j++) {
                const double *row = a + (size_t)edge_index(i, j) * BLO_NAS_NUM_OPS;
                double mx = row[0], z = 0;
                for (int o = 1; o < BLO_NAS_NUM_OPS; o++)
                    mx = row[o] > mx ? row[o] : mx;
                for (int o = 0; o < BLO_NAS_NUM_OPS; o++)
                    z += exp(row[o] - mx);
                int bo = 1;
                for (int o = 2; o < BLO_NAS_NUM_OPS; o++)
                    if (row[o] > row[bo]) bo = o;
                imp[j] = exp(row[bo] - mx) / z;
                op[j] = bo;
            }
            keep_top2(g, kind, i, imp, op);
        }
    }
}

#define NAS_REMOVED (-1e30) /* the α of an op taken out: softmax gives it weight 0 */

blo_status blo_nas_genotype_perturb(int nodes, const double *alpha_normal,
                                    const double *alpha_reduce, blo_nas_score_fn score,
                                    void *user, blo_nas_genotype *g, char *err, size_t errlen) {
    memset(g, 0, sizeof *g);
    g->nodes = nodes;
    size_t n = (size_t)blo_nas_num_edges(nodes) * BLO_NAS_NUM_OPS;
    double *a = blo_malloc(sizeof(double) * 2 * n);
    if (!a) return blo__fail(err, errlen, BLO_ERR_NOMEM, "nas: out of memory");
    memcpy(a, alpha_normal, sizeof(double) * n);
    memcpy(a + n, alpha_reduce, sizeof(double) * n);
    blo_status st = BLO_OK;
    double base = score(a, a + n, user);
    if (!isfinite(base))
        st = blo__fail(err, errlen, BLO_ERR_NUMERIC, "nas: the supernet's loss is not finite");
    for (int kind = 0; !st && kind < 2; kind++)
        for (int i = 0; !st && i < nodes; i++) {
            double imp[BLO_NAS_MAX_NODES + 1];
            int op[BLO_NAS_MAX_NODES + 1];
            for (int j = 0; !st && j < 2 + i; j++) {
                double *row = a + kind * n + (size_t)edge_index(i, j) * BLO_NAS_NUM_OPS,
                       keep[BLO_NAS_NUM_OPS];
                memcpy(keep, row, sizeof keep);
                op[j] = -1;
                double best = 0;
                for (int o = 1; o <= BLO_NAS_NUM_OPS; o++) {
                    /* o < 8: take op o out; o = 8: take out every op but none (the edge) */
                    for (int q = 1; q < BLO_NAS_NUM_OPS; q++)
                        row[q] = o == BLO_NAS_NUM_OPS || q == o ? NAS_REMOVED : keep[q];
                    double d = score(a, a + n, user) - base;
                    memcpy(row, keep, sizeof keep);
                    if (!isfinite(d)) {
                        st = blo__fail(err, errlen, BLO_ERR_NUMERIC,
                                       "nas: the supernet's loss is not finite with %s taken "
                                       "out of the %s cell's edge %d -> node %d",
                                       o < BLO_NAS_NUM_OPS ? blo_nas_op_name(o) : "every op",
                                       kind ? "reduction" : "normal", j, i);
                        break;
                    }
                    if (o == BLO_NAS_NUM_OPS) {
                        imp[j] = d;
                    } else if (op[j] < 0 || d > best) {
                        op[j] = o;
                        best = d;
                    }
                }
            }
            if (!st) keep_top2(g, kind, i, imp, op);
        }
    blo_free(a);
    return st;
}

void blo_nas_genotype_random(int nodes, blo_rng *rng, blo_nas_genotype *g) {
    memset(g, 0, sizeof *g);
    g->nodes = nodes;
    for (int kind = 0; kind < 2; kind++)
        for (int i = 0; i < nodes; i++) {
            int a = (int)blo_rng_below(rng, (uint64_t)(2 + i));
            int b = (int)blo_rng_below(rng, (uint64_t)(1 + i));
            if (b >= a) b++;
            g->in[kind][i][0] = a < b ? a : b;
            g->in[kind][i][1] = a < b ? b : a;
            for (int k = 0; k < 2; k++)
                g->op[kind][i][k] = 1 + (int)blo_rng_below(rng, BLO_NAS_NUM_OPS - 1);
        }
}

int blo_nas_genotype_check(const blo_nas_genotype *g, char *err, size_t errlen) {
    if (g->nodes < 1 || g->nodes > BLO_NAS_MAX_NODES) {
        blo__fail(err, errlen, BLO_ERR_INVALID, "genotype: %d nodes, expected 1 to %d", g->nodes,
              BLO_NAS_MAX_NODES);
        return 0;
    }
    for (int kind = 0; kind < 2; kind++)
        for (int i = 0; i < g->nodes; i++)
            for (int k = 0; k < 2; k++) {
                int op = g->op[kind][i][k], in = g->in[kind][i][k];
                if (op < 1 || op >= BLO_NAS_NUM_OPS || in < 0 || in >= 2 + i) {
                    blo__fail(err, errlen, BLO_ERR_INVALID,
                          "genotype: %s node %d: op %d from state %d (ops 1..7, states 0..%d)",
                          kind ? "reduce" : "normal", i, op, in, 1 + i);
                    return 0;
                }
            }
    return 1;
}

size_t blo_nas_genotype_format(const blo_nas_genotype *g, char *buf, size_t len) {
    size_t used = 0;
#define OUT(...)                                                                                   \
    do {                                                                                           \
        int k_ = snprintf(buf && used < len ? buf + used : NULL,                                   \
                          buf && used < len ? len - used : 0, __VA_ARGS__);                        \
        if (k_ > 0) used += (size_t)k_;                                                            \
    } while (0)
    if (buf && len) buf[0] = 0;
    OUT("# DARTS genotype: states 0, 1 are the cell's inputs, 2.. its nodes\n");
    OUT("nodes %d\n", g->nodes);
    for (int kind = 0; kind < 2; kind++)
        for (int i = 0; i < g->nodes; i++)
            OUT("%s %d: %s <- %d, %s <- %d\n", kind ? "reduce" : "normal", i,
                blo_nas_op_name(g->op[kind][i][0]), g->in[kind][i][0],
                blo_nas_op_name(g->op[kind][i][1]), g->in[kind][i][1]);
    OUT("# Genotype(");
    for (int kind = 0; kind < 2; kind++) {
        OUT("%s=[", kind ? "reduce" : "normal");
        for (int i = 0; i < g->nodes; i++)
            for (int k = 0; k < 2; k++)
                OUT("%s('%s', %d)", i || k ? ", " : "", blo_nas_op_name(g->op[kind][i][k]),
                    g->in[kind][i][k]);
        OUT("], %s_concat=range(2, %d)%s", kind ? "reduce" : "normal", 2 + g->nodes,
            kind ? ")\n" : ", ");
    }
#undef OUT
    return used;
}

blo_status blo_nas_genotype_save(const blo_nas_genotype *g, const char *path, char *err,
                                 size_t errlen) {
    char buf[4096];
    if (!blo_nas_genotype_check(g, err, errlen)) return BLO_ERR_INVALID;
    size_t n = blo_nas_genotype_format(g, buf, sizeof buf);
    FILE *f = fopen(path, "w");
    if (!f) return blo__fail(err, errlen, BLO_ERR_IO, "%s: cannot open for writing", path);
    int ok = fwrite(buf, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    return ok ? BLO_OK : blo__fail(err, errlen, BLO_ERR_IO, "%s: write failed", path);
}

blo_status blo_nas_genotype_load(const char *path, blo_nas_genotype *g, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) return blo__fail(err, errlen, BLO_ERR_IO, "%s: cannot open", path);
    memset(g, 0, sizeof *g);
    char line[512];
    int lineno = 0, seen[2][BLO_NAS_MAX_NODES] = {{0}};
    blo_status st = BLO_OK;
    while (!st && fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || *p == '#') continue;
        char kind[16], o1[32], o2[32];
        int i, j1, j2, nodes;
        if (sscanf(p, "nodes %d", &nodes) == 1) {
            if (g->nodes || nodes < 1 || nodes > BLO_NAS_MAX_NODES)
                st = blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: line %d: nodes %d (1 to %d, once)",
                           path, lineno, nodes, BLO_NAS_MAX_NODES);
            g->nodes = nodes;
        } else if (sscanf(p, "%15s %d: %31s <- %d, %31s <- %d", kind, &i, o1, &j1, o2, &j2) == 6) {
            int k = !strcmp(kind, "normal") ? 0 : !strcmp(kind, "reduce") ? 1 : -1;
            int a = blo_nas_op_parse(o1), b = blo_nas_op_parse(o2);
            if (k < 0 || !g->nodes || i < 0 || i >= g->nodes || a < 1 || b < 1 || seen[k][i])
                st = blo__fail(err, errlen, BLO_ERR_FORMAT,
                           "%s: line %d: expected 'normal|reduce I: OP <- J, OP <- J' with I below "
                           "the node count (given first) and ops other than none, each node once",
                           path, lineno);
            else {
                seen[k][i] = 1;
                g->op[k][i][0] = a, g->in[k][i][0] = j1;
                g->op[k][i][1] = b, g->in[k][i][1] = j2;
            }
        } else {
            st = blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: line %d: cannot read '%.*s'", path, lineno,
                       (int)strcspn(p, "\n"), p);
        }
    }
    fclose(f);
    if (st) return st;
    if (!g->nodes) return blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: no 'nodes N' line", path);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < g->nodes; i++)
            if (!seen[k][i])
                return blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: %s node %d missing", path,
                             k ? "reduce" : "normal", i);
    char msg[256];
    if (!blo_nas_genotype_check(g, msg, sizeof msg))
        return blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: %s", path, msg);
    return BLO_OK;
}
