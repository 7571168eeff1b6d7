/* bench_conv.c — time of conv2d forward + backward at shapes of the DARTS supernet and of
 * common nets, and of one supernet search step, f32.
 *
 * Conv rows: x [N, C, H, W] and w [O, C/groups, K, K] from N(0, 1), no bias; one row is
 * y = conv2d(x, w) and the gradients with respect to x and w for a fixed seed gy (blo_grad,
 * i.e. ∂/∂x and ∂/∂w of ⟨y, gy⟩). The row names say kind, kernel, channels, image size and
 * stride or dilation:
 *
 *   dense3x3_*   full 3×3 conv, padding 1          dw3x3_* / dw5x5_*  depthwise (groups = C)
 *   dil3x3_*     depthwise 3×3, dilation 2, pad 2  pw1x1_*            pointwise 1×1
 *
 * Search row: one outer iteration of the DARTS search as blo_nas_search_run sets it up by
 * default (blo_nas_search_default: images 1×14×14, 3 cells of 4 channels with 3 nodes, batch
 * 32, first_order, warm start, 1 inner step of SGD with momentum 0.9, lr 0.05, weight decay
 * 3e-4; Adam 3e-3, β1 0.5 on α): the weight step on a train-half minibatch, the gradient of
 * the val-half loss, the α step, and the solver's untaped lower-objective value for the
 * record. The images are synthetic (N(0, 1), labels i mod 10) so no data set is needed; 1000
 * search examples, halves of 500.
 *
 * Each figure is the median over `repeats` timed runs after `warmup` untimed ones, wall clock
 * (CLOCK_MONOTONIC), ms; the note adds the median CPU time of the thread (with one thread,
 * what the work cost without the time other processes held the core). bench/bench_conv_torch.py
 * does the same work in PyTorch; bench/run_conv_bench.sh runs both and puts them side by side.
 *
 * Usage: bench_conv [--threads N] [--quick] [--only conv|search|ROW]
 *
 * Output: '#' lines are notes; the table has columns  metric median unit repeats ref note.
 */
#include "blo/blo.h"
#include "tasks/nas/space.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

static void die(const char *what, const char *msg) {
    fprintf(stderr, "bench_conv: %s: %s\n", what, msg);
    exit(1);
}

/* One conv row: N, C in, O out, image S×S, kernel K, stride, padding, dilation, groups. */
typedef struct conv_case {
    const char *name;
    int n, c, o, s, k, stride, pad, dil, groups;
} conv_case;

/* The same list, in the same order, is in bench_conv_torch.py. */
static const conv_case CASES[] = {
    {"dense3x3_c16_14", 32, 16, 16, 14, 3, 1, 1, 1, 1},
    {"dense3x3_c16_14_s2", 32, 16, 16, 14, 3, 2, 1, 1, 1},
    {"dense3x3_c16_7", 32, 16, 16, 7, 3, 1, 1, 1, 1},
    {"dense3x3_c64_16", 32, 64, 64, 16, 3, 1, 1, 1, 1},
    {"dw3x3_c16_14", 32, 16, 16, 14, 3, 1, 1, 1, 16},
    {"dw3x3_c16_14_s2", 32, 16, 16, 14, 3, 2, 1, 1, 16},
    {"dw3x3_c16_7", 32, 16, 16, 7, 3, 1, 1, 1, 16},
    {"dw5x5_c16_14", 32, 16, 16, 14, 5, 1, 2, 1, 16},
    {"dil3x3_c16_14", 32, 16, 16, 14, 3, 1, 2, 2, 16},
    {"dw3x3_c4_14", 32, 4, 4, 14, 3, 1, 1, 1, 4},
    {"pw1x1_c16_14", 32, 16, 16, 14, 1, 1, 0, 1, 1},
    {"pw1x1_c16_14_s2", 32, 16, 16, 14, 1, 2, 0, 1, 1},
    {"pw1x1_c16_7", 32, 16, 16, 7, 1, 1, 0, 1, 1},
};

