/* cmd_deq.c — `blo deq`: an equilibrium layer and a linear head on Fashion-MNIST, a thin
 * layer over blo_deq_run (include/blo/deq.h) in the task frame: its options, the per-epoch
 * progress and log row, the summary table or JSON. */
#include "task_frame.h"

#include "blo/blo.h"
#include "blo/deq.h"

#include <math.h>
#include <string.h>

typedef struct deq_cmd {
    blo_deq_config c;
    long long n_train, n_test, hidden, epochs, batch, seed, max_iter, back_max_iter, anderson_m,
        phantom_k, channels, kernel, stride;
    const char *param, *act, *solver, *backward, *checkpoint, *resume, *layer;
    blo_deq_result r;
} deq_cmd;

static int deq_on_epoch(const blo_deq_epoch *e, void *user) {
    cli_task *t = user;
    char status[160];
    snprintf(status, sizeof status,
             "epoch %d  loss %.4f  test acc %.2f%%  fwd %.1f it (res %.2g)  bwd %.1f it  "
             "unconverged %lld",
             e->epoch, e->train_loss, 100 * e->test_acc, e->fwd_iters, e->fwd_residual,
             e->bwd_iters, (long long)e->unconverged);
    double row[11] = {(double)e->epoch, e->train_loss, e->test_acc, e->fwd_iters,
                      e->fwd_residual,  e->bwd_iters,  e->bwd_residual, (double)e->unconverged,
                      e->worst_residual, e->seconds,   (double)e->peak_bytes};
    if (e->baseline) {
        snprintf(status, sizeof status, "explicit network: epoch %d  loss %.4f  test acc %.2f%%",
                 e->epoch, e->train_loss, 100 * e->test_acc);
        cli_progress_update(&t->prog, e->epoch, status);
        return 0;
    }
    if (e->unconverged && !t->quiet)
        fprintf(stderr, "%sblo deq: epoch %d: %lld examples stopped above the tolerance (worst "
                        "minibatch residual %.3g)\n",
                t->prog.tty ? "\r\033[K" : "", e->epoch, (long long)e->unconverged,
                e->worst_residual);
    cli_task_step(t, e->epoch, status, row);
    return 0;
}

static bool deq_configure(cli_task *t) {
    deq_cmd *h = t->user;
    blo_deq_config *c = &h->c;
    blo_deq_opts *o = &c->layer;
    c->n_train = h->n_train, c->n_test = h->n_test, c->hidden = h->hidden;
    c->epochs = (int)h->epochs, c->batch = h->batch, c->seed = (uint64_t)h->seed;
    o->param = (blo_deq_param)blo_deq_param_parse(h->param);
    o->act = (blo_deq_act)blo_deq_act_parse(h->act);
    o->solver = (blo_deq_solver)blo_deq_solver_parse(h->solver);
    o->backward = (blo_deq_backward_kind)blo_deq_backward_parse(h->backward);
    o->max_iter = (int)h->max_iter, o->back_max_iter = (int)h->back_max_iter;
    o->anderson_m = (int)h->anderson_m, o->phantom_k = (int)h->phantom_k;
    c->checkpoint = h->checkpoint, c->resume = h->resume;
    c->conv = !strcmp(h->layer, "conv");
    c->channels = h->channels, c->conv_kernel = (int)h->kernel, c->conv_stride = (int)h->stride;
    c->dtype = cli_task_dtype(t);
    c->on_epoch = deq_on_epoch;
    c->user = t;
    const char *why = blo_deq_opts_check(o);
    if (!why && c->conv && o->param != BLO_DEQ_MONOTONE)
        why = "--layer conv has the monotone parametrisation only";
    if (!why && c->conv && o->solver == BLO_DEQ_PR)
        why = "--layer conv: pr is not offered (its resolvent (I + alpha(I - W))^-1 would need an "
              "FFT inverse); use fb, anderson or picard";
    if (!why && c->conv && c->conv_kernel % 2 == 0) why = "--kernel must be odd";
    if (why) {
        fprintf(stderr, "blo deq: %s\n", why);
        return false;
    }
    t->total = c->epochs;
    return true;
}

