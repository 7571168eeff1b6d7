/* rhg.c — reverse-mode hypergradient through the unrolled lower level (ITD), its truncated
 * variant, and the adjoint recursion both run on (shared with rhg_ckpt.c).
 *
 *   s_t = (y_t, m_t, v_t),  s_{t+1} = Φ(x, s_t),  t = 0 .. T-1   (m, v: momentum / Adam buffers)
 *   λ_T = ∂F/∂s_T,  λ_t = (∂Φ/∂s_t)ᵀ λ_{t+1},  dF/dx = ∂F/∂x(x, y_T) + Σ_t (∂Φ/∂x)ᵀ λ_{t+1}
 *
 * Maclaurin, Duvenaud & Adams, ICML 2015; Franceschi, Donini, Frasconi & Pontil, "Forward and
 * reverse gradient-based hyperparameter optimization", ICML 2017 (the reverse recursion above).
 *
 * How it is computed (blo__adjoint_reverse): a forward pass without a graph stores the state
 * s_t at every S-th step and records the last segment's graph as it reaches it; the reverse
 * pass walks the segments from the last to the first, recomputes each earlier one from its
 * stored start with the graph recorded, and one reverse pass of its end state seeded with λ
 * gives the adjoint at its start and the segment's share of the sum.
 * Each segment's graph and cotangents are released (the scratch context rewound) before the
 * next one; λ and the x accumulator are buffers overwritten in place. rhg walks step by step
 * (S = 1): memory is the T + 1 states (y and the optimizer's buffers, nothing n-sized) and one
 * step's graph, instead of the T steps' graphs one blo_grad over the whole trajectory would
 * keep — at the price of recomputing T - 1 steps. rhg_ckpt takes S = ⌈√T⌉.
 * Griewank & Walther, "Algorithm 799: revolve", ACM TOMS 2000 (checkpointing).
 *
 * trhg keeps only the last K = trhg_window steps in the reverse pass (the first T-K run without a
 * graph): Shaban, Cheng, Hatch & Boots, "Truncated back-propagation for bilevel optimization",
 * AISTATS 2019. With K = T it is rhg.
 *
 * A learned start (BLO_INIT_LEARNED) gets dF/dy_0 = λ_0 (its y part) when the pass reaches
 * y_0 (zeros when trhg truncates it away); a start y_0 = init_y(x) adds (∂y_0/∂x)ᵀ λ_0. A lower
 * objective that samples through the solver's RNG sees in every recomputed segment the draws
 * of the forward pass: the generator's state is stored with each segment's start.
 */
#include "blocks.h"

#include <string.h>

/* A stored state s_t: fresh tensors shaped like tr's state (values copied), in e->sctx, with
 * NULL buffers where the inner optimizer keeps none. */
static blo_status state_clone(blo_method_env *e, const blo_traj *tr, blo_traj *cs) {
    cs->y = blo__list(e, e->ny);
    cs->m = blo__list(e, e->ny);
    cs->v = blo__list(e, e->ny);
    cs->t = tr->t;
    cs->t0 = tr->t0;
    if (!cs->y || !cs->m || !cs->v) return blo__method_ctx_fail(e, "reverse mode: states");
    for (int i = 0; i < e->ny; i++) {
        cs->y[i] = blo_clone(e->sctx, tr->y[i]);
        if (tr->m[i]) cs->m[i] = blo_clone(e->sctx, tr->m[i]);
        if (tr->v[i]) cs->v[i] = blo_clone(e->sctx, tr->v[i]);
        if (!cs->y[i] || (tr->m[i] && !cs->m[i]) || (tr->v[i] && !cs->v[i]))
            return blo__method_ctx_fail(e, "reverse mode: states");
    }
    return BLO_OK;
}

static int count_set(int n, blo_tensor *const *l) {
    int k = 0;
    for (int i = 0; i < n; i++)
        k += l[i] != NULL;
    return k;
}

static void state_copy(int ny, blo_traj *dst, const blo_traj *src) {
    for (int i = 0; i < ny; i++) {
        blo_copy_into(dst->y[i], src->y[i]);
        if (dst->m[i]) blo_copy_into(dst->m[i], src->m[i]);
        if (dst->v[i]) blo_copy_into(dst->v[i], src->v[i]);
    }
    dst->t = src->t;
    dst->t0 = src->t0;
}

