/* bench_engine.c — engine benchmarks: per-op overhead, MLP training step, HVP, large matmul.
 *
 * The same work as bench/bench_engine_torch.py, which prints the same table for PyTorch;
 * bench/run_engine_bench.sh runs both and puts them side by side. Each figure is the median
 * over `repeats` timed repeats (after warm-up runs), wall clock (CLOCK_MONOTONIC):
 *
 *   add_4_f32       blo_add of two 4-element f32 tensors, ns per op; the context is rewound
 *                   to a mark every 1024 ops so memory stays flat (the rewind is timed too)
 *   mlp_fwd_bwd     MLP 784-300-10 (tanh), batch 128, f32, mean cross-entropy: forward and
 *                   gradients of all four parameters, ms per step
 *   mlp_fwd_bwd_fastce   the same with blo_cross_entropy_fast (fused, first-order loss)
 *   mlp_hvp         forward + Hessian-vector product of that loss w.r.t. all parameters, ms
 *   matmul_1024     blo_matmul of two 1024x1024 f32 matrices, ms (and GFLOP/s)
 *   sgemm_1024      cblas_sgemm called directly on the same buffers: OpenBLAS's own rate
 *                   (timed alternately with matmul_1024; a '#' line gives blo's % of it)
 *
 * Usage: bench_engine [--threads N] [--quick]
 *   --threads N  threads for blo's loops and for OpenBLAS (default 1)
 *   --quick      fewer repeats (a smoke run; figures are noisier)
 *
 * Output: '#' lines are notes; the table has columns
 *   metric median unit repeats ref note
 * where ref names the row of the torch benchmark this row is compared with.
 */
#include "blo/blo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

/* The build defines BLO_HAVE_CBLAS / BLO_HAVE_OPENBLAS when blo itself links OpenBLAS; without
 * it the sgemm row says n/a. */
#ifdef BLO_HAVE_CBLAS
#include <cblas.h>
#define BENCH_HAVE_CBLAS 1
#endif

static void row(const char *metric, double value, const char *unit, int repeats, const char *ref,
                const char *note) {
    printf("%-20s %12.4f %-6s %7d  %-12s %s\n", metric, value, unit, repeats, ref, note);
}

static void die_if_error(blo_ctx *ctx, const char *what) {
    if (blo_ctx_status(ctx) != BLO_OK) {
        fprintf(stderr, "bench_engine: %s: %s: %s\n", what, blo_status_name(blo_ctx_status(ctx)),
                blo_ctx_error(ctx));
        exit(1);
    }
}

/* ---- Per-op overhead ----------------------------------------------------------------------- */
static void bench_add(int repeats) {
    const int iters = 200000, window = 1024;
    blo_ctx *ctx = blo_ctx_new(0);
    const int64_t shape[1] = {4};
    const double va[4] = {1, 2, 3, 4}, vb[4] = {0.5, 0.25, 0.125, 0.0625};
    blo_tensor *a = blo_from_f64(ctx, BLO_F32, 1, shape, va);
    blo_tensor *b = blo_from_f64(ctx, BLO_F32, 1, shape, vb);
    blo_mark m = blo_ctx_mark(ctx);
    double *t = malloc(sizeof(double) * (size_t)repeats);
    for (int r = -2; r < repeats; r++) { /* two warm-up repeats */
        double t0 = bench_wall_s();
        for (int i = 0; i < iters; i++) {
            if (i % window == 0) blo_ctx_rewind(ctx, m);
            blo_add(ctx, a, b);
        }
        double dt = bench_wall_s() - t0;
        if (r >= 0) t[r] = dt / iters * 1e9;
    }
    die_if_error(ctx, "blo_add");
    blo_ctx_rewind(ctx, m);
    char note[96];
    snprintf(note, sizeof note, "peak arena %zu KiB", blo_ctx_peak_bytes(ctx) / 1024);
    row("add_4_f32", bench_median(t, repeats), "ns/op", repeats, "add_4_f32", note);
    free(t);
    blo_ctx_free(ctx);
}

/* ---- MLP 784-300-10 -------------------------------------------------------------------------- */
enum { MLP_N = 128, MLP_IN = 784, MLP_H = 300, MLP_OUT = 10 };

typedef struct {
    blo_ctx *ctx;
    blo_tensor *x, *labels, *p[4], *v[4];
} mlp_t;

