/* cpu_index.c — gather / scatter-add along an axis and index_select / index_add.
 * Scatters run on one thread so that repeated indices add up in a fixed order. */
#include "cpu.h"

int64_t blo__cpu_index_outside(const blo_tensor *idx, int64_t n, int64_t *value) {
    int64_t m = blo__numel(idx->ndim, idx->shape);
    if (blo__is_contig(idx)) {
        const int64_t *v = idx->data;
        for (int64_t k = 0; k < m; k++)
            if (v[k] < 0 || v[k] >= n) {
                *value = v[k];
                return k;
            }
        return -1;
    }
    for (int64_t k = 0, flat; k < m; k++) { /* a strided view: the offset of element k */
        int64_t off = 0;
        flat = k;
        for (int d = idx->ndim - 1; d >= 0; d--) {
            off += flat % idx->shape[d] * idx->stride[d];
            flat /= idx->shape[d];
        }
        int64_t v = ((const int64_t *)idx->data)[off];
        if (v < 0 || v >= n) {
            *value = v;
            return k;
        }
    }
    return -1;
}

#include <string.h>

static double ld(const blo_tensor *t, int64_t off) {
    return t->dtype == BLO_F32 ? ((const float *)t->data)[off] : ((const double *)t->data)[off];
}

static void st_add(blo_tensor *t, int64_t off, double v, bool add) {
    if (t->dtype == BLO_F32) {
        float *p = (float *)t->data + off;
        *p = add ? *p + (float)v : (float)v;
    } else {
        double *p = (double *)t->data + off;
        *p = add ? *p + v : v;
    }
}

/* Offsets in a (with axis replaced by the index) and in idx for a flat position of idx. */
static void offsets(const blo_tensor *a, const blo_tensor *idx, int axis, int64_t flat,
                    int64_t *oa, int64_t *oi) {
    int64_t ra = 0, ri = 0, coord_axis = 0;
    for (int d = idx->ndim - 1; d >= 0; d--) {
        int64_t c = flat % idx->shape[d];
        flat /= idx->shape[d];
        ri += c * idx->stride[d];
        if (d == axis)
            coord_axis = c;
        else
            ra += c * a->stride[d];
    }
    (void)coord_axis;
    *oa = ra;
    *oi = ri;
}

/* Work below this many elements, or with one thread, runs without entering OpenMP: even a
 * region whose if clause is false sets up a team (about a microsecond a call). */
#define PAR_MIN 32768
static bool serial(int64_t work) {
    return work < PAR_MIN || blo_num_threads() <= 1;
}

static void gather_one(const blo_tensor *a, int axis, const blo_tensor *idx, blo_tensor *out,
                       int64_t f) {
    int64_t oa, oi;
    offsets(a, idx, axis, f, &oa, &oi);
    st_add(out, f, ld(a, oa + ((const int64_t *)idx->data)[oi] * a->stride[axis]), false);
}

void blo__cpu_gather(const blo_tensor *a, int axis, const blo_tensor *idx, blo_tensor *out) {
    int64_t n = blo__numel(idx->ndim, idx->shape);
    if (serial(n)) {
        for (int64_t f = 0; f < n; f++) gather_one(a, axis, idx, out, f);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t f = 0; f < n; f++) gather_one(a, axis, idx, out, f);
}

void blo__cpu_scatter_add(blo_tensor *out, int axis, const blo_tensor *idx, const blo_tensor *src) {
    int64_t n = blo__numel(idx->ndim, idx->shape);
    const int64_t *ix = idx->data;
    for (int64_t f = 0; f < n; f++) {
        int64_t oo, oi, os = 0, r = f;
        offsets(out, idx, axis, f, &oo, &oi);
        for (int d = src->ndim - 1; d >= 0; d--) {
            os += (r % src->shape[d]) * src->stride[d];
            r /= src->shape[d];
        }
        st_add(out, oo + ix[oi] * out->stride[axis], ld(src, os), true);
    }
}

/* a viewed as [outer, n_axis, inner] by its strides: element (o, j, i). */
static int64_t off3(const blo_tensor *t, int axis, int64_t o, int64_t j, int64_t i) {
    int64_t off = j * t->stride[axis];
    for (int d = t->ndim - 1; d > axis; d--) {
        off += (i % t->shape[d]) * t->stride[d];
        i /= t->shape[d];
    }
    for (int d = axis - 1; d >= 0; d--) {
        off += (o % t->shape[d]) * t->stride[d];
        o /= t->shape[d];
    }
    return off;
}

/* Row ok = (o, j) of index_select's output: a's row (o, ix[j]) along axis. */
static void select_row(const blo_tensor *a, int axis, const int64_t *ix, int64_t is, int64_t k,
                       int64_t inner, size_t es, bool rows, blo_tensor *out, int64_t ok) {
    int64_t o = ok / k, j = ok % k;
    char *dst = (char *)out->data + (ok * inner) * (int64_t)es;
    if (rows) {
        const char *src =
            (const char *)a->data + ((o * a->shape[axis] + ix[j * is]) * inner) * (int64_t)es;
        memcpy(dst, src, (size_t)inner * es);
    } else {
        for (int64_t i = 0; i < inner; i++)
            st_add(out, ok * inner + i, ld(a, off3(a, axis, o, ix[j * is], i)), false);
    }
}

void blo__cpu_index_select(const blo_tensor *a, int axis, const blo_tensor *idx, blo_tensor *out) {
    int64_t outer = blo__numel(axis, a->shape);
    int64_t inner = blo__numel(a->ndim - axis - 1, a->shape + axis + 1);
    int64_t k = idx->shape[0];
    const int64_t *ix = idx->data;
    int64_t is = idx->stride[0];
    size_t es = blo_dtype_size(a->dtype);
    bool rows = blo__is_contig(a);
    if (serial(outer * k * inner)) {
        for (int64_t ok = 0; ok < outer * k; ok++)
            select_row(a, axis, ix, is, k, inner, es, rows, out, ok);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t ok = 0; ok < outer * k; ok++)
        select_row(a, axis, ix, is, k, inner, es, rows, out, ok);
}

void blo__cpu_index_add(blo_tensor *out, int axis, const blo_tensor *idx, const blo_tensor *src) {
    int64_t outer = blo__numel(axis, out->shape);
    int64_t inner = blo__numel(out->ndim - axis - 1, out->shape + axis + 1);
    int64_t k = idx->shape[0];
    const int64_t *ix = idx->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < k; j++)
            for (int64_t i = 0; i < inner; i++)
                st_add(out, off3(out, axis, o, ix[j * idx->stride[0]], i),
                       ld(src, off3(src, axis, o, j, i)), true);
}
