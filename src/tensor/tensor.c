/* tensor.c — tensor headers, creation, metadata and element access. */
#include "../backend/backend.h"
#include "../internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *blo_dtype_name(blo_dtype d) {
    switch (d) {
    case BLO_F32: return "f32";
    case BLO_F64: return "f64";
    case BLO_I64: return "i64";
    }
    return "?";
}

size_t blo_dtype_size(blo_dtype d) {
    return d == BLO_F32 ? 4 : 8;
}

int64_t blo__numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

void blo__contig_strides(int ndim, const int64_t *shape, int64_t *stride) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        stride[i] = s;
        s *= shape[i];
    }
}

bool blo__is_contig(const blo_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

int blo__axis(int axis, int ndim) {
    if (axis < 0) axis += ndim;
    return axis >= 0 && axis < ndim ? axis : -1;
}

double blo__vec_dot(const blo_tensor *a, const blo_tensor *b) {
    return a->ctx->be->dot(a, b);
}

void blo__vec_axpy(double alpha, const blo_tensor *x, blo_tensor *y) {
    y->ctx->be->axpy(alpha, x, y);
}

void blo__vec_scale(double alpha, blo_tensor *y) {
    y->ctx->be->scale(alpha, y);
}

const char *blo__desc(const blo_tensor *t, char *buf, size_t n) {
    if (!t) {
        snprintf(buf, n, "(null)");
        return buf;
    }
    size_t k = (size_t)snprintf(buf, n, "%s[", blo_dtype_name(t->dtype));
    for (int i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

const char *blo_tensor_describe(const blo_tensor *t, char *buf, size_t n) {
    return blo__desc(t, buf, n);
}

/* Checks a requested shape; records an error naming `who` on failure. */
static bool check_shape(blo_ctx *ctx, const char *who, int ndim, const int64_t *shape,
                        int64_t *numel) {
    if (ndim < 0 || ndim > BLO_MAX_DIMS) {
        blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "%s: %d dimensions (at most %d)", who, ndim,
                          BLO_MAX_DIMS);
        return false;
    }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "%s: negative size %lld on axis %d", who,
                              (long long)shape[i], i);
            return false;
        }
        if (shape[i] && n > INT64_MAX / 8 / shape[i]) {
            blo_ctx_set_error(ctx, BLO_ERR_NOMEM, "%s: shape too large", who);
            return false;
        }
        n *= shape[i];
    }
    *numel = n;
    return true;
}

uint64_t blo__next_seq(void) {
    static uint64_t seq;
    return ++seq;
}

blo_tensor *blo__alloc(blo_ctx *ctx, blo_dtype dt, int ndim, const int64_t *shape) {
    int64_t n;
    if (!check_shape(ctx, "tensor", ndim, shape, &n)) return NULL;
    blo_tensor *t = blo__ctx_alloc(ctx, sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->data = blo__ctx_alloc(ctx, (size_t)n * blo_dtype_size(dt));
    if (!t->data) return NULL;
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    blo__contig_strides(ndim, shape, t->stride);
    t->ctx = ctx;
    t->seq = blo__next_seq();
    return t;
}

blo_tensor *blo__view(blo_ctx *ctx, const blo_tensor *base, int ndim, const int64_t *shape,
                      const int64_t *stride, void *data) {
    blo_tensor *t = blo__ctx_alloc(ctx, sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->dtype = base->dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->stride[i] = stride[i];
    }
    t->data = data;
    t->ctx = ctx;
    t->seq = blo__next_seq();
    return t;
}

bool blo__broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                          int64_t *out) {
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int64_t da = i < n - na ? 1 : a[i - (n - na)];
        int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
        if (da != db && da != 1 && db != 1) return false;
        out[i] = da == 1 ? db : da;
    }
    *nout = n;
    return true;
}

void blo__expand_into(blo_tensor *dst, const blo_tensor *t, int ndim, const int64_t *shape) {
    int off = ndim - t->ndim;
    *dst = *t;
    dst->node = NULL;
    dst->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        dst->shape[i] = shape[i];
        if (i < off)
            dst->stride[i] = 0;
        else
            dst->stride[i] = t->shape[i - off] == 1 && shape[i] != 1 ? 0 : t->stride[i - off];
    }
}

blo_tensor *blo__expand_view(blo_ctx *ctx, const blo_tensor *t, int ndim, const int64_t *shape) {
    blo_tensor tmp;
    blo__expand_into(&tmp, t, ndim, shape);
    return blo__view(ctx, t, ndim, shape, tmp.stride, t->data);
}

bool blo__check_float(blo_ctx *ctx, const char *op, const blo_tensor *t) {
    if (t->dtype == BLO_F32 || t->dtype == BLO_F64) return true;
    blo_ctx_set_error(ctx, BLO_ERR_DTYPE, "%s: expected a f32 or f64 tensor, got %s", op,
                      blo_dtype_name(t->dtype));
    return false;
}

