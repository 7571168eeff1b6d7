/* test_dist.c — the differentiable collectives of blo/dist.h and the rule they serve.
 *
 * Runs as one process (every collective is the identity there) and, when MPI is built in,
 * under `mpirun -np 2` (the ctest entry dist_mpi2). On R ranks:
 *   1. ops: L(x) = allreduce_sum(Σ_k a_r,k R(x)_k³) + ½‖x‖² with a_r = (r + 1) a: the value,
 *      the gradient Σ_r 3 a_r x² + x, the Hessian-vector product (6 S x + 1) ⊙ v with
 *      S = Σ_r a_r = R(R+1)/2 a, a third derivative and a Jacobian-vector product (forward
 *      mode by two reverse passes), against those closed forms; then
 *      gradcheck's central differences (first and second order) of the same union function;
 *   2. every method of the registry: the hypergradient of a problem whose rows are sharded
 *      over the ranks (written by the rule) equals the 1-process hypergradient on the union of
 *      the rows (f64 1e-12, f32 1e-5 relative), the same bits on every rank and run to run. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static blo_comm *W;

/* ---- 1. the ops ------------------------------------------------------------------------------- */

static const double A3[3] = {0.5, -1.0, 2.0};

static blo_tensor *cubic(blo_ctx *ctx, blo_tensor *const *in, void *env) {
    (void)env;
    blo_tensor *x = in[0];
    int64_t n = 3;
    double a[3];
    for (int k = 0; k < 3; k++) a[k] = (blo_comm_rank(W) + 1) * A3[k];
    blo_tensor *ar = blo_from_f64(ctx, blo_tensor_dtype(x), 1, &n, a);
    blo_tensor *xr = blo_replicate(ctx, W, x);
    blo_tensor *local = blo_sum_all(ctx, blo_mul(ctx, ar, blo_mul(ctx, xr, blo_mul(ctx, xr, xr))));
    return blo_add(ctx, blo_allreduce_sum(ctx, W, local),
                   blo_scale(ctx, blo_dot(ctx, x, x), 0.5));
}

static void test_ops(blo_dtype dt, double tol) {
    blo_ctx *ctx = blo_ctx_new(0);
    int R = blo_comm_size(W);
    double S = R * (R + 1) / 2.0, xs[3] = {1.5, -0.5, 0.7}, vs[3] = {0.3, 0.2, -0.6};
    int64_t n = 3;
    blo_tensor *x = blo_from_f64(ctx, dt, 1, &n, xs), *v = blo_from_f64(ctx, dt, 1, &n, vs);
    blo_set_requires_grad(x, 1);
    blo_tensor *L = cubic(ctx, &x, NULL);
    double want = 0;
    for (int k = 0; k < 3; k++) want += S * A3[k] * xs[k] * xs[k] * xs[k] + 0.5 * xs[k] * xs[k];
    TU_CHECK(tu_close(blo_tensor_item(L), want, tol, 0), "value %.17g, want %.17g",
             blo_tensor_item(L), want);
    blo_tensor *g = NULL, *hv = NULL, *t3 = NULL;
    blo_grad(ctx, 1, &L, NULL, 1, &x, BLO_GRAD_CREATE_GRAPH, &g);
    double gw[3], hw[3], tw[3];
    for (int k = 0; k < 3; k++) {
        gw[k] = 3 * S * A3[k] * xs[k] * xs[k] + xs[k];
        hw[k] = (6 * S * A3[k] * xs[k] + 1) * vs[k];
        tw[k] = 6 * S * A3[k] * vs[k] * vs[k]; /* ∇ ⟨Hv, v⟩ */
    }
    tu_check_close_f64(g, gw, tol, tol, "gradient through the collective");
    blo_tensor *gv = blo_dot(ctx, g, v);
    blo_grad(ctx, 1, &gv, NULL, 1, &x, BLO_GRAD_CREATE_GRAPH, &hv);
    tu_check_close_f64(hv, hw, tol, tol, "Hessian-vector product through the collective");
    blo_tensor *hvv = blo_dot(ctx, hv, v);
    blo_grad(ctx, 1, &hvv, NULL, 1, &x, 0, &t3);
    tu_check_close_f64(t3, tw, tol, tol, "third derivative through the collective");
    /* Forward mode (two reverse passes: the dummy cotangent is a variable, so allreduce_sum's
     * backward must itself be differentiable): J v of the vector allreduce_sum(a_r ⊙ R(x)³)
     * is 3 S a ⊙ x² ⊙ v. */
    double a[3], jw[3];
    for (int k = 0; k < 3; k++) {
        a[k] = (blo_comm_rank(W) + 1) * A3[k];
        jw[k] = 3 * S * A3[k] * xs[k] * xs[k] * vs[k];
    }
    blo_tensor *xr = blo_replicate(ctx, W, x), *jv = NULL;
    blo_tensor *vec = blo_allreduce_sum(
        ctx, W, blo_mul(ctx, blo_from_f64(ctx, dt, 1, &n, a), blo_mul(ctx, xr, blo_mul(ctx, xr, xr))));
    blo_jvp(ctx, 1, &vec, 1, &x, &v, 0, &jv);
    tu_check_close_f64(jv, jw, tol, tol, "Jacobian-vector product through the collective");
    tu_check_ok(ctx, "ops");
    if (dt == BLO_F64) tu_gradcheck(ctx, "replicate / allreduce_sum", cubic, NULL, 1, &x, 1);
    /* Refusals: no communicator, integer tensors. */
    TU_CHECK(!blo_replicate(ctx, NULL, x) && blo_ctx_status(ctx) == BLO_ERR_INVALID &&
                 strstr(blo_ctx_error(ctx), "communicator"),
             "replicate without a communicator: %s", blo_ctx_error(ctx));
    blo_ctx_clear_error(ctx);
    int64_t iv[2] = {1, 2}, two = 2;
    TU_CHECK(!blo_allreduce_sum(ctx, W, blo_from_i64(ctx, 1, &two, iv)) && blo_ctx_status(ctx),
             "allreduce_sum of integers must be refused");
    blo_ctx_free(ctx);
}

