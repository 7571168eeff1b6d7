/* layout.c — what the shape of a tensor implies, with no storage: element sizes, element
 * counts, contiguous strides, axis normalisation, broadcasting. The lowest part of the tensor
 * layer: the kernel tables (src/backend) use it, and the rest of the tensor layer
 * (tensor.c: creation, views, storage and host copies through a kernel table) sits above the
 * backends. */
#include "../internal.h"

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
