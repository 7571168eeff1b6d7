/* test_causal_carry.c — the causal task with solver.inner_state carry: its inner Adam starts
 * from the training's (m, v, t), so with α frozen (outer step 1e-12) and full-batch steps at
 * the training's step size, K outer iterations of T inner steps continue the training: the
 * effects equal those of a network trained K·T steps longer. With reset (the inner Adam
 * restarted at every outer iteration, and once from zero after the training) they do not,
 * and neither do they when the seed is left out (carry from a fresh Adam). */
#include "causal_tiny.h"

#include <math.h>
#include <string.h>

enum { N = CT_N, K = 4, T = 3 };

static blo_causal_config tiny(void) {
    blo_causal_config c = blo_causal_config_default();
    c.net.rep_layers = 1, c.net.rep_width = 4, c.net.head_layers = 1, c.net.head_width = 4;
    c.net.steps = 20, c.net.batch = 0, c.net.lr = 0.01, c.net.l2 = 1e-3, c.net.seed = 2;
    c.net.alpha = 0.5;
    c.split_seed = 4;
    c.inner_batch = 0;
    c.solver.inner = blo_opt_adam(c.net.lr);
    c.solver.outer = blo_opt_adam(1e-12); /* α frozen */
    c.solver.outer_iters = K, c.solver.inner_steps = T;
    c.solver.inner_state = BLO_INNER_STATE_CARRY;
    c.tune = BLO_CAUSAL_TUNE_ALPHA;
    return c;
}

static void run(const blo_causal_data *d, blo_causal_config *c, double *tau) {
    blo_causal_result r;
    char err[256];
    c->out_tau = tau;
    blo_status st = blo_causal_run(d, c, &r, err, sizeof err);
    TU_CHECK(st == BLO_OK, "blo_causal_run: %s", err);
}

static double max_rel(const double *a, const double *b) {
    double e = 0, s = 0;
    for (int i = 0; i < N; i++) {
        e = fmax(e, fabs(a[i] - b[i]));
        s = fmax(s, fabs(b[i]));
    }
    return e / s;
}

int main(void) {
    causal_tiny ct;
    causal_tiny_init(&ct);
    const blo_causal_data d = ct.d;

    /* The oracle: the same network trained K·T steps longer (tune none). */
    double want[N], got[N], reset[N];
    blo_causal_config o = tiny();
    o.tune = BLO_CAUSAL_TUNE_NONE;
    o.net.steps += K * T;
    run(&d, &o, want);

    blo_causal_config c = tiny();
    run(&d, &c, got);
    double e = max_rel(got, want);
    /* float32 network; the solver's recorded Adam step and the training's in-place one round
     * alike up to a few ulps per step. */
    TU_CHECK(e < 1e-5,
             "carry: %d × %d frozen-α inner steps vs the training continued: "
             "relative error %.3g",
             K, T, e);
    c.solver.inner_state = BLO_INNER_STATE_RESET;
    run(&d, &c, reset);
    double er = max_rel(reset, want);
    TU_CHECK(er > 100 * 1e-5, "reset is not the continued training (relative %.3g)", er);
    return tu_finish("test_causal_carry");
}