/* ---- 2. every method on a sharded ridge problem ----------------------------------------------
 *   f(x, y) = ½ Σ_i (A_i y − b_i)² + ½ Σ_j x_j y_j²     (rows i sharded; the penalty is split
 *                                                          over the ranks by their row share)
 *   F(x, y) = ½ Σ_k (Av_k y − bv_k)² + 0.05 Σ_j x_j y_j² + 0.05 ‖x‖²   (rows k sharded, the
 *             middle term split like f's penalty; 0.05 ‖x‖² replicated)
 * compared after two outer steps, so that the single-loop methods' carried state counts. */
#define N 24
#define NV 16
#define D 5

typedef struct shard {
    blo_comm *c;
    double share, vshare; /* this rank's rows of A (of Av) over all rows */
    blo_tensor *A, *b, *Av, *bv;
} shard;

/* allreduce_sum(½‖A R(y) − b‖² + w Σ_j R(x)_j R(y)_j²) over the shards. */
static blo_tensor *fit(blo_ctx *ctx, const shard *s, blo_tensor *A, blo_tensor *b, blo_tensor *x,
                       blo_tensor *y, double w) {
    blo_tensor *yr = blo_replicate(ctx, s->c, y), *xr = blo_replicate(ctx, s->c, x);
    blo_tensor *res = blo_sub(ctx, blo_matmul(ctx, A, yr), b);
    blo_tensor *pen = blo_sum_all(ctx, blo_mul(ctx, xr, blo_mul(ctx, yr, yr)));
    blo_tensor *local = blo_add(ctx, blo_scale(ctx, blo_dot(ctx, res, res), 0.5), blo_scale(ctx, pen, w));
    return blo_allreduce_sum(ctx, s->c, local);
}

static blo_tensor *lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                         const blo_eval *ev, void *user) {
    (void)ev;
    shard *s = user;
    return fit(ctx, s, s->A, s->b, x[0], y[0], 0.5 * s->share);
}

static blo_tensor *upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                         const blo_eval *ev, void *user) {
    (void)ev;
    shard *s = user;
    blo_tensor *F = fit(ctx, s, s->Av, s->bv, x[0], y[0], 0.05 * s->vshare);
    return blo_add(ctx, F, blo_scale(ctx, blo_dot(ctx, x[0], x[0]), 0.05));
}

typedef struct data {
    double A[N * D], b[N], Av[NV * D], bv[NV], x0[D], y0[D];
} data;

/* Rows [lo, hi) of rank r of R out of n. */
static void rows(int64_t n, int r, int R, int64_t *lo, int64_t *hi) {
    *lo = n * r / R;
    *hi = n * (r + 1) / R;
}

static shard make_shard(blo_ctx *ctx, const data *d, blo_dtype dt, blo_comm *c) {
    int r = blo_comm_rank(c), R = blo_comm_size(c);
    int64_t lo, hi, vlo, vhi;
    rows(N, r, R, &lo, &hi);
    rows(NV, r, R, &vlo, &vhi);
    int64_t sa[2] = {hi - lo, D}, sb = hi - lo, sav[2] = {vhi - vlo, D}, sbv = vhi - vlo;
    shard s = {c, (double)(hi - lo) / N, (double)(vhi - vlo) / NV, blo_from_f64(ctx, dt, 2, sa, d->A + lo * D),
               blo_from_f64(ctx, dt, 1, &sb, d->b + lo), blo_from_f64(ctx, dt, 2, sav, d->Av + vlo * D),
               blo_from_f64(ctx, dt, 1, &sbv, d->bv + vlo)};
    return s;
}

