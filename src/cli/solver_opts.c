/* solver_opts.c — see solver_opts.h. */
#include "solver_opts.h"

#include <string.h>

void cli_solver_args_from(cli_solver_args *a, const blo_config *c) {
    memset(a, 0, sizeof *a);
    a->method = c->method;
    a->outer = c->outer_iters;
    a->inner = c->inner_steps;
    a->inner_opt = blo_opt_kind_name(c->inner.kind);
    a->outer_opt = blo_opt_kind_name(c->outer.kind);
    a->init = blo_init_kind_name(c->init);
    a->inner_state = blo_inner_state_name(c->inner_state);
    a->inner_lr = c->inner.lr;
    a->outer_lr = c->outer.lr;
    a->init_lr = c->init_opt.lr;
    a->momentum = c->inner.momentum;
    a->weight_decay = c->inner.weight_decay;
    a->K = -1;
    a->trhg_window = c->trhg_window;
    a->neumann_terms = c->neumann_terms;
    a->solve_iters = c->solve_iters;
    a->tol = c->tol;
    a->damping = c->damping;
    a->alpha = c->alpha;
    a->eta = c->eta;
    a->fd_radius = c->fd_radius;
    a->upper_lr = c->upper_lr;
    a->amm_schedule = c->amm_schedule ? "code" : "theorem";
    a->checkpoints = c->checkpoints;
    a->diverge = c->diverge_limit;
    a->checkpoint_every = c->checkpoint_every > 0 ? c->checkpoint_every : 10;
    a->check_hypergrad = c->check_hypergrad;
    a->check_rhg_steps = c->check_rhg_steps;
}

int cli_solver_opts(cli_opt *o, int n, cli_solver_args *a) {
    const double BIG = 1e300;
    const cli_opt shared[CLI_SOLVER_NOPTS] = {
        {"--method", NULL, CLI_STRING, &a->method, 0, 0, NULL, "NAME",
         "hypergradient method (list below; `blo methods -v` for papers)"},
        {"--outer", NULL, CLI_INT, &a->outer, 0, 1e12, NULL, "N", "upper-level iterations"},
        {"--inner", NULL, CLI_INT, &a->inner, 0, 1e9, NULL, "T",
         "lower-level steps per upper-level iteration"},
        {"--inner-opt", NULL, CLI_CHOICE, &a->inner_opt, 0, 0, "sgd|momentum|nesterov|adam", "OPT",
         "lower-level dynamics y_{t+1} = Phi(x, y_t) (differentiated through)"},
        {"--inner-lr", NULL, CLI_DOUBLE, &a->inner_lr, 1e-300, BIG, NULL, "LR",
         "lower-level step size"},
        {"--momentum", NULL, CLI_DOUBLE, &a->momentum, 0, 1, NULL, "MU", "momentum / Nesterov mu"},
        {"--weight-decay", NULL, CLI_DOUBLE, &a->weight_decay, 0, BIG, NULL, "WD",
         "lower-level L2 term added to the gradient"},
        {"--outer-opt", NULL, CLI_CHOICE, &a->outer_opt, 0, 0, "sgd|momentum|nesterov|adam", "OPT",
         "upper-level optimizer on x"},
        {"--outer-lr", NULL, CLI_DOUBLE, &a->outer_lr, 1e-300, BIG, NULL, "LR",
         "upper-level step size"},
        {"--init", NULL, CLI_CHOICE, &a->init, 0, 0, "fixed|warm|learned", "KIND",
         "lower-level start: fixed y0, warm (last y_T), learned (y0 updated on dF/dy0)"},
        {"--inner-state", NULL, CLI_CHOICE, &a->inner_state, 0, 0, "reset|carry", "S",
         "with --init warm: reset restarts the inner optimizer every outer iteration (m = v = 0, "
         "t = 0); carry continues its m, v, t from the last one (K outer × T inner steps = K·T "
         "steps of one run)"},
        {"--init-lr", NULL, CLI_DOUBLE, &a->init_lr, 1e-300, BIG, NULL, "LR",
         "SGD step of a learned start y0"},
        {"--K", NULL, CLI_INT, &a->K, 0, 1e9, NULL, "K",
         "shorthand that sets --trhg-window, --neumann-terms and --solve-iters to K (-1: unset)"},
        {"--trhg-window", NULL, CLI_INT, &a->trhg_window, 1, 1e9, NULL, "K",
         "trhg: the last K inner steps reversed through"},
        {"--neumann-terms", NULL, CLI_INT, &a->neumann_terms, 0, 1e9, NULL, "K",
         "neumann: terms of the series after the first"},
        {"--solve-iters", NULL, CLI_INT, &a->solve_iters, 1, 1e9, NULL, "N",
         "cg / fixed_point: iterations of the linear solve at most"},
        {"--tol", NULL, CLI_DOUBLE, &a->tol, 0, BIG, NULL, "TOL",
         "cg / fixed_point residual tolerance"},
        {"--damping", NULL, CLI_DOUBLE, &a->damping, 0, BIG, NULL, "D",
         "cg: solve (H + D I) v = dF/dy, for an indefinite lower-level Hessian H"},
        {"--alpha", NULL, CLI_DOUBLE, &a->alpha, 0, BIG, NULL, "A",
         "neumann step; bda / amm aggregation weight mu_0"},
        {"--eta", NULL, CLI_DOUBLE, &a->eta, 0, BIG, NULL, "E", "bome eta"},
        {"--fd-radius", NULL, CLI_DOUBLE, &a->fd_radius, 0, BIG, NULL, "R",
         "darts finite-difference radius"},
        {"--upper-lr", NULL, CLI_DOUBLE, &a->upper_lr, 0, BIG, NULL, "S", "bda step on grad_y F"},
        {"--amm-schedule", NULL, CLI_CHOICE, &a->amm_schedule, 0, 0, "theorem|code", "S",
         "amm: the paper's mu_k = alpha/(k+1)^0.1 and decaying steps (theorem), or the "
         "authors' code's mu_k = alpha/(k+2) and constant steps (code)"},
        {"--checkpoints", NULL, CLI_INT, &a->checkpoints, 0, 1e9, NULL, "S",
         "rhg_ckpt segment length (0: sqrt(T))"},
        {"--check-hypergrad", NULL, CLI_INT, &a->check_hypergrad, 0, 1e12, NULL, "N",
         "every N iterations compare dF/dx with central differences of the unrolled objective "
         "along 4 random directions; print cosine and relative error (0: off)"},
        {"--check-rhg", NULL, CLI_INT, &a->check_rhg_steps, 0, 1e9, NULL, "T",
         "with --check-hypergrad, also compare with rhg over T inner steps (the long-horizon "
         "reference for implicit and truncated methods; memory grows with T; 0: off)"},
        {"--diverge", NULL, CLI_DOUBLE, &a->diverge, 0, BIG, NULL, "LIMIT",
         "stop with exit 1 when |F| exceeds LIMIT (0: only on inf/nan)"},
        {"--checkpoint", NULL, CLI_STRING, &a->checkpoint, 0, 0, NULL, "FILE",
         "save the whole state here periodically and at the end"},
        {"--checkpoint-every", NULL, CLI_INT, &a->checkpoint_every, 1, 1e12, NULL, "N",
         "iterations between checkpoints"},
        {"--resume", NULL, CLI_STRING, &a->resume, 0, 0, NULL, "FILE",
         "continue a run from its checkpoint (same settings); keeps saving there"},
    };
    for (int i = 0; i < CLI_SOLVER_NOPTS; i++)
        o[n + i] = shared[i];
    return n + CLI_SOLVER_NOPTS;
}

