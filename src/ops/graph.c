/* graph.c — the sampled, normalised adjacency of graph structure learning (LDS, Franceschi
 * et al. ICML 2019) as one op, for a GCN that propagates with it.
 *
 *   S = ½ (θ + θᵀ) off the diagonal,  M_ij = M_ji = [u_ij < S_ij] (i < j, u uniform),
 *   Â = D^-½ (M + I) D^-½,  D = diag(1 + M 1).
 *
 * Differentiated with the straight-through estimator A = S + (M − S)|const, whose value is M
 * and whose derivative is that of S: with g = ∂L/∂Â and d_i = Â_ii^½,
 *
 *   ∂L/∂A_ij = g_ij d_i d_j + c_i,   c_i = −½ d_i² (Σ_k g_ik Â_ik + Σ_k g_ki Â_ki)
 *   ∂L/∂θ_ij = [i ≠ j] ½ (∂L/∂A_ij + ∂L/∂A_ji)
 *
 * (the second term of ∂L/∂A is the derivative through the degree, which counts every entry of
 * its row). Written as the composition — sample, symmetrise, add, degree, scale, two products
 * per layer — it took about 40 passes over N × N per inner step and kept a dozen N × N
 * tensors; here the forward is two passes, the backward two, and the only N × N tensor kept
 * is Â itself (M and D are read back from it: M_ij = [Â_ij ≠ 0] off the diagonal, d_i² =
 * Â_ii). The backward is the linear map above applied to g, recorded as an op whose own
 * backward is its adjoint (cpu_graph.c has both), so it differentiates again with respect to
 * g — what a reverse pass through an unrolled inner gradient needs. The second derivative
 * with respect to θ through the degree is not kept: Â is a constant of the map.
 */
#include "ops_util.h"

/* The linear map of the backward (adjoint = 0: g ↦ ∂L/∂θ) or its adjoint (1), with Â fixed.
 * Node: in[0] g; saved[0] Â; ip[0] adjoint. */
static blo_tensor *st_map(blo_ctx *ctx, blo_tensor *g, blo_tensor *ahat, int adjoint);

static blo_status st_map_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                            const bool *need, blo_tensor **gin) {
    (void)out;
    (void)need;
    gin[0] = st_map(ctx, g, n->saved[0], !(int)n->ip[0]);
    return gin[0] ? BLO_OK : ctx->status;
}
static const blo_op_def ST_MAP = {"st_gcn_adj_map", st_map_bw, 1};

static blo_tensor *st_map(blo_ctx *ctx, blo_tensor *g, blo_tensor *ahat, int adjoint) {
    BLO_GUARD(ctx);
    if (!g) return NULL;
    int64_t n = ahat->shape[0], w = 2 * n;
    blo_tensor *gc = blo__is_contig(g) && g->dtype == ahat->dtype
                         ? g
                         : blo__alloc(ctx, ahat->dtype, 2, ahat->shape);
    blo_tensor *work = blo__alloc(ctx, BLO_F64, 1, &w);
    blo_tensor *out = blo__alloc(ctx, ahat->dtype, 2, ahat->shape);
    if (!gc || !work || !out) return NULL;
    if (gc != g) ctx->be->copy(g, gc);
    ctx->be->st_adj_grad(adjoint, gc, ahat, work, out);
    blo_node *nd;
    BLO_RECORD(nd, ctx, out, &ST_MAP, 1, g);
    if (nd) {
        nd->saved[0] = ahat;
        nd->ip[0] = adjoint;
    }
    return out;
}

static blo_status st_adj_bw(blo_ctx *ctx, const blo_node *n, blo_tensor *out, blo_tensor *g,
                            const bool *need, blo_tensor **gin) {
    (void)n;
    (void)need;
    gin[0] = st_map(ctx, g, out, 0);
    return gin[0] ? BLO_OK : ctx->status;
}
static const blo_op_def ST_ADJ = {"st_gcn_adj", st_adj_bw, 1};

blo_tensor *blo_st_gcn_adj(blo_ctx *ctx, blo_tensor *theta, blo_rng *rng) {
    BLO_GUARD(ctx);
    if (!theta) return NULL;
    if (!blo__check_float(ctx, "blo_st_gcn_adj", theta)) return NULL;
    if (theta->ndim != 2 || theta->shape[0] != theta->shape[1] || theta->shape[0] < 1) {
        char d[64];
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "blo_st_gcn_adj: theta %s is not a square [N, N]",
                          blo__desc(theta, d, sizeof d));
        return NULL;
    }
    if (!rng) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_st_gcn_adj: no rng to draw the sample from");
        return NULL;
    }
    int64_t w = 2 * theta->shape[0];
    blo_tensor *tc = blo__is_contig(theta) ? theta : blo__alloc(ctx, theta->dtype, 2, theta->shape);
    blo_tensor *work = blo__alloc(ctx, BLO_F64, 1, &w);
    blo_tensor *out = blo__alloc(ctx, theta->dtype, 2, theta->shape);
    if (!tc || !work || !out) return NULL;
    if (tc != theta) ctx->be->copy(theta, tc);
    ctx->be->st_adj_forward(tc, rng, work, out);
    blo_node *nd;
    BLO_RECORD(nd, ctx, out, &ST_ADJ, 1, theta);
    (void)nd;
    return out;
}
