/* tape.c — recording: nodes on the tensors that recorded ops make, their inputs, and the
 * stop-gradient view. The walk that reads the tape back (blo_grad) lives in grad.c, above the
 * ops; nothing here calls an op. */
#include "tape.h"

#include <string.h>

bool blo__any_requires_grad(int n, blo_tensor *const *in) {
    for (int i = 0; i < n; i++)
        if (in[i] && in[i]->requires_grad) return true;
    return false;
}

blo_node *blo__record(blo_ctx *ctx, blo_tensor *out, const blo_op_def *op, int n_in,
                      blo_tensor *const *in) {
    if (!ctx->recording || !blo__any_requires_grad(n_in, in)) return NULL;
    out->requires_grad = true; /* so that BLO_RECORD can tell failure from "not recorded" */
    blo_node *n = blo__ctx_alloc(ctx, sizeof *n);
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->op = op;
    if (n_in > BLO_NODE_MAX_IN) {
        n->var_in = blo__ctx_alloc(ctx, (size_t)n_in * sizeof *n->var_in);
        if (!n->var_in) return NULL;
        memcpy(n->var_in, in, (size_t)n_in * sizeof *n->var_in);
        n->nvar = n_in;
    } else {
        n->n_in = n_in;
        for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    }
    out->node = n;
    return n;
}

int blo__node_inputs(const blo_node *n, blo_tensor *const **in) {
    if (n->var_in) {
        *in = n->var_in;
        return (int)n->nvar;
    }
    *in = n->in;
    return n->n_in;
}

/* A fresh header over the same storage, with no node and requires_grad off. */
blo_tensor *blo_detach(blo_ctx *ctx, blo_tensor *t) {
    BLO_GUARD(ctx);
    if (!t) return NULL;
    return blo__view(ctx, t, t->ndim, t->shape, t->stride, 0);
}
