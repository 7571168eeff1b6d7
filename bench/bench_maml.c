/* bench_maml.c — time of one MAML meta-iteration on the sinusoid problem (Finn, Abbeel &
 * Levine, ICML 2017, §5.1), the problem built as src/tasks/meta_sinusoid.c builds it:
 *
 *   MLP 1-40-40-1 (ReLU), f32, a meta-batch of B = 25 tasks with K = 10 support and 10 query
 *   points, the B task copies stacked in batched tensors (blo_meta_problem), y_0 = θ broadcast
 *   (init from_x), one inner SGD step α = 0.01 on the support MSE, the meta-gradient of the
 *   mean query MSE through that step, one Adam step (lr 0.001) on θ.
 *
 * One meta-iteration is one blo_solver_step: drawing the iteration's 25 tasks (the sampler
 * below, the same as the CLI's), the inner step, the meta-gradient, the Adam step. Rows:
 *
 *   maml_rhg          rhg: second-order MAML (reverse mode through the inner step)
 *   maml_first_order  first_order: FOMAML (the query gradient at y_1, the inner step's
 *                     Jacobian dropped)
 *
 * Each figure is the median over `repeats` timed meta-iterations after `warmup` untimed ones,
 * wall clock (CLOCK_MONOTONIC) or, with --clock cpu, the CPU time of the calling thread
 * (CLOCK_THREAD_CPUTIME_ID: at 1 thread all the work runs there), ms per meta-iteration. The same work is done by
 * bench/bench_maml_torch.py; bench/run_maml_bench.sh runs both and puts them side by side.
 *
 * Usage: bench_maml [--threads N] [--quick] [--clock wall|cpu]
 *   --threads N  threads for blo's loops and for OpenBLAS (default 1)
 *   --quick      fewer meta-iterations (a smoke run)
 *   --clock C    wall (default) or cpu: the thread's CPU time, which leaves out the time other
 *                processes hold the core on a loaded machine
 *
 * Output: '#' lines are notes; the table has columns  metric median unit repeats ref note,
 * where ref names the torch rows this row is compared with (ref_loop and ref_batched).
 */
#include "blo/blo.h"
#include "tasks/meta/meta.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

enum { B = 25, K = 10, Q = 10, H = 40 };

static clockid_t bench_clock = CLOCK_MONOTONIC;

/* Iteration it's meta-batch: B tasks of K + Q points from a generator seeded by it, the first
 * K points of each task its support set, the rest its query set. */
typedef struct sampler {
    double xs[B * (K + Q)], ys[B * (K + Q)];
} sampler;

/* The tensors are fresh [B, n, 1] ones (contiguous): written in place, as torch's sampler
 * fills its arrays, rather than one blo_tensor_set per point. */
static void fill(blo_tensor *t, const double *v, int64_t from, int64_t n) {
    float *f = blo_tensor_dtype(t) == BLO_F32 ? blo_tensor_data(t) : NULL;
    double *d = f ? NULL : blo_tensor_data(t);
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < n; k++) {
            double x = v[b * (K + Q) + from + k];
            if (f)
                f[b * n + k] = (float)x;
            else
                d[b * n + k] = x;
        }
}

static blo_status sample_batch(blo_meta *m, int64_t it, void *user) {
    sampler *sm = user;
    blo_rng r;
    blo_rng_seed(&r, 0x9E3779B97F4A7C15ULL + (uint64_t)it + 1);
    blo_sinusoid_sample(&r, B, K + Q, NULL, NULL, sm->xs, sm->ys);
    fill(m->xs, sm->xs, 0, K);
    fill(m->ys, sm->ys, 0, K);
    fill(m->xq, sm->xs, K, Q);
    fill(m->yq, sm->ys, K, Q);
    return BLO_OK;
}

