/* tape.h — the tape: what an op needs in order to be recorded, and nothing that calls an op.
 *
 * Layering: ops (src/ops) include this header and record nodes; the gradient walk
 * (src/autodiff/grad.c: blo_grad, HVP, mixed products, JVP) sits above the ops and reads the
 * nodes back. Nothing here calls an op or the gradient walk, so the dependency points one way:
 * tape <- ops <- grad. Internal; not installed.
 */
#ifndef BLO_TAPE_H
#define BLO_TAPE_H

#include "../internal.h"

/* A node records how its output was made. backward() computes, with blo ops in ctx, the
 * gradient of each input i with need[i] set, given gout (the gradient of the output). It
 * leaves gin[i] NULL when the input's gradient is zero. Ops whose backward is a fused kernel
 * that is not itself recorded set differentiable_backward = 0. */
typedef struct blo_node blo_node;
typedef blo_status (*blo_backward_fn)(blo_ctx *ctx, const blo_node *n, blo_tensor *out,
                                      blo_tensor *gout, const bool *need, blo_tensor **gin);
typedef struct blo_op_def {
    const char *name;
    blo_backward_fn backward;
    int differentiable_backward;
} blo_op_def;

#define BLO_NODE_MAX_IN 4
struct blo_node {
    const blo_op_def *op;
    int n_in;
    blo_tensor *in[BLO_NODE_MAX_IN];
    blo_tensor *saved[4]; /* op-specific tensors (masks, indices); not differentiated */
    int64_t ip[12];       /* op-specific integer parameters */
    double fp[4];         /* op-specific real parameters */
    const void *ptr;      /* op-specific object (e.g. a CSR pattern) */
    int64_t nvar;         /* inputs beyond BLO_NODE_MAX_IN (concat) live in var_in */
    blo_tensor **var_in;
};

/* Whether any of the n inputs (NULL entries skipped) requires grad. */
bool blo__any_requires_grad(int n, blo_tensor *const *in);
/* If ctx records and any input requires grad: allocates a node for out (out->node,
 * out->requires_grad) and returns it. Returns NULL when nothing is to be recorded, and also
 * on allocation failure, after recording BLO_ERR_NOMEM: callers then test
 * blo_ctx_status(ctx) only when they need to know, or use BLO_RECORD below. */
blo_node *blo__record(blo_ctx *ctx, blo_tensor *out, const blo_op_def *op, int n_in,
                      blo_tensor *const *in);
/* The inputs of a node (more than BLO_NODE_MAX_IN live in var_in); returns their count. */
int blo__node_inputs(const blo_node *n, blo_tensor *const **in);

/* Record and fail the op (return NULL) on allocation failure. `node` receives the node or NULL. */
#define BLO_RECORD(node, ctx, out, op, n_in, ...)                                            \
    do {                                                                                     \
        blo_tensor *blo__in_[] = {__VA_ARGS__};                                              \
        (node) = blo__record((ctx), (out), (op), (n_in), blo__in_);                          \
        if (!(node) && (out)->requires_grad) return NULL;                                    \
    } while (0)

#endif
