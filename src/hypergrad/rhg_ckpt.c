/* rhg_ckpt.c — reverse-mode hypergradient through the unrolled lower level with O(√T) memory:
 * the numbers of rhg, recomputing the trajectory segment by segment instead of keeping it.
 *
 *   s_t = (y_t, m_t, v_t),  s_{t+1} = Φ(x, s_t),           (m, v: momentum / Adam buffers)
 *   λ_T = ∂F/∂s_T,  λ_t = (∂Φ/∂s_t)ᵀ λ_{t+1},  dF/dx = ∂F/∂x + Σ_t (∂Φ/∂x)ᵀ λ_{t+1}.
 *
 * Forward: T steps without a graph, storing s_t every S steps (S = checkpoints, or ⌈√T⌉).
 * Reverse, for the segments [t_k, t_{k+1}) from the last to the first: recompute the segment
 * from its checkpoint with the graph recorded (the start state as leaves), and one reverse
 * pass of its end state seeded with λ_{t_{k+1}} gives, with respect to (s_{t_k}, x), the
 * adjoint λ_{t_k} and the segment's share of Σ_t (∂Φ/∂x)ᵀ λ_{t+1}. The segment's graph is
 * released before the next one, so memory holds ⌈T/S⌉ states and one S-step graph:
 * O(√T) at the default S instead of rhg's O(T), for one extra forward pass.
 * Griewank & Walther, "Algorithm 799: revolve", ACM TOMS 2000 (checkpointing for reverse
 * mode); Shaban, Cheng, Hatch & Boots, AISTATS 2019 (its use for bilevel optimization).
 *
 * A learned start gets dF/dy_0 = λ_0 (its y part). A lower objective that samples through the
 * solver's RNG sees the same draws as in rhg: the generator's state is saved with every
 * checkpoint and restored when its segment is recomputed.
 */
#include "blocks.h"

#include <math.h>
#include <string.h>

/* A stored state s_t: fresh tensors shaped like tr's state (values copied), in e->sctx, with
 * NULL buffers where the inner optimizer keeps none. */
static blo_status state_clone(blo_method_env *e, const blo_traj *tr, blo_traj *cs) {
    cs->y = blo__list(e, e->ny);
    cs->m = blo__list(e, e->ny);
    cs->v = blo__list(e, e->ny);
    cs->t = tr->t;
    if (!cs->y || !cs->m || !cs->v) return blo__method_ctx_fail(e, "rhg_ckpt: checkpoints");
    for (int i = 0; i < e->ny; i++) {
        cs->y[i] = blo_clone(e->sctx, tr->y[i]);
        if (tr->m[i]) cs->m[i] = blo_clone(e->sctx, tr->m[i]);
        if (tr->v[i]) cs->v[i] = blo_clone(e->sctx, tr->v[i]);
        if (!cs->y[i] || (tr->m[i] && !cs->m[i]) || (tr->v[i] && !cs->v[i]))
            return blo__method_ctx_fail(e, "rhg_ckpt: checkpoints");
    }
    return BLO_OK;
}

static blo_status ckpt_check(blo_method_env *e) {
    if (e->c.checkpoints < 0)
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "rhg_ckpt: checkpoints (segment length) must be >= 0 "
                                "(0 = ⌈√T⌉), got %d",
                                e->c.checkpoints);
    return BLO_OK;
}

static void state_copy(int ny, blo_traj *dst, const blo_traj *src) {
    for (int i = 0; i < ny; i++) {
        blo_copy_into(dst->y[i], src->y[i]);
        if (dst->m[i]) blo_copy_into(dst->m[i], src->m[i]);
        if (dst->v[i]) blo_copy_into(dst->v[i], src->v[i]);
    }
    dst->t = src->t;
}

