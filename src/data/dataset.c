/* dataset.c — reading files (gzip or plain), dataset bookkeeping, and turning rows of a
 * dataset into tensors. */
#include "data_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

const char *blo__basename(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

void blo__data_path(char *path, size_t plen, const char *dir, const char *file) {
    snprintf(path, plen, "%s/%s.gz", dir, file);
    FILE *f = fopen(path, "rb");
    if (f)
        fclose(f);
    else
        snprintf(path, plen, "%s/%s", dir, file);
}

void blo_dataset_free(blo_dataset *ds) {
    if (!ds) return;
    if (ds->class_name)
        for (int64_t c = 0; c < ds->num_classes; c++) blo_free(ds->class_name[c]);
    blo_free(ds->class_name);
    blo_free(ds->x);
    blo_free(ds->rowptr);
    blo_free(ds->col);
    blo_free(ds->val);
    blo_free(ds->y);
    blo_free(ds->label);
    blo_free(ds->class_value);
    memset(ds, 0, sizeof *ds);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

bool blo__dataset_classes(blo_dataset *ds) {
    if (ds->n == 0) return true;
    for (int64_t i = 0; i < ds->n; i++)
        if (ds->y[i] != floor(ds->y[i]) || fabs(ds->y[i]) > 1e15) return true;
    double *v = blo_malloc(sizeof(double) * (size_t)ds->n);
    if (!v) return false;
    memcpy(v, ds->y, sizeof(double) * (size_t)ds->n);
    qsort(v, (size_t)ds->n, sizeof(double), cmp_double);
    int64_t k = 0;
    for (int64_t i = 0; i < ds->n; i++)
        if (i == 0 || v[i] != v[k - 1]) v[k++] = v[i];
    if (k > 65536) {
        blo_free(v);
        return true;
    }
    ds->label = blo_malloc(sizeof(int64_t) * (size_t)ds->n);
    if (!ds->label) {
        blo_free(v);
        return false;
    }
    for (int64_t i = 0; i < ds->n; i++) {
        int64_t lo = 0, hi = k - 1;
        while (lo < hi) {
            int64_t mid = (lo + hi) / 2;
            if (v[mid] < ds->y[i])
                lo = mid + 1;
            else
                hi = mid;
        }
        ds->label[i] = lo;
    }
    ds->num_classes = k;
    ds->class_value = v;
    return true;
}

blo_status blo_read_file(const char *path, unsigned char **buf, size_t *len, char *err,
                         size_t errlen) {
    *buf = NULL;
    *len = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return blo__fail(err, errlen, BLO_ERR_IO, "%s: cannot open: %s", path,
                              errno ? strerror(errno) : "out of memory");
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = blo_malloc(cap);
    if (!b) {
        gzclose(f);
        return blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            size_t nc = cap * 2;
            unsigned char *nb = nc > cap ? blo_malloc(nc) : NULL;
            if (!nb) {
                blo_free(b);
                gzclose(f);
                return blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory reading",
                                      path);
            }
            memcpy(nb, b, n);
            blo_free(b);
            b = nb;
            cap = nc;
        }
        unsigned want = cap - n > (1u << 30) ? (1u << 30) : (unsigned)(cap - n);
        int got = gzread(f, b + n, want);
        if (got < 0) {
            int code;
            const char *msg = gzerror(f, &code);
            blo_status st = blo__fail(err, errlen, code == Z_ERRNO ? BLO_ERR_IO : BLO_ERR_FORMAT,
                                           "%s: offset %zu: %s", path, n,
                                           code == Z_ERRNO ? strerror(errno) : msg);
            blo_free(b);
            gzclose(f);
            return st;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    /* A truncated gzip stream reads as a short file; zlib reports it at close. */
    int code;
    const char *msg = gzerror(f, &code);
    if (code != Z_OK && code != Z_BUF_ERROR) {
        blo_status st = blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: offset %zu: %s", path, n, msg);
        blo_free(b);
        gzclose(f);
        return st;
    }
    if (code == Z_BUF_ERROR) {
        blo_free(b);
        gzclose(f);
        return blo__fail(err, errlen, BLO_ERR_FORMAT,
                              "%s: offset %zu: the gzip stream ends early (truncated file)", path, n);
    }
    gzclose(f);
    *buf = b;
    *len = n;
    return BLO_OK;
}

/* The loaders keep data sets in host memory (blo_dataset); tensors get their values through
 * the tensor layer's host copy, so a device backend receives them the same way. The rows are
 * gathered into a host buffer first: one extra copy of the selected rows, made once per call,
 * never on an op's path. */
blo_tensor *blo_dataset_features(blo_ctx *ctx, const blo_dataset *ds, blo_dtype dt,
                                 const int64_t *rows, int64_t k) {
    BLO_GUARD(ctx);
    if (!ds || k < 0 || dt == BLO_I64) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_dataset_features: bad arguments");
        return NULL;
    }
    for (int64_t r = 0; r < k; r++) {
        int64_t i = rows ? rows[r] : r;
        if (i < 0 || i >= ds->n) {
            blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_dataset_features: row %lld of %lld",
                              (long long)i, (long long)ds->n);
            return NULL;
        }
    }
    int64_t sh[2] = {k, ds->d};
    blo_tensor *t = blo_tensor_new(ctx, dt, 2, sh);
    if (!t) return NULL;
    if (ds->x && !rows) /* the first k dense rows are already one host block */
        return blo_tensor_copy_from_host(t, BLO_F32, ds->x) ? NULL : t;
    size_t d = (size_t)ds->d;
    float *buf = blo_calloc((size_t)k * d + 1, sizeof(float));
    if (!buf) {
        blo_ctx_set_error(ctx, BLO_ERR_NOMEM, "blo_dataset_features: out of memory");
        return NULL;
    }
    for (int64_t r = 0; r < k; r++) {
        int64_t i = rows ? rows[r] : r;
        float *o = buf + (size_t)r * d;
        if (ds->x)
            memcpy(o, ds->x + i * ds->d, sizeof(float) * d);
        else
            for (int64_t e = ds->rowptr[i]; e < ds->rowptr[i + 1]; e++) o[ds->col[e]] = ds->val[e];
    }
    blo_status st = blo_tensor_copy_from_host(t, BLO_F32, buf);
    blo_free(buf);
    return st ? NULL : t;
}

blo_tensor *blo_dataset_labels(blo_ctx *ctx, const blo_dataset *ds, const int64_t *rows,
                               int64_t k) {
    BLO_GUARD(ctx);
    if (!ds || !ds->label || k < 0) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                          "blo_dataset_labels: the dataset has no class labels");
        return NULL;
    }
    for (int64_t r = 0; r < k; r++) {
        int64_t i = rows ? rows[r] : r;
        if (i < 0 || i >= ds->n) {
            blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_dataset_labels: row %lld of %lld",
                              (long long)i, (long long)ds->n);
            return NULL;
        }
    }
    blo_tensor *t = blo_tensor_new(ctx, BLO_I64, 1, &k);
    if (!t) return NULL;
    if (!rows) return blo_tensor_copy_from_host(t, BLO_I64, ds->label) ? NULL : t;
    int64_t *buf = blo_malloc(((size_t)k + 1) * sizeof(int64_t));
    if (!buf) {
        blo_ctx_set_error(ctx, BLO_ERR_NOMEM, "blo_dataset_labels: out of memory");
        return NULL;
    }
    for (int64_t r = 0; r < k; r++) buf[r] = ds->label[rows[r]];
    blo_status st = blo_tensor_copy_from_host(t, BLO_I64, buf);
    blo_free(buf);
    return st ? NULL : t;
}
