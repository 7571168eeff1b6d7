/* bench_hypergrad.c — time and memory of one hypergradient for every registered method on
 * data hyper-cleaning with a linear softmax model (src/tasks/hyperclean/problem.c), to set
 * side by side with bench_hypergrad_torch.py (bench/run_hypergrad_bench.sh runs both).
 *
 *   bench_hypergrad --write-data FILE [--n 5000] [--nv 5000] [--d 784] [--classes 10] [--seed 1]
 *       writes a synthetic data set (below) that both programs read, so they compute the same
 *       numbers;
 *   bench_hypergrad --data FILE --method NAME [--T 100] [--K 10] [--lr 0.03] [--threads 1]
 *                   [--repeats 5] [--hg-out FILE]
 *       one hypergradient at x = 0 from W = 0, b = 0 through T inner SGD steps, in float32:
 *       one warm-up, then `repeats` timed calls; prints one line
 *       "RESULT lib=blo method=... median_s=... cpu_median_s=... rss_delta_mib=...
 *       arena_peak_mib=... ..." (wall time, and CPU time of the whole process, which a busy
 *       shared machine disturbs less; with one thread the two should agree)
 *       (exit 3 when the method refuses this problem). --method list prints the registry.
 *
 * Memory: ru_maxrss (the process's peak resident set) after the whole run minus its value
 * right after the data are loaded, so only what the hypergradients add is counted — the
 * same measure the torch script takes. blo also reports the peak of the solver's scratch
 * arena (blo_record.peak_bytes), the memory blo itself asked for.
 *
 * Synthetic data (not Fashion-MNIST; the shapes are its): C class prototypes with entries
 * uniform in [0, 1], each example its class's prototype plus N(0, 0.3²) noise clipped to
 * [0, 1] ("pixels"); half of the training labels replaced by a class drawn uniformly from
 * all C. Data file: the 8 bytes "BLOHCB1\n", then int64 n, nv, d, C, then X (f32 [n, d]),
 * labels (i64 [n]), Xv (f32 [nv, d]), labels_v (i64 [nv]), all little-endian.
 */
#include "tasks/hyperclean/hyperclean.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

typedef struct opts {
    const char *write_data, *data, *method, *hg_out;
    int64_t n, nv, d, classes;
    uint64_t seed;
    int T, K, threads, repeats;
    double lr;
    int checkpoints; /* rhg_ckpt's segment length (0: ⌈√T⌉; T: the whole trajectory recorded) */
} opts;

static int usage(const char *msg) {
    if (msg) fprintf(stderr, "bench_hypergrad: %s\n", msg);
    fprintf(stderr, "usage: bench_hypergrad --write-data FILE [--n 5000] [--nv 5000] [--d 784] "
                    "[--classes 10] [--seed 1]\n"
                    "       bench_hypergrad --data FILE --method NAME|list [--T 100] [--K 10] "
                    "[--lr 0.03] [--threads 1] [--repeats 5] [--hg-out FILE]\n"
                    "       [--checkpoints S]  (rhg_ckpt: segment length, 0 = ceil(sqrt T))\n");
    return 2;
}