bool cli_solver_config(const char *cmd, const cli_solver_args *a, blo_config *c) {
    if (!blo_method_find(a->method)) {
        fprintf(stderr, "blo %s: bad value '%s' for --method: expected one of", cmd, a->method);
        for (int i = 0; i < blo_method_count(); i++)
            fprintf(stderr, "%s %s", i ? "," : "", blo_method_at(i)->name);
        fprintf(stderr, "\n");
        return false;
    }
    c->method = a->method;
    c->outer_iters = a->outer;
    c->inner_steps = (int)a->inner;
    c->inner.kind = (blo_opt_kind)blo_opt_kind_parse(a->inner_opt);
    c->inner.lr = a->inner_lr;
    c->inner.momentum = a->momentum;
    c->inner.weight_decay = a->weight_decay;
    c->outer.kind = (blo_opt_kind)blo_opt_kind_parse(a->outer_opt);
    c->outer.lr = a->outer_lr;
    c->outer.momentum = a->momentum;
    c->init = (blo_init_kind)blo_init_kind_parse(a->init);
    c->inner_state = (blo_inner_state)blo_inner_state_parse(a->inner_state);
    c->init_opt.lr = a->init_lr;
    c->trhg_window = (int)a->trhg_window;
    c->neumann_terms = (int)a->neumann_terms;
    c->solve_iters = (int)a->solve_iters;
    if (a->K >= 0) c->trhg_window = c->neumann_terms = c->solve_iters = (int)a->K;
    c->tol = a->tol;
    c->damping = a->damping;
    c->alpha = a->alpha;
    c->eta = a->eta;
    c->fd_radius = a->fd_radius;
    c->upper_lr = a->upper_lr;
    c->amm_schedule = !strcmp(a->amm_schedule, "code");
    c->checkpoints = (int)a->checkpoints;
    c->diverge_limit = a->diverge;
    c->checkpoint_path = a->checkpoint ? a->checkpoint : a->resume;
    c->checkpoint_every = a->checkpoint_every;
    c->check_hypergrad = a->check_hypergrad;
    c->check_rhg_steps = a->check_rhg_steps;
    return true;
}

void cli_print_methods(FILE *f) {
    fprintf(f, "\nmethods (--method):\n");
    for (int i = 0; i < blo_method_count(); i++) {
        const blo_method_info *m = blo_method_at(i);
        fprintf(f, "  %-12s %s\n", m->name, m->maths);
    }
}