/* Segment k recorded: its start s_{t_k} as fresh leaves (requires_grad), listed after x in
 * `in`, and its end state in `out`, unrolled to step `to` with the graph. */
static blo_status record_segment(blo_method_env *e, const blo_traj *start, int64_t to,
                                 blo_tensor **in, blo_tensor **out) {
    blo_traj seg;
    blo_status st = state_clone(e, start, &seg);
    if (st) return st;
    memcpy(in, e->x, sizeof(blo_tensor *) * (size_t)e->nx);
    int nst = blo__traj_tensors(e->ny, &seg, in + e->nx);
    for (int q = 0; q < nst; q++)
        in[e->nx + q]->requires_grad = true;
    if ((st = blo__unroll(e, &seg, to, 1))) return st;
    blo__traj_tensors(e->ny, &seg, out);
    return BLO_OK;
}

blo_status blo__adjoint_reverse(blo_method_env *e, int64_t K, int64_t S, blo_tensor **hx,
                                blo_tensor **hy0) {
    blo_ctx *c = e->sctx;
    int nx = e->nx, ny = e->ny;
    int64_t T = e->c.inner_steps;
    if (K > T) K = T;
    if (S < 1) S = 1;
    int64_t t0 = T - K, nseg = (K + S - 1) / S;
#define SEG_END(k) (t0 + ((k) + 1) * S < T ? t0 + ((k) + 1) * S : T)

    /* Forward without a graph: the first T-K steps are truncated away; then checkpoint k holds
     * s_{min(t0 + kS, T)}, rng[k] the generator's state when segment k starts. */
    blo_traj tr;
    blo_status st = blo__traj_start(e, &tr, 0);
    if (!st) st = blo__unroll(e, &tr, t0, 0);
    if (st) return st;
    blo_traj *ck = blo__ctx_alloc(c, sizeof(blo_traj) * (size_t)(nseg + 1));
    blo_rng *rng = blo__ctx_alloc(c, sizeof(blo_rng) * (size_t)(nseg + 1));
    if (!ck || !rng) return blo__method_ctx_fail(e, "reverse mode: states");
    for (int64_t k = 0; k <= nseg; k++)
        if ((st = state_clone(e, &tr, &ck[k]))) return st;
    for (int64_t k = 0; k + 1 < nseg; k++) {
        rng[k] = e->rng;
        blo_mark mk = blo_ctx_mark(c);
        /* The values-only unroll copies its start and hands back fresh tensors: ck[k] stays. */
        blo_traj seg = ck[k];
        if ((st = blo__unroll(e, &seg, SEG_END(k), 0))) return st;
        state_copy(ny, &ck[k + 1], &seg);
        blo_ctx_rewind(c, mk);
    }

    /* Below the per-segment marks: y_T as leaves, the adjoint λ and the x accumulator. */
    blo_traj lam;
    blo_tensor **yT = blo__list(e, ny), **lams = blo__list(e, 3 * ny), **acc = blo__list(e, nx);
    if (!yT || !lams || !acc || (st = blo__zeros_like(e, nx, e->x, acc)))
        return st ? st : blo__method_ctx_fail(e, "reverse mode");
    /* The state at T: its optimizer part is kept for inner_state = carry (else only y_T). */
    int carry = e->c.inner_state == BLO_INNER_STATE_CARRY;
    blo_traj fin = {0};
    if ((st = state_clone(e, &ck[nseg], &lam))) return st;
    if (carry && (st = state_clone(e, &ck[nseg], &fin))) return st;
    int nst = blo__traj_tensors(ny, &lam, lams);
    for (int i = 0; i < ny; i++) {
        if (!(yT[i] = blo_clone(c, ck[nseg].y[i]))) return blo__method_ctx_fail(e, "reverse mode");
        yT[i]->requires_grad = true;
    }

    /* The last segment is recorded as the forward pass reaches it, and walked back first: no
     * recomputation for it (for T = S, or T = 1, none at all). */
    blo_mark mk = blo_ctx_mark(c);
    blo_tensor **in = blo__list(e, nx + 3 * ny), **out = blo__list(e, 3 * ny),
               **grads = blo__list(e, nx + 3 * ny), **dx = blo__list(e, nx),
               **dy = blo__list(e, ny);
    if (!in || !out || !grads || !dx || !dy) return blo__method_ctx_fail(e, "reverse mode");
    if (nseg > 0) {
        if ((st = record_segment(e, &ck[nseg - 1], T, in, out))) return st;
        for (int i = 0; i < ny; i++)
            blo_copy_into(yT[i], out[i]);
        for (int i = 0, q = ny; carry && i < ny; i++) /* out: y, then the m and v that exist */
            if (fin.m[i]) blo_copy_into(fin.m[i], out[q++]);
        for (int i = 0, q = ny + (carry ? count_set(ny, fin.m) : 0); carry && i < ny; i++)
            if (fin.v[i]) blo_copy_into(fin.v[i], out[q++]);
        fin.t = T;
    }

    /* λ_T = (∂F/∂y_T, 0, 0) and ∂F/∂x at y_T. */
    if ((st = blo__upper_grads(e, yT, T, dx, dy))) return st;
    blo_rng after_upper = e->rng;
    for (int q = 0; q < nst; q++)
        blo_fill(lams[q], 0);
    for (int i = 0; i < ny; i++)
        blo_copy_into(lam.y[i], dy[i]);
    blo__axpy_list(nx, 1.0, dx, acc);

    for (int64_t k = nseg - 1; k >= 0; k--) {
        if (k < nseg - 1) { /* recompute segment k from its checkpoint, with its draws */
            e->rng = rng[k];
            mk = blo_ctx_mark(c);
            in = blo__list(e, nx + 3 * ny), out = blo__list(e, 3 * ny);
            grads = blo__list(e, nx + 3 * ny);
            if (!in || !out || !grads) return blo__method_ctx_fail(e, "reverse mode");
            if ((st = record_segment(e, &ck[k], SEG_END(k), in, out))) return st;
        }
        /* One reverse pass: (λ at the segment's start, its Σ (∂Φ/∂x)ᵀ λ_{t+1}) from λ at its end. */
        if (blo_grad(c, nst, out, lams, nx + nst, in, 0, grads))
            return blo__method_ctx_fail(e, "reverse mode: the reverse pass of a segment");
        blo__axpy_list(nx, 1.0, grads, acc);
        for (int q = 0; q < nst; q++)
            blo_copy_into(lams[q], grads[nx + q]);
        blo_ctx_rewind(c, mk);
    }
    e->rng = after_upper;
#undef SEG_END

    memcpy(hx, acc, sizeof(blo_tensor *) * (size_t)nx);
    if (K == T) {
        if (e->c.init == BLO_INIT_LEARNED) memcpy(hy0, lam.y, sizeof(blo_tensor *) * (size_t)ny);
        if ((st = blo__init_vjp(e, lam.y, hx))) return st; /* y_0 = init_y(x): (∂y_0/∂x)ᵀ λ_0 */
    } else if (e->c.init == BLO_INIT_LEARNED) { /* λ_0 is truncated away: zero */
        if ((st = blo__zeros_like(e, ny, e->y0, hy0))) return st;
    }
    if ((st = blo__lower_value(e, yT, T))) return st;
    blo__keep_y(e, yT);
    if (carry) blo__keep_opt_state(e, &fin);
    return BLO_OK;
}

static blo_status rhg_hypergrad(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    return blo__adjoint_reverse(e, e->c.inner_steps, 1, hx, hy0);
}

static blo_status trhg_check(blo_method_env *e) {
    if (e->c.trhg_window < 1)
        return blo__method_fail(e, BLO_ERR_INVALID,
                                "trhg: trhg_window (steps kept) must be >= 1, got %d",
                                e->c.trhg_window);
    return BLO_OK;
}

static blo_status trhg_hypergrad(blo_method_env *e, blo_tensor **hx, blo_tensor **hy0) {
    return blo__adjoint_reverse(e, e->c.trhg_window, 1, hx, hy0);
}

const blo_method blo__method_rhg = {
    {"rhg", "dF/dx by reverse mode through all T unrolled inner steps (ITD)",
     "Franceschi et al., ICML 2017; Maclaurin et al., ICML 2015", "inner, inner_steps, init"},
    NULL,
    rhg_hypergrad,
    0};

const blo_method blo__method_trhg = {
    {"trhg", "reverse mode through the last K of T inner steps only", "Shaban et al., AISTATS 2019",
     "inner, inner_steps, trhg_window (K)"},
    trhg_check,
    trhg_hypergrad,
    0};
