/* rhg_ckpt.c — reverse-mode hypergradient through the unrolled lower level with O(√T) memory:
 * the numbers of rhg, recomputing the trajectory segment by segment instead of keeping it.
 *
 *   s_t = (y_t, m_t, v_t),  s_{t+1} = Φ(x, s_t),           (m, v: momentum / Adam buffers)
 *   λ_T = ∂F/∂s_T,  λ_t = (∂Φ/∂s_t)ᵀ λ_{t+1},  dF/dx = ∂F/∂x + Σ_t (∂Φ/∂x)ᵀ λ_{t+1}.
 *
 * The adjoint recursion of rhg (blo__adjoint_reverse in rhg.c) with segments of S steps
 * (S = checkpoints, or ⌈√T⌉) instead of one: the forward pass without a graph stores s_t
 * every S steps, and the reverse pass recomputes each segment [t_k, t_{k+1}) from its
 * checkpoint with the graph recorded; one reverse pass of its end state seeded with
 * λ_{t_{k+1}} gives, with respect to (s_{t_k}, x), the adjoint λ_{t_k} and the segment's share
 * of Σ_t (∂Φ/∂x)ᵀ λ_{t+1}. The segment's graph is released before the next one, so memory
 * holds ⌈T/S⌉ + 1 states and one S-step graph: O(√T) at the default S, where rhg (S = 1)
 * holds T + 1 states and one step's graph — less when a state is small beside a step's graph
 * (a few weights over many examples), more when the states dominate (large y, short steps).
 * Griewank & Walther, "Algorithm 799: revolve", ACM TOMS 2000 (checkpointing for reverse
 * mode); Shaban, Cheng, Hatch & Boots, AISTATS 2019 (its use for bilevel optimization).
 *
 * A learned start gets dF/dy_0 = λ_0 (its y part). A lower objective that samples through the
 * solver's RNG sees the same draws as in rhg: the generator's state is saved with every
 * checkpoint and restored when its segment is recomputed.
 */
#include "blocks.h"

#include <math.h>

static blo_status ckpt_check(blo_method_env *e) {
    if (e->c.checkpoints < 0)
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "rhg_ckpt: checkpoints (segment length) must be >= 0 "
                                "(0 = ⌈√T⌉), got %d",
                                e->c.checkpoints);
    return BLO_OK;
}

static blo_status ckpt_hypergrad(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    int64_t T = e->c.inner_steps;
    int64_t S = e->c.checkpoints > 0 ? e->c.checkpoints : (int64_t)ceil(sqrt((double)T));
    return blo__adjoint_reverse(e, T, S, hx, hy0);
}

const blo_method blo__method_rhg_ckpt = {
    {"rhg_ckpt",
     "rhg's dF/dx with O(√T) memory: checkpoint every S steps, recompute segments in reverse",
     "Griewank & Walther, ACM TOMS 2000; Shaban et al., AISTATS 2019",
     "inner, inner_steps, init, checkpoints (S; 0 = ⌈√T⌉)"},
    ckpt_check,
    ckpt_hypergrad,
    0};
