/* cmd_demo.c — `blo demo`: the engine end to end with no data to download.
 *
 * A 2-layer MLP, logits = W2 tanh(W1 x + b1) + b2, is fitted by full-batch gradient descent
 * on N points drawn uniformly from [-1, 1]^2, labelled 1 inside the circle |x|^2 < 0.6 (about
 * half the square) and 0 outside; the loss is the mean cross-entropy. Every step builds the
 * loss with blo ops in a scratch arena, takes blo_grad, updates the parameters in place and
 * rewinds the arena, so memory stays flat however many steps run.
 *
 * At the end it checks the second-order machinery: for a random unit direction v,
 * Hv = blo_hvp(loss, w, v) against central differences of the gradient,
 *     residual = |Hv - (g(w + e v) - g(w - e v)) / 2e| / |Hv|,
 * and fails (exit 1) when the residual exceeds the tolerance of the dtype, or when training
 * did not lower the loss (a learning rate too large).
 */
#include "blo/blo.h"
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define N_PARAMS 4 /* W1 [H, 2], b1 [H], W2 [2, H], b2 [2] */
#define DEMO_MAX_POINTS 512

typedef struct demo_data {
    blo_tensor *x; /* [N, 2] */
    blo_tensor *y; /* [N], i64 */
} demo_data;

/* The mean cross-entropy of the MLP; the logits go to *logits when asked for. */
static blo_tensor *demo_loss(blo_ctx *ctx, blo_tensor *const *p, const demo_data *d,
                             blo_tensor **logits) {
    blo_tensor *h = blo_tanh(ctx, blo_linear(ctx, d->x, p[0], p[1]));
    blo_tensor *z = blo_linear(ctx, h, p[2], p[3]);
    if (logits) *logits = z;
    return blo_cross_entropy(ctx, z, d->y, NULL, BLO_REDUCE_MEAN);
}

/* n <= DEMO_MAX_POINTS (the range of --points). */
static bool demo_make_data(blo_ctx *ctx, blo_rng *r, blo_dtype dt, int64_t n, demo_data *d) {
    double xs[2 * DEMO_MAX_POINTS];
    int64_t ys[DEMO_MAX_POINTS];
    for (int64_t i = 0; i < n; i++) {
        double a = 2 * blo_rng_uniform(r) - 1, b = 2 * blo_rng_uniform(r) - 1;
        xs[2 * i] = a;
        xs[2 * i + 1] = b;
        ys[i] = a * a + b * b < 0.6 ? 1 : 0;
    }
    int64_t sh[2] = {n, 2};
    d->x = blo_from_f64(ctx, dt, 2, sh, xs);
    d->y = blo_from_i64(ctx, 1, &n, ys);
    return d->x && d->y;
}

/* Parameters as variables in ctx: Xavier-normal weights, zero biases. */
static bool demo_make_params(blo_ctx *ctx, blo_rng *r, blo_dtype dt, int64_t hidden,
                             blo_tensor **p) {
    int64_t s0[2] = {hidden, 2}, s2[2] = {2, hidden}, two = 2;
    p[0] = blo_tensor_new(ctx, dt, 2, s0);
    p[1] = blo_zeros(ctx, dt, 1, &hidden);
    p[2] = blo_tensor_new(ctx, dt, 2, s2);
    p[3] = blo_zeros(ctx, dt, 1, &two);
    if (!p[0] || !p[1] || !p[2] || !p[3]) return false;
    blo_init_xavier_normal(p[0], r);
    blo_init_xavier_normal(p[2], r);
    for (int i = 0; i < N_PARAMS; i++)
        blo_set_requires_grad(p[i], 1);
    return blo_ctx_status(ctx) == BLO_OK;
}

/* Σ_i |a_i - b_i|^2 (b may be NULL: Σ_i |a_i|^2) over the parameter tensors. */
static double sq_dist(blo_tensor *const *a, blo_tensor *const *b) {
    double s = 0;
    for (int i = 0; i < N_PARAMS; i++) {
        int64_t n = blo_tensor_numel(a[i]);
        for (int64_t k = 0; k < n; k++) {
            double d = blo_tensor_get(a[i], k) - (b ? blo_tensor_get(b[i], k) : 0.0);
            s += d * d;
        }
    }
    return s;
}

/* The gradient of the loss at p + e v (fresh leaves in ctx), into g. */
static blo_status grad_at(blo_ctx *ctx, blo_tensor *const *p, blo_tensor *const *v, double e,
                          const demo_data *d, blo_tensor **g) {
    blo_tensor *q[N_PARAMS];
    int old = blo_ctx_set_recording(ctx, 0);
    for (int i = 0; i < N_PARAMS; i++) {
        q[i] = blo_clone(ctx, blo_add(ctx, p[i], blo_scale(ctx, v[i], e)));
        if (q[i]) blo_set_requires_grad(q[i], 1);
    }
    blo_ctx_set_recording(ctx, old);
    blo_tensor *loss = demo_loss(ctx, q, d, NULL);
    return blo_grad(ctx, 1, &loss, NULL, N_PARAMS, q, 0, g);
}

