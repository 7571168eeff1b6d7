/* test_data.c — the loaders on small committed files (tests/data): values read from good
 * IDX (plain and gzip), LIBSVM and CSV files, and for every file of the malformed corpus
 * (tests/data/bad) a clean error whose message names the file and the position. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#define DATA BLO_SOURCE_DIR "/tests/data"

static void expect_error(blo_status st, const char *err, blo_status want, const char *file,
                         const char *where) {
    TU_CHECK(st == want, "%s: expected %s, got %s (%s)", file, blo_status_name(want),
             blo_status_name(st), err);
    TU_CHECK(strstr(err, file) != NULL, "%s: the message must name the file: %s", file, err);
    if (where) TU_CHECK(strstr(err, where) != NULL, "%s: the message must say '%s': %s", file, where, err);
}

int main(void) {
    char err[512];
    blo_dataset ds;

    /* MNIST layout, plain and gzip. */
    const char *splits[2] = {"tiny", "gz"};
    for (int k = 0; k < 2; k++) {
        blo_status st = blo_mnist_load(DATA, splits[k], &ds, err, sizeof err);
        TU_CHECK(st == BLO_OK, "mnist %s: %s", splits[k], err);
        if (st) continue;
        TU_CHECK(ds.n == 3 && ds.d == 4 && ds.num_classes == 10, "mnist %s shape %lld x %lld",
                 splits[k], (long long)ds.n, (long long)ds.d);
        TU_CHECK(ds.image[0] == 1 && ds.image[1] == 2 && ds.image[2] == 2 && !ds.class_name,
                 "mnist %s: 1 x 2 x 2 images, no class names", splits[k]);
        TU_CHECK(tu_close(ds.x[1], 1.0, 0, 1e-7) && tu_close(ds.x[2], 128.0 / 255, 1e-6, 0) &&
                     tu_close(ds.x[4], 1.0 / 255, 1e-6, 0),
                 "mnist %s pixels scaled to [0, 1]", splits[k]);
        int64_t want0 = k == 0 ? 7 : 1, want2 = k == 0 ? 9 : 3;
        TU_CHECK(ds.label[0] == want0 && ds.label[2] == want2, "mnist %s labels", splits[k]);
        blo_ctx *ctx = blo_ctx_new(0);
        int64_t rows[2] = {2, 0};
        blo_tensor *x = blo_dataset_features(ctx, &ds, BLO_F64, rows, 2);
        blo_tensor *l = blo_dataset_labels(ctx, &ds, rows, 2);
        TU_CHECK(x && blo_tensor_get(x, 0) == 1.0 && blo_tensor_get(x, 4) == 0.0 &&
                     blo_tensor_get(l, 0) == (double)want2,
                 "rows as tensors");
        blo_ctx_free(ctx);
        blo_dataset_free(&ds);
    }
    blo_status st = blo_mnist_load(DATA "/bad", "wrongcount", &ds, err, sizeof err);
    expect_error(st, err, BLO_ERR_FORMAT, "wrongcount-labels-idx1-ubyte", "same n");
    st = blo_mnist_load(DATA, "nosuch", &ds, err, sizeof err);
    expect_error(st, err, BLO_ERR_IO, "nosuch-images-idx3-ubyte", "cannot open");

    /* Malformed IDX files. */
    struct {
        const char *file, *where;
    } bad_idx[] = {{"badmagic.idx", "bad magic 0x00000000"},
                   {"truncated.idx", "(truncated)"},
                   {"shortheader.idx", "offset 4"},
                   {"trailing.idx", "13 found"},
                   {"truncated.idx.gz", "truncated"}};
    for (size_t i = 0; i < sizeof bad_idx / sizeof bad_idx[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, DATA "/bad/%s", bad_idx[i].file);
        blo_idx a;
        st = blo_idx_load(path, &a, err, sizeof err);
        expect_error(st, err, BLO_ERR_FORMAT, bad_idx[i].file, bad_idx[i].where);
        blo_idx_free(&a);
    }

    /* LIBSVM: sparse and dense. */
    st = blo_libsvm_load(DATA "/good.svm", 1, 0, &ds, err, sizeof err);
    TU_CHECK(st == BLO_OK, "good.svm: %s", err);
    if (!st) {
        TU_CHECK(ds.n == 3 && ds.d == 3 && ds.nnz == 6, "good.svm: %lld x %lld, %lld entries",
                 (long long)ds.n, (long long)ds.d, (long long)ds.nnz);
        float want[9] = {0.5f, 0, -2, 0, 1.25f, 0, 1, 2, 3};
        int same = 1;
        for (int i = 0; i < 9; i++) same &= ds.x[i] == want[i];
        TU_CHECK(same, "good.svm dense values");
        TU_CHECK(ds.num_classes == 2 && ds.label[0] == 1 && ds.label[1] == 0 &&
                     ds.class_value[0] == -1 && ds.class_value[1] == 1,
                 "good.svm classes -1/+1 -> 0/1");
        TU_CHECK(ds.rowptr[1] == 2 && ds.col[1] == 2 && ds.val[1] == -2.0f, "good.svm CSR");
        blo_dataset_free(&ds);
    }
    st = blo_libsvm_load(DATA "/good.svm", 0, 10, &ds, err, sizeof err);
    TU_CHECK(st == BLO_OK && ds.d == 10 && ds.x == NULL, "min_features widens d, sparse keeps x NULL");
    blo_dataset_free(&ds);
    struct {
        const char *file, *where;
    } bad_svm[] = {{"descending.svm", "line 1, column 7: index 2 after index 3"},
                   {"target.svm", "line 2, column 1"},
                   {"value.svm", "line 1, column 11"},
                   {"zeroindex.svm", "line 1, column 3"},
                   {"nocolon.svm", "line 1, column 3"},
                   {"nan.svm", "line 1, column 5"}};
    for (size_t i = 0; i < sizeof bad_svm / sizeof bad_svm[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, DATA "/bad/%s", bad_svm[i].file);
        st = blo_libsvm_load(path, 1, 0, &ds, err, sizeof err);
        expect_error(st, err, BLO_ERR_FORMAT, bad_svm[i].file, bad_svm[i].where);
    }

    /* CSV. */
    st = blo_csv_load(DATA "/good.csv", NULL, &ds, err, sizeof err);
    TU_CHECK(st == BLO_OK, "good.csv: %s", err);
    if (!st) {
        TU_CHECK(ds.n == 3 && ds.d == 2 && ds.x[0] == 1.5f && ds.x[3] == 0.4f && ds.y[1] == 1,
                 "good.csv values");
        blo_dataset_free(&ds);
    }
    st = blo_csv_load(DATA "/good.csv", "f1", &ds, err, sizeof err);
    TU_CHECK(st == BLO_OK && ds.y[0] == 1.5 && ds.x[0] == 2.0f, "label column by name");
    blo_dataset_free(&ds);
    st = blo_csv_load(DATA "/good.csv", "nosuch", &ds, err, sizeof err);
    expect_error(st, err, BLO_ERR_FORMAT, "good.csv", "no column named 'nosuch'");
    struct {
        const char *file, *where;
    } bad_csv[] = {{"fields.csv", "line 3: 2 fields, the header has 3"},
                   {"nonnumeric.csv", "line 3, column 3"},
                   {"extrafields.csv", "line 3: at least 4 fields, the header has 3"},
                   {"empty.csv", "empty"},
                   {"onecolumn.csv", "line 1"}};
    for (size_t i = 0; i < sizeof bad_csv / sizeof bad_csv[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, DATA "/bad/%s", bad_csv[i].file);
        st = blo_csv_load(path, NULL, &ds, err, sizeof err);
        expect_error(st, err, BLO_ERR_FORMAT, bad_csv[i].file, bad_csv[i].where);
    }

    /* Every allocation of a load failing in turn: a clean error, nothing leaked. */
    long live = blo_alloc_live();
    for (long k = 1; k < 200; k++) {
        blo_alloc_fail_at(k);
        st = blo_libsvm_load(DATA "/good.svm", 1, 0, &ds, err, sizeof err);
        blo_alloc_fail_at(0);
        if (st == BLO_OK) {
            blo_dataset_free(&ds);
            break;
        }
        TU_CHECK(st == BLO_ERR_NOMEM, "allocation %ld failing: %s", k, err);
        TU_CHECK(blo_alloc_live() == live, "allocation %ld failing leaked %ld blocks", k,
                 blo_alloc_live() - live);
    }
    return tu_finish("test_data");
}