static void bench_method(const char *method, const char *metric, const char *ref, int warmup,
                         int repeats) {
    char err[256] = "";
    blo_rng g;
    blo_rng_seed(&g, 0x1A17ULL);
    blo_meta m;
    if (blo_meta_init(&m, B, H, K, Q, 0, 0, 0.01, BLO_F32, &g, err, sizeof err)) {
        fprintf(stderr, "bench_maml: %s\n", err);
        exit(1);
    }
    sampler sm;
    m.sample = sample_batch;
    m.sample_user = &sm;
    blo_problem p = blo_meta_problem(&m);
    blo_config c = blo_config_default();
    c.method = method;
    c.inner = blo_opt_sgd(0.01);
    c.inner_steps = 1;
    c.init = BLO_INIT_FROM_X;
    c.outer = blo_opt_adam(0.001);
    c.outer_iters = warmup + repeats;
    blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
    if (!s) {
        fprintf(stderr, "bench_maml: %s: %s\n", method, err);
        exit(1);
    }
    double *t = malloc(sizeof(double) * (size_t)repeats);
    blo_record rec;
    size_t peak = 0;
    double first = NAN, last = NAN;
    for (int r = -warmup; r < repeats; r++) {
        double t0 = bench_clock_s(bench_clock);
        blo_status st = blo_solver_step(s, &rec);
        double dt = bench_clock_s(bench_clock) - t0;
        if (st) {
            fprintf(stderr, "bench_maml: %s: %s\n", method, blo_solver_error(s));
            exit(1);
        }
        if (r >= 0) t[r] = dt * 1e3;
        if (rec.peak_bytes > peak) peak = rec.peak_bytes;
        if (r == -warmup) first = rec.upper;
        last = rec.upper;
    }
    char note[160];
    snprintf(note, sizeof note, "query MSE %.3f -> %.3f over %d its; scratch peak %zu KiB", first,
             last, warmup + repeats, peak / 1024);
    printf("%-20s %12.4f %-6s %7d  %-16s %s\n", metric, bench_median(t, repeats), "ms", repeats, ref,
           note);
    free(t);
    blo_solver_free(s);
    blo_meta_free(&m);
}

int main(int argc, char **argv) {
    int threads = 1, quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 1024) {
                fprintf(stderr, "bench_maml: --threads: '%s' is not a thread count\n", argv[i]);
                return 2;
            }
            threads = (int)v;
        } else if (!strcmp(argv[i], "--quick")) {
            quick = 1;
        } else if (!strcmp(argv[i], "--clock") && i + 1 < argc) {
            const char *c = argv[++i];
            if (!strcmp(c, "wall")) {
                bench_clock = CLOCK_MONOTONIC;
            } else if (!strcmp(c, "cpu")) {
                bench_clock = CLOCK_THREAD_CPUTIME_ID;
            } else {
                fprintf(stderr, "bench_maml: --clock: '%s' is not wall or cpu\n", c);
                return 2;
            }
        } else {
            fprintf(stderr, "usage: bench_maml [--threads N] [--quick] [--clock wall|cpu]\n"
                            "  --threads N  threads for blo's loops and OpenBLAS (default 1)\n"
                            "  --quick      fewer meta-iterations\n"
                            "  --clock C    wall (default) or cpu (the thread's CPU time)\n");
            return 2;
        }
    }
    blo_set_num_threads(threads);
    printf("# blo %s MAML sinusoid meta-iteration: B=%d tasks, K=%d support + %d query points, "
           "MLP 1-%d-%d-1 ReLU f32, 1 inner SGD step (0.01), Adam 0.001; threads=%d; clock %s\n",
           BLO_VERSION_STRING, B, K, Q, H, H, threads,
           bench_clock == CLOCK_MONOTONIC ? "wall" : "cpu");
    printf("%-20s %12s %-6s %7s  %-16s %s\n", "metric", "median", "unit", "repeats", "ref", "note");
    int warmup = quick ? 5 : 20, repeats = quick ? 21 : 201;
    bench_method("rhg", "maml_rhg", "maml", warmup, repeats);
    bench_method("first_order", "maml_first_order", "fomaml", warmup, repeats);
    return 0;
}
