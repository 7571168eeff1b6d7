/* test_alloc_fail.c — fault injection. A representative workload (a two-layer network with a
 * sparse graph layer, weighted cross-entropy, gradient, Hessian-vector product, mixed product,
 * JVP, the fused loss, mark/rewind) runs once cleanly to count its allocations N, then again
 * with the k-th allocation failing for every k = 1 .. N + 1. Each run must end in success with
 * the clean run's numbers, or in BLO_ERR_NOMEM recorded with a message; it must not crash; and
 * once its context is freed, no allocation may remain live. Run N + 1 must not hit the
 * injected failure at all, and so must succeed. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#define NRES 6

typedef struct {
    blo_status status;
    int ctx_made;          /* blo_ctx_new succeeded */
    int silent_failure;    /* an op returned NULL while the context recorded no error */
    char msg[256];
    double res[NRES];
} outcome;

static blo_tensor *param(blo_ctx *ctx, int ndim, const int64_t *shape, double phase) {
    double v[64];
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    for (int64_t i = 0; i < n; i++) v[i] = 0.5 * sin(1.7 * (double)i + phase);
    blo_tensor *t = blo_from_f64(ctx, BLO_F64, ndim, shape, v);
    blo_set_requires_grad(t, 1);
    return t;
}

static double total(const blo_tensor *t) {
    double s = 0;
    for (int64_t i = 0; i < blo_tensor_numel(t); i++) s += blo_tensor_get(t, i) * (double)(i + 1);
    return s;
}

/* The network: x [8, 5] -> tanh(x W1ᵀ + b1) [8, 6] -> A (sparse 8 x 8) -> W2 [3, 6] -> CE. */
static blo_tensor *loss_fn(blo_ctx *ctx, blo_tensor *const *p, blo_tensor *x, blo_csr *a,
                           blo_tensor *labels, blo_tensor *w, int fast) {
    blo_tensor *h = blo_tanh(ctx, blo_linear(ctx, x, p[0], p[1]));
    blo_tensor *hs = blo_spmm(ctx, a, p[4], h);
    blo_tensor *z = blo_linear(ctx, hs, p[2], p[3]);
    blo_tensor *ce = fast ? blo_cross_entropy_fast(ctx, z, labels, w, BLO_REDUCE_MEAN)
                          : blo_cross_entropy(ctx, z, labels, w, BLO_REDUCE_MEAN);
    /* A regulariser touching the other op families: concat, max, views that copy, batched
     * matmul, where, gather, mse, cast. */
    blo_tensor *parts[5] = {h, blo_relu(ctx, h), blo_slice(ctx, hs, 1, 0, 6, 2), hs,
                            blo_exp(ctx, h)}; /* more inputs than a node holds inline */
    blo_tensor *cat = blo_concat(ctx, 5, parts, 1); /* [8, 27] */
    int ax1 = 1;
    blo_tensor *mx = blo_max(ctx, cat, 1, &ax1, 0);
    const int64_t s3d[3] = {2, 4, 6}, sflat[2] = {-1, 4};
    blo_tensor *bm = blo_matmul(ctx, blo_reshape(ctx, h, 3, s3d), blo_transpose(ctx, p[2], 0, 1));
    blo_tensor *tr = blo_reshape(ctx, blo_transpose(ctx, bm, 0, 2), 2, sflat);
    blo_tensor *wh = blo_where(ctx, blo_gt(ctx, blo_detach(ctx, h), blo_scalar(ctx, BLO_F64, 0)),
                               h, blo_neg(ctx, h));
    int64_t s81[2] = {8, 1};
    blo_tensor *gat = blo_gather(ctx, wh, 1, blo_reshape(ctx, labels, 2, s81));
    blo_tensor *c32 = blo_cast(ctx, blo_cast(ctx, gat, BLO_F32), BLO_F64);
    blo_tensor *reg = blo_add(ctx, blo_mse(ctx, tr, blo_tanh(ctx, tr), BLO_REDUCE_SUM),
                              blo_add(ctx, blo_sum_all(ctx, mx), blo_sum_all(ctx, c32)));
    blo_tensor *l2 = blo_scale(ctx, blo_dot(ctx, p[0], p[0]), 1e-2);
    return blo_add(ctx, ce, blo_add(ctx, l2, blo_scale(ctx, reg, 1e-2)));
}