static blo_status deq_run(cli_task *t, char *err, size_t errlen) {
    deq_cmd *h = t->user;
    const blo_deq_opts *o = &h->c.layer;
    char d[64];
    if (h->c.conv)
        snprintf(d, sizeof d, "conv, %lld channels, %dx%d kernels, stride %d",
                 (long long)h->c.channels, h->c.conv_kernel, h->c.conv_kernel, h->c.conv_stride);
    else
        snprintf(d, sizeof d, "d = %lld", (long long)h->c.hidden);
    if (!t->quiet)
        fprintf(stderr, "deq: %s W, %s, %s, %s forward (cap %d, tol %g), %s backward, %d "
                        "epochs of batch %lld\n",
                blo_deq_param_name(o->param), blo_deq_act_name(o->act), d,
                blo_deq_solver_name(o->solver), o->max_iter, o->tol,
                blo_deq_backward_name(o->backward), h->c.epochs, (long long)h->c.batch);
    return blo_deq_run(&h->c, &h->r, err, errlen);
}

static int deq_summary(cli_task *t) {
    deq_cmd *h = t->user;
    const blo_deq_opts *o = &h->c.layer;
    const blo_deq_result *r = &h->r;
    if (t->json) {
        printf("{\"task\":\"deq\",\"layer\":\"%s\",\"channels\":%lld,", h->layer,
               (long long)h->c.channels);
        printf("\"param\":\"%s\",\"act\":\"%s\",\"solver\":\"%s\","
               "\"backward\":\"%s\",\"hidden\":%lld,\"epochs\":%d,\"params\":%lld,"
               "\"unconverged\":%lld,\"peak_bytes\":%zu",
               blo_deq_param_name(o->param), blo_deq_act_name(o->act),
               blo_deq_solver_name(o->solver), blo_deq_backward_name(o->backward),
               (long long)h->c.hidden, r->epochs, (long long)r->params,
               (long long)r->unconverged, r->peak_bytes);
        const char *keys[] = {"test_acc", "train_loss", "fwd_iters", "fwd_residual", "bwd_iters",
                              "seconds", "cpu_seconds", "baseline_acc", "baseline_seconds"};
        double vals[] = {r->test_acc, r->train_loss, r->fwd_iters, r->fwd_residual, r->bwd_iters,
                         r->seconds, r->cpu_seconds, r->baseline_acc, r->baseline_seconds};
        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
            printf(",\"%s\":", keys[i]);
            cli_json_number(stdout, vals[i]);
        }
        printf(",\"baseline_params\":%lld,\"baseline_hidden\":%lld}\n",
               (long long)r->baseline_params, (long long)r->baseline_hidden);
        return CLI_EXIT_OK;
    }
    if (h->c.conv)
        printf("equilibrium layer (conv, %lld channels, %s W, %s, %lld parameters): %d epochs, "
               "%.1f s\n",
               (long long)h->c.channels, blo_deq_param_name(o->param), blo_deq_act_name(o->act),
               (long long)r->params, r->epochs, r->seconds);
    else
        printf("equilibrium layer (%s W, %s, d = %lld, %lld parameters): %d epochs, %.1f s\n",
               blo_deq_param_name(o->param), blo_deq_act_name(o->act), (long long)h->c.hidden,
               (long long)r->params, r->epochs, r->seconds);
    printf("  %-40s %6.2f %%\n", "test accuracy", 100 * r->test_acc);
    printf("  %-40s %.4f\n", "training loss (last epoch)", r->train_loss);
    printf("  %-40s %.1f (%s, cap %d), residual %.3g\n", "forward iterations per minibatch",
           r->fwd_iters, blo_deq_solver_name(o->solver), o->max_iter, r->fwd_residual);
    printf("  %-40s %.1f (%s)\n", "backward iterations per minibatch", r->bwd_iters,
           blo_deq_backward_name(o->backward));
    printf("  %-40s %lld\n", "examples not converged (all epochs)", (long long)r->unconverged);
    printf("  %-40s %.1f MiB\n", "peak memory of one training step", r->peak_bytes / 1048576.0);
    if (isfinite(r->baseline_acc) && h->c.conv)
        printf("  %-40s %6.2f %%  (3 convs of %lld channels -> pool -> Linear, %lld parameters, "
               "%.1f s)\n",
               "explicit conv net, same size", 100 * r->baseline_acc,
               (long long)r->baseline_hidden, (long long)r->baseline_params, r->baseline_seconds);
    else if (isfinite(r->baseline_acc))
        printf("  %-40s %6.2f %%  (Linear(784, %lld) -> ReLU -> Linear, %lld parameters, %.1f s)\n",
               "explicit network, same size", 100 * r->baseline_acc,
               (long long)r->baseline_hidden, (long long)r->baseline_params, r->baseline_seconds);
    if (t->plot) printf("  plot: %s\n", t->plot);
    return CLI_EXIT_OK;
}

