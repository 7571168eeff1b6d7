/* deq_layer.c — an equilibrium layer from the C API: z* = relu(z* Wᵀ + x Uᵀ + b) with the
 * monotone W = (1 − m) I − AᵀA + B − Bᵀ, found by forward–backward splitting with Anderson
 * acceleration, trained by the implicit gradient
 *
 *     u = J_Tᵀ u + ∂L/∂z*,   dL/dθ = (∂T/∂θ)ᵀ u
 *
 * so that Σ_j z*_j(x) fits a smooth target of x. The loss is a function of z* only, so
 * ∂L/∂z* is written by hand here; with a head, blo_grad of the head's loss at a leaf copy of z*
 * gives it (see src/tasks/deq/run.c). Prints the loss, and the solvers' iterations, before and
 * after; exits 1 unless the loss fell by half.
 *
 *   cc deq_layer.c $(pkg-config --cflags --libs blo) -lm -o deq_layer
 */
#include <blo/blo.h>

#include <math.h>
#include <stdio.h>

enum { B = 64, P = 3, D = 16, STEPS = 150 };

int main(void) {
    blo_ctx *pc = blo_ctx_new(0), *sc = blo_ctx_new(0);
    blo_rng r;
    blo_rng_seed(&r, 1);
    blo_deq_opts o = blo_deq_opts_default(); /* monotone, relu, fb + Anderson, implicit */
    blo_deq L;
    if (blo_deq_init(pc, &L, P, D, &o, BLO_F64, &r)) {
        fprintf(stderr, "deq_layer: %s\n", blo_ctx_error(pc));
        return 1;
    }
    /* The data: x uniform in [-1, 1]^3, target t = sin(x_0) + x_1 x_2 + 1 (positive: relu). */
    double xs[B * P], ts[B];
    for (int i = 0; i < B; i++) {
        for (int j = 0; j < P; j++)
            xs[i * P + j] = 2 * blo_rng_uniform(&r) - 1;
        ts[i] = sin(xs[i * P]) + xs[i * P + 1] * xs[i * P + 2] + 1;
    }
    blo_tensor *x = blo_from_f64(pc, BLO_F64, 2, (int64_t[]){B, P}, xs);
    blo_tensor *t = blo_from_f64(pc, BLO_F64, 2, (int64_t[]){B, 1}, ts);
    blo_opt adam = blo_opt_adam(0.02);
    blo_opt_state st;
    blo_opt_state_init(pc, &adam, L.np, L.p, &st);
    double first = NAN, last = NAN;
    for (int k = 0; k <= STEPS; k++) {
        blo_mark mk = blo_ctx_mark(sc);
        blo_deq_stats s;
        blo_tensor *inj = blo_deq_inject(sc, &L, x); /* x Uᵀ + b, recorded: U and b learn */
        blo_tensor *z = blo_deq_solve(sc, &L, inj, &s);
        /* L = ½ mean (Σ_j z_j − t)², ∂L/∂z_ij = (Σ_j z_ij − t_i) / B. */
        int ax = 1;
        blo_tensor *res = blo_sub(sc, blo_sum(sc, z, 1, &ax, 1), t);
        blo_tensor *g = blo_expand(sc, blo_scale(sc, res, 1.0 / B), 2, (int64_t[]){B, D});
        blo_tensor *grads[BLO_DEQ_MAX_PARAMS];
        if (!res || !g || blo_deq_backward(sc, &L, inj, z, blo_contiguous(sc, g), grads, &s) ||
            blo_opt_step(sc, &adam, &st, L.np, L.p, grads)) {
            fprintf(stderr, "deq_layer: step %d: %s\n", k, blo_ctx_error(sc));
            return 1;
        }
        double loss = 0.5 * blo_tensor_item(blo_dot(sc, res, res)) / B;
        if (k == 0) first = loss;
        last = loss;
        if (k % 50 == 0)
            printf("step %3d: loss %.5f, forward %d iterations (residual %.2g, %lld rows above "
                   "tol), adjoint %d\n",
                   k, loss, s.fwd_iters, s.fwd_residual, (long long)s.unconverged, s.bwd_iters);
        blo_ctx_rewind(sc, mk);
    }
    blo_ctx_free(sc);
    blo_ctx_free(pc);
    printf("loss %.5f -> %.5f\n", first, last);
    return last < 0.5 * first ? 0 : 1;
}