static void workload(size_t chunk, int deep, outcome *o) {
    memset(o, 0, sizeof *o);
    blo_ctx *ctx = blo_ctx_new(chunk);
    if (!ctx) {
        o->status = BLO_ERR_NOMEM;
        snprintf(o->msg, sizeof o->msg, "blo_ctx_new returned NULL");
        return;
    }
    o->ctx_made = 1;
    const int64_t sx[2] = {8, 5}, sw1[2] = {6, 5}, sb1[1] = {6}, sw2[2] = {3, 6}, sb2[1] = {3},
                  s8[1] = {8}, snnz[1] = {20};
    const int64_t lab[8] = {0, 2, 1, 1, 0, 2, 2, 0};
    /* A ring graph with self loops and a few chords: 8 rows, 20 entries. */
    const int64_t rowptr[9] = {0, 3, 5, 8, 10, 13, 15, 18, 20};
    const int64_t colidx[20] = {0, 1, 7, 1, 2, 2, 3, 6, 3, 4, 0, 4, 5, 5, 6, 1, 6, 7, 0, 7};
    blo_tensor *x = param(ctx, 2, sx, 0.3);
    blo_tensor *labels = blo_from_i64(ctx, 1, s8, lab);
    blo_tensor *w = param(ctx, 1, s8, 2.0);
    blo_csr *a = blo_csr_new(ctx, 8, 8, 20, rowptr, colidx);
    blo_tensor *p[5] = {param(ctx, 2, sw1, 0.1), param(ctx, 1, sb1, 0.7), param(ctx, 2, sw2, 1.1),
                        param(ctx, 1, sb2, 1.9), param(ctx, 1, snnz, 2.3)};
    blo_tensor *v[5];
    for (int i = 0; i < 5; i++) v[i] = p[i] ? blo_clone(ctx, p[i]) : NULL;
    blo_status s = BLO_OK;

    blo_tensor *loss = loss_fn(ctx, p, x, a, labels, w, 0), *g[5], *hv[5], *hx, *jv;
    if (loss) o->res[0] = blo_tensor_item(loss);
    else if (!blo_ctx_status(ctx)) o->silent_failure = 1;
    s = blo_grad(ctx, 1, &loss, NULL, 5, p, 0, g);
    if (!s) o->res[1] = total(g[0]) + total(g[4]);
    if (!s) s = blo_hvp(ctx, loss, 5, p, v, 0, hv);
    if (!s) o->res[2] = total(hv[2]) + total(hv[4]);
    /* The hypergradient-shaped product: ∇_w ⟨∇_p loss, v⟩ for the example weights w. */
    if (!s) s = blo_mixed_vp(ctx, loss, 5, p, v, 1, &w, 0, &hx);
    if (!s) o->res[3] = total(hx);
    if (!s) {
        blo_mark m = blo_ctx_mark(ctx);
        blo_tensor *fl = loss_fn(ctx, p, x, a, labels, w, 1), *gf[2];
        blo_tensor *in[2] = {p[2], w};
        s = fl ? blo_grad(ctx, 1, &fl, NULL, 2, in, 0, gf) : blo_ctx_status(ctx);
        if (!fl && !s) o->silent_failure = 1;
        if (!s) o->res[4] = total(gf[0]) + total(gf[1]);
        if (!s) blo_ctx_rewind(ctx, m);
    }
    if (!s) {
        blo_tensor *h = blo_tanh(ctx, blo_linear(ctx, x, p[0], p[1]));
        s = h ? blo_jvp(ctx, 1, &h, 1, p, v, 0, &jv) : blo_ctx_status(ctx);
        if (!h && !s) o->silent_failure = 1;
        if (!s) o->res[5] = total(jv);
    }
    if (!s && deep) {
        /* A deep path, an unrolled descent on b1 of 300 steps: the gradient's sort outgrows
         * its first stack and maps. */
        blo_tensor *q = p[1], *gq;
        for (int t = 0; t < 300; t++) q = blo_sub(ctx, q, blo_scale(ctx, blo_tanh(ctx, q), 0.1));
        blo_tensor *fq = blo_dot(ctx, q, q);
        s = fq ? blo_grad(ctx, 1, &fq, NULL, 1, &p[1], 0, &gq) : blo_ctx_status(ctx);
        if (!fq && !s) o->silent_failure = 1;
        if (!s) o->res[5] += total(gq);
    }
    if (s && s != blo_ctx_status(ctx)) o->silent_failure = 1;
    o->status = blo_ctx_status(ctx);
    snprintf(o->msg, sizeof o->msg, "%s", blo_ctx_error(ctx));
    blo_ctx_free(ctx);
}