static void bench_conv(const conv_case *cc, int warmup, int repeats) {
    blo_ctx *ctx = blo_ctx_new(0);
    if (!ctx) die(cc->name, "out of memory");
    blo_rng g;
    blo_rng_seed(&g, 0xC0417ULL);
    int64_t xs[4] = {cc->n, cc->c, cc->s, cc->s}, ws[4] = {cc->o, cc->c / cc->groups, cc->k, cc->k};
    blo_tensor *x = blo_tensor_new(ctx, BLO_F32, 4, xs), *w = blo_tensor_new(ctx, BLO_F32, 4, ws);
    if (!x || !w || blo_init_normal(x, &g, 0, 1) || blo_init_normal(w, &g, 0, 1) ||
        blo_set_requires_grad(x, 1) || blo_set_requires_grad(w, 1))
        die(cc->name, "cannot make the inputs");
    blo_conv2d_params p = blo_conv2d_default();
    p.stride_h = p.stride_w = cc->stride;
    p.pad_h = p.pad_w = cc->pad;
    p.dil_h = p.dil_w = cc->dil;
    p.groups = cc->groups;
    blo_tensor *y0 = blo_conv2d(ctx, x, w, NULL, &p);
    if (!y0) die(cc->name, blo_ctx_error(ctx));
    blo_tensor *gy = blo_tensor_new(ctx, BLO_F32, 4, blo_tensor_shape(y0));
    if (!gy || blo_init_normal(gy, &g, 0, 1)) die(cc->name, "cannot make the seed");
    double *t = malloc(sizeof(double) * (size_t)repeats * 2), *tc = t + repeats;
    if (!t) die(cc->name, "out of memory");
    blo_tensor *in[2] = {x, w}, *gr[2];
    double check = 0;
    for (int r = -warmup; r < repeats; r++) {
        blo_mark m = blo_ctx_mark(ctx);
        double t0 = bench_wall_s(), c0 = bench_cpu_s();
        blo_tensor *y = blo_conv2d(ctx, x, w, NULL, &p);
        if (!y || blo_grad(ctx, 1, &y, &gy, 2, in, 0, gr)) die(cc->name, blo_ctx_error(ctx));
        double dt = bench_wall_s() - t0, dc = bench_cpu_s() - c0;
        if (r >= 0) t[r] = dt * 1e3, tc[r] = dc * 1e3;
        check = blo_tensor_get(gr[0], 0) + blo_tensor_get(gr[1], 0);
        blo_ctx_rewind(ctx, m);
    }
    char note[160];
    snprintf(note, sizeof note,
             "cpu %.4f ms; x [%d,%d,%d,%d] w [%d,%d,%d,%d] stride %d pad %d dil %d; "
             "gx[0]+gw[0] %.4g",
             bench_median(tc, repeats), cc->n, cc->c, cc->s, cc->s, cc->o, cc->c / cc->groups, cc->k,
             cc->k, cc->stride, cc->pad, cc->dil, check);
    printf("%-20s %12.4f %-6s %7d  %-20s %s\n", cc->name, bench_median(t, repeats), "ms", repeats,
           cc->name, note);
    fflush(stdout);
    free(t);
    blo_ctx_free(ctx);
}

