/* blocks.h — building blocks shared by several hypergradient methods of this folder, on top
 * of the toolkit in method.h (common.c): the upper level's partial gradients at a point, the lower
 * objective's value for the record, and the second-order products through a recorded inner
 * gradient g = ∇_y f that implicit methods are made of. Internal to the library. All tensors
 * live in e->sctx. */
#ifndef BLO_HYPERGRAD_BLOCKS_H
#define BLO_HYPERGRAD_BLOCKS_H

#include "method.h"

/* F(x, y) (recorded), its value into e->last_upper, and its partial gradients:
 * dx[i] = ∂F/∂x_i (nx tensors) and dy[i] = ∂F/∂y_i (ny tensors), zeros where F does not
 * depend on them. y must be leaves with requires_grad (or tensors with history). */
blo_status blo__upper_grads(blo_method_env *e, blo_tensor *const *y, int64_t step, blo_tensor **dx,
                            blo_tensor **dy);
/* f(x, y) computed without a graph; its value into e->last_lower. */
blo_status blo__lower_value(blo_method_env *e, blo_tensor *const *y, int64_t step);
/* out ← ∇²_yy f · p, from g = ∇_y f recorded with create-graph at the leaves y: one reverse
 * pass. out (ny tensors of y's shapes, the caller's) is overwritten; the memory the product
 * takes is released before returning. */
blo_status blo__hess_vec(blo_method_env *e, blo_tensor *const *g, blo_tensor *const *y,
                         blo_tensor *const *p, blo_tensor *const *out);
/* The last step of an implicit method: hx[i] = dx[i] − (∇²_xy f · v)_i = dx[i] − ∇_{x_i}⟨g, v⟩
 * with g = ∇_y f recorded with create-graph. hx[i] are new tensors. */
blo_status blo__implicit_finish(blo_method_env *e, blo_tensor *const *g, blo_tensor *const *v,
                                blo_tensor *const *dx, blo_tensor **hx);
/* The operator p ↦ (∇²_yy f + wd I + δI) p for the solvers of blo/linalg.h, from g = ∇_y f
 * recorded with create-graph at the leaves y (blo__hess_vec, plus (wd + δ) p): wd the inner
 * steps' weight decay (blo__ll_weight_decay), δ the damping. */
typedef struct blo__hess_op {
    blo_method_env *e;
    blo_tensor *const *g, *const *y;
    double damping;
} blo__hess_op;
blo_linop blo__hess_linop(blo__hess_op *op);
/* A linear-algebra solver's failure into e->err (its message is in e->sctx), unless a
 * message is there already (an operator failure records one); returns st. */
blo_status blo__linalg_fail(blo_method_env *e, blo_status st);
/* The weight decay the inner steps add to the lower level, wd in f + ½ wd ‖y‖² (the inner
 * optimizer's; 0 with a user-defined inner update, which applies none). Its Hessian wd·I
 * belongs in every product with ∇²_yy f. */
double blo__ll_weight_decay(const blo_method_env *e);
/* For the methods that take no derivative through the LL start (the implicit ones): refuses a
 * learned start (init = learned, whose dF/dy_0 they would report as 0, so y_0 never moves),
 * naming the methods that can learn one. */
blo_status blo__refuse_learned_start(blo_method_env *e, const char *method);
/* For the single-loop methods that carry y from one outer iteration to the next, starting at
 * the problem's y_0 (bome, soba, amm): refuses a learned inner step size, a learned start and a
 * start built from x, and with need_sgd an inner optimizer other than plain sgd (y takes plain
 * steps of size inner.lr). */
blo_status blo__check_carried_y(blo_method_env *e, const char *method, int need_sgd);
/* The state tensors of a trajectory in a fixed order — y, then the m, then the v that exist —
 * into out (room for 3 ny); returns how many. */
int blo__traj_tensors(int ny, const blo_traj *tr, blo_tensor **out);

/* Reverse mode through the unrolled lower level by the adjoint recursion (rhg.c): a forward
 * pass without a graph storing the state every S steps (the last segment recorded as it is
 * reached), then the last K of the T steps walked back segment by segment, each earlier one
 * recomputed with its graph, every graph released after its reverse pass.
 * hx = dF/dx; hy0 = dF/dy_0 for a learned start (zeros when K < T truncates y_0 away); with
 * init = BLO_INIT_FROM_X and K = T, the path through y_0 = init_y(x) is added. Sets F, f and
 * keeps y_T. K is clamped to T, S to >= 1. */
blo_status blo__adjoint_reverse(blo_method_env *e, int64_t K, int64_t S, blo_tensor **hx,
                                blo_tensor **hy0);

#endif
