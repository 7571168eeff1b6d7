/* config.c — the configuration every method reads: its defaults and the names of the LL
 * starts. Here rather than in the solver, so that methods (which sit below the solver) can
 * name a start in their messages. */
#include "method.h"

#include <string.h>

static const char *const INIT_NAMES[] = {"fixed", "warm", "learned", "from_x"};

/* The index of name in names[0..n), or -1. */
static int name_index(const char *const *names, int n, const char *name) {
    for (int i = 0; name && i < n; i++)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

int blo_init_kind_parse(const char *name) {
    return name_index(INIT_NAMES, 4, name);
}

const char *blo_init_kind_name(blo_init_kind k) {
    return (unsigned)k < 4 ? INIT_NAMES[k] : "?";
}

static const char *const INNER_STATE_NAMES[] = {"reset", "carry"};

int blo_inner_state_parse(const char *name) {
    return name_index(INNER_STATE_NAMES, 2, name);
}

const char *blo_inner_state_name(blo_inner_state k) {
    return (unsigned)k < 2 ? INNER_STATE_NAMES[k] : "?";
}

blo_config blo_config_default(void) {
    blo_config c;
    memset(&c, 0, sizeof c);
    c.method = "rhg";
    c.inner = blo_opt_sgd(0.1);
    c.inner_steps = 20;
    c.lr_x = -1;
    c.init = BLO_INIT_FIXED;
    c.init_opt = blo_opt_sgd(0.03);
    c.outer = blo_opt_adam(0.01);
    c.outer_iters = 100;
    c.trhg_window = c.neumann_terms = c.solve_iters = 10;
    c.anderson_beta = 1.0;
    c.tol = 1e-10;
    c.alpha = 0.5;
    c.eta = 0.5;
    c.fd_radius = 0.01;
    c.upper_lr = 0.1;
    c.max_fhg_dim = 4096;
    c.check_directions = 4;
    return c;
}
