/* first_order.c — the first-order approximation: drop the second-order term.
 *
 *     dF/dx ≈ ∂F/∂x(x, y_T),     and with a learned start  dF/dy_0 ≈ ∂F/∂y(x, y_T),
 *
 * i.e. dy_T/dx is taken as 0 and dy_T/dy_0 as I. With a start built from x (BLO_INIT_FROM_X,
 * y_0 = init_y(x)) the same identity gives dF/dx ≈ ∂F/∂x + (∂y_0/∂x)ᵀ ∂F/∂y(x, y_T): for MAML's
 * θ broadcast to B tasks, Σ_tasks ∂F/∂y_T — first-order MAML. y_T comes from T inner steps without
 * a graph, so the cost is one forward pass and one gradient of F. Exact when x reaches F only
 * directly; otherwise it ignores how x moves y (a hyper-variable that acts only through the
 * lower level gets a zero gradient). DARTS first order: Liu, Simonyan & Yang, "DARTS:
 * differentiable architecture search", ICLR 2019; first-order MAML: Finn, Abbeel & Levine,
 * ICML 2017; Nichol, Achiam & Schulman, "On first-order meta-learning algorithms", 2018.
 */
#include "blocks.h"

#include <string.h>

static blo_status first_order_hypergrad(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    int ny = e->ny;
    blo_traj tr;
    blo_status st = blo__traj_start(e, &tr, 0);
    if (!st) st = blo__unroll(e, &tr, e->c.inner_steps, 0);
    if (st) return st;
    blo_tensor **dy = blo__list(e, ny);
    if (!dy) return blo__method_ctx_fail(e, "first_order");
    if ((st = blo__upper_grads(e, tr.y, tr.t, hx, dy))) return st;
    if (e->c.init == BLO_INIT_LEARNED) memcpy(hy0, dy, sizeof(blo_tensor *) * (size_t)ny);
    if ((st = blo__init_vjp(e, dy, hx))) return st;
    if ((st = blo__lower_value(e, tr.y, tr.t))) return st;
    blo__keep_state(e, &tr);
    return BLO_OK;
}

const blo_method blo__method_first_order = {
    {"first_order", "drop the second-order term: dF/dx ≈ ∂F/∂x(x, y_T) (learned start: ∂F/∂y)",
     "Liu et al., ICLR 2019 (DARTS 1st order); Nichol et al., 2018 (FOMAML)",
     "inner, inner_steps, init (from_x: FOMAML)"},
    NULL,
    first_order_hypergrad,
    0};