/* The HVP residual at p (see the top of the file). */
static blo_status hvp_check(blo_ctx *ctx, blo_rng *r, blo_tensor *const *p, const demo_data *d,
                            double e, double *residual) {
    blo_tensor *v[N_PARAMS], *hv[N_PARAMS], *gp[N_PARAMS], *gm[N_PARAMS], *fd[N_PARAMS];
    for (int i = 0; i < N_PARAMS; i++) {
        v[i] = blo_tensor_new(ctx, blo_tensor_dtype(p[i]), blo_tensor_ndim(p[i]),
                              blo_tensor_shape(p[i]));
        if (!v[i]) return blo_ctx_status(ctx);
        blo_init_normal(v[i], r, 0, 1);
    }
    double norm = sqrt(sq_dist(v, NULL));
    for (int i = 0; i < N_PARAMS; i++)
        v[i] = blo_scale(ctx, v[i], 1.0 / norm);
    blo_tensor *loss = demo_loss(ctx, p, d, NULL);
    blo_status s = blo_hvp(ctx, loss, N_PARAMS, p, v, 0, hv);
    if (!s) s = grad_at(ctx, p, v, e, d, gp);
    if (!s) s = grad_at(ctx, p, v, -e, d, gm);
    if (s) return s;
    int old = blo_ctx_set_recording(ctx, 0);
    for (int i = 0; i < N_PARAMS; i++)
        fd[i] = blo_scale(ctx, blo_sub(ctx, gp[i], gm[i]), 0.5 / e);
    blo_ctx_set_recording(ctx, old);
    if (blo_ctx_status(ctx)) return blo_ctx_status(ctx);
    *residual = sqrt(sq_dist(hv, fd)) / fmax(sqrt(sq_dist(hv, NULL)), 1e-300);
    return BLO_OK;
}

typedef struct demo_result {
    double initial_loss, final_loss, accuracy, hvp_residual, hvp_tol, seconds;
    size_t peak_bytes;
} demo_result;

static int engine_failed(const char *what, blo_ctx *ctx) {
    fprintf(stderr, "blo demo: %s: %s: %s\n", what, blo_status_name(blo_ctx_status(ctx)),
            blo_ctx_error(ctx));
    return CLI_EXIT_FAILED;
}

