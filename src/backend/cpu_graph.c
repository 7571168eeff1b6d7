/* cpu_graph.c — the sampled, normalised adjacency of graph structure learning and the two
 * linear maps of its backward (the formulas are in src/ops/graph.c).
 *
 * Forward, one serial pass that draws and one that scales:
 *   M_ij = [u_ij < ½(θ_ij + θ_ji)] for i < j, mirrored, 0 on the diagonal, the u_ij drawn in
 *   row-major order over the upper triangle (as floats, the same draws as blo_lds_sample);
 *   deg_i = Σ_j M_ij; d_i = (1 + deg_i)^-½; out = D (M + I) D.
 * The column of θ a row reads and the column of out it mirrors into are N cache lines, which
 * stay in cache for the rows that share them.
 *
 * Backward (adjoint = 0), g the gradient of out, Â = out (symmetric), d_i² = Â_ii:
 *   s_i = Σ_k g_ik Â_ik + Σ_k g_ki Â_ki,  c_i = −½ d_i² s_i,
 *   r_ij = [i ≠ j] (½ (g_ij + g_ji) d_i d_j + ½ (c_i + c_j)).
 * Its adjoint (adjoint = 1), from v:
 *   v̄_ij = [i ≠ j] ½ (v_ij + v_ji),  q_i = −½ d_i² Σ_k v̄_ik,
 *   r_ij = v̄_ij d_i d_j + Â_ij (q_i + q_j).
 * Both results are symmetric and read g only through g + gᵀ: one pass of row sums and column
 * sums, then one pass over the upper triangle in B × B tiles, each tile of gᵀ and of the
 * mirrored result staged in a small buffer so that every loop runs along rows. Sums are
 * accumulated in double. All tensors contiguous [N, N]; work a contiguous f64 scratch tensor
 * of at least 2N elements.
 */
#include "cpu.h"

#include <math.h>

#define TILE 64

#define ST_FORWARD(T)                                                                        \
    do {                                                                                     \
        const T *th = theta->data;                                                           \
        T *o = out->data;                                                                    \
        for (int64_t i = 0; i < n; i++) {                                                    \
            T *oi = o + i * n;                                                               \
            const T *ti = th + i * n;                                                        \
            oi[i] = 0;                                                                       \
            int64_t di = 0;                                                                  \
            for (int64_t j = i + 1; j < n; j++) {                                            \
                T u = (T)(float)blo_rng_uniform(rng);                                        \
                T m = u < (T)0.5 * (ti[j] + th[j * n + i]) ? 1 : 0;                          \
                oi[j] = m;                                                                   \
                o[j * n + i] = m;                                                            \
                di += m != 0;                                                                \
            }                                                                                \
            deg[i] += (double)di;                                                            \
            for (int64_t j = i + 1; j < n; j++) deg[j] += (double)oi[j];                     \
        }                                                                                    \
        for (int64_t i = 0; i < n; i++) deg[i] = 1.0 / sqrt(1.0 + deg[i]);                   \
        _Pragma("omp parallel for schedule(static) if (n >= 512 && blo_num_threads() > 1)")  \
        for (int64_t i = 0; i < n; i++) {                                                    \
            T *oi = o + i * n;                                                               \
            double dd = deg[i];                                                              \
            for (int64_t j = 0; j < n; j++) oi[j] = (T)(oi[j] * dd * deg[j]);                \
            oi[i] = (T)(dd * dd);                                                            \
        }                                                                                    \
    } while (0)

void blo__cpu_st_adj_forward(const blo_tensor *theta, blo_rng *rng, blo_tensor *work,
                             blo_tensor *out) {
    int64_t n = out->shape[0];
    double *deg = work->data;
    for (int64_t i = 0; i < n; i++) deg[i] = 0;
    if (out->dtype == BLO_F32)
        ST_FORWARD(float);
    else
        ST_FORWARD(double);
}

/* Row i's contribution to the sums: col[k] += w_k and the return Σ_k w_k, w_k = g_k a_k
 * (a given) or g_k (a NULL); eight partial sums so the loop vectorises without reordering
 * any one of them. */
#define ROW_SUMS(T, NAME)                                                                    \
    BLO_ROW_CLONES static double NAME(const T *g, const T *a, double *col, int64_t n) {      \
        double p[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                              \
        int64_t k = 0;                                                                       \
        if (a) {                                                                             \
            for (; k + 8 <= n; k += 8)                                                       \
                for (int q = 0; q < 8; q++) {                                                \
                    double w = (double)g[k + q] * (double)a[k + q];                          \
                    col[k + q] += w;                                                         \
                    p[q] += w;                                                               \
                }                                                                            \
            for (; k < n; k++) {                                                             \
                double w = (double)g[k] * (double)a[k];                                      \
                col[k] += w;                                                                 \
                p[0] += w;                                                                   \
            }                                                                                \
        } else {                                                                             \
            for (; k + 8 <= n; k += 8)                                                       \
                for (int q = 0; q < 8; q++) {                                                \
                    col[k + q] += (double)g[k + q];                                          \
                    p[q] += (double)g[k + q];                                                \
                }                                                                            \
            for (; k < n; k++) {                                                             \
                col[k] += (double)g[k];                                                      \
                p[0] += (double)g[k];                                                        \
            }                                                                                \
        }                                                                                    \
        return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));            \
    }