bool blo__check_same_dtype(blo_ctx *ctx, const char *op, const blo_tensor *a,
                           const blo_tensor *b) {
    if (!blo__check_float(ctx, op, a) || !blo__check_float(ctx, op, b)) return false;
    if (a->dtype == b->dtype) return true;
    blo_ctx_set_error(ctx, BLO_ERR_DTYPE, "%s: dtypes differ (%s and %s); use blo_cast", op,
                      blo_dtype_name(a->dtype), blo_dtype_name(b->dtype));
    return false;
}

/* ---- Public creation ------------------------------------------------------------------------ */

blo_tensor *blo_tensor_new(blo_ctx *ctx, blo_dtype dt, int ndim, const int64_t *shape) {
    BLO_GUARD(ctx);
    if (ndim > 0 && !shape) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_tensor_new: shape is NULL");
        return NULL;
    }
    if (dt != BLO_F32 && dt != BLO_F64 && dt != BLO_I64) {
        blo_ctx_set_error(ctx, BLO_ERR_DTYPE, "blo_tensor_new: unknown dtype %d", (int)dt);
        return NULL;
    }
    return blo__alloc(ctx, dt, ndim, shape);
}

blo_tensor *blo_full(blo_ctx *ctx, blo_dtype dt, int ndim, const int64_t *shape, double v) {
    blo_tensor *t = blo_tensor_new(ctx, dt, ndim, shape);
    if (t) ctx->be->fill(t, v);
    return t;
}

blo_tensor *blo_zeros(blo_ctx *ctx, blo_dtype dt, int ndim, const int64_t *shape) {
    return blo_full(ctx, dt, ndim, shape, 0.0);
}

blo_tensor *blo_scalar(blo_ctx *ctx, blo_dtype dt, double v) {
    return blo_full(ctx, dt, 0, NULL, v);
}

blo_tensor *blo_from_f64(blo_ctx *ctx, blo_dtype dt, int ndim, const int64_t *shape,
                         const double *values) {
    blo_tensor *t = blo_tensor_new(ctx, dt, ndim, shape);
    if (!t) return NULL;
    if (!values) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_from_f64: values is NULL");
        return NULL;
    }
    int64_t n = blo__numel(ndim, shape);
    for (int64_t i = 0; i < n; i++) {
        if (dt == BLO_F32)
            ((float *)t->data)[i] = (float)values[i];
        else if (dt == BLO_F64)
            ((double *)t->data)[i] = values[i];
        else
            ((int64_t *)t->data)[i] = (int64_t)values[i];
    }
    return t;
}

blo_tensor *blo_from_i64(blo_ctx *ctx, int ndim, const int64_t *shape, const int64_t *values) {
    blo_tensor *t = blo_tensor_new(ctx, BLO_I64, ndim, shape);
    if (!t) return NULL;
    if (!values) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_from_i64: values is NULL");
        return NULL;
    }
    memcpy(t->data, values, (size_t)blo__numel(ndim, shape) * sizeof(int64_t));
    return t;
}

blo_tensor *blo_wrap(blo_ctx *ctx, blo_dtype dt, int ndim, const int64_t *shape, void *data) {
    BLO_GUARD(ctx);
    int64_t n;
    if (!check_shape(ctx, "blo_wrap", ndim, shape, &n)) return NULL;
    if (!data) {
        blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_wrap: data is NULL");
        return NULL;
    }
    blo_tensor proto = {.dtype = dt};
    int64_t st[BLO_MAX_DIMS];
    blo__contig_strides(ndim, shape, st);
    return blo__view(ctx, &proto, ndim, shape, st, data);
}

blo_tensor *blo_clone(blo_ctx *ctx, const blo_tensor *t) {
    BLO_GUARD(ctx);
    if (!t) return NULL;
    blo_tensor *c = blo__alloc(ctx, t->dtype, t->ndim, t->shape);
    if (c) ctx->be->copy(t, c);
    return c;
}

blo_status blo_copy_into(blo_tensor *dst, const blo_tensor *src) {
    if (!dst || !src) return BLO_ERR_INVALID;
    blo_ctx *ctx = dst->ctx;
    bool same = dst->ndim == src->ndim;
    for (int i = 0; same && i < dst->ndim; i++) same = dst->shape[i] == src->shape[i];
    if (!same) {
        char a[64], b[64];
        return blo_ctx_set_error(ctx, BLO_ERR_SHAPE, "blo_copy_into: shapes differ (%s from %s)",
                                 blo__desc(dst, a, sizeof a), blo__desc(src, b, sizeof b));
    }
    ctx->be->copy(src, dst);
    return BLO_OK;
}