int cli_demo_run(const cli_cmd *cmd, int argc, char **argv) {
    long long seed = 1, steps = 300, threads = 0, hidden = 16, npoints = 256;
    double lr = 1.0;
    const char *dtype = "f64";
    int quiet = 0, json = 0;
    const cli_opt opts[] = {
        {"--steps", NULL, CLI_INT, &steps, 1, 1e6, NULL, "N", "gradient-descent steps"},
        {"--lr", NULL, CLI_DOUBLE, &lr, 0, 100, NULL, "RATE", "learning rate"},
        {"--hidden", NULL, CLI_INT, &hidden, 1, 256, NULL, "H", "hidden units"},
        {"--points", NULL, CLI_INT, &npoints, 2, DEMO_MAX_POINTS, NULL, "N", "training points"},
        {"--seed", NULL, CLI_INT, &seed, 0, 9007199254740991.0, NULL, "S",
         "seed for the data, the initial weights and the HVP direction"},
        {"--threads", NULL, CLI_INT, &threads, 0, 1024, NULL, "N", "threads (0 = all cores)"},
        {"--dtype", NULL, CLI_CHOICE, &dtype, 0, 0, "f32|f64", NULL, "precision"},
        {"--json", NULL, CLI_FLAG, &json, 0, 0, NULL, NULL,
         "print the summary as one JSON object on stdout"},
        {"-q", "--quiet", CLI_FLAG, &quiet, 0, 0, NULL, NULL, "no progress on stderr"},
    };
    int rc;
    if (!cli_parse(cmd, argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), &rc)) return rc;

    blo_dtype dt = strcmp(dtype, "f32") ? BLO_F64 : BLO_F32;
    blo_set_num_threads((int)threads);
    blo_rng rng;
    blo_rng_seed(&rng, (uint64_t)seed);
    double t0 = cli_seconds();

    /* keep: data and parameters, for the whole run. work: one step at a time. */
    blo_ctx *keep = blo_ctx_new(0), *work = blo_ctx_new(0);
    if (!keep || !work) {
        blo_ctx_free(keep);
        blo_ctx_free(work);
        fprintf(stderr, "blo demo: out of memory\n");
        return CLI_EXIT_FAILED;
    }
    rc = CLI_EXIT_OK;
    demo_data data;
    blo_tensor *p[N_PARAMS], *g[N_PARAMS];
    demo_result res = {0};
    if (!demo_make_data(keep, &rng, dt, (int64_t)npoints, &data) ||
        !demo_make_params(keep, &rng, dt, (int64_t)hidden, p)) {
        rc = engine_failed("setting up", keep);
        goto done;
    }
    long long every = steps >= 10 ? steps / 10 : 1;
    for (long long t = 0; t < steps; t++) {
        blo_mark m = blo_ctx_mark(work);
        blo_tensor *loss = demo_loss(work, p, &data, NULL);
        if (blo_grad(work, 1, &loss, NULL, N_PARAMS, p, 0, g)) {
            rc = engine_failed("gradient", work);
            goto done;
        }
        double l = blo_tensor_item(loss);
        if (!isfinite(l)) {
            fprintf(stderr, "blo demo: step %lld: the loss is not finite (%g); lower --lr\n", t, l);
            rc = CLI_EXIT_FAILED;
            goto done;
        }
        if (t == 0) res.initial_loss = l;
        if (!quiet && (t % every == 0)) fprintf(stderr, "step %6lld  loss %.6f\n", t, l);
        /* w <- w - lr g, computed without recording and written into the leaves. */
        int old = blo_ctx_set_recording(work, 0);
        for (int i = 0; i < N_PARAMS; i++)
            blo_copy_into(p[i], blo_sub(work, p[i], blo_scale(work, g[i], lr)));
        blo_ctx_set_recording(work, old);
        if (blo_ctx_status(work) || blo_ctx_status(keep)) {
            rc = engine_failed("update", blo_ctx_status(work) ? work : keep);
            goto done;
        }
        blo_ctx_rewind(work, m);
    }

    blo_mark m = blo_ctx_mark(work);
    blo_tensor *logits = NULL;
    int old = blo_ctx_set_recording(work, 0);
    blo_tensor *loss = demo_loss(work, p, &data, &logits);
    blo_ctx_set_recording(work, old);
    if (!loss) {
        rc = engine_failed("final loss", work);
        goto done;
    }
    res.final_loss = blo_tensor_item(loss);
    res.accuracy = blo_accuracy(logits, data.y);
    if (!quiet) fprintf(stderr, "step %6lld  loss %.6f\n", steps, res.final_loss);
    if (!isfinite(res.final_loss)) {
        fprintf(stderr, "blo demo: the final loss is not finite; lower --lr\n");
        rc = CLI_EXIT_FAILED;
        goto done;
    }
    blo_ctx_rewind(work, m);

    /* Central differences: truncation O(e^2), rounding O(eps/e); e near eps^(1/3). */
    double e = dt == BLO_F64 ? 1e-5 : 1e-2;
    res.hvp_tol = dt == BLO_F64 ? 1e-6 : 1e-3;
    if (hvp_check(work, &rng, p, &data, e, &res.hvp_residual)) {
        rc = engine_failed("HVP check", work);
        goto done;
    }
    res.seconds = cli_seconds() - t0;
    res.peak_bytes = blo_ctx_peak_bytes(work);
    bool hvp_ok = res.hvp_residual <= res.hvp_tol;

    if (json) {
        printf("{\"command\": \"demo\", \"dtype\": \"%s\", \"seed\": %lld, \"steps\": %lld, "
               "\"threads\": %d, \"initial_loss\": ",
               blo_dtype_name(dt), seed, steps, blo_num_threads());
        cli_json_number(stdout, res.initial_loss);
        printf(", \"final_loss\": ");
        cli_json_number(stdout, res.final_loss);
        printf(", \"accuracy\": ");
        cli_json_number(stdout, res.accuracy);
        printf(", \"hvp_residual\": ");
        cli_json_number(stdout, res.hvp_residual);
        printf(", \"hvp_tolerance\": ");
        cli_json_number(stdout, res.hvp_tol);
        printf(", \"hvp_ok\": %s, \"scratch_peak_bytes\": %zu, \"seconds\": ",
               hvp_ok ? "true" : "false", res.peak_bytes);
        cli_json_number(stdout, res.seconds);
        printf("}\n");
    } else {
        printf("demo: %s, %lld points, %lld hidden units, %lld steps at lr %g, seed %lld, "
               "%d threads\n",
               blo_dtype_name(dt), npoints, hidden, steps, lr, seed, blo_num_threads());
        printf("loss      %.6f -> %.6f\n", res.initial_loss, res.final_loss);
        printf("accuracy  %.4f\n", res.accuracy);
        printf("hvp       residual %.3g vs finite differences (tolerance %.0e): %s\n",
               res.hvp_residual, res.hvp_tol, hvp_ok ? "ok" : "FAILED");
        printf("memory    scratch arena peak %zu bytes (rewound every step)\n", res.peak_bytes);
        printf("time      %.3f s\n", res.seconds);
    }
    if (!hvp_ok) {
        fprintf(stderr, "blo demo: HVP check failed: residual %g > tolerance %g\n",
                res.hvp_residual, res.hvp_tol);
        rc = CLI_EXIT_FAILED;
    }
    if (!(res.final_loss < res.initial_loss)) {
        fprintf(stderr, "blo demo: diverged: the loss went from %g to %g; lower --lr\n",
                res.initial_loss, res.final_loss);
        rc = CLI_EXIT_FAILED;
    }
done:
    blo_ctx_free(work);
    blo_ctx_free(keep);
    return rc;
}