ROW_SUMS(float, row_sums_f32)
ROW_SUMS(double, row_sums_f64)

/* One B × B tile (rows i0.., columns j0.., j0 >= i0) of the result and its mirror. gt and ot
 * are TILE × TILE buffers. d = work's d_i, c = c_i (backward) or q_i (adjoint). */
#define TILE_FN(T, NAME)                                                                     \
    BLO_ROW_CLONES static void NAME(int adjoint, const T *g, const T *ah, const double *d,   \
                                    const double *c, T *o, int64_t n, int64_t i0, int64_t bi, \
                                    int64_t j0, int64_t bj, T *gt, T *ot) {                  \
        for (int64_t jj = 0; jj < bj; jj++)                                                  \
            for (int64_t ii = 0; ii < bi; ii++) gt[ii * TILE + jj] = g[(j0 + jj) * n + i0 + ii]; \
        for (int64_t ii = 0; ii < bi; ii++) {                                                \
            int64_t i = i0 + ii;                                                             \
            const T *gi = g + i * n + j0, *gti = gt + ii * TILE, *ai = ah + i * n + j0;      \
            const double *dj = d + j0, *cj = c + j0;                                         \
            T *oi = ot + ii * TILE;                                                          \
            double di = d[i], ci = c[i];                                                     \
            if (!adjoint)                                                                    \
                for (int64_t jj = 0; jj < bj; jj++)                                          \
                    oi[jj] = (T)(0.5 * (((double)gi[jj] + (double)gti[jj]) * di * dj[jj] +   \
                                        (ci + cj[jj])));                                     \
            else                                                                             \
                for (int64_t jj = 0; jj < bj; jj++)                                          \
                    oi[jj] = (T)(0.5 * ((double)gi[jj] + (double)gti[jj]) * di * dj[jj] +    \
                                 (double)ai[jj] * (ci + cj[jj]));                            \
        }                                                                                    \
        for (int64_t ii = 0; ii < bi; ii++)                                                  \
            for (int64_t jj = 0; jj < bj; jj++) o[(i0 + ii) * n + j0 + jj] = ot[ii * TILE + jj]; \
        for (int64_t jj = 0; jj < bj; jj++)                                                  \
            for (int64_t ii = 0; ii < bi; ii++) o[(j0 + jj) * n + i0 + ii] = ot[ii * TILE + jj]; \
    }
TILE_FN(float, tile_f32)
TILE_FN(double, tile_f64)

#define ST_GRAD(T, SUMS, TILEF)                                                              \
    do {                                                                                     \
        const T *gd = g->data, *ah = ahat->data;                                             \
        T *o = out->data;                                                                    \
        for (int64_t i = 0; i < n; i++) c[i] = 0;                                            \
        for (int64_t i = 0; i < n; i++)                                                      \
            d[i] = SUMS(gd + i * n, adjoint ? NULL : ah + i * n, c, n);                      \
        for (int64_t i = 0; i < n; i++) {                                                    \
            double aii = (double)ah[i * n + i], s = d[i] + c[i];                             \
            if (adjoint) s = 0.5 * s - (double)gd[i * n + i];                                \
            c[i] = -0.5 * aii * s;                                                           \
            d[i] = sqrt(aii);                                                                \
        }                                                                                    \
        int64_t nt = (n + TILE - 1) / TILE;                                                  \
        _Pragma("omp parallel if (n >= 512 && blo_num_threads() > 1)")                      \
        {                                                                                    \
            T gt[TILE * TILE], ot[TILE * TILE];                                              \
            _Pragma("omp for schedule(dynamic, 1)")                                          \
            for (int64_t ti = 0; ti < nt; ti++)                                              \
                for (int64_t tj = ti; tj < nt; tj++) {                                       \
                    int64_t i0 = ti * TILE, j0 = tj * TILE;                                  \
                    int64_t bi = n - i0 < TILE ? n - i0 : TILE, bj = n - j0 < TILE ? n - j0 : TILE; \
                    TILEF(adjoint, gd, ah, d, c, o, n, i0, bi, j0, bj, gt, ot);              \
                }                                                                            \
        }                                                                                    \
        for (int64_t i = 0; i < n; i++)                                                      \
            o[i * n + i] = adjoint ? (T)(2 * (double)ah[i * n + i] * c[i]) : (T)0;           \
    } while (0)

void blo__cpu_st_adj_grad(int adjoint, const blo_tensor *g, const blo_tensor *ahat,
                          blo_tensor *work, blo_tensor *out) {
    int64_t n = out->shape[0];
    double *c = work->data, *d = c + n;
    if (out->dtype == BLO_F32)
        ST_GRAD(float, row_sums_f32, tile_f32);
    else
        ST_GRAD(double, row_sums_f64, tile_f64);
}
