/* bench_graph.c — the time of one GCN training epoch (forward, backward, Adam step; the given
 * sparse graph) and of one LDS outer iteration (T = 5 inner Adam steps on sampled dense graphs,
 * the truncated reverse pass through them, θ's SGD step and projection), on a Planetoid
 * graph; the PyTorch peer is bench_graph_torch.py, the driver run_graph_bench.sh.
 *
 *   bench_graph [--data DIR] [--epochs N] [--outer K] [--threads N] [--clock wall|cpu]
 *
 * Prints "gcn_epoch_ms <median>" over N epochs, "lds_outer_s <median>" over K outer iterations
 * (after one warm-up), "lds_peak_mib <MiB>", the process's peak resident set growth over the
 * LDS iterations (getrusage; as the PyTorch peer measures), and "lds_arena_mib <MiB>", the
 * largest scratch context an outer iteration held. */
#include "blo/blo.h"
#include "blo/graph.h"

#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double now(int cpu) {
    return cpu ? bench_cpu_s() : bench_wall_s();
}

int main(int argc, char **argv) {
    const char *dir = "data/planetoid/cora"; /* from the source tree's root */
    int epochs = 50, outer = 5, threads = 1, cpu = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--epochs") && i + 1 < argc)
            epochs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--outer") && i + 1 < argc)
            outer = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--clock") && i + 1 < argc)
            cpu = !strcmp(argv[++i], "cpu");
        else {
            fprintf(stderr, "bench_graph: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (epochs < 1 || outer < 1) {
        fprintf(stderr, "bench_graph: --epochs and --outer must be >= 1\n");
        return 2;
    }
    blo_set_num_threads(threads);
    char err[512] = "";
    blo_graph_data g;
    if (blo_graph_load(dir, &g, err, sizeof err)) {
        fprintf(stderr, "bench_graph: %s\n", err);
        return 1;
    }
    blo_graph_config gc = blo_graph_default();
    blo_ctx *ctx = blo_ctx_new(0), *sc = blo_ctx_new(0);
    blo_graph_tensors gt;
    blo_lds l;
    memset(&l, 0, sizeof l);
    blo_rng rng;
    blo_rng_seed(&rng, 0);
    int rc = 1;
    if (blo_graph_tensors_make(ctx, &g, NULL, 1, BLO_F32, &gt, err, sizeof err) ||
        blo_lds_init(&l, &gt, g.n, g.classes, gc.hidden, gc.dropout, gc.wd, 0, &rng, err,
                     sizeof err))
        goto out;

    /* The GCN alone: epochs of full-batch Adam. */
    blo_tensor *w[2] = {blo_clone(ctx, l.y0[0]), blo_clone(ctx, l.y0[1])};
    blo_set_requires_grad(w[0], 1);
    blo_set_requires_grad(w[1], 1);
    blo_opt adam = blo_opt_adam(gc.gcn_lr);
    blo_opt_state os;
    if (blo_opt_state_init(ctx, &adam, 2, w, &os)) goto out;
    double *t = malloc(sizeof(double) * (size_t)(epochs > outer ? epochs : outer));
    for (int e = 0; e < epochs; e++) {
        double t0 = now(cpu);
        blo_mark mk = blo_ctx_mark(sc);
        blo_gcn_adj a = {gt.adj, gt.adj_val, NULL, NULL};
        blo_tensor *z = blo_gcn_logits(sc, &a, gt.x, gt.xval, w[0], w[1], gc.dropout, 1, &rng);
        blo_tensor *loss = blo_gcn_loss(sc, z, gt.idx[0], gt.lab[0], w[0], gc.wd), *gr[2];
        if (!loss || blo_grad(sc, 1, &loss, NULL, 2, w, 0, gr) ||
            blo_opt_step(sc, &adam, &os, 2, w, gr)) {
            snprintf(err, sizeof err, "GCN epoch: %s", blo_ctx_error(sc));
            free(t);
            goto out;
        }
        blo_ctx_rewind(sc, mk);
        t[e] = now(cpu) - t0;
    }
    printf("gcn_epoch_ms %.3f\n", 1e3 * bench_median(t, epochs));

    /* LDS: the task's defaults (trhg, T = K = 5 inner Adam steps, warm start, SGD lr 1). */
    blo_problem p = blo_lds_problem(&l);
    blo_solver *s = blo_solver_new(&p, &gc.solver, err, sizeof err);
    if (!s) {
        free(t);
        goto out;
    }
    size_t peak = 0;
    double rss0 = bench_maxrss_mib();
    for (int k = -1; k < outer; k++) {
        double t0 = now(cpu);
        blo_record rec;
        if (blo_solver_step(s, &rec)) {
            snprintf(err, sizeof err, "LDS: %s", blo_solver_error(s));
            blo_solver_free(s);
            free(t);
            goto out;
        }
        if (k >= 0) t[k] = now(cpu) - t0;
        if (rec.peak_bytes > peak) peak = rec.peak_bytes;
    }
    printf("lds_outer_s %.4f\nlds_peak_mib %.1f\nlds_arena_mib %.1f\n", bench_median(t, outer),
           bench_maxrss_mib() - rss0, (double)peak / (1 << 20));
    blo_solver_free(s);
    free(t);
    rc = 0;
out:
    if (rc) fprintf(stderr, "bench_graph: %s\n", err);
    blo_lds_free(&l);
    blo_ctx_free(sc);
    blo_ctx_free(ctx);
    blo_graph_data_free(&g);
    return rc;
}