static const char *const DEQ_COLS[11] = {"iter",         "upper",     "test_acc",  "fwd_iters",
                                         "fwd_residual", "bwd_iters", "bwd_residual",
                                         "unconverged",  "worst_residual", "seconds",
                                         "peak_bytes"};
static const cli_task_def DEQ = {"deq", 11, DEQ_COLS, deq_configure, deq_run, deq_summary, NULL};

int cli_deq_run(const cli_cmd *cmd, int argc, char **argv) {
    deq_cmd h;
    memset(&h, 0, sizeof h);
    h.c = blo_deq_default();
    h.c.data_dir = cli_default_data();
    blo_deq_opts *o = &h.c.layer;
    h.hidden = h.c.hidden, h.epochs = h.c.epochs, h.batch = h.c.batch;
    h.max_iter = o->max_iter, h.back_max_iter = o->back_max_iter;
    h.anderson_m = o->anderson_m, h.phantom_k = o->phantom_k;
    h.param = blo_deq_param_name(o->param), h.act = blo_deq_act_name(o->act);
    h.solver = blo_deq_solver_name(o->solver), h.backward = blo_deq_backward_name(o->backward);
    h.layer = "dense", h.channels = h.c.channels, h.kernel = h.c.conv_kernel;
    h.stride = h.c.conv_stride;
    cli_task t;
    cli_task_init(&t, &DEQ, cmd, NULL, &h);
    /* One thread by default: the layer's products are small (B x d x d), and on a few cores
     * the threads' start-up costs more than they save (BENCHMARKS.md, "Implicit models"). */
    t.threads = 1;
    cli_task_output(&t, "--checkpoint", &h.checkpoint);
    cli_opt opts[32 + CLI_TASK_NOPTS] = {
        {"--data", NULL, CLI_STRING, &h.c.data_dir, 0, 0, NULL, "DIR",
         "MNIST-layout folder (train-* and t10k-* idx files, optionally .gz)" CLI_DATA_HELP},
        {"--n-train", NULL, CLI_INT, &h.n_train, 0, 1e9, NULL, "N", "training examples (0: all)"},
        {"--n-test", NULL, CLI_INT, &h.n_test, 0, 1e9, NULL, "N", "test examples (0: all)"},
        {"--layer", NULL, CLI_CHOICE, &h.layer, 0, 0, "dense|conv", "L",
         "z, U, W dense | state [C, h, h]: Ux = conv(image, U, stride), "
         "Wz = (1-m)z - A'(Az) + (B - B')z with convs A, B (A' transposed); head on 2x2 pools"},
        {"--hidden", NULL, CLI_INT, &h.hidden, 1, 1e5, NULL, "D", "units d of the dense layer"},
        {"--channels", NULL, CLI_INT, &h.channels, 1, 1e4, NULL, "C", "conv: state channels"},
        {"--kernel", NULL, CLI_INT, &h.kernel, 1, BLO_DEQ_MAX_KERNEL, NULL, "K",
         "conv: side of U, A, B (odd)"},
        {"--stride", NULL, CLI_INT, &h.stride, 1, 64, NULL, "S", "conv: U's stride"},
        {"--param", NULL, CLI_CHOICE, &h.param, 0, 0, "monotone|weight|spectral", "P",
         "W = (1-m)I - A'A + B - B' | s V/|V|_F | s V/sigma_max(V)"},
        {"--act", NULL, CLI_CHOICE, &h.act, 0, 0, "relu|tanh", "F", "the nonlinearity sigma"},
        {"--m", NULL, CLI_DOUBLE, &o->m, 1e-6, 1, NULL, "M", "monotone: margin, I - W >= m I"},
        {"--scale", NULL, CLI_DOUBLE, &o->scale, 1e-6, 0.999999, NULL, "S",
         "weight / spectral: bound s on |W|_2 (< 1: a contraction)"},
        {"--solver", NULL, CLI_CHOICE, &h.solver, 0, 0, "picard|anderson|fb|pr", "S",
         "z <- Phi(z) | Anderson-accelerated | z <- relu((1-alpha)z + alpha(Wz + Ux + b)) | "
         "Peaceman-Rachford: z = relu(u), u <- 2R(2z - u + alpha(Ux + b)) - (2z - u), "
         "R = (I + alpha(I - W))^-1"},
        {"--max-iter", NULL, CLI_INT, &h.max_iter, 1, 1e6, NULL, "N", "forward iteration cap"},
        {"--tol", NULL, CLI_DOUBLE, &o->tol, 0, 1, NULL, "T",
         "forward: |T(z) - z| / |sigma(Ux + b)| to stop at"},
        {"--anderson-m", NULL, CLI_INT, &h.anderson_m, 0, 32, NULL, "M",
         "Anderson memory (anderson; fb and pr when > 0)"},
        {"--anderson-beta", NULL, CLI_DOUBLE, &o->anderson_beta, 1e-6, 1, NULL, "B",
         "Anderson mixing"},
        {"--alpha", NULL, CLI_DOUBLE, &o->alpha, 1e-6, 1e3, NULL, "A",
         "fb: splitting step, <= 1; pr: resolvent step"},
        {"--backward", NULL, CLI_CHOICE, &h.backward, 0, 0, "implicit|jfb|phantom|unrolled", "B",
         "u = J'u + dL/dz*, dL/dtheta = (dT/dtheta)'u | u = dL/dz* | k damped steps from z* | "
         "backprop through every forward step"},
        {"--back-max-iter", NULL, CLI_INT, &h.back_max_iter, 1, 1e6, NULL, "N",
         "implicit: adjoint iteration cap"},
        {"--back-tol", NULL, CLI_DOUBLE, &o->back_tol, 0, 1, NULL, "T",
         "implicit: adjoint |G(u) - u| / |dL/dz*| to stop at"},
        {"--phantom-k", NULL, CLI_INT, &h.phantom_k, 1, 1e6, NULL, "K",
         "phantom: steps z <- (1-lambda)z + lambda Phi(z)"},
        {"--phantom-lambda", NULL, CLI_DOUBLE, &o->phantom_lambda, 1e-6, 1, NULL, "L",
         "phantom: damping"},
        {"--epochs", NULL, CLI_INT, &h.epochs, 0, 1e6, NULL, "N", "passes over the training set"},
        {"--batch", NULL, CLI_INT, &h.batch, 1, 1e7, NULL, "B", "minibatch size"},
        {"--lr", NULL, CLI_DOUBLE, &h.c.lr, 1e-12, 1e3, NULL, "LR", "Adam step"},
        {"--jac-reg", NULL, CLI_DOUBLE, &h.c.jac_reg, 0, 1e6, NULL, "G",
         "add G |eps' dPhi/dz|^2 / (B d) (Hutchinson estimate of |J|_F^2 / d) to the loss"},
        {"--baseline", NULL, CLI_FLAG, &h.c.baseline, 0, 0, NULL, NULL,
         "also train Linear(784, h) -> ReLU -> Linear(h, 10) of the same parameter count"},
        {"--checkpoint", NULL, CLI_STRING, &h.checkpoint, 0, 0, NULL, "FILE",
         "save parameters and Adam state after every epoch"},
        {"--resume", NULL, CLI_STRING, &h.resume, 0, 0, NULL, "FILE",
         "continue from a --checkpoint file of the same settings"},
        {"--seed", NULL, CLI_INT, &h.seed, 0, 9e18, NULL, "S", "initial weights, minibatch order"},
    };
    return cli_task_main(&t, argc, argv, opts, cli_task_opts(&t, opts, 31));
}
