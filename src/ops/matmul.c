/* matmul.c — batched matrix product on BLAS gemm, and linear.
 *
 *   out[..., M, N] = a[..., M, K] b[..., K, N]
 *   backward: ga = g bᵀ (summed over a's broadcast batch axes), gb = aᵀ g (likewise).
 *
 * The last two axes of an operand go to gemm as they are when they are row-major or a
 * transposed view of row-major (so the transposes in the backward cost no copy); other
 * layouts are copied first. When b is a matrix and a's batch axes are contiguous with its
 * rows, the whole batch is one gemm of (batch·M) rows.
 */
#include "ops_util.h"

#include <string.h>

/* How an operand's last two axes map to gemm: trans flag and leading dimension. */
static bool gemm_layout(const blo_tensor *t, int *trans, int64_t *ld) {
    int nd = t->ndim;
    int64_t r = t->shape[nd - 2], c = t->shape[nd - 1];
    int64_t sr = t->stride[nd - 2], sc = t->stride[nd - 1];
    if ((sc == 1 || c == 1) && (sr >= (c > 1 ? c : 1) || r == 1)) {
        *trans = 0;
        *ld = r == 1 ? (c > 1 ? c : 1) : sr;
        if (*ld < c) *ld = c;
        return true;
    }
    if ((sr == 1 || r == 1) && (sc >= (r > 1 ? r : 1) || c == 1)) {
        *trans = 1;
        *ld = c == 1 ? (r > 1 ? r : 1) : sc;
        if (*ld < r) *ld = r;
        return true;
    }
    return false;
}

static blo_status matmul_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                            const bool *need, blo_tensor **gin) {
    (void)out;
    blo_tensor *a = n->in[0], *b = n->in[1];
    if (need[0]) gin[0] = blo__sum_like(ctx, blo_matmul(ctx, g, blo_transpose(ctx, b, -1, -2)), a);
    if (need[1]) {
        if (b->ndim == 2 && a->ndim > 2) { /* fold a's batch into rows: one gemm */
            int64_t sa[2] = {-1, a->shape[a->ndim - 1]}, sg[2] = {-1, g->shape[g->ndim - 1]};
            blo_tensor *a2 = blo_reshape(ctx, a, 2, sa), *g2 = blo_reshape(ctx, g, 2, sg);
            gin[1] = blo_matmul(ctx, blo_transpose(ctx, a2, 0, 1), g2);
        } else {
            gin[1] = blo__sum_like(ctx, blo_matmul(ctx, blo_transpose(ctx, a, -1, -2), g), b);
        }
    }
    return ctx->status;
}
static const blo_op_def MATMUL = {"matmul", matmul_bw, 1};