static void mlp_init(mlp_t *m) {
    blo_rng r;
    blo_rng_seed(&r, 7);
    blo_ctx *ctx = m->ctx = blo_ctx_new(0);
    const int64_t sx[2] = {MLP_N, MLP_IN}, sw1[2] = {MLP_H, MLP_IN}, sb1[1] = {MLP_H},
                  sw2[2] = {MLP_OUT, MLP_H}, sb2[1] = {MLP_OUT};
    m->x = blo_tensor_new(ctx, BLO_F32, 2, sx);
    blo_init_uniform(m->x, &r, 0, 1);
    int64_t lab[MLP_N];
    for (int i = 0; i < MLP_N; i++)
        lab[i] = (int64_t)blo_rng_below(&r, MLP_OUT);
    const int64_t sl[1] = {MLP_N};
    m->labels = blo_from_i64(ctx, 1, sl, lab);
    const int64_t *shapes[4] = {sw1, sb1, sw2, sb2};
    const int nd[4] = {2, 1, 2, 1};
    for (int i = 0; i < 4; i++) {
        m->p[i] = blo_tensor_new(ctx, BLO_F32, nd[i], shapes[i]);
        m->v[i] = blo_tensor_new(ctx, BLO_F32, nd[i], shapes[i]);
        double bound = 1.0 / sqrt(i < 2 ? MLP_IN : MLP_H);
        blo_init_uniform(m->p[i], &r, -bound, bound);
        blo_init_uniform(m->v[i], &r, -1, 1);
        blo_set_requires_grad(m->p[i], 1);
    }
    die_if_error(ctx, "mlp init");
}

static blo_tensor *mlp_loss(mlp_t *m, int fast) {
    blo_ctx *c = m->ctx;
    blo_tensor *h = blo_tanh(c, blo_linear(c, m->x, m->p[0], m->p[1]));
    blo_tensor *z = blo_linear(c, h, m->p[2], m->p[3]);
    return fast ? blo_cross_entropy_fast(c, z, m->labels, NULL, BLO_REDUCE_MEAN)
                : blo_cross_entropy(c, z, m->labels, NULL, BLO_REDUCE_MEAN);
}

/* kind 0: forward + backward; 1: the same with the fused loss; 2: forward + HVP. */
static double mlp_step(mlp_t *m, int kind) {
    blo_mark mk = blo_ctx_mark(m->ctx);
    blo_tensor *out[4];
    double t0 = bench_wall_s();
    blo_tensor *loss = mlp_loss(m, kind == 1);
    if (kind == 2)
        blo_hvp(m->ctx, loss, 4, m->p, m->v, 0, out);
    else
        blo_grad(m->ctx, 1, &loss, NULL, 4, m->p, 0, out);
    double dt = bench_wall_s() - t0;
    die_if_error(m->ctx, kind == 2 ? "mlp hvp" : "mlp forward/backward");
    blo_ctx_rewind(m->ctx, mk);
    return dt;
}

static void bench_mlp(int repeats) {
    static const struct {
        const char *name, *ref, *note;
        int kind;
    } runs[3] = {
        {"mlp_fwd_bwd", "mlp_fwd_bwd", "blo_cross_entropy (any order)", 0},
        {"mlp_fwd_bwd_fastce", "mlp_fwd_bwd", "blo_cross_entropy_fast (first order)", 1},
        {"mlp_hvp", "mlp_hvp", "forward + grad(create graph) + grad", 2},
    };
    double *t = malloc(sizeof(double) * (size_t)repeats);
    for (int k = 0; k < 3; k++) {
        mlp_t m;
        mlp_init(&m);
        for (int r = -5; r < repeats; r++) {
            double dt = mlp_step(&m, runs[k].kind);
            if (r >= 0) t[r] = dt * 1e3;
        }
        row(runs[k].name, bench_median(t, repeats), "ms", repeats, runs[k].ref, runs[k].note);
        blo_ctx_free(m.ctx);
    }
    free(t);
}

/* ---- Large matmul -------------------------------------------------------------------------------
 */
/* blo_matmul and a direct cblas_sgemm on the same buffers, timed in alternation so that a load
 * change on a shared machine hits both; the "% of OpenBLAS" figure is the median of the
 * per-pair ratios. */
