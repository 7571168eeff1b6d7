/* test_tasks.c — the task helpers: cleaner precision / recall / F1 and a classifier's accuracy
 * on cases computed by hand, the task runners' refusal to run without data, and the
 * hyper-cleaning runner's split, corruption and scoring on the tiny data set. */
#include "blo/blo.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

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

    /* Accuracy: rows of logits [2, 3, 3] (6 rows of 3 classes, a strided view) against labels
     * of two dtypes. Argmaxes 2, 0, 1, 0 (a tie: the first), 2, 1; labels 2, 0, 2, 0, 1, 1
     * -> 4 of 6 right. */
    blo_ctx *ctx = blo_ctx_new(0);
    double zv[18] = {0.1, 0.2, 0.9, 3, -1, 2, 0, 5, 4, 7, 7, 1, -3, -2, -1, 0.5, 0.6, 0.1};
    int64_t yv[6] = {2, 0, 2, 0, 1, 1};
    blo_tensor *z = blo_from_f64(ctx, BLO_F32, 3, (int64_t[]){2, 3, 3}, zv);
    blo_tensor *y = blo_from_i64(ctx, 1, (int64_t[]){6}, yv);
    double acc = blo_accuracy(z, y);
    TU_CHECK(tu_close(acc, 4.0 / 6, 1e-15, 0), "accuracy %g, expected 4/6", acc);
    blo_tensor *yf = blo_cast(ctx, y, BLO_F64);
    TU_CHECK(blo_accuracy(z, yf) == acc, "labels as f64: %g", blo_accuracy(z, yf));
    /* Transposed [3, 2] view of [2, 3] logits: rows (1, 4), (2, 5), (3, 0) -> argmax 1, 1, 0. */
    blo_tensor *zt = blo_transpose(ctx, blo_from_f64(ctx, BLO_F64, 2, (int64_t[]){2, 3},
                                                    (double[]){1, 2, 3, 4, 5, 0}), 0, 1);
    blo_tensor *yt = blo_from_i64(ctx, 1, (int64_t[]){3}, (int64_t[]){1, 0, 0});
    TU_CHECK(tu_close(blo_accuracy(zt, yt), 2.0 / 3, 1e-15, 0), "accuracy of a view %g, expected 2/3",
             blo_accuracy(zt, yt));
    TU_CHECK(isnan(blo_accuracy(z, yt)) && isnan(blo_accuracy(NULL, y)),
             "a label count other than the rows' is NAN");
    blo_ctx_free(ctx);

    /* No data named: a clear error naming the setting, not a machine path. */
    char msg[512] = "";
    blo_hyperclean_config hc = blo_hyperclean_default();
    blo_hyperclean_result hr;
    TU_CHECK(!hc.data_dir && blo_hyperclean_run(&hc, &hr, msg, sizeof msg) == BLO_ERR_INVALID &&
                 strstr(msg, "data_dir"),
             "hyperclean without data: %s", msg);
    blo_nas_search_config nc = blo_nas_search_default();
    blo_nas_search_result nr;
    TU_CHECK(!nc.images.data_dir && blo_nas_search_run(&nc, &nr, msg, sizeof msg) == BLO_ERR_INVALID &&
                 strstr(msg, "data_dir"),
             "nas search without data: %s", msg);
    blo_regsearch_config rc = blo_regsearch_default();
    blo_regsearch_result rr;
    TU_CHECK(!rc.mnist_dir && blo_regsearch_run(&rc, &rr, msg, sizeof msg) == BLO_ERR_INVALID &&
                 strstr(msg, "mnist_dir"),
             "regsearch without data: %s", msg);
    blo_fewshot_config fc = blo_fewshot_default();
    blo_fewshot_result fr;
    TU_CHECK(!fc.data_dir && blo_fewshot_run(&fc, &fr, msg, sizeof msg) == BLO_ERR_INVALID &&
                 strstr(msg, "data_dir"),
             "fewshot without data: %s", msg);

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

    /* The cleaner's use, with no outer iteration (x = 0: every example kept). Without corruption
     * it trains on the oracle's rows in the oracle's order, so the two agree exactly. With half
     * the labels corrupted (the same split: the corruption is drawn after it) it must train on
     * the noisy labels, a user's only ones: the model differs from the uncorrupted one. */
    c.seed = 0;
    c.solver.outer_iters = 0;
    c.baselines = 1;
    c.baseline_steps = 2; /* a model still far from fitting, so a row or label more shows */
    c.baseline_lr = 1e-3;
    c.corrupt = 0;
    TU_CHECK(blo_hyperclean_run(&c, &a, err, sizeof err) == BLO_OK && a.kept == 60 &&
                 a.base_kept == a.base_oracle && isfinite(a.base_kept),
             "all kept, no corruption: kept + val %g, oracle %g, kept %lld", a.base_kept,
             a.base_oracle, (long long)a.kept);
    c.corrupt = 0.5;
    TU_CHECK(blo_hyperclean_run(&c, &b, err, sizeof err) == BLO_OK && b.kept == 60 &&
                 isfinite(b.base_kept) && b.base_kept != a.base_kept,
             "all kept, half corrupted: kept + val %g must differ from the clean labels' %g",
             b.base_kept, a.base_kept);
    return tu_finish("test_tasks");
}