static blo_tensor *matmul2(blo_ctx *ctx, blo_tensor *a, blo_tensor *b) {
    int64_t M = a->shape[a->ndim - 2], K = a->shape[a->ndim - 1];
    int64_t K2 = b->shape[b->ndim - 2], N = b->shape[b->ndim - 1];
    if (K != K2) {
        char x[64], y[64];
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "blo_matmul: %s x %s: inner sizes %lld and %lld differ",
                          blo__desc(a, x, sizeof x), blo__desc(b, y, sizeof y), (long long)K,
                          (long long)K2);
        return NULL;
    }
    int nba, nbb = b->ndim - 2;
    nba = a->ndim - 2;
    int nbo;
    int64_t bsh[BLO_MAX_DIMS];
    if (!blo__broadcast_shape(nba, a->shape, nbb, b->shape, &nbo, bsh) || nbo + 2 > BLO_MAX_DIMS) {
        char x[64], y[64];
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "blo_matmul: batch axes of %s and %s do not broadcast",
                          blo__desc(a, x, sizeof x), blo__desc(b, y, sizeof y));
        return NULL;
    }
    int64_t osh[BLO_MAX_DIMS];
    memcpy(osh, bsh, sizeof(int64_t) * (size_t)nbo);
    osh[nbo] = M;
    osh[nbo + 1] = N;
    blo_tensor *out = blo__alloc(ctx, a->dtype, nbo + 2, osh);
    if (!out) return NULL;

    int ta, tb;
    int64_t lda, ldb;
    blo_tensor *ac = a, *bc = b;
    if (!gemm_layout(ac, &ta, &lda)) {
        ac = blo__alloc(ctx, a->dtype, a->ndim, a->shape);
        if (!ac) return NULL;
        ctx->be->copy(a, ac);
        gemm_layout(ac, &ta, &lda);
    }
    if (!gemm_layout(bc, &tb, &ldb)) {
        bc = blo__alloc(ctx, b->dtype, b->ndim, b->shape);
        if (!bc) return NULL;
        ctx->be->copy(b, bc);
        gemm_layout(bc, &tb, &ldb);
    }
    int64_t nbatch = blo__numel(nbo, bsh);

    /* One gemm when b is a single matrix and a's batch axes fold into its rows. */
    bool fold = nbb == 0 && !ta && nba > 0;
    for (int i = nba - 1; fold && i >= 0; i--) {
        int64_t want = (i == nba - 1 ? M : a->shape[i + 1]) *
                       (i == nba - 1 ? ac->stride[nba] : ac->stride[i + 1]);
        if (ac->shape[i] != 1 && ac->stride[i] != want) fold = false;
    }
    if (fold || nbatch == 1) {
        int64_t rows = fold ? M * nbatch : M;
        ctx->be->gemm(ta, tb, rows, N, K, 1.0, ac, 0, lda, bc, 0, ldb, 0.0, out, 0, N);
    } else {
        blo_tensor ea, eb;
        int64_t ash[BLO_MAX_DIMS], bsh2[BLO_MAX_DIMS];
        /* Expand batch axes to the output's, keeping the matrix axes. */
        memcpy(ash, bsh, sizeof(int64_t) * (size_t)nbo);
        memcpy(bsh2, bsh, sizeof(int64_t) * (size_t)nbo);
        ash[nbo] = M;
        ash[nbo + 1] = K;
        bsh2[nbo] = K;
        bsh2[nbo + 1] = N;
        blo__expand_into(&ea, ac, nbo + 2, ash);
        blo__expand_into(&eb, bc, nbo + 2, bsh2);
        for (int64_t bi = 0; bi < nbatch; bi++) {
            int64_t r = bi, oa = 0, ob = 0;
            for (int d = nbo - 1; d >= 0; d--) {
                int64_t idx = r % bsh[d];
                r /= bsh[d];
                oa += idx * ea.stride[d];
                ob += idx * eb.stride[d];
            }
            ctx->be->gemm(ta, tb, M, N, K, 1.0, ac, oa, lda, bc, ob, ldb, 0.0, out, bi * M * N,
                          N);
        }
    }
    blo_node *n;
    BLO_RECORD(n, ctx, out, &MATMUL, 2, a, b);
    (void)n;
    return out;
}

blo_tensor *blo_matmul(blo_ctx *ctx, blo_tensor *a, blo_tensor *b) {
    BLO_GUARD(ctx);
    if (!a || !b) return NULL;
    if (!blo__check_same_dtype(ctx, "blo_matmul", a, b)) return NULL;
    if (a->ndim < 1 || b->ndim < 1) {
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "blo_matmul: scalars cannot be multiplied as matrices");
        return NULL;
    }
    if (a->ndim >= 2 && b->ndim >= 2) return matmul2(ctx, a, b);
    /* 1-d operands: a row (a) or a column (b), dropped from the result afterwards. */
    blo_tensor *a2 = a, *b2 = b;
    if (a->ndim == 1) {
        int64_t s[2] = {1, a->shape[0]};
        a2 = blo_reshape(ctx, a, 2, s);
    }
    if (b->ndim == 1) {
        int64_t s[2] = {b->shape[0], 1};
        b2 = blo_reshape(ctx, b, 2, s);
    }
    blo_tensor *o = a2 && b2 ? matmul2(ctx, a2, b2) : NULL;
    if (!o) return NULL;
    int64_t sh[BLO_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < o->ndim; i++) {
        if (i == o->ndim - 2 && a->ndim == 1) continue;
        if (i == o->ndim - 1 && b->ndim == 1) continue;
        sh[nd++] = o->shape[i];
    }
    return blo_reshape(ctx, o, nd, sh);
}

blo_tensor *blo_linear(blo_ctx *ctx, blo_tensor *x, blo_tensor *w, blo_tensor *b) {
    BLO_GUARD(ctx);
    if (!x || !w) return NULL;
    blo_tensor *y = blo_matmul(ctx, x, blo_transpose(ctx, w, -1, -2));
    return b ? blo_add(ctx, y, b) : y;
}