static void run_all(size_t chunk, int deep) {
    long live0 = blo_alloc_live();
    long count0 = blo_alloc_count();
    outcome clean;
    workload(chunk, deep, &clean);
    long n = blo_alloc_count() - count0;
    TU_CHECK(clean.status == BLO_OK, "chunk %zu: clean run failed: %s", chunk, clean.msg);
    TU_CHECK(blo_alloc_live() == live0, "chunk %zu: clean run leaks %ld allocations", chunk,
             blo_alloc_live() - live0);
    TU_CHECK(n > 5, "chunk %zu: the workload allocates (%ld)", chunk, n);

    long bad_status = 0, bad_leak = 0, bad_value = 0, bad_msg = 0, ok_runs = 0, nomem_runs = 0;
    long first_bad = -1;
    for (long k = 1; k <= n + 1; k++) {
        outcome o;
        long live_k = blo_alloc_live();
        blo_alloc_fail_at(k);
        workload(chunk, deep, &o);
        blo_alloc_fail_at(0);
        long leaked = blo_alloc_live() - live_k;
        int bad = 0;
        if (leaked != 0) {
            bad_leak++;
            bad = 1;
        }
        if (o.status == BLO_OK && !o.silent_failure) {
            ok_runs++;
            for (int i = 0; i < NRES; i++)
                if (o.res[i] != clean.res[i]) {
                    bad_value++;
                    bad = 1;
                    break;
                }
        } else if (o.status == BLO_ERR_NOMEM && !o.silent_failure) {
            nomem_runs++;
            if (!o.msg[0] || (o.ctx_made && !strstr(o.msg, "memory"))) {
                bad_msg++;
                bad = 1;
            }
        } else {
            bad_status++;
            bad = 1;
        }
        if (bad && first_bad < 0) {
            first_bad = k;
            fprintf(stderr,
                    "chunk %zu, failing allocation %ld: status %s%s, message '%s', %ld leaked\n",
                    chunk, k, blo_status_name(o.status),
                    o.silent_failure ? " (an op failed without recording an error)" : "", o.msg,
                    leaked);
        }
        if (k <= n && o.status == BLO_OK) {
            /* The k-th allocation of the clean path was refused, yet the run succeeded. */
            TU_CHECK(0, "chunk %zu: allocation %ld failed but the run reports success", chunk, k);
        }
        if (k == n + 1)
            TU_CHECK(o.status == BLO_OK, "chunk %zu: run %ld (past the last allocation) must "
                     "succeed: %s", chunk, k, o.msg);
    }
    TU_CHECK(bad_status == 0, "chunk %zu: %ld runs ended in a status other than OK / NOMEM, or "
             "failed silently (first at k = %ld)", chunk, bad_status, first_bad);
    TU_CHECK(bad_leak == 0, "chunk %zu: %ld runs leaked (first at k = %ld)", chunk, bad_leak,
             first_bad);
    TU_CHECK(bad_value == 0, "chunk %zu: %ld successful runs gave other numbers", chunk, bad_value);
    TU_CHECK(bad_msg == 0, "chunk %zu: %ld NOMEM runs had no message", chunk, bad_msg);
    TU_CHECK(nomem_runs == n, "chunk %zu: %ld of %ld runs hit the failure", chunk, nomem_runs, n);
    printf("chunk %zu: %ld allocations, %ld runs failed cleanly, %ld succeeded\n", chunk, n,
           nomem_runs, ok_runs);
}

int main(void) {
    /* The default 1 MiB chunks: few arena allocations, so the graph can be deep (the sort's
     * own growing buffers are then the failure points). */
    run_all(0, 1);
    /* Tiny chunks: every object is a block of its own, a failure point each. */
    run_all(64, 0);
    return tu_finish("test_alloc_fail");
}
