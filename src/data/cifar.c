/* cifar.c — the CIFAR-10 binary batches (Krizhevsky 2009, "Learning multiple layers of features
 * from tiny images"): a file is a sequence of 3073-byte records, one label byte (0-9) and the
 * 32 x 32 image as three 1024-byte planes, red, green then blue, each row-major. The planes are
 * already channel-major, so a record's pixels are copied in order and scaled by 1/255. */
#include "data_internal.h"

#include <stdio.h>
#include <string.h>

enum { CIFAR_PIXELS = 3072, CIFAR_RECORD = 1 + CIFAR_PIXELS, CIFAR_CLASSES = 10 };

/* Checks one file's buffer: returns the number of records, or -1 with the error in err. */
static int64_t count_records(const unsigned char *buf, size_t len, const char *name, char *err,
                             size_t errlen) {
    if (len == 0) {
        blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: empty (no CIFAR-10 record)", name);
        return -1;
    }
    size_t n = len / CIFAR_RECORD;
    if (len % CIFAR_RECORD) {
        blo__fail(err, errlen, BLO_ERR_FORMAT,
                  "%s: offset %zu: a partial record of %zu bytes at the end (CIFAR-10 records are "
                  "%d bytes: a label and 3 x 32 x 32 pixels; the file has %zu bytes)",
                  name, n * CIFAR_RECORD, len % CIFAR_RECORD, CIFAR_RECORD, len);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (buf[i * CIFAR_RECORD] >= CIFAR_CLASSES) {
            blo__fail(err, errlen, BLO_ERR_FORMAT,
                      "%s: offset %zu: label %d (CIFAR-10 labels are 0-9; record %zu)", name,
                      i * CIFAR_RECORD, buf[i * CIFAR_RECORD], i);
            return -1;
        }
    return (int64_t)n;
}

/* An empty dataset of n CIFAR-10 rows with its 10 classes. */
static blo_status alloc_rows(blo_dataset *ds, int64_t n, const char *name, char *err,
                             size_t errlen) {
    ds->n = n;
    ds->d = CIFAR_PIXELS;
    ds->x = blo_malloc(sizeof(float) * (size_t)n * CIFAR_PIXELS);
    ds->y = blo_malloc(sizeof(double) * (size_t)n);
    ds->label = blo_malloc(sizeof(int64_t) * (size_t)n);
    ds->class_value = blo_malloc(sizeof(double) * CIFAR_CLASSES);
    if (!ds->x || !ds->y || !ds->label || !ds->class_value) {
        blo_dataset_free(ds);
        return blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory", name);
    }
    ds->num_classes = CIFAR_CLASSES;
    for (int c = 0; c < CIFAR_CLASSES; c++) ds->class_value[c] = c;
    ds->image[0] = 3;
    ds->image[1] = 32;
    ds->image[2] = 32;
    return BLO_OK;
}

/* Rows [at, at + n) of ds from a checked buffer of n records. */
static void fill_rows(blo_dataset *ds, int64_t at, const unsigned char *buf, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const unsigned char *r = buf + i * CIFAR_RECORD;
        float *x = ds->x + (at + i) * CIFAR_PIXELS;
        for (int k = 0; k < CIFAR_PIXELS; k++) x[k] = r[1 + k] / 255.0f;
        ds->label[at + i] = r[0];
        ds->y[at + i] = r[0];
    }
}

blo_status blo_cifar10_parse(const unsigned char *buf, size_t len, const char *name,
                             blo_dataset *ds, char *err, size_t errlen) {
    memset(ds, 0, sizeof *ds);
    int64_t n = count_records(buf, len, name, err, errlen);
    if (n < 0) return BLO_ERR_FORMAT;
    blo_status st = alloc_rows(ds, n, name, err, errlen);
    if (st) return st;
    fill_rows(ds, 0, buf, n);
    return BLO_OK;
}

blo_status blo_cifar10_load(const char *dir, const char *split, blo_dataset *ds, char *err,
                            size_t errlen) {
    memset(ds, 0, sizeof *ds);
    static const char *const train[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                        "data_batch_4.bin", "data_batch_5.bin"};
    static const char *const test[] = {"test_batch.bin"};
    const char *const *files;
    int nf;
    if (split && !strcmp(split, "train")) {
        files = train;
        nf = 5;
    } else if (split && !strcmp(split, "test")) {
        files = test;
        nf = 1;
    } else {
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "cifar10: split '%s' (train or test expected)", split ? split : "(null)");
    }
    /* All files are read (and checked) before the floats are allocated, so the peak is the
     * bytes plus the floats, not two copies of the floats. */
    unsigned char *buf[5] = {NULL};
    size_t len[5] = {0};
    int64_t count[5] = {0}, total = 0;
    char path[4096];
    blo_status st = BLO_OK;
    for (int f = 0; f < nf && !st; f++) {
        blo__data_path(path, sizeof path, dir, files[f]);
        st = blo_read_file(path, &buf[f], &len[f], err, errlen);
        if (!st) {
            count[f] = count_records(buf[f], len[f], path, err, errlen);
            if (count[f] < 0) st = BLO_ERR_FORMAT;
            total += count[f];
        }
    }
    if (!st) st = alloc_rows(ds, total, path, err, errlen);
    int64_t at = 0;
    for (int f = 0; f < nf && !st; f++) {
        fill_rows(ds, at, buf[f], count[f]);
        at += count[f];
    }
    for (int f = 0; f < nf; f++) blo_free(buf[f]);
    return st;
}