/* dF/dx by `method` on the problem of shard s; 0 on success. */
static int hypergrad(const data *d, shard *s, blo_dtype dt, const char *method, double *hx) {
    blo_ctx *ctx = blo_ctx_new(0);
    int64_t n = D;
    blo_tensor *x0 = blo_from_f64(ctx, dt, 1, &n, d->x0), *y0 = blo_from_f64(ctx, dt, 1, &n, d->y0);
    blo_problem p;
    memset(&p, 0, sizeof p);
    p.nx = p.ny = 1;
    p.x = &x0;
    p.y = &y0;
    p.upper = upper;
    p.lower = lower;
    p.user = s;
    p.x_lo = -INFINITY;
    p.x_hi = INFINITY;
    blo_config c = blo_config_default();
    c.method = method;
    c.inner = blo_opt_sgd(0.05);
    c.inner_steps = 12;
    c.solve_iters = c.neumann_terms = 20;
    c.trhg_window = 10;
    if (!strcmp(method, "neumann")) c.alpha = 0.05; /* below 2/λ_max */
    if (!strcmp(method, "iaptt")) c.init = BLO_INIT_LEARNED;
    char err[512];
    blo_solver *sv = blo_solver_new(&p, &c, err, sizeof err);
    TU_CHECK(sv != NULL, "%s: %s", method, err);
    int rc = 1;
    if (sv) {
        double *o[1] = {hx};
        blo_record rec;
        blo_status st = blo_solver_step(sv, &rec);
        if (!st) st = blo_solver_step(sv, &rec);
        if (!st) st = blo_solver_hypergrad(sv, o);
        TU_CHECK(st == BLO_OK, "%s hypergradient: %s", method, blo_solver_error(sv));
        rc = st != BLO_OK;
    }
    blo_solver_free(sv);
    blo_ctx_free(ctx);
    return rc;
}

static void test_methods(blo_dtype dt, double tol) {
    data d;
    blo_rng g;
    blo_rng_seed(&g, 18); /* the same data on every rank */
    for (int i = 0; i < N * D; i++) d.A[i] = blo_rng_normal(&g) / sqrt((double)D);
    for (int i = 0; i < N; i++) d.b[i] = blo_rng_normal(&g);
    for (int i = 0; i < NV * D; i++) d.Av[i] = blo_rng_normal(&g) / sqrt((double)D);
    for (int i = 0; i < NV; i++) d.bv[i] = blo_rng_normal(&g);
    for (int j = 0; j < D; j++) {
        d.x0[j] = 0.5 + blo_rng_uniform(&g);
        d.y0[j] = 0.1 * blo_rng_normal(&g);
    }
    blo_ctx *ctx = blo_ctx_new(0);
    shard all = make_shard(ctx, &d, dt, blo_comm_self()), mine = make_shard(ctx, &d, dt, W);
    for (int m = 0; m < blo_method_count(); m++) {
        const char *name = blo_method_at(m)->name;
        double one[D], dist[D], again[D], root[D];
        /* Run to run: checked once, in f64. */
        if (hypergrad(&d, &all, dt, name, one) || hypergrad(&d, &mine, dt, name, dist) ||
            (dt == BLO_F64 && hypergrad(&d, &mine, dt, name, again)))
            continue;
        if (dt != BLO_F64) memcpy(again, dist, sizeof again);
        double e = tu_max_rel(D, dist, one);
        TU_CHECK(e <= tol, "%s %s on %d ranks: dF/dx differs from the union's by %.3g (tol %.0e)",
                 name, dt == BLO_F32 ? "f32" : "f64", blo_comm_size(W), e, tol);
        TU_CHECK(!memcmp(dist, again, sizeof dist), "%s: two runs on %d ranks differ", name,
                 blo_comm_size(W));
        memcpy(root, dist, sizeof root);
        blo_comm_bcast_bytes(W, root, sizeof root, 0);
        TU_CHECK(!memcmp(dist, root, sizeof dist), "%s: rank %d's dF/dx differs from rank 0's",
                 name, blo_comm_rank(W));
    }
    blo_ctx_free(ctx);
}

int main(int argc, char **argv) {
    char err[256];
    blo_status st = blo_dist_init(&argc, &argv, err, sizeof err);
    TU_CHECK(st == BLO_OK, "blo_dist_init: %s", err);
    W = blo_comm_world();
    const char *want = getenv("BLO_TEST_RANKS");
    if (want)
        TU_CHECK(blo_comm_size(W) == atoi(want), "%d ranks, expected %s (is MPI built in?)",
                 blo_comm_size(W), want);
    test_ops(BLO_F64, 1e-12);
    test_ops(BLO_F32, 1e-5);
    test_methods(BLO_F64, 1e-12);
    test_methods(BLO_F32, 1e-5);
    blo_comm_reset_counts(W);
    double v[3] = {1, 2, 3};
    blo_comm_sum_f64(W, v, 3);
    int R = blo_comm_size(W);
    TU_CHECK(v[0] == R && v[2] == 3 * R, "blo_comm_sum_f64: %g %g %g on %d ranks", v[0], v[1],
             v[2], R);
    TU_CHECK(blo_comm_bytes_sent(W) == (uint64_t)(R - 1) * 3 * 8, "bytes sent %llu",
             (unsigned long long)blo_comm_bytes_sent(W));
    char suite[64];
    snprintf(suite, sizeof suite, "dist (rank %d of %d)", blo_comm_rank(W), R);
    int rc = tu_finish(suite);
    blo_dist_finalize();
    return rc;
}