blo_status blo_fill(blo_tensor *t, double v) {
    if (!t) return BLO_ERR_INVALID;
    t->ctx->be->fill(t, v);
    return BLO_OK;
}

/* ---- Metadata and access ---------------------------------------------------------------------- */

int blo_tensor_ndim(const blo_tensor *t) {
    return t ? t->ndim : 0;
}

int64_t blo_tensor_dim(const blo_tensor *t, int axis) {
    if (!t) return 0;
    int a = blo__axis(axis, t->ndim);
    return a < 0 ? 0 : t->shape[a];
}

const int64_t *blo_tensor_shape(const blo_tensor *t) {
    return t ? t->shape : NULL;
}

const int64_t *blo_tensor_strides(const blo_tensor *t) {
    return t ? t->stride : NULL;
}

int64_t blo_tensor_numel(const blo_tensor *t) {
    return t ? blo__numel(t->ndim, t->shape) : 0;
}

blo_dtype blo_tensor_dtype(const blo_tensor *t) {
    return t ? t->dtype : BLO_F32;
}

blo_ctx *blo_tensor_ctx(const blo_tensor *t) {
    return t ? t->ctx : NULL;
}

int blo_tensor_is_contiguous(const blo_tensor *t) {
    return t && blo__is_contig(t);
}

void *blo_tensor_data(const blo_tensor *t) {
    return t ? t->data : NULL;
}

static int64_t flat_offset(const blo_tensor *t, int64_t flat) {
    int64_t off = 0;
    for (int i = t->ndim - 1; i >= 0; i--) {
        int64_t idx = flat % t->shape[i];
        flat /= t->shape[i];
        off += idx * t->stride[i];
    }
    return off;
}

double blo_tensor_get(const blo_tensor *t, int64_t flat) {
    if (!t || flat < 0 || flat >= blo_tensor_numel(t)) return NAN;
    int64_t off = flat_offset(t, flat);
    switch (t->dtype) {
    case BLO_F32: return ((const float *)t->data)[off];
    case BLO_F64: return ((const double *)t->data)[off];
    case BLO_I64: return (double)((const int64_t *)t->data)[off];
    }
    return NAN;
}

blo_status blo_tensor_set(blo_tensor *t, int64_t flat, double v) {
    if (!t) return BLO_ERR_INVALID;
    if (flat < 0 || flat >= blo_tensor_numel(t))
        return blo_ctx_set_error(t->ctx, BLO_ERR_INVALID,
                                 "blo_tensor_set: index %lld out of range [0, %lld)",
                                 (long long)flat, (long long)blo_tensor_numel(t));
    int64_t off = flat_offset(t, flat);
    switch (t->dtype) {
    case BLO_F32: ((float *)t->data)[off] = (float)v; break;
    case BLO_F64: ((double *)t->data)[off] = v; break;
    case BLO_I64: ((int64_t *)t->data)[off] = (int64_t)v; break;
    }
    return BLO_OK;
}

double blo_tensor_item(const blo_tensor *t) {
    if (!t || blo_tensor_numel(t) != 1) return NAN;
    return blo_tensor_get(t, 0);
}

blo_status blo_tensor_to_f64(const blo_tensor *t, double *out) {
    if (!t || !out) return BLO_ERR_INVALID;
    int64_t n = blo_tensor_numel(t);
    if (blo__is_contig(t) && t->dtype == BLO_F64) {
        memcpy(out, t->data, (size_t)n * sizeof(double));
    } else if (blo__is_contig(t) && t->dtype == BLO_F32) {
        const float *p = t->data;
        for (int64_t i = 0; i < n; i++) out[i] = p[i];
    } else {
        for (int64_t i = 0; i < n; i++) out[i] = blo_tensor_get(t, i);
    }
    return BLO_OK;
}

/* Element i of a host array of dtype dt, as double, and the store back. */
static double host_get(const void *a, blo_dtype dt, int64_t i) {
    switch (dt) {
    case BLO_F32: return ((const float *)a)[i];
    case BLO_F64: return ((const double *)a)[i];
    case BLO_I64: return (double)((const int64_t *)a)[i];
    }
    return NAN;
}
static void host_set(void *a, blo_dtype dt, int64_t i, double v) {
    switch (dt) {
    case BLO_F32: ((float *)a)[i] = (float)v; break;
    case BLO_F64: ((double *)a)[i] = v; break;
    case BLO_I64: ((int64_t *)a)[i] = (int64_t)v; break;
    }
}

static bool known_dtype(blo_dtype dt) { return dt == BLO_F32 || dt == BLO_F64 || dt == BLO_I64; }

