/* test_causal_keep_best.c — blo_causal_config.keep_best: the run ends on the network with the
 * lowest validation criterion among the trained start and every outer iteration's y_T. The
 * oracle: runs of j = 1 .. K outer iterations without it end on y_T of iteration j − 1 with
 * its criterion; keep_best over K iterations must report the least of those criteria and the
 * scores of that run, bit for bit (the start being worse here); with no outer iteration it
 * ends on the start, scored as tune none scores it. */
#include "causal_tiny.h"

#include <math.h>
#include <string.h>

enum { K = 3 };

static blo_causal_config tiny(int outer) {
    blo_causal_config c = blo_causal_config_default();
    c.net.rep_layers = 1, c.net.rep_width = 4, c.net.head_layers = 1, c.net.head_width = 4;
    c.net.steps = 30, c.net.batch = 0, c.net.lr = 0.01, c.net.l2 = 0, c.net.seed = 2;
    c.net.alpha = 0.5;
    c.split_seed = 4;
    c.inner_batch = 0;
    c.solver.inner = blo_opt_adam(0.01);
    c.solver.outer = blo_opt_adam(0.3);
    c.solver.outer_iters = outer, c.solver.inner_steps = 3;
    c.tune = BLO_CAUSAL_TUNE_ALPHA;
    return c;
}

int main(void) {
    causal_tiny ct;
    causal_tiny_init(&ct);
    const blo_causal_data d = ct.d;

    blo_causal_result each[K + 1];
    int best = 1;
    for (int j = 1; j <= K; j++) {
        blo_causal_config c = tiny(j);
        each[j] = causal_tiny_run(&d, &c);
        if (each[j].criterion < each[best].criterion) best = j;
    }
    TU_CHECK(best != K, "the last iterate is the best (criteria fall all along): the test "
                        "cannot tell keep_best from the last iterate");
    blo_causal_config c = tiny(K);
    c.keep_best = 1;
    blo_causal_result r = causal_tiny_run(&d, &c);
    TU_CHECK(r.criterion == each[best].criterion && r.pehe_out == each[best].pehe_out &&
                 r.pehe_in == each[best].pehe_in && r.ate_out == each[best].ate_out,
             "keep_best: criterion %.9g, √PEHE out %.9g; the best iterate (%d): %.9g, %.9g",
             r.criterion, r.pehe_out, best, each[best].criterion, each[best].pehe_out);
    /* α reported is the one the kept y_T was trained at: that of run best − 1's end. */
    if (best > 1)
        TU_CHECK(fabs(r.alpha - each[best - 1].alpha) <= 1e-6 * r.alpha,
                 "keep_best's α %.9g, expected %.9g", r.alpha, each[best - 1].alpha);

    /* No outer iteration: the start, scored as tune none scores it. */
    blo_causal_config z = tiny(0);
    z.keep_best = 1;
    blo_causal_result rz = causal_tiny_run(&d, &z);
    blo_causal_config n = tiny(0);
    n.tune = BLO_CAUSAL_TUNE_NONE;
    blo_causal_result rn = causal_tiny_run(&d, &n);
    TU_CHECK(rz.pehe_out == rn.pehe_out && isfinite(rz.criterion) && rz.alpha == 0.5,
             "keep_best with no outer iteration: √PEHE out %.9g (none: %.9g), criterion %g",
             rz.pehe_out, rn.pehe_out, rz.criterion);
    return tu_finish("test_causal_keep_best");
}
