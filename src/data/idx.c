/* idx.c — the IDX container of the MNIST family: a 4-byte magic (0, 0, type, ndim), ndim
 * big-endian 32-bit sizes, then the values big-endian. blo_mnist_load pairs an images file
 * with a labels file. */
#include "data_internal.h"

#include <stdio.h>
#include <string.h>

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int type_size(int t) {
    switch (t) {
    case 0x08: case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    }
    return 0;
}

void blo_idx_free(blo_idx *a) {
    if (!a) return;
    blo_free(a->values);
    a->values = NULL;
}

blo_status blo_idx_parse(const unsigned char *buf, size_t len, const char *name, blo_idx *out,
                         char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (len < 4)
        return blo__fail(err, errlen, BLO_ERR_FORMAT,
                              "%s: offset 0: %zu bytes, too short for an IDX header", name, len);
    uint32_t magic = be32(buf);
    int type = buf[2], nd = buf[3], es = type_size(type);
    if (buf[0] || buf[1] || !es || nd < 1 || nd > 8)
        return blo__fail(err, errlen, BLO_ERR_FORMAT,
                              "%s: offset 0: bad magic 0x%08x (expected 0x000008nn for ubyte "
                              "data with nn dimensions)",
                              name, magic);
    if (len < 4 + 4 * (size_t)nd)
        return blo__fail(err, errlen, BLO_ERR_FORMAT,
                              "%s: offset 4: the header needs %d sizes, the file ends first", name, nd);
    int64_t count = 1;
    for (int i = 0; i < nd; i++) {
        out->dims[i] = be32(buf + 4 + 4 * i);
        if (out->dims[i] > 0 && count > ((int64_t)1 << 40) / out->dims[i])
            return blo__fail(err, errlen, BLO_ERR_FORMAT,
                                  "%s: offset %d: sizes too large", name, 4 + 4 * i);
        count *= out->dims[i];
    }
    size_t off = 4 + 4 * (size_t)nd, need = (size_t)count * (size_t)es;
    if (len - off != need)
        return blo__fail(err, errlen, BLO_ERR_FORMAT,
                              "%s: offset %zu: %zu bytes of data expected for the sizes in the "
                              "header, %zu found%s",
                              name, off, need, len - off, len - off < need ? " (truncated)" : "");
    out->values = blo_malloc(sizeof(float) * (size_t)(count ? count : 1));
    if (!out->values) return blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory", name);
    const unsigned char *p = buf + off;
    for (int64_t i = 0; i < count; i++, p += es) {
        float v = 0;
        switch (type) {
        case 0x08: v = p[0]; break;
        case 0x09: v = (signed char)p[0]; break;
        case 0x0B: v = (int16_t)((uint16_t)p[0] << 8 | p[1]); break;
        case 0x0C: v = (float)(int32_t)be32(p); break;
        case 0x0D: {
            uint32_t u = be32(p);
            memcpy(&v, &u, 4);
            break;
        }
        case 0x0E: {
            uint64_t u = (uint64_t)be32(p) << 32 | be32(p + 4);
            double d;
            memcpy(&d, &u, 8);
            v = (float)d;
            break;
        }
        }
        out->values[i] = v;
    }
    out->type = type;
    out->ndim = nd;
    out->count = count;
    return BLO_OK;
}

blo_status blo_idx_load(const char *path, blo_idx *out, char *err, size_t errlen) {
    unsigned char *buf;
    size_t len;
    memset(out, 0, sizeof *out);
    blo_status st = blo_read_file(path, &buf, &len, err, errlen);
    if (st) return st;
    st = blo_idx_parse(buf, len, path, out, err, errlen);
    blo_free(buf);
    return st;
}

/* dir/<split>-<kind>, trying the .gz name first. */
static blo_status load_part(const char *dir, const char *split, const char *kind, blo_idx *a,
                            char *path, size_t plen, char *err, size_t errlen) {
    char file[1024];
    snprintf(file, sizeof file, "%s-%s", split, kind);
    blo__data_path(path, plen, dir, file);
    return blo_idx_load(path, a, err, errlen);
}

blo_status blo_mnist_load(const char *dir, const char *split, blo_dataset *ds, char *err,
                          size_t errlen) {
    memset(ds, 0, sizeof *ds);
    char ipath[4096], lpath[4096];
    blo_idx im, lb;
    blo_status st = load_part(dir, split, "images-idx3-ubyte", &im, ipath, sizeof ipath, err, errlen);
    if (st) return st;
    st = load_part(dir, split, "labels-idx1-ubyte", &lb, lpath, sizeof lpath, err, errlen);
    if (st) {
        blo_idx_free(&im);
        return st;
    }
    if (im.type != 0x08 || im.ndim != 3 || lb.type != 0x08 || lb.ndim != 1 || im.dims[0] != lb.dims[0]) {
        st = blo__fail(err, errlen, BLO_ERR_FORMAT,
                            "%s and %s: expected ubyte images [n, h, w] and ubyte labels [n] with "
                            "the same n (got %d-d and %d-d arrays, %lld and %lld items)",
                            ipath, lpath, im.ndim, lb.ndim, (long long)im.dims[0],
                            (long long)lb.dims[0]);
        goto out;
    }
    ds->n = im.dims[0];
    ds->d = im.dims[1] * im.dims[2];
    ds->image[0] = 1;
    ds->image[1] = im.dims[1];
    ds->image[2] = im.dims[2];
    ds->x = im.values;
    im.values = NULL;
    for (int64_t i = 0; i < ds->n * ds->d; i++) ds->x[i] /= 255.0f;
    ds->y = blo_malloc(sizeof(double) * (size_t)(ds->n ? ds->n : 1));
    if (!ds->y) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory", lpath);
        goto out;
    }
    /* Ten classes by value, whether or not the split holds all of them. */
    ds->label = blo_malloc(sizeof(int64_t) * (size_t)(ds->n ? ds->n : 1));
    ds->class_value = blo_malloc(sizeof(double) * 10);
    if (!ds->label || !ds->class_value) {
        st = blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory", lpath);
        goto out;
    }
    for (int c = 0; c < 10; c++) ds->class_value[c] = c;
    ds->num_classes = 10;
    for (int64_t i = 0; i < ds->n; i++) {
        if (lb.values[i] > 9) {
            st = blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: offset %lld: label %g is not a "
                                "digit class 0-9", lpath, (long long)(8 + i), (double)lb.values[i]);
            goto out;
        }
        ds->y[i] = lb.values[i];
        ds->label[i] = (int64_t)lb.values[i];
    }
out:
    blo_idx_free(&im);
    blo_idx_free(&lb);
    if (st) blo_dataset_free(ds);
    return st;
}