static double cpu_now(void) { /* all threads of the process */
    return bench_clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

/* ---- Data ------------------------------------------------------------------------------------ */

static const char MAGIC[8] = {'B', 'L', 'O', 'H', 'C', 'B', '1', '\n'};

static void draw(blo_rng *g, const float *proto, int64_t m, int64_t d, int64_t C, float *X,
                 int64_t *lab) {
    for (int64_t i = 0; i < m; i++) {
        lab[i] = (int64_t)blo_rng_below(g, (uint64_t)C);
        for (int64_t j = 0; j < d; j++) {
            double v = proto[lab[i] * d + j] + 0.3 * blo_rng_normal(g);
            X[i * d + j] = (float)(v < 0 ? 0 : v > 1 ? 1 : v);
        }
    }
}

static int write_data(const opts *o) {
    int64_t n = o->n, nv = o->nv, d = o->d, C = o->classes;
    blo_rng g;
    blo_rng_seed(&g, o->seed);
    float *proto = malloc(sizeof(float) * (size_t)(C * d));
    float *X = malloc(sizeof(float) * (size_t)(n * d)),
          *Xv = malloc(sizeof(float) * (size_t)(nv * d));
    int64_t *lab = malloc(sizeof(int64_t) * (size_t)n),
            *labv = malloc(sizeof(int64_t) * (size_t)nv);
    FILE *f = fopen(o->write_data, "wb");
    int ok = proto && X && Xv && lab && labv && f;
    if (ok) {
        for (int64_t k = 0; k < C * d; k++)
            proto[k] = (float)blo_rng_uniform(&g);
        draw(&g, proto, n, d, C, X, lab);
        draw(&g, proto, nv, d, C, Xv, labv);
        /* Examples are i.i.d., so corrupting the first half is as good as a random half. */
        for (int64_t i = 0; i < n / 2; i++)
            lab[i] = (int64_t)blo_rng_below(&g, (uint64_t)C);
        int64_t hdr[4] = {n, nv, d, C};
        ok = fwrite(MAGIC, 1, 8, f) == 8 && fwrite(hdr, sizeof hdr, 1, f) == 1 &&
             fwrite(X, sizeof(float), (size_t)(n * d), f) == (size_t)(n * d) &&
             fwrite(lab, sizeof(int64_t), (size_t)n, f) == (size_t)n &&
             fwrite(Xv, sizeof(float), (size_t)(nv * d), f) == (size_t)(nv * d) &&
             fwrite(labv, sizeof(int64_t), (size_t)nv, f) == (size_t)nv;
    }
    if (f && fclose(f)) ok = 0;
    if (!ok) fprintf(stderr, "bench_hypergrad: cannot write %s\n", o->write_data);
    free(proto);
    free(X);
    free(Xv);
    free(lab);
    free(labv);
    return ok ? 0 : 1;
}

typedef struct dataset {
    blo_ctx *ctx;
    blo_tensor *X, *labels, *Xv, *labels_v;
    int64_t classes;
} dataset;

static int read_into(FILE *f, blo_tensor *t) {
    size_t m = (size_t)blo_tensor_numel(t), es = blo_dtype_size(blo_tensor_dtype(t));
    return fread(blo_tensor_data(t), es, m, f) == m;
}

static int load_data(const char *path, dataset *ds) {
    FILE *f = fopen(path, "rb");
    char magic[8];
    int64_t h[4];
    if (!f || fread(magic, 1, 8, f) != 8 || memcmp(magic, MAGIC, 8) ||
        fread(h, sizeof h, 1, f) != 1 || h[0] < 1 || h[1] < 1 || h[2] < 1 || h[3] < 2) {
        fprintf(stderr, "bench_hypergrad: %s: not a data file written by --write-data\n", path);
        if (f) fclose(f);
        return 0;
    }
    ds->ctx = blo_ctx_new(0);
    ds->classes = h[3];
    int64_t sx[2] = {h[0], h[2]}, sxv[2] = {h[1], h[2]};
    ds->X = blo_tensor_new(ds->ctx, BLO_F32, 2, sx);
    ds->labels = blo_tensor_new(ds->ctx, BLO_I64, 1, &h[0]);
    ds->Xv = blo_tensor_new(ds->ctx, BLO_F32, 2, sxv);
    ds->labels_v = blo_tensor_new(ds->ctx, BLO_I64, 1, &h[1]);
    int ok = ds->X && ds->labels && ds->Xv && ds->labels_v && read_into(f, ds->X) &&
             read_into(f, ds->labels) && read_into(f, ds->Xv) && read_into(f, ds->labels_v);
    fclose(f);
    if (!ok) fprintf(stderr, "bench_hypergrad: %s: truncated\n", path);
    return ok;
}

/* ---- One method --------------------------------------------------------------------------------
 */

static int bench_method(const opts *o, dataset *ds, double rss_base) {
    char err[512];
    blo_hyperclean h;
    if (blo_hyperclean_init(&h, ds->X, ds->labels, ds->Xv, ds->labels_v, ds->classes, NULL, NULL,
                            err, sizeof err)) {
        fprintf(stderr, "bench_hypergrad: %s\n", err);
        return 1;
    }
    blo_problem p = blo_hyperclean_problem(&h);
    blo_config c = blo_config_default();
    c.method = o->method;
    c.inner = blo_opt_sgd(o->lr);
    c.inner_steps = o->T;
    c.trhg_window = c.neumann_terms = c.solve_iters = o->K;
    c.checkpoints = o->checkpoints;
    blo_solver *s = blo_solver_new(&p, &c, err, sizeof err);
    if (!s) {
        fprintf(stderr, "bench_hypergrad: %s refuses: %s\n", o->method, err);
        blo_hyperclean_free(&h);
        return 3;
    }
    int64_t n = h.n;
    double *hg = malloc(sizeof(double) * (size_t)n), *o1[1] = {hg};
    double *times = malloc(sizeof(double) * (size_t)(o->repeats + 1));
    double *cpu = malloc(sizeof(double) * (size_t)(o->repeats + 1));
    int rc = 0;
    for (int r = 0; r <= o->repeats && !rc; r++) { /* r = 0: warm-up */
        double t0 = bench_wall_s(), c0 = cpu_now();
        blo_status st = blo_solver_hypergrad(s, o1);
        times[r] = bench_wall_s() - t0;
        cpu[r] = cpu_now() - c0;
        if (st) {
            fprintf(stderr, "bench_hypergrad: %s failed: %s\n", o->method, blo_solver_error(s));
            rc = 3;
        }
    }
    /* One outer step for its record: the scratch arena's peak over one hypergradient. */
    blo_record rec;
    memset(&rec, 0, sizeof rec);
    if (!rc && blo_solver_step(s, &rec)) {
        fprintf(stderr, "bench_hypergrad: %s step failed: %s\n", o->method, blo_solver_error(s));
        rc = 3;
    }
    if (!rc) {
        double rss = bench_maxrss_mib();
        double median = bench_median(times + 1, o->repeats),
               cpu_median = bench_median(cpu + 1, o->repeats);
        double norm = 0;
        for (int64_t i = 0; i < n; i++)
            norm += hg[i] * hg[i];
        printf("RESULT lib=blo method=%s T=%d K=%d threads=%d repeats=%d median_s=%.4f min_s=%.4f "
               "max_s=%.4f warmup_s=%.4f cpu_median_s=%.4f rss_base_mib=%.1f rss_peak_mib=%.1f "
               "rss_delta_mib=%.1f "
               "arena_peak_mib=%.1f F=%.6f hg_norm=%.6g\n",
               o->method, o->T, o->K, o->threads, o->repeats, median, times[1], times[o->repeats],
               times[0], cpu_median, rss_base, rss, rss - rss_base,
               (double)rec.peak_bytes / (1024.0 * 1024.0), rec.upper, sqrt(norm));
        if (o->hg_out) {
            FILE *f = fopen(o->hg_out, "wb");
            if (!f || fwrite(hg, sizeof(double), (size_t)n, f) != (size_t)n) rc = 1;
            if (f && fclose(f)) rc = 1;
            if (rc) fprintf(stderr, "bench_hypergrad: cannot write %s\n", o->hg_out);
        }
    }
    free(times);
    free(cpu);
    free(hg);
    blo_solver_free(s);
    blo_hyperclean_free(&h);
    return rc;
}

/* ---- Command line ------------------------------------------------------------------------------
 */

static int parse(int argc, char **argv, opts *o) {
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--write-data") && v)
            o->write_data = v;
        else if (!strcmp(a, "--data") && v)
            o->data = v;
        else if (!strcmp(a, "--method") && v)
            o->method = v;
        else if (!strcmp(a, "--hg-out") && v)
            o->hg_out = v;
        else if (!strcmp(a, "--n") && v)
            o->n = atoll(v);
        else if (!strcmp(a, "--nv") && v)
            o->nv = atoll(v);
        else if (!strcmp(a, "--d") && v)
            o->d = atoll(v);
        else if (!strcmp(a, "--classes") && v)
            o->classes = atoll(v);
        else if (!strcmp(a, "--seed") && v)
            o->seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--T") && v)
            o->T = atoi(v);
        else if (!strcmp(a, "--K") && v)
            o->K = atoi(v);
        else if (!strcmp(a, "--checkpoints") && v)
            o->checkpoints = atoi(v);
        else if (!strcmp(a, "--lr") && v)
            o->lr = atof(v);
        else if (!strcmp(a, "--threads") && v)
            o->threads = atoi(v);
        else if (!strcmp(a, "--repeats") && v)
            o->repeats = atoi(v);
        else {
            fprintf(stderr, "bench_hypergrad: unknown option or missing value: %s\n", a);
            return 0;
        }
    }
    return o->n > 0 && o->nv > 0 && o->d > 0 && o->classes > 1 && o->T >= 0 && o->K >= 1 &&
           o->threads >= 1 && o->repeats >= 1 && o->lr > 0 && o->checkpoints >= 0;
}

int main(int argc, char **argv) {
    opts o = {NULL, NULL, NULL, NULL, 5000, 5000, 784, 10, 1, 100, 10, 1, 5, 0.03, 0};
    if (!parse(argc, argv, &o)) return usage("bad options");
    if (o.write_data) return write_data(&o);
    if (o.method && !strcmp(o.method, "list")) {
        for (int i = 0; i < blo_method_count(); i++)
            printf("%s\n", blo_method_at(i)->name);
        return 0;
    }
    if (!o.data || !o.method) return usage("--data and --method are required");
    if (!blo_method_find(o.method)) return usage("unknown method (--method list shows them)");
    blo_set_num_threads(o.threads);
    dataset ds;
    memset(&ds, 0, sizeof ds);
    int rc = 1;
    if (load_data(o.data, &ds)) rc = bench_method(&o, &ds, bench_maxrss_mib());
    blo_ctx_free(ds.ctx);
    return rc;
}