static void bench_search(int warmup, int repeats) {
    blo_nas_search_config c = blo_nas_search_default();
    const int64_t n = 1000, classes = 10, S = c.images.size;
    char err[256] = "";
    blo_ctx *dctx = blo_ctx_new(0);
    if (!dctx) die("search", "out of memory");
    blo_rng g;
    blo_rng_seed(&g, c.seed ^ 0x0a4c41ULL);
    blo__nas_net net;
    if (blo__nas_net_init(&net, NULL, c.cells, c.channels, c.nodes, 1, S, classes, c.dtype, &g, err,
                     sizeof err))
        die("search", err);
    int64_t xs[4] = {n, 1, S, S};
    blo_tensor *X = blo_tensor_new(dctx, c.dtype, 4, xs);
    int64_t *labels = malloc(sizeof(int64_t) * (size_t)n),
            *buf = malloc(sizeof(int64_t) * (size_t)n);
    if (!X || !labels || !buf || blo_init_normal(X, &g, 0, 1)) die("search", "out of memory");
    for (int64_t i = 0; i < n; i++)
        labels[i] = i % classes;
    int E = blo_nas_num_edges(c.nodes);
    int64_t as[2] = {E, BLO_NAS_NUM_OPS};
    blo_tensor *x0[2];
    for (int k = 0; k < 2; k++) {
        x0[k] = blo_tensor_new(dctx, c.dtype, 2, as);
        if (!x0[k] || blo_init_normal(x0[k], &g, 0, 1e-3)) die("search", "out of memory");
    }
    blo__nas_problem np = {
        .net = &net, .X = X, .labels = labels, .n = n, .half = n / 2, .batch = c.batch, .buf = buf};
    blo_problem prob;
    blo__nas_bilevel_problem(&prob, x0, &np);
    blo_config sc = c.solver;
    sc.outer_iters = warmup + repeats;
    blo_solver *s = blo_solver_new(&prob, &sc, err, sizeof err);
    if (!s) die("search", err);
    double *t = malloc(sizeof(double) * (size_t)repeats * 2), *tc = t + repeats;
    if (!t) die("search", "out of memory");
    blo_record rec;
    size_t peak = 0;
    double first = NAN, last = NAN;
    for (int r = -warmup; r < repeats; r++) {
        double t0 = bench_wall_s(), c0 = bench_cpu_s();
        blo_status st = blo_solver_step(s, &rec);
        double dt = bench_wall_s() - t0, dc = bench_cpu_s() - c0;
        if (st) die("search", blo_solver_error(s));
        if (r >= 0) t[r] = dt * 1e3, tc[r] = dc * 1e3;
        if (rec.peak_bytes > peak) peak = rec.peak_bytes;
        if (r == -warmup) first = rec.lower;
        last = rec.lower;
    }
    int64_t params = 0;
    for (int i = 0; i < net.ny; i++)
        params += blo_tensor_numel(net.y[i]);
    char note[200];
    snprintf(note, sizeof note,
             "cpu %.4f ms; %d cells x %d ch, %d nodes, batch %lld, %lld weights; train loss "
             "%.3f -> %.3f; scratch peak %zu KiB",
             bench_median(tc, repeats), c.cells, c.channels, c.nodes, (long long)c.batch,
             (long long)params, first, last, peak / 1024);
    printf("%-20s %12.4f %-6s %7d  %-20s %s\n", "search_step", bench_median(t, repeats), "ms", repeats,
           "search_step", note);
    fflush(stdout);
    free(t);
    blo_solver_free(s);
    blo__nas_net_free(&net);
    free(labels);
    free(buf);
    blo_ctx_free(dctx);
}

int main(int argc, char **argv) {
    int threads = 1, quick = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 1024) {
                fprintf(stderr, "bench_conv: --threads: '%s' is not a thread count\n", argv[i]);
                return 2;
            }
            threads = (int)v;
        } else if (!strcmp(argv[i], "--quick")) {
            quick = 1;
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_conv [--threads N] [--quick] [--only conv|search]\n"
                            "  --threads N  threads for blo's loops and OpenBLAS (default 1)\n"
                            "  --quick      fewer repeats (a smoke run)\n"
                            "  --only WHAT  only the conv rows (conv), the search step (search) "
                            "or one row by name\n");
            return 2;
        }
    }
    blo_set_num_threads(threads);
    printf("# blo %s conv2d forward+backward (gx, gw) and DARTS search step, f32; threads=%d\n",
           BLO_VERSION_STRING, threads);
    printf("%-20s %12s %-6s %7s  %-20s %s\n", "metric", "median", "unit", "repeats", "ref", "note");
    int found = 0;
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
        if (!only || !strcmp(only, "conv") || !strcmp(only, CASES[i].name)) {
            bench_conv(&CASES[i], quick ? 2 : 5, quick ? 7 : 41);
            found = 1;
        }
    if (!only || !strcmp(only, "search") || !strcmp(only, "search_step")) {
        bench_search(quick ? 2 : 3, quick ? 5 : 21);
        found = 1;
    }
    if (!found) {
        fprintf(stderr, "bench_conv: --only: no row '%s'\n", only);
        return 2;
    }
    return 0;
}