blo_status blo_tensor_copy_to_host(const blo_tensor *t, blo_dtype dt, void *dst) {
    if (!t || !dst || !known_dtype(dt)) return BLO_ERR_INVALID;
    int64_t n = blo_tensor_numel(t);
    if (t->dtype == dt && blo__is_contig(t)) {
        memcpy(dst, t->data, (size_t)n * blo_dtype_size(dt));
        return BLO_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t off = flat_offset(t, i);
        if (dt == BLO_I64 && t->dtype == BLO_I64) /* exact beyond 2^53 */
            ((int64_t *)dst)[i] = ((const int64_t *)t->data)[off];
        else
            host_set(dst, dt, i, host_get(t->data, t->dtype, off));
    }
    return BLO_OK;
}

blo_status blo_tensor_copy_from_host(blo_tensor *t, blo_dtype dt, const void *src) {
    if (!t || !src || !known_dtype(dt)) return BLO_ERR_INVALID;
    int64_t n = blo_tensor_numel(t);
    if (t->dtype == dt && blo__is_contig(t)) {
        memcpy(t->data, src, (size_t)n * blo_dtype_size(dt));
        return BLO_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t off = flat_offset(t, i);
        if (dt == BLO_I64 && t->dtype == BLO_I64)
            ((int64_t *)t->data)[off] = ((const int64_t *)src)[i];
        else
            host_set(t->data, t->dtype, off, host_get(src, dt, i));
    }
    return BLO_OK;
}

/* ---- Autodiff flags ----------------------------------------------------------------------------- */

blo_status blo_set_requires_grad(blo_tensor *t, int on) {
    if (!t) return BLO_ERR_INVALID;
    if (t->dtype == BLO_I64 && on)
        return blo_ctx_set_error(t->ctx, BLO_ERR_DTYPE,
                                 "blo_set_requires_grad: an i64 tensor cannot be a variable");
    if (t->node && !on)
        return blo_ctx_set_error(t->ctx, BLO_ERR_INVALID,
                                 "blo_set_requires_grad: the tensor has history; use blo_detach");
    t->requires_grad = on ? true : false;
    return BLO_OK;
}

int blo_requires_grad(const blo_tensor *t) {
    return t && t->requires_grad;
}

int blo_has_history(const blo_tensor *t) {
    return t && t->node != NULL;
}

/* ---- Random initialisation ------------------------------------------------------------------------ */

static blo_status init_each(blo_tensor *t, blo_rng *r, int normal, double a, double b) {
    if (!t || !r) return BLO_ERR_INVALID;
    if (t->dtype == BLO_I64)
        return blo_ctx_set_error(t->ctx, BLO_ERR_DTYPE, "init: expected a f32 or f64 tensor");
    int64_t n = blo_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double v = normal ? a + b * blo_rng_normal(r) : a + (b - a) * blo_rng_uniform(r);
        blo_tensor_set(t, i, v);
    }
    return BLO_OK;
}

blo_status blo_init_uniform(blo_tensor *t, blo_rng *r, double lo, double hi) {
    return init_each(t, r, 0, lo, hi);
}

blo_status blo_init_normal(blo_tensor *t, blo_rng *r, double mean, double std) {
    return init_each(t, r, 1, mean, std);
}

static blo_status fans(blo_tensor *t, double *fan_in, double *fan_out) {
    *fan_in = *fan_out = 1; /* defined even on failure: callers compute a bound before testing */
    if (!t) return BLO_ERR_INVALID;
    if (t->ndim < 2)
        return blo_ctx_set_error(t->ctx, BLO_ERR_SHAPE,
                                 "init: fan-in needs a weight of 2 or more dimensions");
    double field = 1;
    for (int i = 2; i < t->ndim; i++) field *= (double)t->shape[i];
    *fan_in = (double)t->shape[1] * field;
    *fan_out = (double)t->shape[0] * field;
    return BLO_OK;
}

blo_status blo_init_kaiming_normal(blo_tensor *t, blo_rng *r) {
    double fi = 1, fo = 1;
    blo_status s = fans(t, &fi, &fo);
    return s ? s : init_each(t, r, 1, 0.0, sqrt(2.0 / fi));
}

blo_status blo_init_kaiming_uniform(blo_tensor *t, blo_rng *r) {
    double fi = 1, fo = 1;
    blo_status s = fans(t, &fi, &fo);
    double bound = sqrt(6.0 / fi);
    return s ? s : init_each(t, r, 0, -bound, bound);
}

blo_status blo_init_xavier_uniform(blo_tensor *t, blo_rng *r) {
    double fi = 1, fo = 1;
    blo_status s = fans(t, &fi, &fo);
    double bound = sqrt(6.0 / (fi + fo));
    return s ? s : init_each(t, r, 0, -bound, bound);
}

blo_status blo_init_xavier_normal(blo_tensor *t, blo_rng *r) {
    double fi = 1, fo = 1;
    blo_status s = fans(t, &fi, &fo);
    return s ? s : init_each(t, r, 1, 0.0, sqrt(2.0 / (fi + fo)));
}
