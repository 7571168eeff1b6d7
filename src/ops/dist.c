/* dist.c — the two differentiable collectives of blo/dist.h, each the other's backward:
 *
 *   replicate(x)      = x                 ∂ replicate(x)ᵀ g = allreduce_sum(g)
 *   allreduce_sum(x)  = Σ_r x_r           ∂ allreduce_sum(x)ᵀ g = replicate(g)
 *
 * Both backward rules are recorded ops, so derivatives of every order cross the collective.
 * The communicator rides in the node's ptr; the kernel is the backend's allreduce_sum. */
#include "../backend/comm.h"
#include "ops_util.h"

static blo_status replicate_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                               const bool *need, blo_tensor **gin) {
    (void)out, (void)need;
    gin[0] = blo_allreduce_sum(ctx, (blo_comm *)n->ptr, g);
    return ctx->status;
}
static const blo_op_def REPLICATE = {"replicate", replicate_bw, 1};

static blo_status allreduce_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                               const bool *need, blo_tensor **gin) {
    (void)out, (void)need;
    gin[0] = blo_replicate(ctx, (blo_comm *)n->ptr, g);
    return ctx->status;
}
static const blo_op_def ALLREDUCE = {"allreduce_sum", allreduce_bw, 1};

static bool check(blo_ctx *ctx, const char *op, blo_comm *c, blo_tensor *x) {
    if (!c) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "%s: no communicator", op);
        return false;
    }
    return blo__check_float(ctx, op, x);
}

blo_tensor *blo_replicate(blo_ctx *ctx, blo_comm *c, blo_tensor *x) {
    BLO_GUARD(ctx);
    if (!x || !check(ctx, "blo_replicate", c, x)) return NULL;
    /* A view of x's storage: the forward is the identity and moves nothing. */
    blo_tensor *out = blo__view(ctx, x, x->ndim, x->shape, x->stride, 0);
    if (!out) return NULL;
    blo_node *n;
    BLO_RECORD(n, ctx, out, &REPLICATE, 1, x);
    if (n) n->ptr = c;
    return out;
}

blo_tensor *blo_allreduce_sum(blo_ctx *ctx, blo_comm *c, blo_tensor *x) {
    BLO_GUARD(ctx);
    if (!x || !check(ctx, "blo_allreduce_sum", c, x)) return NULL;
    blo_tensor *out = blo__alloc(ctx, x->dtype, x->ndim, x->shape);
    if (!out) return NULL;
    ctx->be->copy(x, out);
    int64_t numel = blo__numel(x->ndim, x->shape);
    if (blo__comm_reserve(c, blo__comm_scratch_bytes(c, numel, blo_dtype_size(x->dtype)))) {
        blo_ctx_set_error(ctx, BLO_ERR_NOMEM, "blo_allreduce_sum: out of memory");
        return NULL;
    }
    ctx->be->allreduce_sum(c, out);
    blo_node *n;
    BLO_RECORD(n, ctx, out, &ALLREDUCE, 1, x);
    if (n) n->ptr = c;
    return out;
}