static void bench_matmul(int repeats) {
    const int n = 1024;
    const double gflop = 2.0 * n * n * (double)n * 1e-9;
    blo_rng r;
    blo_rng_seed(&r, 11);
    blo_ctx *ctx = blo_ctx_new(0);
    const int64_t s[2] = {n, n};
    blo_tensor *a = blo_tensor_new(ctx, BLO_F32, 2, s), *b = blo_tensor_new(ctx, BLO_F32, 2, s);
    blo_init_uniform(a, &r, -1, 1);
    blo_init_uniform(b, &r, -1, 1);
    die_if_error(ctx, "matmul init");
    int have_sgemm = 0;
#ifdef BENCH_HAVE_CBLAS
    have_sgemm = 1;
#endif
    float *c = malloc(sizeof(float) * (size_t)n * (size_t)n);
    double *tb = malloc(sizeof(double) * (size_t)repeats);
    double *ts = malloc(sizeof(double) * (size_t)repeats);
    double *ratio = malloc(sizeof(double) * (size_t)repeats);
    blo_mark mk = blo_ctx_mark(ctx);
    for (int i = -2; i < repeats; i++) {
        double t0 = bench_wall_s();
        blo_matmul(ctx, a, b);
        double dt = bench_wall_s() - t0;
        die_if_error(ctx, "blo_matmul");
        blo_ctx_rewind(ctx, mk);
        double ds = NAN;
#ifdef BENCH_HAVE_CBLAS
        if (have_sgemm) {
            t0 = bench_wall_s();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f,
                        blo_tensor_data(a), n, blo_tensor_data(b), n, 0.0f, c, n);
            ds = bench_wall_s() - t0;
        }
#endif
        if (i >= 0) {
            tb[i] = dt;
            ts[i] = ds;
            ratio[i] = ds / dt;
        }
    }
    double blo_t = bench_median(tb, repeats);
    char note[96];
    snprintf(note, sizeof note, "%.1f GFLOP/s", gflop / blo_t);
    row("matmul_1024", blo_t * 1e3, "ms", repeats, "matmul_1024", note);
    if (!have_sgemm) {
        row("sgemm_1024", NAN, "ms", 0, "matmul_1024", "n/a: no cblas in this build");
    } else {
        double sgemm_t = bench_median(ts, repeats);
        snprintf(note, sizeof note, "%.1f GFLOP/s (cblas_sgemm direct)", gflop / sgemm_t);
        row("sgemm_1024", sgemm_t * 1e3, "ms", repeats, "matmul_1024", note);
        printf("# blo_matmul reaches %.1f %% of OpenBLAS's own sgemm rate (median of %d paired "
               "runs; target 90 %%)\n",
               100.0 * bench_median(ratio, repeats), repeats);
    }
    free(c);
    free(tb);
    free(ts);
    free(ratio);
    blo_ctx_free(ctx);
}

int main(int argc, char **argv) {
    int threads = 1, quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 1024) {
                fprintf(stderr, "bench_engine: --threads: '%s' is not a thread count\n", argv[i]);
                return 2;
            }
            threads = (int)v;
        } else if (!strcmp(argv[i], "--quick")) {
            quick = 1;
        } else {
            fprintf(stderr, "usage: bench_engine [--threads N] [--quick]\n"
                            "  --threads N  threads for blo's loops and OpenBLAS (default 1)\n"
                            "  --quick      fewer repeats\n");
            return 2;
        }
    }
    blo_set_num_threads(threads);
    printf("# blo %s engine benchmark: threads=%d (median over repeats)\n", BLO_VERSION_STRING,
           threads);
#ifdef BLO_HAVE_OPENBLAS
    {
        static const char *const modes[3] = {"sequential", "pthreads", "OpenMP"};
        int mode = openblas_get_parallel();
        printf("# OpenBLAS: %s; threading: %s\n", openblas_get_config(),
               mode >= 0 && mode <= 2 ? modes[mode] : "unknown");
    }
#endif
    printf("%-20s %12s %-6s %7s  %-12s %s\n", "metric", "median", "unit", "repeats", "ref", "note");
    bench_add(quick ? 5 : 31);
    bench_mlp(quick ? 5 : 51);
    bench_matmul(quick ? 3 : 15);
    return 0;
}
