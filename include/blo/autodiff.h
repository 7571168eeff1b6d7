/* blo/autodiff.h — reverse-mode automatic differentiation of any order.
 *
 * Ops record tape nodes on the tensors they make (see ops.h). blo_grad walks the tape from
 * the outputs back to the inputs, calling each node's backward rule. Backward rules are
 * written with blo ops, so with BLO_GRAD_CREATE_GRAPH the backward pass is recorded in turn
 * and its results can be differentiated again: Hessian-vector products, mixed second
 * derivatives, gradients through whole unrolled training runs.
 */
#ifndef BLO_AUTODIFF_H
#define BLO_AUTODIFF_H
#pragma GCC visibility push(default)

#include "blo/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    /* Record the backward pass, so the gradients can be differentiated again. */
    BLO_GRAD_CREATE_GRAPH = 1u << 0,
    /* Fail with BLO_ERR_INVALID when an input does not influence any output (by default its
     * gradient is a tensor of zeros). */
    BLO_GRAD_STRICT = 1u << 1
};

/* Vector-Jacobian product: grads[i] = Σ_k (∂outputs[k]/∂inputs[i])ᵀ seeds[k].
 * seeds may be NULL, or have NULL entries, for outputs with one element (seed 1).
 * Inputs may be leaves or intermediate results. grads[i] has inputs[i]'s shape and dtype and
 * lives in ctx. On failure returns the error (also recorded in ctx) and leaves grads NULL. */
blo_status blo_grad(blo_ctx *ctx, int n_out, blo_tensor *const *outputs,
                    blo_tensor *const *seeds, int n_in, blo_tensor *const *inputs,
                    unsigned flags, blo_tensor **grads);

/* Hessian-vector product of a scalar f with respect to the n tensors w, against v:
 * Hv = ∇_w ⟨∇_w f, v⟩. f must have been built with its history recorded. flags may add
 * BLO_GRAD_CREATE_GRAPH to differentiate Hv again (third order). */
blo_status blo_hvp(blo_ctx *ctx, blo_tensor *f, int n, blo_tensor *const *w,
                   blo_tensor *const *v, unsigned flags, blo_tensor **hv);

/* Mixed second-derivative product: out = ∇_x ⟨∇_y f, v⟩ = (∂²f/∂x∂y) v, for the ny tensors y
 * (with directions v) and the nx tensors x. */
blo_status blo_mixed_vp(blo_ctx *ctx, blo_tensor *f, int ny, blo_tensor *const *y,
                        blo_tensor *const *v, int nx, blo_tensor *const *x, unsigned flags,
                        blo_tensor **out);

/* Jacobian-vector product: jv[k] = Σ_i (∂outputs[k]/∂inputs[i]) tangents[i], by the double
 * VJP trick (two reverse passes; a zero dummy cotangent u, then ∇_u ⟨Jᵀu, t⟩). */
blo_status blo_jvp(blo_ctx *ctx, int n_out, blo_tensor *const *outputs, int n_in,
                   blo_tensor *const *inputs, blo_tensor *const *tangents, unsigned flags,
                   blo_tensor **jv);

/* A view of t's values with no history (stop-gradient). Lives in ctx. */
blo_tensor *blo_detach(blo_ctx *ctx, blo_tensor *t);

#ifdef __cplusplus
}
#endif
#pragma GCC visibility pop
#endif
