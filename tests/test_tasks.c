/* test_tasks.c — the task helpers: cleaner precision / recall / F1 on a case computed by hand,
 * and the hyper-cleaning runner's split, corruption and scoring on the tiny data set. */
#include "blo/blo.h"
#include "testutil.h"

#include <math.h>

int main(void) {
    /* 8 examples; kept = x >= 0 -> {0, 1, 2, 5, 7}; clean = noisy == truth -> {0, 1, 3, 5, 6}.
     * kept & clean = {0, 1, 5}: precision 3/5, recall 3/5, F1 = 0.6. */
    double x[8] = {0.5, 0.0, 1.0, -0.1, -2.0, 3.0, -1.0, 0.2};
    int64_t noisy[8] = {1, 2, 0, 4, 1, 2, 3, 9};
    int64_t truth[8] = {1, 2, 3, 4, 0, 2, 3, 5};
    double p, r, f;
    blo_cleaner_scores(8, x, noisy, truth, &p, &r, &f);
    TU_CHECK(tu_close(p, 0.6, 1e-15, 0) && tu_close(r, 0.6, 1e-15, 0) && tu_close(f, 0.6, 1e-15, 0),
             "cleaner scores %g %g %g, expected 0.6 each", p, r, f);
    /* Unequal case: keep everything -> precision = 5/8, recall 1, F1 = 2 (5/8) / (13/8) = 10/13. */
    double all[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    blo_cleaner_scores(8, all, noisy, truth, &p, &r, &f);
    TU_CHECK(tu_close(p, 5.0 / 8, 1e-15, 0) && r == 1.0 && tu_close(f, 10.0 / 13, 1e-15, 0),
             "keep-all scores %g %g %g", p, r, f);
    /* Nothing kept: the empty ratio is 0, not NaN. */
    double none[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    blo_cleaner_scores(8, none, noisy, truth, &p, &r, &f);
    TU_CHECK(p == 0 && r == 0 && f == 0, "keep-none scores %g %g %g", p, r, f);

    /* The runner on the tiny data: deterministic for a seed, the corruption count exact. */
    blo_hyperclean_config c = blo_hyperclean_default();
    c.data_dir = BLO_SOURCE_DIR "/tests/data/tinymnist";
    c.n_train = 60;
    c.n_val = 30;
    c.n_test = 30;
    c.solver.inner_steps = 5;
    c.solver.inner.lr = 0.5;
    c.solver.outer_iters = 4;
    c.baselines = 0;
    blo_hyperclean_result a, b;
    char err[256];
    TU_CHECK(blo_hyperclean_run(&c, &a, err, sizeof err) == BLO_OK, "run: %s", err);
    TU_CHECK(blo_hyperclean_run(&c, &b, err, sizeof err) == BLO_OK, "run again: %s", err);
    TU_CHECK(a.test_acc == b.test_acc && a.f1 == b.f1 && a.upper == b.upper,
             "the same seed gives the same run");
    TU_CHECK(a.clean == 33, "30 corrupted labels of 60, about a third redrawn to the truth: %lld "
             "intact", (long long)a.clean);
    TU_CHECK(a.iters == 4 && isfinite(a.upper), "iterations %lld, F %g", (long long)a.iters, a.upper);
    c.seed = 1;
    TU_CHECK(blo_hyperclean_run(&c, &b, err, sizeof err) == BLO_OK && b.upper != a.upper,
             "another seed draws another split");
    return tu_finish("test_tasks");
}