static blo_status ckpt_hypergrad(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    blo_ctx *c = e->sctx;
    int nx = e->nx, ny = e->ny;
    int64_t T = e->c.inner_steps;
    int64_t S = e->c.checkpoints > 0 ? e->c.checkpoints : (int64_t)ceil(sqrt((double)T));
    if (S < 1) S = 1;
    int64_t nseg = (T + S - 1) / S;

    /* Forward without a graph; checkpoint k holds s_{min(kS, T)}, rng[k] the generator's state
     * when segment k starts. */
    blo_traj tr;
    blo_status st = blo__traj_start(e, &tr, 0);
    if (st) return st;
    blo_traj *ck = blo__ctx_alloc(c, sizeof(blo_traj) * (size_t)(nseg + 1));
    blo_rng *rng = blo__ctx_alloc(c, sizeof(blo_rng) * (size_t)(nseg + 1));
    if (!ck || !rng) return blo__method_ctx_fail(e, "rhg_ckpt: checkpoints");
    for (int64_t k = 0; k <= nseg; k++)
        if ((st = state_clone(e, &tr, &ck[k]))) return st;
    for (int64_t k = 0; k < nseg; k++) {
        rng[k] = e->rng;
        blo_mark mk = blo_ctx_mark(c);
        /* The values-only unroll copies its start and hands back fresh tensors: ck[k] stays. */
        blo_traj seg = ck[k];
        if ((st = blo__unroll(e, &seg, (k + 1) * S < T ? (k + 1) * S : T, 0))) return st;
        state_copy(ny, &ck[k + 1], &seg);
        blo_ctx_rewind(c, mk);
    }

    /* λ_T = (∂F/∂y_T, 0, 0) and ∂F/∂x at y_T. */
    blo_tensor **yT = blo__list(e, ny), **dx = blo__list(e, nx), **dy = blo__list(e, ny);
    if (!yT || !dx || !dy) return blo__method_ctx_fail(e, "rhg_ckpt");
    if ((st = blo__leaf_copies(e, ny, ck[nseg].y, yT))) return st;
    if ((st = blo__upper_grads(e, yT, T, dx, dy))) return st;
    blo_rng after_upper = e->rng;

    /* The adjoint λ and the x accumulator live below the per-segment marks. */
    blo_traj lam;
    blo_tensor **lams = blo__list(e, 3 * ny), **acc = blo__list(e, nx);
    if (!lams || !acc) return blo__method_ctx_fail(e, "rhg_ckpt");
    if ((st = state_clone(e, &ck[nseg], &lam))) return st;
    int nst = blo__traj_tensors(ny, &lam, lams);
    for (int q = 0; q < nst; q++)
        blo_fill(lams[q], 0);
    for (int i = 0; i < ny; i++)
        blo_copy_into(lam.y[i], dy[i]);
    for (int i = 0; i < nx; i++)
        if (!(acc[i] = blo_clone(c, dx[i]))) return blo__method_ctx_fail(e, "rhg_ckpt");

    for (int64_t k = nseg - 1; k >= 0; k--) {
        e->rng = rng[k]; /* the draws the forward pass made in this segment */
        blo_mark mk = blo_ctx_mark(c);
        blo_tensor **in = blo__list(e, nx + 3 * ny), **out = blo__list(e, 3 * ny),
                   **grads = blo__list(e, nx + 3 * ny);
        if (!in || !out || !grads) return blo__method_ctx_fail(e, "rhg_ckpt");
        /* The segment's start as leaves (listed before the unroll moves seg on). */
        blo_traj seg;
        if ((st = state_clone(e, &ck[k], &seg))) return st;
        memcpy(in, e->x, sizeof(blo_tensor *) * (size_t)nx);
        blo__traj_tensors(ny, &seg, in + nx);
        for (int q = 0; q < nst; q++)
            in[nx + q]->requires_grad = true;
        if ((st = blo__unroll(e, &seg, (k + 1) * S < T ? (k + 1) * S : T, 1))) return st;
        blo__traj_tensors(ny, &seg, out);
        /* One reverse pass: (λ_{t_k}, the segment's Σ (∂Φ/∂x)ᵀ λ_{t+1}) from λ_{t_{k+1}}. */
        if (blo_grad(c, nst, out, lams, nx + nst, in, 0, grads))
            return blo__method_ctx_fail(e, "rhg_ckpt: reverse pass of a segment");
        blo__axpy_list(nx, 1.0, grads, acc);
        for (int q = 0; q < nst; q++)
            blo_copy_into(lams[q], grads[nx + q]);
        blo_ctx_rewind(c, mk);
    }
    e->rng = after_upper;

    memcpy(hx, acc, sizeof(blo_tensor *) * (size_t)nx);
    if (e->c.init == BLO_INIT_LEARNED) memcpy(hy0, lam.y, sizeof(blo_tensor *) * (size_t)ny);
    if ((st = blo__init_vjp(e, lam.y, hx))) return st; /* y_0 = init_y(x): add (∂y_0/∂x)ᵀ λ_0 */
    if ((st = blo__lower_value(e, yT, T))) return st;
    blo__keep_y(e, yT);
    return BLO_OK;
}

const blo_method blo__method_rhg_ckpt = {
    {"rhg_ckpt",
     "rhg's dF/dx with O(√T) memory: checkpoint every S steps, recompute segments in reverse",
     "Griewank & Walther, ACM TOMS 2000; Shaban et al., AISTATS 2019",
     "inner, inner_steps, init, checkpoints (S; 0 = ⌈√T⌉)"},
    ckpt_check,
    ckpt_hypergrad,
    0};
