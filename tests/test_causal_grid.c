/* test_causal_grid.c — tune grid_alpha (blo/causal.h) on a tiny problem: the cheaper grid's
 * winner (each α trained grid_steps steps, by default net.steps / ngrid) is the start of tune
 * alpha, so the run must reproduce, to the last bit, tune grid at grid_steps followed by tune
 * alpha from the α it picked (net.alpha ignored); a grid value <= 0 is refused by name. */
#include "causal_tiny.h"

#include <math.h>
#include <string.h>

static blo_causal_config tiny(blo_causal_tune tune) {
    blo_causal_config c = blo_causal_config_default();
    c.net.rep_layers = 1, c.net.rep_width = 4, c.net.head_layers = 1, c.net.head_width = 4;
    c.net.steps = 30, c.net.batch = 0, c.net.lr = 0.01, c.net.l2 = 0, c.net.seed = 2;
    c.net.ipm = BLO_CAUSAL_IPM_WASS;
    c.solver.outer_iters = 3, c.solver.inner_steps = 2;
    c.tune = tune;
    c.split_seed = 4;
    return c;
}

int main(void) {
    causal_tiny ct;
    causal_tiny_init(&ct);
    const blo_causal_data d = ct.d;
    const double grid[3] = {0.03, 0.3, 3};

    /* The oracle: the grid at 10 steps per α, then tune alpha from its winner. */
    blo_causal_config g = tiny(BLO_CAUSAL_TUNE_GRID);
    g.grid = grid, g.ngrid = 3, g.net.steps = 10;
    blo_causal_result rg = causal_tiny_run(&d, &g);
    blo_causal_config a = tiny(BLO_CAUSAL_TUNE_ALPHA);
    a.net.alpha = rg.alpha;
    blo_causal_result ra = causal_tiny_run(&d, &a);
    /* The full grid (30 steps) picks another α, so a run that ignored grid_steps would show. */
    g.net.steps = 30;
    blo_causal_result rg30 = causal_tiny_run(&d, &g);
    TU_CHECK(rg30.alpha != rg.alpha, "the grids at 10 and 30 steps pick different α (%g, %g)",
             rg.alpha, rg30.alpha);

    for (int64_t gs = 0; gs <= 10; gs += 10) { /* 0: net.steps / 3 = 10 */
        blo_causal_config c = tiny(BLO_CAUSAL_TUNE_GRID_ALPHA);
        c.grid = grid, c.ngrid = 3, c.grid_steps = gs, c.net.alpha = 0.7;
        blo_causal_result r = causal_tiny_run(&d, &c);
        TU_CHECK(r.alpha == ra.alpha && r.pehe_out == ra.pehe_out && r.pehe_in == ra.pehe_in &&
                     r.criterion == ra.criterion,
                 "grid_steps %lld: α %.9g, √PEHE out %.9g; the grid then alpha: %.9g, %.9g",
                 (long long)gs, r.alpha, r.pehe_out, ra.alpha, ra.pehe_out);
        TU_CHECK(isfinite(r.pehe_out) && r.alpha != rg.alpha, "α moved from the grid's %g: %g",
                 rg.alpha, r.alpha);
    }

    const double bad[2] = {1, 0};
    blo_causal_config c = tiny(BLO_CAUSAL_TUNE_GRID_ALPHA);
    c.grid = bad, c.ngrid = 2;
    blo_causal_result r;
    char err[256];
    TU_CHECK(blo_causal_run(&d, &c, &r, err, sizeof err) == BLO_ERR_INVALID &&
                 strstr(err, "grid value 2 is 0"),
             "a zero α in the grid is refused by name: %s", err);
    return tu_finish("test_causal_grid");
}
