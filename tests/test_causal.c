/* test_causal.c — the causal task: the loader (IHDP's layout, named columns, the malformed
 * corpus), √PEHE and ε_ATE on a hand-computed case, the nearest-neighbour imputation against
 * a brute-force loop, and a small TARNet fitting a known effect. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#define DATA BLO_SOURCE_DIR "/tests/data"

static void expect_error(blo_status st, const char *err, const char *file, const char *where) {
    TU_CHECK(st == BLO_ERR_FORMAT, "%s: expected a format error, got %s (%s)", file,
             blo_status_name(st), err);
    TU_CHECK(strstr(err, file) != NULL, "%s: the message must name the file: %s", file, err);
    TU_CHECK(strstr(err, where) != NULL, "%s: the message must say '%s': %s", file, where, err);
}

/* The plain O(n²) search, all distances kept, first minimum. */
static void brute_nn(const blo_causal_data *d, double *tau) {
    for (int64_t i = 0; i < d->n; i++) {
        double best = INFINITY;
        int64_t bj = -1;
        for (int64_t j = 0; j < d->n; j++) {
            if (d->t[j] == d->t[i]) continue;
            double s = 0;
            for (int64_t c = 0; c < d->d; c++)
                s += ((double)d->x[i * d->d + c] - d->x[j * d->d + c]) *
                     ((double)d->x[i * d->d + c] - d->x[j * d->d + c]);
            if (s < best) best = s, bj = j;
        }
        tau[i] = d->t[i] ? (double)d->y[i] - d->y[bj] : (double)d->y[bj] - d->y[i];
    }
}

int main(void) {
    char err[512];
    blo_causal_data d;
    blo_causal_columns cols = {"treat", "y", NULL, "m0", "m1"};

    /* Named columns: covariates are the rest. */
    blo_status st = blo_causal_load(DATA "/causal.csv", &cols, &d, err, sizeof err);
    TU_CHECK(st == BLO_OK, "causal.csv: %s", err);
    if (!st) {
        TU_CHECK(d.n == 4 && d.d == 2 && d.treated == 2 && d.x[6] == 3 && d.x[7] == 1 &&
                     d.y[3] == 5 && d.mu1[1] == 3,
                 "causal.csv values");
        /* √PEHE and ε_ATE by hand: true effects mu1 − mu0 = 1, 2, 0, 4; estimates 2, 2, 1, 1:
         * errors 1, 0, 1, −3 → PEHE = (1 + 0 + 1 + 9)/4 = 2.75, ATE error |−1/4| = 0.25. */
        double tau[4] = {2, 2, 1, 1};
        TU_CHECK(fabs(blo_causal_pehe(4, tau, d.mu0, d.mu1) - sqrt(2.75)) < 1e-12, "√PEHE %g",
                 blo_causal_pehe(4, tau, d.mu0, d.mu1));
        TU_CHECK(fabs(blo_causal_ate_error(4, tau, d.mu0, d.mu1) - 0.25) < 1e-12, "ε_ATE %g",
                 blo_causal_ate_error(4, tau, d.mu0, d.mu1));
        /* Nearest neighbours by hand: unit 0 (t=1, x=(0,0)) → unit 1 (x=(1,0), d²=1) rather
         * than unit 2 (d²=4): τ = 3 − 1 = 2. Unit 1 (t=0, x=(1,0)) → unit 0 (1) vs 3 (5): 3 − 1
         * = 2. Unit 2 (t=0, (0,2)) → unit 0 (4) vs 3 (10): 3 − 2 = 1. Unit 3 (t=1, (3,1)) →
         * unit 1 (5) vs 2 (10): 5 − 1 = 4. */
        double nn[4];
        TU_CHECK(blo_causal_nn_effects(&d, NULL, 4, nn) == BLO_OK && nn[0] == 2 && nn[1] == 2 &&
                     nn[2] == 1 && nn[3] == 4,
                 "nn effects %g %g %g %g", nn[0], nn[1], nn[2], nn[3]);
        int64_t one_arm[2] = {0, 3};
        TU_CHECK(blo_causal_nn_effects(&d, one_arm, 2, nn) == BLO_ERR_INVALID, "one arm refused");
        blo_causal_data_free(&d);
    }
    cols.covariates = "dose";
    st = blo_causal_load(DATA "/causal.csv", &cols, &d, err, sizeof err);
    TU_CHECK(st == BLO_OK && d.d == 1 && d.x[3] == 1, "named covariates: %s", err);
    blo_causal_data_free(&d);

    /* IHDP: the first replication, 747 units, 139 treated, 25 covariates. */
    st = blo_causal_load(BLO_SOURCE_DIR "/data/ihdp/ihdp_npci_1.csv", NULL, &d, err, sizeof err);
    TU_CHECK(st == BLO_OK && d.n == 747 && d.d == 25 && d.treated == 139 && d.mu0 && d.mu1,
             "ihdp_npci_1.csv: %s", err);
    if (!st) {
        /* The imputation on a subset of rows against the brute-force loop on that subset. */
        enum { K = 200 };
        int64_t rows[K];
        blo_causal_data sub = {K, d.d, NULL, NULL, NULL, NULL, NULL, 0};
        float xs[K * 25], ts[K], ys[K];
        for (int64_t a = 0; a < K; a++) {
            rows[a] = (a * 37) % d.n;
            memcpy(xs + a * 25, d.x + rows[a] * 25, sizeof(float) * 25);
            ts[a] = d.t[rows[a]];
            ys[a] = d.y[rows[a]];
        }
        sub.x = xs, sub.t = ts, sub.y = ys;
        double got[K], want[K];
        TU_CHECK(blo_causal_nn_effects(&d, rows, K, got) == BLO_OK, "nn on rows");
        brute_nn(&sub, want);
        int same = 1;
        for (int a = 0; a < K; a++) same &= got[a] == want[a];
        TU_CHECK(same, "nearest-neighbour effects equal the brute-force loop's");
        blo_causal_data_free(&d);
    }

    /* The malformed corpus: a clean error naming the file and the position. */
    struct {
        const char *file, *where;
        int ihdp;
    } bad[] = {{"causal-treatment.csv", "line 3, field 1: the treatment is 2", 0},
               {"causal-missing.csv", "line 1: no column named 'dose'", 0},
               {"causal-nonnumeric.csv", "line 3, column 3", 0},
               {"causal-onearm.csv", "treated", 0},
               {"causal-ihdp-cols.csv", "line 1: 4 columns", 1}};
    blo_causal_columns bc = {"treat", "y", "age|dose", NULL, NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, DATA "/bad/%s", bad[i].file);
        st = blo_causal_load(path, bad[i].ihdp ? NULL : &bc, &d, err, sizeof err);
        expect_error(st, err, bad[i].file, bad[i].where);
    }
    bc.covariates = NULL;
    st = blo_causal_parse("treat,y,a\n", 10, "norows", &bc, &d, err, sizeof err);
    expect_error(st, err, "norows", "no data rows");
    return tu_finish("test_causal");
}
