/* blo/linalg.h — matrix-free linear algebra on lists of tensors: conjugate gradients, the
 * Neumann series and fixed-point iteration with optional Anderson acceleration.
 *
 * A vector is a list of n tensors (the parameter groups of a model); an operator is a
 * callback that maps one such list to another of the same shapes (a Hessian-vector product,
 * a vector-Jacobian product, a layer's fixed-point map). The solvers only ever apply it and
 * combine lists by dot products, axpy and scaling on the tensors' backend, so any operator
 * blo ops can express is accepted, and no matrix is formed.
 *
 *   CG          A v = b for symmetric positive definite A (Hestenes & Stiefel, J. Res. NBS
 *               1952); the implicit-function-theorem solve of Pedregosa (ICML 2016).
 *   Neumann     v = α Σ_{k=0}^{K} (I − αA)^k b → A⁻¹ b for 0 < α < 2/λ_max(A), A ≻ 0
 *               (Lorraine, Vicol & Duvenaud, AISTATS 2020).
 *   fixed point u ← G(u) for a contraction G, optionally Anderson-accelerated: with the
 *               residuals f_k = G(u_k) − u_k and the last m differences ΔU, ΔF,
 *               γ = argmin ‖f_k − ΔF γ‖, u_{k+1} = u_k + β f_k − (ΔU + β ΔF) γ
 *               (Anderson, J. ACM 1965; Walker & Ni, SIAM J. Numer. Anal. 2011; used for deep
 *               equilibrium models by Bai, Kolter & Koltun, NeurIPS 2019).
 */
#ifndef BLO_LINALG_H
#define BLO_LINALG_H
#pragma GCC visibility push(default)

#include "blo/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* out[i] = A(in)[i] for i < n. out holds n tensors of in's shapes, allocated by the solver;
 * the callback writes their values (blo_copy_into) and may make temporaries in ctx (the
 * solver rewinds ctx after each call). Return BLO_OK, or an error to stop the solver with it
 * (leave a message in ctx with blo_ctx_set_error). */
typedef blo_status (*blo_linop_fn)(blo_ctx *ctx, blo_tensor *const *in, blo_tensor *const *out,
                                   void *user);

typedef struct blo_linop {
    int n; /* tensors in a vector */
    blo_linop_fn apply;
    void *user;
} blo_linop;

typedef struct blo_linalg_opts {
    int max_iter;         /* CG / fixed point: iterations at most; Neumann: terms K */
    double tol;           /* stop when the residual norm is <= tol (Neumann: not used) */
    double alpha;         /* Neumann: the step α */
    int anderson_m;       /* fixed point: differences kept by Anderson (0: plain iteration) */
    double anderson_beta; /* fixed point: Anderson's mixing β (1: none; ignored when m = 0) */
} blo_linalg_opts;

typedef struct blo_linalg_result {
    int iters;       /* iterations (CG, fixed point) or terms (Neumann) done */
    double residual; /* CG: ‖b − Av‖ (recursive); Neumann: ‖(I − αA)^K b‖, the last term;
                        fixed point: ‖G(u) − u‖ at the last iteration */
    double residual0; /* the same at the start (CG: ‖b − Av₀‖, Neumann: ‖b‖, fixed point:
                         ‖u₀‖) */
    int converged;    /* residual <= tol (never for Neumann) */
    double curvature; /* CG: pᵀAp / pᵀp of the last direction (NAN before the first) */
} blo_linalg_result;

/* Solves A x = b by conjugate gradients from the start in x (n tensors, updated in place; a
 * zero start costs no product). Stops after max_iter iterations or when ‖r‖ <= tol. A
 * direction of zero or negative curvature (A not positive definite) stops it: at the first
 * iteration with BLO_ERR_NUMERIC (res->curvature says how far from definite A is along b),
 * later with BLO_OK, the solution so far and converged = 0 (truncated CG). A non-finite
 * product is BLO_ERR_NUMERIC. Temporaries live in ctx and are released before it returns.
 * Errors carry a message in ctx. res is optional. */
blo_status blo_linalg_cg(blo_ctx *ctx, const blo_linop *A, blo_tensor *const *b,
                         blo_tensor *const *x, const blo_linalg_opts *o, blo_linalg_result *res);

/* x = α Σ_{k=0}^{K} (I − αA)^k b with K = o->max_iter terms after the first (K products);
 * x's values are overwritten (not a start). A term growing beyond 10⁶ times ‖b‖ (α too large,
 * or A not positive semidefinite) stops it with BLO_ERR_NUMERIC at that term (res->iters,
 * res->residual / res->residual0 give the growth). Temporaries released before it returns. */
blo_status blo_linalg_neumann(blo_ctx *ctx, const blo_linop *A, blo_tensor *const *b,
                              blo_tensor *const *x, const blo_linalg_opts *o,
                              blo_linalg_result *res);

/* Iterates x ← G(x) from the start in x (updated in place) until ‖G(x) − x‖ <= tol or
 * max_iter iterations, with Anderson acceleration when o->anderson_m > 0. ‖x‖ beyond 10⁶
 * max(‖x₀‖, 1) (G not a contraction) stops it with BLO_ERR_NUMERIC. Temporaries (2m + 4
 * vectors with Anderson) live in ctx and are released before it returns. */
blo_status blo_linalg_fixed_point(blo_ctx *ctx, const blo_linop *G, blo_tensor *const *x,
                                  const blo_linalg_opts *o, blo_linalg_result *res);

/* A⁻¹ for a square float matrix A [n, n] (n <= 8192), as a new tensor of A's dtype in ctx,
 * values only (not recorded): Gaussian elimination with partial pivoting in double on the
 * host, O(n³). For the resolvents that splitting solvers factor once and apply to a batch by
 * one product. NULL for a matrix that is not square float (BLO_ERR_INVALID) or is singular to
 * working precision (BLO_ERR_NUMERIC: smallest pivot below 1e-13 of the largest entry), with a
 * message in ctx. */
blo_tensor *blo_linalg_inverse(blo_ctx *ctx, blo_tensor *A);

#ifdef __cplusplus
}
#endif
#pragma GCC visibility pop
#endif
